"""VM extensions (Microsoft.Compute/virtualMachines/extensions): their bodies, instance views and the Application
Health extension's types.

An extension is a child resource of its VM. Whether the Application Health
extension is installed decides whether the VM's instance view shows
``vmHealth`` (``vmmodel.refresh_app_health``). The REST handlers are in
``extensions.py``.
"""

from __future__ import annotations

import copy

from . import vmmodel
from .state import Resource

EXT_TYPE = "Microsoft.Compute/virtualMachines/extensions"
APP_HEALTH_TYPES = {"applicationhealthlinux", "applicationhealthwindows"}


def extension_instance_view(ext):
    view = {"name": ext.name, "type": "%s.%s" % (ext.props.get("publisher"), ext.props.get("type")),
            "typeHandlerVersion": ext.props.get("typeHandlerVersion"),
            "statuses": [vmmodel.instance_view_status(
                "ProvisioningState/%s" % ext.props.get("provisioningState", "Succeeded").lower(),
                "Provisioning %s" % ext.props.get("provisioningState", "Succeeded").lower())]}
    return view


def render_extension(state, ext, expand=False):
    body = copy.deepcopy(ext.body)
    body["properties"].pop("protectedSettings", None)
    if expand:
        body["properties"]["instanceView"] = extension_instance_view(ext)
    return body


def install_extension_now(state, vm, name, props):
    """Add an extension already provisioned (scenarios and scale-out)."""
    ext_id = vm.id + "/extensions/" + name
    body = {"id": ext_id, "name": name, "type": EXT_TYPE, "location": vm.body["location"],
            "properties": dict(copy.deepcopy(props), provisioningState="Succeeded")}
    body["properties"].setdefault("autoUpgradeMinorVersion", True)
    state.add(Resource(ext_id, EXT_TYPE, body))
    vmmodel.refresh_app_health(state, vm)
    if vm.emu.get("app_health") and vm.emu.get("power") == "running":
        # A scenario's VM has been up for a while: the extension already reports.
        vm.emu.pop("health_token", None)
        vm.emu["health_visible"] = vm.emu.get("health", "healthy")
        state.save(vm)
