# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""read_extension: a missing extension reads as None, a missing VM fails, as decided by the request, not the message."""

from __future__ import annotations

import types

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import AzureFlexError
from ansible_collections.azure_flex.vmss.plugins.module_utils._extensions import read_extension


def compute_with(listings):
    """A compute client whose extension list serves ``listings`` by VM name; a VM not in it is gone (404
    ResourceNotFound, with a message that names neither the VM nor the extension)."""
    calls = []

    def list_(resource_group, vm_name, expand=None):
        calls.append((vm_name, expand))
        if vm_name not in listings:
            raise AzureFlexError("The resource was not found.", code="ResourceNotFound", status=404)
        return {"value": listings[vm_name]}

    return types.SimpleNamespace(virtual_machine_extensions=types.SimpleNamespace(list=list_)), calls


def test_the_extension_is_found_by_name_case_insensitively_without_instance_view():
    compute, calls = compute_with({"vm1": [{"name": "Other"}, {"name": "CustomScript", "properties": {}}]})

    assert read_extension(compute, "rg", "vm1", "customscript") == {"name": "CustomScript", "properties": {}}
    assert calls == [("vm1", None)]


def test_a_vm_without_the_extension_reads_as_none():
    compute, _calls = compute_with({"vm1": [{"name": "Other"}]})

    assert read_extension(compute, "rg", "vm1", "CustomScript") is None


def test_a_vm_that_is_gone_fails_even_when_the_message_does_not_name_it():
    compute, _calls = compute_with({})

    with pytest.raises(AzureFlexError) as raised:
        read_extension(compute, "rg", "vm1", "CustomScript")
    assert (raised.value.code, raised.value.status) == ("ResourceNotFound", 404)
