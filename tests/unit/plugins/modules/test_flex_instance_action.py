# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""flex_instance_action end to end: main() over a scripted ARM, every SDK layer real."""

from __future__ import annotations

from urllib.parse import urlsplit

from ansible_collections.azure_flex.vmss.plugins.modules import flex_instance_action as module
from ansible_collections.azure_flex.vmss.tests.unit.utils.scripted_arm import Member, ScriptedArm


def actions_sent(run):
    """(VM name, action) of each POST on a VM, in the order sent."""
    return [tuple(urlsplit(request.url).path.split("/")[-2:]) for request in run.writes]


def test_check_mode_writes_nothing_and_predicts(run_module):
    arm = ScriptedArm([Member("a"), Member("b", power_state="deallocated"), Member("c")])

    run = run_module(module, arm, {"action": "deallocate", "instances": ["all"], "_ansible_check_mode": True,
                                   "_ansible_diff": True})

    assert run.exit_code == 0
    assert run.writes == []
    assert [(entry["name"], entry["status"], entry["after"]) for entry in run.result["instances"]] == [
        ("a", "would_change", "deallocated"), ("b", "skipped", "deallocated"), ("c", "would_change", "deallocated")]
    assert run.result["counts"] == {"selected": 3, "changed": 2, "skipped": 1, "failed": 0, "filtered_out": 0}
    assert run.result["diff"] == {"before": {"instances": {"a": "running", "c": "running"}},
                                  "after": {"instances": {"a": "deallocated", "c": "deallocated"}}}


def test_a_restart_posts_once_per_running_member_waits_and_reads_the_state_after(run_module):
    arm = ScriptedArm([Member("a"), Member("b", power_state="deallocated"), Member("c")])

    run = run_module(module, arm, {"action": "restart", "instances": ["all"]})

    assert run.exit_code == 0 and run.result["changed"] is True
    assert sorted(actions_sent(run)) == [("a", "restart"), ("c", "restart")]
    # The operation was polled to its end (Azure-AsyncOperation), then the power state read again.
    assert any("/operations/" in request.url for request in run.requests)
    assert [(entry["name"], entry["status"]) for entry in run.result["instances"]] == [
        ("a", "changed"), ("b", "skipped"), ("c", "changed")]
    assert run.result["instances"][1]["reason"] == "not running (power state deallocated)"
    assert run.result["counts"] == {"selected": 3, "changed": 2, "skipped": 1, "failed": 0, "filtered_out": 0}


def test_a_stop_then_a_rerun_changes_nothing(run_module):
    arm = ScriptedArm([Member("a"), Member("b")])

    first = run_module(module, arm, {"action": "power_off", "instances": ["a", "b"]})
    again = run_module(module, arm, {"action": "power_off", "instances": ["a", "b"]})

    assert sorted(actions_sent(first)) == [("a", "powerOff"), ("b", "powerOff")]
    assert [entry["after"] for entry in first.result["instances"]] == ["stopped", "stopped"]
    assert again.result["changed"] is False and again.writes == []


def test_a_member_azure_refuses_fails_the_task_and_the_others_are_done(run_module):
    arm = ScriptedArm([Member("a"), Member("b")])
    arm.refuse("POST", r"/virtualMachines/b/restart$", 409, "OperationNotAllowed", "busy", request_id="req-b")

    run = run_module(module, arm, {"action": "restart", "instances": ["all"]})

    assert run.exit_code == 1 and run.result["failed"] is True
    assert run.result["msg"] == "1 of 2 member(s) failed to restart: b: OperationNotAllowed"
    by_name = {entry["name"]: entry for entry in run.result["instances"]}
    assert by_name["a"]["status"] == "changed"
    assert by_name["b"]["status"] == "failed"
    assert (by_name["b"]["error"]["code"], by_name["b"]["error"]["status"], by_name["b"]["error"]["request_id"]) == (
        "OperationNotAllowed", 409, "req-b")


def test_a_member_locked_read_only_is_skipped_with_its_lock(run_module):
    arm = ScriptedArm([Member("a", locks=[{"name": "freeze", "level": "ReadOnly"}]), Member("b")])

    run = run_module(module, arm, {"action": "restart", "instances": ["all"]})

    assert actions_sent(run) == [("b", "restart")]
    entry = run.result["instances"][0]
    assert entry["status"] == "skipped" and "freeze" in entry["reason"]


def test_an_option_of_another_action_fails_without_any_request(run_module):
    run = run_module(module, ScriptedArm([Member("a")]), {"action": "restart", "instances": ["all"], "temp_disk": True})

    assert run.exit_code == 1
    assert run.result["msg"] == "temp_disk applies only to action=reimage, not action=restart"
    assert run.requests == []
