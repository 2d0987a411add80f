# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""flex_instance_extension: comparing, planning, the bodies sent, and the task end to end with fake clients."""

from __future__ import annotations

import types

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils import _extensions as extensions
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import AzureFlexError
from ansible_collections.azure_flex.vmss.plugins.module_utils._fanout import run_bounded
from ansible_collections.azure_flex.vmss.plugins.module_utils._module import AzureFlexModule, MemberFailures
from ansible_collections.azure_flex.vmss.plugins.module_utils._resilience import Deadline
from ansible_collections.azure_flex.vmss.plugins.modules import flex_instance_extension as module

VM_PREFIX = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/"


def rest_extension(name="CustomScript", publisher="Microsoft.Azure.Extensions", type_="CustomScript",
                   version="2.1", settings=None, tag=None, auto_upgrade=None):
    properties = {"publisher": publisher, "type": type_, "typeHandlerVersion": version,
                  "provisioningState": "Succeeded"}
    if settings is not None:
        properties["settings"] = settings
    if tag is not None:
        properties["forceUpdateTag"] = tag
    if auto_upgrade is not None:
        properties["autoUpgradeMinorVersion"] = auto_upgrade
    return {"name": name, "id": VM_PREFIX + "vm/extensions/" + name, "properties": properties}


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


# -- the task with fake clients ------------------------------------------------------------------

class FakePoller:
    def __init__(self, result):
        self._result = result

    def wait(self, timeout=None):
        return None

    def done(self):
        return True

    def result(self):
        return self._result


class FakeExtensions:
    """VM extensions of a few VMs; VMs named in ``stopped`` refuse changes as Azure does (409)."""

    def __init__(self, installed, stopped=()):
        self.installed = dict(installed)
        self.stopped = set(stopped)
        self.writes = []

    def get(self, resource_group, vm_name, extension_name):
        if (vm_name, extension_name) not in self.installed:
            raise AzureFlexError("The Resource 'Microsoft.Compute/virtualMachines/%s/extensions/%s' was not found"
                                 % (vm_name, extension_name), code="ResourceNotFound", status=404)
        return self.installed[(vm_name, extension_name)]

    def list(self, resource_group, vm_name, expand=None):
        return {"value": [extension for (vm, _name), extension in self.installed.items() if vm == vm_name]}

    def _refuse_if_stopped(self, vm_name):
        if vm_name in self.stopped:
            raise AzureFlexError("Cannot modify extensions in the VM when the VM is not running.",
                                 code="OperationNotAllowed", status=409, request_id="req-%s" % vm_name)

    def begin_create_or_update(self, resource_group, vm_name, extension_name, body):
        self.writes.append(("PUT", vm_name, body))
        self._refuse_if_stopped(vm_name)
        result = {"name": extension_name, "id": VM_PREFIX + vm_name + "/extensions/" + extension_name,
                  "properties": dict(body["properties"], provisioningState="Succeeded")}
        result["properties"].pop("protectedSettings", None)
        self.installed[(vm_name, extension_name)] = result
        return FakePoller(result)

    def begin_update(self, resource_group, vm_name, extension_name, body):
        self.writes.append(("PATCH", vm_name, body))
        self._refuse_if_stopped(vm_name)
        result = self.installed[(vm_name, extension_name)]
        result["properties"].update({k: v for k, v in body["properties"].items() if k != "protectedSettings"})
        return FakePoller(result)

    def begin_delete(self, resource_group, vm_name, extension_name):
        self.writes.append(("DELETE", vm_name, None))
        self._refuse_if_stopped(vm_name)
        self.installed.pop((vm_name, extension_name), None)
        return FakePoller(None)


class FakeModule:
    """What run() uses of AzureFlexModule, with fake clients and a fixed selection."""

    def __init__(self, params, members, fake_extensions, check_mode=False):
        defaults = {"resource_group": "rg", "scale_set": "web", "scale_set_id": None, "power_states": None,
                    "zones": None, "fault_domains": None, "tags": None, "member_source": "resource_graph",
                    "state": "present", "name": "CustomScript", "publisher": "Microsoft.Azure.Extensions",
                    "type": "CustomScript", "type_handler_version": "2.1", "settings": {"a": 1},
                    "protected_settings": None, "auto_upgrade_minor_version": None, "force_update_tag": None}
        defaults.update(params)
        self.params = defaults
        self.check_mode = check_mode
        self._diff = True
        self.deadline = Deadline(60)
        self.clients = types.SimpleNamespace(compute=lambda: types.SimpleNamespace(
            virtual_machine_extensions=fake_extensions))
        scale_set = {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web",
                     "name": "web", "resource_group": "rg"}
        self._selection = types.SimpleNamespace(scale_set=scale_set, members=members)

    def selector(self):
        return types.SimpleNamespace(select=lambda criteria: self._selection,
                                     select_current=lambda criteria: self._selection)

    def fan_out(self, func, items):
        return run_bounded(func, items, 4, self.deadline)

    def run_operation(self, begin, description):
        poller = begin()
        return True, poller.result()

    def retry_summary(self):
        return {"retries": 0, "throttled_responses": 0}

    def selection_outcome(self):
        return []

    scale_set = None
    mark_or_act = AzureFlexModule.mark_or_act
    common_result = AzureFlexModule.common_result
    member_result = AzureFlexModule.member_result
    report_members = AzureFlexModule.report_members


def test_check_mode_writes_nothing_and_predicts():
    fake = FakeExtensions({})
    result = module.run(FakeModule({"instances": ["all"]}, [member("a"), member("b")], fake, check_mode=True))
    assert fake.writes == []
    assert [entry["status"] for entry in result["instances"]] == ["would_change", "would_change"]
    assert result["changed"] is True
    assert result["diff"]["before"] == {"extensions": {"a": None, "b": None}}


def test_install_then_rerun_is_idempotent():
    fake = FakeExtensions({})
    params = {"instances": ["all"], "protected_settings": {"secret": "s"}}
    first = module.run(FakeModule(params, [member("a"), member("b")], fake))
    assert [w[0] for w in fake.writes] == ["PUT", "PUT"]
    assert fake.writes[0][2]["properties"]["protectedSettings"] == {"secret": "s"}
    assert first["counts"] == {"selected": 2, "changed": 2, "skipped": 0, "failed": 0, "filtered_out": 0}
    assert first["instances"][0]["after"]["settings"] == {"a": 1}
    second = module.run(FakeModule(params, [member("a"), member("b")], fake))
    assert len(fake.writes) == 2
    assert second["changed"] is False


def test_a_settings_change_is_a_patch_of_the_settings_only():
    fake = FakeExtensions({("a", "CustomScript"): rest_extension(settings={"a": 0}, tag="keep")})
    result = module.run(FakeModule({"instances": ["a"]}, [member("a")], fake))
    assert fake.writes == [("PATCH", "a", {"properties": {"settings": {"a": 1}}})]
    assert result["instances"][0]["after"]["force_update_tag"] == "keep"


def test_a_member_azure_refuses_is_reported_and_fails_the_task_after_the_others():
    fake = FakeExtensions({}, stopped=["b"])
    with pytest.raises(MemberFailures) as raised:
        module.run(FakeModule({"instances": ["a", "b"]}, [member("a"), member("b", "deallocated")], fake))
    result = raised.value.result
    entries = {entry["name"]: entry for entry in result["instances"]}
    assert entries["a"]["status"] == "changed"
    assert entries["b"]["status"] == "failed"
    assert entries["b"]["error"] == {"msg": "Cannot modify extensions in the VM when the VM is not running.",
                                     "code": "OperationNotAllowed", "status": 409, "request_id": "req-b"}
    assert result["counts"] == {"selected": 2, "changed": 1, "skipped": 0, "failed": 1, "filtered_out": 0}
    assert "b: OperationNotAllowed" in raised.value.msg


def test_absent_deletes_where_present_only():
    fake = FakeExtensions({("a", "CustomScript"): rest_extension()})
    result = module.run(FakeModule({"instances": ["all"], "state": "absent"}, [member("a"), member("b")], fake))
    assert fake.writes == [("DELETE", "a", None)]
    assert [entry["status"] for entry in result["instances"]] == ["changed", "skipped"]


def test_the_extension_name_is_validated_before_any_request():
    fake = FakeExtensions({})
    with pytest.raises(AzureFlexError, match="Extension name"):
        module.run(FakeModule({"instances": ["all"], "name": "a/b"}, [member("a")], fake))
    assert fake.writes == []


def test_every_option_documented_is_in_the_argument_spec():
    spec = module.argument_spec()
    assert spec["protected_settings"]["no_log"] is True
    assert set(module.DESIRED_OPTIONS) <= set(spec)


@pytest.mark.parametrize("check_mode", [False, True])
def test_members_not_running_selected_implicitly_are_skipped_in_both_modes(check_mode):
    """F7: the same decision in check mode and in a real run, as flex_instance_action makes it."""
    fake = FakeExtensions({}, stopped=["b", "c"])
    members = [member("a"), member("b", "deallocated"), member("c", "stopped")]

    result = module.run(FakeModule({"instances": ["all"]}, members, fake, check_mode=check_mode))

    entries = {entry["name"]: entry for entry in result["instances"]}
    assert entries["a"]["status"] == ("would_change" if check_mode else "changed")
    assert [(entries[n]["status"], entries[n]["reason"]) for n in ("b", "c")] == [
        ("skipped", "not running (power state deallocated): Azure changes extensions of running VMs only"),
        ("skipped", "not running (power state stopped): Azure changes extensions of running VMs only")]
    assert [write[1] for write in fake.writes] == ([] if check_mode else ["a"])


def test_check_mode_predicts_the_refusal_of_a_named_member_that_is_not_running():
    """F7: check mode used to say would_change for a deallocated member the real run fails with 409."""
    fake = FakeExtensions({}, stopped=["b"])

    with pytest.raises(MemberFailures) as raised:
        module.run(FakeModule({"instances": ["a", "b"]}, [member("a"), member("b", "deallocated")], fake,
                              check_mode=True))

    assert fake.writes == []
    entries = {entry["name"]: entry for entry in raised.value.result["instances"]}
    assert entries["a"]["status"] == "would_change"
    assert entries["b"]["status"] == "would_fail" and entries["b"]["changed"] is False
    assert entries["b"]["error"]["code"] == "OperationNotAllowed"
    assert raised.value.msg == "1 of 2 member(s) would fail to apply extension CustomScript: b: OperationNotAllowed"
    assert raised.value.result["counts"]["failed"] == 1


def test_nothing_to_do_on_a_stopped_member_is_not_a_refusal():
    fake = FakeExtensions({}, stopped=["b"])

    result = module.run(FakeModule({"instances": ["b"], "state": "absent"}, [member("b", "deallocated")], fake,
                                   check_mode=True))

    assert result["instances"][0]["status"] == "skipped" and result["instances"][0]["reason"] == "already absent"
    assert fake.writes == []
