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
from ansible_collections.azure_flex.vmss.tests.unit.utils.scripted_arm import Member, ScriptedArm
from ansible_collections.azure_flex.vmss.tests.unit.utils.scripted_arm import load_balancer as scripted_load_balancer

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


# -- the task end to end over a scripted ARM ----------------------------------------------------------

PER_MEMBER_ARGS = {"load_balancer": "web-lb", "name": "ssh", "instances": ["all"], "frontend_port_start": 50000,
                   "frontend_port_end": 50010, "backend_port": 22}


def nat_arm():
    return ScriptedArm([Member("a"), Member("b")], load_balancer=scripted_load_balancer())


def test_whole_run_check_mode_writes_nothing_and_predicts_each_members_endpoint(run_module):
    run = run_module(module, nat_arm(), dict(PER_MEMBER_ARGS, _ansible_check_mode=True))

    assert run.exit_code == 0 and run.result["changed"] is True
    assert run.writes == []
    assert [(rule["name"], rule["frontend_port"], rule["status"]) for rule in run.result["rules"]] == [
        ("ssh-a", 50000, "would_change"), ("ssh-b", 50001, "would_change")]


def test_whole_run_creates_a_rule_per_member_binds_its_nic_and_a_rerun_changes_nothing(run_module):
    arm = nat_arm()

    run = run_module(module, arm, PER_MEMBER_ARGS)

    assert run.exit_code == 0 and run.result["changed"] is True
    assert run.result["endpoints"] == {"a": "10.0.0.4:50000", "b": "10.0.0.4:50001"}
    # One write at a time on the load balancer: rule, then the member's NIC, member by member.
    assert [(request.method, request.url.split("?")[0].rsplit("/", 1)[1]) for request in run.writes] == [
        ("PUT", "ssh-a"), ("PUT", "a-nic"), ("PUT", "ssh-b"), ("PUT", "b-nic")]
    rule = run.writes[0].json()["properties"]
    assert (rule["frontendPort"], rule["backendPort"], rule["protocol"]) == (50000, 22, "Tcp")
    nic = run.writes[1].json()["properties"]["ipConfigurations"][0]["properties"]
    assert [bound["id"].rsplit("/", 1)[1] for bound in nic["loadBalancerInboundNatRules"]] == ["ssh-a"]
    assert [(entry["name"], entry["status"]) for entry in run.result["instances"]] == [
        ("a", "changed"), ("b", "changed")]

    again = run_module(module, arm, PER_MEMBER_ARGS)

    assert again.result["changed"] is False and again.writes == []
    assert again.result["endpoints"] == run.result["endpoints"]


def test_whole_run_a_bad_port_range_fails_before_any_request(run_module):
    run = run_module(module, nat_arm(), dict(PER_MEMBER_ARGS, frontend_port_start=50010, frontend_port_end=50000))

    assert run.exit_code == 1 and "frontend_port" in run.result["msg"]
    assert run.requests == []
