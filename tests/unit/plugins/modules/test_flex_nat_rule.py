# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""flex_nat_rule: the load balancer option (the writes each plan makes are tested in module_utils/test_network.py)."""

from __future__ import annotations

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils import _nat as nat
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.modules import flex_nat_rule as module

SUB = "11111111-2222-3333-4444-555555555555"
LB = "/subscriptions/%s/resourceGroups/net-rg/providers/Microsoft.Network/loadBalancers/lb" % SUB
FE = LB + "/frontendIPConfigurations/fe"


# -- the load balancer option -------------------------------------------------------------------------

def test_a_name_takes_the_given_group_or_none_until_the_scale_set_is_read():
    ref = module.load_balancer_ref({"load_balancer": "lb", "load_balancer_resource_group": "net-rg"}, SUB)
    assert (ref.resource_group, ref.name) == ("net-rg", "lb")
    assert module.load_balancer_ref({"load_balancer": "lb", "load_balancer_resource_group": None}, SUB).resource_group \
        is None


def test_an_id_is_parsed_and_must_be_in_the_task_subscription():
    ref = module.load_balancer_ref({"load_balancer": LB, "load_balancer_resource_group": None}, SUB)
    assert (ref.resource_group, ref.name) == ("net-rg", "lb")
    with pytest.raises(InvalidInputError, match="is in subscription 11111111"):
        module.load_balancer_ref({"load_balancer": LB, "load_balancer_resource_group": None},
                                 "99999999-2222-3333-4444-555555555555")
    with pytest.raises(InvalidInputError, match="cannot be combined"):
        module.load_balancer_ref({"load_balancer": LB, "load_balancer_resource_group": "x"}, SUB)
    with pytest.raises(InvalidInputError, match="a part of a load balancer"):
        module.load_balancer_ref({"load_balancer": FE, "load_balancer_resource_group": None}, SUB)


def test_the_argument_spec_and_the_nat_options_agree():
    spec = module.argument_spec()
    for _kind, options in nat.KIND_OPTIONS:
        assert set(options) <= set(spec)
    assert spec["protocol"]["choices"] == list(nat.PROTOCOLS)
