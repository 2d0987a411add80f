# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Load balancer writes: one at a time, AnotherOperationInProgress retried within the deadline; the NAT rule and NIC
writes each plan makes (or does not make in check mode)."""

from __future__ import annotations

import copy
import threading
import time

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import AzureFlexError, InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils import _nat as nat
from ansible_collections.azure_flex.vmss.plugins.module_utils._network import (
    LoadBalancerWriter,
    NatWriter,
    NetworkId,
    execute_rule_plans,
    is_conflict,
    nat_rule_id,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._resilience import Deadline
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import FakeClock

LB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb"


class DonePoller:
    def __init__(self, result="done"):
        self._result = result

    def wait(self, timeout=None):
        """Already finished."""

    def done(self):
        return True

    def result(self):
        return self._result


def busy():
    return AzureFlexError("Another operation on this or dependent resource is in progress.",
                          code="AnotherOperationInProgress", status=409, request_id="req-1")


class Script:
    """A begin() that raises the scripted errors in turn, then returns a finished poller."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return DonePoller()


def writer(seconds=100, clock=None, sleeps=None, **kwargs):
    clock = clock or FakeClock()
    sleeps = [] if sleeps is None else sleeps

    def sleep(delay):
        sleeps.append(delay)
        clock.advance(delay)

    return LoadBalancerWriter(Deadline(seconds, clock=clock), backoff=lambda attempts: 2.0 * attempts, sleep=sleep,
                              **kwargs)


def test_a_busy_load_balancer_is_retried_with_backoff_until_the_write_is_accepted():
    sleeps = []
    serial = writer(sleeps=sleeps)
    begin = Script(busy(), busy())
    assert serial.run(LB, begin, "create rule") == (True, "done")
    assert begin.calls == 3
    assert sleeps == [2.0, 4.0]
    assert serial.conflicts == 2


def test_other_errors_are_not_retried():
    serial = writer()
    refused = AzureFlexError("bad", code="InvalidParameter", status=400)
    with pytest.raises(AzureFlexError, match="bad"):
        serial.run(LB, Script(refused), "create rule")
    assert serial.conflicts == 0


def test_an_operation_that_ended_with_the_code_is_not_repeated():
    # A failed long-running operation has no HTTP status: it was accepted, so it is not sent again.
    ended = AzureFlexError("busy later", code="AnotherOperationInProgress", status=None)
    assert not is_conflict(ended)
    with pytest.raises(AzureFlexError, match="busy later"):
        writer().run(LB, Script(ended), "create rule")


def test_retries_stop_at_the_deadline_with_the_last_error_and_an_explanation():
    sleeps = []
    serial = writer(seconds=7, sleeps=sleeps)
    with pytest.raises(AzureFlexError) as gave_up:
        serial.run(LB, Script(*[busy() for _attempt in range(10)]), "create rule")
    assert sleeps == [2.0, 4.0]  # a third wait (6 s) would pass the deadline
    assert gave_up.value.code == "AnotherOperationInProgress"
    assert gave_up.value.status == 409
    assert gave_up.value.request_id == "req-1"
    assert "still busy with another operation after 3 attempt(s)" in gave_up.value.msg


def test_retries_stop_after_max_attempts():
    begin = Script(*[busy() for _attempt in range(10)])
    with pytest.raises(AzureFlexError, match="after 4 attempt"):
        writer(seconds=10000, max_attempts=4).run(LB, begin, "create rule")
    assert begin.calls == 4


def test_writes_to_one_load_balancer_never_overlap():
    serial = LoadBalancerWriter(Deadline(60))
    active = []
    overlaps = []
    lock = threading.Lock()

    def begin():
        with lock:
            active.append(1)
            if len(active) > 1:
                overlaps.append(len(active))
        time.sleep(0.01)
        with lock:
            active.pop()
        return DonePoller()

    threads = [threading.Thread(target=serial.run, args=(LB.upper() if index % 2 else LB, begin, "write"))
               for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []


def test_network_ids_are_parsed_and_checked():
    ref = NetworkId.parse(LB + "/inboundNatRules/ssh", "loadBalancers")
    assert (ref.subscription_id, ref.resource_group, ref.name, ref.rest) == ("s", "rg", "lb", "/inboundNatRules/ssh")
    with pytest.raises(InvalidInputError, match="is not a loadBalancers resource id"):
        NetworkId.parse(LB.replace("loadBalancers", "publicIPAddresses"), "loadBalancers")
    with pytest.raises(InvalidInputError):
        NetworkId.parse("lb")


SUB = "11111111-2222-3333-4444-555555555555"
NAT_LB = "/subscriptions/%s/resourceGroups/net-rg/providers/Microsoft.Network/loadBalancers/lb" % SUB
NAT_FE = NAT_LB + "/frontendIPConfigurations/fe"
NAT_NICS = "/subscriptions/%s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/" % SUB


# -- NAT rule and NIC writes (moved from the flex_nat_rule tests with the code) ------------------------

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
                return DonePoller(None)

            def begin_delete(self, group, lb, name):
                network.calls.append(("DELETE rule", name, None))
                if network.delete_errors:
                    raise network.delete_errors.pop(0)
                return DonePoller(None)

        class Nics:
            def get(self, group, name):
                network.calls.append(("GET nic", name, None))
                return copy.deepcopy(network.nics[name])

            def begin_create_or_update(self, group, name, body):
                network.calls.append(("PUT nic", name, copy.deepcopy(body)))
                network.nics[name] = copy.deepcopy(body)
                return DonePoller(None)

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
    return {"id": NAT_NICS + name, "name": name, "location": "eastus", "tags": {"keep": "me"}, "properties": {
        "enableAcceleratedNetworking": True, "ipConfigurations": [{
            "id": NAT_NICS + name + "/ipConfigurations/ipconfig1", "name": "ipconfig1", "properties": {
                "primary": True, "subnet": {"id": "/subnet"}, "privateIPAddress": "10.0.0.4",
                "loadBalancerInboundNatRules": [{"id": rule} for rule in rules]}}]}}


def member(name):
    return {"name": name, "id": "/vm/" + name, "network_interface_ids": [NAT_NICS + name + "-nic0"]}


def plans_for(members, rules=(), **options):
    params = dict(state="present", name="ssh", frontend_port_start=50000, frontend_port_end=50099, backend_port=22,
                  instances=["all"])
    params.update(options)
    request = nat.NatRequest.from_params(params)
    lb = {"id": NAT_LB, "name": "lb", "sku": {"name": "Standard"},
          "properties": {"frontendIPConfigurations": [{"id": NAT_FE, "name": "fe"}], "inboundNatRules": list(rules)}}
    return nat.plan_per_instance(request, lb, NAT_FE, members)


def writer_for(fake_module):
    return NatWriter(fake_module, NetworkId.parse(NAT_LB, "loadBalancers"))


def test_check_mode_plans_but_makes_no_call():
    network = FakeNetwork({"a-nic0": nic("a-nic0")})
    fake = FakeModule(network, check_mode=True)
    plans = plans_for([member("a")])
    execute_rule_plans(fake, writer_for(fake), plans)
    assert network.calls == []
    assert plans[0].outcome == {"actions": ["create_rule", "bind_nic"], "status": "would_change"}


def test_a_new_rule_is_created_then_bound_keeping_the_rest_of_the_nic():
    network = FakeNetwork({"a-nic0": nic("a-nic0", rules=[NAT_LB + "/inboundNatRules/other"])})
    fake = FakeModule(network)
    plans = plans_for([member("a")])
    execute_rule_plans(fake, writer_for(fake), plans)
    assert [call[:2] for call in network.calls] == [("PUT rule", "ssh-a"), ("GET nic", "a-nic0"), ("PUT nic", "a-nic0")]
    assert network.calls[0][2]["properties"]["frontendPort"] == 50000
    sent = network.calls[2][2]
    expected = nic("a-nic0", rules=[NAT_LB + "/inboundNatRules/other", NAT_LB + "/inboundNatRules/ssh-a"])
    assert sent == expected
    assert plans[0].outcome == {"actions": ["create_rule", "bind_nic"], "status": "changed"}


def test_nothing_is_written_for_a_rule_already_in_place():
    rule = {"name": "ssh-a", "id": NAT_LB + "/inboundNatRules/ssh-a", "properties": {
        "frontendIPConfiguration": {"id": NAT_FE}, "protocol": "Tcp", "frontendPort": 50000, "backendPort": 22,
        "idleTimeoutInMinutes": 4, "enableFloatingIP": False, "enableTcpReset": False,
        "backendIPConfiguration": {"id": NAT_NICS + "a-nic0/ipConfigurations/ipconfig1"}}}
    network = FakeNetwork({})
    fake = FakeModule(network)
    plans = plans_for([member("a")], rules=[rule])
    execute_rule_plans(fake, writer_for(fake), plans)
    assert network.calls == []
    assert plans[0].outcome["status"] == "skipped"


def test_a_delete_refused_because_the_rule_is_bound_unbinds_then_deletes():
    rule_id = NAT_LB + "/inboundNatRules/ssh-gone"
    rule = {"name": "ssh-gone", "id": rule_id, "properties": {
        "frontendIPConfiguration": {"id": NAT_FE}, "protocol": "Tcp", "frontendPort": 50003, "backendPort": 22,
        "backendIPConfiguration": {"id": NAT_NICS + "gone-nic0/ipConfigurations/ipconfig1"}}}
    in_use = AzureFlexError("in use", code="InboundNatRuleInUse", status=400)
    network = FakeNetwork({"gone-nic0": nic("gone-nic0", rules=[rule_id])}, delete_errors=[in_use])
    fake = FakeModule(network)
    plans = plans_for([], rules=[rule], purge=True)
    execute_rule_plans(fake, writer_for(fake), plans)
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
    execute_rule_plans(fake, writer_for(fake), plans)
    assert plans[0].outcome["status"] == "failed"
    assert plans[0].outcome["actions"] == ["create_rule"]
    assert plans[0].outcome["error"] == {"msg": "NIC a-nic0 not found", "code": "NotFound", "status": 404}
    assert plans[1].outcome["status"] == "changed"


def test_load_balancer_and_nat_rule_ids_are_built_by_one_function_each():
    ref = NetworkId(SUB, "net-rg", "loadBalancers", "lb")

    assert ref.id == NAT_LB
    assert NetworkId.parse(NAT_LB + "/inboundNatRules/ssh", "loadBalancers").id == NAT_LB
    assert nat_rule_id(ref.id, "ssh-a") == NAT_LB + "/inboundNatRules/ssh-a"
