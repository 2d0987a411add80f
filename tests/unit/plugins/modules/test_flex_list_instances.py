# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""flex_list_instances end to end: main() over a scripted ARM, every SDK layer real."""

from __future__ import annotations

from ansible_collections.azure_flex.vmss.plugins.modules import flex_list_instances as module
from ansible_collections.azure_flex.vmss.tests.unit.utils.scripted_arm import Member, ScriptedArm


def web():
    return ScriptedArm([Member("b", power_state="deallocated", fault_domain=1, tags={"app": "web"}),
                        Member("a", tags={"app": "web"}, locks=[{"name": "keep", "level": "CanNotDelete"}])])


def test_lists_every_member_from_resource_graph_sorted_with_ips_and_writes_nothing(run_module):
    run = run_module(module, web(), {})

    assert run.exit_code == 0 and run.result["changed"] is False
    assert run.writes == []
    result = run.result
    assert [(m["name"], m["power_state"], m["fault_domain"]) for m in result["instances"]] == [
        ("a", "running", 0), ("b", "deallocated", 1)]
    assert [m["private_ips"] for m in result["instances"]] == [["10.0.0.11"], ["10.0.0.10"]]
    assert result["counts"] == {"total": 2, "power_state": {"running": 1, "deallocated": 1}, "health": {},
                                "selected": 2, "changed": 0, "skipped": 2, "failed": 0, "filtered_out": 0}
    assert result["source"] == "resource_graph"
    assert [(s["name"], s["member_count"]) for s in result["scale_sets"]] == [("web", 2)]
    # Scale set, members and their NICs' addresses: three requests, whatever the number of members.
    assert len(run.requests) == 3


def test_the_compute_source_reads_one_listing_with_instance_views(run_module):
    run = run_module(module, web(), {"member_source": "compute", "include_network": False})

    assert [(m["name"], m["power_state"]) for m in run.result["instances"]] == [("a", "running"),
                                                                                ("b", "deallocated")]
    listings = [r for r in run.requests if r.url.split("?")[0].endswith("/virtualMachines")]
    assert len(listings) == 1 and "$expand=instanceView" in listings[0].url
    assert not any("ResourceGraph" in r.url for r in run.requests)


def test_protection_and_latest_model_are_added_when_asked(run_module):
    arm = web()
    arm.member("b").latest_model = False

    run = run_module(module, arm, {"include_protection": True, "include_latest_model": True})

    by_name = {m["name"]: m for m in run.result["instances"]}
    assert by_name["a"]["protection"]["protected_from_scale_in"] is True
    assert [lock["name"] for lock in by_name["a"]["protection"]["locks"]] == ["keep"]
    assert by_name["b"]["protection"]["level"] is None
    assert (by_name["a"]["latest_model"], by_name["b"]["latest_model"]) == (True, False)
    assert run.writes == []


def test_a_named_member_a_filter_leaves_out_is_reported_not_dropped(run_module):
    run = run_module(module, web(), {"instances": ["a", "b"], "power_states": ["running"]})

    assert [m["name"] for m in run.result["instances"]] == ["a"]
    assert [(e["name"], e["status"]) for e in run.result["filtered_out"]] == [("b", "skipped")]
    assert "power state deallocated" in run.result["filtered_out"][0]["reason"]
    assert any("left out by the filters" in warning for warning in run.warnings)


def test_a_member_whose_state_cannot_be_read_fails_the_task(run_module):
    arm = web()
    arm.refuse("GET", r"/virtualMachines/b/instanceView$", 403, "AuthorizationFailed", "no read", request_id="req-b")

    run = run_module(module, arm, {"member_source": "compute", "instances": ["a", "b"]})

    assert run.exit_code == 1
    assert (run.result["code"], run.result["status"], run.result["request_id"]) == ("AuthorizationFailed", 403, "req-b")
    assert "instance view of VM b" in run.result["msg"]


def test_a_scale_set_name_without_its_resource_group_fails_before_any_request(run_module):
    run = run_module(module, web(), {"scale_sets": ["web"], "resource_group": None, "scale_set": None})

    assert run.exit_code == 1
    assert run.result["msg"] == "scale set 'web' is a name, so resource_group is required"
    assert run.requests == []
