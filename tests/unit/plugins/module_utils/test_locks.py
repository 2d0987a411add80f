# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import AzureFlexError, InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils._locks import (
    LockReader,
    blocking_locks,
    describe_locks,
    lock_errors,
    lock_from_rest,
    lock_scope,
    protection_summary,
    validate_lock_name,
    validate_lock_notes,
)

SUB = "/subscriptions/00000000-0000-0000-0000-000000000001"
RG = SUB + "/resourceGroups/web-rg"
VM1 = RG + "/providers/Microsoft.Compute/virtualMachines/web_1"
VM2 = RG + "/providers/Microsoft.Compute/virtualMachines/web_2"
NIC = RG + "/providers/Microsoft.Network/networkInterfaces/web_1-nic"
OTHER_RG = SUB + "/resourceGroups/other-rg"
LOCKS = "/providers/Microsoft.Authorization/locks/"


def rest_lock(scope, name, level, notes=None):
    properties = {"level": level}
    if notes is not None:
        properties["notes"] = notes
    return {"id": scope + LOCKS + name, "name": name, "type": "Microsoft.Authorization/locks", "properties": properties}


class FakeLockOperations:
    def __init__(self, by_scope, in_group):
        self.by_scope = by_scope
        self.in_group = in_group
        self.calls = []

    def list_by_scope(self, scope, filter=None):  # pylint: disable=redefined-builtin
        self.calls.append(("list_by_scope", scope, filter))
        return list(self.by_scope)

    def list_at_resource_group_level(self, resource_group_name):
        self.calls.append(("list_at_resource_group_level", resource_group_name))
        return [lock for group, locks in self.in_group.items() if group.lower() == resource_group_name.lower()
                for lock in locks]


class FakeClients:
    def __init__(self, operations):
        self.operations = operations

    def locks(self):
        return type("LockClient", (), {"management_locks": self.operations})()


def member(member_id, group="web-rg"):
    return {"id": member_id, "resource_group": group, "name": member_id.rsplit("/", 1)[1]}


def reader(by_scope=(), in_group=None):
    operations = FakeLockOperations(list(by_scope), in_group or {})
    return LockReader(FakeClients(operations), SUB.rsplit("/", 1)[1]), operations


def test_lock_scope_is_taken_from_the_lock_id():
    assert lock_scope(VM1 + LOCKS + "keep") == VM1
    assert lock_scope(RG.lower() + "/providers/microsoft.authorization/LOCKS/keep") == RG.lower()
    assert lock_scope("/subscriptions/x/resourceGroups/rg") is None
    assert lock_scope(None) is None


def test_lock_from_rest_marks_locks_above_the_member_as_inherited():
    own = lock_from_rest(rest_lock(VM1, "keep", "CanNotDelete", "why"), VM1.upper())
    inherited = lock_from_rest(rest_lock(RG, "freeze", "ReadOnly"), VM1)
    assert own == {"name": "keep", "id": VM1 + LOCKS + "keep", "level": "CanNotDelete", "notes": "why", "scope": VM1,
                   "inherited": False}
    assert inherited["inherited"] is True
    assert inherited["notes"] is None


@pytest.mark.parametrize("levels, level, scale_in, actions", [
    ([], None, False, False),
    (["CanNotDelete"], "CanNotDelete", True, False),
    (["ReadOnly"], "ReadOnly", True, True),
    (["CanNotDelete", "ReadOnly"], "ReadOnly", True, True),
])
def test_the_most_restrictive_lock_wins(levels, level, scale_in, actions):
    locks = [lock_from_rest(rest_lock(VM1, "l%d" % index, value), VM1) for index, value in enumerate(levels)]
    summary = protection_summary(locks)
    assert (summary["level"], summary["protected_from_scale_in"], summary["protected_from_scale_set_actions"]) == \
        (level, scale_in, actions)


def test_own_locks_come_before_inherited_ones():
    locks = [lock_from_rest(rest_lock(SUB, "sub", "CanNotDelete"), VM1), lock_from_rest(rest_lock(VM1, "own", "ReadOnly"), VM1),
             lock_from_rest(rest_lock(RG, "group", "CanNotDelete"), VM1)]
    assert [lock["name"] for lock in protection_summary(locks)["locks"]] == ["own", "group", "sub"]


def test_any_lock_blocks_a_delete_but_only_read_only_blocks_an_action():
    protection = protection_summary([lock_from_rest(rest_lock(VM1, "keep", "CanNotDelete"), VM1),
                                     lock_from_rest(rest_lock(RG, "freeze", "ReadOnly"), VM1)])
    assert [lock["name"] for lock in blocking_locks(protection, deleting=True)] == ["keep", "freeze"]
    assert [lock["name"] for lock in blocking_locks(protection, deleting=False)] == ["freeze"]
    scale_in_only = protection_summary([lock_from_rest(rest_lock(VM1, "keep", "CanNotDelete"), VM1)])
    assert blocking_locks(scale_in_only, deleting=False) == []


def test_locks_are_described_with_their_scope():
    locks = [lock_from_rest(rest_lock(scope, name, "ReadOnly"), VM1) for scope, name in ((VM1, "a"), (RG, "b"), (SUB, "c"))]
    assert describe_locks(locks) == ("'a' (ReadOnly, on the VM), 'b' (ReadOnly, on resource group web-rg), "
                                     "'c' (ReadOnly, on subscription 00000000-0000-0000-0000-000000000001)")


def test_reader_combines_subscription_group_and_member_locks_in_two_calls():
    lock_reader, operations = reader(
        by_scope=[rest_lock(SUB, "sub-freeze", "ReadOnly")],
        in_group={"web-rg": [rest_lock(RG, "group-keep", "CanNotDelete"), rest_lock(VM1, "own", "CanNotDelete"),
                             rest_lock(NIC, "nic-keep", "CanNotDelete")]})
    protection = lock_reader.protection_by_member([member(VM1), member(VM2)])
    assert [lock["name"] for lock in protection[VM1.lower()]["locks"]] == ["own", "group-keep", "sub-freeze"]
    assert [lock["name"] for lock in protection[VM2.lower()]["locks"]] == ["group-keep", "sub-freeze"]
    assert protection[VM2.lower()]["level"] == "ReadOnly"
    assert operations.calls == [("list_by_scope", SUB, "atScope()"), ("list_at_resource_group_level", "web-rg")]


def test_reader_does_not_count_a_listing_twice_when_it_includes_inherited_locks():
    sub_lock = rest_lock(SUB, "sub-keep", "CanNotDelete")
    lock_reader, _operations = reader(by_scope=[sub_lock, rest_lock(RG, "below", "ReadOnly")],
                                      in_group={"web-rg": [sub_lock, rest_lock(VM1, "own", "ReadOnly")]})
    locks = lock_reader.protection_by_member([member(VM1)])[VM1.lower()]["locks"]
    # The subscription listing's lock of a group below is not the subscription's own; the group listing's
    # copy of the subscription lock is the same lock.
    assert [lock["name"] for lock in locks] == ["own", "sub-keep"]


def test_reader_lists_each_resource_group_once_and_matches_ids_case_insensitively():
    lock_reader, operations = reader(in_group={"web-rg": [rest_lock(VM1.lower(), "own", "ReadOnly")],
                                               "other-rg": [rest_lock(OTHER_RG, "other", "CanNotDelete")]})
    other_vm = OTHER_RG + "/providers/Microsoft.Compute/virtualMachines/web_9"
    protection = lock_reader.protection_by_member([member(VM1), member(VM2, "WEB-RG"), member(other_vm, "other-rg")])
    assert protection[VM1.lower()]["level"] == "ReadOnly"
    assert protection[VM2.lower()]["level"] is None
    assert protection[other_vm.lower()]["locks"][0]["name"] == "other"
    assert sorted(call[1] for call in operations.calls if call[0] == "list_at_resource_group_level") == ["other-rg", "web-rg"]


def test_reader_makes_no_call_without_members():
    lock_reader, operations = reader()
    assert lock_reader.protection_by_member([]) == {}
    assert operations.calls == []


@pytest.mark.parametrize("name", ["", "a/b", "a:b", "a%b", "a?b", "x" * 261, "tab\there"])
def test_invalid_lock_names_are_refused(name):
    with pytest.raises(InvalidInputError):
        validate_lock_name(name)


def test_valid_lock_names_and_notes_pass():
    assert validate_lock_name("azure-flex-protect-from-scale-in") == "azure-flex-protect-from-scale-in"
    assert validate_lock_notes("x" * 512) == "x" * 512
    assert validate_lock_notes(None) is None
    with pytest.raises(InvalidInputError, match="513 characters"):
        validate_lock_notes("x" * 513)


def test_a_403_names_the_role_the_lock_call_needs():
    with pytest.raises(AzureFlexError) as raised:
        with lock_errors("Failed to lock VM web_1"):
            raise AzureFlexError("not authorized", code="AuthorizationFailed", status=403, request_id="r-1")
    assert raised.value.msg.endswith("Owner or User Access Administrator role, or a custom role with "
                                     "Microsoft.Authorization/locks/*.")
    assert (raised.value.code, raised.value.request_id) == ("AuthorizationFailed", "r-1")


def test_other_errors_pass_unchanged():
    with pytest.raises(AzureFlexError) as raised:
        with lock_errors("Failed to lock VM web_1"):
            raise AzureFlexError("gone", code="ResourceNotFound", status=404)
    assert raised.value.msg == "gone"


# -- native protection (protectionPolicy by VM name) -------------------------------------------------------------

from ansible_collections.azure_flex.vmss.plugins.module_utils._locks import (  # noqa: E402
    LEVEL_NATIVE,
    NativeProtection,
    ProtectionReader,
    native_flags,
    wanted_native,
)

NOT_PROTECTED = {"protect_from_scale_in": False, "protect_from_scale_set_actions": False}
SCALE_IN = {"protect_from_scale_in": True, "protect_from_scale_set_actions": False}
ACTIONS = {"protect_from_scale_in": True, "protect_from_scale_set_actions": True}


def test_native_flags():
    assert native_flags(None) == NOT_PROTECTED
    assert native_flags({"protectFromScaleIn": True}) == SCALE_IN
    # Protection from scale-set actions implies protection from scale-in.
    assert native_flags({"protectFromScaleSetActions": True}) == ACTIONS


@pytest.mark.parametrize("current, protection, state, policy", [
    (NOT_PROTECTED, "scale_in", "present", {"protectFromScaleIn": True, "protectFromScaleSetActions": False}),
    (NOT_PROTECTED, "scale_set_actions", "present", {"protectFromScaleIn": True, "protectFromScaleSetActions": True}),
    (ACTIONS, "scale_in", "present", {"protectFromScaleIn": True, "protectFromScaleSetActions": True}),
    (ACTIONS, "scale_set_actions", "absent", {"protectFromScaleIn": True, "protectFromScaleSetActions": False}),
    (ACTIONS, "scale_in", "absent", {"protectFromScaleIn": False, "protectFromScaleSetActions": False}),
    (NOT_PROTECTED, "scale_set_actions", "absent", {"protectFromScaleIn": False, "protectFromScaleSetActions": False}),
])
def test_wanted_native(current, protection, state, policy):
    assert wanted_native(current, protection, state) == policy


def test_native_flags_in_the_summary_and_in_what_blocks():
    unprotected = protection_summary([], NOT_PROTECTED)
    assert not unprotected["protected_from_scale_in"] and unprotected["native"] == NOT_PROTECTED
    assert blocking_locks(unprotected, deleting=True) == []
    scale_in = protection_summary([], SCALE_IN)
    assert scale_in["protected_from_scale_in"] and not scale_in["protected_from_scale_set_actions"]
    assert scale_in["level"] is None
    assert blocking_locks(scale_in, deleting=False) == []
    assert [lock["name"] for lock in blocking_locks(scale_in, deleting=True)] == ["protectFromScaleIn"]
    frozen = protection_summary([lock_from_rest(rest_lock(VM1, "keep", "CanNotDelete"), VM1)], ACTIONS)
    blocking = blocking_locks(frozen, deleting=False)
    assert [(lock["name"], lock["level"]) for lock in blocking] == [("protectFromScaleSetActions", LEVEL_NATIVE)]
    assert [lock["name"] for lock in blocking_locks(frozen, deleting=True)] == ["keep", "protectFromScaleSetActions"]
    assert describe_locks(blocking) == "'protectFromScaleSetActions' (instance protection of the VM)"
    # Not read (the lock mechanism, or Azure refused): nothing native blocks.
    assert protection_summary([])["native"] is None


class FakeVmssVms:
    def __init__(self, policies=None, refuse=False):
        self.policies = policies or {}
        self.refuse = refuse
        self.calls = []

    def get(self, resource_group, scale_set, name):
        self.calls.append(("get", name))
        if self.refuse:
            raise AzureFlexError("Virtual Machine Scale Set VM instanceId must be a number.", code="InvalidParameter",
                                 status=400)
        if name not in self.policies:
            raise AzureFlexError("not found", code="ResourceNotFound", status=404)
        return {"name": name, "properties": {"protectionPolicy": self.policies[name]}}


class NativeClients(FakeClients):
    def __init__(self, operations, vmss_vms):
        super().__init__(operations)
        self.vmss_vms = vmss_vms

    def compute(self):
        return type("Compute", (), {"virtual_machine_scale_set_vms": self.vmss_vms})()


SCALE_SET = {"name": "web", "resource_group": "web-rg"}
MEMBERS = [{"id": VM1, "name": "web_1", "resource_group": "web-rg"},
           {"id": VM2, "name": "web_2", "resource_group": "web-rg"}]


def test_native_protection_probes_once_where_azure_refuses():
    vms = FakeVmssVms(refuse=True)
    native = NativeProtection(NativeClients(FakeLockOperations([], {}), vms), SCALE_SET)
    assert native.flags_by_member(MEMBERS) == {}
    assert vms.calls == [("get", "web_1")]
    assert "instanceId must be a number" in native.refusal_message()


def test_native_protection_reads_every_member_where_azure_accepts():
    vms = FakeVmssVms({"web_1": {"protectFromScaleIn": True}, "web_2": None})
    native = NativeProtection(NativeClients(FakeLockOperations([], {}), vms), SCALE_SET)
    assert native.flags_by_member(MEMBERS) == {VM1.lower(): SCALE_IN, VM2.lower(): NOT_PROTECTED}
    assert native.refusal is None and native.refusal_message() is None


def test_native_protection_other_errors_are_not_a_refusal():
    class Broken(FakeVmssVms):
        def get(self, resource_group, scale_set, name):
            raise AzureFlexError("boom", code="InternalServerError", status=500)

    with pytest.raises(AzureFlexError):
        NativeProtection(NativeClients(FakeLockOperations([], {}), Broken()), SCALE_SET).flags_by_member(MEMBERS)


def test_protection_reader_merges_locks_and_native_flags():
    operations = FakeLockOperations([], {"web-rg": [rest_lock(VM1, "keep", "CanNotDelete")]})
    vms = FakeVmssVms({"web_1": None, "web_2": {"protectFromScaleSetActions": True}})
    clients = NativeClients(operations, vms)
    protections = ProtectionReader(clients, "00000000-0000-0000-0000-000000000001", SCALE_SET).protection_by_member(
        [dict(member, resource_group="web-rg") for member in MEMBERS])
    assert protections[VM1.lower()]["level"] == "CanNotDelete"
    assert protections[VM1.lower()]["native"] == NOT_PROTECTED
    assert protections[VM2.lower()]["protected_from_scale_set_actions"] is True
    assert [lock["name"] for lock in blocking_locks(protections[VM2.lower()], deleting=False)] == [
        "protectFromScaleSetActions"]
