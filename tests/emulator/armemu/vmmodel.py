"""Virtual machines (Microsoft.Compute/virtualMachines): their state, power-state machine, health and bodies.

Every VM has a power-state machine. An action validates the current state
(Azure's 409 OperationNotAllowed when it does not fit), moves the VM into its
transitional state (starting, stopping, deallocating) at once, and completes
as a long-running operation after the configured duration. A newer action on
the same VM preempts the one in flight (its operation ends Canceled with
OperationPreempted), as Azure does.

The Application Health extension: each VM has an application health that the
control API sets. Once the extension is installed, ``vmHealth`` reports it;
after every boot it reports ``initializing`` for a while first.

Creating and deleting VMs (with their NICs, and as members of a Flexible
scale set) is here too; the REST handlers are in ``vms.py``.
"""

from __future__ import annotations

import asyncio
import copy
import re
import uuid

from . import lro, netmodel
from .errors import ArmError, bad_request, invalid_parameter, operation_not_allowed
from .state import Resource, iso

VM_TYPE = "Microsoft.Compute/virtualMachines"

# Microsoft.Compute in a resource group, as a route pattern (vms, extensions, scalesets and upgrades route on it).
RG = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute"
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
READ_ONLY_VM_PROPS = ("provisioningState", "instanceView", "vmId", "timeCreated")


def vm_path(sub, rg, name):
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s" % (sub, rg, name)


def bump_etag(res):
    res.emu["etag"] = res.emu.get("etag", 0) + 1
    res.body["etag"] = '"%d"' % res.emu["etag"]


# ---------------------------------------------------------------------------
# Health
# ---------------------------------------------------------------------------

def _set_visible_health(state, vm, value):
    vm.emu["health_visible"] = value if vm.emu.get("app_health") else None


def went_down(state, vm):
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
        str(ext.props.get("type", "")).lower() in extensionmodel.APP_HEALTH_TYPES
        and ext.props.get("provisioningState") == "Succeeded"
        for ext in state.children(vm.id, extensionmodel.EXT_TYPE)
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

def instance_view_status(code, display, level="Info", with_time=False):
    status = {"code": code, "level": level, "displayStatus": display}
    if with_time:
        status["time"] = iso()
    return status


def provisioning_status(res):
    prov = res.props.get("provisioningState", "Succeeded")
    if prov == "Failed":
        return instance_view_status("ProvisioningState/failed/%s" % res.emu.get("failure_code", "InternalError"),
                                    "Provisioning failed", level="Error")
    return instance_view_status("ProvisioningState/%s" % prov.lower(),
                                "Provisioning succeeded" if prov == "Succeeded" else prov, with_time=True)


def statuses(res):
    out = [provisioning_status(res)]
    power = res.emu.get("power")
    if power:
        out.append(instance_view_status("PowerState/%s" % power, POWER_DISPLAY[power]))
    if res.emu.get("hibernated") and power == "deallocated":
        out.append(instance_view_status("HibernationState/Hibernated", "VM hibernated"))
    return out


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
            "statuses": [dict(instance_view_status("ProvisioningState/succeeded", "Ready", with_time=True),
                              message="GuestAgent is running and accepting new configurations.")]
            if vm.emu.get("power") == "running" else [],
            "extensionHandlers": [
                {"type": "%s.%s" % (ext.props.get("publisher"), ext.props.get("type")),
                 "typeHandlerVersion": ext.props.get("typeHandlerVersion"),
                 "status": instance_view_status("ProvisioningState/succeeded", "Ready")}
                for ext in state.children(vm.id, extensionmodel.EXT_TYPE)
            ],
        },
        "disks": [{"name": vm.props.get("storageProfile", {}).get("osDisk", {}).get("name", vm.name + "_OsDisk"),
                   "statuses": [instance_view_status("ProvisioningState/succeeded", "Provisioning succeeded",
                                                     with_time=True)]}],
        "extensions": [extensionmodel.extension_instance_view(ext)
                       for ext in state.children(vm.id, extensionmodel.EXT_TYPE)],
        "isVMInStandbyPool": False,
        "statuses": statuses(vm),
    }
    visible = vm.emu.get("health_visible")
    if visible:
        view["vmHealth"] = {"status": instance_view_status("HealthState/%s" % visible, HEALTH_DISPLAY[visible])}
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
    extensions = state.children(vm.id, extensionmodel.EXT_TYPE)
    if extensions:
        # As Azure does (VirtualMachine_Get.json): the VM lists its extensions in "resources".
        body["resources"] = [extensionmodel.render_extension(state, ext) for ext in extensions]
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
        return settled_power(vm) == "running"


class PowerOff(Action):
    def check(self, state, vm, params):
        if settled_power(vm) == "deallocated":
            raise _deallocated_refusal(self.api_name, vm)
        return settled_power(vm) == "stopped"


class Deallocate(Action):
    def check(self, state, vm, params):
        if vm.props.get("storageProfile", {}).get("osDisk", {}).get("diffDiskSettings"):
            raise operation_not_allowed("Operation 'deallocate' is not supported for VM '%s' because it uses an "
                                        "ephemeral OS disk." % vm.name)
        if params.get("hibernate"):
            if not vm.props.get("additionalCapabilities", {}).get("hibernationEnabled"):
                raise operation_not_allowed("Hibernation is not enabled on VM '%s'. Set "
                                            "additionalCapabilities.hibernationEnabled to use it." % vm.name)
            if settled_power(vm) != "running":
                raise operation_not_allowed("Operation 'hibernate' is not allowed on VM '%s' since the VM is not "
                                            "running." % vm.name)
        return settled_power(vm) == "deallocated"


class Restart(Action):
    def check(self, state, vm, params):
        if settled_power(vm) == "deallocated":
            raise _deallocated_refusal(self.api_name, vm)
        if settled_power(vm) != "running":
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


def settled_power(vm):
    power = vm.emu.get("power")
    return SETTLING.get(power, power)


def refuse_while_deleting(vm):
    if vm.props.get("provisioningState") == "Deleting":
        raise ArmError(409, "OperationNotAllowed", "Operation on VM '%s' is not allowed since the VM is being "
                       "deleted." % vm.name)


def begin_action(state, vm, action, params):
    """Apply the start of a validated action; returns (duration, complete, restore)."""
    before = {"power": vm.emu.get("power"), "prov": vm.props.get("provisioningState"),
              "hibernated": vm.emu.get("hibernated")}
    vm.emu["power"] = action.transitional
    vm.props["provisioningState"] = "Updating"
    went_down(state, vm)
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
    refuse_while_deleting(vm)
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
# Creating, updating and deleting VMs
# ---------------------------------------------------------------------------

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
        if vmss is None or vmss.type != scalesetmodel.VMSS_TYPE:
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
            fd = scalesetmodel.least_used_fault_domain(state, vmss)
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
    bump_etag(vm)
    state.add(vm)
    if vmss is not None:
        scalesetmodel.members(state, vmss, sort=False)  # builds the member set if this set has none yet
        vmss.emu["members"][vm.key] = vm
        vm.emu["model_version"] = upgrades.model_version(vmss)
    for ref in nic_refs:
        nic = state.get(ref["id"])
        nic.props["virtualMachine"] = {"id": vm_id}
        state.save(nic)
    if vmss is not None:
        scalesetmodel.sync_capacity(state, vmss)
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
    for ext in state.children(vm.id, extensionmodel.EXT_TYPE):
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
        scalesetmodel.sync_capacity(state, vmss)


def start_delete(ctx, vms, force):
    """Mark VMs Deleting and remove them when the operation completes."""
    state = ctx.state
    for vm in vms:
        lro.preempt(state, vm.emu.get("op"))
        vm.props["provisioningState"] = "Deleting"
        went_down(state, vm)
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


def start_vm_update(ctx, state, vm):
    """A VM update's LRO: provisioning Updating now, Succeeded when it ends (back as it was if it is cancelled)."""
    previous = vm.props.get("provisioningState")
    vm.props["provisioningState"] = "Updating"
    bump_etag(vm)
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


def require_vm(ctx):
    return ctx.state.require(vm_path(ctx.param("sub"), ctx.param("rg"), ctx.param("vm")), VM_TYPE)


# A member of a scale set is a VM, an extension belongs to one and an upgrade is one of its actions: those models
# build on this one (upgrades subclasses Action and routes on RG), and it calls back into them. Imported last, so
# that each of them finds this module complete, whichever module is imported first.
from . import extensionmodel, scalesetmodel, upgrades  # noqa: E402
