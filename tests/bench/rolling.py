"""The rolling restart against its physical limit: measured time next to the ideal, in one run.

    .venv/bin/python tests/bench/rolling.py [--runs 1] [--only demo|100]

For each scenario it starts from a fresh emulator state (tests/emulator/scenarios/<scenario>.yml), runs the
demo playbook (playbooks/demo.yml: the role azure_flex.vmss.rolling_restart with its defaults, a health poll
of 1 s) with ansible-playbook, and prints:

* the number of batches the plan made, and the ideal: batches x (restart + health initializing), the
  durations the scenario gives the emulator (nothing can go faster: a batch's members are down for the
  restart, then initializing, and the next batch may only start once they serve again);
* the measured time of the role's run (from its plan to its summary, as the summary reports it) and of the
  whole ansible-playbook process, each as a ratio of the ideal;
* from the emulator's event log: the most members down at once (against the batch size), whether any two
  members of different fault domains were down together, and how often each member was restarted.

Exits 1 when a ratio target (100 members at 20 %: 1.15; the 12-member demo: 1.3, both on the role's time) or
an event-log check is missed. Needs `make venv collection` first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

import yaml

CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EMULATOR_DIR = os.path.join(CHECKOUT, "tests", "emulator")
sys.path.insert(0, EMULATOR_DIR)

from armemu.launcher import Emulator  # noqa: E402  (the process harness and control-API client)

PYTHON = os.path.join(CHECKOUT, ".venv", "bin", "python")
PLAYBOOK = os.path.join(CHECKOUT, "playbooks", "demo.yml")
SCENARIOS = {
    "100": {"file": os.path.join(EMULATOR_DIR, "scenarios", "rolling100.yml"), "target": 1.15,
            "label": "rolling restart, 100 members, 20 %"},
    "demo": {"file": os.path.join(EMULATOR_DIR, "scenarios", "demo.yml"), "target": 1.3,
             "label": "make demo, 12 members, 20 %"},
}
SUMMARY_LINE = re.compile(r"run (?P<run>\S+): restart of \S+ (?P<state>finished|STOPPED) in (?P<seconds>[\d.]+) s; "
                          r"batches run (?P<run_batches>\d+)/(?P<batches>\d+) \(at most (?P<size>\d+) members")
SET = ("demo-rg", "web")


def ideal_seconds(scenario, batches):
    settings = scenario.get("settings") or {}
    durations = settings.get("durations") or {}
    per_batch = float(durations.get("restart", 3.0)) + float(durations.get("health_initializing", 2.0))
    return batches * per_batch * float(settings.get("time_scale", 1.0))


def replay(events, domain_of):
    """From the event log: the most members down at once (not running, or health unknown, initializing or
    unhealthy), how often members of two domains were down together, and how many times each member was
    restarted (a transition into power state starting)."""
    down, peak, mixed, boots, power = set(), 0, 0, {}, {}
    for event in events:
        name = event["vm"]
        if name not in domain_of:
            continue
        if event.get("power_state") == "starting" and power.get(name) != "starting":
            boots[name] = boots.get(name, 0) + 1
        power[name] = event.get("power_state")
        down.discard(name)
        if event.get("power_state") != "running" or event.get("health") in ("unknown", "initializing", "unhealthy"):
            down.add(name)
        peak = max(peak, len(down))
        if len({domain_of[n] for n in down}) > 1:
            mixed += 1
    return peak, mixed, boots


def members(emulator):
    """Name -> fault domain of the set's members, read from the emulator's ARM API (a token, one VM list)."""
    env = emulator.env
    import requests  # pylint: disable=import-outside-toplevel

    token = requests.post("%s/%s/oauth2/v2.0/token" % (env["AZURE_CLOUD_ENVIRONMENT"], env["AZURE_TENANT"]),
                          data={"grant_type": "client_credentials", "client_id": env["AZURE_CLIENT_ID"],
                                "client_secret": env["AZURE_SECRET"],
                                "scope": "https://management.emulator.invalid/.default"},
                          verify=env["REQUESTS_CA_BUNDLE"], timeout=30).json()["access_token"]
    url = "%s/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines" % (
        env["AZURE_CLOUD_ENVIRONMENT"], env["AZURE_SUBSCRIPTION_ID"], SET[0])
    result = {}
    while url:
        page = requests.get(url, params={"api-version": "2024-07-01"} if "api-version" not in url else None,
                            headers={"Authorization": "Bearer " + token}, verify=env["REQUESTS_CA_BUNDLE"],
                            timeout=30).json()
        for vm in page.get("value") or []:
            owner = ((vm.get("properties") or {}).get("virtualMachineScaleSet") or {}).get("id") or ""
            if owner.lower().endswith("/virtualmachinescalesets/" + SET[1]):
                result[vm["name"]] = (vm.get("properties") or {}).get("platformFaultDomain")
        url = page.get("nextLink")
    return result


def run_one(emulator, key):
    spec = SCENARIOS[key]
    with open(spec["file"], encoding="utf-8") as handle:
        scenario = yaml.safe_load(handle)
    emulator.reset(spec["file"])
    domain_of = members(emulator)
    emulator.control("DELETE", "events")
    env = dict(os.environ, **{name: str(value) for name, value in emulator.env.items()})
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(CHECKOUT, "build", "collections")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    started = time.monotonic()
    process = subprocess.run([os.path.join(CHECKOUT, ".venv", "bin", "ansible-playbook"), "-e",
                              "ansible_python_interpreter=%s" % PYTHON, PLAYBOOK],
                             env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    output = process.stdout + process.stderr
    match = SUMMARY_LINE.search(output)
    if process.returncode != 0 or not match:
        sys.stdout.write(output[-4000:])
        raise SystemExit("%s: the playbook failed (rc %s)" % (key, process.returncode))
    batches = int(match.group("batches"))
    size = int(match.group("size"))
    ideal = ideal_seconds(scenario, batches)
    role = float(match.group("seconds"))
    peak, mixed, boots = replay(emulator.events(), domain_of)
    return {"key": key, "label": spec["label"], "members": len(domain_of), "batches": batches, "size": size,
            "ideal": ideal, "role": role, "wall": wall, "role_ratio": role / ideal, "wall_ratio": wall / ideal,
            "target": spec["target"], "peak": peak, "mixed": mixed,
            "once": sorted(boots) == sorted(domain_of) and set(boots.values()) == {1},
            "lines": output.count("\n")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=1, help="runs of each scenario (the median is judged)")
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append")
    args = parser.parse_args(argv)
    keys = args.only or ["100", "demo"]
    failures = []
    rows = []
    with Emulator(python=PYTHON) as emulator:
        for key in keys:
            results = [run_one(emulator, key) for _run in range(args.runs)]
            role = statistics.median(result["role"] for result in results)
            wall = statistics.median(result["wall"] for result in results)
            first = results[0]
            row = dict(first, role=role, wall=wall, role_ratio=role / first["ideal"], wall_ratio=wall / first["ideal"],
                       runs=[round(result["role"], 1) for result in results])
            rows.append(row)
            if row["role_ratio"] > row["target"]:
                failures.append("%s: %.2f x the ideal, target %.2f" % (key, row["role_ratio"], row["target"]))
            if any(result["peak"] > result["size"] for result in results):
                failures.append("%s: more members down at once than a batch holds" % key)
            if any(result["mixed"] for result in results):
                failures.append("%s: members of two fault domains were down together" % key)
            if not all(result["once"] for result in results):
                failures.append("%s: not every member was restarted exactly once" % key)
    print("| scenario | members | batches (size) | ideal s | role s | x ideal (target) | playbook s | x ideal "
          "| most down | domains mixed | each restarted once | output lines |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print("| %s | %d | %d (%d) | %.1f | %.1f %s | %.2f (%.2f) | %.1f | %.2f | %d | %s | %s | %d |" % (
            row["label"], row["members"], row["batches"], row["size"], row["ideal"], row["role"],
            "(runs %s)" % row["runs"] if len(row["runs"]) > 1 else "", row["role_ratio"], row["target"], row["wall"],
            row["wall_ratio"], row["peak"], "no" if not row["mixed"] else "yes (%d)" % row["mixed"],
            "yes" if row["once"] else "no", row["lines"]))
    print(json.dumps({"ok": not failures, "failures": failures}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
