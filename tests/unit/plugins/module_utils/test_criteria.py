# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Selection criteria: the options validated, the filters, and the reasons a member does not pass them."""

from __future__ import annotations

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils._criteria import (
    SelectionCriteria,
    filter_members,
    filter_reason,
    selection_argument_spec,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import InvalidInputError
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import SUBSCRIPTION_ID as SUB
from ansible_collections.azure_flex.vmss.tests.unit.plugins.module_utils.selection_samples import SET_ID, criteria


MEMBERS = [
    dict(name="a", power_state="running", zones=["1"], fault_domain=0, tags={"Role": "web", "tier": "1"}),
    dict(name="b", power_state="deallocated", zones=["2"], fault_domain=1, tags={"role": "web"}),
    dict(name="c", power_state="running", zones=[], fault_domain=None, tags={}),
]


@pytest.mark.parametrize("options, expected", [
    ({}, ["a", "b", "c"]),
    ({"power_states": ["running"]}, ["a", "c"]),
    ({"power_states": ["Deallocated", "stopped"]}, ["b"]),
    ({"zones": ["2", "3"]}, ["b"]),
    ({"zones": [1]}, ["a"]),
    ({"fault_domains": [0, 1]}, ["a", "b"]),
    ({"tags": {"role": "web"}}, ["a", "b"]),
    ({"tags": {"Role": "web", "tier": 1}}, ["a"]),
    ({"tags": {"role": "WEB"}}, []),
    ({"power_states": ["running"], "zones": ["1"]}, ["a"]),
])
def test_filters(options, expected):
    assert [member["name"] for member in filter_members(MEMBERS, criteria(**options))] == expected


def test_instances_all_means_every_member():
    assert criteria(instances=["all"]).instances is None
    assert criteria(instances=["ALL"]).instances is None
    assert criteria().instances is None


def test_instances_are_validated_and_deduplicated():
    assert criteria(instances=["web_1", "WEB_1", "web_2"]).instances == ["web_1", "web_2"]
    with pytest.raises(InvalidInputError):
        criteria(instances=["all", "web_1"])
    with pytest.raises(InvalidInputError):
        criteria(instances=["web_1' or 1==1"])


def test_unknown_power_state_is_refused():
    with pytest.raises(InvalidInputError):
        criteria(power_states=["hibernated"])


@pytest.mark.parametrize("options", [
    dict(resource_group=None, scale_set=None),
    dict(scale_set=None),
    dict(scale_set_id=SET_ID),
])
def test_scale_set_must_be_named_exactly_one_way(options):
    with pytest.raises(InvalidInputError):
        criteria(**options)


def test_scale_set_id_must_be_in_the_task_subscription():
    other = SET_ID.replace(SUB, "99999999-8888-7777-6666-555555555555")

    with pytest.raises(InvalidInputError) as caught:
        SelectionCriteria(scale_set_id=other).scale_set_ref(SUB)

    assert "subscription" in caught.value.msg


def test_criteria_from_module_params():
    params = {name: None for name in selection_argument_spec()}
    params.update(scale_set_id=SET_ID, member_source="compute", instances=["web_1"])

    built = SelectionCriteria.from_params(params)

    assert (built.scale_set_ref(SUB).id, built.member_source, built.instances) == (SET_ID, "compute", ["web_1"])


def test_an_empty_instances_list_is_refused():
    with pytest.raises(InvalidInputError, match="instances is an empty list: name at least one member, or use"
                                                " instances: all"):
        criteria(instances=[])


@pytest.mark.parametrize("member, options, reason", [
    (dict(MEMBERS[0], power_state="absent"), {"power_states": ["running"]}, "no longer exists"),
    (dict(MEMBERS[0], fault_domain=2), {"fault_domains": [0, 1]}, "fault domain 2 is not in fault_domains (0, 1)"),
    (dict(MEMBERS[0], zones=[]), {"zones": ["1"]}, "zones (none) are not in zones (1)"),
    (dict(MEMBERS[0], tags={"env": "dev"}), {"tags": {"env": "prod"}}, "its tags do not match tags (env=prod)"),
])
def test_filter_reasons(member, options, reason):
    assert filter_reason(member, criteria(**options)) == reason
    assert filter_reason(member, criteria()) is None
