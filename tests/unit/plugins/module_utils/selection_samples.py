# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Members of the Flexible scale set web in rg1 in the layouts the collection reads them in (Resource Graph rows,
VMs and instance views in REST layout), and selection criteria naming that set; shared by the tests of
_members, _criteria, _graph, _selection and the inventory plugin."""

from __future__ import annotations

from ansible_collections.azure_flex.vmss.plugins.module_utils._criteria import SelectionCriteria
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import SUBSCRIPTION_ID as SUB, reply


SET_ID = "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/web" % SUB
OTHER_SET_ID = "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/api" % SUB


def vm_id(name, group="rg1"):
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s" % (SUB, group, name)


GRAPH_ROW = {
    "id": vm_id("web_0001"), "name": "web_0001", "resourceGroup": "rg1", "location": "westeurope", "zones": ["1"],
    "tags": {"Role": "web"}, "platformFaultDomain": 2, "powerState": "PowerState/running",
    "provisioningState": "Succeeded", "vmSize": "Standard_B2s", "priority": "Spot",
    "diffDiskSettings": {"option": "Local"},
    "networkInterfaces": [{"id": "/nic/1", "properties": {"primary": True}}, {"id": "/nic/2"}],
}


def rest_vm(name, zones=None, fault_domain=None, tags=None, owner=SET_ID, instance_view=None):
    properties = {"provisioningState": "Succeeded", "hardwareProfile": {"vmSize": "Standard_B2s"},
                  "storageProfile": {"osDisk": {"name": "os"}},
                  "networkProfile": {"networkInterfaces": [{"id": "/nic/" + name}]}}
    if owner:
        properties["virtualMachineScaleSet"] = {"id": owner}
    if fault_domain is not None:
        properties["platformFaultDomain"] = fault_domain
    if instance_view is not None:
        properties["instanceView"] = instance_view
    return {"id": vm_id(name), "name": name, "location": "westeurope", "zones": zones or [], "tags": tags or {},
            "properties": properties}


def instance_view(power="running", health=None, fault_domain=None):
    view = {"statuses": [{"code": "ProvisioningState/succeeded"}, {"code": "PowerState/" + power}]}
    if health:
        view["vmHealth"] = {"status": {"code": "HealthState/" + health}}
    if fault_domain is not None:
        view["platformFaultDomain"] = fault_domain
    return view


def network_row(name, private_ip, public_ip=None, nic_primary="true", ipconfig_primary="true", nic="-nic", group="rg1"):
    """A row of ``_graph.network_query()``: an ip configuration of a network interface of VM ``name``."""
    return {"id": vm_id(name, group).replace("virtualMachines", "networkInterfaces") + nic,
            "vmId": vm_id(name, group).lower(), "nicPrimary": nic_primary, "ipconfigPrimary": ipconfig_primary,
            "privateIp": private_ip, "publicIp": public_ip or "", "publicFqdn": ""}


def criteria(**options):
    base = dict(resource_group="rg1", scale_set="web")
    base.update(options)
    return SelectionCriteria(**base)


def graph_page(rows, skip_token=None, truncated="false"):
    """One Resource Graph answer (objectArray rows), with a continuation token when given."""
    body = {"totalRecords": len(rows), "count": len(rows), "resultTruncated": truncated, "data": rows}
    if skip_token:
        body["$skipToken"] = skip_token
    return reply(200, body)
