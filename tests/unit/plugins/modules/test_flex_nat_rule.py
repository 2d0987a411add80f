# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""flex_nat_rule: the load balancer option, and the writes each plan makes (or does not make in check mode)."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils import _nat as nat
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import AzureFlexError, InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils._network import NetworkId
from ansible_collections.azure_flex.vmss.plugins.module_utils._resilience import Deadline
from ansible_collections.azure_flex.vmss.plugins.modules import flex_nat_rule as module
from ansible_collections.azure_flex.vmss.tests.unit.utils.scripted_arm import Member, ScriptedArm
from ansible_collections.azure_flex.vmss.tests.unit.utils.scripted_arm import load_balancer as scripted_load_balancer

SUB = "11111111-2222-3333-4444-555555555555"
LB = "/subscriptions/%s/resourceGroups/net-rg/providers/Microsoft.Network/loadBalancers/lb" % SUB
FE = LB + "/frontendIPConfigurations/fe"
NICS = "/subscriptions/%s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/" % SUB


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


# -- writes -----------------------------------------------------------------------------------------------

class DonePoller:
    def wait(self, timeout=None):
        """Already finished."""

    def done(self):
        return True

    def result(self):
        return None


class FakeNetwork:
    """Records every call; NICs are served from ``nics``; ``delete_errors`` are raised by rule deletes in turn."""

    def __init__(self, nics, delete_errors=()):
        self.calls = []
        self.nics = nics
        self.delete_errors = list(delete_errors)
        network = self

        class Rules:
            def begin_create_or_update(self, group, lb, name, body):
                network.calls.append(("PUT rule", name, copy.deepcopy(body)))
                return DonePoller()

            def begin_delete(self, group, lb, name):
                network.calls.append(("DELETE rule", name, None))
                if network.delete_errors:
                    raise network.delete_errors.pop(0)
                return DonePoller()

        class Nics:
            def get(self, group, name):
                network.calls.append(("GET nic", name, None))
                return copy.deepcopy(network.nics[name])

            def begin_create_or_update(self, group, name, body):
                network.calls.append(("PUT nic", name, copy.deepcopy(body)))
                network.nics[name] = copy.deepcopy(body)
                return DonePoller()

        self.inbound_nat_rules = Rules()
        self.network_interfaces = Nics()


class FakeClients:
    def __init__(self, network):
        self._network = network

    def network(self):
        return self._network


class FakeModule:
    def __init__(self, network, check_mode=False):
        self.clients = FakeClients(network)
        self.check_mode = check_mode
        self.wait = True
        self.deadline = Deadline(60)


def nic(name, rules=()):
    return {"id": NICS + name, "name": name, "location": "eastus", "tags": {"keep": "me"}, "properties": {
        "enableAcceleratedNetworking": True, "ipConfigurations": [{
            "id": NICS + name + "/ipConfigurations/ipconfig1", "name": "ipconfig1", "properties": {
                "primary": True, "subnet": {"id": "/subnet"}, "privateIPAddress": "10.0.0.4",
                "loadBalancerInboundNatRules": [{"id": rule} for rule in rules]}}]}}


def member(name):
    return {"name": name, "id": "/vm/" + name, "network_interface_ids": [NICS + name + "-nic0"]}


def plans_for(members, rules=(), **options):
    params = dict(state="present", name="ssh", frontend_port_start=50000, frontend_port_end=50099, backend_port=22,
                  instances=["all"])
    params.update(options)
    request = nat.NatRequest.from_params(params)
    lb = {"id": LB, "name": "lb", "sku": {"name": "Standard"},
          "properties": {"frontendIPConfigurations": [{"id": FE, "name": "fe"}], "inboundNatRules": list(rules)}}
    return nat.plan_per_instance(request, lb, FE, members)


def writer_for(fake_module):
    return module.Writer(fake_module, NetworkId.parse(LB, "loadBalancers"))


def test_check_mode_plans_but_makes_no_call():
    network = FakeNetwork({"a-nic0": nic("a-nic0")})
    fake = FakeModule(network, check_mode=True)
    plans = plans_for([member("a")])
    module.execute(fake, writer_for(fake), plans)
    assert network.calls == []
    assert plans[0].outcome == {"actions": ["create_rule", "bind_nic"], "status": "would_change"}


def test_a_new_rule_is_created_then_bound_keeping_the_rest_of_the_nic():
    network = FakeNetwork({"a-nic0": nic("a-nic0", rules=[LB + "/inboundNatRules/other"])})
    fake = FakeModule(network)
    plans = plans_for([member("a")])
    module.execute(fake, writer_for(fake), plans)
    assert [call[:2] for call in network.calls] == [("PUT rule", "ssh-a"), ("GET nic", "a-nic0"), ("PUT nic", "a-nic0")]
    assert network.calls[0][2]["properties"]["frontendPort"] == 50000
    sent = network.calls[2][2]
    expected = nic("a-nic0", rules=[LB + "/inboundNatRules/other", LB + "/inboundNatRules/ssh-a"])
    assert sent == expected
    assert plans[0].outcome == {"actions": ["create_rule", "bind_nic"], "status": "changed"}


def test_nothing_is_written_for_a_rule_already_in_place():
    rule = {"name": "ssh-a", "id": LB + "/inboundNatRules/ssh-a", "properties": {
        "frontendIPConfiguration": {"id": FE}, "protocol": "Tcp", "frontendPort": 50000, "backendPort": 22,
        "idleTimeoutInMinutes": 4, "enableFloatingIP": False, "enableTcpReset": False,
        "backendIPConfiguration": {"id": NICS + "a-nic0/ipConfigurations/ipconfig1"}}}
    network = FakeNetwork({})
    fake = FakeModule(network)
    plans = plans_for([member("a")], rules=[rule])
    module.execute(fake, writer_for(fake), plans)
    assert network.calls == []
    assert plans[0].outcome["status"] == "unchanged"


def test_a_delete_refused_because_the_rule_is_bound_unbinds_then_deletes():
    rule_id = LB + "/inboundNatRules/ssh-gone"
    rule = {"name": "ssh-gone", "id": rule_id, "properties": {
        "frontendIPConfiguration": {"id": FE}, "protocol": "Tcp", "frontendPort": 50003, "backendPort": 22,
        "backendIPConfiguration": {"id": NICS + "gone-nic0/ipConfigurations/ipconfig1"}}}
    in_use = AzureFlexError("in use", code="InboundNatRuleInUse", status=400)
    network = FakeNetwork({"gone-nic0": nic("gone-nic0", rules=[rule_id])}, delete_errors=[in_use])
    fake = FakeModule(network)
    plans = plans_for([], rules=[rule], purge=True)
    module.execute(fake, writer_for(fake), plans)
    assert [call[:2] for call in network.calls] == [("DELETE rule", "ssh-gone"), ("GET nic", "gone-nic0"),
                                                    ("PUT nic", "gone-nic0"), ("DELETE rule", "ssh-gone")]
    assert network.nics["gone-nic0"]["properties"]["ipConfigurations"][0]["properties"][
        "loadBalancerInboundNatRules"] == []
    assert plans[0].outcome == {"actions": ["delete_rule"], "status": "changed"}


def test_one_failing_member_does_not_stop_the_others():
    network = FakeNetwork({"b-nic0": nic("b-nic0")})  # a-nic0 is missing: its GET raises
    fake = FakeModule(network)

    def get(group, name):
        if name == "a-nic0":
            raise AzureFlexError("NIC a-nic0 not found", code="NotFound", status=404)
        return copy.deepcopy(network.nics[name])

    network.network_interfaces.get = get
    plans = plans_for([member("a"), member("b")])
    module.execute(fake, writer_for(fake), plans)
    assert plans[0].outcome["status"] == "failed"
    assert plans[0].outcome["actions"] == ["create_rule"]
    assert plans[0].outcome["error"] == {"msg": "NIC a-nic0 not found", "code": "NotFound", "status": 404}
    assert plans[1].outcome["status"] == "changed"


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
