# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""flex_instance_extension_info: per-member extension listings."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from ansible_collections.azure_flex.vmss.plugins.module_utils._resilience import Deadline
from ansible_collections.azure_flex.vmss.plugins.modules import flex_instance_extension_info as module
from ansible_collections.azure_flex.vmss.tests.unit.utils.scripted_arm import Member, ScriptedArm


def raw(name, publisher="Microsoft.ManagedServices"):
    return {"name": name, "id": "/x/extensions/" + name,
            "properties": {"publisher": publisher, "type": name, "typeHandlerVersion": "1.0",
                           "provisioningState": "Succeeded",
                           "instanceView": {"statuses": [{"code": "ProvisioningState/succeeded"}]}}}


def test_member_extensions_are_sorted_and_filtered_by_name_case_insensitively():
    listed = module.member_extensions([raw("b"), raw("A")])
    assert [extension["name"] for extension in listed] == ["A", "b"]
    assert [extension["name"] for extension in module.member_extensions([raw("b"), raw("A")], "a")] == ["A"]
    assert listed[0]["statuses"][0]["code"] == "ProvisioningState/succeeded"


def listing_arm(listings):
    """Members of scale set web with the extensions in ``listings`` ({vm: [REST body]})."""
    return ScriptedArm([Member(vm, extensions={extension["name"]: extension for extension in listed})
                        for vm, listed in listings.items()])


def listings_read(run):
    """(VM name, $expand) of each extension listing the run read."""
    return [(urlsplit(request.url).path.split("/")[-2], parse_qs(urlsplit(request.url).query)["$expand"][0])
            for request in run.requests if urlsplit(request.url).path.endswith("/extensions")]


def test_lists_each_member_with_instance_view_and_counts_extensions(run_module, monkeypatch):
    arm = listing_arm({"vm1": [raw("HealthExtension")], "vm2": [raw("HealthExtension"), raw("CustomScript")]})
    # One throttled answer and one transient failure: each costs a retry, and the result counts them.
    arm.refuse("GET", r"/virtualMachines/vm1/extensions$", 429, "TooManyRequests", times=1,
               headers={"Retry-After": "0"})
    arm.refuse("GET", r"/virtualMachines/vm2/extensions$", 503, "ServiceUnavailable", times=1,
               headers={"Retry-After": "0"})
    monkeypatch.setattr(Deadline, "elapsed", lambda self: 1.25)

    run = run_module(module, arm, {})

    assert run.exit_code == 0
    result = run.result
    assert [instance["name"] for instance in result["instances"]] == ["vm1", "vm2"]
    assert result["counts"] == {"instances": 2, "extensions": {"HealthExtension": 2, "CustomScript": 1},
                                "selected": 2, "changed": 0, "skipped": 2, "failed": 0, "filtered_out": 0}
    # As every module: the retries it met, how long it took, the scale set, the named members left out.
    assert (result["retries"], result["elapsed_seconds"], result["filtered_out"]) == (
        {"retries": 2, "throttled_responses": 1}, 1.25, [])
    assert result["scale_set"] == {"id": arm.scale_set_id, "name": "web", "resource_group": "rg1"}
    # Each listing twice: the answer retried, then the listing.
    assert sorted(listings_read(run)) == [("vm1", "instanceView")] * 2 + [("vm2", "instanceView")] * 2
    assert result["changed"] is False
    assert run.writes == []


def test_a_failed_read_fails_the_task(run_module):
    arm = listing_arm({"vm1": [raw("HealthExtension")]})
    arm.refuse("GET", r"/virtualMachines/vm1/extensions$", 500, "InternalServerError", "boom",
               headers={"Retry-After": "0"})

    run = run_module(module, arm, {})

    # The member whose read failed is reported with its error (the others' reads are not lost), and fails the task.
    assert run.exit_code == 1
    assert run.result["msg"] == "1 of 1 member(s) failed to read their extensions: vm1: InternalServerError"
    [entry] = run.result["instances"]
    assert entry["status"] == "failed" and entry["extensions"] is None
    assert entry["error"]["code"] == "InternalServerError" and "boom" in entry["error"]["msg"]


def test_a_bad_extension_name_fails_before_any_request(run_module):
    run = run_module(module, listing_arm({"vm1": []}), {"name": "a/b"})
    assert run.exit_code == 1 and "Extension name" in run.result["msg"]
    assert run.requests == []


def test_only_the_named_extension_is_reported(run_module):
    arm = listing_arm({"vm1": [raw("HealthExtension"), raw("CustomScript")]})
    run = run_module(module, arm, {"name": "customscript"})
    assert [extension["name"] for extension in run.result["instances"][0]["extensions"]] == ["CustomScript"]
    assert run.result["counts"]["extensions"] == {"CustomScript": 1}
