"""Scale sets: Flexible and Uniform, the Flex batch delete with VM names, Flex refusals of
Uniform-only APIs, scale-out / scale-in, batch power actions."""

from __future__ import annotations

import re

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from _support import (COMPUTE_API, FLEX, JUMPBOX, RG, UNIFORM, arm_requests, codes, flex_members, max_down,
                      events_for, power, vm_id, vmss_id, wait_until)


def subnet_id(sub):
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/virtualNetworks/demo-vnet/subnets/" \
           "default" % (sub, RG)


def flex_body(sub, capacity=0, fd_count=2, zones=None, profile=True):
    body = {"location": "eastus", "sku": {"name": "Standard_D2s_v5", "capacity": capacity},
            "properties": {"orchestrationMode": "Flexible", "platformFaultDomainCount": fd_count}}
    if profile:
        body["properties"]["virtualMachineProfile"] = {
            "osProfile": {"computerNamePrefix": "api", "adminUsername": "azureuser"},
            "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu", "sku": "22_04",
                                                  "version": "latest"}},
            "networkProfile": {"networkApiVersion": "2020-11-01", "networkInterfaceConfigurations": [{
                "name": "nic", "properties": {"primary": True, "deleteOption": "Delete", "ipConfigurations": [{
                    "name": "ip", "properties": {"subnet": {"id": subnet_id(sub)}}}]}}]},
        }
    if zones:
        body["zones"] = zones
    return body


# -- reading scale sets ------------------------------------------------------------------------


def test_get_flexible_set(sdk, compute):
    vmss = compute.virtual_machine_scale_sets.get(RG, FLEX)
    assert vmss.id == vmss_id(sdk.subscription_id, FLEX)
    assert vmss.type == "Microsoft.Compute/virtualMachineScaleSets"
    assert vmss.orchestration_mode == "Flexible"
    assert vmss.platform_fault_domain_count == 3
    assert vmss.single_placement_group is False
    assert vmss.sku.capacity == 12 and vmss.sku.name == "Standard_D2s_v5"
    assert vmss.provisioning_state == "Succeeded"
    assert re.match(r"^[0-9a-f-]{36}$", vmss.unique_id)
    assert vmss.upgrade_policy.mode == "Manual"
    assert vmss.tags == {"app": "web"}
    assert [e.name for e in vmss.virtual_machine_profile.extension_profile.extensions] == ["HealthExtension"]


def test_get_uniform_set(compute):
    vmss = compute.virtual_machine_scale_sets.get(RG, UNIFORM)
    assert vmss.orchestration_mode == "Uniform"
    assert vmss.sku.capacity == 3
    assert vmss.single_placement_group is True


def test_list_scale_sets(compute):
    assert sorted(s.name for s in compute.virtual_machine_scale_sets.list(RG)) == [UNIFORM, FLEX]
    assert sorted(s.name for s in compute.virtual_machine_scale_sets.list_all()) == [UNIFORM, FLEX]


def test_get_missing_set(compute):
    with pytest.raises(ResourceNotFoundError) as info:
        compute.virtual_machine_scale_sets.get(RG, "ghost")
    assert info.value.error.code == "ResourceNotFound"
    assert "'Microsoft.Compute/virtualMachineScaleSets/ghost'" in info.value.error.message


# -- creating and validating -------------------------------------------------------------------


def test_create_flex_set_with_model_and_capacity(emu, sdk, compute):
    sub = sdk.subscription_id
    emu.settings(durations={"create": 50})  # 1 s
    poller = compute.virtual_machine_scale_sets.begin_create_or_update(RG, "api", flex_body(sub, capacity=4))
    assert compute.virtual_machine_scale_sets.get(RG, "api").provisioning_state == "Creating"
    members = flex_members(compute, sub, "api")
    assert len(members) == 4 and all(re.match(r"^api_[0-9a-f]{8}$", n) for n in members)
    assert {compute.virtual_machines.get(RG, n).provisioning_state for n in members} == {"Creating"}
    vmss = poller.result()
    assert vmss.provisioning_state == "Succeeded" and vmss.sku.capacity == 4
    fds = sorted(compute.virtual_machines.get(RG, n).platform_fault_domain for n in members)
    assert fds == [0, 0, 1, 1]
    for name in members:
        vm = compute.virtual_machines.get(RG, name)
        assert vm.provisioning_state == "Succeeded"
        assert vm.os_profile.computer_name.startswith("api")
        nic = vm.network_profile.network_interfaces[0].id
        assert sdk.network().network_interfaces.get(RG, nic.rsplit("/", 1)[1]).virtual_machine.id == vm.id
        assert power(compute, name) == "running"


def test_create_zonal_flex_set_spreads_zones(sdk, compute):
    compute.virtual_machine_scale_sets.begin_create_or_update(
        RG, "zoned", flex_body(sdk.subscription_id, capacity=3, fd_count=1, zones=["1", "2", "3"])).result()
    zones = sorted(compute.virtual_machines.get(RG, n).zones[0]
                   for n in flex_members(compute, sdk.subscription_id, "zoned"))
    assert zones == ["1", "2", "3"]


def test_flex_set_without_model(sdk, compute):
    vmss = compute.virtual_machine_scale_sets.begin_create_or_update(
        RG, "bare", flex_body(sdk.subscription_id, profile=False)).result()
    assert vmss.virtual_machine_profile is None and vmss.sku.capacity == 0
    # It cannot create instances itself; nothing half-made is left behind.
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machine_scale_sets.begin_create_or_update(
            RG, "bare2", flex_body(sdk.subscription_id, capacity=2, profile=False))
    assert info.value.status_code == 400 and info.value.error.code == "InvalidParameter"
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machine_scale_sets.get(RG, "bare2")
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machine_scale_sets.begin_update(RG, "bare", {"sku": {"capacity": 1}})
    assert info.value.status_code == 400
    assert compute.virtual_machine_scale_sets.get(RG, "bare").sku.capacity == 0


@pytest.mark.parametrize("change, target", [
    ({"properties": {"orchestrationMode": "Flexible"}}, "platformFaultDomainCount"),
    ({"properties": {"orchestrationMode": "Flexible", "platformFaultDomainCount": 4}}, "platformFaultDomainCount"),
    ({"properties": {"orchestrationMode": "Flexible", "platformFaultDomainCount": 1,
                     "singlePlacementGroup": True}}, "singlePlacementGroup"),
    ({"properties": {"orchestrationMode": "Flexible", "platformFaultDomainCount": 1, "overprovision": True}},
     "overprovision"),
    ({"properties": {"orchestrationMode": "Sideways"}}, "orchestrationMode"),
    ({"sku": {"capacity": -1}, "properties": {"orchestrationMode": "Flexible", "platformFaultDomainCount": 1}},
     "sku.capacity"),
])
def test_flex_create_validation(compute, change, target):
    body = dict({"location": "eastus"}, **change)
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machine_scale_sets.begin_create_or_update(RG, "invalid", body)
    assert info.value.status_code == 400
    assert info.value.error.code == "InvalidParameter"
    assert info.value.error.target == target
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machine_scale_sets.get(RG, "invalid")


def test_immutable_scale_set_properties(sdk, compute, raw):
    # Sent raw: the older SDK's update model has no orchestrationMode and would drop it.
    reply = raw("PATCH", vmss_id(sdk.subscription_id, FLEX), body={"properties": {"orchestrationMode": "Uniform"}},
                api_version=COMPUTE_API)
    assert reply.status_code == 409
    assert reply.json()["error"]["code"] == "PropertyChangeNotAllowed"
    assert reply.json()["error"]["target"] == "orchestrationMode"
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machine_scale_sets.begin_create_or_update(
            RG, FLEX, {"location": "eastus", "properties": {"orchestrationMode": "Uniform"}})
    assert info.value.error.code == "PropertyChangeNotAllowed"
    reply = raw("PATCH", vmss_id(sdk.subscription_id, FLEX), body={"properties": {"platformFaultDomainCount": 2}},
                api_version=COMPUTE_API)
    assert reply.status_code == 409 and reply.json()["error"]["target"] == "platformFaultDomainCount"
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machine_scale_sets.begin_create_or_update(
            RG, FLEX, {"location": "eastus", "properties": {"orchestrationMode": "Flexible",
                                                            "platformFaultDomainCount": 2}})
    assert info.value.error.target == "platformFaultDomainCount"
    assert compute.virtual_machine_scale_sets.get(RG, FLEX).platform_fault_domain_count == 3


def test_update_tags_and_policy(compute):
    vmss = compute.virtual_machine_scale_sets.begin_update(
        RG, FLEX, {"tags": {"app": "web", "v": "2"},
                   "properties": {"upgradePolicy": {"mode": "Rolling"}}}).result()
    assert vmss.tags == {"app": "web", "v": "2"}
    assert vmss.upgrade_policy.mode == "Rolling"
    assert vmss.provisioning_state == "Succeeded"


def test_automatic_repairs_policy_is_stored_and_returned(emu, compute):
    """The emulator keeps the policy (nothing repairs); a scenario can set it with automatic_repairs."""
    policy = {"enabled": True, "gracePeriod": "PT30M", "repairAction": "Reimage"}
    compute.virtual_machine_scale_sets.begin_update(RG, FLEX, {"properties": {"automaticRepairsPolicy": policy}}).result()
    stored = compute.virtual_machine_scale_sets.get(RG, FLEX).automatic_repairs_policy
    assert (stored.enabled, stored.grace_period, stored.repair_action) == (True, "PT30M", "Reimage")

    emu.reset({"resource_groups": [{"name": RG, "location": "eastus", "virtual_networks": [
        {"name": "vnet", "address_prefix": "10.0.0.0/16", "subnets": [{"name": "default", "address_prefix": "10.0.0.0/24"}]}],
        "scale_sets": [{"name": FLEX, "instances": 1, "automatic_repairs": {"enabled": True}}]}]})
    stored = compute.virtual_machine_scale_sets.get(RG, FLEX).automatic_repairs_policy
    assert (stored.enabled, stored.grace_period, stored.repair_action) == (True, "PT10M", "Replace")


# -- scaling -----------------------------------------------------------------------------------


def test_scale_out_and_in(emu, sdk, compute):
    sub = sdk.subscription_id
    before = set(flex_members(compute, sub))
    vmss = compute.virtual_machine_scale_sets.begin_update(RG, FLEX, {"sku": {"capacity": 14}}).result()
    assert vmss.sku.capacity == 14
    after = set(flex_members(compute, sub))
    added = after - before
    assert len(added) == 2 and before < after
    fds = [compute.virtual_machines.get(RG, n).platform_fault_domain for n in added]
    assert sorted(fds) == [0, 1]
    compute.virtual_machine_scale_sets.begin_update(RG, FLEX, {"sku": {"capacity": 12}}).result()
    wait_until(lambda: compute.virtual_machine_scale_sets.get(RG, FLEX).sku.capacity == 12, timeout=5)
    assert set(flex_members(compute, sub)) == before


def test_scale_in_skips_locked_members(emu, sdk, compute):
    sub = sdk.subscription_id
    compute.virtual_machine_scale_sets.begin_update(RG, FLEX, {"sku": {"capacity": 13}}).result()
    names = flex_members(compute, sub)
    newest = max(names, key=lambda n: compute.virtual_machines.get(RG, n).time_created)
    keep = {"properties": {"level": "CanNotDelete"}}
    sdk.locks().management_locks.create_or_update_by_scope(vm_id(sub, newest), "keep", keep)
    compute.virtual_machine_scale_sets.begin_update(RG, FLEX, {"sku": {"capacity": 12}}).result()
    wait_until(lambda: len(flex_members(compute, sub)) == 12, timeout=5)
    assert newest in flex_members(compute, sub)


def test_uniform_scale(compute):
    compute.virtual_machine_scale_sets.begin_update(RG, UNIFORM, {"sku": {"capacity": 5}}).result()
    assert sorted(vm.instance_id for vm in compute.virtual_machine_scale_set_vms.list(RG, UNIFORM)) == [
        "0", "1", "2", "3", "4"]
    compute.virtual_machine_scale_sets.begin_update(RG, UNIFORM, {"sku": {"capacity": 2}}).result()
    assert sorted(vm.instance_id for vm in compute.virtual_machine_scale_set_vms.list(RG, UNIFORM)) == ["0", "1"]
    assert compute.virtual_machine_scale_sets.get(RG, UNIFORM).sku.capacity == 2


# -- batch delete ------------------------------------------------------------------------------


def test_delete_instances_by_vm_name(emu, sdk, compute, raw):
    sub = sdk.subscription_id
    members = flex_members(compute, sub)
    doomed = members[:3]
    emu.settings(durations={"delete": 50})  # 0.5 s with forceDeletion, to see the Deleting state
    before = emu.request_count()
    poller = compute.virtual_machine_scale_sets.begin_delete_instances(RG, FLEX, {"instanceIds": doomed},
                                                                       force_deletion=True)
    assert {compute.virtual_machines.get(RG, n).provisioning_state for n in doomed} == {"Deleting"}
    poller.result()
    post = arm_requests(emu, before)[0]
    assert post["method"] == "POST" and post["path"].endswith("/virtualMachineScaleSets/web/delete")
    assert post["query"]["forcedeletion"] == "true" and post["status"] == 202
    assert flex_members(compute, sub) == members[3:]
    assert compute.virtual_machine_scale_sets.get(RG, FLEX).sku.capacity == 9
    for name in doomed:
        with pytest.raises(ResourceNotFoundError):
            compute.virtual_machines.get(RG, name)


def test_delete_instances_refusals(sdk, compute):
    members = flex_members(compute, sdk.subscription_id)
    for ids in (["0"], [members[0], "web_ffffffff"]):
        with pytest.raises(HttpResponseError) as info:
            compute.virtual_machine_scale_sets.begin_delete_instances(RG, FLEX, {"instanceIds": ids})
        assert info.value.status_code == 400
        assert info.value.error.code == "InvalidParameter"
        assert info.value.error.target == "instanceIds"
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machine_scale_sets.begin_delete_instances(RG, FLEX, {"instanceIds": []})
    assert info.value.status_code == 400
    # Nothing was deleted.
    assert flex_members(compute, sdk.subscription_id) == members


def test_uniform_delete_instances_needs_numbers(compute):
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machine_scale_sets.begin_delete_instances(RG, UNIFORM, {"instanceIds": ["legacy_0"]})
    assert info.value.status_code == 400
    assert info.value.error.code == "InvalidParameter" and info.value.error.target == "instanceId"
    assert info.value.error.message == "Virtual Machine Scale Set VM instanceId must be a number."
    compute.virtual_machine_scale_sets.begin_delete_instances(RG, UNIFORM, {"instanceIds": ["1"]}).result()
    assert sorted(vm.instance_id for vm in compute.virtual_machine_scale_set_vms.list(RG, UNIFORM)) == ["0", "2"]
    assert compute.virtual_machine_scale_sets.get(RG, UNIFORM).sku.capacity == 2


def test_delete_whole_flex_set(sdk, compute):
    sub = sdk.subscription_id
    compute.virtual_machine_scale_sets.begin_create_or_update(RG, "tmp", flex_body(sub, capacity=2)).result()
    members = flex_members(compute, sub, "tmp")
    compute.virtual_machine_scale_sets.begin_delete(RG, "tmp").result()
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machine_scale_sets.get(RG, "tmp")
    for name in members:
        with pytest.raises(ResourceNotFoundError):
            compute.virtual_machines.get(RG, name)
    assert compute.virtual_machine_scale_sets.get(RG, FLEX).sku.capacity == 12
    compute.virtual_machine_scale_sets.begin_delete(RG, "tmp").result()  # already gone: 204


# -- what Flex refuses -------------------------------------------------------------------------


def test_flex_instance_view_refused(compute):
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machine_scale_sets.get_instance_view(RG, FLEX)
    assert info.value.status_code == 400
    assert info.value.error.code == "BadRequest"
    assert info.value.error.message == (
        "Operation 'VirtualMachineScaleSets.instanceView.GET' is not allowed on Virtual Machine Scale Set 'web'.")


def test_flex_vmss_vm_list(sdk, compute):
    with pytest.raises(HttpResponseError) as info:
        list(compute.virtual_machine_scale_set_vms.list(RG, FLEX, expand="instanceView"))
    assert info.value.status_code == 400 and info.value.error.code == "BadRequest"
    assert info.value.error.message == (
        "Operation 'VirtualMachineScaleSets.virtualMachines.GET' is not allowed on Virtual Machine Scale Set 'web'.")
    listed = list(compute.virtual_machine_scale_set_vms.list(RG, FLEX))
    assert sorted(vm.instance_id for vm in listed) == flex_members(compute, sdk.subscription_id)
    assert all(vm.name == vm.instance_id for vm in listed)


def test_flex_vmss_vm_apis_need_numbers(sdk, compute, raw):
    name = flex_members(compute, sdk.subscription_id)[0]
    for call in (lambda: compute.virtual_machine_scale_set_vms.get(RG, FLEX, name),
                 lambda: compute.virtual_machine_scale_set_vms.get_instance_view(RG, FLEX, name),
                 lambda: compute.virtual_machine_scale_set_vms.begin_restart(RG, FLEX, name)):
        with pytest.raises(HttpResponseError) as info:
            call()
        assert info.value.status_code == 400
        assert info.value.error.code == "InvalidParameter"
        assert info.value.error.target == "instanceId"
        assert info.value.error.message == "Virtual Machine Scale Set VM instanceId must be a number."
    assert power(compute, name) == "running"


@pytest.mark.parametrize("call, operation", [
    (lambda c: c.virtual_machine_scale_sets.begin_reimage_all(RG, FLEX), "reimageall"),
    (lambda c: c.virtual_machine_scale_sets.convert_to_single_placement_group(RG, FLEX, {}),
     "convertToSinglePlacementGroup"),
    (lambda c: c.virtual_machine_scale_sets.force_recovery_service_fabric_platform_update_domain_walk(
        RG, FLEX, platform_update_domain=0), "forceRecoveryServiceFabricPlatformUpdateDomainWalk"),
    (lambda c: c.virtual_machine_scale_sets.begin_set_orchestration_service_state(
        RG, FLEX, {"serviceName": "AutomaticRepairs", "action": "Suspend"}), "setOrchestrationServiceState"),
])
def test_uniform_only_apis_refused_on_flex(emu, compute, call, operation):
    before = emu.request_count()
    with pytest.raises(HttpResponseError) as info:
        call(compute)
    assert info.value.status_code == 400
    assert info.value.error.code == "BadRequest"
    assert info.value.error.message == (
        "Operation 'VirtualMachineScaleSets.%s.POST' is not allowed on Virtual Machine Scale Set 'web'."
        % operation)
    assert len(arm_requests(emu, before)) == 1  # refused at once, not retried


def test_uniform_instance_apis(compute):
    view = compute.virtual_machine_scale_sets.get_instance_view(RG, UNIFORM)
    summary = {s.code: s.count for s in view.virtual_machine.statuses_summary}
    assert summary == {"PowerState/running": 3, "ProvisioningState/succeeded": 3}
    vm = compute.virtual_machine_scale_set_vms.get(RG, UNIFORM, "1", expand="instanceView")
    assert vm.instance_id == "1" and codes(vm.instance_view)[1] == "PowerState/running"
    compute.virtual_machine_scale_set_vms.begin_power_off(RG, UNIFORM, "1").result()
    assert codes(compute.virtual_machine_scale_set_vms.get_instance_view(RG, UNIFORM, "1"))[1] == \
        "PowerState/stopped"
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machine_scale_set_vms.get(RG, UNIFORM, "7")
    compute.virtual_machine_scale_set_vms.begin_delete(RG, UNIFORM, "2").result()
    assert compute.virtual_machine_scale_sets.get(RG, UNIFORM).sku.capacity == 2
    # Uniform instances are not VMs of the VM API.
    assert all(not vm.name.startswith("legacy") for vm in compute.virtual_machines.list(RG))


# -- batch power actions on a Flex set ---------------------------------------------------------


def test_flex_batch_restart_by_name(emu, sdk, compute):
    members = flex_members(compute, sdk.subscription_id)
    chosen = members[:2]
    since = len(emu.events())
    compute.virtual_machine_scale_sets.begin_restart(RG, FLEX, {"instanceIds": chosen}).result()
    restarted = {e["vm"] for e in emu.events(since) if e["power_state"] == "starting"}
    assert restarted == set(chosen)


def test_flex_batch_power_off_all(emu, sdk, compute):
    compute.virtual_machine_scale_sets.begin_power_off(RG, FLEX, skip_shutdown=True).result()
    members = flex_members(compute, sdk.subscription_id)
    assert {power(compute, n) for n in members} == {"stopped"}
    assert power(compute, JUMPBOX) == "running"
    compute.virtual_machine_scale_sets.begin_start(RG, FLEX).result()
    assert {power(compute, n) for n in members} == {"running"}


def test_flex_batch_refuses_wrong_state_before_touching_anything(emu, sdk, compute):
    members = flex_members(compute, sdk.subscription_id)
    compute.virtual_machines.begin_deallocate(RG, members[1]).result()
    since = len(emu.events())
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machine_scale_sets.begin_restart(RG, FLEX, {"instanceIds": members[:3]})
    assert info.value.error.code == "OperationNotAllowed"
    assert emu.events(since) == []


def test_flex_batch_actions_can_be_switched_off(emu, sdk, compute):
    emu.settings(flex_batch_actions=False)
    members = flex_members(compute, sdk.subscription_id)
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machine_scale_sets.begin_restart(RG, FLEX, {"instanceIds": members[:1]})
    assert info.value.status_code == 400 and info.value.error.code == "BadRequest"
    assert "VirtualMachineScaleSets.restart.POST" in info.value.error.message
    # The batch delete stays available: it is documented for Flex.
    compute.virtual_machine_scale_sets.begin_delete_instances(RG, FLEX, {"instanceIds": members[:1]}).result()


def test_rolling_restart_never_exceeds_batch_size(emu, sdk, compute):
    members = flex_members(compute, sdk.subscription_id)
    emu.settings(durations={"restart": 15})  # 0.3 s: a batch's three restarts surely overlap
    since = len(emu.events())
    for start in range(0, len(members), 3):
        pollers = [compute.virtual_machines.begin_restart(RG, n) for n in members[start:start + 3]]
        for poller in pollers:
            poller.result()
    log = events_for(emu, members, since)
    assert max_down(log, set(members)) == 3
    assert {e["vm"] for e in log if e["power_state"] == "starting"} == set(members)
    # A careless all-at-once restart is caught by the same replay.
    since = len(emu.events())
    compute.virtual_machine_scale_sets.begin_restart(RG, FLEX).result()
    assert max_down(events_for(emu, members, since), set(members)) == 12
