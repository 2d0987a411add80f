# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Normalisation: one member dict from a Resource Graph row or from a VM and its instance view."""

from __future__ import annotations

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils._members import (
    member_from_graph_row,
    member_from_vm,
    normalize_health,
    normalize_power_state,
    power_state_from_statuses,
)
from ansible_collections.azure_flex.vmss.tests.unit.plugins.module_utils.selection_samples import (
    GRAPH_ROW,
    instance_view,
    rest_vm,
    vm_id,
)


@pytest.mark.parametrize("code, word", [
    ("PowerState/running", "running"), ("PowerState/Deallocated", "deallocated"), ("VM stopped", "stopped"),
    ("starting", "starting"), ("PowerState/stopping", "stopping"), ("PowerState/deallocating", "deallocating"),
    ("PowerState/hibernated", "unknown"), ("", "unknown"), (None, "unknown"),
])
def test_normalize_power_state(code, word):
    assert normalize_power_state(code) == word


def test_power_state_comes_from_the_power_status_entry():
    statuses = [{"code": "ProvisioningState/succeeded"}, {"code": "PowerState/deallocated"},
                {"code": "HibernationState/Hibernated"}]

    assert power_state_from_statuses(statuses) == "deallocated"
    assert power_state_from_statuses([{"code": "ProvisioningState/creating"}]) == "unknown"
    assert power_state_from_statuses(None) == "unknown"


@pytest.mark.parametrize("code, word", [
    ("HealthState/healthy", "healthy"), ("HealthState/Unhealthy", "unhealthy"), ("HealthState/unknown", "unknown"),
    ("HealthState/initializing", "initializing"), ("HealthState/weird", "unknown"), (None, None), ("", None),
])
def test_normalize_health(code, word):
    assert normalize_health(code) == word


def test_member_from_graph_row():
    assert member_from_graph_row(GRAPH_ROW) == {
        "name": "web_0001", "id": vm_id("web_0001"), "resource_group": "rg1", "location": "westeurope",
        "zones": ["1"], "fault_domain": 2, "power_state": "running", "health": None,
        "provisioning_state": "Succeeded", "vm_size": "Standard_B2s", "priority": "Spot",
        "ephemeral_os_disk": True, "tags": {"Role": "web"}, "network_interface_ids": ["/nic/1", "/nic/2"],
        "maintenance_pending": None, "source": "resource_graph",
    }


def test_member_from_a_sparse_graph_row():
    member = member_from_graph_row({"id": vm_id("web_0002", "RG-Upper"), "name": "web_0002",
                                    "resourceGroup": "rg-upper"})

    assert member["resource_group"] == "RG-Upper"
    assert (member["zones"], member["fault_domain"], member["power_state"]) == ([], None, "unknown")
    assert (member["ephemeral_os_disk"], member["tags"], member["network_interface_ids"]) == (False, {}, [])


def test_member_from_vm_and_instance_view():
    member = member_from_vm(rest_vm("web_1", zones=["3"], tags={"a": "b"}),
                            instance_view("deallocated", "unhealthy", fault_domain=1))

    assert member["power_state"] == "deallocated"
    assert member["health"] == "unhealthy"
    assert member["fault_domain"] == 1
    assert member["zones"] == ["3"]
    assert member["ephemeral_os_disk"] is False
    assert member["network_interface_ids"] == ["/nic/web_1"]
    assert member["source"] == "compute"
    assert member["maintenance_pending"] is False


def test_member_from_vm_uses_the_expanded_instance_view():
    member = member_from_vm(rest_vm("web_1", fault_domain=0, instance_view=instance_view("stopped", "healthy")))

    assert (member["power_state"], member["health"], member["fault_domain"]) == ("stopped", "healthy", 0)


def test_member_from_vm_reports_pending_maintenance():
    view = {"statuses": [{"code": "PowerState/running"}],
            "maintenanceRedeployStatus": {"isCustomerInitiatedMaintenanceAllowed": True}}
    assert member_from_vm(rest_vm("web_1"), view)["maintenance_pending"] is True
