"""VM extensions: CRUD through the single-VM API, and the Application Health extension's vmHealth."""

from __future__ import annotations

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from _support import COMPUTE_API, JUMPBOX, RG, flex_members, health, vm_id, wait_until

CUSTOM_SCRIPT = {"location": "eastus", "properties": {
    "publisher": "Microsoft.Azure.Extensions", "type": "CustomScript", "typeHandlerVersion": "2.1",
    "autoUpgradeMinorVersion": True, "settings": {"commandToExecute": "echo hi"},
    "protectedSettings": {"secret": "do-not-return"}}}
APP_HEALTH = {"location": "eastus", "properties": {
    "publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux", "typeHandlerVersion": "2.0",
    "settings": {"protocol": "http", "port": 80, "requestPath": "/health"}}}


def slow(emu, **durations):
    emu.settings(durations={name: seconds / 0.02 for name, seconds in durations.items()})


def test_extension_crud(emu, sdk, compute, raw):
    ext_path = vm_id(sdk.subscription_id, JUMPBOX) + "/extensions/script"
    slow(emu, extension=0.5)
    reply = raw("PUT", ext_path, body=CUSTOM_SCRIPT, api_version=COMPUTE_API)
    assert reply.status_code == 201
    body = reply.json()
    assert body["properties"]["provisioningState"] == "Creating"
    assert "protectedSettings" not in body["properties"]
    assert body["id"] == ext_path and body["type"] == "Microsoft.Compute/virtualMachines/extensions"
    assert "Azure-AsyncOperation" in reply.headers
    assert compute.virtual_machine_extensions.get(RG, JUMPBOX, "script").provisioning_state == "Creating"
    wait_until(lambda: compute.virtual_machine_extensions.get(RG, JUMPBOX, "script").provisioning_state
               == "Succeeded", timeout=5)
    emu.settings(durations={"extension": 2.0})
    ext = compute.virtual_machine_extensions.get(RG, JUMPBOX, "script")
    assert ext.publisher == "Microsoft.Azure.Extensions"
    assert ext.type_handler_version == "2.1"
    assert ext.settings == {"commandToExecute": "echo hi"}
    assert ext.protected_settings is None
    assert ext.instance_view is None
    expanded = compute.virtual_machine_extensions.get(RG, JUMPBOX, "script", expand="instanceView")
    assert expanded.instance_view.name == "script"
    assert expanded.instance_view.statuses[0].code == "ProvisioningState/succeeded"
    # Update through PATCH: 200 only.
    updated = compute.virtual_machine_extensions.begin_update(
        RG, JUMPBOX, "script", {"properties": {"settings": {"commandToExecute": "echo bye"}}}).result()
    assert updated.settings == {"commandToExecute": "echo bye"}
    assert updated.provisioning_state == "Succeeded"
    patch = raw("PATCH", ext_path, body={"properties": {"forceUpdateTag": "2"}}, api_version=COMPUTE_API)
    assert patch.status_code == 200
    # The VM's instance view knows it.
    view = compute.virtual_machines.instance_view(RG, JUMPBOX)
    assert [e.name for e in view.extensions] == ["script"]
    assert [h.type for h in view.vm_agent.extension_handlers] == ["Microsoft.Azure.Extensions.CustomScript"]
    # List is not paged: {"value": [...]}.
    listing = raw("GET", vm_id(sdk.subscription_id, JUMPBOX) + "/extensions", api_version=COMPUTE_API).json()
    assert set(listing) == {"value"} and [e["name"] for e in listing["value"]] == ["script"]
    assert [e.name for e in compute.virtual_machine_extensions.list(RG, JUMPBOX).value] == ["script"]
    wait_until(lambda: compute.virtual_machine_extensions.get(RG, JUMPBOX, "script").provisioning_state
               == "Succeeded", timeout=5)
    compute.virtual_machine_extensions.begin_delete(RG, JUMPBOX, "script").result()
    with pytest.raises(ResourceNotFoundError) as info:
        compute.virtual_machine_extensions.get(RG, JUMPBOX, "script")
    assert info.value.error.code == "ResourceNotFound"
    assert compute.virtual_machine_extensions.list(RG, JUMPBOX).value == []
    assert raw("DELETE", ext_path, api_version=COMPUTE_API).status_code == 204


def test_put_replaces_but_keeps_protected_settings_hidden(compute):
    compute.virtual_machine_extensions.begin_create_or_update(RG, JUMPBOX, "script", CUSTOM_SCRIPT).result()
    body = {"location": "eastus", "properties": dict(CUSTOM_SCRIPT["properties"], settings={"a": "b"})}
    del body["properties"]["protectedSettings"]
    ext = compute.virtual_machine_extensions.begin_create_or_update(RG, JUMPBOX, "script", body).result()
    assert ext.settings == {"a": "b"}
    assert ext.protected_settings is None


def test_extension_validation(compute):
    body = {"location": "eastus", "properties": {"type": "CustomScript", "typeHandlerVersion": "2.1"}}
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machine_extensions.begin_create_or_update(RG, JUMPBOX, "bad", body)
    assert info.value.status_code == 400
    assert info.value.error.code == "InvalidParameter" and info.value.error.target == "publisher"
    compute.virtual_machine_extensions.begin_create_or_update(RG, JUMPBOX, "script", CUSTOM_SCRIPT).result()
    other = {"location": "eastus", "properties": dict(CUSTOM_SCRIPT["properties"], type="DockerExtension")}
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machine_extensions.begin_create_or_update(RG, JUMPBOX, "script", other)
    assert info.value.error.code == "PropertyChangeNotAllowed"
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machine_extensions.begin_update(RG, JUMPBOX, "ghost", {"properties": {"settings": {}}})
    with pytest.raises(ResourceNotFoundError) as info:
        compute.virtual_machine_extensions.begin_create_or_update(RG, "ghost-vm", "script", CUSTOM_SCRIPT)
    assert info.value.error.code == "ResourceNotFound"


def test_extensions_need_a_running_vm(compute):
    compute.virtual_machine_extensions.begin_create_or_update(RG, JUMPBOX, "script", CUSTOM_SCRIPT).result()
    compute.virtual_machines.begin_deallocate(RG, JUMPBOX).result()
    with pytest.raises(ResourceExistsError) as info:
        compute.virtual_machine_extensions.begin_create_or_update(RG, JUMPBOX, "other", CUSTOM_SCRIPT)
    assert info.value.error.code == "OperationNotAllowed"
    assert info.value.error.message == "Cannot modify extensions in the VM when the VM is not running."
    with pytest.raises(ResourceExistsError):
        compute.virtual_machine_extensions.begin_delete(RG, JUMPBOX, "script")
    # Reads still work.
    assert compute.virtual_machine_extensions.get(RG, JUMPBOX, "script").provisioning_state == "Succeeded"


def test_failed_extension(emu, compute):
    emu.add_fault(method="PUT", path="/extensions/script$", lro="Failed", code="VMExtensionProvisioningError",
                  message="Enable failed.")
    poller = compute.virtual_machine_extensions.begin_create_or_update(RG, JUMPBOX, "script", CUSTOM_SCRIPT)
    with pytest.raises(HttpResponseError) as info:
        poller.result()
    assert info.value.error.code == "VMExtensionProvisioningError"
    assert compute.virtual_machine_extensions.get(RG, JUMPBOX, "script").provisioning_state == "Failed"


# -- Application Health ------------------------------------------------------------------------


def test_vm_health_appears_once_installed(emu, compute):
    assert health(compute, JUMPBOX) is None
    emu.settings(durations={"health_initializing": 25})  # 0.5 s
    compute.virtual_machine_extensions.begin_create_or_update(RG, JUMPBOX, "HealthExtension", APP_HEALTH).result()
    assert health(compute, JUMPBOX) == "HealthState/initializing"
    wait_until(lambda: health(compute, JUMPBOX) == "HealthState/healthy", timeout=5)
    view = compute.virtual_machines.instance_view(RG, JUMPBOX)
    assert view.vm_health.status.display_status == "The VM is healthy"
    assert view.vm_health.status.level == "Info"
    compute.virtual_machine_extensions.begin_delete(RG, JUMPBOX, "HealthExtension").result()
    assert health(compute, JUMPBOX) is None


def test_health_is_settable(emu, sdk, compute):
    name = flex_members(compute, sdk.subscription_id)[0]
    assert health(compute, name) == "HealthState/healthy"
    reply = emu.set_health(name, "unhealthy")
    assert reply == {"vm": name, "health": "unhealthy", "pending_health": None, "reported": "unhealthy"}
    assert health(compute, name) == "HealthState/unhealthy"
    emu.set_health(name, "unknown")
    assert health(compute, name) == "HealthState/unknown"
    emu.set_health(name, "healthy")
    assert health(compute, name) == "HealthState/healthy"


def test_health_after_restart(emu, sdk, compute):
    name = flex_members(compute, sdk.subscription_id)[0]
    emu.settings(durations={"health_initializing": 25})  # 0.5 s
    reply = emu.set_health(name, "unhealthy", after_restart=True)
    assert reply["pending_health"] == "unhealthy" and reply["reported"] == "healthy"
    assert health(compute, name) == "HealthState/healthy"
    compute.virtual_machines.begin_restart(RG, name).result()
    assert health(compute, name) == "HealthState/initializing"
    wait_until(lambda: health(compute, name) == "HealthState/unhealthy", timeout=5)
    # And back to healthy after the next restart.
    emu.set_health(name, "healthy", after_restart=True)
    assert health(compute, name) == "HealthState/unhealthy"
    compute.virtual_machines.begin_restart(RG, name).result()
    wait_until(lambda: health(compute, name) == "HealthState/healthy", timeout=5)


def test_health_while_down(emu, sdk, compute):
    name = flex_members(compute, sdk.subscription_id)[0]
    compute.virtual_machines.begin_deallocate(RG, name).result()
    assert health(compute, name) == "HealthState/unknown"
    emu.set_health(name, "unhealthy")
    assert health(compute, name) == "HealthState/unknown"
    compute.virtual_machines.begin_start(RG, name).result()
    wait_until(lambda: health(compute, name) == "HealthState/unhealthy", timeout=5)


def test_health_events(emu, sdk, compute):
    name = flex_members(compute, sdk.subscription_id)[0]
    since = len(emu.events())
    compute.virtual_machines.begin_restart(RG, name).result()
    wait_until(lambda: health(compute, name) == "HealthState/healthy", timeout=5)
    seen = [e["health"] for e in emu.events(since) if e["vm"] == name]
    assert seen[0] == "unknown" and seen[-1] == "healthy" and "initializing" in seen


def test_health_control_api_errors(emu):
    verify = emu.env["REQUESTS_CA_BUNDLE"]
    bad = requests.put(emu.url + "/_emulator/vms/jumpbox/health", json={"state": "great"}, verify=verify,
                       timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "InvalidRequest"
    missing = requests.put(emu.url + "/_emulator/vms/ghost/health", json={"state": "healthy"}, verify=verify,
                           timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NotFound"
    missing = requests.put(emu.url + "/_emulator/vms/ghost/maintenance", json={}, verify=verify, timeout=10)
    assert missing.status_code == 404
