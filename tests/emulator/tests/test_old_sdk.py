"""The older SDK set azure.azcollection pins (.venv-oldsdk, from tests/requirements-oldsdk.txt): compute 33.0,
network 28.0 (api 2024-03-01), azure-mgmt-resource 23.2 (locks inside, api 2016-09-01), resourcegraph 8.1.0b3 (api 2022-10-01, no
resultFormat sent so the service default ``table`` applies), identity 1.19.

Run under that interpreter these tests check what only the old set does; run under the current set, a
single test runs this file with the old interpreter (when it is installed), so the main suite covers it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from _support import (FLEX, JUMPBOX, NEW_SDK, RG, arm_requests, codes, flex_members, graph_rows, power, vm_id,
                      vmss_id)

# make venv-oldsdk builds it in the checkout; OLDSDK_PYTHON names another.
OLD_PYTHON = os.environ.get("OLDSDK_PYTHON", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", ".venv-oldsdk", "bin", "python"))
old_only = pytest.mark.skipif(NEW_SDK, reason="runs under the old SDK interpreter (see test_old_sdk_subset)")


@pytest.mark.skipif(not NEW_SDK, reason="already running under the old SDK")
def test_old_sdk_subset():
    if not os.path.exists(OLD_PYTHON):
        pytest.skip("no old-SDK interpreter at %s" % OLD_PYTHON)
    here = os.path.abspath(__file__)
    result = subprocess.run([OLD_PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", here],
                            cwd=os.path.dirname(here), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout.replace("1 skipped", ""), result.stdout


@old_only
def test_the_old_set_is_installed():
    from importlib.metadata import version

    assert version("azure-mgmt-compute").startswith("33.")
    assert version("azure-mgmt-resource").startswith("23.")
    assert version("azure-mgmt-resourcegraph") == "8.1.0b3"
    assert version("azure-identity").startswith("1.19")


@old_only
def test_compute_2024_07_01_end_to_end(emu, sdk):
    compute = sdk.compute()
    before = emu.request_count()
    member = flex_members(compute, sdk.subscription_id)[0]
    compute.virtual_machines.begin_power_off(RG, member, skip_shutdown=True).result()
    assert power(compute, member) == "stopped"
    compute.virtual_machines.begin_start(RG, member).result()
    vm = compute.virtual_machines.get(RG, member, expand="instanceView")
    assert codes(vm.instance_view) == ["ProvisioningState/succeeded", "PowerState/running"]
    assert vm.virtual_machine_scale_set.id == vmss_id(sdk.subscription_id, FLEX)
    log = arm_requests(emu, before)
    # Every compute call, LRO polls included, carried the old api-version, and none was refused.
    assert {e["query"].get("api-version") for e in log} == {"2024-07-01"}
    assert all(e["status"] < 400 for e in log)
    assert any("/operations/" in e["path"] for e in log)


@old_only
def test_flex_batch_delete_with_old_models(sdk):
    from azure.mgmt.compute.models import VirtualMachineScaleSetVMInstanceRequiredIDs

    compute = sdk.compute()
    members = flex_members(compute, sdk.subscription_id)
    compute.virtual_machine_scale_sets.begin_delete_instances(
        RG, FLEX, VirtualMachineScaleSetVMInstanceRequiredIDs(instance_ids=members[:2]), force_deletion=True).result()
    assert flex_members(compute, sdk.subscription_id) == members[2:]


@old_only
def test_locks_2016_09_01(emu, sdk):
    locks = sdk.locks().management_locks
    before = emu.request_count()
    locks.create_or_update_at_resource_level(RG, "Microsoft.Compute", "", "virtualMachines", JUMPBOX, "old",
                                             {"level": "CanNotDelete", "notes": "old api"})
    lock = locks.get_at_resource_level(RG, "Microsoft.Compute", "", "virtualMachines", JUMPBOX, "old")
    assert lock.level == "CanNotDelete" and lock.notes == "old api"
    assert lock.id == vm_id(sdk.subscription_id, JUMPBOX) + "/providers/Microsoft.Authorization/locks/old"
    assert [lock.name for lock in locks.list_at_resource_group_level(RG)] == ["old"]
    assert {e["query"]["api-version"] for e in arm_requests(emu, before)} == {"2016-09-01"}
    from azure.core.exceptions import ResourceExistsError

    with pytest.raises(ResourceExistsError) as info:
        sdk.compute().virtual_machines.begin_delete(RG, JUMPBOX)
    assert info.value.error.code == "ScopeLocked"
    locks.delete_at_resource_level(RG, "Microsoft.Compute", "", "virtualMachines", JUMPBOX, "old")


@old_only
def test_graph_2022_10_01_defaults_to_table(emu, sdk):
    from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

    client = sdk.graph()
    before = emu.request_count()
    query = "Resources | where type =~ 'microsoft.compute/virtualmachines' | project id, name | order by name asc"
    result = client.resources(QueryRequest(subscriptions=[sdk.subscription_id], query=query,
                                           options=QueryRequestOptions(top=5)))
    assert arm_requests(emu, before)[0]["query"]["api-version"] == "2022-10-01"
    assert set(result.data) == {"columns", "rows"}
    assert result.data["columns"] == [{"name": "id", "type": "string"}, {"name": "name", "type": "string"}]
    names = [row["name"] for row in graph_rows(result)]
    token = result.skip_token
    while token:
        page = client.resources(QueryRequest(subscriptions=[sdk.subscription_id], query=query,
                                             options=QueryRequestOptions(top=5, skip_token=token)))
        names += [row["name"] for row in graph_rows(page)]
        token = page.skip_token
    assert len(names) == 13 and names == sorted(names)


@old_only
def test_resource_groups_and_network_old_versions(emu, sdk):
    before = emu.request_count()
    assert sdk.resources().resource_groups.get(RG).name == RG
    nic = sdk.network().network_interfaces.get(RG, "jumpbox-nic")
    assert nic.virtual_machine.id == vm_id(sdk.subscription_id, JUMPBOX)
    versions = [e["query"]["api-version"] for e in arm_requests(emu, before)]
    assert versions[0] == "2022-09-01"
    assert versions[1] == "2024-03-01"


@old_only
def test_python_is_the_old_interpreter():
    assert "oldsdk" in sys.executable or os.environ.get("OLDSDK_PYTHON")


@old_only
def test_upgrades_and_native_protection_with_2024_07_01(emu, sdk):
    """compute 33's models carry latestModelApplied, the rolling upgrade status and protectionPolicy."""
    compute = sdk.compute()
    emu.settings(flex_native_protection=True)
    before = emu.request_count()
    members = flex_members(compute, sdk.subscription_id)
    compute.virtual_machine_scale_set_vms.begin_update(
        RG, FLEX, members[0], {"location": "eastus", "properties": {"protectionPolicy": {
            "protectFromScaleSetActions": True, "protectFromScaleIn": True}}}).result()
    assert compute.virtual_machine_scale_set_vms.get(RG, FLEX, members[0]).protection_policy.protect_from_scale_in
    compute.virtual_machine_scale_sets.begin_update(RG, FLEX, {"properties": {"upgradePolicy": {
        "mode": "Rolling", "rollingUpgradePolicy": {"maxBatchInstancePercent": 50}}}}).result()
    compute.virtual_machine_scale_sets.begin_update(RG, FLEX, {"properties": {"virtualMachineProfile": {
        "storageProfile": {"imageReference": {"sku": "22_04-lts-gen2-v2"}}}}}).result()
    deadline = time.monotonic() + 20
    while compute.virtual_machine_scale_set_rolling_upgrades.get_latest(RG, FLEX).running_status.code == \
            "RollingForward":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status = compute.virtual_machine_scale_set_rolling_upgrades.get_latest(RG, FLEX)
    assert status.running_status.code == "Completed" and status.progress.successful_instance_count == 11
    latest = {vm.name: vm.latest_model_applied for vm in compute.virtual_machine_scale_set_vms.list(RG, FLEX)}
    assert [name for name, current in latest.items() if not current] == [members[0]]
    compute.virtual_machine_scale_sets.begin_update_instances(RG, FLEX, {"instanceIds": members[:1]}).result()
    log = arm_requests(emu, before)
    assert {e["query"].get("api-version") for e in log} == {"2024-07-01"}
