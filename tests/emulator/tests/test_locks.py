"""Management locks: every scope and URL style, inheritance, and enforcement (409 ScopeLocked)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from _support import (COMPUTE_API, FLEX, JUMPBOX, LOCKS_API, RG, arm_requests, flex_members, power, vm_id,
                      vmss_id)

CND = {"properties": {"level": "CanNotDelete", "notes": "keep it"}}
RO = {"properties": {"level": "ReadOnly"}}


@pytest.fixture()
def locks(sdk):
    return sdk.locks().management_locks


def rg_scope(sub):
    return "/subscriptions/%s/resourceGroups/%s" % (sub, RG)


def locked_message(target, verb, *scopes):
    return ("The scope '%s' cannot perform %s operation because following scope(s) are locked: '%s'. Please remove "
            "the lock and try again." % (target, verb, "','".join(scopes)))


def assert_scope_locked(info, target, verb, *scopes):
    assert isinstance(info.value, ResourceExistsError)
    assert info.value.status_code == 409
    assert info.value.error.code == "ScopeLocked"
    assert info.value.error.message == locked_message(target, verb, *scopes)


# -- CRUD at each scope ------------------------------------------------------------------------


def test_subscription_lock_crud(emu, sdk, locks, raw):
    sub = sdk.subscription_id
    lock = locks.create_or_update_at_subscription_level("sublock", CND)
    assert lock.id == "/subscriptions/%s/providers/Microsoft.Authorization/locks/sublock" % sub
    assert lock.name == "sublock" and lock.type == "Microsoft.Authorization/locks"
    assert lock.level == "CanNotDelete" and lock.notes == "keep it"
    assert locks.get_at_subscription_level("sublock").level == "CanNotDelete"
    again = locks.create_or_update_at_subscription_level("sublock", RO)
    assert again.level == "ReadOnly" and again.notes is None
    assert [lock.name for lock in locks.list_at_subscription_level()] == ["sublock"]
    locks.delete_at_subscription_level("sublock")
    with pytest.raises(ResourceNotFoundError) as info:
        locks.get_at_subscription_level("sublock")
    assert info.value.error.code == "LockNotFound"
    # Status codes on the wire: 201 created, 200 replaced, 200 deleted, 204 nothing to delete.
    path = "/subscriptions/%s/providers/Microsoft.Authorization/locks/w" % sub
    assert raw("PUT", path, body=CND, api_version=LOCKS_API).status_code == 201
    assert raw("PUT", path, body=CND, api_version=LOCKS_API).status_code == 200
    assert raw("DELETE", path, api_version=LOCKS_API).status_code == 200
    assert raw("DELETE", path, api_version=LOCKS_API).status_code == 204


def test_resource_group_lock_crud(sdk, locks):
    lock = locks.create_or_update_at_resource_group_level(RG, "rglock", CND)
    assert lock.id == rg_scope(sdk.subscription_id) + "/providers/Microsoft.Authorization/locks/rglock"
    assert locks.get_at_resource_group_level(RG, "rglock").notes == "keep it"
    assert [lock.name for lock in locks.list_at_resource_group_level(RG)] == ["rglock"]
    locks.delete_at_resource_group_level(RG, "rglock")
    assert list(locks.list_at_resource_group_level(RG)) == []


def test_resource_level_lock_with_empty_parent_path(emu, sdk, locks):
    before = emu.request_count()
    lock = locks.create_or_update_at_resource_level(RG, "Microsoft.Compute", "", "virtualMachines", JUMPBOX,
                                                    "vmlock", CND)
    put = arm_requests(emu, before)[0]
    # The SDK sends resourcegroups in lower case and a double slash; the emulator routes it anyway.
    assert put["status"] == 201
    assert lock.id == vm_id(sdk.subscription_id, JUMPBOX) + "/providers/Microsoft.Authorization/locks/vmlock"
    got = locks.get_at_resource_level(RG, "Microsoft.Compute", "", "virtualMachines", JUMPBOX, "vmlock")
    assert got.level == "CanNotDelete"
    listed = list(locks.list_at_resource_level(RG, "Microsoft.Compute", "", "virtualMachines", JUMPBOX))
    assert [lock.name for lock in listed] == ["vmlock"]
    locks.delete_at_resource_level(RG, "Microsoft.Compute", "", "virtualMachines", JUMPBOX, "vmlock")
    assert list(locks.list_at_resource_level(RG, "Microsoft.Compute", "", "virtualMachines", JUMPBOX)) == []


@pytest.mark.parametrize("leading_slash", [True, False])
def test_by_scope_percent_encoded(emu, sdk, locks, raw, leading_slash):
    scope = vm_id(sdk.subscription_id, JUMPBOX)
    given = scope if leading_slash else scope[1:]
    lock = locks.create_or_update_by_scope(given, "scoped", RO)
    assert lock.id == scope + "/providers/Microsoft.Authorization/locks/scoped"
    assert locks.get_by_scope(given, "scoped").level == "ReadOnly"
    assert [lock.name for lock in locks.list_by_scope(given)] == ["scoped"]
    # What the SDK sent: the scope's slashes percent-encoded.
    encoded = "/" + quote(scope, safe="") + "/providers/Microsoft.Authorization/locks/scoped"
    assert "%2F" in encoded
    assert raw("GET", encoded, api_version=LOCKS_API).json()["id"] == lock.id
    locks.delete_by_scope(given, "scoped")
    with pytest.raises(ResourceNotFoundError):
        locks.get_by_scope(given, "scoped")


def test_lock_validation(sdk, locks, raw):
    with pytest.raises(HttpResponseError) as info:
        locks.create_or_update_at_resource_group_level(RG, "bad", {"properties": {"level": "Sometimes"}})
    assert info.value.status_code == 400 and info.value.error.code == "InvalidLockLevel"
    reply = raw("PUT", rg_scope(sdk.subscription_id) + "/providers/Microsoft.Authorization/locks/a:b", body=CND,
                api_version=LOCKS_API)
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "InvalidLockName"
    with pytest.raises(HttpResponseError) as info:
        locks.create_or_update_at_resource_group_level(RG, "long", {"properties": {"level": "ReadOnly",
                                                                                   "notes": "n" * 513}})
    assert info.value.status_code == 400
    with pytest.raises(ResourceNotFoundError) as info:
        locks.create_or_update_at_resource_group_level("ghost-rg", "l", CND)
    assert info.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(ResourceNotFoundError) as info:
        locks.create_or_update_by_scope(vm_id(sdk.subscription_id, "ghost"), "l", CND)
    assert info.value.error.code == "ResourceNotFound"
    assert list(locks.list_at_subscription_level()) == []


# -- enforcement -------------------------------------------------------------------------------


def test_cannot_delete_blocks_delete_only(sdk, locks, compute):
    target = vm_id(sdk.subscription_id, JUMPBOX)
    locks.create_or_update_by_scope(target, "nodelete", CND)
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_delete(RG, JUMPBOX)
    assert_scope_locked(info, target, "delete", target)
    # Reads, writes and actions are fine.
    compute.virtual_machines.begin_update(RG, JUMPBOX, {"tags": {"x": "1"}}).result()
    compute.virtual_machines.begin_restart(RG, JUMPBOX).result()
    assert compute.virtual_machines.get(RG, JUMPBOX).tags == {"x": "1"}


def test_read_only_blocks_writes_deletes_and_actions(emu, sdk, locks, compute):
    target = vm_id(sdk.subscription_id, JUMPBOX)
    locks.create_or_update_by_scope(target, "frozen", RO)
    before = emu.request_count()
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_update(RG, JUMPBOX, {"tags": {"x": "1"}})
    assert_scope_locked(info, target, "write", target)
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_create_or_update(RG, JUMPBOX, {"location": "eastus", "tags": {}})
    assert_scope_locked(info, target, "write", target)
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_delete(RG, JUMPBOX)
    assert_scope_locked(info, target, "delete", target)
    for action in ("begin_restart", "begin_power_off", "begin_deallocate", "begin_redeploy", "begin_start"):
        with pytest.raises(ResourceExistsError) as info:
            getattr(compute.virtual_machines, action)(RG, JUMPBOX)
        assert_scope_locked(info, target, "write", target)
    with pytest.raises(ResourceExistsError):
        compute.virtual_machine_extensions.begin_create_or_update(
            RG, JUMPBOX, "e", {"location": "eastus", "properties": {"publisher": "p", "type": "t",
                                                                    "typeHandlerVersion": "1.0"}})
    # Every refusal is a single 409: no Retry-After, so the SDK does not retry.
    assert {e["status"] for e in arm_requests(emu, before)} == {409}
    assert len(arm_requests(emu, before)) == 9
    # Reads still work and nothing changed.
    vm = compute.virtual_machines.get(RG, JUMPBOX)
    assert vm.tags == {} and vm.provisioning_state == "Succeeded"
    assert power(compute, JUMPBOX) == "running"


def test_read_only_posts_can_be_allowed(emu, sdk, locks, compute):
    target = vm_id(sdk.subscription_id, JUMPBOX)
    locks.create_or_update_by_scope(target, "frozen", RO)
    emu.settings(readonly_blocks_post=False)
    compute.virtual_machines.begin_restart(RG, JUMPBOX).result()
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_update(RG, JUMPBOX, {"tags": {"x": "1"}})
    assert_scope_locked(info, target, "write", target)


def test_inherited_from_resource_group(sdk, locks, compute):
    sub = sdk.subscription_id
    member = flex_members(compute, sub)[0]
    locks.create_or_update_at_resource_group_level(RG, "rgfrozen", RO)
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_restart(RG, member)
    assert_scope_locked(info, vm_id(sub, member), "write", rg_scope(sub))
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machine_scale_sets.begin_restart(RG, FLEX)
    assert_scope_locked(info, vmss_id(sub, FLEX), "write", rg_scope(sub))
    # Resources created later are covered too.
    with pytest.raises(ResourceExistsError):
        compute.virtual_machines.begin_create_or_update(RG, "later", {"location": "eastus"})


def test_inherited_from_subscription(sdk, locks, compute):
    sub = sdk.subscription_id
    locks.create_or_update_at_subscription_level("subkeep", CND)
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_delete(RG, JUMPBOX)
    assert_scope_locked(info, vm_id(sub, JUMPBOX), "delete", "/subscriptions/%s" % sub)
    with pytest.raises(ResourceExistsError) as info:
        sdk.resources().resource_groups.begin_delete(RG)
    assert info.value.error.code == "ScopeLocked"


def test_most_restrictive_wins(sdk, locks, compute):
    sub = sdk.subscription_id
    locks.create_or_update_by_scope(vm_id(sub, JUMPBOX), "keep", CND)
    locks.create_or_update_at_resource_group_level(RG, "freeze", RO)
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_update(RG, JUMPBOX, {"tags": {}})
    assert_scope_locked(info, vm_id(sub, JUMPBOX), "write", rg_scope(sub))
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_delete(RG, JUMPBOX)
    assert info.value.error.message == locked_message(vm_id(sub, JUMPBOX), "delete", rg_scope(sub),
                                                      vm_id(sub, JUMPBOX)) or \
        info.value.error.message == locked_message(vm_id(sub, JUMPBOX), "delete", vm_id(sub, JUMPBOX),
                                                   rg_scope(sub))
    # Removing the ReadOnly lock leaves only the CanNotDelete one.
    locks.delete_at_resource_group_level(RG, "freeze")
    compute.virtual_machines.begin_update(RG, JUMPBOX, {"tags": {"ok": "1"}}).result()


def test_locks_can_be_managed_under_a_read_only_lock(sdk, locks):
    locks.create_or_update_at_resource_group_level(RG, "freeze", RO)
    locks.create_or_update_by_scope(vm_id(sdk.subscription_id, JUMPBOX), "extra", CND)
    locks.delete_by_scope(vm_id(sdk.subscription_id, JUMPBOX), "extra")
    locks.delete_at_resource_group_level(RG, "freeze")
    assert list(locks.list_at_resource_group_level(RG)) == []


def test_resource_group_delete_fails_when_anything_inside_is_locked(sdk, locks, compute):
    sub = sdk.subscription_id
    member = flex_members(compute, sub)[3]
    locks.create_or_update_by_scope(vm_id(sub, member), "keep", CND)
    with pytest.raises(ResourceExistsError) as info:
        sdk.resources().resource_groups.begin_delete(RG)
    assert_scope_locked(info, rg_scope(sub), "delete", vm_id(sub, member))
    assert sdk.resources().resource_groups.get(RG).properties.provisioning_state == "Succeeded"
    assert len(list(compute.virtual_machines.list(RG))) == 13


def test_batch_delete_with_a_locked_member(sdk, locks, compute):
    sub = sdk.subscription_id
    members = flex_members(compute, sub)
    locks.create_or_update_by_scope(vm_id(sub, members[1]), "keep", CND)
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machine_scale_sets.begin_delete_instances(RG, FLEX, {"instanceIds": members[:3]})
    assert_scope_locked(info, vm_id(sub, members[1]), "delete", vm_id(sub, members[1]))
    assert flex_members(compute, sub) == members
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machine_scale_sets.begin_delete(RG, FLEX)
    assert info.value.error.code == "ScopeLocked"
    assert compute.virtual_machine_scale_sets.get(RG, FLEX).provisioning_state == "Succeeded"


def test_lock_on_scale_set_blocks_its_batch_actions(sdk, locks, compute):
    sub = sdk.subscription_id
    locks.create_or_update_by_scope(vmss_id(sub, FLEX), "setfrozen", RO)
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machine_scale_sets.begin_delete_instances(RG, FLEX,
                                                                  {"instanceIds": flex_members(compute, sub)[:1]})
    assert_scope_locked(info, vmss_id(sub, FLEX), "write", vmss_id(sub, FLEX))
    # The member VMs are separate resources: their own API still works.
    compute.virtual_machines.begin_restart(RG, flex_members(compute, sub)[0]).result()


# -- listing -----------------------------------------------------------------------------------


def test_list_includes_below_and_inherited(emu, sdk, locks):
    sub = sdk.subscription_id
    locks.create_or_update_at_subscription_level("s", CND)
    locks.create_or_update_at_resource_group_level(RG, "g", CND)
    locks.create_or_update_by_scope(vm_id(sub, JUMPBOX), "v", RO)
    assert sorted(lock.name for lock in locks.list_at_subscription_level()) == ["g", "s", "v"]
    assert sorted(lock.name for lock in locks.list_at_resource_group_level(RG)) == ["g", "s", "v"]
    at_vm = locks.list_at_resource_level(RG, "Microsoft.Compute", "", "virtualMachines", JUMPBOX)
    assert sorted(lock.name for lock in at_vm) == ["g", "s", "v"]
    # atScope(): the locks that apply at the scope (at it or above), not the ones below.
    assert sorted(lock.name for lock in locks.list_at_resource_group_level(RG, filter="atScope()")) == ["g", "s"]
    emu.settings(lock_list_includes_inherited=False)
    assert sorted(lock.name for lock in locks.list_at_resource_group_level(RG)) == ["g", "v"]
    at_vm = locks.list_at_resource_level(RG, "Microsoft.Compute", "", "virtualMachines", JUMPBOX)
    assert [lock.name for lock in at_vm] == ["v"]


def test_lock_list_pages(emu, locks):
    emu.settings(page_size=2)
    for index in range(5):
        locks.create_or_update_at_resource_group_level(RG, "l%d" % index, CND)
    assert sorted(lock.name for lock in locks.list_at_resource_group_level(RG)) == ["l0", "l1", "l2", "l3", "l4"]


def test_locks_api_version(emu, sdk, locks, raw):
    locks.create_or_update_at_resource_group_level(RG, "v", CND)
    reply = raw("GET", rg_scope(sdk.subscription_id) + "/providers/Microsoft.Authorization/locks/v",
                api_version=COMPUTE_API)
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "NoRegisteredProviderFound"
