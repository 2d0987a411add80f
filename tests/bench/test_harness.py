"""The bench harness's pure parts (make bench-selftest, part of make test): no process, no server."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import report  # noqa: E402

SUB = harness.SUBSCRIPTION
VM = "/subscriptions/%s/resourceGroups/bench-rg/providers/Microsoft.Compute/virtualMachines/" % SUB


def entry(method, path, status=200, time=0.0):
    return {"method": method, "path": path, "status": status, "time": time}


def test_world_serves_as_public_azure_and_switches_the_limits():
    world = harness.world("web", 12)
    assert world["audience"] == "https://management.azure.com/"
    assert world["cloud_name"] == "AzureCloud"
    assert world["settings"]["accept_management_core_audience"] is True
    assert world["settings"]["rate_limits"] is False
    assert world["settings"]["durations"]["restart"] == 4.0 and world["settings"]["retry_after"] == 1
    assert world["resource_groups"][0]["scale_sets"][0]["instances"] == 12
    assert harness.world("scale", 1000, rate_limits=True)["settings"]["rate_limits"] is True


def test_hosts_file_maps_the_public_hosts_to_the_loopback():
    text = harness.hosts_file()
    assert text.startswith("127.0.0.1 localhost management.azure.com login.microsoftonline.com")


def test_request_counts():
    entries = [
        entry("GET", "/%s/v2.0/.well-known/openid-configuration" % harness.TENANT),
        entry("POST", "/%s/oauth2/v2.0/token" % harness.TENANT),
        entry("GET", VM + "vm1"),
        entry("POST", VM + "vm1/restart", 202),
        entry("POST", VM + "vm2/restart", 429),
        entry("GET", "/subscriptions/%s/providers/Microsoft.Compute/locations/eastus/operations/1" % SUB),
        entry("DELETE", VM + "vm3", 404),
        entry("POST", "/providers/Microsoft.ResourceGraph/resources"),
    ]
    assert harness.count_requests(entries) == {"arm": 6, "tokens": 1, "identity_other": 1, "throttled": 1,
                                               "reads": 2, "writes": 3, "deletes": 1, "errors": 1}


def test_restarted_members_counts_accepted_restarts_only():
    entries = [entry("POST", VM + "web_1/restart", 202), entry("POST", VM + "web_2/restart", 429),
               entry("POST", VM + "web_3/start", 202), entry("POST", VM + "WEB_4/restart", 202)]
    assert harness.restarted_members(entries, ["web_1", "web_2", "web_3", "web_4"]) == {"web_1", "web_4"}


def test_summaries_and_cells():
    summary = harness.summarize([3.0, 1.0, 2.0])
    assert summary == {"median": 2.0, "low": 1.0, "high": 3.0, "runs": 3, "failed_runs": 0}
    assert harness.seconds(summary) == "2.0 s (1.0–3.0)"
    assert harness.seconds(harness.summarize([4.0, None])) == "4.0 s, 1 of 2 runs failed"
    assert harness.summarize([None]) is None and harness.seconds(None) == "failed"
    assert harness.ratio(harness.summarize([10.0]), harness.summarize([2.0])) == "5.0 ×"
    assert harness.describe_counts({"arm": 30, "tokens": 2, "throttled": 0}, 10) == (
        "30 ARM requests (3.0 a member), 2 token fetches")


def test_phases_of_a_fan_out():
    entries = [entry("GET", VM + "a", time=10.0), entry("GET", VM + "b", time=11.0),
               entry("POST", VM + "a/restart", 202, 12.0), entry("POST", VM + "b/restart", 202, 14.0),
               entry("GET", "/subscriptions/s/providers/Microsoft.Compute/locations/l/operations/1", time=15.0),
               entry("GET", VM + "a/instanceView", time=16.0), entry("GET", VM + "b/instanceView", time=17.0)]
    assert harness.phases(entries) == {"first_action_at": 2.0, "last_action_at": 4.0, "ended_at": 7.0, "actions": 2,
                                       "polls": 1, "reads_before": 2, "reads_after": 2, "reads_between": 0}


def event(time, vm, power, health="healthy"):
    return {"time": time, "vm": vm, "power_state": power, "health": health}


EVENTS = [event(0, "a", "running"), event(0, "b", "running"), event(0, "c", "running"),
          event(1, "a", "stopping", None), event(1.2, "b", "stopping", None),
          event(3, "a", "running", "initializing"), event(3, "b", "running", "initializing"),
          event(5, "a", "running"), event(5.5, "b", "running"),
          event(6, "c", "stopping", None), event(8, "c", "running", "initializing"), event(10, "c", "running")]


def test_timeline_segments_batches_and_the_most_down_at_once():
    segments = harness.timeline_segments(EVENTS)
    assert segments["a"] == [(0, 1, "running/healthy"), (1, 3, "stopping"), (3, 5, "running/initializing"),
                             (5, 10, "running/healthy")]
    assert harness.max_down(segments) == 2
    groups = harness.batches(segments)
    assert [(g["start"], g["end"], sorted(g["members"])) for g in groups] == [(1, 5.5, ["a", "b"]), (6, 10, ["c"])]


@pytest.mark.parametrize("ok", [True, False])
def test_report_renders_every_row(ok):
    run = {"seconds": 5.0, "ok": ok, "rc": 0 if ok else 2, "maxrss_kb": 65536,
           "counts": {"arm": 112, "tokens": 1, "throttled": 0}, "output": '"msg": "boom"'}
    results = {label: [dict(run)] for label in (
        "restart12/ours", "restart12/peer-loop", "list2000/peer-vmss-instance-info", "tiny/ours", "imports/ours-module_utils")}
    results["scale1000/ours"] = [dict(run, seconds=100.0, restarted=1000, phases={"polls": 1000})]
    text = report.render(results, "test machine")
    assert "| restart 12 members |" in text and "| list 2,000 members |" in text
    assert ("5.0 s" in text) is ok
    assert ("failed: boom" in text) is not ok
    assert "| 1 | 100.0 s | 1.25 |" in text
