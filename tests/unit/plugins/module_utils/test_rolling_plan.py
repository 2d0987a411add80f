# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The plan of a rolling run: settings, batches, health, thresholds, naming and resuming runs, the plan in words."""

from __future__ import annotations

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils import _rolling_plan as rolling_plan
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import InvalidInputError
from ansible_collections.azure_flex.vmss.tests.unit.plugins.module_utils.rolling_samples import (
    NOW,
    SCALE_SET,
    member,
    new_run,
    settings,
    web,
)


def plan(members, run_id="r1", scale_set=None, **options):
    return rolling_plan.plan_batches(members, settings(**options), run_id, scale_set)


def batch_members(the_plan):
    return [batch["members"] for batch in the_plan["batches"]]


def lock(name, level="ReadOnly", scope="/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/x",
         inherited=False):
    return {"name": name, "level": level, "scope": scope, "inherited": inherited}


READ_ONLY = {"locks": [lock("keep")]}
CAN_NOT_DELETE = {"locks": [lock("no-delete", "CanNotDelete")]}


# -- settings (checked before anything is read) ------------------------------------------------------

@pytest.mark.parametrize("options, message", [
    ({"batch_by": "rack"}, "batch_by must be one of auto, none, fault_domain, zone"),
    ({"protected": "ignore"}, "protected must be one of skip, fail, attempt"),
    ({"action": "delete"}, "action must be one of restart, reimage, redeploy"),
    ({"batch_percent": 0}, "batch_percent must be between 1 and 100, got 0"),
    ({"batch_percent": 101}, "batch_percent must be between 1 and 100"),
    ({"batch_size": 0}, "batch_size must be between 1 and 1000"),
    ({"batch_size": True}, "batch_size must be a whole number"),
    ({"batch_size": "two"}, "batch_size must be a whole number"),
    ({"health_timeout": -5}, "health_timeout must be between 1 and 86400, got -5"),
    ({"health_timeout": 30, "health_poll_seconds": 31}, "health_poll_seconds must be between 1 and 30"),
    ({"health_poll_seconds": 0}, "health_poll_seconds must be between 1 and 600"),
    ({"action_timeout": 0}, "action_timeout must be between 1 and 86400"),
    ({"max_unhealthy_percent": 101}, "max_unhealthy_percent must be between 0 and 100"),
    ({"max_unhealthy_processed_percent": -1}, "max_unhealthy_processed_percent must be between 0 and 100"),
    ({"pause_seconds": -1}, "pause_seconds must be between 0 and 86400"),
    ({"resume_hours": -1}, "resume_hours must be between 0 and 8760"),
    ({"include": 5}, "include must be a list of VM names"),
    ({"exclude": ["web 1"]}, "VM name in exclude 'web 1' is not valid"),
    ({"exact_version": "1.2.3"}, "exact_version and temp_disk apply only to action=reimage"),
    ({"action": "reimage", "exact_version": "latest"}, "exact_version must be Major.Minor.Patch"),
    ({"run_id": "bad\nid"}, "run_id must not contain control characters"),
])
def test_bad_settings_are_refused(options, message):
    with pytest.raises(InvalidInputError, match=message):
        settings(**options)


def test_a_run_id_too_long_for_the_tag_value_is_refused_before_anything_is_read():
    """F3: 'restart:' + 300 characters cannot be a tag value (256 at most); the limit counts the prefix."""
    with pytest.raises(InvalidInputError) as refused:
        settings(run_id="x" * 300)
    assert "308 characters" in refused.value.msg and "at most 248 characters" in refused.value.msg
    assert settings(run_id="x" * 248).run_id == "x" * 248
    with pytest.raises(InvalidInputError):
        settings(run_id="x" * 249)
    assert settings(action="reimage", run_id="x" * 248).run_id  # 'reimage:' is 8 characters too


def test_survey_values_arrive_as_text():
    chosen = settings(batch_size="4", health_timeout="30", include="web_00, web_03")
    assert (chosen.batch_size, chosen.health_timeout, chosen.include) == (4, 30, ["web_00", "web_03"])


# -- batch sizes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("total, batch_size, batch_percent, expected", [
    (12, None, 20, 2),     # Azure's default: 20 % of 12 = 2.4, rounded down
    (12, None, 25, 3),
    (12, None, 100, 12),
    (3, None, 20, 1),      # never 0
    (0, None, 20, 1),
    (12, 5, 20, 5),        # an absolute size wins
])
def test_batch_size(total, batch_size, batch_percent, expected):
    assert rolling_plan.batch_size_for(total, batch_size, batch_percent) == expected


@pytest.mark.parametrize("count, size, expected", [
    (4, 3, [2, 2]),
    (5, 3, [3, 2]),
    (34, 20, [17, 17]),
    (33, 20, [17, 16]),
    (6, 2, [2, 2, 2]),
    (1, 5, [1]),
    (0, 5, []),
    (10, 1, [1] * 10),
])
def test_balanced_sizes(count, size, expected):
    assert rolling_plan.balanced_sizes(count, size) == expected


# -- batches -------------------------------------------------------------------------------------

def test_default_batches_keep_to_fault_domains_with_balanced_sizes():
    """25 % of 12 by fault domain: 2 and 2 in each domain, never 3, 1, 3, 1, 3, 1."""
    the_plan = plan(web(), batch_percent=25)
    assert the_plan["batch_by"] == "fault_domain" and the_plan["batch_size"] == 3
    assert [len(batch) for batch in batch_members(the_plan)] == [2, 2, 2, 2, 2, 2]
    assert [batch["domain"] for batch in the_plan["batches"]] == ["fault domain 0"] * 2 + ["fault domain 1"] * 2 + \
        ["fault domain 2"] * 2
    assert batch_members(the_plan)[0:2] == [["web_00", "web_03"], ["web_06", "web_09"]]


def test_auto_is_the_zone_for_a_zonal_set():
    members = [member("a", zones=["2"]), member("b", zones=["1"]), member("c", zones=["3"]), member("d", zones=["1"])]
    assert plan(members, batch_size=5)["batch_by"] == "zone"
    assert plan(web(3), scale_set={"zones": ["1", "2"]})["batch_by"] == "zone"
    assert plan(web(3), scale_set={"zones": []})["batch_by"] == "fault_domain"


def test_batch_by_none_is_name_order():
    the_plan = plan(web(), batch_by="none")
    assert batch_members(the_plan) == [["web_%02d" % i, "web_%02d" % (i + 1)] for i in range(0, 12, 2)]
    assert {batch["domain"] for batch in the_plan["batches"]} == {None}
    assert the_plan["marker"] == "restart:r1"
    assert the_plan["counts"] == {"members": 12, "to_process": 12, "batches": 6, "skipped": 0, "done_before": 0}


def test_batches_by_fault_domain_never_mix_domains():
    members = web(100)
    the_plan = plan(members, batch_by="fault_domain")
    domain_of = {m["name"]: m["fault_domain"] for m in members}
    assert the_plan["batch_size"] == 20
    assert [len(batch) for batch in batch_members(the_plan)] == [17, 17, 17, 16, 17, 16]
    for batch in the_plan["batches"]:
        assert len({domain_of[name] for name in batch["members"]}) == 1
    assert sorted(the_plan["to_process"]) == sorted(domain_of)


def test_a_batch_larger_than_a_domain_still_stays_in_its_domain():
    assert batch_members(plan(web(), batch_by="fault_domain", batch_size=10)) == [
        ["web_00", "web_03", "web_06", "web_09"], ["web_01", "web_04", "web_07", "web_10"],
        ["web_02", "web_05", "web_08", "web_11"]]


def test_batches_by_zone_and_members_without_zone_last():
    members = [member("a", zones=["2"]), member("b", zones=["1"]), member("c"), member("d", zones=["1"])]
    assert [(batch["domain"], batch["members"]) for batch in plan(members, batch_by="zone", batch_size=5)["batches"]] \
        == [("zone 1", ["b", "d"]), ("zone 2", ["a"]), ("zone none", ["c"])]


def test_fault_domains_sort_numerically():
    members = [member("a", fault_domain=10), member("b", fault_domain=2), member("c", fault_domain=None)]
    assert [batch["domain"] for batch in plan(members, batch_by="fault_domain")["batches"]] == [
        "fault domain 2", "fault domain 10", "fault domain unknown"]


def test_unhealthy_first_without_domains():
    members = web(6)
    members[4]["health"] = "unhealthy"
    members[5]["health"] = "unknown"
    the_plan = plan(members, batch_size=2, batch_by="none", unhealthy_first=True)
    assert batch_members(the_plan) == [["web_04", "web_05"], ["web_00", "web_01"], ["web_02", "web_03"]]
    assert the_plan["batches"][0]["unhealthy"] == ["web_04", "web_05"]
    assert the_plan["batches"][1]["unhealthy"] == []


def test_unhealthy_first_with_domains_puts_the_sick_domain_first():
    members = web(6, domains=3)
    members[5]["health"] = "unhealthy"  # web_05 is in fault domain 2
    assert batch_members(plan(members, batch_size=1, batch_by="fault_domain", unhealthy_first=True)) == [
        ["web_05"], ["web_02"], ["web_00"], ["web_03"], ["web_01"], ["web_04"]]


# -- skipping ------------------------------------------------------------------------------------

def test_include_and_exclude():
    the_plan = plan(web(4), batch_by="none", batch_size=1, include=["WEB_00", "web_01", "web_02"], exclude=["web_01"])
    assert the_plan["to_process"] == ["web_00", "web_02"]
    assert the_plan["skipped"] == [{"name": "web_01", "reason": "excluded"},
                                   {"name": "web_03", "reason": "not in the include list"}]


def test_include_of_an_unknown_member_is_refused():
    with pytest.raises(InvalidInputError, match="include names VMs that are not members of the scale set: web_99"):
        plan(web(4), include=["web_00", "web_99"])


def test_members_done_in_this_run_are_skipped_other_runs_and_actions_are_not():
    members = web(4)
    members[0]["tags"] = {"azure-flex-rolling-run": "restart:r1"}
    members[1]["tags"] = {"Azure-Flex-Rolling-Run": "restart:r1"}   # tag names are case-insensitive
    members[2]["tags"] = {"azure-flex-rolling-run": "restart:r0"}   # an earlier run
    members[3]["tags"] = {"azure-flex-rolling-run": "reimage:r1"}   # the same id, another action
    the_plan = plan(members, batch_by="none")
    assert the_plan["done_before"] == ["web_00", "web_01"]
    assert the_plan["to_process"] == ["web_02", "web_03"]
    assert the_plan["skipped"] == [{"name": "web_00", "reason": "already done in run r1"},
                                   {"name": "web_01", "reason": "already done in run r1"}]


def test_members_not_running_are_skipped():
    members = [member("a", power_state="deallocated"), member("b", power_state="stopped"),
               member("c", power_state="starting", health="initializing"), member("d")]
    the_plan = plan(members, batch_by="none")
    assert the_plan["to_process"] == ["c", "d"]
    assert the_plan["skipped"] == [{"name": "a", "reason": "not running (power state deallocated)"},
                                   {"name": "b", "reason": "not running (power state stopped)"}]


@pytest.mark.parametrize("handling, processed, refused", [
    ("skip", ["b", "c", "d"], []),
    ("fail", ["b", "c", "d"], ["a"]),
    ("attempt", ["a", "b", "c", "d"], []),
])
def test_protected_members(handling, processed, refused):
    members = [member("a", protection=READ_ONLY), member("b", protection=CAN_NOT_DELETE), member("c"),
               member("d", protection={"locks": []})]
    if handling == "attempt":  # protected=attempt reads no lock
        for entry in members:
            entry.pop("protection", None)
    the_plan = plan(members, batch_by="none", protected=handling)
    assert the_plan["to_process"] == processed
    assert [entry["name"] for entry in the_plan["protected_refused"]] == refused
    if handling == "skip":
        assert the_plan["skipped"] == [{"name": "a", "reason": "protected by lock 'keep' (ReadOnly, on the VM)"}]
    inherited = {"locks": [lock("rg-freeze", scope="/subscriptions/s/resourceGroups/rg", inherited=True)]}
    assert plan([member("e", protection=inherited)])["skipped"][0]["reason"] == \
        "protected by lock 'rg-freeze' (ReadOnly, on resource group rg)"


# -- health --------------------------------------------------------------------------------------

def test_health_classification_and_reasons():
    members = [member("ok"), member("no-extension", health=None), member("sick", health="unhealthy"),
               member("booting", health="initializing"), member("lost", health="unknown"),
               member("stopped", power_state="stopped", health=None),
               member("updating", provisioning_state="Updating"),
               member("starting", power_state="starting", health="unknown"),
               member("gone", power_state="absent")]
    health = rolling_plan.classify(members)
    assert health["total"] == 9
    assert health["healthy"] == ["ok", "no-extension"]
    assert health["unhealthy"] == [
        {"name": "sick", "reason": "application health unhealthy"},
        {"name": "booting", "reason": "application health initializing"},
        {"name": "lost", "reason": "application health unknown"},
        {"name": "stopped", "reason": "power state stopped"},
        {"name": "updating", "reason": "provisioning state Updating"},
        {"name": "starting", "reason": "power state starting"},
        {"name": "gone", "reason": "no longer exists"},
    ]
    assert health["settling"] == ["booting", "updating", "starting"]


def test_health_of_some_members_only():
    health = rolling_plan.classify([member("a", health="unhealthy"), member("b"), member("c", health="unhealthy")], ["A", "b"])
    assert (health["total"], health["healthy"], [e["name"] for e in health["unhealthy"]]) == (2, ["b"], ["a"])


# -- thresholds ----------------------------------------------------------------------------------

@pytest.mark.parametrize("unhealthy, total, max_percent, breached, allowed, percent", [
    (2, 12, 20, False, 2, 16.7),   # 16.7 % is within 20 %
    (3, 12, 20, True, 2, 25.0),
    (1, 5, 20, False, 1, 20.0),    # exactly the threshold is allowed (Azure: "above")
    (1, 2, 20, True, 0, 50.0),     # one of a first batch of two: Azure aborts too
    (0, 2, 0, False, 0, 0.0),
    (1, 100, 0, True, 0, 1.0),
    (5, 0, 20, False, 0, 0.0),     # nothing processed yet
])
def test_threshold(unhealthy, total, max_percent, breached, allowed, percent):
    verdict = rolling_plan.threshold(unhealthy, total, max_percent)
    assert (verdict["breached"], verdict["allowed"], verdict["percent"]) == (breached, allowed, percent)


def test_precheck_names_the_unhealthy_members():
    members = web(10)
    for index in (1, 2, 3):
        members[index]["health"] = "unhealthy"
    check, reason = rolling_plan.precheck(members, settings(), 4)
    assert check["breached"] and check["unhealthy"] == 3
    assert reason.startswith("before batch 4, 3 of 10 members (30.0 %) were unhealthy, above max_unhealthy_percent 20: "
                             "web_01 (application health unhealthy)")
    check, reason = rolling_plan.precheck(members[:3] + members[4:], settings(), 4)  # 2 of 9: 22.2 % is still above 20
    assert check["breached"] and check["percent"] == 22.2
    check, reason = rolling_plan.precheck(members[:2] + members[4:], settings(), 4)  # 1 of 8: 12.5 %
    assert (check["breached"], check["allowed"], reason) == (False, 1, "")


# -- naming and resuming runs ----------------------------------------------------------------------

def test_a_new_run_is_named_from_the_time():
    run_id, resumed, notes = rolling_plan.choose_run_id(settings(), web(4), NOW)
    assert (run_id, resumed, notes) == ("restart-20240601T120000Z", False, [])
    assert rolling_plan.auto_run_started("restart", run_id) == NOW
    assert rolling_plan.auto_run_started("reimage", run_id) is None
    assert rolling_plan.auto_run_started("restart", "patch-2024-06") is None


def test_an_explicit_run_id_is_used_as_given():
    members = web(4)
    members[0]["tags"] = {rolling_plan.DONE_TAG: "restart:restart-20240601T110000Z"}
    assert rolling_plan.choose_run_id(settings(run_id="patch-1"), members, NOW) == ("patch-1", False, [])


def test_a_relaunch_without_run_id_resumes_the_recent_unfinished_automatic_run():
    members = web(4)
    members[0]["tags"] = {rolling_plan.DONE_TAG: "restart:restart-20240601T110000Z"}
    members[1]["tags"] = {rolling_plan.DONE_TAG: "restart:restart-20240601T110000Z", "app": "web"}
    run_id, resumed, notes = rolling_plan.choose_run_id(settings(), members, NOW)
    assert (run_id, resumed) == ("restart-20240601T110000Z", True)
    assert notes[0].startswith("resuming run restart-20240601T110000Z (2 member(s) done, 2 to go)")
    assert sorted(plan(members, run_id)["to_process"]) == ["web_02", "web_03"]


def test_an_old_or_finished_or_user_named_run_is_not_resumed_but_named():
    old = web(4)
    old[0]["tags"] = {rolling_plan.DONE_TAG: "restart:restart-20240530T110000Z"}  # 49 hours ago
    run_id, resumed, notes = rolling_plan.choose_run_id(settings(), old, NOW)
    assert (run_id, resumed) == ("restart-20240601T120000Z", False)
    assert notes == ["run restart-20240530T110000Z is unfinished (1 member(s) done, 3 to go) and is not resumed "
                     "(started more than 24 hours ago): set run_id to restart-20240530T110000Z to resume it"]
    assert rolling_plan.choose_run_id(settings(resume_hours=72), old, NOW)[:2] == ("restart-20240530T110000Z", True)
    assert rolling_plan.choose_run_id(settings(resume_hours=0), old, NOW)[1] is False

    finished = web(2)
    for entry in finished:
        entry["tags"] = {rolling_plan.DONE_TAG: "restart:restart-20240601T110000Z"}
    assert rolling_plan.choose_run_id(settings(), finished, NOW) == ("restart-20240601T120000Z", False, [])

    named = web(3)
    named[0]["tags"] = {rolling_plan.DONE_TAG: "restart:patch-7"}
    run_id, resumed, notes = rolling_plan.choose_run_id(settings(), named, NOW)
    assert not resumed and "set run_id to patch-7 to resume it" in notes[0] and "named by its user" in notes[0]


def test_a_skipped_locked_member_does_not_keep_a_run_unfinished():
    members = web(3)
    members[0]["tags"] = members[1]["tags"] = {rolling_plan.DONE_TAG: "restart:restart-20240601T110000Z"}
    members[2]["protection"] = READ_ONLY
    assert rolling_plan.choose_run_id(settings(), members, NOW)[1] is False


def test_the_marks_of_another_action_do_not_resume_this_one():
    members = web(3)
    members[0]["tags"] = {rolling_plan.DONE_TAG: "reimage:reimage-20240601T110000Z"}
    assert rolling_plan.choose_run_id(settings(), members, NOW)[1] is False


# -- the plan in words -------------------------------------------------------------------------

def test_plan_lines_show_each_batch_with_its_domain_and_the_repairs_note():
    the_plan, run = new_run(web(6), batch_size=2)
    repaired = dict(SCALE_SET, automatic_repairs={"enabled": True, "grace_period": "PT30M", "repair_action": "Reimage"})
    lines = rolling_plan.plan_lines(the_plan, run, repaired, check_mode=True)
    assert lines[0] == ("run r1: restart 6 of 6 member(s) of rg/web in 3 batch(es) of at most 2 by fault domain "
                        "(check mode: nothing will be changed)")
    assert lines[1].startswith("note: automatic instance repairs are enabled on web (repair action Reimage, grace period "
                               "PT30M): Azure may repair a member while it is down")
    assert lines[2:] == ["batch 1/3 (fault domain 0): web_00, web_03", "batch 2/3 (fault domain 1): web_01, web_04",
                         "batch 3/3 (fault domain 2): web_02, web_05"]
    assert not any("repairs" in line for line in rolling_plan.plan_lines(the_plan, run, SCALE_SET))
