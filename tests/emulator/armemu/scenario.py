"""Scenarios: the whole emulated world described in YAML or JSON.

``load(state, spec)`` replaces all state (POST /_emulator/reset does the same).
See ``scenarios/demo.yml`` and the README for the format. Flexible members are
created from the scale set's model exactly as a scale-out creates them, so
their names (``{set}_{8 hex}``), NICs, fault domains and extensions are what
the REST API would have produced; the names are derived from the index, so a
scenario always yields the same names.
"""

from __future__ import annotations

import copy

import yaml

from . import identity, netmodel, resources, scalesetmodel, upgrades, vmmodel
from .state import DEFAULT_SETTINGS, GraphIndex, check_subscription_id, merge_settings, now

DEFAULT_TENANT = "3e2b7a10-5c4d-4e8f-9a1b-7c6d5e4f3a2b"
DEFAULT_SUBSCRIPTION = "6f1c1e4c-0b1e-4a55-9c4f-2d6a1b2c3d4e"
DEFAULT_CLIENT = {"client_id": "1b7e2c3d-4f5a-4b6c-8d7e-9f0a1b2c3d4e", "secret": "emulator-client-secret"}
DEFAULT_IMAGE = {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2",
                 "version": "latest"}
APP_HEALTH_EXTENSION = {
    "name": "HealthExtension",
    "properties": {"publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux",
                   "typeHandlerVersion": "2.0", "autoUpgradeMinorVersion": True,
                   "settings": {"protocol": "http", "port": 80, "requestPath": "/health"}},
}
TOP_KEYS = {"tenant_id", "subscription_id", "subscriptions", "clients", "audience", "cloud_name", "settings",
            "resource_groups"}


class ScenarioError(ValueError):
    pass


def parse(text):
    try:
        spec = yaml.safe_load(text) if text and text.strip() else {}
    except yaml.YAMLError as exc:
        raise ScenarioError("the scenario is neither valid YAML nor JSON: %s" % exc)
    if not isinstance(spec, dict):
        raise ScenarioError("a scenario is a mapping")
    return spec


def load(state, spec):
    """Replace everything in ``state`` by what ``spec`` describes."""
    unknown = set(spec) - TOP_KEYS
    if unknown:
        raise ScenarioError("unknown scenario keys: %s" % ", ".join(sorted(unknown)))
    for op in state.operations.values():
        if op.task is not None and not op.task.done():
            op.task.cancel()
    state.generation += 1
    try:
        state.settings = merge_settings(DEFAULT_SETTINGS, spec.get("settings"))
    except ValueError as exc:
        raise ScenarioError(str(exc))
    state.resources.clear()
    state.locks.clear()
    state.operations.clear()
    state.faults.clear()
    state.requests.clear()
    state.events.clear()
    state.graph = GraphIndex()
    state._last_vm_status.clear()
    state.subscriptions.clear()
    state.clients.clear()
    state.scenario = copy.deepcopy(spec)
    state.tenant_id = spec.get("tenant_id", DEFAULT_TENANT)
    # A reset starts a new world: without an audience of its own, the scenario gets the default.
    state.audience = spec.get("audience") or identity.DEFAULT_AUDIENCE
    state.cloud_name = spec.get("cloud_name") or "AzureFlexEmulator"
    default_sub = spec.get("subscription_id", DEFAULT_SUBSCRIPTION)
    subs = [{"id": default_sub, "name": "Emulated subscription"}] + list(spec.get("subscriptions") or [])
    try:
        for sub in subs:
            sub_id = check_subscription_id(sub["id"])
            state.subscriptions[sub_id.lower()] = {"subscriptionId": sub_id, "tenantId": state.tenant_id,
                                                   "displayName": sub.get("name", sub_id), "state": "Enabled"}
    except (KeyError, ValueError) as exc:
        raise ScenarioError("invalid subscription: %s" % exc)
    for client in spec.get("clients") or [DEFAULT_CLIENT]:
        register_client(state, client)
    for group in spec.get("resource_groups") or []:
        _load_group(state, group, default_sub)
    return state


def register_client(state, client):
    """Add (or replace) an application: a secret, a federated credential, or certificates (PEM, one or a list)."""
    certificates = client.get("certificates") or ([client["certificate"]] if client.get("certificate") else [])
    try:
        for pem in certificates:
            identity.certificate_thumbprints(pem)
    except ValueError as exc:
        raise ScenarioError("client %s: invalid certificate: %s" % (client.get("client_id"), exc))
    state.clients[str(client["client_id"]).lower()] = {"secret": client.get("secret"),
                                                      "federated": bool(client.get("federated")),
                                                      "certificates": list(certificates)}


def _load_group(state, group, default_sub):
    from .errors import ArmError

    sub = group.get("subscription", default_sub)
    name = group["name"]
    location = group.get("location", "eastus")
    resources.create_group(state, sub, name, location, group.get("tags"))
    for vnet in group.get("virtual_networks") or []:
        netmodel.create_vnet(state, sub, name, vnet["name"], location, vnet.get("address_prefix", "10.0.0.0/16"),
                             vnet.get("subnets") or [{"name": "default", "address_prefix": "10.0.0.0/20"}])
    for pip in group.get("public_ips") or []:
        netmodel.create_public_ip(state, sub, name, pip["name"], location, pip.get("sku", "Standard"),
                                  pip.get("zones"))
    for lb in group.get("load_balancers") or []:
        frontends = []
        for fe in lb.get("frontends") or [{"name": "fe", "public_ip": lb["name"] + "-pip"}]:
            pip_id = "%s/publicIPAddresses/%s" % (netmodel.rg_path(state, sub, name), fe["public_ip"])
            if state.get(pip_id) is None:
                netmodel.create_public_ip(state, sub, name, fe["public_ip"], location, lb.get("sku", "Standard"))
            frontends.append({"name": fe["name"], "public_ip_id": pip_id})
        netmodel.create_load_balancer(state, sub, name, lb["name"], location, lb.get("sku", "Standard"), frontends,
                                      lb.get("backend_pools") or [])
    for scale_set in group.get("scale_sets") or []:
        _load_scale_set(state, sub, name, location, scale_set)
    for vm in group.get("vms") or []:
        _load_vm(state, sub, name, location, vm)
    # Inbound NAT rules last: a V1 rule may name the NIC it is bound to ({nic: <nic name>}),
    # and a V2 rule maps the pool members that exist by now.
    for lb in group.get("load_balancers") or []:
        lb_res = state.get("%s/loadBalancers/%s" % (netmodel.rg_path(state, sub, name), lb["name"]))
        for rule in lb.get("nat_rules") or []:
            try:
                netmodel.scenario_nat_rule(state, lb_res, rule)
            except (KeyError, ArmError) as exc:
                raise ScenarioError("invalid NAT rule %r of load balancer %s: %s" % (
                    rule.get("name") if isinstance(rule, dict) else rule, lb["name"],
                    exc.message if isinstance(exc, ArmError) else "missing %s" % exc))


def _subnet_id(state, sub, group, ref):
    vnet, _, subnet = ref.partition("/")
    return "%s/virtualNetworks/%s/subnets/%s" % (netmodel.rg_path(state, sub, group), vnet, subnet or "default")


def _pool_id(state, sub, group, ref):
    lb, _, pool = ref.partition("/")
    return "%s/loadBalancers/%s/backendAddressPools/%s" % (netmodel.rg_path(state, sub, group), lb, pool)


def _storage_profile(spec):
    image = dict(DEFAULT_IMAGE, **(spec.get("image") or {}))
    os_disk = {"createOption": "FromImage", "managedDisk": {"storageAccountType": "Premium_LRS"},
               "deleteOption": "Delete"}
    if spec.get("ephemeral_os_disk"):
        os_disk["diffDiskSettings"] = {"option": "Local", "placement": "ResourceDisk"}
        os_disk["caching"] = "ReadOnly"
        os_disk["managedDisk"] = {"storageAccountType": "Standard_LRS"}
    return {"imageReference": image, "osDisk": os_disk}


def _load_scale_set(state, sub, group, location, spec):
    mode = spec.get("orchestration_mode", "Flexible")
    body = {"location": location, "tags": spec.get("tags") or {},
            "sku": {"name": spec.get("vm_size", "Standard_D2s_v5"), "tier": "Standard", "capacity": 0},
            "properties": {"orchestrationMode": mode}}
    if spec.get("zones"):
        body["zones"] = [str(z) for z in spec["zones"]]
    if spec.get("upgrade_policy"):
        body["properties"]["upgradePolicy"] = copy.deepcopy(spec["upgrade_policy"])
    if spec.get("automatic_repairs"):
        # Stored and returned as Azure does; the emulator does not repair anything.
        repairs = spec["automatic_repairs"]
        body["properties"]["automaticRepairsPolicy"] = {
            "enabled": bool(repairs.get("enabled", True)), "gracePeriod": repairs.get("grace_period", "PT10M"),
            "repairAction": repairs.get("repair_action", "Replace")}
    if mode == "Flexible":
        body["properties"]["platformFaultDomainCount"] = spec.get("platform_fault_domain_count",
                                                                  1 if spec.get("zones") else 3)
        nic_config = {"name": "nic", "properties": {"primary": True, "deleteOption": "Delete", "ipConfigurations": [{
            "name": "ipconfig1", "properties": {
                "subnet": {"id": _subnet_id(state, sub, group, spec.get("subnet", "vnet/default"))},
                "loadBalancerBackendAddressPools": [{"id": _pool_id(state, sub, group, p)}
                                                    for p in spec.get("backend_pools") or []]}}]}}
        profile = {
            "storageProfile": _storage_profile(spec),
            "osProfile": {"computerNamePrefix": spec.get("computer_name_prefix", spec["name"][:9]),
                          "adminUsername": "azureuser",
                          "linuxConfiguration": {"disablePasswordAuthentication": True}},
            "networkProfile": {"networkApiVersion": "2020-11-01", "networkInterfaceConfigurations": [nic_config]},
            "priority": spec.get("priority", "Regular"),
        }
        if spec.get("priority") == "Spot":
            profile["evictionPolicy"] = spec.get("eviction_policy", "Deallocate")
        if spec.get("application_health", True):
            profile["extensionProfile"] = {"extensions": [copy.deepcopy(APP_HEALTH_EXTENSION)]}
        body["properties"]["virtualMachineProfile"] = profile
    vmss = scalesetmodel.create_vmss(state, sub, group, spec["name"], body)
    count = int(spec.get("instances", 0))
    if mode != "Flexible":
        scalesetmodel.add_uniform_instances(state, vmss, count)
        return
    overrides = {int(o["index"]): o for o in spec.get("overrides") or []}
    zones = body.get("zones") or []
    for index in range(count):
        name = scalesetmodel.flex_member_name(vmss.name, index)
        zone = zones[index % len(zones)] if zones else None
        vm = scalesetmodel.create_member_from_profile(state, vmss, name, zone=zone)
        if spec.get("hibernation"):
            vm.props["additionalCapabilities"] = {"hibernationEnabled": True}
        _apply_override(state, vm, overrides.get(index))


def _apply_override(state, vm, override):
    if not override:
        return
    if override.get("power_state"):
        vm.emu["power"] = override["power_state"]
        if override["power_state"] != "running":
            vm.emu["health_visible"] = "unknown" if vm.emu.get("app_health") else None
    if override.get("health"):
        vmmodel.set_health(state, vm, override["health"])
    if override.get("maintenance"):
        vm.emu["maintenance"] = now()
    if override.get("tags"):
        vm.body["tags"].update(override["tags"])
    if override.get("latest_model") is False:
        vm.emu["model_version"] = 0  # built from a model older than the scale set's
    if override.get("protection"):
        vm.emu["protection"] = upgrades.validate_protection(override["protection"])
    state.save(vm)


def _load_vm(state, sub, group, location, spec):
    nic_refs = []
    if spec.get("subnet", "vnet/default"):
        pip_id = None
        if spec.get("public_ip"):
            pip_id = netmodel.create_public_ip(state, sub, group, spec["name"] + "-pip", location).id
        nic = netmodel.create_nic(state, sub, group, spec["name"] + "-nic", location,
                                  _subnet_id(state, sub, group, spec.get("subnet", "vnet/default")),
                                  public_ip_id=pip_id)
        nic_refs.append({"id": nic.id, "properties": {"primary": True, "deleteOption": "Detach"}})
    body = {"location": location, "tags": spec.get("tags") or {},
            "properties": {"hardwareProfile": {"vmSize": spec.get("vm_size", "Standard_B2s")},
                           "storageProfile": _storage_profile(spec),
                           "osProfile": {"computerName": spec["name"][:15], "adminUsername": "azureuser"},
                           "networkProfile": {"networkInterfaces": nic_refs},
                           "priority": spec.get("priority", "Regular")}}
    if spec.get("zone"):
        body["zones"] = [str(spec["zone"])]
    vm = vmmodel.create_vm(state, sub, group, spec["name"], body)
    _apply_override(state, vm, spec)


def default_scenario_path():
    import os
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scenarios", "demo.yml")


__all__ = ["load", "parse", "ScenarioError", "DEFAULT_SETTINGS"]
