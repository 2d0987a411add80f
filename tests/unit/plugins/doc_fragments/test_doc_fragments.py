# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The doc fragments must describe exactly the argument specs they stand for.

ansible-test's validate-modules checks this per module; checking it here, on the shared pieces,
catches a drift before any module uses them.
"""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.azure_flex.vmss.plugins.doc_fragments import _attributes as attributes
from ansible_collections.azure_flex.vmss.plugins.doc_fragments import _azure_auth as azure_auth
from ansible_collections.azure_flex.vmss.plugins.doc_fragments import _selection as selection
from ansible_collections.azure_flex.vmss.plugins.doc_fragments import _wait as wait
from ansible_collections.azure_flex.vmss.plugins.module_utils._auth import AUTH_ARGUMENT_SPEC
from ansible_collections.azure_flex.vmss.plugins.module_utils._module import READ_ARGUMENT_SPEC, WAIT_ARGUMENT_SPEC
from ansible_collections.azure_flex.vmss.plugins.module_utils._criteria import selection_argument_spec


def documented_options(fragment_text):
    return yaml.safe_load(fragment_text)["options"]


@pytest.mark.parametrize("fragment_text, argument_spec", [
    (azure_auth.ModuleDocFragment.DOCUMENTATION, AUTH_ARGUMENT_SPEC),
    (selection.ModuleDocFragment.DOCUMENTATION, selection_argument_spec()),
    (wait.ModuleDocFragment.DOCUMENTATION, WAIT_ARGUMENT_SPEC),
    (wait.ModuleDocFragment.READ, READ_ARGUMENT_SPEC),
], ids=["azure_auth", "selection", "wait", "wait.READ"])
def test_fragment_matches_argument_spec(fragment_text, argument_spec):
    options = documented_options(fragment_text)

    assert sorted(options) == sorted(argument_spec)
    for name, spec in argument_spec.items():
        doc = options[name]
        assert doc["description"], name
        assert doc.get("type", "str") == spec.get("type", "str"), name
        assert doc.get("default") == spec.get("default"), name
        assert doc.get("choices") == spec.get("choices"), name
        assert doc.get("elements") == spec.get("elements"), name
        assert doc.get("required", False) == spec.get("required", False), name


@pytest.mark.parametrize("name", ["DOCUMENTATION", "ACTIONGROUP_ALL", "INFO_MODULE"])
def test_attribute_fragments_are_valid_yaml(name):
    fragment = yaml.safe_load(getattr(attributes.ModuleDocFragment, name))

    assert fragment["attributes"]


def test_action_group_fragment_names_the_runtime_group():
    fragment = yaml.safe_load(attributes.ModuleDocFragment.ACTIONGROUP_ALL)

    assert fragment["attributes"]["action_group"]["membership"] == ["azure_flex.vmss.all"]


def test_secret_is_not_logged():
    assert AUTH_ARGUMENT_SPEC["secret"]["no_log"] is True
