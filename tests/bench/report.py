"""Write docs/performance.md from .bench/results.json (what bench.py measured).

    python tests/bench/report.py [RESULTS.json] [OUT.md]
"""

from __future__ import annotations

import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKOUT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import harness  # noqa: E402

# The floor of the 1,000-member scenario: the ARM write budget, (1,000 - 200 burst) / 10 a second.
SCALE_FLOOR = (1000 - 200) / 10.0
# A rolling batch's physical minimum: restart 4 s + health initializing 2 s (the emulator's timings).
ROLLING_BATCH_SECONDS = 4.0 + 2.0
# The role's own summary line: its time from the plan to the summary, and the batches the plan made.
ROLLING_SUMMARY = re.compile(r"finished in (?P<seconds>[\d.]+) s; batches run (?P<run>\d+)/(?P<batches>\d+)")


def rolling_figures(results, label):
    """(batches, role seconds summary) of a rolling row's good runs, from the role's summary line: the ideal is
    the plan's own batch count x one batch's minimum (batch_by auto makes fault-domain batches, so 100 members at
    20 % over three domains are 6 batches, not 5)."""
    batches, seconds = set(), []
    for run in runs(results, label):
        match = ROLLING_SUMMARY.search(run.get("output") or "") if run.get("ok") else None
        if match:
            batches.add(int(match.group("batches")))
            seconds.append(float(match.group("seconds")))
    return (batches.pop() if len(batches) == 1 else None), (harness.summarize(seconds) if seconds else None)


def runs(results, label):
    return results.get(label) or []


def timing(results, label, key="seconds"):
    values = [run[key] if run.get("ok") else None for run in runs(results, label)]
    return harness.summarize(values) if values else None


def counts(results, label):
    good = [run for run in runs(results, label) if run.get("ok") and run.get("counts")]
    return good[0]["counts"] if good else None


def memory(results, label):
    values = [run.get("maxrss_kb") for run in runs(results, label) if run.get("ok")]
    return max(values) if values else None


def cell(results, label, members=None, note=""):
    summary = timing(results, label)
    if not runs(results, label):
        return "not run"
    text = harness.seconds(summary)
    if summary is None:
        text += ": " + failure(results, label)
    described = harness.describe_counts(counts(results, label), members)
    if described:
        text += ", " + described
    if note:
        text += " " + note
    return text


def failure(results, label):
    outputs = [run.get("output") or "" for run in runs(results, label)]
    for output in outputs:
        match = re.search(r'"msg": "((?:[^"\\]|\\.){0,300})', output)
        if match:
            return match.group(1)
    return "see .bench/results.json"


def best(results, labels):
    found = [(timing(results, label), label) for label in labels]
    found = [(summary, label) for summary, label in found if summary]
    return min(found, key=lambda pair: pair[0]["median"]) if found else (None, None)


def rows(results):
    out = []
    for members in (12, 100):
        prefix = "restart%d/" % members
        ours = timing(results, prefix + "ours")
        peer_best, _label = best(results, [prefix + "peer-loop", prefix + "peer-async"])
        one = timing(results, prefix + "ours-one-member")
        ours_text = cell(results, prefix + "ours", members, "(default max_parallel 100)")
        if runs(results, prefix + "ours-max_parallel-10"):
            ours_text += "; max_parallel 10: " + cell(results, prefix + "ours-max_parallel-10")
        if one and ours:
            ours_text += "; one member: %s (%.2f × one member)" % (harness.seconds(one), ours["median"] / one["median"])
        out.append({
            "work": "restart %d members" % members,
            "ours": ours_text,
            "peer": "loop of azure_rm_virtualmachine: %s; the same with async/async_status: %s" % (
                cell(results, prefix + "peer-loop", members), cell(results, prefix + "peer-async", members)),
            "cli": "`az vm restart --ids` (%d ids): %s" % (members, cell(results, prefix + "cli", members)),
            "ratio": harness.ratio(peer_best, ours),
        })
    ours = timing(results, "list2000/ours-resource_graph")
    out.append({
        "work": "list 2,000 members",
        "ours": "Resource Graph: %s; compute: %s" % (cell(results, "list2000/ours-resource_graph"),
                                                     cell(results, "list2000/ours-compute", 2000)),
        "peer": "azure_rm_virtualmachine_info (resource group): %s; azure_rm_virtualmachinescalesetinstance_info: %s" % (
            cell(results, "list2000/peer-vm-info", 2000), cell(results, "list2000/peer-vmss-instance-info")),
        "cli": "`az vm list --vmss`: %s; with `-d`: %s" % (cell(results, "list2000/cli-vm-list"),
                                                            cell(results, "list2000/cli-vm-list-d", 2000)),
        "ratio": harness.ratio(timing(results, "list2000/peer-vm-info"), ours),
    })
    rolling = timing(results, "rolling100/ours")
    batches, role = rolling_figures(results, "rolling100/ours")
    ideal = batches * ROLLING_BATCH_SECONDS if batches else None
    down = [run.get("max_down") for run in runs(results, "rolling100/ours") if run.get("ok")]
    out.append({
        "work": "rolling restart 100 at 20 %",
        "ours": ("%s (whole ansible-playbook process: %s); the role from plan to summary: %s (%s); ideal %s; "
                 "at most %s down at once; with AZURE_FLEX_TOKEN_CACHE=persistent: %s") % (
            cell(results, "rolling100/ours", 100),
            "%.2f × ideal" % (rolling["median"] / ideal) if rolling and ideal else "n/a",
            harness.seconds(role) if role else "n/a",
            "%.2f × ideal" % (role["median"] / ideal) if role and ideal else "n/a",
            "%.0f s (%d batches × (restart 4 s + health 2 s))" % (ideal, batches) if ideal else "n/a",
            max(down) if down else "n/a", cell(results, "rolling100/ours-token-cache", 100)),
        "peer": "nothing comparable", "cli": "nothing comparable", "ratio": "",
    })
    out.append({
        "work": "one tiny task end to end (read one VM)",
        "ours": "%s, %s" % (cell(results, "tiny/ours"), harness.megabytes(memory(results, "tiny/ours"))),
        "peer": "azure_rm_virtualmachine_info name=…: %s, %s" % (
            cell(results, "tiny/peer"), harness.megabytes(memory(results, "tiny/peer"))),
        "cli": "", "ratio": harness.ratio(timing(results, "tiny/peer"), timing(results, "tiny/ours")),
    })
    imports = {label: (timing(results, "imports/" + label), memory(results, "imports/" + label))
               for label in ("ours-module_utils", "ours-with-sdks", "peer-azure_rm_common")}

    def imported(label):
        summary, kilobytes = imports[label]
        return "%s, %s" % (harness.seconds(summary), harness.megabytes(kilobytes)) if summary else "not run"

    out.append({
        "work": "import of module_utils (+ the SDKs one module needs)",
        "ours": "%s (%s)" % (imported("ours-module_utils"), imported("ours-with-sdks")),
        "peer": "azure_rm_common: %s" % imported("peer-azure_rm_common"), "cli": "",
        "ratio": harness.ratio(imports["peer-azure_rm_common"][0], imports["ours-with-sdks"][0]),
    })
    return out


def scale_section(results):
    scale = runs(results, "scale1000/ours")
    if not scale:
        return "Not run."
    lines = ["| run | wall time | × floor | restarted | ARM requests (a member) | 429 | first POST at | last POST at | "
             "polls | reads before / after the POSTs |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for index, run in enumerate(scale, 1):
        c, p = run.get("counts") or {}, run.get("phases") or {}
        lines.append("| %d | %.1f s | %.2f | %s / 1000 | %s (%.1f) | %s (%.2f %%) | %s s | %s s | %s | %s / %s |" % (
            index, run["seconds"], run["seconds"] / SCALE_FLOOR, run.get("restarted"), c.get("arm"),
            c.get("arm", 0) / 1000.0, c.get("throttled"), 100.0 * c.get("throttled", 0) / max(1, c.get("arm", 1)),
            p.get("first_action_at"), p.get("last_action_at"), p.get("polls"), p.get("reads_before"),
            p.get("reads_after")))
    return "\n".join(lines)


def render(results, machine):
    meta = results.get("_meta", {})
    table = harness.markdown_table(rows(results))
    return TEMPLATE.format(machine=machine, command=meta.get("command", "make bench"), reps=meta.get("reps"),
                           slow_reps=meta.get("slow_reps"), finished=meta.get("finished", "?"), table=table,
                           scale=scale_section(results), floor=SCALE_FLOOR)


TEMPLATE = """# Performance: side by side with azure.azcollection and the Azure CLI

Measured by `make bench` ({command}), finished {finished}, on {machine}. The machine is shared and noisy,
so absolute figures vary from run to run; every ratio compares runs made in the same `make bench` run. Each figure is
the median of {reps} runs with the range in brackets (the peer's and the CLI's one-VM-at-a-time runs over
100 members, and the runs marked as one, ran {slow_reps} time(s): they take about ten minutes each).

How: `tests/bench/bench.py` runs in a private network and mount namespace (`unshare -n -m`, loopback
only) in which a bind-mounted `/etc/hosts` maps `management.azure.com` and `login.microsoftonline.com`
to 127.0.0.1, where the ARM emulator listens on port 443 with a certificate naming those hosts
(`--cert-name`). All three tools use the public cloud unchanged and trust the emulator's CA through
`REQUESTS_CA_BUNDLE`; nothing leaves the machine. The peer is azure.azcollection as shipped in the
`ansible` package from PyPI, with the requirements file from inside that package, unmodified, in its own
venv (`.bench/venv-peer`); the Azure CLI is `azure-cli` from PyPI in its own venv (`.bench/venv-cli`).
Emulator timings: restart 4 s, Retry-After 1 s, health `initializing` 2 s. Request counts and token
fetches come from the emulator's request log (`GET /_emulator/requests`). The peer is given the member
names (it cannot list a Flexible set's members: see below); this collection selects them itself
(`instances: all`), and that listing is part of its figures. Rows other than the scale scenario run with
the emulator's rate limits off, as the issue's figures were.

{table}

Peer modules on Flexible members: `azure_rm_virtualmachinescalesetinstance_info` fails as shown (it reads
the Uniform-only scale-set VM instance view); `azure_rm_virtualmachinescalesetinstance` (power state,
delete) goes through the same Uniform VMSS-VM API, which Flexible sets refuse (`instanceId must be a
number`); the peer's best way is therefore one `azure_rm_virtualmachine` task per VM (`restarted: true`),
looped, or started in the background with `async`/`poll: 0` and awaited with `async_status`.

## 1,000 members at Azure's real rate limits

One `flex_instance_action action=restart instances=all` task (default `max_parallel`, 100) against the
emulator with `rate_limits: true`: ARM's token buckets (reads 250 then 25/s, writes 200 then 10/s,
deletes 200 then 10/s, per subscription and principal) and Compute's per-VM and per-subscription
policies, each refusal a 429 with Retry-After. The floor is ARM's write budget: (1,000 − 200) / 10 =
{floor:.0f} s of POSTs.

{scale}

The POSTs run at the floor: the collection paces every request by the shared budget that ARM's
`x-ms-ratelimit-remaining-subscription-*` headers report (`_resilience.RateBudget`), so the 1,000 POSTs
take 80 s from the first to the last with few or no 429s (counted above), and polls share the read budget (first polls
put off to when operations of the kind usually finish, `_resilience.OperationTimer`). The reads before and
after the POSTs are few: the current state of many members comes from one listing of the scale set's VMs
with their instance views (`$expand=instanceView`, 100 VMs a page), before deciding and again after
acting, not one read per member (which cost 2,000 reads, about 70 s of read budget, and 1.94 × the floor
before). What is left above the floor is the last operations' completion and the final listing.

## Timeline of the rolling restart

![Rolling restart of 100 members, batches of 20 %](rolling-timeline.png)

`docs/rolling-timeline.png`, drawn from the emulator's event log of the fastest measured rolling restart
(`tests/bench/timeline.py`): one row per member, time across, colour by power state and health, a band
per batch.

## Reproduce

```sh
make bench                       # everything (about 45 minutes); BENCH_REPS=1 for a quicker pass
make bench BENCH_ONLY=scale1000  # one row (restart12, restart100, list2000, rolling100, tiny, imports, scale1000)
make bench-selftest              # the harness's pure parts (part of make test)
```
"""


def main(argv):
    results_path = argv[0] if argv else os.path.join(CHECKOUT, ".bench", "results.json")
    out = argv[1] if len(argv) > 1 else os.path.join(CHECKOUT, "docs", "performance.md")
    with open(results_path, encoding="utf-8") as handle:
        results = json.load(handle)
    with open("/proc/meminfo", encoding="ascii") as handle:
        memory_kb = int(handle.readline().split()[1])
    machine = harness.machine_description(os.cpu_count() or 0, memory_kb)
    with open(out, "w", encoding="utf-8") as handle:
        handle.write(render(results, machine))
    print("wrote %s" % out)


if __name__ == "__main__":
    main(sys.argv[1:])
