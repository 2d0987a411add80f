# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The decisions of flex_instance_lock: which lock is wanted, which members need a write, what they end with."""

from __future__ import annotations

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils._locks import lock_from_rest, protection_summary
from ansible_collections.azure_flex.vmss.plugins.modules import flex_instance_lock as module
from ansible_collections.azure_flex.vmss.tests.unit.utils.scripted_arm import Member, ScriptedArm

RG = "/subscriptions/s/resourceGroups/rg"
LOCKS = "/providers/Microsoft.Authorization/locks/"


def vm_id(name):
    return RG + "/providers/Microsoft.Compute/virtualMachines/" + name


def member(name):
    return {"name": name, "id": vm_id(name), "resource_group": "rg"}


def params(**given):
    base = {"state": "present", "protection": None, "level": None, "name": None, "notes": None}
    base.update(given)
    return base


def lock_on(scope, name, level, notes=None, member_name="web_1"):
    properties = {"level": level}
    if notes is not None:
        properties["notes"] = notes
    return lock_from_rest({"id": scope + LOCKS + name, "name": name, "properties": properties}, vm_id(member_name))


def decide(wanted, locks_by_member):
    members = [member(name) for name in sorted(locks_by_member)]
    protections = {vm_id(name).lower(): protection_summary(locks) for name, locks in locks_by_member.items()}
    return {entry["name"]: entry for entry, _member, _existing in module.plan(members, protections, wanted)}


@pytest.mark.parametrize("given, level, name", [
    ({"protection": "scale_in"}, "CanNotDelete", "azure-flex-protect-from-scale-in"),
    ({"protection": "scale_set_actions"}, "ReadOnly", "azure-flex-protect-from-scale-set-actions"),
    ({"level": "ReadOnly"}, "ReadOnly", "azure-flex-protect-from-scale-set-actions"),
    ({"level": "CanNotDelete", "name": "keep"}, "CanNotDelete", "keep"),
    ({"state": "absent", "name": "keep"}, None, "keep"),
    ({"state": "absent", "protection": "scale_in"}, "CanNotDelete", "azure-flex-protect-from-scale-in"),
])
def test_the_wanted_lock_speaks_both_languages(given, level, name):
    wanted = module.WantedLock(params(**given))
    assert (wanted.level, wanted.name) == (level, name)


@pytest.mark.parametrize("given, message", [
    ({}, "state=present needs protection"),
    ({"state": "absent"}, "state=absent needs the lock's name"),
    ({"protection": "scale_in", "name": "a&b"}, "lock name 'a&b' is invalid"),
    ({"protection": "scale_in", "notes": "n" * 600}, "600 characters"),
])
def test_unusable_input_is_refused_before_any_call(given, message):
    with pytest.raises(InvalidInputError, match=message):
        module.WantedLock(params(**given))


def test_only_members_without_the_lock_get_one():
    wanted = module.WantedLock(params(protection="scale_in"))
    entries = decide(wanted, {"web_1": [lock_on(vm_id("web_1"), "azure-flex-protect-from-scale-in", "CanNotDelete")],
                              "web_2": []})
    assert (entries["web_1"]["status"], entries["web_1"]["changed"]) == ("skipped", False)
    assert (entries["web_2"]["status"], entries["web_2"]["changed"]) == ("act", True)
    assert entries["web_2"]["before"] is None
    assert entries["web_2"]["lock"] == {"name": "azure-flex-protect-from-scale-in", "level": "CanNotDelete", "notes": None}
    assert entries["web_2"]["protection"]["protected_from_scale_in"] is True
    assert entries["web_2"]["protection"]["locks"][0]["scope"] == vm_id("web_2")


def test_lock_names_compare_case_insensitively_as_in_azure():
    wanted = module.WantedLock(params(level="CanNotDelete", name="Keep"))
    entries = decide(wanted, {"web_1": [lock_on(vm_id("web_1"), "keep", "CanNotDelete")]})
    assert entries["web_1"]["status"] == "skipped"


@pytest.mark.parametrize("existing_level, existing_notes, given, changes", [
    ("CanNotDelete", "a", {}, False),  # notes not given: left as they are
    ("CanNotDelete", "a", {"notes": "a"}, False),
    ("CanNotDelete", "a", {"notes": "b"}, True),
    ("CanNotDelete", None, {"notes": ""}, False),
    ("ReadOnly", "a", {}, True),
])
def test_level_and_given_notes_decide_an_update(existing_level, existing_notes, given, changes):
    wanted = module.WantedLock(params(protection="scale_in", name="keep", **given))
    entries = decide(wanted, {"web_1": [lock_on(vm_id("web_1"), "keep", existing_level, existing_notes)]})
    assert entries["web_1"]["changed"] is changes


def test_an_update_keeps_the_notes_it_was_not_told_to_change():
    wanted = module.WantedLock(params(level="ReadOnly", name="keep"))
    existing = {"name": "keep", "level": "CanNotDelete", "notes": "ticket 7"}
    assert wanted.body(existing) == {"properties": {"level": "ReadOnly", "notes": "ticket 7"}}
    assert module.WantedLock(params(level="ReadOnly", name="keep", notes="new")).body(existing) == \
        {"properties": {"level": "ReadOnly", "notes": "new"}}


def test_absent_removes_only_the_members_own_lock_of_that_name():
    wanted = module.WantedLock(params(state="absent", protection="scale_in"))
    group_lock = lock_on(RG, "azure-flex-protect-from-scale-in", "CanNotDelete")
    entries = decide(wanted, {
        "web_1": [lock_on(vm_id("web_1"), "azure-flex-protect-from-scale-in", "CanNotDelete"), group_lock],
        "web_2": [lock_on(vm_id("web_2"), "other", "ReadOnly", member_name="web_2")],
    })
    assert entries["web_1"]["changed"] is True
    assert entries["web_1"]["lock"] is None
    # The inherited lock of the same name stays, and still protects the member.
    assert [lock["scope"] for lock in entries["web_1"]["protection"]["locks"]] == [RG]
    assert entries["web_2"]["changed"] is False
    assert entries["web_2"]["protection"]["level"] == "ReadOnly"


def test_an_inherited_lock_of_the_same_name_does_not_count_as_the_members_own():
    wanted = module.WantedLock(params(protection="scale_in"))
    entries = decide(wanted, {"web_1": [lock_on(RG, "azure-flex-protect-from-scale-in", "CanNotDelete")]})
    assert entries["web_1"]["changed"] is True
    assert len(entries["web_1"]["protection"]["locks"]) == 2


# -- the task end to end over a scripted ARM ------------------------------------------------------

def lock_writes(run):
    """(method, VM name, lock name, body) of each lock write, in the order sent."""
    out = []
    for request in run.writes:
        path = request.url.split("?")[0]
        out.append((request.method, path.split("/virtualMachines/")[1].split("/")[0], path.rsplit("/", 1)[1],
                    request.json()))
    return out


def test_check_mode_writes_nothing_and_predicts(run_module):
    arm = ScriptedArm([Member("a", locks=[{"name": "azure-flex-protect-from-scale-in", "level": "CanNotDelete"}]),
                       Member("b")])

    run = run_module(module, arm, {"instances": ["all"], "protection": "scale_in", "_ansible_check_mode": True,
                                   "_ansible_diff": True})

    assert run.exit_code == 0 and run.writes == []
    assert [(entry["name"], entry["status"]) for entry in run.result["instances"]] == [
        ("a", "skipped"), ("b", "would_change")]
    assert run.result["instances"][1]["protection"]["protected_from_scale_in"] is True
    assert run.result["diff"] == {"before": {"locks": {"b": None}}, "after": {"locks": {"b": {
        "name": "azure-flex-protect-from-scale-in", "level": "CanNotDelete", "notes": None}}}}


def test_a_real_run_puts_one_lock_per_member_without_it_then_removing_deletes_only_that(run_module):
    arm = ScriptedArm([Member("a"), Member("b", locks=[{"name": "other", "level": "ReadOnly"}])])

    run = run_module(module, arm, {"instances": ["all"], "protection": "scale_in", "notes": "CHG-1"})

    assert run.exit_code == 0 and run.result["changed"] is True
    body = {"properties": {"level": "CanNotDelete", "notes": "CHG-1"}}
    assert sorted(lock_writes(run)) == [("PUT", "a", "azure-flex-protect-from-scale-in", body),
                                        ("PUT", "b", "azure-flex-protect-from-scale-in", body)]
    assert run.result["counts"] == {"selected": 2, "changed": 2, "skipped": 0, "failed": 0, "filtered_out": 0}

    again = run_module(module, arm, {"instances": ["all"], "protection": "scale_in", "notes": "CHG-1"})
    assert again.result["changed"] is False and again.writes == []

    removed = run_module(module, arm, {"instances": ["b"], "state": "absent", "protection": "scale_in"})
    assert [write[:3] for write in lock_writes(removed)] == [("DELETE", "b", "azure-flex-protect-from-scale-in")]
    assert [lock["name"] for lock in arm.member("b").locks] == ["other"]


def test_a_refused_lock_fails_the_member_with_the_permission_hint(run_module):
    arm = ScriptedArm([Member("a"), Member("b")])
    arm.refuse("PUT", r"/virtualMachines/b/providers/Microsoft.Authorization/locks/", 403, "AuthorizationFailed",
               "no write", request_id="req-b")

    run = run_module(module, arm, {"instances": ["all"], "protection": "scale_in"})

    assert run.exit_code == 1
    by_name = {entry["name"]: entry for entry in run.result["instances"]}
    assert by_name["a"]["status"] == "changed" and by_name["b"]["status"] == "failed"
    assert by_name["b"]["error"]["code"] == "AuthorizationFailed" and "Owner" in by_name["b"]["error"]["msg"]
    assert run.result["msg"].startswith("1 of 2 member(s) failed to set lock azure-flex-protect-from-scale-in: b: ")


def test_unusable_input_fails_before_any_request(run_module):
    run = run_module(module, ScriptedArm([Member("a")]), {"instances": ["all"]})

    assert run.exit_code == 1 and "state=present needs protection" in run.result["msg"]
    assert run.requests == []
