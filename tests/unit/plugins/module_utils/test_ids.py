# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Names, ids and quoting: what may go into a Resource Graph query or an OData filter, and how."""

from __future__ import annotations

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import (
    ScaleSetRef,
    is_guid,
    kql_quote,
    odata_quote,
    resource_group_from_id,
    validate_resource_group_name,
    validate_vm_name,
)
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import SUBSCRIPTION_ID as SUB
from ansible_collections.azure_flex.vmss.tests.unit.plugins.module_utils.selection_samples import SET_ID


@pytest.mark.parametrize("value, quoted", [
    ("web", "'web'"),
    ("", "''"),
    ("it's", "'it\\'s'"),
    ("back\\slash", "'back\\\\slash'"),
    ("tab\there", "'tab\\there'"),
    ("line\nbreak", "'line\\nbreak'"),
    ("x' or 1==1 //", "'x\\' or 1==1 //'"),
    ("x\\' | project secrets //", "'x\\\\\\' | project secrets //'"),
    ("\u00e9t\u00e9", "'\u00e9t\u00e9'"),
])
def test_kql_quote(value, quoted):
    assert kql_quote(value) == quoted


@pytest.mark.parametrize("value", ["nul\x00byte", "bell\x07", "del\x7f"])
def test_kql_quote_refuses_control_characters(value):
    with pytest.raises(InvalidInputError):
        kql_quote(value)


def test_kql_quote_refuses_non_strings():
    with pytest.raises(InvalidInputError):
        kql_quote(42)


def kql_literal_end(quoted):
    """Index just after the closing quote of the KQL literal that starts ``quoted`` (a tiny lexer)."""
    index = 1
    while index < len(quoted):
        if quoted[index] == "\\":
            index += 2
            continue
        if quoted[index] == "'":
            return index + 1
        index += 1
    return -1


@pytest.mark.parametrize("attack", [
    "a' | project id //", "a\\' | extend x=1", "a\\\\' or true //", "'''", "\\", "\\\\'", "x'\n| take 1",
])
def test_quoted_injection_attempts_stay_one_literal(attack):
    quoted = kql_quote(attack)

    assert kql_literal_end(quoted) == len(quoted)


def test_odata_quote_doubles_quotes():
    assert odata_quote("/a/b'c") == "'/a/b''c'"


@pytest.mark.parametrize("name", ["web_1a2b3c4d", "vm-01", "VM.1", "a", "_hidden", "x" * 64])
def test_valid_vm_names(name):
    assert validate_vm_name(name) == name


@pytest.mark.parametrize("name", ["", "-vm", "vm-", "vm.", ".vm", "x" * 65, "vm 1", "vm'1", "vm/1", "vm\\1",
                                  "vm\n", "web' or 1==1", None, 7])
def test_invalid_vm_names(name):
    with pytest.raises(InvalidInputError):
        validate_vm_name(name)


@pytest.mark.parametrize("name", ["rg1", "my-rg.prod", "rg_(test)", "gr\u00fcn", "r" * 90])
def test_valid_resource_group_names(name):
    assert validate_resource_group_name(name) == name


@pytest.mark.parametrize("name", ["", "rg.", "r" * 91, "rg/1", "rg'1", "rg 1"])
def test_invalid_resource_group_names(name):
    with pytest.raises(InvalidInputError):
        validate_resource_group_name(name)


def test_scale_set_id_parsing_is_case_insensitive_and_canonicalises():
    ref = ScaleSetRef.parse(SET_ID.replace("resourceGroups", "resourcegroups").replace("Microsoft.Compute", "microsoft.compute"))

    assert (ref.subscription_id, ref.resource_group, ref.name) == (SUB, "rg1", "web")
    assert ref.id == SET_ID


@pytest.mark.parametrize("value", [
    None, "", "web", SET_ID + "/virtualMachines/1", SET_ID + "\n", SET_ID.replace(SUB, SUB + "\n"),
    "/subscriptions/not-a-guid/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/web",
    "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/we'b" % SUB,
    "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.Network/loadBalancers/web" % SUB,
])
def test_invalid_scale_set_ids(value):
    with pytest.raises(InvalidInputError):
        ScaleSetRef.parse(value)


@pytest.mark.parametrize("value, expected", [
    (SUB, True), (SUB.upper(), True), (SUB.replace("-", ""), False), (SUB + "\n", False), ("{%s}" % SUB, False),
    ("", False), (None, False), (42, False),
])
def test_is_guid(value, expected):
    assert is_guid(value) is expected


def test_a_subscription_that_is_not_a_guid_makes_no_scale_set_ref():
    with pytest.raises(InvalidInputError, match="must be a GUID"):
        ScaleSetRef("prod", "rg1", "web")


@pytest.mark.parametrize("resource_id, group", [
    (SET_ID, "rg1"),
    (SET_ID.replace("/rg1/", "/RG-Upper/"), "RG-Upper"),
    (SET_ID.replace("resourceGroups", "resourcegroups"), "rg1"),
    ("/subscriptions/%s" % SUB, None), ("", None), (None, None),
])
def test_resource_group_from_id(resource_id, group):
    assert resource_group_from_id(resource_id) == group
