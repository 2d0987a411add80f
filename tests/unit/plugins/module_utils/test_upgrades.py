# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Upgrade policies: validation of the options, merge with the current policy, idempotence, the Flexible
refusals, the REST layouts, and the bounded wait for a rolling upgrade."""

from __future__ import annotations

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    AzureFlexError,
    InvalidInputError,
    OperationTimeoutError,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._resilience import Deadline
from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import ScaleSetRef
from ansible_collections.azure_flex.vmss.plugins.module_utils import _upgrades as upgrades

SUB = "00000000-0000-0000-0000-000000000001"
HEALTH = {"name": "HealthExtension", "properties": {"publisher": "Microsoft.ManagedServices",
                                                    "type": "ApplicationHealthLinux", "typeHandlerVersion": "2.0"}}


def wanted(mode=None, **rolling):
    return upgrades.WantedPolicy.from_params(mode, rolling)


def scale_set(extensions=(HEALTH,)):
    return {"name": "web", "properties": {"orchestrationMode": "Flexible", "virtualMachineProfile": {
        "extensionProfile": {"extensions": list(extensions)}}}}


@pytest.mark.parametrize("text, seconds", [("PT0S", 0), ("PT30S", 30), ("pt2m", 120), ("PT1H2M3.5S", 3723.5),
                                           ("P1D", 86400), ("P1DT1S", 86401)])
def test_durations(text, seconds):
    assert upgrades.duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "30s", "PT-1S", "P1H", None, "PT1S extra"])
def test_not_durations(text):
    assert upgrades.duration_seconds(text) is None


@pytest.mark.parametrize("options, message", [
    ({"max_batch_instance_percent": 4}, "max_batch_instance_percent must be between 5 and 100"),
    ({"max_batch_instance_percent": 101}, "between 5 and 100"),
    ({"max_unhealthy_instance_percent": 0}, "max_unhealthy_instance_percent must be between 5 and 100"),
    ({"max_unhealthy_upgraded_instance_percent": -1}, "between 0 and 100"),
    ({"max_batch_instance_percent": True}, "between 5 and 100"),
    ({"pause_time_between_batches": "30 seconds"}, "ISO 8601 duration"),
    ({"nope": 1}, "has no option nope"),
])
def test_option_refusals(options, message):
    with pytest.raises(InvalidInputError) as info:
        upgrades.WantedPolicy.from_params(None, options)
    assert message in info.value.msg


def test_mode_refusal_and_canonical_spelling():
    with pytest.raises(InvalidInputError):
        wanted("Sometimes")
    assert wanted("rolling").mode == "Rolling"
    assert wanted(max_unhealthy_upgraded_instance_percent=0).rolling == {"maxUnhealthyUpgradedInstancePercent": 0}


def test_nothing_asked_is_empty():
    assert wanted().empty
    assert wanted(max_batch_instance_percent=None).empty
    assert not wanted("Manual").empty


def test_merge_keeps_what_is_not_named():
    current = {"mode": "Rolling", "rollingUpgradePolicy": {"maxBatchInstancePercent": 50, "maxSurge": True},
               "automaticOSUpgradePolicy": {"enableAutomaticOSUpgrade": False}}
    merged = upgrades.merged_policy(current, wanted(pause_time_between_batches="pt10s"))
    assert merged == {"mode": "Rolling", "automaticOSUpgradePolicy": {"enableAutomaticOSUpgrade": False},
                      "rollingUpgradePolicy": {"maxBatchInstancePercent": 50, "maxUnhealthyInstancePercent": 20,
                                               "maxUnhealthyUpgradedInstancePercent": 20, "maxSurge": True,
                                               "pauseTimeBetweenBatches": "PT10S"}}


def test_a_manual_set_without_rolling_policy_gets_none_unless_asked():
    assert upgrades.merged_policy({"mode": "Manual"}, wanted("Automatic")) == {"mode": "Automatic"}
    assert upgrades.merged_policy({}, wanted("Rolling"))["rollingUpgradePolicy"] == upgrades.ROLLING_DEFAULTS


@pytest.mark.parametrize("current, asked, differs", [
    ({"mode": "Manual"}, wanted("Manual"), False),
    ({"mode": "Manual"}, wanted("Rolling"), True),
    ({"mode": "Rolling", "rollingUpgradePolicy": {"maxBatchInstancePercent": 20}}, wanted("Rolling"), False),
    # Azure's defaults are the current values of fields it does not show.
    ({"mode": "Rolling", "rollingUpgradePolicy": {}}, wanted(max_unhealthy_instance_percent=20), False),
    ({"mode": "Rolling", "rollingUpgradePolicy": {"pauseTimeBetweenBatches": "PT60S"}},
     wanted(pause_time_between_batches="PT1M"), False),
    ({"mode": "Rolling", "rollingUpgradePolicy": {"maxSurge": None}}, wanted(max_surge=False), False),
    ({"mode": "Rolling", "rollingUpgradePolicy": {}}, wanted(max_surge=True), True),
    # A Manual set without a rolling policy: naming one writes it.
    ({"mode": "Manual"}, wanted(max_batch_instance_percent=20), True),
])
def test_idempotence(current, asked, differs):
    assert upgrades.policy_differs(current, upgrades.merged_policy(current, asked)) is differs


def test_flexible_refusals_before_any_write():
    with pytest.raises(InvalidInputError) as info:
        upgrades.check_for_scale_set(scale_set(), upgrades.merged_policy({}, wanted(
            rollback_failed_instances_on_policy_breach=True)))
    assert "Uniform scale sets only" in info.value.msg
    with pytest.raises(InvalidInputError) as info:
        upgrades.check_for_scale_set(scale_set(extensions=()), upgrades.merged_policy({}, wanted("Rolling")))
    assert "Application Health extension" in info.value.msg
    upgrades.check_for_scale_set(scale_set(), upgrades.merged_policy({}, wanted("Rolling")))
    upgrades.check_for_scale_set(scale_set(extensions=()), upgrades.merged_policy({}, wanted("Automatic")))
    windows = dict(HEALTH, properties=dict(HEALTH["properties"], type="ApplicationHealthWindows"))
    upgrades.check_for_scale_set(scale_set(extensions=(windows,)), upgrades.merged_policy({}, wanted("Rolling")))


def test_views():
    view = upgrades.policy_view({"mode": "Rolling", "rollingUpgradePolicy": {"maxBatchInstancePercent": 30}})
    assert view == {"mode": "Rolling", "rolling_upgrade_policy": {
        "max_batch_instance_percent": 30, "max_unhealthy_instance_percent": 20,
        "max_unhealthy_upgraded_instance_percent": 20, "pause_time_between_batches": "PT0S",
        "enable_cross_zone_upgrade": False, "prioritize_unhealthy_instances": False, "max_surge": False,
        "rollback_failed_instances_on_policy_breach": False}}
    assert upgrades.policy_view(None) == {"mode": "Manual", "rolling_upgrade_policy": None}
    assert upgrades.repairs_view(None) is None
    assert upgrades.repairs_view({"enabled": True, "gracePeriod": "PT30M", "repairAction": "Reimage"}) == {
        "enabled": True, "grace_period": "PT30M", "repair_action": "Reimage"}
    status = upgrades.status_view(rolling(code="Faulted", error={"code": "X", "message": "broken"}, failed=3,
                                          pending=9))
    assert status["code"] == "Faulted" and status["error"] == {"code": "X", "message": "broken"}
    assert status["progress"] == {"successful": 0, "failed": 3, "in_progress": 0, "pending": 9}
    assert upgrades.status_view(None) is None


def test_model_counts():
    counts = upgrades.model_counts({"a": True, "b": False, "c": None, "d": True})
    assert counts == {"latest": 2, "behind": 1, "unknown": 1}


def rolling(code="RollingForward", error=None, **progress):
    props = {"runningStatus": {"code": code, "lastAction": "Start"},
             "progress": {"successfulInstanceCount": progress.get("successful", 0),
                          "failedInstanceCount": progress.get("failed", 0),
                          "inProgressInstanceCount": progress.get("in_progress", 0),
                          "pendingInstanceCount": progress.get("pending", 0)}}
    if error:
        props["error"] = error
    return {"properties": props}


class FakeRollingUpgrades:
    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.reads = 0

    def get_latest(self, resource_group, name):
        self.reads += 1
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]


class FakeCompute:
    def __init__(self, statuses):
        self.virtual_machine_scale_set_rolling_upgrades = FakeRollingUpgrades(statuses)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def client(statuses):
    return upgrades.UpgradeClient(FakeCompute(statuses), ScaleSetRef(SUB, "web-rg", "web"))


def test_wait_polls_until_the_upgrade_ends():
    clock = Clock()
    waiter = client([rolling(in_progress=2, pending=4), rolling(in_progress=2, pending=2), rolling("Completed")])
    status = waiter.wait_until_ended(Deadline(60, clock=clock), 5, sleep=clock.sleep)
    assert upgrades.status_view(status)["code"] == "Completed"
    assert clock.now == 10 and waiter.compute.virtual_machine_scale_set_rolling_upgrades.reads == 3


def test_wait_is_bounded():
    clock = Clock()
    waiter = client([rolling(successful=4, in_progress=2, pending=6)])
    with pytest.raises(OperationTimeoutError) as info:
        waiter.wait_until_ended(Deadline(12, clock=clock), 5, sleep=clock.sleep)
    assert "4 upgraded, 2 in progress, 6 pending" in info.value.msg
    assert clock.now == 10  # never slept past the deadline


def test_faulted_error_carries_azure_code():
    error = upgrades.faulted_error("web", rolling("Faulted", error={"code": "MaxUnhealthy", "message": "too many"},
                                                  failed=3, pending=9))
    assert isinstance(error, AzureFlexError) and error.code == "MaxUnhealthy"
    assert "too many" in error.msg and "3 failed, 9 pending" in error.msg
    assert upgrades.faulted_error("web", rolling("Faulted")).code == upgrades.CODE_ROLLING_FAULTED
