#!/usr/bin/env python3
"""Run the fault suite: every case of tests/faults/cases_*.py against one ARM emulator, then print the table.

    python tests/faults/run.py [--python PY] [--collections DIR] [--jobs N] [--only REGEX] [--json FILE]

--python       the interpreter whose SDKs and ansible-core run the modules (default: the one running this)
--collections  a directory holding ansible_collections/azure_flex/vmss (default: this checkout's build/collections)
--only         run only the cases whose id or category matches REGEX
Exits 1 when a case did not hold. See docs/reliability.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402


def load_cases():
    for name in sorted(os.listdir(HERE)):
        if name.startswith("cases_") and name.endswith(".py"):
            importlib.import_module(name[:-3])
    return list(harness.CASES)


def group_name(case):
    return "rg-" + case.id.replace("_", "-")[:60]


def table(outcomes):
    lines = ["| category | cases | held |", "| --- | --- | --- |"]
    for category in harness.CATEGORIES:
        mine = [o for o in outcomes if o.case.category == category]
        if mine:
            lines.append("| %s | %d | %d |" % (category, len(mine), sum(o.held for o in mine)))
    lines.append("| **total** | **%d** | **%d** |" % (len(outcomes), sum(o.held for o in outcomes)))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tests/faults/run.py")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--collections", default=os.path.join(harness.CHECKOUT, "build", "collections"))
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--only")
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    python = os.path.abspath(args.python) if os.sep in args.python else args.python
    collections = os.path.abspath(args.collections)
    if not os.path.isdir(os.path.join(collections, "ansible_collections", "azure_flex", "vmss")):
        parser.error("%s holds no ansible_collections/azure_flex/vmss (run make collection)" % collections)
    cases = load_cases()
    if args.only:
        pattern = re.compile(args.only, re.IGNORECASE)
        cases = [c for c in cases if pattern.search(c.id) or pattern.search(c.category)]
    if not cases:
        parser.error("no case selected")

    started = time.monotonic()
    state_dir = tempfile.mkdtemp(prefix="azure-flex-faults-")
    world = harness.World(python, collections, state_dir).start()
    outcomes = []
    # One world for every case that shares it; then each group of exclusive cases in a world of its own.
    groups = [[c for c in cases if not c.exclusive]]
    for c in cases:
        if c.exclusive:
            for group in groups[1:]:
                if group[0].group == c.group:
                    group.append(c)
                    break
            else:
                groups.append([c])
    try:
        for group in groups:
            if group:
                outcomes.extend(run_group(world, group, args.jobs))
    finally:
        world.stop()

    elapsed = time.monotonic() - started
    order = {category: index for index, category in enumerate(harness.CATEGORIES)}
    outcomes.sort(key=lambda o: (order[o.case.category], o.case.id))
    print()
    print(table(outcomes))
    print()
    failed = [o for o in outcomes if not o.held]
    for outcome in failed:
        print("NOT HELD %s (%s): %s\n    %s" % (outcome.case.id, outcome.case.category, outcome.case.title,
                                              outcome.detail.replace("\n", "\n    ")))
    print("%d cases, %d held, %d checks, in %.0f s (%s, %s)" % (
        len(outcomes), len(outcomes) - len(failed), sum(o.checks for o in outcomes), elapsed, python, collections))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump([{"id": o.case.id, "category": o.case.category, "title": o.case.title, "held": o.held,
                        "seconds": round(o.seconds, 2), "detail": o.detail} for o in outcomes], handle, indent=1)
    return 1 if failed else 0


def run_group(world, group, jobs):
    settings = group[0].settings
    if any(c.settings != settings for c in group):
        raise ValueError("the cases of group %s need different settings" % group[0].group)
    world.reset([harness.scale_set_group(group_name(c), c.members, extra=c.scenario) for c in group], settings)
    outcomes = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for future in [pool.submit(harness.run_case, world, c, group_name(c)) for c in group]:
            outcomes.append(future.result())
            _progress(outcomes[-1])
    return outcomes


def _progress(outcome):
    print("%s %-60s %5.1f s" % ("held   " if outcome.held else "NOT HELD", outcome.case.id, outcome.seconds), flush=True)


if __name__ == "__main__":
    sys.exit(main())
