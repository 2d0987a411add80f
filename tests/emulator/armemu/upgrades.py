"""Scale set upgrade policies, model versions, upgrades of members to the latest model, and instance protection.

What Azure documents (azure-facts.md §13):

* ``upgradePolicy.mode`` is Manual, Automatic or Rolling on Flexible sets too. A Flexible set needs the
  Application Health extension in its model for Rolling (load-balancer probes are Uniform's); rollback of
  failed instances on a policy breach is Uniform only; the rolling upgrade policy's ranges are checked.
* The scale set has a model (``virtualMachineProfile`` and the SKU); every change of it is a new model
  version here. A member built from, or upgraded to, the newest version has its latest model applied.
* ``POST .../manualupgrade`` with VM names brings those members to the latest model: a reimage-like
  transition, each member down for ``durations.upgrade``. Automatic mode upgrades every member at once
  after a model change; Rolling mode runs Azure's rolling upgrade: batches of ``maxBatchInstancePercent``
  of the set, the unhealthy-instance check before every batch, the health gate on the Application Health
  extension (waiting through ``initializing``) and the unhealthy-upgraded check after it, the pause
  between batches, unhealthy members first when asked. ``GET .../rollingUpgrades/latest`` shows its
  status (RollingForward, Cancelled, Completed, Faulted and progress counts); ``POST .../cancel`` stops
  it after the batch in flight. Any later update of the set starts a new one while members are behind.
* Instance protection (``protectionPolicy``) through the VMSS-VM API by VM name is accepted on Flexible
  sets only with the ``flex_native_protection`` setting (uncertain); then scale-in skips members
  protected from scale-in, and scale-set actions (batch power actions, upgrades) skip members protected
  from scale-set actions. Protection lives on the member (``vm.emu["protection"]``).

Known simplification: ``maxSurge`` is stored and reported, but batches are always upgraded in place.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import re

from . import extensionmodel, locks, lro, scalesetmodel, vmmodel
from .errors import ArmError, bad_request, invalid_parameter, not_found, operation_not_allowed
from .http import ok, route
from .state import Operation, iso, now

RG = vmmodel.RG
ROLLING_UPGRADE_TYPE = "Microsoft.Compute/virtualMachineScaleSets/rollingUpgrades"
UPGRADE_MODES = {"automatic": "Automatic", "manual": "Manual", "rolling": "Rolling"}
ROLLING_RANGES = (("maxBatchInstancePercent", 5, 100), ("maxUnhealthyInstancePercent", 5, 100),
                  ("maxUnhealthyUpgradedInstancePercent", 0, 100))
ROLLING_FLAGS = ("enableCrossZoneUpgrade", "prioritizeUnhealthyInstances", "rollbackFailedInstancesOnPolicyBreach",
                 "maxSurge")
ROLLING_DEFAULTS = {"maxBatchInstancePercent": 20, "maxUnhealthyInstancePercent": 20,
                    "maxUnhealthyUpgradedInstancePercent": 20, "pauseTimeBetweenBatches": "PT0S"}
# The instance-protection page: Flexible sets accept protectionPolicy from this api-version on.
NATIVE_PROTECTION_MIN_API = "2023-09-01"
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$", re.IGNORECASE)
# A member is an upgrade target of the rolling upgrade while it is behind; its health is settled when it
# no longer reports initializing (bounded: the health gate gives up after this many initializing periods).
HEALTH_GATE_PERIODS = 10


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------

def parse_duration(text, target):
    """Seconds of an ISO 8601 duration such as PT0S, PT2M30S; 400 InvalidParameter otherwise."""
    match = _DURATION.match(str(text or ""))
    if not match or str(text).upper() in ("P", "PT"):
        raise invalid_parameter("The value '%s' of parameter '%s' is not a valid ISO 8601 duration, for example "
                                "PT0S or PT2M." % (text, target), target=target)
    days, hours, minutes, seconds = match.groups()
    return (int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0))


def has_app_health_extension(profile):
    return any(str((ext.get("properties") or {}).get("type", "")).lower() in extensionmodel.APP_HEALTH_TYPES
               for ext in ((profile or {}).get("extensionProfile") or {}).get("extensions") or [])


def normalise_upgrade_policy(vmss_name, props, flex):
    """Validate ``props["upgradePolicy"]`` of a scale set as it will be, and complete it in place as Azure
    shows it (canonical mode, the rolling policy's defaults)."""
    policy = props.get("upgradePolicy")
    if policy is None:
        policy = props["upgradePolicy"] = {"mode": "Manual"}
    mode = UPGRADE_MODES.get(str(policy.get("mode") or "Manual").lower())
    if mode is None:
        raise invalid_parameter("The value '%s' of parameter 'upgradePolicy.mode' is invalid. Allowed values: "
                                "Automatic, Manual, Rolling." % policy.get("mode"), target="upgradePolicy.mode")
    policy["mode"] = mode
    rolling = policy.get("rollingUpgradePolicy")
    if rolling is None and mode == "Rolling":
        rolling = policy["rollingUpgradePolicy"] = {}
    if rolling is not None:
        for field, low, high in ROLLING_RANGES:
            value = rolling.get(field)
            if value is None:
                rolling[field] = ROLLING_DEFAULTS[field]
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise invalid_parameter("The value %s of parameter 'upgradePolicy.rollingUpgradePolicy.%s' is out of "
                                        "range. The value must be between %d and %d, inclusive."
                                        % (json.dumps(value), field, low, high),
                                        target="upgradePolicy.rollingUpgradePolicy.%s" % field)
        rolling.setdefault("pauseTimeBetweenBatches", ROLLING_DEFAULTS["pauseTimeBetweenBatches"])
        parse_duration(rolling["pauseTimeBetweenBatches"], "upgradePolicy.rollingUpgradePolicy.pauseTimeBetweenBatches")
        for flag in ROLLING_FLAGS:
            if flag in rolling and rolling[flag] is not None and not isinstance(rolling[flag], bool):
                raise invalid_parameter("The value %s of parameter 'upgradePolicy.rollingUpgradePolicy.%s' must be "
                                        "true or false." % (json.dumps(rolling[flag]), flag),
                                        target="upgradePolicy.rollingUpgradePolicy.%s" % flag)
        if flex and rolling.get("rollbackFailedInstancesOnPolicyBreach"):
            raise invalid_parameter("Parameter 'rollbackFailedInstancesOnPolicyBreach' is supported only for Virtual "
                                    "Machine Scale Sets with Uniform orchestration mode.",
                                    target="upgradePolicy.rollingUpgradePolicy.rollbackFailedInstancesOnPolicyBreach")
    if flex:
        profile = props.get("virtualMachineProfile") or {}
        if (profile.get("networkProfile") or {}).get("healthProbe"):
            raise invalid_parameter("Parameter 'virtualMachineProfile.networkProfile.healthProbe' is not allowed for "
                                    "Virtual Machine Scale Set '%s' with Flexible orchestration mode; use the "
                                    "Application Health extension." % vmss_name,
                                    target="virtualMachineProfile.networkProfile.healthProbe")
        if mode == "Rolling" and not has_app_health_extension(profile):
            raise bad_request("Rolling Upgrade mode is not supported for this Virtual Machine Scale Set because a "
                              "health extension was not specified. A Virtual Machine Scale Set with Flexible "
                              "orchestration mode needs the Application Health extension in its model to use "
                              "Rolling upgrades.")
    return policy


# ---------------------------------------------------------------------------
# Model versions
# ---------------------------------------------------------------------------

def model_signature(vmss):
    return json.dumps({"profile": vmss.props.get("virtualMachineProfile"),
                       "size": (vmss.body.get("sku") or {}).get("name")}, sort_keys=True)


def model_version(vmss):
    return vmss.emu.setdefault("model_version", 1)


def member_version(vm):
    return vm.emu.get("model_version", 1)


def latest_model_applied(vm, vmss):
    return member_version(vm) >= model_version(vmss)


def note_model_change(vmss, signature_before):
    """After an update: a new model version when the model changed; returns whether it did."""
    if model_signature(vmss) == signature_before:
        return False
    vmss.emu["model_version"] = model_version(vmss) + 1
    return True


def apply_model(state, vm, vmss, version):
    """What an upgrade changes on the member: image and size from the model, and its model version."""
    profile = vmss.props.get("virtualMachineProfile") or {}
    image = copy.deepcopy((profile.get("storageProfile") or {}).get("imageReference"))
    if image is not None:
        image.setdefault("exactVersion", vm.emu.get("latest_image_version", "1.0.0"))
        vm.props.setdefault("storageProfile", {})["imageReference"] = image
    size = (vmss.body.get("sku") or {}).get("name")
    if size:
        vm.props.setdefault("hardwareProfile", {})["vmSize"] = size
    vm.emu["model_version"] = max(member_version(vm), version)
    state.save(vm)


# ---------------------------------------------------------------------------
# Instance protection
# ---------------------------------------------------------------------------

def protection(vm):
    return vm.emu.get("protection") or {}


def protected_from_scale_in(vm):
    return bool(protection(vm).get("protectFromScaleIn") or protection(vm).get("protectFromScaleSetActions"))


def protected_from_scale_set_actions(vm):
    return bool(protection(vm).get("protectFromScaleSetActions"))


def native_protection_allowed(ctx):
    """Flexible sets take the VMSS-VM API by VM name only with the setting, from the documented api-version."""
    return bool(ctx.state.settings["flex_native_protection"]) and (ctx.api_version or "") >= NATIVE_PROTECTION_MIN_API


def validate_protection(policy):
    policy = policy or {}
    for field in ("protectFromScaleIn", "protectFromScaleSetActions"):
        if policy.get(field) is not None and not isinstance(policy[field], bool):
            raise invalid_parameter("The value %s of parameter 'protectionPolicy.%s' must be true or false."
                                    % (json.dumps(policy[field]), field), target="protectionPolicy.%s" % field)
    if policy.get("protectFromScaleSetActions") and policy.get("protectFromScaleIn") is False:
        raise invalid_parameter("protectFromScaleIn cannot be false when protectFromScaleSetActions is true: "
                                "protecting an instance from scale set actions also protects it from scale-in.",
                                target="protectionPolicy.protectFromScaleIn")
    out = {}
    if policy.get("protectFromScaleIn") or policy.get("protectFromScaleSetActions"):
        out["protectFromScaleIn"] = True
    if policy.get("protectFromScaleSetActions"):
        out["protectFromScaleSetActions"] = True
    return out


def render_flex_member(state, vmss, vm, detailed=False):
    """A member as the VMSS-VM API shows it on a Flexible set: named by the VM, pointing at the VM resource."""
    props = {"virtualMachineResourceId": vm.id}
    if detailed or state.settings["flex_vmss_vm_list_provisioning_state"]:
        props["provisioningState"] = vm.props.get("provisioningState")
    if detailed or state.settings["flex_vm_list_latest_model"]:
        props["latestModelApplied"] = latest_model_applied(vm, vmss)
    if detailed:
        props.update(vmId=vm.props.get("vmId"), timeCreated=vm.props.get("timeCreated"),
                     hardwareProfile=copy.deepcopy(vm.props.get("hardwareProfile") or {}))
        if protection(vm):
            props["protectionPolicy"] = {"protectFromScaleIn": bool(protection(vm).get("protectFromScaleIn")),
                                         "protectFromScaleSetActions": protected_from_scale_set_actions(vm)}
    body = {"id": "%s/virtualMachines/%s" % (vmss.id, vm.name), "name": vm.name, "instanceId": vm.name,
            "type": scalesetmodel.UNIFORM_VM_TYPE, "location": vm.body["location"], "properties": props}
    if vm.body.get("zones"):
        body["zones"] = list(vm.body["zones"])
    if detailed and vm.body.get("etag"):
        body["etag"] = vm.body["etag"]
    return body


def flex_member_by_name(ctx, vmss):
    """The Flexible member addressed by ``{iid}``: refused as observed unless native protection is on."""
    name = ctx.param("iid")
    if not native_protection_allowed(ctx):
        raise invalid_parameter("Virtual Machine Scale Set VM instanceId must be a number.", target="instanceId")
    for vm in scalesetmodel.members(ctx.state, vmss, sort=False):
        if vm.name.lower() == name.lower():
            return vm
    raise not_found("%s/virtualMachines/%s" % (vmss.id, name), ctx.param("rg"))


def put_flex_member(ctx, vmss):
    """PUT/PATCH of a Flexible member through the VMSS-VM API: only protectionPolicy is taken from the body."""
    state = ctx.state
    vm = flex_member_by_name(ctx, vmss)
    vmmodel.refuse_while_deleting(vm)
    locks.enforce(state, vm.id, "write")
    body = ctx.json()
    props = body.get("properties") or {}
    if "protectionPolicy" in props or ctx.method == "PUT":
        vm.emu["protection"] = validate_protection(props.get("protectionPolicy"))
    op = vmmodel.start_vm_update(ctx, state, vm)
    return lro.accepted(ctx, op, status=200, body=render_flex_member(state, vmss, vm, detailed=True), location=False)


# ---------------------------------------------------------------------------
# Upgrading members
# ---------------------------------------------------------------------------

class Upgrade(vmmodel.Action):
    """Bring a member to the scale set's model: down like a reimage, then booted on the new model."""

    def check(self, state, vm, params):
        return latest_model_applied(vm, params["vmss"])


UPGRADE = Upgrade("upgrade", "upgrade", "starting", "running", boots=True)


class BackgroundCtx:
    """What ``lro.start`` needs of a request, for the operations Azure starts on its own (automatic and
    rolling upgrades)."""

    def __init__(self, state, vmss):
        self.state = state
        self.params = {"sub": vmss.subscription_id}
        self.path = vmss.id
        self.lro_fault = None


def start_member_upgrade(ctx, vm, vmss):
    """Start bringing ``vm`` to the latest model; returns its operation, or None when nothing runs (already
    current, or stopped: a stopped member takes the model at once and stays stopped)."""
    state = ctx.state
    if latest_model_applied(vm, vmss):
        return None
    vmmodel.refuse_while_deleting(vm)
    if vmmodel.settled_power(vm) in ("stopped", "deallocated"):
        apply_model(state, vm, vmss, model_version(vmss))
        return None
    return vmmodel.run_action(ctx, vm, UPGRADE, {"vmss": vmss, "version": model_version(vmss)})


def finish_member_upgrade(state, vm, params):
    """Called by ``vmmodel.begin_action`` when an upgrade of ``vm`` completes."""
    apply_model(state, vm, params["vmss"], params["version"])


def manual_upgrade(ctx):
    """POST .../manualupgrade (routed by ``scalesets.vmss_action``): for Flexible sets the instance ids are VM names."""
    state = ctx.state
    vmss = scalesetmodel.require_vmss(ctx)
    body = ctx.json(required=True) or {}
    ids = body.get("instanceIds")
    if not ids:
        raise invalid_parameter("Required parameter 'instanceIds' is missing (null).", target="instanceIds")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise invalid_parameter("Parameter 'instanceIds' must be a list of strings.", target="instanceIds")
    if not scalesetmodel.is_flex(vmss):
        # The emulator tracks models of Flexible sets only; Uniform instances are always current here.
        scalesetmodel.resolve_instances(state, vmss, ids)
        return lro.accepted(ctx, lro.start(ctx, "Microsoft.Compute", vmss.body["location"], "manualupgrade", 0.0,
                                           lambda op: None, target=vmss.id))
    targets = scalesetmodel.resolve_instances(state, vmss, ids)
    for vm in targets:
        locks.enforce(state, vm.id, "action")
        vmmodel.refuse_while_deleting(vm)
    ops = [op for op in (start_member_upgrade(ctx, vm, vmss) for vm in targets
                         if not protected_from_scale_set_actions(vm)) if op is not None]
    return lro.accepted(ctx, lro.follow(ctx, "Microsoft.Compute", vmss.body["location"], "manualupgrade", ops,
                                        target=vmss.id))


def after_update(state, vmss, model_changed):
    """After an update of the scale set completed: Automatic mode upgrades every member after a model change;
    Rolling mode starts a rolling upgrade while members are behind (any update restarts a cancelled one)."""
    if not scalesetmodel.is_flex(vmss) or state.get(vmss.id) is not vmss:
        return
    mode = (vmss.props.get("upgradePolicy") or {}).get("mode", "Manual")
    ctx = BackgroundCtx(state, vmss)
    behind = [vm for vm in scalesetmodel.members(state, vmss) if not latest_model_applied(vm, vmss)
              and not protected_from_scale_set_actions(vm) and vm.props.get("provisioningState") != "Deleting"]
    if mode == "Automatic" and model_changed:
        for vm in behind:
            start_member_upgrade(ctx, vm, vmss)
    elif mode == "Rolling" and behind:
        current = vmss.emu.get("rolling_upgrade")
        if current is None or current.code != "RollingForward":
            start_rolling_upgrade(state, vmss)


# ---------------------------------------------------------------------------
# Rolling upgrades
# ---------------------------------------------------------------------------

class RollingUpgrade:
    """The status resource of one rolling upgrade, and what the engine needs to run and cancel it."""

    def __init__(self, state, vmss):
        policy = (vmss.props.get("upgradePolicy") or {}).get("rollingUpgradePolicy") or {}
        self.policy = dict(ROLLING_DEFAULTS, **copy.deepcopy(policy))
        self.code = "RollingForward"
        self.start_time = now()
        self.last_action = "Start"
        self.last_action_time = self.start_time
        self.successful = self.failed = self.in_progress = self.pending = 0
        self.error = None
        self.cancel_requested = False
        self.location = vmss.body["location"]
        # Ends (Succeeded) when the upgrade stops, whatever the reason: a cancel call waits for it.
        self.ended = Operation("Microsoft.Compute", self.location, vmss.subscription_id, "rollingUpgrade", vmss.id)
        state.operations[self.ended.id] = self.ended

    def finish(self, code, error=None):
        self.code = code
        self.error = error
        self.in_progress = 0
        self.ended.finish("Succeeded")

    def body(self):
        props = {
            "policy": copy.deepcopy(self.policy),
            "runningStatus": {"code": self.code, "startTime": iso(self.start_time), "lastAction": self.last_action,
                              "lastActionTime": iso(self.last_action_time)},
            "progress": {"successfulInstanceCount": self.successful, "failedInstanceCount": self.failed,
                         "inProgressInstanceCount": self.in_progress, "pendingInstanceCount": self.pending},
        }
        if self.error:
            props["error"] = copy.deepcopy(self.error)
        return {"type": ROLLING_UPGRADE_TYPE, "location": self.location, "tags": {}, "properties": props}


def _unhealthy(vm):
    """Down, or reporting anything but healthy through the Application Health extension."""
    if vm.emu.get("power") != "running":
        return True
    return bool(vm.emu.get("app_health")) and vm.emu.get("health_visible") != "healthy"


def _percent(count, total):
    return int(math.ceil(100.0 * count / total)) if total else 0


def _batches(rr, vmss, todo, total):
    """Batches of at most maxBatchInstancePercent of the set; without cross-zone upgrade, one zone at a time."""
    size = max(1, total * int(rr.policy["maxBatchInstancePercent"]) // 100)
    zonal = bool(vmss.body.get("zones")) and not rr.policy.get("enableCrossZoneUpgrade")

    def key(vm):
        zone = (vm.body.get("zones") or [""])[0] if zonal else ""
        return (zone, 0 if rr.policy.get("prioritizeUnhealthyInstances") and _unhealthy(vm) else 1, vm.name.lower())

    ordered = sorted(todo, key=key)
    batches, current = [], []
    for vm in ordered:
        if current and (len(current) == size or key(current[0])[0] != key(vm)[0]):
            batches.append(current)
            current = []
        current.append(vm)
    if current:
        batches.append(current)
    return batches


def start_rolling_upgrade(state, vmss):
    rr = RollingUpgrade(state, vmss)
    vmss.emu["rolling_upgrade"] = rr
    generation = state.generation
    ctx = BackgroundCtx(state, vmss)
    pause = parse_duration(rr.policy.get("pauseTimeBetweenBatches"), "pauseTimeBetweenBatches") * float(
        state.settings["time_scale"])

    def stale():
        return state.generation != generation or state.get(vmss.id) is not vmss or vmss.emu.get("rolling_upgrade") \
            is not rr

    async def wait_for(predicate, limit):
        deadline = now() + limit
        while not predicate() and now() < deadline and not stale():
            await asyncio.sleep(0.02)

    async def run():
        everyone = scalesetmodel.members(state, vmss)
        total = len(everyone)
        todo = [vm for vm in everyone if not latest_model_applied(vm, vmss) and not protected_from_scale_set_actions(vm)]
        rr.pending = len(todo)
        batches = _batches(rr, vmss, todo, total)
        for index, batch in enumerate(batches):
            if stale():
                return
            if rr.cancel_requested:
                rr.finish("Cancelled")
                return
            present = scalesetmodel.members(state, vmss)
            unhealthy = [vm for vm in present if _unhealthy(vm)]
            if _percent(len(unhealthy), total) > int(rr.policy["maxUnhealthyInstancePercent"]):
                rr.finish("Faulted", {
                    "code": "MaxUnhealthyInstancePercentExceededInRollingUpgrade",
                    "message": "Rolling Upgrade failed after exceeding the MaxUnhealthyInstancePercent value defined "
                               "in the RollingUpgradePolicy. %d%% of instances are in an unhealthy state - more than "
                               "the threshold of %s%%. First unhealthy instance ID is: %s."
                               % (_percent(len(unhealthy), total), rr.policy["maxUnhealthyInstancePercent"],
                                  unhealthy[0].name)})
                return
            batch = [vm for vm in batch if state.get(vm.id) is vm]
            rr.pending -= len(batch)
            rr.in_progress = len(batch)
            ops = []
            for vm in batch:
                try:
                    ops.append(start_member_upgrade(ctx, vm, vmss))
                except ArmError:
                    ops.append(False)
            await wait_for(lambda ops=ops: all(op is None or op is False or op.done for op in ops), 3600.0)
            # The health gate: an upgraded member counts once its health settled (no longer initializing).
            limit = HEALTH_GATE_PERIODS * state.duration("health_initializing") + 1.0
            await wait_for(lambda batch=batch: not any(vm.emu.get("health_visible") == "initializing" for vm in batch),
                           limit)
            if stale():
                return
            for vm, op in zip(batch, ops):
                failed = op is False or (op is not None and op.status != "Succeeded") or state.get(vm.id) is not vm \
                    or _unhealthy(vm)
                if failed:
                    rr.failed += 1
                else:
                    rr.successful += 1
            rr.in_progress = 0
            if _percent(rr.failed, total) > int(rr.policy["maxUnhealthyUpgradedInstancePercent"]):
                first = next(vm for vm, op in zip(batch, ops) if op is False or _unhealthy(vm)
                             or (op is not None and op.status != "Succeeded"))
                rr.finish("Faulted", {
                    "code": "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade",
                    "message": "Rolling Upgrade failed after exceeding the MaxUnhealthyUpgradedInstancePercent value "
                               "defined in the RollingUpgradePolicy. %d%% of instances are in an unhealthy state "
                               "after being upgraded - more than the threshold of %s%%. The most impactful error is: "
                               "Instance found to be unhealthy or unreachable.. First failed instance ID is: %s."
                               % (_percent(rr.failed, total), rr.policy["maxUnhealthyUpgradedInstancePercent"],
                                  first.name)})
                return
            if pause and index + 1 < len(batches):
                await wait_for(lambda: rr.cancel_requested, pause)
        if not stale():
            rr.finish("Cancelled" if rr.cancel_requested and rr.pending else "Completed")

    asyncio.get_event_loop().create_task(run())
    return rr


def _rolling_upgrade(ctx):
    vmss = scalesetmodel.require_vmss(ctx)
    return vmss, vmss.emu.get("rolling_upgrade")


@route("GET", RG + "/virtualMachineScaleSets/{vmss}/rollingUpgrades/latest", family="compute")
def get_latest_rolling_upgrade(ctx):
    vmss, rr = _rolling_upgrade(ctx)
    if rr is None:
        raise not_found(vmss.id + "/rollingUpgrades/latest", ctx.param("rg"))
    return ok(rr.body())


@route("POST", RG + "/virtualMachineScaleSets/{vmss}/rollingUpgrades/cancel", family="compute", lock_op="action",
       starts_operation=True)
def cancel_rolling_upgrade(ctx):
    vmss, rr = _rolling_upgrade(ctx)
    if rr is None or rr.code != "RollingForward":
        raise operation_not_allowed("There is no rolling upgrade in progress on Virtual Machine Scale Set '%s' to "
                                    "cancel." % vmss.name)
    if not rr.cancel_requested:
        rr.cancel_requested = True
        rr.last_action = "Cancel"
        rr.last_action_time = now()
    return lro.accepted(ctx, lro.follow(ctx, "Microsoft.Compute", vmss.body["location"], "cancelRollingUpgrade",
                                        [rr.ended], target=vmss.id))
