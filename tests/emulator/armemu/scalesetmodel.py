"""Scale sets (Microsoft.Compute/virtualMachineScaleSets), Flexible and Uniform: creation, members, scaling, bodies.

A Flexible set's members are ordinary VMs (``vmmodel``) that name the set in
``properties.virtualMachineScaleSet``; the set creates them from its model
(``virtualMachineProfile``) as ``{set}_{8 hex}`` with their NICs, pool
memberships and extensions, and a scale-in removes the newest members that no
lock or instance protection keeps. A Uniform set's instances are
``virtualMachineScaleSets/virtualMachines`` children with numeric instance ids.
Upgrade policies, model versions and instance protection are in ``upgrades``;
the REST handlers are in ``scalesets.py``.
"""

from __future__ import annotations

import copy
import hashlib
import uuid

from . import extensionmodel, locks, netmodel, upgrades, vmmodel
from .errors import ArmError, bad_request, invalid_parameter
from .state import Resource, iso

VMSS_TYPE = "Microsoft.Compute/virtualMachineScaleSets"
UNIFORM_VM_TYPE = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"


def vmss_path(sub, rg, name):
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachineScaleSets/%s" % (
        sub, rg, name)


def flex_member_name(scale_set_name, index):
    """Flex names its VMs '{set}_{8 hex}'; derive the hex from the index so scenarios are stable."""
    digest = hashlib.sha1(("%s/%d" % (scale_set_name, index)).encode()).hexdigest()[:8]
    return "%s_%s" % (scale_set_name, digest)


def is_flex(vmss):
    return vmss.props.get("orchestrationMode") == "Flexible"


def require_vmss(ctx):
    return ctx.state.require(vmss_path(ctx.param("sub"), ctx.param("rg"), ctx.param("vmss")), VMSS_TYPE)


# ---------------------------------------------------------------------------
# Members
# ---------------------------------------------------------------------------

def members(state, vmss, sort=True):
    """The Flex set's VMs (sorted by id unless ``sort`` is false).

    The set remembers the VMs created into it (a VM cannot join later and its
    virtualMachineScaleSet is immutable), so this does not scan every VM of the
    subscription; entries of VMs that are gone are dropped here.
    """
    known = vmss.emu.get("members")
    if known is None:
        known = vmss.emu["members"] = {
            vm.key: vm for vm in state.of_type(vmmodel.VM_TYPE, vmss.subscription_id, sort=False)
            if (vm.props.get("virtualMachineScaleSet") or {}).get("id", "").lower() == vmss.key}
    resources = state.resources
    out = []
    for vm_key, vm in list(known.items()):
        if resources.get(vm_key) is not vm:
            del known[vm_key]
            continue
        out.append(vm)
    if sort:
        out.sort(key=lambda vm: vm.key)
    return out


def least_used_fault_domain(state, vmss):
    count = int(vmss.props.get("platformFaultDomainCount") or 1)
    if count <= 1:
        return None
    usage = {fd: 0 for fd in range(count)}
    for member in members(state, vmss, sort=False):
        fd = member.body["properties"].get("platformFaultDomain")
        if fd in usage:
            usage[fd] += 1
    return min(usage, key=lambda fd: (usage[fd], fd))


def sync_capacity(state, vmss):
    if vmss.props.get("orchestrationMode") == "Flexible" and vmss.body.get("sku") is not None:
        vmss.body["sku"]["capacity"] = len(members(state, vmss, sort=False))
        state.save(vmss)


def resolve_instances(state, vmss, ids):
    """Instance ids to resources: VM names for Flex, numbers for Uniform."""
    if is_flex(vmss):
        by_name = {vm.name.lower(): vm for vm in members(state, vmss)}
        if ids is None:
            return list(by_name.values())
        out = []
        for iid in ids:
            vm = by_name.get(iid.lower())
            if vm is None:
                raise invalid_parameter("The provided instanceId %s is not an active Virtual Machine Scale Set VM "
                                        "instanceId." % iid, target="instanceIds")
            out.append(vm)
        return out
    instances = {i.body["instanceId"]: i for i in state.children(vmss.id, UNIFORM_VM_TYPE)}
    if ids is None:
        return list(instances.values())
    out = []
    for iid in ids:
        if not iid.isdigit():
            raise invalid_parameter("Virtual Machine Scale Set VM instanceId must be a number.", target="instanceId")
        if iid not in instances:
            raise invalid_parameter("The provided instanceId %s is not an active Virtual Machine Scale Set VM "
                                    "instanceId." % iid, target="instanceIds")
        out.append(instances[iid])
    return out


# ---------------------------------------------------------------------------
# Creating and scaling
# ---------------------------------------------------------------------------

def validate_profile(state, vmss_name, profile, capacity):
    """Refuse (before anything is created) a model that could not build the instances asked for."""
    if capacity and not profile:
        raise bad_request("Scale set '%s' has no virtualMachineProfile, so it cannot create instances; add VMs "
                          "with their own properties.virtualMachineScaleSet instead." % vmss_name,
                          code="InvalidParameter")
    profile = profile or {}
    for index, nic_config in enumerate((profile.get("networkProfile") or {}).get("networkInterfaceConfigurations")
                                       or []):
        where = "virtualMachineProfile.networkProfile.networkInterfaceConfigurations[%d]" % index
        if not nic_config.get("name"):
            raise invalid_parameter("Required parameter 'name' is missing (null).", target=where + ".name")
        ipconfigs = (nic_config.get("properties") or {}).get("ipConfigurations") or []
        if not ipconfigs:
            raise invalid_parameter("Required parameter 'ipConfigurations' is missing (null).",
                                    target=where + ".properties.ipConfigurations")
        subnet_id = ((ipconfigs[0].get("properties") or {}).get("subnet") or {}).get("id")
        subnet = state.get(subnet_id) if subnet_id else None
        if subnet is None or subnet.type != netmodel.SUBNET_TYPE:
            raise ArmError(400, "InvalidResourceReference",
                           "Resource %s referenced by resource %s was not found. Please make sure that the "
                           "referenced resource exists, and that both resources are in the same region."
                           % (subnet_id, vmss_name))
    if profile.get("priority", "Regular") not in vmmodel.PRIORITIES:
        raise invalid_parameter("The value '%s' of parameter 'priority' is invalid." % profile["priority"],
                                target="virtualMachineProfile.priority")
    for index, ext in enumerate((profile.get("extensionProfile") or {}).get("extensions") or []):
        where = "virtualMachineProfile.extensionProfile.extensions[%d]" % index
        if not ext.get("name"):
            raise invalid_parameter("Required parameter 'name' is missing (null).", target=where + ".name")
        for field in ("publisher", "type", "typeHandlerVersion"):
            if not (ext.get("properties") or {}).get(field):
                raise invalid_parameter("Required parameter '%s' is missing (null)." % field,
                                        target="%s.properties.%s" % (where, field))


def check_capacity(body):
    capacity = (body.get("sku") or {}).get("capacity")
    if capacity is not None and not 0 <= int(capacity) <= 1000:
        raise invalid_parameter("The value %s of parameter 'sku.capacity' is out of range; it must be between 0 "
                                "and 1000." % capacity, target="sku.capacity")


def create_vmss(state, sub, rg, name, body):
    """Validate a scale set body and add it (with its initial instances). Used by PUT and scenarios."""
    state.require_group(sub, rg)
    check_capacity(body)
    props = copy.deepcopy(body.get("properties") or {})
    mode = props.get("orchestrationMode", "Uniform")
    if mode not in ("Flexible", "Uniform"):
        raise invalid_parameter("The value '%s' of parameter 'orchestrationMode' is invalid." % mode,
                                target="orchestrationMode")
    if not body.get("location"):
        raise bad_request("The 'location' property is required.", code="LocationRequired")
    vmss_id = vmss_path(sub, rg, name)
    if mode == "Flexible":
        if props.get("platformFaultDomainCount") is None:
            raise invalid_parameter("Required parameter 'platformFaultDomainCount' is missing (null).",
                                    target="platformFaultDomainCount")
        fd_count = int(props["platformFaultDomainCount"])
        if body.get("zones") and fd_count != 1:
            raise invalid_parameter("platformFaultDomainCount must be 1 for a zonal or zone-spanning Flexible "
                                    "scale set.", target="platformFaultDomainCount")
        if not 1 <= fd_count <= 3:
            raise invalid_parameter("platformFaultDomainCount must be between 1 and 3.",
                                    target="platformFaultDomainCount")
        if props.get("singlePlacementGroup"):
            raise invalid_parameter("Parameter 'singlePlacementGroup' must be false for a Flexible scale set.",
                                    target="singlePlacementGroup")
        if props.get("overprovision"):
            raise invalid_parameter("Parameter 'overprovision' is not allowed for a Flexible scale set.",
                                    target="overprovision")
        props["singlePlacementGroup"] = False
        validate_profile(state, name, props.get("virtualMachineProfile"),
                         int((body.get("sku") or {}).get("capacity") or 0))
    else:
        props.setdefault("platformFaultDomainCount", 5)
        props.setdefault("singlePlacementGroup", True)
        props.setdefault("overprovision", False)
    props["orchestrationMode"] = mode
    props["uniqueId"] = str(uuid.uuid4())
    props["timeCreated"] = iso()
    props["provisioningState"] = "Succeeded"
    upgrades.normalise_upgrade_policy(name, props, mode == "Flexible")
    vmss_body = {"id": vmss_id, "name": name, "type": VMSS_TYPE, "location": body["location"],
                 "tags": dict(body.get("tags") or {}), "properties": props}
    if body.get("zones"):
        vmss_body["zones"] = list(body["zones"])
    if body.get("sku"):
        vmss_body["sku"] = dict(body["sku"])
        vmss_body["sku"].setdefault("tier", "Standard")
        vmss_body["sku"].setdefault("capacity", 0)
    vmss = Resource(vmss_id, VMSS_TYPE, vmss_body, emu={"model_version": 1})
    vmmodel.bump_etag(vmss)
    state.add(vmss)
    return vmss


def add_uniform_instances(state, vmss, count):
    existing = state.children(vmss.id, UNIFORM_VM_TYPE)
    next_id = max([int(i.body["instanceId"]) for i in existing] + [-1]) + 1
    for index in range(next_id, next_id + count):
        inst_id = "%s/virtualMachines/%d" % (vmss.id, index)
        body = {"id": inst_id, "name": "%s_%d" % (vmss.name, index), "instanceId": str(index),
                "type": UNIFORM_VM_TYPE, "location": vmss.body["location"],
                "sku": {"name": (vmss.body.get("sku") or {}).get("name", "Standard_D2s_v5"), "tier": "Standard"},
                "properties": {"latestModelApplied": True, "vmId": str(uuid.uuid4()), "provisioningState": "Succeeded",
                               "platformFaultDomain": index % int(vmss.props.get("platformFaultDomainCount") or 5)}}
        state.add(Resource(inst_id, UNIFORM_VM_TYPE, body, emu={"power": "running", "health": "healthy"}))
    vmss.body.setdefault("sku", {"name": "Standard_D2s_v5", "tier": "Standard"})
    vmss.body["sku"]["capacity"] = len(state.children(vmss.id, UNIFORM_VM_TYPE))
    state.save(vmss)


def scale_flex(state, vmss, capacity, creating):
    """Flex scale-out from the scale set's model: new VMs with NICs built from its network profile."""
    profile = vmss.props.get("virtualMachineProfile")
    if not profile:
        raise bad_request("Scale set '%s' has no virtualMachineProfile, so it cannot create instances; add VMs "
                          "with their own properties.virtualMachineScaleSet instead." % vmss.name,
                          code="InvalidParameter")
    # Azure refuses a scale-out that a V2 NAT rule's frontend port range cannot serve, before creating anything.
    netmodel.check_pool_capacity(state, _profile_pool_ids(profile), capacity - len(members(state, vmss, sort=False)))
    created = []
    index = 0
    while len(members(state, vmss, sort=False)) < capacity:
        name = flex_member_name(vmss.name, index)
        index += 1
        if state.get(vmmodel.vm_path(vmss.subscription_id, vmss.resource_group, name)):
            continue
        created.append(create_member_from_profile(state, vmss, name, creating=creating))
    return created


def _primary_ipconfig(nic_config):
    """The model's ip configuration a member's NIC is built from (the first one)."""
    return (nic_config.get("properties", {}).get("ipConfigurations") or [{}])[0].get("properties", {})


def _profile_pool_ids(profile):
    """The backend pools the NICs of a member created from the model join."""
    return sorted({pool["id"]
                   for nic_config in profile.get("networkProfile", {}).get("networkInterfaceConfigurations", [])
                   for pool in _primary_ipconfig(nic_config).get("loadBalancerBackendAddressPools") or []})


def create_member_from_profile(state, vmss, name, creating=False, zone=None, extra_tags=None):
    profile = copy.deepcopy(vmss.props.get("virtualMachineProfile") or {})
    sub, rg = vmss.subscription_id, vmss.resource_group
    nic_refs = []
    for index, nic_config in enumerate(profile.get("networkProfile", {}).get("networkInterfaceConfigurations", [])):
        ipconfig = _primary_ipconfig(nic_config)
        nic = netmodel.create_nic(
            state, sub, rg, "%s-nic%d" % (name, index), vmss.body["location"], ipconfig.get("subnet", {}).get("id"),
            backend_pool_ids=[p["id"] for p in ipconfig.get("loadBalancerBackendAddressPools", [])],
        )
        nic_refs.append({"id": nic.id, "properties": {"primary": index == 0, "deleteOption": nic_config.get(
            "properties", {}).get("deleteOption", "Delete")}})
    os_profile = profile.get("osProfile", {})
    prefix = os_profile.pop("computerNamePrefix", vmss.name[:9])
    os_profile["computerName"] = (prefix + name[-6:])[:15]
    zones = vmss.body.get("zones") or []
    body = {
        "location": vmss.body["location"],
        "tags": dict(vmss.body.get("tags") or {}, **(extra_tags or {})),
        "properties": {
            "hardwareProfile": {"vmSize": (vmss.body.get("sku") or {}).get("name", "Standard_D2s_v5")},
            "storageProfile": profile.get("storageProfile", {}),
            "osProfile": os_profile,
            "networkProfile": {"networkInterfaces": nic_refs},
            "virtualMachineScaleSet": {"id": vmss.id},
            "priority": profile.get("priority", "Regular"),
        },
    }
    for field in ("evictionPolicy", "billingProfile", "additionalCapabilities"):
        if profile.get(field):
            body["properties"][field] = profile[field]
    if zone or zones:
        body["zones"] = [zone or zones[len(members(state, vmss, sort=False)) % len(zones)]]
    vm = vmmodel.create_vm(state, sub, rg, name, body, creating=creating)
    for ext in profile.get("extensionProfile", {}).get("extensions", []):
        extensionmodel.install_extension_now(state, vm, ext["name"], ext.get("properties", {}))
    return vm


def scale_in(ctx, vmss, current, how_many):
    """Remove the newest members; members protected by a lock, or by instance protection, are skipped."""
    state = ctx.state
    candidates = sorted(current, key=lambda vm: vm.props.get("timeCreated", ""), reverse=True)
    chosen = []
    for vm in candidates:
        if len(chosen) == how_many:
            break
        if locks.applicable_locks(state, vm.id) or upgrades.protected_from_scale_in(vm):
            continue
        chosen.append(vm)
    if chosen:
        vmmodel.start_delete(ctx, chosen, force=False)


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------

def render_vmss(vmss):
    return copy.deepcopy(vmss.body)


def render_uniform_vm(state, inst, expand_instance_view=False):
    body = copy.deepcopy(inst.body)
    if expand_instance_view:
        body["properties"]["instanceView"] = {"statuses": vmmodel.statuses(inst),
                                              "platformFaultDomain": inst.props.get("platformFaultDomain", 0)}
    return body
