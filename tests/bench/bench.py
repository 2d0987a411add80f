"""`make bench`: this collection, azure.azcollection and the Azure CLI on the same work, in one run.

    python tests/bench/bench.py [--reps 3] [--slow-reps 1] [--only ROW,...] [--out docs/performance.md]

Run as root: it re-runs itself in a private network and mount namespace (``unshare -n -m``: loopback
only, nothing leaves the machine), where ``/etc/hosts`` (bind-mounted) maps management.azure.com and
login.microsoftonline.com to 127.0.0.1 and the ARM emulator listens on 127.0.0.1:443 with a certificate
naming those hosts. All three tools use the public cloud unchanged (AzureCloud), trust the emulator's CA
through REQUESTS_CA_BUNDLE, and authenticate as the same service principal.

Each row runs every tool's variants in the same run, ``--reps`` times (median and range), after a reset of
the emulator to the row's world; requests and token fetches are counted from the emulator's request log.
The peer's one-VM-at-a-time loop over 100 members takes about ten minutes a run, so it runs
``--slow-reps`` times. Results go to ``--out`` (markdown) and ``.bench/results.json``; the rolling restart's
timeline to ``docs/rolling-timeline.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKOUT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(CHECKOUT, "tests", "emulator"))

import harness  # noqa: E402
from armemu.launcher import Emulator  # noqa: E402

BENCH_DIR = os.path.join(CHECKOUT, ".bench")
OURS_VENV = os.path.join(CHECKOUT, ".venv")
PEER_VENV = os.path.join(BENCH_DIR, "venv-peer")
CLI_VENV = os.path.join(BENCH_DIR, "venv-cli")
PLOT_PYTHON = os.path.join(BENCH_DIR, "venv-plot", "bin", "python")
PLAYBOOKS = os.path.join(HERE, "playbooks")
ROWS = ("restart12", "restart100", "list2000", "rolling100", "tiny", "imports", "scale1000")


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="bench-", dir=BENCH_DIR)
        self.emulator = None
        self.results = {}
        self.ca_path = None

    # -- environment -----------------------------------------------------------------------------

    def start_emulator(self):
        self.emulator = Emulator(state_dir=os.path.join(self.work, "emulator"),
                                 python=os.path.join(OURS_VENV, "bin", "python"), port=443,
                                 cert_names=harness.PUBLIC_HOSTS)
        self.emulator.start(timeout=60)
        self.ca_path = self.emulator.env["REQUESTS_CA_BUNDLE"]

    def base_env(self, venv):
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("AZURE_", "ANSIBLE_", "ARM_", "MSAL_")) and key not in (
                   "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "VIRTUAL_ENV", "PYTHONPATH")}
        env.update(harness.client_environment(self.ca_path))
        env["PATH"] = os.path.join(venv, "bin") + os.pathsep + env.get("PATH", "")
        env.update(ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0",
                   ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
                   ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_SYSTEM_WARNINGS="0",
                   ANSIBLE_PYTHON_INTERPRETER=os.path.join(venv, "bin", "python"))
        return env

    def ours_env(self, **extra):
        env = self.base_env(OURS_VENV)
        env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(CHECKOUT, "build", "collections")
        env["HOME"] = os.path.join(self.work, "home-ours")
        os.makedirs(env["HOME"], exist_ok=True)
        env.update(extra)
        return env

    def peer_env(self):
        env = self.base_env(PEER_VENV)
        # Only the collections that ship with the ansible package (azure.azcollection among them).
        env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(self.work, "no-collections")
        env["HOME"] = os.path.join(self.work, "home-peer")
        env["ANSIBLE_ASYNC_DIR"] = os.path.join(env["HOME"], ".ansible_async")
        os.makedirs(env["HOME"], exist_ok=True)
        return env

    def cli_env(self):
        env = self.base_env(CLI_VENV)
        env["AZURE_CONFIG_DIR"] = os.path.join(self.work, "azure-cli")
        env["AZURE_CORE_COLLECT_TELEMETRY"] = "false"
        env["AZURE_CORE_NO_COLOR"] = "true"
        env["AZURE_CORE_ONLY_SHOW_ERRORS"] = "true"
        return env

    # -- measuring ---------------------------------------------------------------------------------

    def measure(self, command, env, world=None, members=None):
        """Reset to ``world`` (when given), run ``command``, return its figures and the request log slice."""
        if world is not None:
            self.emulator.reset(world)
        mark = self.emulator.request_count()
        event_mark = len(self.emulator.events())
        out = os.path.join(self.work, "measure.json")
        subprocess.run([sys.executable, os.path.join(HERE, "measure.py"), out, "--"] + command, env=env, check=True)
        with open(out, encoding="utf-8") as handle:
            figures = json.load(handle)
        entries = self.emulator.requests(mark)
        figures["counts"] = harness.count_requests(entries)
        figures["phases"] = harness.phases(entries)
        figures["entries"] = entries
        figures["events"] = self.emulator.events(event_mark)
        figures["members"] = members
        if figures["rc"] != 0:
            print("    exit status %s; output tail:\n%s" % (figures["rc"], figures["output"][-1500:]), flush=True)
        return figures

    def repeat(self, label, runs, make):
        """Run ``make()`` ``runs`` times; keep the figures of every run under ``label``."""
        outcomes = []
        for index in range(runs):
            figures = make()
            ok = figures["rc"] == 0 and figures.get("ok", True)
            print("  %-34s run %d: %6.1f s  rc=%s  %s" % (
                label, index + 1, figures["seconds"], figures["rc"], harness.describe_counts(
                    figures["counts"], figures.get("members"))), flush=True)
            if self.args.verbose:
                print("      phases: %s" % figures.get("phases"), flush=True)
            outcomes.append(dict(figures, ok=ok))
        self.results[label] = [{key: value for key, value in outcome.items() if key not in ("entries", "events")}
                               for outcome in outcomes]
        return outcomes

    def playbook(self, venv, name, extra_vars):
        path = os.path.join(self.work, "vars-%d.json" % int(time.monotonic() * 1000))
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(extra_vars, handle)
        return [os.path.join(venv, "bin", "ansible-playbook"), "-i", "localhost,", "-c", "local",
                "-e", "@" + path, os.path.join(PLAYBOOKS, name)]

    def member_names(self, set_name):
        token = requests.post("https://login.microsoftonline.com/%s/oauth2/v2.0/token" % harness.TENANT,
                              data={"grant_type": "client_credentials", "client_id": harness.CLIENT_ID,
                                    "client_secret": harness.SECRET,
                                    "scope": harness.PUBLIC_AUDIENCE + ".default"},
                              verify=self.ca_path, timeout=30).json()["access_token"]
        url = ("https://management.azure.com/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/"
               "virtualMachineScaleSets/%s/virtualMachines?api-version=2024-07-01" % (
                   harness.SUBSCRIPTION, harness.RESOURCE_GROUP, set_name))
        names = []
        while url:
            page = requests.get(url, headers={"Authorization": "Bearer " + token}, verify=self.ca_path,
                                timeout=60).json()
            names += [item["name"] for item in page["value"]]
            url = page.get("nextLink")
        return sorted(names)

    def vm_ids(self, names):
        return ["/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s" % (
            harness.SUBSCRIPTION, harness.RESOURCE_GROUP, name) for name in names]

    def cli_login(self, env):
        subprocess.run([os.path.join(CLI_VENV, "bin", "az"), "login", "--service-principal", "-u", harness.CLIENT_ID,
                        "-p", harness.SECRET, "--tenant", harness.TENANT, "--output", "none"],
                       env=env, check=True, stdout=subprocess.DEVNULL)

    # -- rows --------------------------------------------------------------------------------------

    def restart_row(self, members, set_name):
        world = harness.world(set_name, members)
        self.emulator.reset(world)
        names = self.member_names(set_name)
        common = {"bench_rg": harness.RESOURCE_GROUP, "bench_set": set_name}
        reps, slow = self.args.reps, self.args.slow_reps
        label = "restart%d" % members

        def ours(max_parallel=None, instances="all"):
            extra = dict(common, bench_instances=instances)
            if max_parallel:
                extra["bench_max_parallel"] = max_parallel
            figures = self.measure(self.playbook(OURS_VENV, "ours_action.yml", extra), self.ours_env(), world, members)
            wanted = names if instances == "all" else instances
            figures["ok"] = harness.restarted_members(figures["entries"], wanted) == set(wanted)
            return figures

        self.repeat(label + "/ours", reps, ours)
        self.repeat(label + "/ours-one-member", reps, lambda: ours(instances=names[:1]))
        if members > 10:
            self.repeat(label + "/ours-max_parallel-10", reps, lambda: ours(max_parallel=10))
        if not self.args.skip_peer:
            def peer(playbook):
                figures = self.measure(self.playbook(PEER_VENV, playbook, dict(common, bench_members=names)),
                                       self.peer_env(), world, members)
                figures["ok"] = harness.restarted_members(figures["entries"], names) == set(names)
                return figures
            self.repeat(label + "/peer-loop", reps if members <= 12 else slow, lambda: peer("peer_restart_loop.yml"))
            self.repeat(label + "/peer-async", reps if members <= 12 else slow, lambda: peer("peer_restart_async.yml"))
        if not self.args.skip_cli:
            env = self.cli_env()
            self.cli_login(env)

            def cli():
                figures = self.measure([os.path.join(CLI_VENV, "bin", "az"), "vm", "restart", "--ids"]
                                       + self.vm_ids(names) + ["--output", "none"], env, world, members)
                figures["ok"] = harness.restarted_members(figures["entries"], names) == set(names)
                return figures
            self.repeat(label + "/cli", reps if members <= 12 else slow, cli)

    def list_row(self):
        members, set_name = 2000, "big"
        world = harness.world(set_name, members, application_health=False)
        self.emulator.reset(world)
        common = {"bench_rg": harness.RESOURCE_GROUP, "bench_set": set_name}
        reps = self.args.reps
        for source in ("resource_graph", "compute"):
            self.repeat("list2000/ours-%s" % source, reps, lambda source=source: self.measure(
                self.playbook(OURS_VENV, "ours_list.yml", dict(common, bench_source=source)), self.ours_env(),
                None, members))
        if not self.args.skip_peer:
            self.repeat("list2000/peer-vm-info", reps, lambda: self.measure(
                self.playbook(PEER_VENV, "peer_vm_info.yml", common), self.peer_env(), None, members))
            self.repeat("list2000/peer-vmss-instance-info", 1, lambda: self.measure(
                self.playbook(PEER_VENV, "peer_vmss_instance_info.yml", common), self.peer_env(), None, members))
        if not self.args.skip_cli:
            env = self.cli_env()
            self.cli_login(env)
            self.repeat("list2000/cli-vm-list", reps, lambda: self.measure(
                [os.path.join(CLI_VENV, "bin", "az"), "vm", "list", "-g", harness.RESOURCE_GROUP, "--vmss", set_name,
                 "--output", "none"], env, None, members))
            self.repeat("list2000/cli-vm-list-d", 1, lambda: self.measure(
                [os.path.join(CLI_VENV, "bin", "az"), "vm", "list", "-g", harness.RESOURCE_GROUP, "--vmss", set_name,
                 "-d", "--output", "none"], env, None, members))

    def rolling_row(self):
        members, set_name = 100, "web"
        world = harness.world(set_name, members)
        common = {"bench_rg": harness.RESOURCE_GROUP, "bench_set": set_name}
        best = {}

        def run(label, env):
            figures = self.measure(self.playbook(OURS_VENV, "ours_rolling.yml", common), env, world, members)
            segments = harness.timeline_segments(figures["events"])
            figures["max_down"] = harness.max_down(segments)
            if figures["rc"] == 0 and (not best or figures["seconds"] < best["figures"]["seconds"]) and label == "ours":
                best.update(figures=figures)
            return figures

        self.repeat("rolling100/ours", self.args.reps, lambda: run("ours", self.ours_env()))
        # A fresh home each run: the cache starts empty, as in a new AWX job.
        self.repeat("rolling100/ours-token-cache", self.args.reps, lambda: run(
            "cache", self.ours_env(AZURE_FLEX_TOKEN_CACHE="persistent", HOME=tempfile.mkdtemp(dir=self.work))))
        if best:
            events_path = os.path.join(BENCH_DIR, "rolling-events.json")
            with open(events_path, "w", encoding="utf-8") as handle:
                json.dump(best["figures"]["events"], handle)
            self.results["rolling100/events"] = events_path

    def tiny_row(self):
        world = harness.world("tiny", 3)
        self.emulator.reset(world)
        name = self.member_names("tiny")[0]
        common = {"bench_rg": harness.RESOURCE_GROUP, "bench_set": "tiny"}
        self.repeat("tiny/ours", self.args.reps, lambda: self.measure(
            self.playbook(OURS_VENV, "ours_list.yml", dict(common, bench_source="compute", bench_instances=[name])),
            self.ours_env(), None, 1))
        if not self.args.skip_peer:
            self.repeat("tiny/peer", self.args.reps, lambda: self.measure(
                self.playbook(PEER_VENV, "peer_vm_info.yml", dict(common, bench_vm=name)), self.peer_env(), None, 1))

    def imports_row(self):
        ours_utils = ("import ansible_collections.azure_flex.vmss.plugins.module_utils.%s"
                      % ", ansible_collections.azure_flex.vmss.plugins.module_utils.".join(
                          ("_module", "_selection", "_locks", "_network", "_nat", "_extensions")))
        ours_sdks = ("import azure.identity, azure.mgmt.compute, azure.mgmt.resourcegraph; "
                     "azure.mgmt.compute.ComputeManagementClient; azure.mgmt.resourcegraph.ResourceGraphClient")
        peer = "import ansible_collections.azure.azcollection.plugins.module_utils.azure_rm_common"
        probe = ("import resource, time; t = time.perf_counter(); %s; "
                 "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        cases = [("imports/ours-module_utils", OURS_VENV, ours_utils, os.path.join(CHECKOUT, "build", "collections")),
                 ("imports/ours-with-sdks", OURS_VENV, ours_utils + "; " + ours_sdks,
                  os.path.join(CHECKOUT, "build", "collections")),
                 ("imports/peer-azure_rm_common", PEER_VENV, peer, None)]
        for label, venv, statement, path in cases:
            if venv == PEER_VENV and self.args.skip_peer:
                continue
            outcomes = []
            for _ in range(self.args.reps):
                env = dict(os.environ, PYTHONPATH=path or "")
                output = subprocess.run([os.path.join(venv, "bin", "python"), "-c", probe % statement], env=env,
                                        check=True, capture_output=True, text=True).stdout.split()
                outcomes.append({"seconds": float(output[0]), "maxrss_kb": int(output[1]), "rc": 0, "ok": True,
                                 "counts": None})
                print("  %-34s %.2f s, %s" % (label, outcomes[-1]["seconds"], harness.megabytes(int(output[1]))),
                      flush=True)
            self.results[label] = outcomes

    def scale_row(self):
        members, set_name = 1000, "scale"
        world = harness.world(set_name, members, rate_limits=True, application_health=False)
        self.emulator.reset(world)
        names = self.member_names(set_name)

        def run():
            figures = self.measure(self.playbook(OURS_VENV, "ours_action.yml", {
                "bench_rg": harness.RESOURCE_GROUP, "bench_set": set_name, "bench_instances": "all"}),
                self.ours_env(), world, members)
            figures["restarted"] = len(harness.restarted_members(figures["entries"], names))
            figures["ok"] = figures["restarted"] == members
            return figures

        self.repeat("scale1000/ours", self.args.scale_reps, run)

    # -- main --------------------------------------------------------------------------------------

    def run(self):
        rows = self.args.only.split(",") if self.args.only else list(ROWS)
        self.start_emulator()
        try:
            for row in rows:
                print("== %s" % row, flush=True)
                started = time.monotonic()
                {"restart12": lambda: self.restart_row(12, "web"), "restart100": lambda: self.restart_row(100, "web"),
                 "list2000": self.list_row, "rolling100": self.rolling_row, "tiny": self.tiny_row,
                 "imports": self.imports_row, "scale1000": self.scale_row}[row]()
                print("   (%s took %.0f s)" % (row, time.monotonic() - started), flush=True)
        finally:
            self.emulator.stop()
        results_path = os.path.join(BENCH_DIR, "results.json")
        previous = {}
        if self.args.only and os.path.exists(results_path):
            with open(results_path, encoding="utf-8") as handle:
                previous = json.load(handle)
        previous.update(self.results)
        previous["_meta"] = {"command": " ".join(sys.argv), "reps": self.args.reps, "slow_reps": self.args.slow_reps,
                             "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        with open(results_path, "w", encoding="utf-8") as handle:
            json.dump(previous, handle, indent=1)
        print("results: %s" % results_path)
        events = previous.get("rolling100/events")
        if events and os.path.exists(events) and os.path.exists(PLOT_PYTHON):
            subprocess.run([PLOT_PYTHON, os.path.join(HERE, "timeline.py"), events,
                            os.path.join(CHECKOUT, "docs", "rolling-timeline.png"),
                            "Rolling restart of 100 members, batches of 20 %"], check=True)
        subprocess.run([sys.executable, os.path.join(HERE, "report.py"), results_path,
                        os.path.join(CHECKOUT, "docs", "performance.md")], check=True)
        return 0


def enter_namespace():
    """Re-run this script in a private network + mount namespace, with the public hosts on the loopback."""
    if os.environ.get("AZURE_FLEX_BENCH_NAMESPACE") == "1":
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        hosts = os.path.join(BENCH_DIR, "hosts")
        with open(hosts, "w", encoding="utf-8") as handle:
            handle.write(harness.hosts_file())
        subprocess.run(["mount", "--bind", hosts, "/etc/hosts"], check=True)
        return None
    if os.geteuid() != 0:
        raise SystemExit("bench.py needs root for unshare -n -m (a private network and mount namespace)")
    env = dict(os.environ, AZURE_FLEX_BENCH_NAMESPACE="1")
    return subprocess.call(["unshare", "--net", "--mount", sys.executable] + sys.argv, env=env)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_REPS", "3")))
    parser.add_argument("--slow-reps", type=int, default=int(os.environ.get("BENCH_SLOW_REPS", "1")))
    parser.add_argument("--scale-reps", type=int, default=int(os.environ.get("BENCH_SCALE_REPS", "3")))
    parser.add_argument("--only", default=os.environ.get("BENCH_ONLY", ""), help="rows: " + ",".join(ROWS))
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print where each run's requests and time went")
    args = parser.parse_args(argv)
    os.makedirs(BENCH_DIR, exist_ok=True)
    status = enter_namespace()
    if status is not None:
        return status
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
