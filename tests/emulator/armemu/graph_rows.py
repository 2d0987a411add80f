"""Resource Graph rows: how a resource looks in the Resources / ResourceContainers tables.

Rows are built when a resource changes (see ``State.save``) and never mutated
afterwards, so a query can hand them to the KQL evaluator without copying.
"""

from __future__ import annotations

import copy

POWER_DISPLAY = {
    "running": "VM running",
    "starting": "VM starting",
    "stopping": "VM stopping",
    "stopped": "VM stopped",
    "deallocating": "VM deallocating",
    "deallocated": "VM deallocated",
}

NOT_IN_GRAPH = {"microsoft.network/virtualnetworks/subnets", "microsoft.network/loadbalancers/inboundnatrules"}
CONTAINER_TYPES = {"microsoft.resources/subscriptions/resourcegroups", "microsoft.resources/subscriptions"}


def table_of(row):
    if row["type"] in CONTAINER_TYPES:
        return "resourcecontainers"
    if row["type"] in NOT_IN_GRAPH:
        return None  # child resources Resource Graph does not list as rows of their own
    if row["type"] == "microsoft.compute/virtualmachinescalesets/virtualmachines":
        return "computeresources"  # Uniform instances are not in the Resources table
    return "resources"


def build_row(resource, tenant_id):
    body = resource.body
    rtype = resource.type.lower()
    if rtype == "microsoft.resources/resourcegroups":
        rtype = "microsoft.resources/subscriptions/resourcegroups"
    properties = copy.deepcopy(body.get("properties") or {})
    properties.pop("instanceView", None)
    if resource.type == "Microsoft.Compute/virtualMachines":
        power = resource.emu.get("power")
        extended = {
            "computerName": properties.get("osProfile", {}).get("computerName", body["name"]),
            "osName": resource.emu.get("os_name", "ubuntu"),
            "osVersion": resource.emu.get("os_version", "22.04"),
            "hyperVGeneration": "V2",
        }
        if power:
            extended["powerState"] = {
                "code": "PowerState/%s" % power,
                "level": "Info",
                "displayStatus": POWER_DISPLAY.get(power, power),
            }
        properties["extended"] = {"instanceView": extended}
    resource_group = resource.resource_group
    return {
        "id": resource.id,
        "name": body.get("name"),
        "type": rtype,
        "tenantId": tenant_id,
        "kind": body.get("kind", ""),
        "location": body.get("location", ""),
        "resourceGroup": resource_group.lower() if resource_group else "",
        "subscriptionId": resource.subscription_id,
        "managedBy": body.get("managedBy", ""),
        "sku": copy.deepcopy(body.get("sku")),
        "plan": copy.deepcopy(body.get("plan")),
        "properties": properties,
        "tags": copy.deepcopy(body.get("tags")) or {},
        "identity": copy.deepcopy(body.get("identity")),
        "zones": copy.deepcopy(body.get("zones")),
        "extendedLocation": copy.deepcopy(body.get("extendedLocation")),
    }
