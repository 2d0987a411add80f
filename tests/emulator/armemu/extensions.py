"""Microsoft.Compute REST API: VM extensions through the single-VM API (list, get, create or update, delete).

An extension can change only while its VM runs (409 OperationNotAllowed
otherwise). PUT answers 201 (new) or 200, PATCH 200, with provisioningState
``Creating`` / ``Updating``; DELETE 202 (204 when there is nothing to delete).
When the operation ends, the VM's ``vmHealth`` follows whether the Application
Health extension is installed. Bodies are built in ``extensionmodel``.
"""

from __future__ import annotations

import copy

from . import lro
from .errors import ArmError, invalid_parameter, not_found, operation_not_allowed
from .http import ok, route
from .state import Resource
from .extensionmodel import EXT_TYPE, render_extension
from .vmmodel import RG, refresh_app_health, refuse_while_deleting, require_vm, settled_power, vm_path
from .vms import expand_option


def _ext_path(ctx):
    return vm_path(ctx.param("sub"), ctx.param("rg"), ctx.param("vm")) + "/extensions/" + ctx.param("ext")


def _require_running_for_extensions(vm):
    if settled_power(vm) != "running" or vm.emu.get("power") != "running":
        raise operation_not_allowed("Cannot modify extensions in the VM when the VM is not running.")


@route("GET", RG + "/virtualMachines/{vm}/extensions", family="compute")
def list_extensions(ctx):
    vm = require_vm(ctx)
    expand = expand_option(ctx) == "instanceview"
    return ok({"value": [render_extension(ctx.state, ext, expand) for ext in ctx.state.children(vm.id, EXT_TYPE)]})


@route("GET", RG + "/virtualMachines/{vm}/extensions/{ext}", family="compute")
def get_extension(ctx):
    require_vm(ctx)
    ext = ctx.state.get(_ext_path(ctx))
    if ext is None:
        raise not_found(_ext_path(ctx), ctx.param("rg"))
    return ok(render_extension(ctx.state, ext, expand_option(ctx) == "instanceview"))


@route(["PUT", "PATCH"], RG + "/virtualMachines/{vm}/extensions/{ext}", family="compute", lock_op="write",
       starts_operation=True)
def put_extension(ctx):
    state = ctx.state
    vm = require_vm(ctx)
    refuse_while_deleting(vm)
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
