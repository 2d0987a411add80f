"""Microsoft.Compute REST API: scale sets and their VMSS-VM API, Flexible and Uniform.

Scale sets: get, lists, create (PUT 201 with provisioningState ``Creating``),
update (PUT or PATCH 200: capacity, model, upgrade policy), delete (with the
members), the batch delete with instance ids (VM names on Flexible sets), and
the scale-set level actions fanned out to the instances. On Flexible sets the
Uniform-only APIs are refused as Azure refuses them (400). The VMSS-VM API by
instance id serves Uniform instances; on Flexible sets it answers by VM name
only where ``upgrades`` allows (instance protection). The model behind them is
in ``scalesetmodel``.
"""

from __future__ import annotations

import copy

from . import locks, lro, upgrades
from .errors import ArmError, bad_request, invalid_parameter, not_found
from .http import ok, page, route
from .scalesetmodel import (UNIFORM_VM_TYPE, VMSS_TYPE, add_uniform_instances, check_capacity, create_vmss, is_flex,
                            members, render_uniform_vm, render_vmss, require_vmss, resolve_instances, scale_flex,
                            scale_in, sync_capacity, validate_profile, vmss_path)
from .vmmodel import (ACTIONS, RG, bump_etag, delete_vm_now, finish_create, instance_view_status, refuse_while_deleting,
                      run_action, start_delete, statuses, went_down)
from .vms import expand_option

FLEX_FORBIDDEN = {"reimageall", "converttosingleplacementgroup", "forcerecoveryservicefabricplatformupdatedomainwalk",
                  "setorchestrationservicestate"}


def _flex_refusal(vmss, operation):
    return bad_request("Operation '%s' is not allowed on Virtual Machine Scale Set '%s'." % (operation, vmss.name))


def _instance_ids(ctx, required):
    body = ctx.json(required=required) or {}
    ids = body.get("instanceIds")
    if required and not ids:
        raise invalid_parameter("Required parameter 'instanceIds' is missing (null).", target="instanceIds")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        raise invalid_parameter("Parameter 'instanceIds' must be a list of strings.", target="instanceIds")
    return ids


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


def _merged(base, change):
    """``base`` with ``change`` merged in, key by key for nested objects."""
    out = copy.deepcopy(base)
    for key, value in change.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else \
            copy.deepcopy(value)
    return out


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
        if is_flex(vmss):
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
    check_capacity(body)
    capacity = (body.get("sku") or {}).get("capacity")
    props = dict(props)
    if ctx.method == "PATCH":
        # PATCH changes the fields of the model and of the upgrade policy it names and keeps the others.
        for key in ("virtualMachineProfile", "upgradePolicy"):
            if isinstance(props.get(key), dict) and isinstance(vmss.props.get(key), dict):
                props[key] = _merged(vmss.props[key], props[key])
    if is_flex(vmss):
        profile = props["virtualMachineProfile"] if "virtualMachineProfile" in props else vmss.props.get(
            "virtualMachineProfile")
        growing = capacity is not None and int(capacity) > len(members(state, vmss))
        validate_profile(state, vmss.name, profile, int(capacity) if growing else 0)
    future = dict(copy.deepcopy(vmss.props), **copy.deepcopy(props))
    upgrades.normalise_upgrade_policy(vmss.name, future, is_flex(vmss))
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
        if is_flex(vmss):
            current = members(state, vmss)
            if capacity > len(current):
                created = scale_flex(state, vmss, capacity, creating=True)
            elif capacity < len(current):
                scale_in(ctx, vmss, current, len(current) - capacity)
        else:
            instances = sorted(state.children(vmss.id, UNIFORM_VM_TYPE), key=lambda i: int(i.body["instanceId"]))
            for inst in instances[capacity:]:
                state.remove(inst)
            add_uniform_instances(state, vmss, max(0, capacity - len(instances)))
    vmss.props["provisioningState"] = "Updating"
    bump_etag(vmss)
    state.save(vmss)

    def complete(op):
        for vm in created:
            finish_create(state, vm)
        vmss.props["provisioningState"] = "Succeeded"
        sync_capacity(state, vmss)
        state.save(vmss)
        upgrades.after_update(state, vmss, model_changed)

    op = lro.start(ctx, "Microsoft.Compute", vmss.body["location"], "update", state.duration("update"), complete,
                   target=vmss.id)
    return lro.accepted(ctx, op, status=200, body=render_vmss(vmss), location=False)


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
    vms = members(state, vmss) if is_flex(vmss) else []
    for vm in vms:
        locks.enforce(state, vm.id, "delete")
    vmss.props["provisioningState"] = "Deleting"
    state.save(vmss)
    for vm in vms:
        vm.props["provisioningState"] = "Deleting"
        went_down(state, vm)
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


@route("POST", RG + "/virtualMachineScaleSets/{vmss}/delete", family="compute", lock_op="action",
       starts_operation=True)
def delete_instances(ctx):
    """The batch delete: for Flexible sets the instance ids are VM names."""
    state = ctx.state
    vmss = require_vmss(ctx)
    targets = resolve_instances(state, vmss, _instance_ids(ctx, required=True))
    for target in targets:
        locks.enforce(state, target.id, "delete")
    if not is_flex(vmss):
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
    if is_flex(vmss):
        raise _flex_refusal(vmss, "VirtualMachineScaleSets.instanceView.GET")
    counts = {}
    for inst in state.children(vmss.id, UNIFORM_VM_TYPE):
        for status in statuses(inst):
            counts[status["code"]] = counts.get(status["code"], 0) + 1
    return ok({"virtualMachine": {"statusesSummary": [{"code": c, "count": n} for c, n in sorted(counts.items())]},
               "statuses": [instance_view_status("ProvisioningState/succeeded", "Provisioning succeeded",
                                                 with_time=True)]})


@route("GET", RG + "/virtualMachineScaleSets/{vmss}/virtualMachines", family="compute")
def list_vmss_vms(ctx):
    state = ctx.state
    vmss = require_vmss(ctx)
    expand = expand_option(ctx) == "instanceview"
    if is_flex(vmss):
        if expand:
            raise _flex_refusal(vmss, "VirtualMachineScaleSets.virtualMachines.GET")
        return page(ctx, members(state, vmss), lambda vm: upgrades.render_flex_member(state, vmss, vm))
    instances = sorted(state.children(vmss.id, UNIFORM_VM_TYPE), key=lambda i: int(i.body["instanceId"]))
    return page(ctx, instances, lambda inst: render_uniform_vm(state, inst, expand))


@route("GET", RG + "/virtualMachineScaleSets/{vmss}/virtualMachines/{iid}", family="compute")
def get_vmss_vm(ctx):
    vmss = require_vmss(ctx)
    if is_flex(vmss):
        return ok(upgrades.render_flex_member(ctx.state, vmss, upgrades.flex_member_by_name(ctx, vmss), detailed=True))
    _, inst = _require_uniform_instance(ctx)
    return ok(render_uniform_vm(ctx.state, inst, expand_option(ctx) == "instanceview"))


@route(["PUT", "PATCH"], RG + "/virtualMachineScaleSets/{vmss}/virtualMachines/{iid}", family="compute",
       lock_op="write", starts_operation=True)
def put_vmss_vm(ctx):
    """Updating a scale set VM: on Flexible sets (by VM name) its instance protection; Uniform's as well."""
    vmss = require_vmss(ctx)
    if is_flex(vmss):
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
    if is_flex(vmss) and name in FLEX_FORBIDDEN:
        raise _flex_refusal(vmss, "VirtualMachineScaleSets.%s.POST" % ctx.param("action"))
    if name == "manualupgrade":
        return upgrades.manual_upgrade(ctx)
    action = ACTIONS.get(name)
    if action is None:
        raise ArmError(404, "NotFound", "The action '%s' is not supported on scale sets." % ctx.param("action"))
    if is_flex(vmss) and not state.settings["flex_batch_actions"]:
        raise _flex_refusal(vmss, "VirtualMachineScaleSets.%s.POST" % ctx.param("action"))
    targets = [target for target in resolve_instances(state, vmss, _instance_ids(ctx, required=False))
               if not upgrades.protected_from_scale_set_actions(target)]
    params = {"hibernate": ctx.flag("hibernate"), "body": {}}
    for target in targets:
        locks.enforce(state, target.id, "action")
        refuse_while_deleting(target)
        action.check(state, target, params)
    ops = [run_action(ctx, target, action, params) for target in targets]
    return lro.accepted(ctx, lro.follow(ctx, "Microsoft.Compute", vmss.body["location"], "vmss_" + action.api_name,
                                        ops, target=vmss.id))
