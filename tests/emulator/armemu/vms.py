"""Microsoft.Compute REST API: virtual machines (get, instance view, lists, create, update, delete, actions).

Writes answer as Compute does: PUT 201 (new) or 200 (update) and PATCH 200,
with the body in provisioningState ``Creating`` / ``Updating`` and an
``Azure-AsyncOperation`` header; actions and DELETE 202 with
``Azure-AsyncOperation`` and ``Location`` (DELETE of a missing VM 204);
``simulateEviction`` 204 (no operation). The state machine behind them is in
``vmmodel``.
"""

from __future__ import annotations

import asyncio
import copy
import re

from . import lro
from .errors import ArmError, invalid_parameter, operation_not_allowed
from .http import ok, page, route
from .vmmodel import (ACTIONS, EVICTABLE, READ_ONLY_VM_PROPS, RG, VM_TYPE, create_vm, delete_vm_now, finish_create,
                      instance_view, refuse_while_deleting, render_vm, require_vm, run_action, settled_power,
                      start_delete, start_vm_update, vm_path, went_down)

FILTER_RE = re.compile(r"^\s*'?virtualMachineScaleSet/id'?\s+eq\s+'([^']+)'\s*$", re.IGNORECASE)
IMMUTABLE_VM = {"virtualMachineScaleSet": "virtualMachineScaleSet", "platformFaultDomain": "platformFaultDomain"}


def expand_option(ctx):
    return str(ctx.query.get("$expand", "")).lower()


@route("GET", RG + "/virtualMachines/{vm}", family="compute")
def get_vm(ctx):
    vm = require_vm(ctx)
    expand = expand_option(ctx)
    if expand and expand not in ("instanceview", "userdata", "resiliencyview"):
        raise invalid_parameter("The value '%s' of parameter '$expand' is invalid." % ctx.query["$expand"],
                                target="$expand")
    return ok(render_vm(ctx.state, vm, expand_instance_view=expand == "instanceview"))


@route("GET", RG + "/virtualMachines/{vm}/instanceView", family="compute")
def get_vm_instance_view(ctx):
    return ok(instance_view(ctx.state, require_vm(ctx)))


@route("GET", RG + "/virtualMachines", family="compute")
def list_vms(ctx):
    state = ctx.state
    state.require_group(ctx.param("sub"), ctx.param("rg"))
    vms = state.of_type(VM_TYPE, ctx.param("sub"), ctx.param("rg"))
    expand = expand_option(ctx) == "instanceview"
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


def _update_vm(ctx, vm, body, replace):
    state = ctx.state
    refuse_while_deleting(vm)
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
    if settled_power(vm) == "deallocated" or vm.emu.get("evicting"):
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
        went_down(state, vm)
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
