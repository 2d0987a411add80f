# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""One member dict (and one scale set dict) whichever API it was read from.

A member VM comes as a Resource Graph row or as a compute API VM with its instance view; both become
the same plain dict (power state and health as single words, zones as strings, the fault domain as
an int), which is what every module reports and every filter reads.
"""

from __future__ import annotations

from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import resource_group_from_id


POWER_STATES = ("running", "stopped", "deallocated", "starting", "stopping", "deallocating", "unknown")
HEALTH_STATES = ("healthy", "unhealthy", "unknown", "initializing")
# The power state of a member deleted since it was listed.
ABSENT = "absent"

_POWER_WORDS = frozenset(POWER_STATES) - {"unknown"}
_HEALTH_WORDS = frozenset(HEALTH_STATES)


def normalize_power_state(code):
    """Turn ``PowerState/running`` (or ``VM running``, or ``running``) into ``running``.

    Anything unrecognised, or nothing at all, is ``unknown``.
    """
    word = str(code or "").strip().lower()
    for prefix in ("powerstate/", "vm "):
        if word.startswith(prefix):
            word = word[len(prefix):]
    return word if word in _POWER_WORDS else "unknown"


def power_state_from_statuses(statuses):
    """Return the normalised power state found in an instance view's ``statuses`` list."""
    for status in statuses or []:
        code = str((status or {}).get("code") or "")
        if code.lower().startswith("powerstate/"):
            return normalize_power_state(code)
    return "unknown"


def normalize_health(code):
    """Turn ``HealthState/healthy`` into ``healthy``; None when no health is reported at all.

    None (no Application Health extension, or a source without health data) is kept distinct from
    ``unknown``, which is a state the extension itself reports.
    """
    if not code:
        return None
    word = str(code).strip().lower()
    if word.startswith("healthstate/"):
        word = word[len("healthstate/"):]
    return word if word in _HEALTH_WORDS else "unknown"


def enum_text(value):
    """A field as text, or None when empty; enum members of the newer SDK models print as ``Class.MEMBER``,
    so their value is used."""
    value = getattr(value, "value", value)
    return None if value in (None, "") else str(value)


def _fault_domain(value):
    try:
        return None if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return None


def _nic_ids(network_interfaces):
    return [nic["id"] for nic in network_interfaces or [] if isinstance(nic, dict) and nic.get("id")]


def member_from_graph_row(row):
    """Build a member dict from a row of ``_graph.member_query()`` (or ``member_query_for_scale_sets()``)."""
    return {
        "name": row.get("name"),
        "id": row.get("id"),
        # The id keeps the group's real casing; the resourceGroup column is often lower-cased.
        "resource_group": resource_group_from_id(row.get("id")) or row.get("resourceGroup"),
        "location": row.get("location"),
        "zones": [str(zone) for zone in row.get("zones") or []],
        "fault_domain": _fault_domain(row.get("platformFaultDomain")),
        "power_state": normalize_power_state(row.get("powerState")),
        "health": None,
        "provisioning_state": enum_text(row.get("provisioningState")),
        "vm_size": enum_text(row.get("vmSize")),
        "priority": enum_text(row.get("priority")),
        "ephemeral_os_disk": bool(row.get("diffDiskSettings")),
        "tags": dict(row.get("tags") or {}),
        "network_interface_ids": _nic_ids(row.get("networkInterfaces")),
        "maintenance_pending": None,  # Resource Graph does not carry it
        "source": "resource_graph",
    }


def member_from_vm(vm, instance_view=None):
    """Build a member dict from a VM and its instance view, both in REST layout (see ``as_rest_dict``).

    Without ``instance_view``, the VM's own ``properties.instanceView`` (``$expand=instanceView``) is used.
    """
    properties = vm.get("properties") or {}
    view = instance_view if instance_view is not None else properties.get("instanceView") or {}
    vm_health = ((view.get("vmHealth") or {}).get("status") or {}).get("code")
    fault_domain = properties.get("platformFaultDomain")
    if fault_domain is None:
        fault_domain = view.get("platformFaultDomain")
    os_disk = (properties.get("storageProfile") or {}).get("osDisk") or {}
    return {
        "name": vm.get("name"),
        "id": vm.get("id"),
        "resource_group": resource_group_from_id(vm.get("id")),
        "location": vm.get("location"),
        "zones": [str(zone) for zone in vm.get("zones") or []],
        "fault_domain": _fault_domain(fault_domain),
        "power_state": power_state_from_statuses(view.get("statuses")),
        "health": normalize_health(vm_health),
        "provisioning_state": enum_text(properties.get("provisioningState")),
        "vm_size": enum_text((properties.get("hardwareProfile") or {}).get("vmSize")),
        "priority": enum_text(properties.get("priority")),
        "ephemeral_os_disk": bool(os_disk.get("diffDiskSettings")),
        "tags": dict(vm.get("tags") or {}),
        "network_interface_ids": _nic_ids((properties.get("networkProfile") or {}).get("networkInterfaces")),
        # Platform maintenance the customer may start now (perform maintenance is refused otherwise).
        "maintenance_pending": bool((view.get("maintenanceRedeployStatus") or {}).get(
            "isCustomerInitiatedMaintenanceAllowed")),
        "source": "compute",
    }


def scale_set_from_rest(scale_set):
    """Build the scale set summary dict from the REST layout of a scale set."""
    properties = scale_set.get("properties") or {}
    sku = scale_set.get("sku") or None
    return {
        "id": scale_set.get("id"),
        "name": scale_set.get("name"),
        "resource_group": resource_group_from_id(scale_set.get("id")),
        "location": scale_set.get("location"),
        "orchestration_mode": enum_text(properties.get("orchestrationMode")),
        "platform_fault_domain_count": properties.get("platformFaultDomainCount"),
        "zones": [str(zone) for zone in scale_set.get("zones") or []],
        "provisioning_state": enum_text(properties.get("provisioningState")),
        "upgrade_mode": enum_text((properties.get("upgradePolicy") or {}).get("mode")),
        "sku": {"name": sku.get("name"), "capacity": sku.get("capacity")} if sku else None,
        "automatic_repairs": automatic_repairs_from_rest(properties.get("automaticRepairsPolicy")),
    }


def automatic_repairs_from_rest(policy):
    """The scale set's ``automaticRepairsPolicy`` (None when not set): enabled, grace period, repair action."""
    if not policy:
        return None
    return {"enabled": bool(policy.get("enabled")), "grace_period": policy.get("gracePeriod"),
            "repair_action": enum_text(policy.get("repairAction"))}
