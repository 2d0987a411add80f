#!/usr/bin/env python3
"""Repeat whole rolling-restart runs under random throttling, to reproduce issue 12's inconclusive case
("with 429s at probability 0.2 on every ARM call, one of four whole-role runs ended rc 2 with 11 of 12 done
and no abort recorded").

    python tests/faults/loop_role_throttling.py [--runs 8] [--probability 0.2] [--retry-after 1|none]
                                                [--time-scale 0.5] [--python PY]

Each run: the demo world (12 members over 3 fault domains, demo durations scaled by --time-scale), a 429 rule
at the given probability on every ARM call (identity calls excluded), the role with its defaults (batches of
20 %), then the summary and, for every member that did not end done, what happened to it (from the role's
summary and the emulator's request log). Bounded: --runs runs, each with the role's own time limits.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402


def whole_role_run(ctx):
    """Names the runs (the work is done in main)."""


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tests/faults/loop_role_throttling.py")
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--probability", type=float, default=0.2)
    parser.add_argument("--retry-after", default="1")
    parser.add_argument("--time-scale", type=float, default=0.5)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--collections", default=os.path.join(harness.CHECKOUT, "build", "collections"))
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 50:
        parser.error("--runs must be between 1 and 50")

    world = harness.World(os.path.abspath(args.python), os.path.abspath(args.collections),
                          tempfile.mkdtemp(prefix="azure-flex-loop-")).start()
    probe = harness.Case(whole_role_run, "role under faults", "a whole role run under random throttling")
    outcomes = collections.Counter()
    try:
        for number in range(1, args.runs + 1):
            group = harness.scale_set_group("demo-rg", 12, fault_domains=3)
            world.reset([group], settings={"time_scale": args.time_scale, "durations": {
                "restart": 4, "start": 3, "power_off": 2, "deallocate": 3, "health_initializing": 2}})
            ctx = harness.Ctx(world, probe, "demo-rg")
            rule = {"status": 429, "probability": args.probability}
            if args.retry_after != "none":
                rule["retry_after"] = int(args.retry_after)
            ctx.fault(**rule)
            run = ctx.role(run_id="loop-%d" % number, health_timeout=120)
            world.emulator.clear_faults()
            requests = [e for e in ctx.requests(mine=False) if e["path"].lower().startswith(("/subscriptions", "/providers"))]
            throttled = sum(1 for e in requests if e["status"] == 429)
            summary = run.summary
            done = summary.get("done") or []
            line = ("run %d: rc %s, done %d/12, aborted %s, failed %s, unhealthy %s, skipped %s, %s s;"
                    " %d ARM requests, %d answered 429" % (
                        number, run.returncode, len(done), summary.get("aborted"), summary.get("failed"),
                        summary.get("unhealthy"), summary.get("skipped"), summary.get("seconds"), len(requests),
                        throttled))
            print(line, flush=True)
            if run.returncode != 0:
                failed_tasks = [text for text in run.output.splitlines() if "FAILED!" in text or "fatal:" in text]
                print("  failing tasks: %s" % failed_tasks[:6], flush=True)
                if not summary:
                    print("  no summary; last output:\n%s" % run.output[-1500:], flush=True)
            outcomes["rc %s, done %d, aborted %s" % (run.returncode, len(done), summary.get("aborted"))] += 1
    finally:
        world.stop()
    print("outcomes: %s" % dict(outcomes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
