# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The rolling roles' filters: batch planning, health classification, thresholds."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.azure_flex.vmss.plugins.filter import rolling
from ansible_collections.azure_flex.vmss.plugins.filter.rolling import (
    FilterModule,
    rolling_health,
    rolling_outcome,
    rolling_plan,
    rolling_threshold,
)


def member(name, fault_domain=0, power_state="running", health="healthy", provisioning_state="Succeeded",
           zones=None, tags=None, protection=None):
    result = {"name": name, "fault_domain": fault_domain, "power_state": power_state, "health": health,
              "provisioning_state": provisioning_state, "zones": zones or [], "tags": tags or {}}
    if protection is not None:
        result["protection"] = protection
    return result


def web(count=12, domains=3):
    """Like the demo set: web_00..web_11 spread round-robin over the fault domains."""
    return [member("web_%02d" % index, fault_domain=index % domains) for index in range(count)]


def batch_members(plan):
    return [batch["members"] for batch in plan["batches"]]


READ_ONLY = {"level": "ReadOnly", "protected_from_scale_in": True, "protected_from_scale_set_actions": True,
             "locks": [{"name": "keep", "level": "ReadOnly", "inherited": False}]}
CAN_NOT_DELETE = {"level": "CanNotDelete", "protected_from_scale_in": True, "protected_from_scale_set_actions": False,
                  "locks": [{"name": "no-delete", "level": "CanNotDelete", "inherited": False}]}


def test_the_filters_are_registered():
    assert sorted(FilterModule().filters()) == ["rolling_health", "rolling_outcome", "rolling_plan",
                                                "rolling_threshold"]


# -- batch sizes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("total, batch_size, batch_percent, expected", [
    (12, None, 20, 2),     # Azure's default: 20 % of 12 = 2.4, rounded down
    (12, None, 25, 3),
    (12, None, 100, 12),
    (3, None, 20, 1),      # never 0
    (0, None, 20, 1),
    (12, 5, 20, 5),        # an absolute size wins
    (12, "4", 20, 4),      # survey values arrive as strings
])
def test_batch_size(total, batch_size, batch_percent, expected):
    assert rolling.batch_size_for(total, batch_size, batch_percent) == expected


@pytest.mark.parametrize("batch_size, batch_percent, message", [
    (0, 20, "batch_size must be at least 1"),
    (None, 0, "batch_percent must be between 1 and 100"),
    (None, 101, "batch_percent must be between 1 and 100"),
    ("two", 20, "batch_size must be an integer"),
    (True, 20, "batch_size must be an integer"),
])
def test_bad_batch_sizes_are_refused(batch_size, batch_percent, message):
    with pytest.raises(AnsibleFilterError, match=message):
        rolling.batch_size_for(12, batch_size, batch_percent)


# -- batches -------------------------------------------------------------------------------------

def test_default_plan_is_batches_of_twenty_percent_in_name_order():
    plan = rolling_plan(web(), "restart", "r1")

    assert plan["batch_size"] == 2
    assert batch_members(plan) == [["web_%02d" % i, "web_%02d" % (i + 1)] for i in range(0, 12, 2)]
    assert [batch["number"] for batch in plan["batches"]] == [1, 2, 3, 4, 5, 6]
    assert {batch["domain"] for batch in plan["batches"]} == {None}
    assert plan["to_process"] == ["web_%02d" % i for i in range(12)]
    assert plan["skipped"] == [] and plan["done_before"] == []
    assert plan["marker"] == "restart:r1"
    assert plan["counts"] == {"members": 12, "to_process": 12, "batches": 6, "skipped": 0, "done_before": 0}


def test_batches_by_fault_domain_never_mix_domains():
    members = web()
    plan = rolling_plan(members, "restart", "r1", batch_by="fault_domain", batch_size=3)
    domain_of = {m["name"]: m["fault_domain"] for m in members}

    assert [batch["domain"] for batch in plan["batches"]] == [
        "fault domain 0", "fault domain 0", "fault domain 1", "fault domain 1", "fault domain 2", "fault domain 2"]
    for batch in plan["batches"]:
        assert len({domain_of[name] for name in batch["members"]}) == 1
        assert len(batch["members"]) <= 3
    assert batch_members(plan)[0:2] == [["web_00", "web_03", "web_06"], ["web_09"]]
    assert plan["lines"][1] == "batch 2/6 (fault domain 0): web_09"
    assert sorted(plan["to_process"]) == sorted(domain_of)


def test_a_batch_larger_than_a_domain_still_stays_in_its_domain():
    plan = rolling_plan(web(), "restart", "r1", batch_by="fault_domain", batch_size=10)

    assert batch_members(plan) == [["web_00", "web_03", "web_06", "web_09"], ["web_01", "web_04", "web_07", "web_10"],
                                   ["web_02", "web_05", "web_08", "web_11"]]


def test_batches_by_zone_and_members_without_zone_last():
    members = [member("a", zones=["2"]), member("b", zones=["1"]), member("c"), member("d", zones=["1"])]
    plan = rolling_plan(members, "restart", "r1", batch_by="zone", batch_size=5)

    assert [(batch["domain"], batch["members"]) for batch in plan["batches"]] == [
        ("zone 1", ["b", "d"]), ("zone 2", ["a"]), ("zone none", ["c"])]


def test_fault_domains_sort_numerically():
    members = [member("a", fault_domain=10), member("b", fault_domain=2), member("c", fault_domain=None)]
    plan = rolling_plan(members, "restart", "r1", batch_by="fault_domain")

    assert [batch["domain"] for batch in plan["batches"]] == [
        "fault domain 2", "fault domain 10", "fault domain unknown"]


def test_unhealthy_first_without_domains():
    members = web(6)
    members[4]["health"] = "unhealthy"
    members[5]["health"] = "unknown"
    plan = rolling_plan(members, "restart", "r1", batch_size=2, unhealthy_first=True)

    assert batch_members(plan) == [["web_04", "web_05"], ["web_00", "web_01"], ["web_02", "web_03"]]
    assert plan["batches"][0]["unhealthy"] == ["web_04", "web_05"]
    assert plan["lines"][0:2] == ["batch 1/3: web_04, web_05 [unhealthy: web_04, web_05]", "batch 2/3: web_00, web_01"]
    assert plan["batches"][1]["unhealthy"] == []


def test_unhealthy_first_with_domains_puts_the_sick_domain_first():
    members = web(6, domains=3)
    members[5]["health"] = "unhealthy"  # web_05 is in fault domain 2
    plan = rolling_plan(members, "restart", "r1", batch_size=1, batch_by="fault_domain", unhealthy_first=True)

    assert batch_members(plan) == [["web_05"], ["web_02"], ["web_00"], ["web_03"], ["web_01"], ["web_04"]]


def test_without_unhealthy_first_order_is_by_name():
    members = web(4)
    members[3]["health"] = "unhealthy"
    plan = rolling_plan(members, "restart", "r1", batch_size=2)
    assert plan["to_process"] == ["web_00", "web_01", "web_02", "web_03"]


# -- skipping ------------------------------------------------------------------------------------

def test_include_and_exclude():
    plan = rolling_plan(web(4), "restart", "r1", include=["WEB_00", "web_01", "web_02"], exclude=["web_01"])

    assert plan["to_process"] == ["web_00", "web_02"]
    assert plan["lines"] == ["batch 1/2: web_00", "batch 2/2: web_02", "skip web_01: excluded",
                             "skip web_03: not in the include list"]
    assert plan["skipped"] == [{"name": "web_01", "reason": "excluded"},
                               {"name": "web_03", "reason": "not in the include list"}]


def test_include_as_comma_separated_text_from_a_survey():
    assert rolling_plan(web(4), "restart", "r1", include="web_00, web_03")["to_process"] == ["web_00", "web_03"]


def test_include_of_an_unknown_member_is_refused():
    with pytest.raises(AnsibleFilterError, match="include names VMs that are not members of the scale set: web_99"):
        rolling_plan(web(4), "restart", "r1", include=["web_00", "web_99"])


def test_members_done_in_this_run_are_skipped_other_runs_and_actions_are_not():
    members = web(4)
    members[0]["tags"] = {"azure-flex-rolling-run": "restart:r1"}
    members[1]["tags"] = {"Azure-Flex-Rolling-Run": "restart:r1"}   # tag names are case-insensitive
    members[2]["tags"] = {"azure-flex-rolling-run": "restart:r0"}   # an earlier run
    members[3]["tags"] = {"azure-flex-rolling-run": "reimage:r1"}   # the same id, another action
    plan = rolling_plan(members, "restart", "r1")

    assert plan["done_before"] == ["web_00", "web_01"]
    assert plan["to_process"] == ["web_02", "web_03"]
    assert plan["skipped"] == [{"name": "web_00", "reason": "already done in run r1"},
                               {"name": "web_01", "reason": "already done in run r1"}]


def test_members_not_running_are_skipped():
    members = [member("a", power_state="deallocated"), member("b", power_state="stopped"),
               member("c", power_state="starting", health="initializing"), member("d")]
    plan = rolling_plan(members, "restart", "r1")

    assert plan["to_process"] == ["c", "d"]
    assert plan["skipped"] == [{"name": "a", "reason": "not running (power state deallocated)"},
                               {"name": "b", "reason": "not running (power state stopped)"}]


@pytest.mark.parametrize("handling, processed, refused", [
    ("skip", ["b", "c", "d"], []),
    ("fail", ["b", "c", "d"], ["a"]),
    ("attempt", ["a", "b", "c", "d"], []),
])
def test_protected_members(handling, processed, refused):
    inherited = {"level": "ReadOnly", "protected_from_scale_in": True, "protected_from_scale_set_actions": True,
                 "locks": [{"name": "rg-freeze", "level": "ReadOnly", "inherited": True}]}
    members = [member("a", protection=READ_ONLY), member("b", protection=CAN_NOT_DELETE), member("c"),
               member("d", protection={"level": None, "locks": []})]
    plan = rolling_plan(members, "restart", "r1", protected=handling)

    assert plan["to_process"] == processed
    assert [entry["name"] for entry in plan["protected_refused"]] == refused
    if handling == "skip":
        assert plan["skipped"] == [{"name": "a", "reason": "protected by lock 'keep' (ReadOnly)"}]
    inherited_plan = rolling_plan([member("e", protection=inherited)], "restart", "r1")
    assert inherited_plan["skipped"][0]["reason"] == "protected by lock 'rg-freeze' (ReadOnly, inherited)"


@pytest.mark.parametrize("options, message", [
    ({"batch_by": "rack"}, "batch_by must be one of none, fault_domain, zone"),
    ({"protected": "ignore"}, "protected must be one of skip, fail, attempt"),
    ({"run_id": ""}, "run_id is required"),
    ({"include": 5}, "include must be a list of VM names"),
])
def test_bad_plan_options_are_refused(options, message):
    arguments = dict({"action": "restart", "run_id": "r1"}, **options)
    with pytest.raises(AnsibleFilterError, match=message):
        rolling_plan(web(3), **arguments)


def test_the_input_must_be_the_member_list():
    with pytest.raises(AnsibleFilterError, match="expects the list of members"):
        rolling_plan({"instances": []}, "restart", "r1")
    with pytest.raises(AnsibleFilterError, match="expects the list of members"):
        rolling_health("web_00")


# -- health --------------------------------------------------------------------------------------

def test_health_classification_and_reasons():
    members = [member("ok"), member("no-extension", health=None), member("sick", health="unhealthy"),
               member("booting", health="initializing"), member("lost", health="unknown"),
               member("stopped", power_state="stopped", health=None),
               member("updating", provisioning_state="Updating"),
               member("starting", power_state="starting", health="unknown")]
    health = rolling_health(members)

    assert health["total"] == 8
    assert health["healthy"] == ["ok", "no-extension"]
    assert health["unhealthy"] == [
        {"name": "sick", "reason": "application health unhealthy"},
        {"name": "booting", "reason": "application health initializing"},
        {"name": "lost", "reason": "application health unknown"},
        {"name": "stopped", "reason": "power state stopped"},
        {"name": "updating", "reason": "provisioning state Updating"},
        {"name": "starting", "reason": "power state starting"},
    ]
    assert health["unhealthy_names"] == ["sick", "booting", "lost", "stopped", "updating", "starting"]
    assert health["settling"] == ["booting", "updating", "starting"]


def test_health_of_some_members_only():
    members = [member("a", health="unhealthy"), member("b"), member("c", health="unhealthy")]
    health = rolling_health(members, ["A", "b"])

    assert (health["total"], health["healthy"], health["unhealthy_names"]) == (2, ["b"], ["a"])


# -- thresholds ----------------------------------------------------------------------------------

@pytest.mark.parametrize("unhealthy, total, max_percent, breached, allowed, percent", [
    (2, 12, 20, False, 2, 16.7),   # 16.7 % is within 20 %
    (3, 12, 20, True, 2, 25.0),
    (1, 5, 20, False, 1, 20.0),    # exactly the threshold is allowed
    (1, 2, 20, True, 0, 50.0),     # one of a first batch of two: Azure aborts too
    (0, 2, 0, False, 0, 0.0),
    (1, 100, 0, True, 0, 1.0),
    (5, 0, 20, False, 0, 0.0),     # nothing processed yet
    ("3", "12", "20", True, 2, 25.0),
])
def test_threshold(unhealthy, total, max_percent, breached, allowed, percent):
    verdict = rolling_threshold(unhealthy, total, max_percent)

    assert verdict["breached"] is breached
    assert verdict["allowed"] == allowed
    assert verdict["percent"] == percent
    assert (verdict["unhealthy"], verdict["total"], verdict["max_percent"]) == (int(unhealthy), int(total),
                                                                                int(max_percent))


def test_threshold_refuses_nonsense():
    with pytest.raises(AnsibleFilterError, match="max_percent must be between 0 and 100"):
        rolling_threshold(1, 10, 120)
    with pytest.raises(AnsibleFilterError, match="unhealthy must be at least 0"):
        rolling_threshold(-1, 10, 20)


# -- outcomes ------------------------------------------------------------------------------------

def test_outcome_of_a_failed_action_entry_carries_the_arm_error():
    entry = {"name": "web_01", "status": "failed", "changed": False,
             "error": {"msg": "Failed to restart VM web_01: conflict", "code": "OperationNotAllowed", "status": 409}}
    assert rolling_outcome(entry) == {"name": "web_01", "status": "failed",
                                      "reason": "OperationNotAllowed Failed to restart VM web_01: conflict"}


def test_outcome_of_a_skipped_action_entry_carries_its_reason():
    entry = {"name": "web_02", "status": "skipped", "reason": "not running (power state deallocated)"}
    assert rolling_outcome(entry) == {"name": "web_02", "status": "skipped",
                                      "reason": "not running (power state deallocated)"}


def test_outcome_of_a_name():
    assert rolling_outcome("web_03", "failed", "check failed") == {"name": "web_03", "status": "failed",
                                                                   "reason": "check failed"}
    with pytest.raises(AnsibleFilterError, match="rolling_outcome expects"):
        rolling_outcome(3)
