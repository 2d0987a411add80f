"""Upgrade policies of scale sets, model versions and latestModelApplied, manual upgrades by VM name,
Automatic mode, Azure's rolling upgrades on a Flexible set (batches, thresholds, health gate, pause,
status, cancel), and instance protection through the VMSS-VM API by VM name (flex_native_protection)."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from _support import COMPUTE_API, FLEX, RG, events_for, flex_members, max_down, power, vmss_id, wait_until
from test_scalesets import flex_body

NEW_IMAGE = {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2-v2",
             "version": "latest"}


def latest(compute, scale_set=FLEX):
    """{member name: latestModelApplied} from the VMSS-VM list."""
    return {vm.name: vm.latest_model_applied for vm in compute.virtual_machine_scale_set_vms.list(RG, scale_set)}


def patch(compute, body, scale_set=FLEX):
    return compute.virtual_machine_scale_sets.begin_update(RG, scale_set, body).result()


def change_model(compute, scale_set=FLEX):
    patch(compute, {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": NEW_IMAGE}}}},
          scale_set)


def set_policy(compute, mode, scale_set=FLEX, **rolling):
    policy = {"mode": mode}
    if rolling:
        policy["rollingUpgradePolicy"] = rolling
    return patch(compute, {"properties": {"upgradePolicy": policy}}, scale_set)


def rolling_status(compute, scale_set=FLEX):
    return compute.virtual_machine_scale_set_rolling_upgrades.get_latest(RG, scale_set)


def wait_rolling_done(compute, timeout=20.0):
    return wait_until(lambda: (lambda s: s if s.running_status.code != "RollingForward" else None)(
        rolling_status(compute)), timeout=timeout, message="the rolling upgrade to end")


def starts(emu, names, since):
    """The members that went down for an upgrade (their 'starting' transitions), in order."""
    return [e["vm"] for e in events_for(emu, names, since) if e["power_state"] == "starting"]


# -- the upgrade policy ------------------------------------------------------------------------


def test_policy_defaults_and_rolling_defaults(compute):
    vmss = compute.virtual_machine_scale_sets.get(RG, FLEX)
    assert vmss.upgrade_policy.mode == "Manual"
    assert vmss.upgrade_policy.rolling_upgrade_policy is None
    vmss = set_policy(compute, "rolling")  # enum values are case-insensitive; Azure shows the canonical one
    policy = vmss.upgrade_policy
    assert policy.mode == "Rolling"
    assert (policy.rolling_upgrade_policy.max_batch_instance_percent, policy.rolling_upgrade_policy.
            max_unhealthy_instance_percent, policy.rolling_upgrade_policy.max_unhealthy_upgraded_instance_percent,
            policy.rolling_upgrade_policy.pause_time_between_batches) == (20, 20, 20, "PT0S")


def test_patch_keeps_the_fields_it_does_not_name(compute):
    set_policy(compute, "Rolling", maxBatchInstancePercent=50, pauseTimeBetweenBatches="PT1S")
    vmss = patch(compute, {"properties": {"upgradePolicy": {"rollingUpgradePolicy": {"maxSurge": True}}}})
    rolling = vmss.upgrade_policy.rolling_upgrade_policy
    assert vmss.upgrade_policy.mode == "Rolling"
    assert (rolling.max_batch_instance_percent, rolling.pause_time_between_batches, rolling.max_surge) == \
        (50, "PT1S", True)
    # A PATCH of the model keeps the rest of the model (network, extensions).
    change_model(compute)
    profile = compute.virtual_machine_scale_sets.get(RG, FLEX).virtual_machine_profile
    assert profile.storage_profile.image_reference.sku == NEW_IMAGE["sku"]
    assert [e.name for e in profile.extension_profile.extensions] == ["HealthExtension"]
    assert profile.network_profile.network_interface_configurations[0].name == "nic"


@pytest.mark.parametrize("policy, target", [
    ({"mode": "Sometimes"}, "upgradePolicy.mode"),
    ({"mode": "Rolling", "rollingUpgradePolicy": {"maxBatchInstancePercent": 4}},
     "upgradePolicy.rollingUpgradePolicy.maxBatchInstancePercent"),
    ({"mode": "Manual", "rollingUpgradePolicy": {"maxBatchInstancePercent": 101}},
     "upgradePolicy.rollingUpgradePolicy.maxBatchInstancePercent"),
    ({"mode": "Rolling", "rollingUpgradePolicy": {"maxUnhealthyInstancePercent": 4}},
     "upgradePolicy.rollingUpgradePolicy.maxUnhealthyInstancePercent"),
    ({"mode": "Rolling", "rollingUpgradePolicy": {"maxUnhealthyUpgradedInstancePercent": 101}},
     "upgradePolicy.rollingUpgradePolicy.maxUnhealthyUpgradedInstancePercent"),
    ({"mode": "Rolling", "rollingUpgradePolicy": {"pauseTimeBetweenBatches": "10 seconds"}},
     "upgradePolicy.rollingUpgradePolicy.pauseTimeBetweenBatches"),
    ({"mode": "Rolling", "rollingUpgradePolicy": {"rollbackFailedInstancesOnPolicyBreach": True}},
     "upgradePolicy.rollingUpgradePolicy.rollbackFailedInstancesOnPolicyBreach"),
])
def test_policy_validation(compute, policy, target):
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machine_scale_sets.begin_update(RG, FLEX, {"properties": {"upgradePolicy": policy}})
    assert info.value.status_code == 400
    assert info.value.error.code == "InvalidParameter"
    assert info.value.error.target == target
    assert compute.virtual_machine_scale_sets.get(RG, FLEX).upgrade_policy.mode == "Manual"


def test_zero_unhealthy_upgraded_percent_is_allowed(compute):
    vmss = set_policy(compute, "Rolling", maxUnhealthyUpgradedInstancePercent=0)
    assert vmss.upgrade_policy.rolling_upgrade_policy.max_unhealthy_upgraded_instance_percent == 0


def test_flex_rolling_needs_the_health_extension(sdk, compute):
    sub = sdk.subscription_id
    body = flex_body(sub, capacity=1)
    body["properties"]["upgradePolicy"] = {"mode": "Rolling"}
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machine_scale_sets.begin_create_or_update(RG, "nohealth", body)
    assert info.value.status_code == 400 and info.value.error.code == "BadRequest"
    assert "Application Health extension" in info.value.error.message
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machine_scale_sets.get(RG, "nohealth")
    body["properties"]["upgradePolicy"] = {"mode": "Manual"}
    compute.virtual_machine_scale_sets.begin_create_or_update(RG, "nohealth", body).result()
    with pytest.raises(HttpResponseError) as info:
        set_policy(compute, "Rolling", scale_set="nohealth")
    assert info.value.error.code == "BadRequest"
    # A load-balancer probe is no substitute on Flex.
    probe = {"healthProbe": {"id": "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/loadBalancers/"
                                   "web-lb/probes/p" % (sub, RG)}}
    with pytest.raises(HttpResponseError) as info:
        patch(compute, {"properties": {"virtualMachineProfile": {"networkProfile": probe}}}, "nohealth")
    assert info.value.error.target == "virtualMachineProfile.networkProfile.healthProbe"
    # Removing the health extension from a Rolling set's model is refused too.
    set_policy(compute, "Rolling")
    with pytest.raises(HttpResponseError) as info:
        patch(compute, {"properties": {"virtualMachineProfile": {"extensionProfile": {"extensions": []}}}})
    assert info.value.error.code == "BadRequest"


# -- model versions and manual upgrade ---------------------------------------------------------


def test_model_change_marks_every_member_behind(emu, sdk, compute):
    members = flex_members(compute, sdk.subscription_id)
    assert latest(compute) == dict.fromkeys(members, True)
    since = len(emu.events())
    patch(compute, {"tags": {"app": "web", "owner": "ops"}})  # not a model change
    assert latest(compute) == dict.fromkeys(members, True)
    change_model(compute)
    assert latest(compute) == dict.fromkeys(members, False)
    # Manual mode: nothing happened to the members.
    time.sleep(0.3)
    assert starts(emu, members, since) == []
    # A member created now is built from the latest model.
    patch(compute, {"sku": {"capacity": 13}})
    grown = latest(compute)
    assert [name for name, current in grown.items() if current] == sorted(set(grown) - set(members))


def test_vm_list_without_latest_model(emu, compute):
    emu.settings(flex_vm_list_latest_model=False)
    assert set(latest(compute).values()) == {None}


def test_manual_upgrade_by_vm_name(emu, sdk, compute):
    members = flex_members(compute, sdk.subscription_id)
    change_model(compute)
    chosen = members[:2]
    since = len(emu.events())
    compute.virtual_machine_scale_sets.begin_update_instances(RG, FLEX, {"instanceIds": chosen}).result()
    assert starts(emu, members, since) == chosen or sorted(starts(emu, members, since)) == chosen
    state = latest(compute)
    assert [name for name in members if state[name]] == chosen
    for name in chosen:
        vm = compute.virtual_machines.get(RG, name)
        assert vm.storage_profile.image_reference.sku == NEW_IMAGE["sku"]
        assert power(compute, name) == "running"
    assert compute.virtual_machines.get(RG, members[2]).storage_profile.image_reference.sku != NEW_IMAGE["sku"]
    # Members already on the latest model are not touched again.
    since = len(emu.events())
    compute.virtual_machine_scale_sets.begin_update_instances(RG, FLEX, {"instanceIds": chosen}).result()
    assert starts(emu, members, since) == []


def test_manual_upgrade_of_a_deallocated_member_keeps_it_deallocated(emu, sdk, compute):
    name = flex_members(compute, sdk.subscription_id)[0]
    compute.virtual_machines.begin_deallocate(RG, name).result()
    change_model(compute)
    compute.virtual_machine_scale_sets.begin_update_instances(RG, FLEX, {"instanceIds": [name]}).result()
    assert latest(compute)[name] is True
    assert power(compute, name) == "deallocated"


def test_manual_upgrade_refusals(emu, sdk, compute):
    members = flex_members(compute, sdk.subscription_id)
    for ids in ([], ["web_ffffffff"], ["0"]):
        with pytest.raises(HttpResponseError) as info:
            compute.virtual_machine_scale_sets.begin_update_instances(RG, FLEX, {"instanceIds": ids})
        assert info.value.status_code == 400 and info.value.error.code == "InvalidParameter"
    emu.add_fault(method="POST", path="/manualupgrade$", lro="Failed", code="UpgradeFailed")
    change_model(compute)
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machine_scale_sets.begin_update_instances(RG, FLEX, {"instanceIds": members[:1]}).result()
    assert info.value.error.code == "UpgradeFailed"
    assert latest(compute)[members[0]] is False
    assert wait_until(lambda: power(compute, members[0]) == "running", message="the member back up")


def test_automatic_mode_upgrades_everyone_after_a_model_change(emu, sdk, compute):
    members = flex_members(compute, sdk.subscription_id)
    set_policy(compute, "Automatic")
    since = len(emu.events())
    change_model(compute)
    wait_until(lambda: all(latest(compute).values()), timeout=10, message="every member on the latest model")
    assert sorted(set(starts(emu, members, since))) == members
    # All at once: no guarantee about order or availability.
    assert max_down(events_for(emu, members, since), set(members)) == len(members)


# -- rolling upgrades --------------------------------------------------------------------------


def test_rolling_upgrade_in_batches_with_the_health_gate(emu, sdk, compute):
    members = flex_members(compute, sdk.subscription_id)
    emu.settings(durations={"health_initializing": 10})  # 0.2 s of "initializing" after each upgrade
    with pytest.raises(ResourceNotFoundError):
        rolling_status(compute)
    set_policy(compute, "Rolling", maxBatchInstancePercent=25)  # 12 members: batches of 3
    since = len(emu.events())
    change_model(compute)
    first = wait_until(lambda: rolling_status(compute), message="a rolling upgrade")
    assert first.running_status.code == "RollingForward" and first.running_status.last_action == "Start"
    assert first.policy.max_batch_instance_percent == 25
    done = wait_rolling_done(compute)
    assert done.running_status.code == "Completed"
    progress = done.progress
    assert (progress.successful_instance_count, progress.failed_instance_count, progress.in_progress_instance_count,
            progress.pending_instance_count) == (12, 0, 0, 0)
    assert all(latest(compute).values())
    log = events_for(emu, members, since)
    assert max_down(log, set(members)) == 3
    # The health gate: a batch starts only once every member of the previous one reports healthy again.
    went_down, healthy_again = {}, {}
    for event in log:
        if event["power_state"] == "starting":
            went_down.setdefault(event["vm"], event["time"])
        elif event["vm"] in went_down and event["power_state"] == "running" and event["health"] == "healthy":
            healthy_again.setdefault(event["vm"], event["time"])
    order = sorted(went_down, key=went_down.get)
    batches = [order[i:i + 3] for i in range(0, len(order), 3)]
    assert len(batches) == 4 and sorted(order) == members
    for previous, following in zip(batches, batches[1:]):
        assert max(healthy_again[vm] for vm in previous) <= min(went_down[vm] for vm in following)


def test_rolling_upgrade_prioritizes_unhealthy_members_and_pauses(emu, sdk, compute):
    members = flex_members(compute, sdk.subscription_id)
    sick = members[7]
    emu.set_health(sick, "unhealthy")
    emu.set_health(sick, "healthy", after_restart=True)
    set_policy(compute, "Rolling", maxBatchInstancePercent=50, prioritizeUnhealthyInstances=True,
               pauseTimeBetweenBatches="PT20S")  # 0.4 s at the tests' time scale
    since = len(emu.events())
    change_model(compute)
    assert wait_rolling_done(compute).running_status.code == "Completed"
    down = [(e["time"], e["vm"]) for e in events_for(emu, members, since) if e["power_state"] == "starting"]
    assert sick in [vm for _t, vm in down[:6]]
    gap = down[6][0] - down[5][0]
    assert gap >= 0.4, gap


def test_rolling_upgrade_faults_before_a_batch_when_too_many_are_unhealthy(emu, sdk, compute):
    members = flex_members(compute, sdk.subscription_id)
    for name in members[:3]:  # 25 % > 20 %
        emu.set_health(name, "unhealthy")
    set_policy(compute, "Rolling")
    since = len(emu.events())
    change_model(compute)
    status = wait_rolling_done(compute)
    assert status.running_status.code == "Faulted"
    assert status.error.code == "MaxUnhealthyInstancePercentExceededInRollingUpgrade"
    assert status.progress.pending_instance_count == 12 and status.progress.successful_instance_count == 0
    assert starts(emu, members, since) == []


def test_rolling_upgrade_faults_after_a_batch_of_unhealthy_upgrades(emu, sdk, compute):
    members = flex_members(compute, sdk.subscription_id)
    for name in members:
        emu.set_health(name, "unhealthy", after_restart=True)  # the new model breaks the application
    set_policy(compute, "Rolling", maxBatchInstancePercent=25, maxUnhealthyUpgradedInstancePercent=20)
    change_model(compute)
    status = wait_rolling_done(compute)
    assert status.running_status.code == "Faulted"
    assert status.error.code == "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade"
    assert "First failed instance ID is: web_" in status.error.message
    assert (status.progress.successful_instance_count, status.progress.failed_instance_count,
            status.progress.pending_instance_count) == (0, 3, 9)
    assert sum(latest(compute).values()) == 3


def test_cancel_stops_after_the_batch_in_flight_and_an_update_restarts(emu, sdk, compute):
    members = flex_members(compute, sdk.subscription_id)
    emu.settings(durations={"upgrade": 20})  # 0.4 s per batch
    set_policy(compute, "Rolling", maxBatchInstancePercent=25)
    change_model(compute)
    wait_until(lambda: rolling_status(compute).progress.in_progress_instance_count == 3, message="a batch in flight")
    compute.virtual_machine_scale_set_rolling_upgrades.begin_cancel(RG, FLEX).result()
    status = rolling_status(compute)
    assert status.running_status.code == "Cancelled" and status.running_status.last_action == "Cancel"
    assert status.progress.successful_instance_count == 3 and status.progress.pending_instance_count == 9
    assert sum(latest(compute).values()) == 3
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machine_scale_set_rolling_upgrades.begin_cancel(RG, FLEX)
    assert info.value.error.code == "OperationNotAllowed"
    # A generic update of the set starts a new rolling upgrade of those still behind.
    patch(compute, {"tags": {"app": "web"}})
    restarted = wait_until(lambda: (lambda s: s if s.running_status.code == "RollingForward" else None)(
        rolling_status(compute)), message="a new rolling upgrade")
    assert restarted.progress.pending_instance_count + restarted.progress.in_progress_instance_count <= 9
    assert wait_rolling_done(compute).running_status.code == "Completed"
    assert all(latest(compute).values())
    assert len(members) == 12


# -- native instance protection ------------------------------------------------------------------


def native(emu):
    emu.settings(flex_native_protection=True)


def protect(compute, name, **policy):
    return compute.virtual_machine_scale_set_vms.begin_update(
        RG, FLEX, name, {"location": "eastus", "properties": {"protectionPolicy": policy}}).result()


def test_native_protection_refused_by_default(sdk, compute):
    name = flex_members(compute, sdk.subscription_id)[0]
    with pytest.raises(HttpResponseError) as info:
        protect(compute, name, protectFromScaleIn=True)
    assert info.value.status_code == 400 and info.value.error.code == "InvalidParameter"
    assert info.value.error.message == "Virtual Machine Scale Set VM instanceId must be a number."


def test_native_protection_by_vm_name(emu, sdk, compute, raw):
    native(emu)
    members = flex_members(compute, sdk.subscription_id)
    view = compute.virtual_machine_scale_set_vms.get(RG, FLEX, members[0])
    assert view.instance_id == members[0] and view.latest_model_applied is True
    assert view.protection_policy is None
    updated = protect(compute, members[0], protectFromScaleIn=True)
    assert updated.protection_policy.protect_from_scale_in is True
    assert updated.protection_policy.protect_from_scale_set_actions is False
    protect(compute, members[1], protectFromScaleIn=True, protectFromScaleSetActions=True)
    got = compute.virtual_machine_scale_set_vms.get(RG, FLEX, members[1]).protection_policy
    assert (got.protect_from_scale_in, got.protect_from_scale_set_actions) == (True, True)
    with pytest.raises(HttpResponseError) as info:
        protect(compute, members[2], protectFromScaleIn=False, protectFromScaleSetActions=True)
    assert info.value.error.target == "protectionPolicy.protectFromScaleIn"
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machine_scale_set_vms.get(RG, FLEX, "web_ffffffff")
    # Before the documented api-version, Flex still refuses the VM name.
    reply = raw("GET", vmss_id(sdk.subscription_id, FLEX) + "/virtualMachines/" + members[0],
                api_version="2023-07-01")
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "InvalidParameter"
    assert COMPUTE_API >= "2023-09-01"
    # Unprotecting.
    assert protect(compute, members[0]).protection_policy is None


def test_native_protection_is_enforced_by_scale_set_operations(emu, sdk, compute):
    native(emu)
    members = flex_members(compute, sdk.subscription_id)
    newest = sorted(members, key=lambda n: compute.virtual_machines.get(RG, n).time_created)[-2:]
    protect(compute, newest[-1], protectFromScaleIn=True)
    frozen = members[0]
    protect(compute, frozen, protectFromScaleIn=True, protectFromScaleSetActions=True)
    # Scale-in skips the member protected from scale-in and takes the next newest ones.
    patch(compute, {"sku": {"capacity": 10}})
    remaining = wait_until(lambda: (lambda m: m if len(m) == 10 else None)(flex_members(compute, sdk.subscription_id)),
                           message="the scale-in")
    assert newest[-1] in remaining and frozen in remaining
    # A batch restart of everyone skips the member protected from scale-set actions.
    since = len(emu.events())
    compute.virtual_machine_scale_sets.begin_restart(RG, FLEX).result()
    restarted = set(starts(emu, remaining, since))
    assert restarted == set(remaining) - {frozen}
    # So do manual and rolling upgrades.
    change_model(compute)
    compute.virtual_machine_scale_sets.begin_update_instances(RG, FLEX, {"instanceIds": [frozen]}).result()
    assert latest(compute)[frozen] is False
    set_policy(compute, "Rolling", maxBatchInstancePercent=50)
    assert wait_rolling_done(compute).running_status.code == "Completed"
    state = latest(compute)
    assert [name for name, current in state.items() if not current] == [frozen]
