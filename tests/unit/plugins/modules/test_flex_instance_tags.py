# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""flex_instance_tags: the tag arithmetic, input checks, and a whole run over a scripted ARM."""

from __future__ import annotations

import re

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.modules import flex_instance_tags as module
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import SUBSCRIPTION_ID as SUB
from ansible_collections.azure_flex.vmss.tests.unit.utils.module_runner import writes
from ansible_collections.azure_flex.vmss.tests.unit.utils.scripted_arm import Member, ScriptedArm


# -- the arithmetic ----------------------------------------------------------------------------

@pytest.mark.parametrize("current, set_tags, remove_tags, purge, expected", [
    ({"app": "web"}, {"run": "r1"}, [], False, {"app": "web", "run": "r1"}),
    ({"app": "web", "run": "r0"}, {"run": "r1"}, [], False, {"app": "web", "run": "r1"}),
    # As Azure's Merge does, the existing spelling of a name is kept.
    ({"App": "web"}, {"app": "api"}, [], False, {"App": "api"}),
    ({"app": "web", "run": "r1"}, {}, ["RUN"], False, {"app": "web"}),
    ({"app": "web"}, {}, ["absent"], False, {"app": "web"}),
    ({"app": "web", "run": "r1"}, {"tier": "fe"}, [], True, {"tier": "fe"}),
    ({"app": "web"}, {}, [], True, {}),
    (None, {"run": "r1"}, [], False, {"run": "r1"}),
])
def test_desired_tags(current, set_tags, remove_tags, purge, expected):
    assert module.desired_tags(current, set_tags, remove_tags, purge) == expected


def test_tag_names_compare_case_insensitively_and_values_exactly():
    assert module.tags_equal({"App": "web"}, {"app": "web"})
    assert not module.tags_equal({"app": "Web"}, {"app": "web"})
    assert not module.tags_equal({"app": "web"}, {"app": "web", "x": ""})


def test_values_become_strings():
    assert module.validate_changes({"on": True, "n": 42, "off": False, "none": None}, [], False)[0] == {
        "on": "true", "n": "42", "off": "false", "none": ""}


@pytest.mark.parametrize("set_tags, remove_tags, purge, message", [
    ({"a": "1"}, ["x"], True, "remove_tags cannot be combined with purge=true"),
    ({"a/b": "1"}, [], False, "contains a character Azure does not allow"),
    ({"": "1"}, [], False, "empty tag name"),
    ({"x" * 513: "1"}, [], False, "Azure allows at most 512"),
    ({"a": "v" * 257}, [], False, "Azure allows at most 256"),
    ({"a": "1", "A": "2"}, [], False, "names tag 'A' twice"),
    ({"a": "1"}, ["A"], False, "both in set_tags and in remove_tags"),
    ({"t%d" % i: "v" for i in range(51)}, [], False, "at most 50"),
    ({}, [""], False, "remove_tags contains an empty tag name"),
])
def test_bad_input_is_refused_before_any_call(set_tags, remove_tags, purge, message):
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        module.validate_changes(set_tags, remove_tags, purge)


def member(name, tags):
    return {"name": name, "id": vm_id(name), "resource_group": "rg1", "tags": tags}


def test_plan_skips_members_already_tagged_and_fails_members_over_the_limit():
    crowded = {"t%d" % i: "v" for i in range(50)}
    entries = [entry for entry, _m in module.plan(
        [member("a", {"run": "r1"}), member("b", {}), member("c", crowded)], {"run": "r1"}, [], False)]

    assert [(e["name"], e["status"], e["changed"]) for e in entries] == [
        ("a", "skipped", False), ("b", "act", True), ("c", "failed", False)]
    assert entries[1]["before"] == {} and entries[1]["after"] == {"run": "r1"}
    assert entries[2]["after"] == crowded and "at most 50" in entries[2]["error"]["msg"]


# -- a whole run against a scripted ARM ------------------------------------------------------------

def vm_id(name):
    return "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/%s" % (SUB, name)


def tagged_arm(tags, patch_error=()):
    """VMs of scale set web with ``tags`` (by name); an empty (lagging) Resource Graph, so named members are
    confirmed with a compute GET; the Tags API refuses to change the members in ``patch_error`` (ScopeLocked)."""
    arm = ScriptedArm([Member(name, tags=member_tags) for name, member_tags in tags.items()], graph_lag=True)
    for name in patch_error:
        arm.refuse("PATCH", r"/virtualMachines/%s/providers/Microsoft.Resources/tags/default$" % name, 409,
                   "ScopeLocked", "locked", request_id="req-1")
    return arm


def test_check_mode_writes_nothing_and_predicts(run_module):
    arm = tagged_arm({"a": {"app": "web"}, "b": {"app": "web", "run": "r1"}})

    code, result, requests = run_module(module, arm, {"instances": ["all"], "member_source": "compute",
                                                      "set_tags": {"run": "r1"}, "_ansible_check_mode": True,
                                                      "_ansible_diff": True})

    assert code == 0
    assert writes(requests) == []
    assert result["changed"] is True
    assert [(e["name"], e["status"]) for e in result["instances"]] == [("a", "would_change"), ("b", "skipped")]
    assert result["counts"] == {"selected": 2, "changed": 1, "skipped": 1, "failed": 0, "filtered_out": 0}
    assert result["diff"] == {"before": {"instances": {"a": {"app": "web"}}},
                              "after": {"instances": {"a": {"app": "web", "run": "r1"}}}}


def test_real_run_merges_through_the_tags_api_then_a_rerun_changes_nothing(run_module):
    arm = tagged_arm({"a": {"app": "web"}, "b": {"app": "web", "run": "r0"}, "c": {"app": "web", "run": "r1"}})

    code, result, requests = run_module(module, arm, {"instances": ["a", "b", "c"], "set_tags": {"run": "r1"}})

    assert code == 0 and result["changed"] is True
    # Only the tags to set are sent, as a Merge: tags someone else writes meanwhile cannot be overwritten.
    merge = {"operation": "Merge", "properties": {"tags": {"run": "r1"}}}
    assert sorted(arm.tag_patches) == [("a", merge), ("b", merge)]
    assert [r.method for r in writes(requests) if "ResourceGraph" not in r.url] == ["PATCH", "PATCH"]
    assert all(r.url.split("?")[0].endswith("/providers/Microsoft.Resources/tags/default") and "//sub" not in r.url
               for r in writes(requests) if "ResourceGraph" not in r.url)
    assert result["instances"][0]["after"] == {"app": "web", "run": "r1"}
    assert [(e["name"], e["status"]) for e in result["instances"]] == [("a", "changed"), ("b", "changed"),
                                                                       ("c", "skipped")]

    code, again, requests = run_module(module, arm, {"instances": ["a", "b", "c"], "set_tags": {"run": "r1"}})

    assert code == 0 and again["changed"] is False
    assert [r for r in writes(requests) if "ResourceGraph" not in r.url] == []
    assert again["counts"] == {"selected": 3, "changed": 0, "skipped": 3, "failed": 0, "filtered_out": 0}


def test_a_refused_member_fails_the_task_with_the_arm_error_and_the_others_are_done(run_module):
    arm = tagged_arm({"a": {}, "b": {}}, patch_error={"b"})

    code, result, _requests = run_module(module, arm, {"instances": ["all"], "member_source": "compute",
                                                       "set_tags": {"run": "r1"}})

    assert code == 1
    assert result["failed"] is True
    assert result["msg"] == "1 of 2 member(s) failed to update their tags: b: ScopeLocked"
    by_name = {e["name"]: e for e in result["instances"]}
    assert by_name["a"]["status"] == "changed"
    assert by_name["b"]["status"] == "failed"
    assert by_name["b"]["after"] == {}
    assert by_name["b"]["error"] == {"msg": by_name["b"]["error"]["msg"], "code": "ScopeLocked", "status": 409,
                                     "request_id": "req-1"}


def test_bad_input_fails_without_any_request(run_module):
    arm = tagged_arm({"a": {}})

    code, result, requests = run_module(module, arm, {"instances": ["all"], "set_tags": {"a<b": "1"}})

    assert code == 1
    assert "does not allow in tag names" in result["msg"]
    assert requests == []


def test_remove_sends_a_delete_with_the_values_read_and_purge_one_replace(run_module):
    arm = tagged_arm({"a": {"app": "web", "old": "1"}, "b": {"app": "web"}})

    code, result, _requests = run_module(module, arm, {"instances": ["a", "b"], "set_tags": {"new": "2"},
                                                       "remove_tags": ["OLD"]})

    assert code == 0
    # Members are written concurrently; each member's requests come in order.
    assert [body for name, body in arm.tag_patches if name == "a"] == [
        {"operation": "Merge", "properties": {"tags": {"new": "2"}}},
        {"operation": "Delete", "properties": {"tags": {"old": "1"}}}]
    assert [body for name, body in arm.tag_patches if name == "b"] == [
        {"operation": "Merge", "properties": {"tags": {"new": "2"}}}]
    assert arm.tags == {"a": {"app": "web", "new": "2"}, "b": {"app": "web", "new": "2"}}
    assert [e["after"] for e in result["instances"]] == [{"app": "web", "new": "2"}, {"app": "web", "new": "2"}]

    arm.tag_patches.clear()
    code, result, _requests = run_module(module, arm, {"instances": ["a"], "set_tags": {"only": "x"}, "purge": True})

    assert code == 0 and arm.tag_patches == [("a", {"operation": "Replace", "properties": {"tags": {"only": "x"}}})]
    assert arm.tags["a"] == {"only": "x"}


@pytest.mark.parametrize("args, message", [
    ({"tags": {"env": "prod"}}, "the option tags only selects members by the tags they already have (here env=prod);"
                                " to set tags on the members use set_tags"),
    ({}, "Nothing to change: give set_tags"),
    ({"tags": {"env": "prod"}, "set_tags": {"ENV": "prod"}},
     "selects only members that already have every tag in set_tags (ENV=prod)"),
])
def test_the_tags_trap_is_refused_before_any_call(run_module, args, message):
    """azure.azcollection users write tags= to set tags; here it selects. No spelling may silently do nothing."""
    arm = tagged_arm({"a": {}})

    code, result, requests = run_module(module, arm, dict({"instances": ["a"]}, **args))

    assert code == 1 and message in result["msg"]
    assert requests == []


def test_a_filter_on_other_tags_with_set_tags_is_fine():
    assert module.validate_changes({"env": "prod"}, [], False, {"app": "web"}) == ({"env": "prod"}, [])
    # purge can change members that match the filter.
    assert module.validate_changes({"env": "prod"}, [], True, {"env": "prod"}) == ({"env": "prod"}, [])
