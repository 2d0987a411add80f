# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""flex_instance_extension_info: per-member extension listings."""

from __future__ import annotations

import types

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import AzureFlexError
from ansible_collections.azure_flex.vmss.plugins.module_utils._fanout import run_bounded
from ansible_collections.azure_flex.vmss.plugins.module_utils._module import AzureFlexModule
from ansible_collections.azure_flex.vmss.plugins.modules import flex_instance_extension_info as module


def raw(name, publisher="Microsoft.ManagedServices"):
    return {"name": name, "id": "/x/extensions/" + name,
            "properties": {"publisher": publisher, "type": name, "typeHandlerVersion": "1.0",
                           "provisioningState": "Succeeded",
                           "instanceView": {"statuses": [{"code": "ProvisioningState/succeeded"}]}}}


def test_member_extensions_are_sorted_and_filtered_by_name_case_insensitively():
    listed = module.member_extensions([raw("b"), raw("A")])
    assert [extension["name"] for extension in listed] == ["A", "b"]
    assert [extension["name"] for extension in module.member_extensions([raw("b"), raw("A")], "a")] == ["A"]
    assert listed[0]["statuses"][0]["code"] == "ProvisioningState/succeeded"


class FakeModule:
    def __init__(self, listings, name=None):
        self.params = {"resource_group": "rg", "scale_set": "web", "scale_set_id": None, "instances": None,
                       "power_states": None, "zones": None, "fault_domains": None, "tags": None,
                       "member_source": "resource_graph", "name": name}
        self.calls = []

        def list_(resource_group, vm_name, expand=None):
            self.calls.append((vm_name, expand))
            if isinstance(listings[vm_name], Exception):
                raise listings[vm_name]
            return {"value": listings[vm_name]}

        self.clients = types.SimpleNamespace(compute=lambda: types.SimpleNamespace(
            virtual_machine_extensions=types.SimpleNamespace(list=list_)))
        members = [{"name": vm, "id": "/vm/" + vm, "resource_group": "rg", "power_state": "running"}
                   for vm in sorted(listings, reverse=True)]
        scale_set = {"id": "/ss/web", "name": "web", "resource_group": "rg"}
        self._selection = types.SimpleNamespace(scale_set=scale_set, members=members)

    def selector(self):
        return types.SimpleNamespace(select=lambda criteria: self._selection)

    def fan_out(self, func, items):
        return run_bounded(func, items, 4)

    deadline = types.SimpleNamespace(elapsed=lambda: 1.25)

    def selection_outcome(self):
        return []

    def retry_summary(self):
        return {"retries": 2, "throttled_responses": 1}

    scale_set = None
    common_result = AzureFlexModule.common_result


def test_lists_each_member_with_instance_view_and_counts_extensions():
    fake = FakeModule({"vm1": [raw("HealthExtension")], "vm2": [raw("HealthExtension"), raw("CustomScript")]})
    result = module.run(fake)
    assert [instance["name"] for instance in result["instances"]] == ["vm1", "vm2"]
    assert result["counts"] == {"instances": 2, "extensions": {"HealthExtension": 2, "CustomScript": 1},
                                "selected": 2, "changed": 0, "skipped": 2, "failed": 0, "filtered_out": 0}
    # As every module: the retries it met, how long it took, the scale set, the named members left out.
    assert (result["retries"], result["elapsed_seconds"], result["filtered_out"]) == (
        {"retries": 2, "throttled_responses": 1}, 1.25, [])
    assert result["scale_set"] == {"id": "/ss/web", "name": "web", "resource_group": "rg"}
    assert sorted(fake.calls) == [("vm1", "instanceView"), ("vm2", "instanceView")]
    assert result["changed"] is False


def test_a_failed_read_fails_the_task():
    fake = FakeModule({"vm1": AzureFlexError("boom", code="InternalServerError", status=500)})
    with pytest.raises(AzureFlexError, match="boom"):
        module.run(fake)
