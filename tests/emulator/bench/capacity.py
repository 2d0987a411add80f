"""Capacity benchmark of the ARM emulator, driven only through the public SDKs and /_emulator/.

    .venv/bin/python tests/emulator/bench/capacity.py [--vms 2000] [--concurrent 200]
                                                      [--duration 3] [--queries 40]

Measures and prints:
  1. a scenario of N VMs in one Flexible scale set: reset time, listing them through the
     compute SDK (nextLink paging) and through Resource Graph (1,000 rows a page, $skipToken);
  2. C concurrent long-running operations: C VMs restarted at once through the SDK from a
     thread pool; every one must succeed, and the latency (p50 / p95 / max) is compared with
     the configured duration (a stall = max latency beyond duration + Retry-After + 1.5 s);
  3. the latency of one Resource Graph page over the N VMs (median and p95; target < 200 ms).

Exits 1 when a target is missed. ``run(...)`` is what the pytest wrapper calls with smaller numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

EMULATOR_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, EMULATOR_DIR)

from armemu.launcher import Emulator  # noqa: E402  (the process harness and control-API client)

RG = "cap-rg"
SET = "big"
GRAPH_TARGET_MS = 200.0
RESET_TARGET_S = 30.0
RETRY_AFTER = 1
STALL_SLACK = 1.5


def scenario(vms):
    return {
        "settings": {"time_scale": 1.0, "retry_after": RETRY_AFTER},
        "resource_groups": [{
            "name": RG, "location": "eastus",
            "virtual_networks": [{"name": "vnet", "address_prefix": "10.0.0.0/16",
                                  "subnets": [{"name": "default", "address_prefix": "10.0.0.0/18"}]}],
            "scale_sets": [{"name": SET, "instances": vms, "subnet": "vnet/default",
                            "platform_fault_domain_count": 3}],
        }],
    }


class Clients:
    """SDK clients built the way a user of a private cloud builds them (metadata endpoint)."""

    def __init__(self, emu):
        import requests
        from azure.identity import ClientSecretCredential

        env = emu.env
        self.verify = env["REQUESTS_CA_BUNDLE"]
        meta = requests.get(env["AZURE_CLOUD_ENVIRONMENT"] + "/metadata/endpoints?api-version=2022-09-01",
                            verify=self.verify, timeout=10).json()
        self.subscription_id = env["AZURE_SUBSCRIPTION_ID"]
        self.credential = ClientSecretCredential(
            env["AZURE_TENANT"], env["AZURE_CLIENT_ID"], env["AZURE_SECRET"],
            authority=meta["authentication"]["loginEndpoint"], disable_instance_discovery=True,
            connection_verify=self.verify)
        self.kwargs = dict(base_url=meta["resourceManager"],
                           credential_scopes=[meta["authentication"]["audiences"][0] + "/.default"],
                           connection_verify=self.verify, polling_interval=1)
        self._local = threading.local()

    def compute(self):
        """One client per thread: a requests session is not meant to be shared by 200 threads."""
        from azure.mgmt.compute import ComputeManagementClient

        client = getattr(self._local, "compute", None)
        if client is None:
            client = self._local.compute = ComputeManagementClient(self.credential, self.subscription_id,
                                                                   **self.kwargs)
        return client

    def graph(self):
        from azure.mgmt.resourcegraph import ResourceGraphClient

        client = getattr(self._local, "graph", None)
        if client is None:
            client = self._local.graph = ResourceGraphClient(self.credential, **self.kwargs)
        return client


def percentile(values, fraction):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(fraction * (len(ordered) - 1)))))
    return ordered[index]


def graph_page(clients, query, top=1000, skip_token=None):
    from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

    options = QueryRequestOptions(top=top, skip_token=skip_token, result_format="objectArray")
    return clients.graph().resources(QueryRequest(subscriptions=[clients.subscription_id], query=query,
                                                  options=options))


def discovery_query(subscription_id):
    set_id = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachineScaleSets/%s" % (
        subscription_id, RG, SET)
    return ("Resources | where type =~ 'microsoft.compute/virtualmachines'"
            " | where properties.virtualMachineScaleSet.id =~ '%s'"
            " | extend powerState = tostring(properties.extended.instanceView.powerState.code)"
            " | project id, name, zones, fd = properties.platformFaultDomain, powerState"
            " | order by name asc" % set_id)


def run(vms=2000, concurrent=200, duration=3.0, queries=40, emulator=None, out=print):
    """Run the three measurements; returns (rows, failures) where rows are (measure, value, target, ok)."""
    rows = []
    failures = []

    def record(measure, value, target, ok):
        rows.append((measure, value, target, ok))
        if not ok:
            failures.append(measure)

    own = emulator is None
    emu = emulator or Emulator(state_dir=tempfile.mkdtemp(prefix="armemu-bench-")).start(timeout=60)
    try:
        # 1. A big Flexible scale set --------------------------------------------------------
        started = time.perf_counter()
        emu.reset(scenario(vms))
        reset_s = time.perf_counter() - started
        record("reset to %d VMs" % vms, "%.2f s" % reset_s, "< %.0f s" % RESET_TARGET_S, reset_s < RESET_TARGET_S)
        clients = Clients(emu)
        compute = clients.compute()
        set_id = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachineScaleSets/%s" % (
            clients.subscription_id, RG, SET)
        before = emu.request_count()
        started = time.perf_counter()
        names = [vm.name for vm in compute.virtual_machines.list(
            RG, filter="'virtualMachineScaleSet/id' eq '%s'" % set_id)]
        list_s = time.perf_counter() - started
        pages = len([e for e in emu.requests(before) if e["path"].endswith("/virtualMachines")])
        page_size = emu.settings()["page_size"]
        expected_pages = -(-vms // page_size)
        record("compute list (%d pages of %d)" % (pages, page_size), "%.2f s" % list_s,
               "%d VMs, %d pages" % (vms, expected_pages),
               len(names) == vms == len(set(names)) and pages == expected_pages)
        query = discovery_query(clients.subscription_id)
        started = time.perf_counter()
        seen, token, graph_pages = [], None, 0
        while True:
            result = graph_page(clients, query, skip_token=token)
            graph_pages += 1
            seen += [row["name"] for row in result.data]
            if result.count > 1000:
                break
            token = result.skip_token
            if not token:
                break
        graph_s = time.perf_counter() - started
        expected_graph_pages = -(-vms // 1000)
        record("graph paging (%d pages)" % graph_pages, "%.2f s" % graph_s,
               "%d rows, <=1000/page" % vms,
               sorted(seen) == sorted(names) and graph_pages == expected_graph_pages)

        # 2. Concurrent long-running operations ----------------------------------------------
        emu.settings(durations={"restart": duration})
        targets = sorted(names)[:concurrent]

        def restart(name):
            begun = time.perf_counter()
            poller = clients.compute().virtual_machines.begin_restart(RG, name)
            poller.result()
            return time.perf_counter() - begun, poller.status()

        since = len(emu.events())
        with ThreadPoolExecutor(max_workers=concurrent) as pool:
            started = time.perf_counter()
            outcomes = list(pool.map(restart, targets))
            wall = time.perf_counter() - started
        latencies = [latency for latency, _ in outcomes]
        succeeded = sum(1 for _, status in outcomes if status == "Succeeded")
        restarted = {e["vm"] for e in emu.events(since) if e["power_state"] == "running"}
        stall_limit = duration + RETRY_AFTER + STALL_SLACK
        record("%d concurrent restarts" % concurrent, "%d succeeded in %.2f s" % (succeeded, wall),
               "all succeed", succeeded == concurrent and restarted == set(targets))
        p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
        record("  LRO latency p50 / p95", "%.2f / %.2f s" % (p50, p95), ">= %.1f s (duration)" % duration,
               min(latencies) >= duration * 0.95)
        record("  LRO latency max", "%.2f s" % max(latencies), "<= %.1f s (no stall)" % stall_limit,
               max(latencies) <= stall_limit)

        # 3. Resource Graph page latency over all the VMs -----------------------------------
        graph_page(clients, query)  # warm the query cache and the connection
        timings = []
        for _ in range(queries):
            started = time.perf_counter()
            result = graph_page(clients, query)
            timings.append((time.perf_counter() - started) * 1000.0)
            assert result.count == min(vms, 1000)
        median, p95 = statistics.median(timings), percentile(timings, 0.95)
        record("graph page (%d rows) median" % min(vms, 1000), "%.0f ms" % median, "< %.0f ms" % GRAPH_TARGET_MS,
               median < GRAPH_TARGET_MS)
        record("graph page (%d rows) p95" % min(vms, 1000), "%.0f ms" % p95, "< %.0f ms" % GRAPH_TARGET_MS,
               p95 < GRAPH_TARGET_MS)
        full = []
        for _ in range(max(3, queries // 4)):
            started = time.perf_counter()
            graph_page(clients, "Resources | where type =~ 'microsoft.compute/virtualmachines' | order by id asc")
            full.append((time.perf_counter() - started) * 1000.0)
        record("graph page, full rows, median", "%.0f ms" % statistics.median(full), "(informational)", True)
    finally:
        if own:
            emu.stop()
    width = max(len(r[0]) for r in rows)
    out("%-*s  %-26s %-24s %s" % (width, "measure", "value", "target", "ok"))
    for measure, value, target, ok in rows:
        out("%-*s  %-26s %-24s %s" % (width, measure, value, target, "yes" if ok else "NO"))
    return rows, failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vms", type=int, default=2000)
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds a restart takes")
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args(argv)
    _, failures = run(args.vms, args.concurrent, args.duration, args.queries)
    if failures:
        print("missed: %s" % ", ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
