"""Microsoft.Compute: virtual machines, scale sets (Flexible and Uniform) and VM extensions.

Every VM has a power-state machine. An action validates the current state
(Azure's 409 OperationNotAllowed when it does not fit), moves the VM into its
transitional state (starting, stopping, deallocating) at once, and completes
as a long-running operation after the configured duration. A newer action on
the same VM preempts the one in flight (its operation ends Canceled with
OperationPreempted), as Azure does.

The Application Health extension: each VM has an application health that the
control API sets. Once the extension is installed, ``vmHealth`` reports it;
after every boot it reports ``initializing`` for a while first.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import re
import uuid

from . import locks, lro, netmodel
from .errors import ArmError, bad_request, invalid_parameter, not_found, operation_not_allowed
from .http import ok, page, route
from .state import Resource, iso

VM_TYPE = "Microsoft.Compute/virtualMachines"
VMSS_TYPE = "Microsoft.Compute/virtualMachineScaleSets"
EXT_TYPE = "Microsoft.Compute/virtualMachines/extensions"
UNIFORM_VM_TYPE = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"

RG = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute"
APP_HEALTH_TYPES = {"applicationhealthlinux", "applicationhealthwindows"}
HEALTH_STATES = {"healthy", "unhealthy", "unknown", "initializing"}
HEALTH_DISPLAY = {"healthy": "The VM is healthy", "unhealthy": "The VM is unhealthy",
                  "unknown": "The VM health is unknown", "initializing": "The VM health is initializing"}
POWER_DISPLAY = {"running": "VM running", "starting": "VM starting", "stopping": "VM stopping",
                 "stopped": "VM stopped", "deallocating": "VM deallocating", "deallocated": "VM deallocated"}
# What a transitional state is heading for, for the wrong-state checks.
SETTLING = {"starting": "running", "stopping": "stopped", "deallocating": "deallocated"}
VM_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}[A-Za-z0-9_]$|^[A-Za-z0-9_]$")
PRIORITIES = ("Regular", "Spot", "Low", "SpotPlus")
EVICTABLE = ("Spot", "SpotPlus")
FLEX_FORBIDDEN = {"reimageall", "converttosingleplacementgroup", "forcerecoveryservicefabricplatformupdatedomainwalk",
                  "setorchestrationservicestate"}


def vm_path(sub, rg, name):
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s" % (sub, rg, name)


def vmss_path(sub, rg, name):
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachineScaleSets/%s" % (
        sub, rg, name)


def flex_member_name(scale_set_name, index):
    """Flex names its VMs '{set}_{8 hex}'; derive the hex from the index so scenarios are stable."""
    digest = hashlib.sha1(("%s/%d" % (scale_set_name, index)).encode()).hexdigest()[:8]
    return "%s_%s" % (scale_set_name, digest)


def _etag(res):
    res.emu["etag"] = res.emu.get("etag", 0) + 1
    res.body["etag"] = '"%d"' % res.emu["etag"]


# ---------------------------------------------------------------------------
# Health
# ---------------------------------------------------------------------------

def _set_visible_health(state, vm, value):
    vm.emu["health_visible"] = value if vm.emu.get("app_health") else None


def _went_down(state, vm):
    vm.emu.pop("health_token", None)
    _set_visible_health(state, vm, "unknown")


def _booted(state, vm):
    """The VM finished booting: the health extension reports initializing, then the app's state."""
    if vm.emu.get("pending_health"):
        vm.emu["health"] = vm.emu.pop("pending_health")
    if not vm.emu.get("app_health"):
        vm.emu["health_visible"] = None
        return
    token = object()
    vm.emu["health_token"] = token
    vm.emu["health_visible"] = "initializing"
    generation = state.generation

    def settle():
        if state.generation != generation or vm.emu.get("health_token") is not token:
            return
        if state.get(vm.id) is not vm or vm.emu.get("power") != "running":
            return
        vm.emu["health_visible"] = vm.emu.get("health", "healthy")
        state.save(vm)

    asyncio.get_event_loop().call_later(state.duration("health_initializing"), settle)


def set_health(state, vm, health, after_restart=False):
    """Control API: the application's health on this VM, now or from its next boot."""
    if health not in HEALTH_STATES:
        raise ValueError("health must be one of %s" % ", ".join(sorted(HEALTH_STATES)))
    if after_restart:
        vm.emu["pending_health"] = health
        return
    vm.emu.pop("pending_health", None)
    vm.emu["health"] = health
    if vm.emu.get("power") == "running" and vm.emu.get("health_visible") != "initializing":
        _set_visible_health(state, vm, health)
    state.save(vm)


def refresh_app_health(state, vm):
    """Whether the Application Health extension is installed decides whether vmHealth shows."""
    installed = any(
        str(ext.props.get("type", "")).lower() in APP_HEALTH_TYPES and ext.props.get("provisioningState") == "Succeeded"
        for ext in state.children(vm.id, EXT_TYPE)
    )
    if installed == bool(vm.emu.get("app_health")):
        return
    vm.emu["app_health"] = installed
    if not installed:
        vm.emu["health_visible"] = None
    elif vm.emu.get("power") == "running":
        _booted(state, vm)
    else:
        vm.emu["health_visible"] = "unknown"
    state.save(vm)


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------

def _status(code, display, level="Info", with_time=False):
    status = {"code": code, "level": level, "displayStatus": display}
    if with_time:
        status["time"] = iso()
    return status


def provisioning_status(res):
    prov = res.props.get("provisioningState", "Succeeded")
    if prov == "Failed":
        return _status("ProvisioningState/failed/%s" % res.emu.get("failure_code", "InternalError"),
                       "Provisioning failed", level="Error")
    return _status("ProvisioningState/%s" % prov.lower(),
                   "Provisioning succeeded" if prov == "Succeeded" else prov, with_time=True)


def statuses(res):
    out = [provisioning_status(res)]
    power = res.emu.get("power")
    if power:
        out.append(_status("PowerState/%s" % power, POWER_DISPLAY[power]))
    if res.emu.get("hibernated") and power == "deallocated":
        out.append(_status("HibernationState/Hibernated", "VM hibernated"))
    return out


def extension_instance_view(ext):
    view = {"name": ext.name, "type": "%s.%s" % (ext.props.get("publisher"), ext.props.get("type")),
            "typeHandlerVersion": ext.props.get("typeHandlerVersion"),
            "statuses": [_status("ProvisioningState/%s" % ext.props.get("provisioningState", "Succeeded").lower(),
                                 "Provisioning %s" % ext.props.get("provisioningState", "Succeeded").lower())]}
    return view


def instance_view(state, vm):
    view = {
        "computerName": vm.props.get("osProfile", {}).get("computerName", vm.name),
        "osName": vm.emu.get("os_name", "ubuntu"),
        "osVersion": vm.emu.get("os_version", "22.04"),
        "hyperVGeneration": "V2",
        "platformUpdateDomain": 0,
        "platformFaultDomain": vm.props.get("platformFaultDomain", 0),
        "vmAgent": {
            "vmAgentVersion": "2.10.0.8",
            "statuses": [dict(_status("ProvisioningState/succeeded", "Ready", with_time=True),
                              message="GuestAgent is running and accepting new configurations.")]
            if vm.emu.get("power") == "running" else [],
            "extensionHandlers": [
                {"type": "%s.%s" % (ext.props.get("publisher"), ext.props.get("type")),
                 "typeHandlerVersion": ext.props.get("typeHandlerVersion"),
                 "status": _status("ProvisioningState/succeeded", "Ready")}
                for ext in state.children(vm.id, EXT_TYPE)
            ],
        },
        "disks": [{"name": vm.props.get("storageProfile", {}).get("osDisk", {}).get("name", vm.name + "_OsDisk"),
                   "statuses": [_status("ProvisioningState/succeeded", "Provisioning succeeded", with_time=True)]}],
        "extensions": [extension_instance_view(ext) for ext in state.children(vm.id, EXT_TYPE)],
        "isVMInStandbyPool": False,
        "statuses": statuses(vm),
    }
    visible = vm.emu.get("health_visible")
    if visible:
        view["vmHealth"] = {"status": _status("HealthState/%s" % visible, HEALTH_DISPLAY[visible])}
    if vm.emu.get("maintenance"):
        view["maintenanceRedeployStatus"] = {
            "isCustomerInitiatedMaintenanceAllowed": True,
            "preMaintenanceWindowStartTime": iso(vm.emu["maintenance"]),
            "preMaintenanceWindowEndTime": iso(vm.emu["maintenance"] + 14 * 86400),
            "maintenanceWindowStartTime": iso(vm.emu["maintenance"] + 14 * 86400),
            "maintenanceWindowEndTime": iso(vm.emu["maintenance"] + 28 * 86400),
        }
    return view


def render_vm(state, vm, expand_instance_view=False, status_only=False):
    if status_only:
        return {"id": vm.id, "name": vm.name, "type": VM_TYPE, "location": vm.body["location"],
                "properties": {"instanceView": {"statuses": statuses(vm)}}}
    body = copy.deepcopy(vm.body)
    if expand_instance_view:
        body["properties"]["instanceView"] = instance_view(state, vm)
    extensions = state.children(vm.id, EXT_TYPE)
    if extensions:
        # As Azure does (VirtualMachine_Get.json): the VM lists its extensions in "resources".
        body["resources"] = [render_extension(state, ext) for ext in extensions]
    return body


def render_uniform_vm(state, inst, expand_instance_view=False):
    body = copy.deepcopy(inst.body)
    if expand_instance_view:
        body["properties"]["instanceView"] = {"statuses": statuses(inst),
                                              "platformFaultDomain": inst.props.get("platformFaultDomain", 0)}
    return body


# ---------------------------------------------------------------------------
# Power actions
# ---------------------------------------------------------------------------

class Action:
    """One VM power action: which state it needs, what it passes through, where it ends."""

    def __init__(self, api_name, duration, transitional, final, boots=False):
        self.api_name = api_name
        self.duration = duration
        self.transitional = transitional
        self.final = final
        self.boots = boots

    def check(self, state, vm, params):
        """Raise when Azure refuses; return True when there is nothing to do (a no-op success)."""
        return False


def _deallocated_refusal(api_name, vm):
    return operation_not_allowed("Operation '%s' is not allowed on VM '%s' since the VM is either deallocated or "
                                 "marked to be deallocated." % (api_name, vm.name))


class Start(Action):
    def check(self, state, vm, params):
        return _settled(vm) == "running"


class PowerOff(Action):
    def check(self, state, vm, params):
        if _settled(vm) == "deallocated":
            raise _deallocated_refusal(self.api_name, vm)
        return _settled(vm) == "stopped"


class Deallocate(Action):
    def check(self, state, vm, params):
        if vm.props.get("storageProfile", {}).get("osDisk", {}).get("diffDiskSettings"):
            raise operation_not_allowed("Operation 'deallocate' is not supported for VM '%s' because it uses an "
                                        "ephemeral OS disk." % vm.name)
        if params.get("hibernate"):
            if not vm.props.get("additionalCapabilities", {}).get("hibernationEnabled"):
                raise operation_not_allowed("Hibernation is not enabled on VM '%s'. Set "
                                            "additionalCapabilities.hibernationEnabled to use it." % vm.name)
            if _settled(vm) != "running":
                raise operation_not_allowed("Operation 'hibernate' is not allowed on VM '%s' since the VM is not "
                                            "running." % vm.name)
        return _settled(vm) == "deallocated"


class Restart(Action):
    def check(self, state, vm, params):
        if _settled(vm) == "deallocated":
            raise _deallocated_refusal(self.api_name, vm)
        if _settled(vm) != "running":
            raise operation_not_allowed("Operation 'restart' is not allowed on VM '%s' since the VM is not running."
                                        % vm.name)
        return False


class Reimage(Action):
    def check(self, state, vm, params):
        body = params.get("body") or {}
        os_disk = vm.props.get("storageProfile", {}).get("osDisk", {})
        if body.get("tempDisk") and not os_disk.get("diffDiskSettings"):
            raise invalid_parameter("Parameter 'tempDisk' is allowed only for VMs with an ephemeral OS disk.",
                                    target="tempDisk")
        custom = (body.get("osProfile") or {}).get("customData")
        if custom is not None and custom != vm.emu.get("custom_data"):
            raise bad_request("Reimage requires the custom data provided should be same as the custom data provided "
                              "while creating the Virtual Machine.")
        version = body.get("exactVersion")
        if version is not None and not re.match(r"^\d+\.\d+\.\d+$", str(version)):
            raise invalid_parameter("The value '%s' of parameter 'exactVersion' is invalid; expected "
                                    "Major.Minor.Patch." % version, target="exactVersion")
        return False


class PerformMaintenance(Action):
    def check(self, state, vm, params):
        if not vm.emu.get("maintenance"):
            raise operation_not_allowed("Operation 'performMaintenance' is not allowed on VM '%s' since the "
                                        "Subscription of this VM is not eligible." % vm.name)
        return False


ACTIONS = {
    "start": Start("start", "start", "starting", "running", boots=True),
    "poweroff": PowerOff("powerOff", "power_off", "stopping", "stopped"),
    "deallocate": Deallocate("deallocate", "deallocate", "deallocating", "deallocated"),
    "restart": Restart("restart", "restart", "starting", "running", boots=True),
    "redeploy": Action("redeploy", "redeploy", "starting", "running", boots=True),
    "reimage": Reimage("reimage", "reimage", "starting", "running", boots=True),
    "performmaintenance": PerformMaintenance("performMaintenance", "perform_maintenance", "starting", "running",
                                             boots=True),
}


def _settled(vm):
    power = vm.emu.get("power")
    return SETTLING.get(power, power)


def _busy_with_delete(vm):
    if vm.props.get("provisioningState") == "Deleting":
        raise ArmError(409, "OperationNotAllowed", "Operation on VM '%s' is not allowed since the VM is being "
                       "deleted." % vm.name)


def begin_action(state, vm, action, params):
    """Apply the start of a validated action; returns (duration, complete, restore)."""
    before = {"power": vm.emu.get("power"), "prov": vm.props.get("provisioningState"),
              "hibernated": vm.emu.get("hibernated")}
    vm.emu["power"] = action.transitional
    vm.props["provisioningState"] = "Updating"
    _went_down(state, vm)
    state.save(vm)

    def complete(op):
        if state.get(vm.id) is not vm:
            return
        vm.emu["power"] = action.final
        vm.props["provisioningState"] = "Succeeded"
        vm.emu["hibernated"] = bool(action.final == "deallocated" and params.get("hibernate"))
        if action.api_name == "performMaintenance":
            vm.emu.pop("maintenance", None)
        if action.api_name == "upgrade":
            upgrades.finish_member_upgrade(state, vm, params)
        if action.api_name == "reimage":
            version = (params.get("body") or {}).get("exactVersion")
            image = vm.props.get("storageProfile", {}).get("imageReference")
            if image is not None:
                image["exactVersion"] = version or vm.emu.get("latest_image_version", "1.0.0")
            vm.emu["reimaged"] = vm.emu.get("reimaged", 0) + 1
        if action.boots:
            _booted(state, vm)
        else:
            _set_visible_health(state, vm, "unknown")
        state.save(vm)

    def restore(op):
        if state.get(vm.id) is not vm:
            return
        vm.emu["power"] = before["power"]
        vm.props["provisioningState"] = before["prov"]
        vm.emu["hibernated"] = before["hibernated"]
        if before["power"] == "running":
            _booted(state, vm)
        state.save(vm)

    return state.duration(action.duration), complete, restore


def run_action(ctx, vm, action, params):
    state = ctx.state
    # Validate first: a refused call (409) must leave the operation in flight alone.
    _busy_with_delete(vm)
    if vm.props.get("provisioningState") == "Creating":
        raise operation_not_allowed("Operation '%s' is not allowed on VM '%s' since the VM is being created."
                                    % (action.api_name, vm.name))
    if action.check(state, vm, params):
        current = state.operations.get(vm.emu.get("op"))
        if current is not None and not current.done:
            # The operation in flight already heads where this one would: end with it.
            return lro.follow(ctx, "Microsoft.Compute", vm.body["location"], action.api_name, [current],
                              target=vm.id)
        # Nothing to change, but Azure still answers with a (quick) operation.
        return lro.start(ctx, "Microsoft.Compute", vm.body["location"], action.api_name,
                         min(0.2, state.duration(action.duration)), lambda op: None, target=vm.id)
    lro.preempt(state, vm.emu.get("op"))
    duration, complete, restore = begin_action(state, vm, action, params)
    op = lro.start(ctx, "Microsoft.Compute", vm.body["location"], action.api_name, duration, complete, restore,
                   target=vm.id)
    vm.emu["op"] = op.id
    return op


# ---------------------------------------------------------------------------
# Creating and deleting VMs
# ---------------------------------------------------------------------------

READ_ONLY_VM_PROPS = ("provisioningState", "instanceView", "vmId", "timeCreated")


def _least_used_fault_domain(state, vmss):
    count = int(vmss.props.get("platformFaultDomainCount") or 1)
    if count <= 1:
        return None
    usage = {fd: 0 for fd in range(count)}
    for member in members(state, vmss, sort=False):
        fd = member.body["properties"].get("platformFaultDomain")
        if fd in usage:
            usage[fd] += 1
    return min(usage, key=lambda fd: (usage[fd], fd))


def members(state, vmss, sort=True):
    """The Flex set's VMs (sorted by id unless ``sort`` is false).

    The set remembers the VMs created into it (a VM cannot join later and its
    virtualMachineScaleSet is immutable), so this does not scan every VM of the
    subscription; entries of VMs that are gone are dropped here.
    """
    known = vmss.emu.get("members")
    if known is None:
        known = vmss.emu["members"] = {
            vm.key: vm for vm in state.of_type(VM_TYPE, vmss.subscription_id, sort=False)
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


def create_vm(state, sub, rg, name, body, initial_power="running", creating=False):
    """Validate a VM body and add the VM. Used by PUT and by scenarios.

    With ``creating`` the VM starts in provisioningState Creating (the caller
    completes it); otherwise it is created already provisioned.
    """
    state.require_group(sub, rg)
    if not VM_NAME_RE.match(name) or len(name) > 64:
        raise invalid_parameter("The VM name '%s' is invalid. It must be 1-64 characters of letters, digits, "
                                "underscores, periods and hyphens." % name, target="name")
    location = body.get("location")
    if not location:
        raise bad_request("The 'location' property is required.", code="LocationRequired")
    props = copy.deepcopy(body.get("properties") or {})
    for field in READ_ONLY_VM_PROPS:
        props.pop(field, None)
    vm_id = vm_path(sub, rg, name)
    vmss = None
    vmss_ref = (props.get("virtualMachineScaleSet") or {}).get("id")
    if vmss_ref:
        vmss = state.get(vmss_ref)
        if vmss is None or vmss.type != VMSS_TYPE:
            raise ArmError(404, "NotFound", "The Virtual Machine Scale Set '%s' could not be found." % vmss_ref)
        if vmss.props.get("orchestrationMode") != "Flexible":
            raise bad_request("Virtual Machine Scale Set '%s' uses Uniform orchestration mode; only scale sets in "
                              "Flexible orchestration mode accept virtual machines." % vmss.name,
                              code="InvalidParameter")
        props["virtualMachineScaleSet"] = {"id": vmss.id}
        if props.get("availabilitySet"):
            raise bad_request("A VM cannot be in an availability set and a scale set at the same time.",
                              code="InvalidParameter")
        set_zones = vmss.body.get("zones") or []
        vm_zones = body.get("zones") or []
        if set_zones and vm_zones and not set(vm_zones) <= set(set_zones):
            raise invalid_parameter("The zones %s of VM '%s' are not among the zones %s of scale set '%s'."
                                    % (vm_zones, name, set_zones, vmss.name), target="zones")
        fd_count = int(vmss.props.get("platformFaultDomainCount") or 1)
        requested_fd = props.get("platformFaultDomain")
        if requested_fd is not None:
            if fd_count <= 1 or not 0 <= int(requested_fd) < fd_count:
                raise invalid_parameter("platformFaultDomain %s is out of range for scale set '%s' with "
                                        "platformFaultDomainCount %d." % (requested_fd, vmss.name, fd_count),
                                        target="platformFaultDomain")
        else:
            fd = _least_used_fault_domain(state, vmss)
            if fd is not None:
                props["platformFaultDomain"] = fd
    elif props.get("platformFaultDomain") is not None:
        raise invalid_parameter("platformFaultDomain can only be set for VMs in a Flexible scale set.",
                                target="platformFaultDomain")
    nic_refs = props.get("networkProfile", {}).get("networkInterfaces", [])
    for ref in nic_refs:
        nic = state.get(ref.get("id", ""))
        if nic is None or nic.type != netmodel.NIC_TYPE:
            raise ArmError(400, "InvalidResourceReference",
                           "Resource %s referenced by resource %s was not found. Please make sure that the "
                           "referenced resource exists, and that both resources are in the same region."
                           % (ref.get("id"), vm_id))
        owner = (nic.props.get("virtualMachine") or {}).get("id")
        if owner and owner.lower() != vm_id.lower():
            raise ArmError(400, "NicInUse", "Network Interface %s is used by existing resource %s." % (nic.id, owner))
    priority = props.get("priority", "Regular")
    if priority not in PRIORITIES:
        raise invalid_parameter("The value '%s' of parameter 'priority' is invalid." % priority, target="priority")
    if priority in EVICTABLE:
        props.setdefault("evictionPolicy", "Deallocate")
        props.setdefault("billingProfile", {"maxPrice": -1})
    props["priority"] = priority
    os_profile = props.get("osProfile")
    custom_data = None
    if os_profile:
        custom_data = os_profile.pop("customData", None)
        os_profile.pop("adminPassword", None)
        os_profile.setdefault("computerName", name[:15])
        os_profile.setdefault("secrets", [])
        os_profile.setdefault("allowExtensionOperations", True)
    storage = props.setdefault("storageProfile", {})
    os_disk = storage.setdefault("osDisk", {})
    os_disk.setdefault("osType", "Linux")
    os_disk.setdefault("name", "%s_OsDisk_1_%s" % (name, uuid.uuid4().hex[:32]))
    os_disk.setdefault("createOption", "FromImage")
    os_disk.setdefault("caching", "ReadOnly" if os_disk.get("diffDiskSettings") else "ReadWrite")
    os_disk.setdefault("deleteOption", "Delete")
    if not os_disk.get("diffDiskSettings") and os_disk.get("createOption") == "FromImage":
        managed = os_disk.setdefault("managedDisk", {})
        managed.setdefault("storageAccountType", "Premium_LRS")
        managed.setdefault("id", "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/disks/%s"
                           % (sub, rg, os_disk["name"]))
        os_disk.setdefault("diskSizeGB", 30)
    storage.setdefault("dataDisks", [])
    image = storage.get("imageReference")
    if image is not None:
        image.setdefault("exactVersion", "1.0.0")
    props["vmId"] = str(uuid.uuid4())
    props["timeCreated"] = iso()
    props["provisioningState"] = "Creating" if creating else "Succeeded"
    vm_body = {"id": vm_id, "name": name, "type": VM_TYPE, "location": location,
               "tags": dict(body.get("tags") or {}), "properties": props}
    if body.get("zones"):
        vm_body["zones"] = list(body["zones"])
    if vmss is not None:
        vm_body["managedBy"] = vmss.id
    for extra in ("identity", "plan", "extendedLocation"):
        if body.get(extra):
            vm_body[extra] = copy.deepcopy(body[extra])
    vm = Resource(vm_id, VM_TYPE, vm_body, emu={
        "power": None if creating else initial_power, "health": "healthy", "custom_data": custom_data})
    _etag(vm)
    state.add(vm)
    if vmss is not None:
        members(state, vmss, sort=False)  # builds the member set if this set has none yet
        vmss.emu["members"][vm.key] = vm
        vm.emu["model_version"] = upgrades.model_version(vmss)
    for ref in nic_refs:
        nic = state.get(ref["id"])
        nic.props["virtualMachine"] = {"id": vm_id}
        state.save(nic)
    if vmss is not None:
        _sync_capacity(state, vmss)
    if initial_power == "running" and not creating:
        _booted(state, vm)
        state.save(vm)
    return vm


def finish_create(state, vm):
    if state.get(vm.id) is not vm:
        return
    vm.props["provisioningState"] = "Succeeded"
    vm.emu["power"] = "running"
    _booted(state, vm)
    state.save(vm)


def delete_vm_now(state, vm):
    """Remove a VM with its extensions, and the NICs whose deleteOption is Delete."""
    if state.get(vm.id) is not vm:
        return
    lro.preempt(state, vm.emu.get("op"))
    for ext in state.children(vm.id, EXT_TYPE):
        state.remove(ext)
    for ref in vm.props.get("networkProfile", {}).get("networkInterfaces", []):
        nic = state.get(ref["id"])
        if nic is None:
            continue
        delete_option = (ref.get("properties") or {}).get("deleteOption", "Detach")
        if delete_option == "Delete":
            netmodel.release_nic(state, nic)
            state.remove(nic)
        else:
            nic.props.pop("virtualMachine", None)
            state.save(nic)
    vmss_id = (vm.props.get("virtualMachineScaleSet") or {}).get("id")
    state.remove(vm)
    vmss = state.get(vmss_id) if vmss_id else None
    if vmss is not None:
        _sync_capacity(state, vmss)


def _sync_capacity(state, vmss):
    if vmss.props.get("orchestrationMode") == "Flexible" and vmss.body.get("sku") is not None:
        vmss.body["sku"]["capacity"] = len(members(state, vmss, sort=False))
        state.save(vmss)


def start_delete(ctx, vms, force):
    """Mark VMs Deleting and remove them when the operation completes."""
    state = ctx.state
    for vm in vms:
        lro.preempt(state, vm.emu.get("op"))
        vm.props["provisioningState"] = "Deleting"
        _went_down(state, vm)
        state.save(vm)
    duration = state.duration("delete") * (0.5 if force else 1.0)

    def complete(op):
        for vm in vms:
            if vm.emu.get("op") == op.id:
                vm.emu.pop("op")  # this operation is ending, not being preempted
            delete_vm_now(state, vm)

    def restore(op):
        for vm in vms:
            if state.get(vm.id) is vm:
                vm.props["provisioningState"] = "Succeeded"
                if vm.emu.get("power") == "running":
                    _booted(state, vm)
                state.save(vm)

    location = vms[0].body["location"] if vms else "eastus"
    op = lro.start(ctx, "Microsoft.Compute", location, "delete", duration, complete, restore)
    for vm in vms:
        vm.emu["op"] = op.id
    return op


# ---------------------------------------------------------------------------
# Lookups
# ---------------------------------------------------------------------------

def require_vm(ctx):
    return ctx.state.require(vm_path(ctx.param("sub"), ctx.param("rg"), ctx.param("vm")), VM_TYPE)


def require_vmss(ctx):
    return ctx.state.require(vmss_path(ctx.param("sub"), ctx.param("rg"), ctx.param("vmss")), VMSS_TYPE)


def _is_flex(vmss):
    return vmss.props.get("orchestrationMode") == "Flexible"


def _flex_refusal(vmss, operation):
    return bad_request("Operation '%s' is not allowed on Virtual Machine Scale Set '%s'." % (operation, vmss.name))


def _expand(ctx):
    return str(ctx.query.get("$expand", "")).lower()


# ---------------------------------------------------------------------------
# VM routes
# ---------------------------------------------------------------------------

@route("GET", RG + "/virtualMachines/{vm}", family="compute")
def get_vm(ctx):
    vm = require_vm(ctx)
    expand = _expand(ctx)
    if expand and expand not in ("instanceview", "userdata", "resiliencyview"):
        raise invalid_parameter("The value '%s' of parameter '$expand' is invalid." % ctx.query["$expand"],
                                target="$expand")
    return ok(render_vm(ctx.state, vm, expand_instance_view=expand == "instanceview"))


@route("GET", RG + "/virtualMachines/{vm}/instanceView", family="compute")
def get_vm_instance_view(ctx):
    return ok(instance_view(ctx.state, require_vm(ctx)))


FILTER_RE = re.compile(r"^\s*'?virtualMachineScaleSet/id'?\s+eq\s+'([^']+)'\s*$", re.IGNORECASE)


@route("GET", RG + "/virtualMachines", family="compute")
def list_vms(ctx):
    state = ctx.state
    state.require_group(ctx.param("sub"), ctx.param("rg"))
    vms = state.of_type(VM_TYPE, ctx.param("sub"), ctx.param("rg"))
    expand = _expand(ctx) == "instanceview"
    filter_text = ctx.query.get("$filter")
    if filter_text:
        match = FILTER_RE.match(filter_text)
        if not match:
            raise invalid_parameter("The $filter '%s' is not supported; only \"'virtualMachineScaleSet/id' eq "
                                    "'<id>'\" is." % filter_text, target="$filter")
        wanted = match.group(1).lower()
        vms = [vm for vm in vms if (vm.props.get("virtualMachineScaleSet") or {}).get("id", "").lower() == wanted]
    elif expand:
        raise invalid_parameter("The $expand=instanceView option is only supported together with a $filter.",
                                target="$expand")
    return page(ctx, vms, lambda vm: render_vm(state, vm, expand_instance_view=expand))


@route("GET", "/subscriptions/{sub}/providers/Microsoft.Compute/virtualMachines", family="compute")
def list_all_vms(ctx):
    state = ctx.state
    state.require_subscription(ctx.param("sub"))
    vms = state.of_type(VM_TYPE, ctx.param("sub"))
    status_only = ctx.flag("statusOnly")
    return page(ctx, vms, lambda vm: render_vm(state, vm, status_only=status_only))


@route("PUT", RG + "/virtualMachines/{vm}", family="compute", lock_op="write", starts_operation=True)
def put_vm(ctx):
    state = ctx.state
    sub, rg, name = ctx.param("sub"), ctx.param("rg"), ctx.param("vm")
    body = ctx.json()
    existing = state.get(vm_path(sub, rg, name))
    if existing is not None:
        return _update_vm(ctx, existing, body, replace=True)
    vm = create_vm(state, sub, rg, name, body, creating=True)
    op = lro.start(ctx, "Microsoft.Compute", vm.body["location"], "create", state.duration("create"),
                   lambda op: finish_create(state, vm), lambda op: delete_vm_now(state, vm), target=vm.id)
    vm.emu["op"] = op.id
    return lro.accepted(ctx, op, status=201, body=render_vm(state, vm), location=False)


IMMUTABLE_VM = {"virtualMachineScaleSet": "virtualMachineScaleSet", "platformFaultDomain": "platformFaultDomain"}


def _update_vm(ctx, vm, body, replace):
    state = ctx.state
    _busy_with_delete(vm)
    props = body.get("properties") or {}
    for field in IMMUTABLE_VM:
        if field in props:
            old = vm.props.get(field)
            new = props[field]
            old_cmp = old.get("id", "").lower() if isinstance(old, dict) else old
            new_cmp = (new or {}).get("id", "").lower() if isinstance(new, dict) else new
            if old_cmp != new_cmp:
                raise ArmError(409, "PropertyChangeNotAllowed", "Changing property '%s' is not allowed." % field,
                               target=field)
    if "zones" in body and sorted(body.get("zones") or []) != sorted(vm.body.get("zones") or []):
        raise ArmError(409, "PropertyChangeNotAllowed", "Changing property 'zones' is not allowed.", target="zones")
    if "tags" in body:
        vm.body["tags"] = dict(body["tags"] or {})
    for key, value in props.items():
        if key in READ_ONLY_VM_PROPS:
            continue
        if key == "osProfile":
            value = dict(value or {})
            value.pop("adminPassword", None)
            value.pop("customData", None)
            vm.props.setdefault("osProfile", {}).update(value)
        elif isinstance(value, dict) and isinstance(vm.props.get(key), dict) and not replace:
            vm.props[key].update(copy.deepcopy(value))
        else:
            vm.props[key] = copy.deepcopy(value)
    op = start_vm_update(ctx, state, vm)
    return lro.accepted(ctx, op, status=200, body=render_vm(state, vm), location=False)


def start_vm_update(ctx, state, vm):
    """A VM update's LRO: provisioning Updating now, Succeeded when it ends (back as it was if it is cancelled)."""
    previous = vm.props.get("provisioningState")
    vm.props["provisioningState"] = "Updating"
    _etag(vm)
    state.save(vm)

    def complete(op):
        if state.get(vm.id) is vm:
            vm.props["provisioningState"] = "Succeeded"
            state.save(vm)

    def restore(op):
        if state.get(vm.id) is vm:
            vm.props["provisioningState"] = previous
            state.save(vm)

    return lro.start(ctx, "Microsoft.Compute", vm.body["location"], "update", state.duration("update"), complete,
                     restore, target=vm.id)


@route("PATCH", RG + "/virtualMachines/{vm}", family="compute", lock_op="write", starts_operation=True)
def patch_vm(ctx):
    return _update_vm(ctx, require_vm(ctx), ctx.json(), replace=False)


@route("DELETE", RG + "/virtualMachines/{vm}", family="compute", lock_op="delete", starts_operation=True)
def delete_vm(ctx):
    state = ctx.state
    state.require_group(ctx.param("sub"), ctx.param("rg"))
    vm = state.get(vm_path(ctx.param("sub"), ctx.param("rg"), ctx.param("vm")))
    if vm is None or vm.type != VM_TYPE:
        return ok(None, status=204)
    current = state.operations.get(vm.emu.get("op"))
    if vm.props.get("provisioningState") == "Deleting" and current is not None and not current.done:
        # Deleting already: a repeated DELETE ends with the one in flight instead of preempting it.
        return lro.accepted(ctx, lro.follow(ctx, "Microsoft.Compute", vm.body["location"], "delete", [current],
                                            target=vm.id))
    op = start_delete(ctx, [vm], force=ctx.flag("forceDeletion"))
    return lro.accepted(ctx, op)


@route("POST", RG + "/virtualMachines/{vm}/simulateEviction", family="compute", lock_op="action")
def simulate_eviction(ctx):
    state = ctx.state
    vm = require_vm(ctx)
    if vm.props.get("priority") not in EVICTABLE:
        raise operation_not_allowed("Operation 'simulateEviction' is not allowed on VM '%s' since it is not a Spot "
                                    "VM." % vm.name)
    if _settled(vm) == "deallocated" or vm.emu.get("evicting"):
        raise operation_not_allowed("Operation 'simulateEviction' is not allowed on VM '%s' since the VM is not "
                                    "running." % vm.name)
    vm.emu["evicting"] = True
    generation = state.generation

    def evict():
        vm.emu.pop("evicting", None)
        if state.generation != generation or state.get(vm.id) is not vm:
            return
        lro.preempt(state, vm.emu.get("op"))
        if vm.props.get("evictionPolicy") == "Delete":
            delete_vm_now(state, vm)
            return
        vm.emu["power"] = "deallocated"
        vm.props["provisioningState"] = "Succeeded"
        _went_down(state, vm)
        state.save(vm)

    asyncio.get_event_loop().call_later(state.duration("eviction"), evict)
    return ok(None, status=204)


@route("POST", RG + "/virtualMachines/{vm}/{action}", family="compute", lock_op="action", starts_operation=True)
def vm_action(ctx):
    action = ACTIONS.get(ctx.param("action").lower())
    if action is None:
        raise ArmError(404, "NotFound", "The action '%s' is not supported on virtual machines." % ctx.param("action"))
    vm = require_vm(ctx)
    params = {"hibernate": ctx.flag("hibernate"), "skip_shutdown": ctx.flag("skipShutdown"),
              "force": ctx.flag("forceDeallocate")}
    if action.api_name == "reimage":
        params["body"] = ctx.json(required=False) or {}
    op = run_action(ctx, vm, action, params)
    return lro.accepted(ctx, op)


# ---------------------------------------------------------------------------
# VM extensions
# ---------------------------------------------------------------------------

def _ext_path(ctx):
    return vm_path(ctx.param("sub"), ctx.param("rg"), ctx.param("vm")) + "/extensions/" + ctx.param("ext")


def render_extension(state, ext, expand=False):
    body = copy.deepcopy(ext.body)
    body["properties"].pop("protectedSettings", None)
    if expand:
        body["properties"]["instanceView"] = extension_instance_view(ext)
    return body


def _require_running_for_extensions(vm):
    if _settled(vm) != "running" or vm.emu.get("power") != "running":
        raise operation_not_allowed("Cannot modify extensions in the VM when the VM is not running.")


@route("GET", RG + "/virtualMachines/{vm}/extensions", family="compute")
def list_extensions(ctx):
    vm = require_vm(ctx)
    expand = _expand(ctx) == "instanceview"
    return ok({"value": [render_extension(ctx.state, ext, expand) for ext in ctx.state.children(vm.id, EXT_TYPE)]})


@route("GET", RG + "/virtualMachines/{vm}/extensions/{ext}", family="compute")
def get_extension(ctx):
    require_vm(ctx)
    ext = ctx.state.get(_ext_path(ctx))
    if ext is None:
        raise not_found(_ext_path(ctx), ctx.param("rg"))
    return ok(render_extension(ctx.state, ext, _expand(ctx) == "instanceview"))


@route(["PUT", "PATCH"], RG + "/virtualMachines/{vm}/extensions/{ext}", family="compute", lock_op="write",
       starts_operation=True)
def put_extension(ctx):
    state = ctx.state
    vm = require_vm(ctx)
    _busy_with_delete(vm)
    body = ctx.json()
    ext_id = _ext_path(ctx)
    ext = state.get(ext_id)
    props = copy.deepcopy(body.get("properties") or {})
    if ctx.method == "PATCH" and ext is None:
        raise not_found(ext_id, ctx.param("rg"))
    if ext is None:
        for field in ("publisher", "type", "typeHandlerVersion"):
            if not props.get(field):
                raise invalid_parameter("Required parameter '%s' is missing (null)." % field, target=field)
    _require_running_for_extensions(vm)
    props.pop("provisioningState", None)
    props.pop("instanceView", None)
    created = ext is None
    if created:
        ext = Resource(ext_id, EXT_TYPE, {"id": ext_id, "name": ctx.param("ext"), "type": EXT_TYPE,
                                          "location": body.get("location") or vm.body["location"],
                                          "properties": {}})
    elif ctx.method == "PUT" and props.get("type") and props["type"].lower() != str(ext.props.get("type")).lower():
        raise ArmError(409, "PropertyChangeNotAllowed", "Changing property 'type' is not allowed.", target="type")
    if ctx.method == "PUT":
        keep_protected = ext.props.get("protectedSettings")
        ext.body["properties"] = props
        if "protectedSettings" not in props and keep_protected is not None and not created:
            ext.props["protectedSettings"] = keep_protected
    else:
        ext.props.update(props)
    if "tags" in body:
        ext.body["tags"] = dict(body.get("tags") or {})
    ext.props.setdefault("autoUpgradeMinorVersion", False)
    ext.props["provisioningState"] = "Creating" if created else "Updating"
    if created:
        state.add(ext)
    else:
        state.save(ext)

    def complete(op):
        if state.get(ext.id) is not ext:
            return
        ext.props["provisioningState"] = "Succeeded"
        state.save(ext)
        refresh_app_health(state, vm)

    def restore(op):
        if state.get(ext.id) is ext:
            ext.props["provisioningState"] = "Failed"
            state.save(ext)

    op = lro.start(ctx, "Microsoft.Compute", vm.body["location"], "extension", state.duration("extension"),
                   complete, restore, target=ext.id)
    return lro.accepted(ctx, op, status=201 if created else 200, body=render_extension(state, ext), location=False)


@route("DELETE", RG + "/virtualMachines/{vm}/extensions/{ext}", family="compute", lock_op="delete",
       starts_operation=True)
def delete_extension(ctx):
    state = ctx.state
    vm = require_vm(ctx)
    ext = state.get(_ext_path(ctx))
    if ext is None:
        return ok(None, status=204)
    _require_running_for_extensions(vm)
    ext.props["provisioningState"] = "Deleting"
    state.save(ext)

    def complete(op):
        state.remove(ext)
        refresh_app_health(state, vm)

    op = lro.start(ctx, "Microsoft.Compute", vm.body["location"], "extension", state.duration("extension"),
                   complete, target=ext.id)
    return lro.accepted(ctx, op)


# ---------------------------------------------------------------------------
# Scale sets
# ---------------------------------------------------------------------------

def _validate_profile(state, vmss_name, profile, capacity):
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
    if profile.get("priority", "Regular") not in PRIORITIES:
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


def _check_capacity(body):
    capacity = (body.get("sku") or {}).get("capacity")
    if capacity is not None and not 0 <= int(capacity) <= 1000:
        raise invalid_parameter("The value %s of parameter 'sku.capacity' is out of range; it must be between 0 "
                                "and 1000." % capacity, target="sku.capacity")


def create_vmss(state, sub, rg, name, body):
    """Validate a scale set body and add it (with its initial instances). Used by PUT and scenarios."""
    state.require_group(sub, rg)
    _check_capacity(body)
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
        _validate_profile(state, name, props.get("virtualMachineProfile"),
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
    _etag(vmss)
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
        if state.get(vm_path(vmss.subscription_id, vmss.resource_group, name)):
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
    vm = create_vm(state, sub, rg, name, body, creating=creating)
    for ext in profile.get("extensionProfile", {}).get("extensions", []):
        install_extension_now(state, vm, ext["name"], ext.get("properties", {}))
    return vm


def install_extension_now(state, vm, name, props):
    """Add an extension already provisioned (scenarios and scale-out)."""
    ext_id = vm.id + "/extensions/" + name
    body = {"id": ext_id, "name": name, "type": EXT_TYPE, "location": vm.body["location"],
            "properties": dict(copy.deepcopy(props), provisioningState="Succeeded")}
    body["properties"].setdefault("autoUpgradeMinorVersion", True)
    state.add(Resource(ext_id, EXT_TYPE, body))
    refresh_app_health(state, vm)
    if vm.emu.get("app_health") and vm.emu.get("power") == "running":
        # A scenario's VM has been up for a while: the extension already reports.
        vm.emu.pop("health_token", None)
        vm.emu["health_visible"] = vm.emu.get("health", "healthy")
        state.save(vm)


def render_vmss(vmss):
    return copy.deepcopy(vmss.body)


@route("GET", RG + "/virtualMachineScaleSets/{vmss}", family="compute")
def get_vmss(ctx):
    return ok(render_vmss(require_vmss(ctx)))


@route("GET", RG + "/virtualMachineScaleSets", family="compute")
def list_vmss(ctx):
    state = ctx.state
    state.require_group(ctx.param("sub"), ctx.param("rg"))
    return page(ctx, state.of_type(VMSS_TYPE, ctx.param("sub"), ctx.param("rg")), render_vmss)


@route("GET", "/subscriptions/{sub}/providers/Microsoft.Compute/virtualMachineScaleSets", family="compute")
def list_all_vmss(ctx):
    ctx.state.require_subscription(ctx.param("sub"))
    return page(ctx, ctx.state.of_type(VMSS_TYPE, ctx.param("sub")), render_vmss)


@route("PUT", RG + "/virtualMachineScaleSets/{vmss}", family="compute", lock_op="write", starts_operation=True)
def put_vmss(ctx):
    state = ctx.state
    sub, rg, name = ctx.param("sub"), ctx.param("rg"), ctx.param("vmss")
    body = ctx.json()
    existing = state.get(vmss_path(sub, rg, name))
    if existing is not None:
        return _update_vmss(ctx, existing, body)
    vmss = create_vmss(state, sub, rg, name, body)
    capacity = int((body.get("sku") or {}).get("capacity") or 0)
    created = []
    if capacity:
        if _is_flex(vmss):
            created = scale_flex(state, vmss, capacity, creating=True)
        else:
            add_uniform_instances(state, vmss, capacity)
    vmss.props["provisioningState"] = "Creating"
    state.save(vmss)

    def complete(op):
        for vm in created:
            finish_create(state, vm)
        vmss.props["provisioningState"] = "Succeeded"
        state.save(vmss)

    op = lro.start(ctx, "Microsoft.Compute", vmss.body["location"], "create", state.duration("create"), complete,
                   target=vmss.id)
    return lro.accepted(ctx, op, status=201, body=render_vmss(vmss), location=False)


def _update_vmss(ctx, vmss, body):
    state = ctx.state
    props = body.get("properties") or {}
    mode = props.get("orchestrationMode")
    if mode and mode != vmss.props.get("orchestrationMode"):
        raise ArmError(409, "PropertyChangeNotAllowed", "Changing property 'orchestrationMode' is not allowed.",
                       target="orchestrationMode")
    if "platformFaultDomainCount" in props and props["platformFaultDomainCount"] != vmss.props.get(
            "platformFaultDomainCount"):
        raise ArmError(409, "PropertyChangeNotAllowed", "Changing property 'platformFaultDomainCount' is not "
                       "allowed.", target="platformFaultDomainCount")
    _check_capacity(body)
    capacity = (body.get("sku") or {}).get("capacity")
    props = dict(props)
    if ctx.method == "PATCH":
        # PATCH changes the fields of the model and of the upgrade policy it names and keeps the others.
        for key in ("virtualMachineProfile", "upgradePolicy"):
            if isinstance(props.get(key), dict) and isinstance(vmss.props.get(key), dict):
                props[key] = _merged(vmss.props[key], props[key])
    if _is_flex(vmss):
        profile = props["virtualMachineProfile"] if "virtualMachineProfile" in props else vmss.props.get(
            "virtualMachineProfile")
        growing = capacity is not None and int(capacity) > len(members(state, vmss))
        _validate_profile(state, vmss.name, profile, int(capacity) if growing else 0)
    future = dict(copy.deepcopy(vmss.props), **copy.deepcopy(props))
    upgrades.normalise_upgrade_policy(vmss.name, future, _is_flex(vmss))
    props["upgradePolicy"] = future["upgradePolicy"]
    signature = upgrades.model_signature(vmss)
    if "tags" in body:
        vmss.body["tags"] = dict(body["tags"] or {})
    for key, value in props.items():
        if key not in ("provisioningState", "uniqueId", "timeCreated", "orchestrationMode"):
            vmss.props[key] = copy.deepcopy(value)
    created = []
    if body.get("sku"):
        vmss.body.setdefault("sku", {}).update({k: v for k, v in body["sku"].items() if k != "capacity"})
    model_changed = upgrades.note_model_change(vmss, signature)
    if capacity is not None:
        capacity = int(capacity)
        if _is_flex(vmss):
            current = members(state, vmss)
            if capacity > len(current):
                created = scale_flex(state, vmss, capacity, creating=True)
            elif capacity < len(current):
                _scale_in(ctx, vmss, current, len(current) - capacity)
        else:
            instances = sorted(state.children(vmss.id, UNIFORM_VM_TYPE), key=lambda i: int(i.body["instanceId"]))
            for inst in instances[capacity:]:
                state.remove(inst)
            add_uniform_instances(state, vmss, max(0, capacity - len(instances)))
    vmss.props["provisioningState"] = "Updating"
    _etag(vmss)
    state.save(vmss)

    def complete(op):
        for vm in created:
            finish_create(state, vm)
        vmss.props["provisioningState"] = "Succeeded"
        _sync_capacity(state, vmss)
        state.save(vmss)
        upgrades.after_update(state, vmss, model_changed)

    op = lro.start(ctx, "Microsoft.Compute", vmss.body["location"], "update", state.duration("update"), complete,
                   target=vmss.id)
    return lro.accepted(ctx, op, status=200, body=render_vmss(vmss), location=False)


def _merged(base, change):
    """``base`` with ``change`` merged in, key by key for nested objects."""
    out = copy.deepcopy(base)
    for key, value in change.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else \
            copy.deepcopy(value)
    return out


def _scale_in(ctx, vmss, current, how_many):
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
        start_delete(ctx, chosen, force=False)


@route("PATCH", RG + "/virtualMachineScaleSets/{vmss}", family="compute", lock_op="write", starts_operation=True)
def patch_vmss(ctx):
    return _update_vmss(ctx, require_vmss(ctx), ctx.json())


@route("DELETE", RG + "/virtualMachineScaleSets/{vmss}", family="compute", lock_op="delete", starts_operation=True)
def delete_vmss(ctx):
    state = ctx.state
    state.require_group(ctx.param("sub"), ctx.param("rg"))
    vmss = state.get(vmss_path(ctx.param("sub"), ctx.param("rg"), ctx.param("vmss")))
    if vmss is None:
        return ok(None, status=204)
    vms = members(state, vmss) if _is_flex(vmss) else []
    for vm in vms:
        locks.enforce(state, vm.id, "delete")
    vmss.props["provisioningState"] = "Deleting"
    state.save(vmss)
    for vm in vms:
        vm.props["provisioningState"] = "Deleting"
        _went_down(state, vm)
        state.save(vm)

    def complete(op):
        for vm in vms:
            if vm.emu.get("op") == op.id:
                vm.emu.pop("op")  # this operation is ending, not being preempted
            delete_vm_now(state, vm)
        for child in state.children(vmss.id):
            state.remove(child)
        state.remove(vmss)

    op = lro.start(ctx, "Microsoft.Compute", vmss.body["location"], "delete", state.duration("delete"), complete,
                   target=vmss.id)
    return lro.accepted(ctx, op)


def _instance_ids(ctx, required):
    body = ctx.json(required=required) or {}
    ids = body.get("instanceIds")
    if required and not ids:
        raise invalid_parameter("Required parameter 'instanceIds' is missing (null).", target="instanceIds")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        raise invalid_parameter("Parameter 'instanceIds' must be a list of strings.", target="instanceIds")
    return ids


def _resolve_instances(state, vmss, ids):
    """Instance ids to resources: VM names for Flex, numbers for Uniform."""
    if _is_flex(vmss):
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


@route("POST", RG + "/virtualMachineScaleSets/{vmss}/delete", family="compute", lock_op="action",
       starts_operation=True)
def delete_instances(ctx):
    """The batch delete: for Flexible sets the instance ids are VM names."""
    state = ctx.state
    vmss = require_vmss(ctx)
    targets = _resolve_instances(state, vmss, _instance_ids(ctx, required=True))
    for target in targets:
        locks.enforce(state, target.id, "delete")
    if not _is_flex(vmss):
        for inst in targets:
            inst.props["provisioningState"] = "Deleting"
            state.save(inst)

        def complete_uniform(op):
            for inst in targets:
                state.remove(inst)
            vmss.body["sku"]["capacity"] = len(state.children(vmss.id, UNIFORM_VM_TYPE))
            state.save(vmss)

        op = lro.start(ctx, "Microsoft.Compute", vmss.body["location"], "delete", state.duration("delete"),
                       complete_uniform, target=vmss.id)
        return lro.accepted(ctx, op)
    op = start_delete(ctx, targets, force=ctx.flag("forceDeletion"))
    return lro.accepted(ctx, op)


@route("GET", RG + "/virtualMachineScaleSets/{vmss}/instanceView", family="compute")
def vmss_instance_view(ctx):
    state = ctx.state
    vmss = require_vmss(ctx)
    if _is_flex(vmss):
        raise _flex_refusal(vmss, "VirtualMachineScaleSets.instanceView.GET")
    counts = {}
    for inst in state.children(vmss.id, UNIFORM_VM_TYPE):
        for status in statuses(inst):
            counts[status["code"]] = counts.get(status["code"], 0) + 1
    return ok({"virtualMachine": {"statusesSummary": [{"code": c, "count": n} for c, n in sorted(counts.items())]},
               "statuses": [_status("ProvisioningState/succeeded", "Provisioning succeeded", with_time=True)]})


@route("GET", RG + "/virtualMachineScaleSets/{vmss}/virtualMachines", family="compute")
def list_vmss_vms(ctx):
    state = ctx.state
    vmss = require_vmss(ctx)
    expand = _expand(ctx) == "instanceview"
    if _is_flex(vmss):
        if expand:
            raise _flex_refusal(vmss, "VirtualMachineScaleSets.virtualMachines.GET")
        return page(ctx, members(state, vmss), lambda vm: upgrades.render_flex_member(state, vmss, vm))
    instances = sorted(state.children(vmss.id, UNIFORM_VM_TYPE), key=lambda i: int(i.body["instanceId"]))
    return page(ctx, instances, lambda inst: render_uniform_vm(state, inst, expand))


def _require_uniform_instance(ctx):
    state = ctx.state
    vmss = require_vmss(ctx)
    iid = ctx.param("iid")
    if not iid.isdigit():
        raise invalid_parameter("Virtual Machine Scale Set VM instanceId must be a number.", target="instanceId")
    inst = state.get("%s/virtualMachines/%s" % (vmss.id, iid))
    if inst is None:
        raise not_found("%s/virtualMachines/%s" % (vmss.id, iid), ctx.param("rg"))
    return vmss, inst


@route("GET", RG + "/virtualMachineScaleSets/{vmss}/virtualMachines/{iid}", family="compute")
def get_vmss_vm(ctx):
    vmss = require_vmss(ctx)
    if _is_flex(vmss):
        return ok(upgrades.render_flex_member(ctx.state, vmss, upgrades.flex_member_by_name(ctx, vmss), detailed=True))
    _, inst = _require_uniform_instance(ctx)
    return ok(render_uniform_vm(ctx.state, inst, _expand(ctx) == "instanceview"))


@route(["PUT", "PATCH"], RG + "/virtualMachineScaleSets/{vmss}/virtualMachines/{iid}", family="compute",
       lock_op="write", starts_operation=True)
def put_vmss_vm(ctx):
    """Updating a scale set VM: on Flexible sets (by VM name) its instance protection; Uniform's as well."""
    vmss = require_vmss(ctx)
    if _is_flex(vmss):
        return upgrades.put_flex_member(ctx, vmss)
    _, inst = _require_uniform_instance(ctx)
    policy = ((ctx.json().get("properties") or {}).get("protectionPolicy"))
    if policy is not None:
        inst.emu["protection"] = upgrades.validate_protection(policy)
        inst.body["properties"]["protectionPolicy"] = dict(inst.emu["protection"])
        ctx.state.save(inst)
    return ok(render_uniform_vm(ctx.state, inst))


@route("GET", RG + "/virtualMachineScaleSets/{vmss}/virtualMachines/{iid}/instanceView", family="compute")
def get_vmss_vm_instance_view(ctx):
    _, inst = _require_uniform_instance(ctx)
    return ok({"statuses": statuses(inst), "platformFaultDomain": inst.props.get("platformFaultDomain", 0)})


@route("POST", RG + "/virtualMachineScaleSets/{vmss}/virtualMachines/{iid}/{action}", family="compute",
       lock_op="action", starts_operation=True)
def vmss_vm_action(ctx):
    action = ACTIONS.get(ctx.param("action").lower())
    if action is None:
        raise ArmError(404, "NotFound", "The action '%s' is not supported." % ctx.param("action"))
    _, inst = _require_uniform_instance(ctx)
    op = run_action(ctx, inst, action, {"hibernate": ctx.flag("hibernate"), "body": {}})
    return lro.accepted(ctx, op)


@route("DELETE", RG + "/virtualMachineScaleSets/{vmss}/virtualMachines/{iid}", family="compute", lock_op="delete",
       starts_operation=True)
def delete_vmss_vm(ctx):
    state = ctx.state
    vmss, inst = _require_uniform_instance(ctx)
    inst.props["provisioningState"] = "Deleting"
    state.save(inst)

    def complete(op):
        state.remove(inst)
        vmss.body["sku"]["capacity"] = len(state.children(vmss.id, UNIFORM_VM_TYPE))
        state.save(vmss)

    op = lro.start(ctx, "Microsoft.Compute", vmss.body["location"], "delete", state.duration("delete"), complete)
    return lro.accepted(ctx, op)


@route("POST", RG + "/virtualMachineScaleSets/{vmss}/{action}", family="compute", lock_op="action",
       starts_operation=True)
def vmss_action(ctx):
    """Scale-set level actions: per-instance fan-out, and Flex's refusals of Uniform-only ones."""
    state = ctx.state
    vmss = require_vmss(ctx)
    name = ctx.param("action").lower()
    if _is_flex(vmss) and name in FLEX_FORBIDDEN:
        raise _flex_refusal(vmss, "VirtualMachineScaleSets.%s.POST" % ctx.param("action"))
    if name == "manualupgrade":
        return upgrades.manual_upgrade(ctx)
    action = ACTIONS.get(name)
    if action is None:
        raise ArmError(404, "NotFound", "The action '%s' is not supported on scale sets." % ctx.param("action"))
    if _is_flex(vmss) and not state.settings["flex_batch_actions"]:
        raise _flex_refusal(vmss, "VirtualMachineScaleSets.%s.POST" % ctx.param("action"))
    targets = [target for target in _resolve_instances(state, vmss, _instance_ids(ctx, required=False))
               if not upgrades.protected_from_scale_set_actions(target)]
    params = {"hibernate": ctx.flag("hibernate"), "body": {}}
    for target in targets:
        locks.enforce(state, target.id, "action")
        _busy_with_delete(target)
        action.check(state, target, params)
    ops = [run_action(ctx, target, action, params) for target in targets]
    return lro.accepted(ctx, lro.follow(ctx, "Microsoft.Compute", vmss.body["location"], "vmss_" + action.api_name,
                                        ops, target=vmss.id))


# Upgrades of members to the scale set's model and instance protection build on the VM actions above, and the
# scale set routes here call into them: imported last, when everything they use is defined.
from . import upgrades  # noqa: E402
