"""Virtual machines: creation into Flexible scale sets, the power-state machine, every action as a
long-running operation, wrong-state refusals, reads, lists, PATCH and delete."""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from _support import (COMPUTE_API, FLEX, JUMPBOX, RG, UNIFORM, arm_requests, codes, events_for,
                      flex_members, health, power, vm_id, vmss_id, wait_until)

IMAGE = {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2",
         "version": "latest"}


def vm_body(sub=None, scale_set=None, zones=None, fd=None, priority=None, ephemeral=False, **props):
    properties = {
        "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
        "storageProfile": {"imageReference": dict(IMAGE), "osDisk": {"createOption": "FromImage"}},
        "osProfile": {"computerName": "vm", "adminUsername": "azureuser", "adminPassword": "S3cret!S3cret!"},
    }
    if scale_set:
        properties["virtualMachineScaleSet"] = {"id": vmss_id(sub, scale_set)}
    if fd is not None:
        properties["platformFaultDomain"] = fd
    if priority:
        properties["priority"] = priority
    if ephemeral:
        properties["storageProfile"]["osDisk"]["diffDiskSettings"] = {"option": "Local", "placement": "ResourceDisk"}
        properties["storageProfile"]["osDisk"]["caching"] = "ReadOnly"
    properties.update(props)
    body = {"location": "eastus", "properties": properties}
    if zones:
        body["zones"] = zones
    return body


def flex_set_body(fd_count=3, zones=None):
    body = {"location": "eastus", "properties": {"orchestrationMode": "Flexible",
                                                 "platformFaultDomainCount": fd_count}}
    if zones:
        body["zones"] = zones
    return body


@pytest.fixture()
def member(compute, sdk):
    return flex_members(compute, sdk.subscription_id)[0]


def slow(emu, **durations):
    """Make some operations take about a second (time_scale stays 0.02)."""
    emu.settings(durations={name: seconds / 0.02 for name, seconds in durations.items()})


# -- creating VMs into Flexible scale sets -----------------------------------------------------


def test_create_vm_into_flex_set(emu, sdk, compute, raw):
    sub = sdk.subscription_id
    slow(emu, create=1.0)
    reply = raw("PUT", vm_id(sub, "app1"), body=vm_body(sub, FLEX), api_version=COMPUTE_API)
    assert reply.status_code == 201
    assert reply.json()["properties"]["provisioningState"] == "Creating"
    assert reply.headers["Azure-AsyncOperation"].startswith(emu.url + "/subscriptions/%s/providers/"
                                                            "Microsoft.Compute/locations/eastus/operations/" % sub)
    assert "adminPassword" not in reply.json()["properties"]["osProfile"]
    # While it is being created the VM shows Creating, and it cannot be acted on yet.
    assert compute.virtual_machines.get(RG, "app1").provisioning_state == "Creating"
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_restart(RG, "app1")
    assert info.value.error.code == "OperationNotAllowed"
    wait_until(lambda: compute.virtual_machines.get(RG, "app1").provisioning_state == "Succeeded", timeout=5)
    vm = compute.virtual_machines.get(RG, "app1", expand="instanceView")
    assert vm.virtual_machine_scale_set.id == vmss_id(sub, FLEX)
    assert vm.managed_by == vmss_id(sub, FLEX)
    assert vm.type == "Microsoft.Compute/virtualMachines"
    assert vm.id == vm_id(sub, "app1")
    assert vm.platform_fault_domain in (0, 1, 2)
    assert vm.instance_view.platform_fault_domain == vm.platform_fault_domain
    assert codes(vm.instance_view) == ["ProvisioningState/succeeded", "PowerState/running"]
    assert vm.priority == "Regular"
    assert re.match(r"^[0-9a-f-]{36}$", vm.vm_id)
    assert vm.storage_profile.image_reference.exact_version
    assert vm.os_profile.admin_password is None
    # The set counts it.
    assert compute.virtual_machine_scale_sets.get(RG, FLEX).sku.capacity == 13
    assert "app1" in flex_members(compute, sub)


def test_create_via_sdk_poller(sdk, compute):
    sub = sdk.subscription_id
    vm = compute.virtual_machines.begin_create_or_update(RG, "app2", vm_body(sub, FLEX)).result()
    assert vm.provisioning_state == "Succeeded"
    assert vm.virtual_machine_scale_set.id == vmss_id(sub, FLEX)
    assert power(compute, "app2") == "running"


def test_fault_domains_are_spread_automatically(sdk, compute):
    sub = sdk.subscription_id
    compute.virtual_machine_scale_sets.begin_create_or_update(RG, "spread", flex_set_body(3)).result()
    fds = []
    for index in range(7):
        vm = compute.virtual_machines.begin_create_or_update(RG, "s%d" % index, vm_body(sub, "spread")).result()
        fds.append(vm.platform_fault_domain)
    assert fds == [0, 1, 2, 0, 1, 2, 0]
    # The demo set of 12 is spread 4/4/4.
    demo = Counter(compute.virtual_machines.get(RG, name).platform_fault_domain
                   for name in flex_members(compute, sub))
    assert demo == {0: 4, 1: 4, 2: 4}


def test_explicit_fault_domain(sdk, compute):
    sub = sdk.subscription_id
    vm = compute.virtual_machines.begin_create_or_update(RG, "fd2", vm_body(sub, FLEX, fd=2)).result()
    assert vm.platform_fault_domain == 2
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machines.begin_create_or_update(RG, "fd9", vm_body(sub, FLEX, fd=3))
    assert info.value.status_code == 400
    assert info.value.error.code == "InvalidParameter" and info.value.error.target == "platformFaultDomain"
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machines.begin_create_or_update(RG, "fdx", vm_body(fd=1))
    assert info.value.status_code == 400 and info.value.error.target == "platformFaultDomain"
    # The fault domain is immutable.
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_update(RG, "fd2", {"properties": {"platformFaultDomain": 0}})
    assert info.value.error.code == "PropertyChangeNotAllowed"
    assert compute.virtual_machines.get(RG, "fd2").platform_fault_domain == 2


def test_zonal_flex_set(sdk, compute):
    sub = sdk.subscription_id
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machine_scale_sets.begin_create_or_update(RG, "zonal", flex_set_body(3, ["1", "2"]))
    assert info.value.status_code == 400 and info.value.error.target == "platformFaultDomainCount"
    compute.virtual_machine_scale_sets.begin_create_or_update(RG, "zonal", flex_set_body(1, ["1", "2"])).result()
    vm = compute.virtual_machines.begin_create_or_update(RG, "z1", vm_body(sub, "zonal", zones=["2"])).result()
    assert vm.zones == ["2"]
    assert vm.platform_fault_domain is None
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machines.begin_create_or_update(RG, "z3", vm_body(sub, "zonal", zones=["3"]))
    assert info.value.status_code == 400 and info.value.error.target == "zones"
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_create_or_update(RG, "z1", vm_body(sub, "zonal", zones=["1"]))
    assert info.value.error.code == "PropertyChangeNotAllowed"


def test_attaching_to_a_uniform_set_fails(sdk, compute):
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machines.begin_create_or_update(RG, "u1", vm_body(sdk.subscription_id, UNIFORM))
    assert info.value.status_code == 400
    assert info.value.error.code == "InvalidParameter"
    assert "Uniform" in info.value.error.message
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machines.get(RG, "u1")


def test_attaching_to_a_missing_set_fails(sdk, compute):
    with pytest.raises(ResourceNotFoundError) as info:
        compute.virtual_machines.begin_create_or_update(RG, "m1", vm_body(sdk.subscription_id, "ghost-set"))
    assert info.value.error.code == "NotFound"


def test_an_existing_vm_cannot_join_a_set(sdk, compute):
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_create_or_update(RG, JUMPBOX, vm_body(sdk.subscription_id, FLEX))
    assert info.value.error.code == "PropertyChangeNotAllowed"
    assert compute.virtual_machines.get(RG, JUMPBOX).virtual_machine_scale_set is None


@pytest.mark.parametrize("name", ["-bad", "bad-", "a" * 65, "has space"])
def test_invalid_vm_names(sdk, raw, name):
    reply = raw("PUT", vm_id(sdk.subscription_id, name), body=vm_body(), api_version=COMPUTE_API)
    assert reply.status_code in (400, 404)
    if reply.status_code == 400:
        assert reply.json()["error"]["code"] == "InvalidParameter"


def test_missing_nic_reference(sdk, compute):
    body = vm_body(networkProfile={"networkInterfaces": [{"id": "/subscriptions/%s/resourceGroups/%s/providers/"
                                                                "Microsoft.Network/networkInterfaces/ghost"
                                                          % (sdk.subscription_id, RG)}]})
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machines.begin_create_or_update(RG, "nicless", body)
    assert info.value.status_code == 400 and info.value.error.code == "InvalidResourceReference"


def test_nic_in_use(sdk, compute):
    nic = compute.virtual_machines.get(RG, JUMPBOX).network_profile.network_interfaces[0].id
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machines.begin_create_or_update(RG, "thief", vm_body(
            networkProfile={"networkInterfaces": [{"id": nic}]}))
    assert info.value.status_code == 400 and info.value.error.code == "NicInUse"


# -- Spot and ephemeral OS disks ---------------------------------------------------------------


def test_spot_vm_and_simulated_eviction(emu, sdk, compute, raw):
    sub = sdk.subscription_id
    vm = compute.virtual_machines.begin_create_or_update(RG, "spot1", vm_body(sub, FLEX, priority="Spot")).result()
    slow(emu, eviction=0.5)
    assert vm.priority == "Spot"
    assert vm.eviction_policy == "Deallocate"
    assert vm.billing_profile.max_price == -1
    reply = raw("POST", vm_id(sub, "spot1") + "/simulateEviction", api_version=COMPUTE_API)
    assert reply.status_code == 204 and reply.content == b""
    assert "Azure-AsyncOperation" not in reply.headers
    # A second one while the first is pending is refused.
    with pytest.raises(ResourceExistsError):
        compute.virtual_machines.simulate_eviction(RG, "spot1")
    wait_until(lambda: power(compute, "spot1") == "deallocated", timeout=5)
    assert compute.virtual_machines.get(RG, "spot1").provisioning_state == "Succeeded"
    # It can be started again, then evicted again through the SDK.
    compute.virtual_machines.begin_start(RG, "spot1").result()
    assert compute.virtual_machines.simulate_eviction(RG, "spot1") is None
    wait_until(lambda: power(compute, "spot1") == "deallocated", timeout=5)


def test_spot_eviction_policy_delete(sdk, compute):
    sub = sdk.subscription_id
    compute.virtual_machines.begin_create_or_update(
        RG, "spot2", vm_body(sub, FLEX, priority="Spot", evictionPolicy="Delete")).result()
    compute.virtual_machines.simulate_eviction(RG, "spot2")

    def gone():
        try:
            compute.virtual_machines.get(RG, "spot2")
        except ResourceNotFoundError:
            return True
        return False

    wait_until(gone, timeout=5)
    assert "spot2" not in flex_members(compute, sub)


def test_simulate_eviction_on_regular_vm_refused(compute, member):
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.simulate_eviction(RG, member)
    assert info.value.status_code == 409
    assert info.value.error.code == "OperationNotAllowed"
    assert power(compute, member) == "running"


def test_ephemeral_os_disk(sdk, compute):
    sub = sdk.subscription_id
    vm = compute.virtual_machines.begin_create_or_update(RG, "eph1", vm_body(sub, FLEX, ephemeral=True)).result()
    assert vm.storage_profile.os_disk.diff_disk_settings.option == "Local"
    assert vm.storage_profile.os_disk.caching == "ReadOnly"
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_deallocate(RG, "eph1")
    assert info.value.error.code == "OperationNotAllowed"
    assert power(compute, "eph1") == "running"
    # Reimage with tempDisk is for ephemeral disks.
    compute.virtual_machines.begin_reimage(RG, "eph1", {"tempDisk": True}).result()
    assert power(compute, "eph1") == "running"


# -- the power-state machine -------------------------------------------------------------------


def test_power_cycle(emu, sdk, compute, member):
    vms = compute.virtual_machines
    since = len(emu.events())
    before = emu.request_count()
    vms.begin_power_off(RG, member, skip_shutdown=True).result()
    assert power(compute, member) == "stopped"
    posts = [e for e in arm_requests(emu, before) if e["method"] == "POST"]
    assert posts[0]["path"].endswith("/powerOff") and posts[0]["query"]["skipshutdown"] == "true"
    vms.begin_start(RG, member).result()
    assert power(compute, member) == "running"
    vms.begin_deallocate(RG, member).result()
    assert power(compute, member) == "deallocated"
    assert codes(vms.instance_view(RG, member)) == ["ProvisioningState/succeeded", "PowerState/deallocated"]
    vms.begin_start(RG, member).result()
    vms.begin_restart(RG, member).result()
    assert power(compute, member) == "running"
    vms.begin_redeploy(RG, member).result()
    assert power(compute, member) == "running"
    transitions = []
    for event in events_for(emu, [member], since):
        pair = (event["power_state"], event["provisioning_state"])
        if not transitions or transitions[-1] != pair:  # health changes add events of their own
            transitions.append(pair)
    assert transitions == [
        ("stopping", "Updating"), ("stopped", "Succeeded"),
        ("starting", "Updating"), ("running", "Succeeded"),
        ("deallocating", "Updating"), ("deallocated", "Succeeded"),
        ("starting", "Updating"), ("running", "Succeeded"),
        ("starting", "Updating"), ("running", "Succeeded"),
        ("starting", "Updating"), ("running", "Succeeded"),
    ]


def test_power_off_on_deallocated_vm(compute, member):
    compute.virtual_machines.begin_deallocate(RG, member).result()
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_power_off(RG, member)
    assert info.value.status_code == 409
    assert info.value.error.code == "OperationNotAllowed"
    assert info.value.error.message == (
        "Operation 'powerOff' is not allowed on VM '%s' since the VM is either deallocated or marked to be "
        "deallocated." % member)
    assert power(compute, member) == "deallocated"


@pytest.mark.parametrize("first", ["deallocate", "power_off"])
def test_restart_refused_unless_running(compute, member, first):
    getattr(compute.virtual_machines, "begin_" + first)(RG, member).result()
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_restart(RG, member)
    assert info.value.error.code == "OperationNotAllowed"
    assert "'restart'" in info.value.error.message


def test_idempotent_actions_are_quick_successes(emu, compute, member):
    since = len(emu.events())
    compute.virtual_machines.begin_start(RG, member).result()
    compute.virtual_machines.begin_deallocate(RG, member).result()
    compute.virtual_machines.begin_deallocate(RG, member).result()
    states = [e["power_state"] for e in events_for(emu, [member], since)]
    assert states == ["deallocating", "deallocated"]


def test_transitional_states_are_visible(emu, compute, member):
    slow(emu, restart=1.0)
    poller = compute.virtual_machines.begin_restart(RG, member)
    view = compute.virtual_machines.instance_view(RG, member)
    assert codes(view) == ["ProvisioningState/updating", "PowerState/starting"]
    assert [s.display_status for s in view.statuses] == ["Updating", "VM starting"]
    assert compute.virtual_machines.get(RG, member).provisioning_state == "Updating"
    assert poller.status() == "InProgress" and not poller.done()
    poller.result()
    assert codes(compute.virtual_machines.instance_view(RG, member)) == [
        "ProvisioningState/succeeded", "PowerState/running"]


@pytest.mark.parametrize("action, transitional", [
    ("begin_power_off", "stopping"), ("begin_deallocate", "deallocating"), ("begin_start", "starting")])
def test_each_transitional_state(emu, compute, member, action, transitional):
    if action == "begin_start":
        compute.virtual_machines.begin_power_off(RG, member).result()
    slow(emu, power_off=1.0, deallocate=1.0, start=1.0)
    poller = getattr(compute.virtual_machines, action)(RG, member)
    assert power(compute, member) == transitional
    poller.result()
    assert power(compute, member) == {"stopping": "stopped", "deallocating": "deallocated",
                                      "starting": "running"}[transitional]


def test_wrong_state_call_does_not_disturb_the_operation_in_flight(emu, compute, member):
    slow(emu, deallocate=0.5)
    poller = compute.virtual_machines.begin_deallocate(RG, member)
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_restart(RG, member)
    assert info.value.error.code == "OperationNotAllowed"
    with pytest.raises(ResourceExistsError):
        compute.virtual_machines.begin_power_off(RG, member)
    poller.result()  # not preempted
    assert poller.status() == "Succeeded"
    assert power(compute, member) == "deallocated"


def test_same_action_while_in_flight_joins_it(emu, compute, member):
    compute.virtual_machines.begin_power_off(RG, member).result()
    slow(emu, start=0.5)
    first = compute.virtual_machines.begin_start(RG, member)
    second = compute.virtual_machines.begin_start(RG, member)
    first.result()
    second.result()
    assert first.status() == second.status() == "Succeeded"
    assert power(compute, member) == "running"


def test_newer_action_preempts(emu, compute, member):
    slow(emu, restart=1.0)
    restart = compute.virtual_machines.begin_restart(RG, member)
    deallocate = compute.virtual_machines.begin_deallocate(RG, member)
    with pytest.raises(HttpResponseError) as info:
        restart.result()
    assert info.value.error.code == "OperationPreempted"
    assert info.value.error.message == "The operation has been preempted by a more recent operation."
    assert restart.status() == "Canceled"
    deallocate.result()
    assert power(compute, member) == "deallocated"


def test_hibernate(emu, sdk, compute):
    emu.reset({"resource_groups": [{"name": RG, "virtual_networks": [{"name": "vnet"}], "scale_sets": [
        {"name": "hib", "instances": 1, "hibernation": True, "application_health": False}]}]})
    emu.settings(time_scale=0.02, retry_after=0)
    name = flex_members(compute, sdk.subscription_id, "hib")[0]
    compute.virtual_machines.begin_deallocate(RG, name, hibernate=True).result()
    view = compute.virtual_machines.instance_view(RG, name)
    assert codes(view) == ["ProvisioningState/succeeded", "PowerState/deallocated", "HibernationState/Hibernated"]
    with pytest.raises(ResourceExistsError):
        compute.virtual_machines.begin_deallocate(RG, name, hibernate=True)
    compute.virtual_machines.begin_start(RG, name).result()
    assert codes(compute.virtual_machines.instance_view(RG, name)) == [
        "ProvisioningState/succeeded", "PowerState/running"]


def test_hibernate_needs_hibernation_enabled(compute, member):
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_deallocate(RG, member, hibernate=True)
    assert info.value.error.code == "OperationNotAllowed"
    assert "hibernation" in info.value.error.message.lower()
    assert power(compute, member) == "running"


# -- reimage, redeploy, maintenance ------------------------------------------------------------


def test_reimage(emu, compute, member):
    compute.virtual_machines.begin_reimage(RG, member).result()
    assert compute.virtual_machines.get(RG, member).storage_profile.image_reference.exact_version == "1.0.0"
    compute.virtual_machines.begin_reimage(RG, member, {"exactVersion": "1.2.3"}).result()
    vm = compute.virtual_machines.get(RG, member)
    assert vm.storage_profile.image_reference.exact_version == "1.2.3"
    assert power(compute, member) == "running"


@pytest.mark.parametrize("params, status, code, target", [
    ({"tempDisk": True}, 400, "InvalidParameter", "tempDisk"),
    ({"exactVersion": "latest"}, 400, "InvalidParameter", "exactVersion"),
    ({"osProfile": {"customData": "ZWNobyBoaQ=="}}, 400, "BadRequest", None),
])
def test_reimage_refusals(compute, member, params, status, code, target):
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machines.begin_reimage(RG, member, params)
    assert info.value.status_code == status
    assert info.value.error.code == code
    assert info.value.error.target == target
    assert power(compute, member) == "running"


def test_reimage_request_without_body(emu, sdk, raw, compute, member):
    reply = raw("POST", vm_id(sdk.subscription_id, member) + "/reimage", api_version=COMPUTE_API)
    assert reply.status_code == 202


def test_perform_maintenance(emu, compute, member):
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_perform_maintenance(RG, member)
    assert info.value.error.code == "OperationNotAllowed"
    assert info.value.error.message == (
        "Operation 'performMaintenance' is not allowed on VM '%s' since the Subscription of this VM is not "
        "eligible." % member)
    assert compute.virtual_machines.instance_view(RG, member).maintenance_redeploy_status is None
    emu.set_maintenance(member)
    status = compute.virtual_machines.instance_view(RG, member).maintenance_redeploy_status
    assert status.is_customer_initiated_maintenance_allowed is True
    assert status.pre_maintenance_window_start_time < status.maintenance_window_end_time
    compute.virtual_machines.begin_perform_maintenance(RG, member).result()
    assert compute.virtual_machines.instance_view(RG, member).maintenance_redeploy_status is None
    assert power(compute, member) == "running"
    with pytest.raises(ResourceExistsError):
        compute.virtual_machines.begin_perform_maintenance(RG, member)
    # Cleared through the control API too.
    emu.set_maintenance(member, pending=True)
    emu.set_maintenance(member, pending=False)
    with pytest.raises(ResourceExistsError):
        compute.virtual_machines.begin_perform_maintenance(RG, member)


def test_action_on_missing_vm(compute):
    with pytest.raises(ResourceNotFoundError) as info:
        compute.virtual_machines.begin_restart(RG, "ghost")
    assert info.value.error.code == "ResourceNotFound"


def test_unknown_action(sdk, raw):
    reply = raw("POST", vm_id(sdk.subscription_id, JUMPBOX) + "/explode", api_version=COMPUTE_API)
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "NotFound"


# -- LRO wire format ---------------------------------------------------------------------------


def test_action_lro_wire_format(emu, sdk, raw, member):
    sub = sdk.subscription_id
    emu.settings(retry_after=1)
    slow(emu, restart=0.6)
    reply = raw("POST", vm_id(sub, member) + "/restart", api_version=COMPUTE_API)
    assert reply.status_code == 202
    assert reply.content == b""
    ao = reply.headers["Azure-AsyncOperation"]
    loc = reply.headers["Location"]
    assert reply.headers["Retry-After"] == "1"
    match = re.match(r"^%s/subscriptions/%s/providers/Microsoft\.Compute/locations/eastus/operations/"
                     r"([0-9a-f-]{36})\?(.*)$" % (re.escape(emu.url), sub), ao)
    assert match, ao
    assert "api-version=" + COMPUTE_API in match.group(2)
    assert loc.startswith(ao.split("?")[0] + "?") and "monitor=true" in loc and "api-version=" in loc
    status = raw("GET", ao)
    assert status.status_code == 200
    body = status.json()
    assert body["status"] == "InProgress" and body["name"] == match.group(1)
    assert "startTime" in body and "endTime" not in body
    assert status.headers["Retry-After"] == "1"
    monitor = raw("GET", loc)
    assert monitor.status_code == 202 and monitor.headers["Retry-After"] == "1"
    wait_until(lambda: raw("GET", ao).json()["status"] != "InProgress", timeout=5)
    final = raw("GET", ao).json()
    assert final["status"] == "Succeeded"
    assert final["endTime"] >= final["startTime"]
    assert "error" not in final
    done = raw("GET", loc)
    assert done.status_code == 200 and done.content == b""


def test_create_and_patch_wire_format(emu, sdk, raw, member):
    sub = sdk.subscription_id
    reply = raw("PATCH", vm_id(sub, member), body={"tags": {"k": "v"}}, api_version=COMPUTE_API)
    # Compute 39 accepts only 200 on PATCH.
    assert reply.status_code == 200
    assert reply.json()["properties"]["provisioningState"] == "Updating"
    assert reply.json()["tags"] == {"k": "v"}
    assert "Azure-AsyncOperation" in reply.headers
    created = raw("PUT", vm_id(sub, "wire1"), body=vm_body(sub, FLEX), api_version=COMPUTE_API)
    assert created.status_code == 201
    again = raw("PUT", vm_id(sub, member), body={"location": "eastus", "tags": {"x": "y"}},
                api_version=COMPUTE_API)
    assert again.status_code == 200
    assert again.json()["properties"]["provisioningState"] == "Updating"


def test_delete_wire_format(emu, sdk, raw):
    sub = sdk.subscription_id
    reply = raw("DELETE", vm_id(sub, JUMPBOX), api_version=COMPUTE_API)
    assert reply.status_code == 202
    assert reply.headers["Azure-AsyncOperation"] and "monitor=true" in reply.headers["Location"]
    missing = raw("DELETE", vm_id(sub, "never-was"), api_version=COMPUTE_API)
    assert missing.status_code == 204


def test_failed_lro(emu, compute, member):
    emu.add_fault(method="POST", path="/restart$", lro="Failed", message="Allocation failed.")
    poller = compute.virtual_machines.begin_restart(RG, member)
    with pytest.raises(HttpResponseError) as info:
        poller.result()
    assert info.value.error.code == "InternalExecutionError"
    assert info.value.error.message == "Allocation failed."
    assert poller.status() == "Failed"
    # The VM is back where it was.
    assert power(compute, member) == "running"
    assert compute.virtual_machines.get(RG, member).provisioning_state == "Succeeded"


def test_failed_lro_wire_format(emu, sdk, raw, member):
    emu.add_fault(method="POST", path="/restart$", lro="Canceled")
    reply = raw("POST", vm_id(sdk.subscription_id, member) + "/restart", api_version=COMPUTE_API)
    assert reply.status_code == 202
    ao, loc = reply.headers["Azure-AsyncOperation"], reply.headers["Location"]
    wait_until(lambda: raw("GET", ao).json()["status"] != "InProgress", timeout=5)
    body = raw("GET", ao).json()
    assert body["status"] == "Canceled"
    assert body["error"] == {"code": "OperationPreempted",
                             "message": "Injected fault."}
    assert raw("GET", ao).status_code == 200
    monitor = raw("GET", loc)
    assert monitor.status_code >= 400
    assert monitor.json()["error"]["code"] == "OperationPreempted"


def test_failed_create_leaves_no_vm(emu, sdk, compute):
    emu.add_fault(method="PUT", path="/virtualMachines/doomed$", lro="Failed")
    poller = compute.virtual_machines.begin_create_or_update(RG, "doomed", vm_body(sdk.subscription_id, FLEX))
    with pytest.raises(HttpResponseError):
        poller.result()
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machines.get(RG, "doomed")
    assert compute.virtual_machine_scale_sets.get(RG, FLEX).sku.capacity == 12


# -- reads and lists ---------------------------------------------------------------------------


def test_get_with_and_without_instance_view(sdk, compute, member):
    plain = compute.virtual_machines.get(RG, member)
    assert plain.instance_view is None
    expanded = compute.virtual_machines.get(RG, member, expand="instanceView")
    view = expanded.instance_view
    assert codes(view) == ["ProvisioningState/succeeded", "PowerState/running"]
    assert view.statuses[0].time is not None and view.statuses[1].time is None
    assert view.statuses[1].display_status == "VM running" and view.statuses[1].level == "Info"
    assert view.vm_health.status.code == "HealthState/healthy"
    assert view.computer_name.startswith("web")
    assert view.platform_fault_domain == plain.platform_fault_domain
    assert [e.name for e in view.extensions] == ["HealthExtension"]
    assert view.disks[0].name == plain.storage_profile.os_disk.name
    separate = compute.virtual_machines.instance_view(RG, member)
    assert codes(separate) == codes(view)


def test_get_with_bad_expand(compute):
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machines.get(RG, JUMPBOX, expand="bogus")
    assert info.value.status_code == 400 and info.value.error.target == "$expand"


def test_list_with_scale_set_filter(sdk, compute):
    sub = sdk.subscription_id
    members = flex_members(compute, sub)
    assert len(members) == 12 and all(re.match(r"^web_[0-9a-f]{8}$", n) for n in members)
    flt = "'virtualMachineScaleSet/id' eq '%s'" % vmss_id(sub, FLEX)
    expanded = list(compute.virtual_machines.list(RG, filter=flt, expand="instanceView"))
    assert sorted(vm.name for vm in expanded) == members
    assert all(codes(vm.instance_view)[1] == "PowerState/running" for vm in expanded)
    everything = sorted(vm.name for vm in compute.virtual_machines.list(RG))
    assert everything == sorted(members + [JUMPBOX])
    other = "'virtualMachineScaleSet/id' eq '%s'" % vmss_id(sub, "nosuchset")
    assert list(compute.virtual_machines.list(RG, filter=other)) == []


def test_list_refusals(compute):
    with pytest.raises(HttpResponseError) as info:
        list(compute.virtual_machines.list(RG, expand="instanceView"))
    assert info.value.status_code == 400 and info.value.error.target == "$expand"
    with pytest.raises(HttpResponseError) as info:
        list(compute.virtual_machines.list(RG, filter="name eq 'x'"))
    assert info.value.status_code == 400 and info.value.error.target == "$filter"


def test_list_all_status_only(emu, sdk, compute, member):
    compute.virtual_machines.begin_deallocate(RG, member).result()
    before = emu.request_count()
    vms = {vm.name: vm for vm in compute.virtual_machines.list_all(status_only="true")}
    assert arm_requests(emu, before)[0]["query"]["statusonly"] == "true"
    assert len(vms) == 13
    assert codes(vms[member].instance_view) == ["ProvisioningState/succeeded", "PowerState/deallocated"]
    assert codes(vms[JUMPBOX].instance_view) == ["ProvisioningState/succeeded", "PowerState/running"]
    assert vms[JUMPBOX].storage_profile is None and vms[JUMPBOX].id == vm_id(sdk.subscription_id, JUMPBOX)
    full = {vm.name: vm for vm in compute.virtual_machines.list_all()}
    assert full[JUMPBOX].storage_profile is not None and full[JUMPBOX].instance_view is None


# -- PATCH / update ----------------------------------------------------------------------------


def test_patch_tags_and_etag(compute, member):
    before = compute.virtual_machines.get(RG, member)
    updated = compute.virtual_machines.begin_update(RG, member, {"tags": {"role": "blue"}}).result()
    assert updated.tags == {"role": "blue"}
    assert updated.provisioning_state == "Succeeded"
    assert updated.etag != before.etag
    # PATCH merges properties; the scale set membership is untouched.
    assert updated.virtual_machine_scale_set.id == before.virtual_machine_scale_set.id
    assert updated.platform_fault_domain == before.platform_fault_domain
    assert power(compute, member) == "running"


def test_patch_hardware_profile(compute, member):
    updated = compute.virtual_machines.begin_update(
        RG, member, {"properties": {"hardwareProfile": {"vmSize": "Standard_D4s_v5"}}}).result()
    assert updated.hardware_profile.vm_size == "Standard_D4s_v5"
    assert updated.storage_profile.os_disk.name  # untouched


# -- delete ------------------------------------------------------------------------------------


def test_delete_member_with_force(emu, sdk, compute, member):
    sub = sdk.subscription_id
    nic_id = compute.virtual_machines.get(RG, member).network_profile.network_interfaces[0].id
    nic_name = nic_id.rsplit("/", 1)[1]
    network = sdk.network()
    assert network.network_interfaces.get(RG, nic_name).virtual_machine.id == vm_id(sub, member)
    before = emu.request_count()
    slow(emu, delete=1.0)  # halved by forceDeletion
    poller = compute.virtual_machines.begin_delete(RG, member, force_deletion=True)
    assert compute.virtual_machines.get(RG, member).provisioning_state == "Deleting"
    poller.result()
    assert poller.status() == "Succeeded"
    delete = [e for e in arm_requests(emu, before) if e["method"] == "DELETE"][0]
    assert delete["query"]["forcedeletion"] == "true" and delete["status"] == 202
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machines.get(RG, member)
    # Its NIC (deleteOption Delete) went with it, and the set shrank.
    with pytest.raises(ResourceNotFoundError):
        network.network_interfaces.get(RG, nic_name)
    assert compute.virtual_machine_scale_sets.get(RG, FLEX).sku.capacity == 11
    assert member not in flex_members(compute, sub)
    assert [e["power_state"] for e in events_for(emu, [member])][-1] == "deleted"


def test_delete_detaches_nic_with_detach_option(sdk, compute):
    nic_name = compute.virtual_machines.get(RG, JUMPBOX).network_profile.network_interfaces[0].id.rsplit("/", 1)[1]
    compute.virtual_machines.begin_delete(RG, JUMPBOX).result()
    nic = sdk.network().network_interfaces.get(RG, nic_name)
    assert nic.virtual_machine is None


def test_delete_missing_vm_succeeds(compute):
    poller = compute.virtual_machines.begin_delete(RG, "never-existed")
    assert poller.result() is None


def test_actions_on_a_deleting_vm_are_refused(emu, compute, member):
    slow(emu, delete=1.0)
    poller = compute.virtual_machines.begin_delete(RG, member)
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machines.begin_restart(RG, member)
    assert info.value.error.code == "OperationNotAllowed"
    with pytest.raises(ResourceExistsError):
        compute.virtual_machines.begin_update(RG, member, {"tags": {}})
    poller.result()


def test_health_visible_after_restart(emu, compute, member):
    emu.settings(durations={"health_initializing": 25})  # 0.5 s
    compute.virtual_machines.begin_restart(RG, member).result()
    assert health(compute, member) == "HealthState/initializing"
    wait_until(lambda: health(compute, member) == "HealthState/healthy", timeout=5)
    time.sleep(0.01)


def test_delete_preempts_an_action_in_flight(emu, compute, member):
    slow(emu, restart=1.0)
    restart = compute.virtual_machines.begin_restart(RG, member)
    compute.virtual_machines.begin_delete(RG, member).result()
    with pytest.raises(HttpResponseError) as info:
        restart.result()
    assert info.value.error.code == "OperationPreempted"
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machines.get(RG, member)


def test_put_round_trip_of_a_get(compute, member):
    """Ansible modules GET a VM, change it and PUT the whole model back."""
    compute.virtual_machine_extensions.get(RG, member, "HealthExtension")  # the member has extensions
    vm = compute.virtual_machines.get(RG, member)
    vm.tags = {"round": "trip"}
    updated = compute.virtual_machines.begin_create_or_update(RG, member, vm).result()
    assert updated.tags == {"round": "trip"}
    assert updated.provisioning_state == "Succeeded"
    assert updated.virtual_machine_scale_set.id == vm.virtual_machine_scale_set.id
    assert updated.platform_fault_domain == vm.platform_fault_domain
    assert updated.vm_id == vm.vm_id
    assert power(compute, member) == "running"


def test_repeated_delete_joins_the_one_in_flight(emu, compute, member):
    slow(emu, delete=1.0)
    first = compute.virtual_machines.begin_delete(RG, member)
    second = compute.virtual_machines.begin_delete(RG, member)
    second.result()
    first.result()
    assert first.status() == second.status() == "Succeeded"
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machines.get(RG, member)
