# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""flex_upgrade_policy end to end: main() over a scripted ARM, every SDK layer real (policy logic: test_upgrades.py)."""

from __future__ import annotations

from ansible_collections.azure_flex.vmss.plugins.modules import flex_upgrade_policy as module
from ansible_collections.azure_flex.vmss.tests.unit.utils.scripted_arm import Member, ScriptedArm

FAULTED = {"policy": {"maxBatchInstancePercent": 20}, "runningStatus": {"code": "Faulted"},
           "progress": {"successfulInstanceCount": 1, "failedInstanceCount": 1, "inProgressInstanceCount": 0,
                        "pendingInstanceCount": 2},
           "error": {"code": "MaxUnhealthyInstancePercentExceededInRollingUpgrade", "message": "too many unhealthy"}}


def web(**options):
    return ScriptedArm([Member("a"), Member("b", latest_model=False)], **options)


def test_check_mode_writes_nothing_and_says_what_it_would_change(run_module):
    run = run_module(module, web(health_extension=True), {"mode": "Rolling", "_ansible_check_mode": True,
                                                          "_ansible_diff": True})

    assert run.exit_code == 0 and run.result["changed"] is True
    assert run.writes == []
    assert run.result["actions"] == ["update_policy"]
    assert run.result["diff"]["before"]["upgrade_policy"]["mode"] == "Manual"
    assert run.result["diff"]["after"]["upgrade_policy"]["mode"] == "Rolling"
    assert run.result["members"] == {"latest": 1, "behind": 1, "unknown": 0}


def test_a_real_run_patches_the_policy_once_and_a_rerun_changes_nothing(run_module):
    arm = web(health_extension=True)

    run = run_module(module, arm, {"mode": "Rolling", "rolling_upgrade_policy": {"max_batch_instance_percent": 25}})

    assert run.exit_code == 0 and run.result["changed"] is True
    assert [request.method for request in run.writes] == ["PATCH"]
    sent = run.writes[0].json()["properties"]["upgradePolicy"]
    assert (sent["mode"], sent["rollingUpgradePolicy"]["maxBatchInstancePercent"]) == ("Rolling", 25)
    assert run.result["upgrade_policy"]["mode"] == "Rolling"
    assert run.result["upgrade_policy"]["rolling_upgrade_policy"]["max_batch_instance_percent"] == 25

    again = run_module(module, arm, {"mode": "Rolling", "rolling_upgrade_policy": {"max_batch_instance_percent": 25}})

    assert again.result["changed"] is False and again.writes == []


def test_rolling_without_the_health_extension_is_refused_before_any_write(run_module):
    run = run_module(module, web(), {"mode": "Rolling"})

    assert run.exit_code == 1 and "Add the extension to the model first" in run.result["msg"]
    assert run.writes == []


def test_a_wait_that_sees_the_rolling_upgrade_fault_fails_with_azures_code(run_module):
    run = run_module(module, web(rolling_upgrade=FAULTED), {"rolling_upgrade": "wait"})

    assert run.exit_code == 1
    assert run.result["code"] == "MaxUnhealthyInstancePercentExceededInRollingUpgrade"
    assert run.result["msg"] == ("The rolling upgrade of scale set web ended Faulted: too many unhealthy (1 upgraded,"
                                 " 1 failed, 2 pending)")
    assert run.result["rolling_upgrade"]["code"] == "Faulted"


def test_a_percentage_out_of_range_fails_before_any_request(run_module):
    run = run_module(module, web(), {"mode": "Rolling", "rolling_upgrade_policy": {"max_batch_instance_percent": 200}})

    assert run.exit_code == 1 and "max_batch_instance_percent" in run.result["msg"]
    assert run.requests == []
