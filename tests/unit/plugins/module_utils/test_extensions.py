# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""_extensions: reading a member's extensions through the real compute client, summaries, bodies."""

from __future__ import annotations

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils import _extensions as extensions
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import AzureFlexError
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import arm_error, clients_over, reply
from ansible_collections.azure_flex.vmss.tests.unit.utils.scripted_arm import Member, ScriptedArm, rest_extension


def compute_over(script):
    clients, adapter, _sleeps = clients_over(script)
    return clients.compute(), adapter


# -- reading ---------------------------------------------------------------------------------------

def test_read_extension_returns_the_rest_layout_without_protected_settings():
    arm = ScriptedArm([Member("a", extensions={"CustomScript": rest_extension(settings={"x": 1})})])
    compute, adapter = compute_over(arm)

    raw = extensions.read_extension(compute, "rg1", "a", "CustomScript")

    assert raw["name"] == "CustomScript"
    assert raw["properties"]["settings"] == {"x": 1} and "protectedSettings" not in raw["properties"]
    # One read of the VM's extension list, without instance views (see read_extension: the list tells a missing
    # VM from a missing extension, a GET of the extension does not).
    assert [request.method for request in adapter.requests] == ["GET"]
    assert adapter.requests[0].url.split("?")[0].endswith("/virtualMachines/a/extensions")
    assert "$expand" not in adapter.requests[0].url


def test_an_extension_the_vm_does_not_have_reads_as_none():
    compute, _adapter = compute_over(ScriptedArm([Member("a")]))
    assert extensions.read_extension(compute, "rg1", "a", "CustomScript") is None


def test_a_vm_gone_is_an_error_not_an_absent_extension():
    """A 404 for the VM itself must not let state=absent report "already absent" for a deleted member."""
    compute, _adapter = compute_over([reply(404, arm_error(
        "ResourceNotFound", "The Resource 'Microsoft.Compute/virtualMachines/a' under resource group 'rg1' was not"
        " found."))])
    with pytest.raises(AzureFlexError, match="Failed to list the extensions of VM a") as raised:
        extensions.read_extension(compute, "rg1", "a", "CustomScript")
    assert (raised.value.code, raised.value.status) == ("ResourceNotFound", 404)


def test_a_vm_gone_is_an_error_even_when_the_message_names_neither_vm_nor_extension():
    compute, _adapter = compute_over([reply(404, arm_error("ResourceNotFound", "The resource was not found."))])
    with pytest.raises(AzureFlexError) as raised:
        extensions.read_extension(compute, "rg1", "a", "CustomScript")
    assert (raised.value.code, raised.value.status) == ("ResourceNotFound", 404)


def test_the_extension_is_found_by_name_case_insensitively():
    arm = ScriptedArm([Member("a", extensions={"Other": rest_extension("Other"), "CustomScript": rest_extension()})])
    compute, _adapter = compute_over(arm)
    assert extensions.read_extension(compute, "rg1", "a", "customscript")["name"] == "CustomScript"


def test_a_missing_resource_group_is_an_error():
    compute, _adapter = compute_over([reply(404, arm_error("ResourceGroupNotFound", "Resource group 'rg1' could not"
                                                                                    " be found."))])
    with pytest.raises(AzureFlexError) as raised:
        extensions.read_extension(compute, "rg1", "a", "CustomScript")
    assert raised.value.code == "ResourceGroupNotFound"


def test_a_refused_read_is_an_error_with_the_arm_code_and_request_id():
    compute, _adapter = compute_over([reply(403, arm_error("AuthorizationFailed", "no read"),
                                            {"x-ms-request-id": "req-7"})])
    with pytest.raises(AzureFlexError) as raised:
        extensions.read_extension(compute, "rg1", "a", "CustomScript")
    assert (raised.value.code, raised.value.status, raised.value.request_id) == ("AuthorizationFailed", 403, "req-7")


def test_list_extensions_asks_for_instance_views_and_returns_every_extension():
    arm = ScriptedArm([Member("a", extensions={"CustomScript": rest_extension(),
                                               "HealthExtension": rest_extension("HealthExtension", type_="Health")})])
    compute, adapter = compute_over(arm)

    listed = extensions.list_extensions(compute, "rg1", "a")

    assert sorted(raw["name"] for raw in listed) == ["CustomScript", "HealthExtension"]
    assert "$expand=instanceView" in adapter.requests[0].url
    assert adapter.requests[0].url.split("?")[0].endswith("/virtualMachines/a/extensions")


def test_a_vm_without_extensions_lists_none():
    compute, _adapter = compute_over([reply(200, {})])
    assert extensions.list_extensions(compute, "rg1", "a") == []


def test_a_failed_listing_names_the_vm():
    compute, _adapter = compute_over([reply(404, arm_error("ResourceNotFound", "gone"))])
    with pytest.raises(AzureFlexError, match="Failed to list the extensions of VM a"):
        extensions.list_extensions(compute, "rg1", "a")


# -- summaries and bodies --------------------------------------------------------------------------

def test_a_summary_without_instance_view_has_no_statuses_and_missing_settings_are_empty():
    summary = extensions.extension_from_rest(rest_extension(auto_upgrade=True, tag="t1"))
    assert "statuses" not in summary and "substatuses" not in summary
    assert summary["settings"] == {}
    assert (summary["auto_upgrade_minor_version"], summary["force_update_tag"], summary["provisioning_state"]) == (
        True, "t1", "Succeeded")


def test_an_empty_status_summarises_to_nones():
    assert extensions.status_from_rest(None) == {"code": None, "level": None, "display_status": None, "message": None,
                                                 "time": None}


def test_type_compares_case_insensitively_and_options_left_out_are_not_managed():
    current = extensions.extension_from_rest(rest_extension(settings={"a": 1}))
    assert extensions.differences(current, {"type": "customscript", "publisher": None, "settings": None,
                                            "type_handler_version": None}) == []


def test_an_update_without_protected_settings_sends_only_the_changed_fields():
    wanted = {"type_handler_version": "2.2", "settings": {"a": 1}, "protected_settings": None}
    assert extensions.update_body(wanted, ["type_handler_version"]) == {"properties": {"typeHandlerVersion": "2.2"}}


def test_a_create_body_leaves_out_options_not_given():
    wanted = {"publisher": "P", "type": "T", "type_handler_version": "1.0", "settings": None,
              "auto_upgrade_minor_version": False, "force_update_tag": None, "protected_settings": None}
    assert extensions.create_body(wanted, "westeurope") == {"location": "westeurope", "properties": {
        "publisher": "P", "type": "T", "typeHandlerVersion": "1.0", "autoUpgradeMinorVersion": False}}
