# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""flex_instance_extension: comparing, planning, the bodies sent, and the task end to end with fake clients."""

from __future__ import annotations

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils import _extensions as extensions
from ansible_collections.azure_flex.vmss.plugins.modules import flex_instance_extension as module
from ansible_collections.azure_flex.vmss.tests.unit.utils.scripted_arm import Member, ScriptedArm, rest_extension

VM_PREFIX = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/"


def desired(**changes):
    base = {"name": "CustomScript", "publisher": "Microsoft.Azure.Extensions", "type": "CustomScript",
            "type_handler_version": "2.1", "settings": {"a": 1}, "protected_settings": None,
            "auto_upgrade_minor_version": None, "force_update_tag": None}
    base.update(changes)
    return base


def current(**kwargs):
    return extensions.extension_from_rest(rest_extension(**kwargs))


# -- comparing -----------------------------------------------------------------------------------

def test_same_extension_has_no_differences_and_publisher_case_does_not_matter():
    assert extensions.differences(current(settings={"a": 1}), desired(publisher="microsoft.azure.extensions")) == []


@pytest.mark.parametrize("changes, expected", [
    ({"settings": {"a": 2}}, ["settings"]),
    ({"type_handler_version": "2.2"}, ["type_handler_version"]),
    ({"force_update_tag": "t2"}, ["force_update_tag"]),
    ({"auto_upgrade_minor_version": True}, ["auto_upgrade_minor_version"]),
    ({"type": "Other"}, ["type"]),
])
def test_each_managed_field_is_compared(changes, expected):
    wanted = desired(force_update_tag="t1", auto_upgrade_minor_version=False)
    wanted.update(changes)
    assert extensions.differences(current(settings={"a": 1}, tag="t1", auto_upgrade=False), wanted) == expected


def test_unmanaged_fields_and_protected_settings_never_differ():
    assert extensions.differences(current(settings={"x": 1}, tag="t1"), desired(
        settings=None, protected_settings={"secret": "s"})) == []


def test_empty_settings_equal_missing_settings():
    assert extensions.differences(current(), desired(settings={})) == []


def test_protected_settings_never_appear_in_a_summary():
    raw = rest_extension(settings={"a": 1})
    raw["properties"]["protectedSettings"] = {"secret": "s"}
    assert "protected" not in str(extensions.extension_from_rest(raw))


def test_create_body_sends_only_given_fields_and_update_body_only_the_differences():
    wanted = desired(protected_settings={"secret": "s"}, force_update_tag="t1")
    assert extensions.create_body(wanted, "eastus") == {"location": "eastus", "properties": {
        "publisher": "Microsoft.Azure.Extensions", "type": "CustomScript", "typeHandlerVersion": "2.1",
        "settings": {"a": 1}, "forceUpdateTag": "t1", "protectedSettings": {"secret": "s"}}}
    assert extensions.update_body(wanted, ["force_update_tag"]) == {"properties": {
        "forceUpdateTag": "t1", "protectedSettings": {"secret": "s"}}}


def test_instance_view_statuses_are_summarised():
    raw = rest_extension()
    raw["properties"]["instanceView"] = {"statuses": [{"code": "ProvisioningState/succeeded", "level": "Info",
                                                       "displayStatus": "Provisioning succeeded"}]}
    summary = extensions.extension_from_rest(raw)
    assert summary["statuses"] == [{"code": "ProvisioningState/succeeded", "level": "Info",
                                    "display_status": "Provisioning succeeded", "message": None, "time": None}]
    assert summary["substatuses"] == []


# -- planning ------------------------------------------------------------------------------------

def member(name="vm", power_state="running"):
    return {"name": name, "id": VM_PREFIX + name, "resource_group": "rg", "location": "eastus",
            "power_state": power_state}


def test_plan_creates_updates_deletes_or_skips():
    assert module.plan_member(member(), None, "present", desired())["operation"] == "create"
    update = module.plan_member(member(), current(settings={"a": 0}), "present", desired())
    assert (update["operation"], update["differences"], update["after"]["settings"]) == ("update", ["settings"], {"a": 1})
    assert module.plan_member(member(), current(), "absent", desired())["after"] is None
    skipped = module.plan_member(member(), current(settings={"a": 1}), "present", desired())
    assert (skipped["status"], skipped["reason"], skipped["changed"]) == (
        "skipped", "already present with the requested settings", False)
    gone = module.plan_member(member(), None, "absent", desired())
    assert (gone["status"], gone["reason"]) == ("skipped", "already absent")


def test_predicted_after_never_holds_protected_settings():
    after = module.predicted(None, desired(protected_settings={"secret": "s"}))
    assert "protected_settings" not in after
    assert after["settings"] == {"a": 1}


# -- the task end to end over a scripted ARM -------------------------------------------------------

EXTENSION_ARGS = {"name": "CustomScript", "publisher": "Microsoft.Azure.Extensions", "type": "CustomScript",
                  "type_handler_version": "2.1", "settings": {"a": 1}}


def extension_arm(installed=None, stopped=(), power_states=None, members=("a", "b")):
    """Members of scale set web with the extensions ``installed`` ({(vm, name): REST body}); VMs in ``stopped``
    refuse changes as Azure does (409 OperationNotAllowed, request id req-<vm>)."""
    installed = installed or {}
    power_states = power_states or {}
    arm = ScriptedArm([Member(name, power_state=power_states.get(name, "running"),
                              extensions={ext: body for (vm, ext), body in installed.items() if vm == name})
                       for name in members])
    for name in stopped:
        for method in ("PUT", "PATCH", "DELETE"):
            arm.refuse(method, r"/virtualMachines/%s/extensions/" % name, 409, "OperationNotAllowed",
                       "Cannot modify extensions in the VM when the VM is not running.", request_id="req-%s" % name)
    return arm


def extension_writes(run):
    """(method, VM name, body) of each extension write, in the order sent."""
    return [(request.method, request.url.split("/virtualMachines/")[1].split("/")[0], request.json())
            for request in run.writes if "/extensions/" in request.url]


def run_extension(run_module, arm, args, check_mode=False):
    return run_module(module, arm, dict(EXTENSION_ARGS, _ansible_check_mode=check_mode, _ansible_diff=True, **args))


def test_check_mode_writes_nothing_and_predicts(run_module):
    run = run_extension(run_module, extension_arm(), {"instances": ["all"]}, check_mode=True)
    assert run.exit_code == 0
    assert run.writes == []
    result = run.result
    assert [entry["status"] for entry in result["instances"]] == ["would_change", "would_change"]
    assert result["changed"] is True
    assert result["diff"]["before"] == {"extensions": {"a": None, "b": None}}


def test_install_then_rerun_is_idempotent(run_module):
    arm = extension_arm()
    args = {"instances": ["all"], "protected_settings": {"secret": "s"}}
    first = run_extension(run_module, arm, args)
    assert [write[0] for write in extension_writes(first)] == ["PUT", "PUT"]
    assert extension_writes(first)[0][2]["properties"]["protectedSettings"] == {"secret": "s"}
    assert first.result["counts"] == {"selected": 2, "changed": 2, "skipped": 0, "failed": 0, "filtered_out": 0}
    assert first.result["instances"][0]["after"]["settings"] == {"a": 1}
    second = run_extension(run_module, arm, args)
    assert extension_writes(second) == []
    assert second.result["changed"] is False


def test_a_settings_change_is_a_patch_of_the_settings_only(run_module):
    arm = extension_arm({("a", "CustomScript"): rest_extension(settings={"a": 0}, tag="keep")}, members=("a",))
    run = run_extension(run_module, arm, {"instances": ["a"]})
    assert extension_writes(run) == [("PATCH", "a", {"properties": {"settings": {"a": 1}}})]
    assert run.result["instances"][0]["after"]["force_update_tag"] == "keep"


def test_a_member_azure_refuses_is_reported_and_fails_the_task_after_the_others(run_module):
    arm = extension_arm(stopped=["b"], power_states={"b": "deallocated"})
    run = run_extension(run_module, arm, {"instances": ["a", "b"]})
    assert run.exit_code == 1
    result = run.result
    entries = {entry["name"]: entry for entry in result["instances"]}
    assert entries["a"]["status"] == "changed"
    assert entries["b"]["status"] == "failed"
    # Azure's message, with what was being done when it refused.
    assert entries["b"]["error"] == {"msg": "Failed to create extension CustomScript on VM b: Cannot modify extensions"
                                            " in the VM when the VM is not running.", "code": "OperationNotAllowed",
                                     "status": 409, "request_id": "req-b"}
    assert result["counts"] == {"selected": 2, "changed": 1, "skipped": 0, "failed": 1, "filtered_out": 0}
    assert "b: OperationNotAllowed" in result["msg"]


def test_absent_deletes_where_present_only(run_module):
    arm = extension_arm({("a", "CustomScript"): rest_extension()})
    run = run_extension(run_module, arm, {"instances": ["all"], "state": "absent"})
    assert extension_writes(run) == [("DELETE", "a", None)]
    assert [entry["status"] for entry in run.result["instances"]] == ["changed", "skipped"]


def test_the_extension_name_is_validated_before_any_request(run_module):
    run = run_extension(run_module, extension_arm(), {"instances": ["all"], "name": "a/b"})
    assert run.exit_code == 1 and "Extension name" in run.result["msg"]
    assert run.writes == []
    assert run.requests == []


def test_every_option_documented_is_in_the_argument_spec():
    spec = module.argument_spec()
    assert spec["protected_settings"]["no_log"] is True
    assert set(module.DESIRED_OPTIONS) <= set(spec)


@pytest.mark.parametrize("check_mode", [False, True])
def test_members_not_running_selected_implicitly_are_skipped_in_both_modes(run_module, check_mode):
    """F7: the same decision in check mode and in a real run, as flex_instance_action makes it."""
    arm = extension_arm(stopped=["b", "c"], power_states={"b": "deallocated", "c": "stopped"}, members=("a", "b", "c"))

    run = run_extension(run_module, arm, {"instances": ["all"]}, check_mode=check_mode)

    entries = {entry["name"]: entry for entry in run.result["instances"]}
    assert entries["a"]["status"] == ("would_change" if check_mode else "changed")
    assert [(entries[n]["status"], entries[n]["reason"]) for n in ("b", "c")] == [
        ("skipped", "not running (power state deallocated): Azure changes extensions of running VMs only"),
        ("skipped", "not running (power state stopped): Azure changes extensions of running VMs only")]
    assert [write[1] for write in extension_writes(run)] == ([] if check_mode else ["a"])


def test_check_mode_predicts_the_refusal_of_a_named_member_that_is_not_running(run_module):
    """F7: check mode used to say would_change for a deallocated member the real run fails with 409."""
    arm = extension_arm(stopped=["b"], power_states={"b": "deallocated"})

    run = run_extension(run_module, arm, {"instances": ["a", "b"]}, check_mode=True)

    assert run.exit_code == 1
    assert run.writes == []
    entries = {entry["name"]: entry for entry in run.result["instances"]}
    assert entries["a"]["status"] == "would_change"
    assert entries["b"]["status"] == "would_fail" and entries["b"]["changed"] is False
    assert entries["b"]["error"]["code"] == "OperationNotAllowed"
    assert run.result["msg"] == "1 of 2 member(s) would fail to apply extension CustomScript: b: OperationNotAllowed"
    assert run.result["counts"]["failed"] == 1


def test_nothing_to_do_on_a_stopped_member_is_not_a_refusal(run_module):
    arm = extension_arm(stopped=["b"], power_states={"b": "deallocated"}, members=("b",))

    run = run_extension(run_module, arm, {"instances": ["b"], "state": "absent"}, check_mode=True)

    entry = run.result["instances"][0]
    assert entry["status"] == "skipped" and entry["reason"] == "already absent"
    assert run.writes == []
