# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""NAT rule planning: option validation, stable port assignment, collisions, exhaustion, NIC edits; the V1 -> V2
migration's options, plan (staging and final ranges, predicted ports, refusals) and the order of writes that keeps
every member reachable, where a failure stops it and how a rerun resumes."""

from __future__ import annotations

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils import _nat as nat
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import AzureFlexError, InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils._network import MigrationRunner

LB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb"
FE = LB + "/frontendIPConfigurations/fe"
FE2 = LB + "/frontendIPConfigurations/fe2"
POOL = LB + "/backendAddressPools/pool"
NICS = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/"

DEFAULTS = {"state": "present", "name": "ssh", "frontend_port": None, "frontend_port_start": None,
            "frontend_port_end": None, "purge": False, "frontend_port_range_start": None,
            "frontend_port_range_end": None, "backend_pool": None, "add_to_pool": False, "backend_port": 22,
            "protocol": "Tcp", "idle_timeout": 4, "enable_floating_ip": False, "enable_tcp_reset": False,
            "instances": ["all"]}


def request(**overrides):
    params = dict(DEFAULTS)
    params.update(overrides)
    return nat.NatRequest.from_params(params)


def per_instance(**overrides):
    values = {"frontend_port_start": 50000, "frontend_port_end": 50099}
    values.update(overrides)
    return request(**values)


def member(name):
    return {"name": name, "id": "/vm/" + name, "network_interface_ids": [NICS + name + "-nic0"]}


def ipconfig(name):
    return NICS + name + "-nic0/ipConfigurations/ipconfig1"


def v1_rule(name, port, bound_to=None, backend_port=22, protocol="Tcp", frontend=FE):
    props = {"frontendIPConfiguration": {"id": frontend}, "protocol": protocol, "frontendPort": port,
             "backendPort": backend_port, "idleTimeoutInMinutes": 4, "enableFloatingIP": False,
             "enableTcpReset": False}
    if bound_to:
        props["backendIPConfiguration"] = {"id": ipconfig(bound_to)}
    return {"name": name, "id": LB + "/inboundNatRules/" + name, "properties": props}


def v2_rule(name, start, end, protocol="Tcp"):
    return {"name": name, "id": LB + "/inboundNatRules/" + name, "properties": {
        "frontendIPConfiguration": {"id": FE}, "protocol": protocol, "frontendPortRangeStart": start,
        "frontendPortRangeEnd": end, "backendPort": 22, "backendAddressPool": {"id": POOL}}}


def load_balancer(rules=(), sku="Standard", pool_members=(), lb_rules=(), frontends=("fe",)):
    return {"id": LB, "name": "lb", "sku": {"name": sku}, "properties": {
        "frontendIPConfigurations": [{"id": LB + "/frontendIPConfigurations/" + fe, "name": fe} for fe in frontends],
        "backendAddressPools": [{"id": POOL, "name": "pool", "properties": {
            "backendIPConfigurations": [{"id": ipconfig(name)} for name in pool_members]}}],
        "inboundNatRules": list(rules),
        "loadBalancingRules": list(lb_rules)}}


def summary(plans):
    return [(plan.rule_name, plan.action, plan.frontend_port, plan.bind) for plan in plans]


# -- validation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("options, named", [
    ({"frontend_port": 1, "frontend_port_range_start": 2, "frontend_port_range_end": 3},
     "frontend_port (a V1 rule for one instance); frontend_port_range_start, frontend_port_range_end (a V2 rule"),
    ({"frontend_port": 1, "frontend_port_start": 2}, "frontend_port (a V1 rule for one instance); frontend_port_start"),
    ({"frontend_port_start": 1, "backend_pool": "pool"}, "frontend_port_start (one V1 rule per instance); backend_pool"),
    ({"purge": True, "add_to_pool": True}, "purge (one V1 rule per instance); add_to_pool (a V2 rule"),
])
def test_options_of_different_kinds_are_refused_together(options, named):
    with pytest.raises(InvalidInputError, match="cannot be mixed") as refused:
        request(**options)
    assert named in str(refused.value)


def test_false_booleans_do_not_count_as_given():
    assert request(frontend_port=100, purge=False, add_to_pool=False).kind == nat.SINGLE


@pytest.mark.parametrize("option, value, message", [
    ("frontend_port", 0, "frontend_port must be between 1 and 65534, got 0"),
    ("frontend_port", 65535, "frontend_port must be between 1 and 65534, got 65535"),
    ("backend_port", 65536, "backend_port must be between 1 and 65535, got 65536"),
    ("idle_timeout", 3, "idle_timeout must be between 4 and 30, got 3"),
])
def test_values_out_of_range_are_refused(option, value, message):
    values = {"frontend_port": 100}
    values[option] = value
    with pytest.raises(InvalidInputError) as refused:
        request(**values)
    assert str(refused.value) == message


def test_range_ends_must_not_come_before_starts():
    with pytest.raises(InvalidInputError, match=r"frontend_port_end \(10\) must not be smaller"):
        per_instance(frontend_port_start=20, frontend_port_end=10)
    with pytest.raises(InvalidInputError, match=r"frontend_port_range_end \(10\) must not be smaller"):
        request(frontend_port_range_start=20, frontend_port_range_end=10)
    with pytest.raises(InvalidInputError, match="needs both frontend_port_range_start and frontend_port_range_end"):
        request(frontend_port_range_start=20)


def test_present_needs_ports_and_members():
    with pytest.raises(InvalidInputError, match="state=present needs frontend_port"):
        request()
    with pytest.raises(InvalidInputError, match="state=present needs backend_port"):
        request(frontend_port=100, backend_port=None)
    with pytest.raises(InvalidInputError, match="name it in instances"):
        request(frontend_port=100, instances=None)
    with pytest.raises(InvalidInputError, match="needs instances"):
        per_instance(instances=None)
    with pytest.raises(InvalidInputError, match="add_to_pool needs instances"):
        request(frontend_port_range_start=1, frontend_port_range_end=9, add_to_pool=True, instances=None)


def test_absent_needs_only_a_name():
    absent = request(state="absent", backend_port=None, instances=None)
    assert (absent.kind, absent.present) == (nat.SINGLE, False)


@pytest.mark.parametrize("name", ["-ssh", "ssh-", "a b", "x" * 81, "", None])
def test_rule_names_follow_azure_rules(name):
    with pytest.raises(InvalidInputError, match="not a valid inbound NAT rule name"):
        request(frontend_port=100, name=name)


def test_per_instance_rule_names_and_their_members():
    ssh = per_instance()
    assert ssh.rule_name_for("web_1a2b3c4d") == "ssh-web_1a2b3c4d"
    assert ssh.member_of_rule("SSH-web_1a2b3c4d") == "web_1a2b3c4d"
    assert ssh.member_of_rule("sshd-web_1") is None
    assert ssh.member_of_rule("ssh-") is None
    with pytest.raises(InvalidInputError, match="longer than 80 characters"):
        per_instance(name="p" * 40).rule_name_for("v" * 41)


# -- port assignment --------------------------------------------------------------------------------

def test_new_members_get_the_lowest_free_ports_in_the_given_order():
    assert nat.assign_ports(["a", "b", "c"], {}, 100, 199, [], "Tcp") == {"a": 100, "b": 101, "c": 102}


def test_members_keep_their_ports_and_gaps_are_reused():
    kept = {"a": 100, "c": 102, "d": 150}
    assert nat.assign_ports(["a", "b", "c", "d", "e"], kept, 100, 199, [], "Tcp") == {
        "a": 100, "b": 101, "c": 102, "d": 150, "e": 103}


def test_a_kept_port_outside_the_range_is_reassigned():
    assert nat.assign_ports(["a"], {"a": 90}, 100, 199, [], "Tcp") == {"a": 100}


def test_ports_used_by_foreign_rules_are_skipped_unless_the_protocol_differs():
    uses = [nat.PortUse(100, 100, "Tcp", "rule x"), nat.PortUse(102, 104, "All", "rule y"),
            nat.PortUse(101, 101, "Udp", "rule z")]
    assert nat.assign_ports(["a", "b", "c"], {}, 100, 199, uses, "Tcp") == {"a": 101, "b": 105, "c": 106}
    assert nat.assign_ports(["a"], {}, 100, 199, uses, "Udp") == {"a": 100}


def test_an_exhausted_range_names_the_members_left_out():
    with pytest.raises(nat.PortRangeExhaustedError) as refused:
        nat.assign_ports(["a", "b", "c"], {"c": 101}, 100, 101, [nat.PortUse(100, 100, "Tcp", "x")], "Tcp")
    assert "100-101 has no free port left for 2 member(s): a, b" in str(refused.value)


# -- plans ------------------------------------------------------------------------------------------

def test_first_run_creates_and_binds_a_rule_per_member_in_name_order():
    plans = nat.plan_per_instance(per_instance(), load_balancer(), FE, [member("b"), member("a")])
    assert summary(plans) == [("ssh-a", "create", 50000, True), ("ssh-b", "create", 50001, True)]
    assert plans[0].desired == {"frontendIPConfiguration": {"id": FE}, "protocol": "Tcp", "backendPort": 22,
                                "idleTimeoutInMinutes": 4, "enableFloatingIP": False, "enableTcpReset": False,
                                "frontendPort": 50000}


def test_a_rerun_changes_nothing():
    lb = load_balancer([v1_rule("ssh-a", 50000, "a"), v1_rule("ssh-b", 50001, "b")])
    plans = nat.plan_per_instance(per_instance(), lb, FE, [member("a"), member("b")])
    assert summary(plans) == [("ssh-a", "keep", 50000, False), ("ssh-b", "keep", 50001, False)]
    assert not any(plan.changes for plan in plans)


def test_a_new_member_gets_a_free_port_and_nobody_moves():
    lb = load_balancer([v1_rule("ssh-b", 50000, "b"), v1_rule("ssh-c", 50002, "c")])
    plans = nat.plan_per_instance(per_instance(), lb, FE, [member("a"), member("b"), member("c")])
    assert summary(plans) == [("ssh-a", "create", 50001, True), ("ssh-b", "keep", 50000, False),
                              ("ssh-c", "keep", 50002, False)]


def test_without_purge_a_gone_members_rule_stays_and_holds_its_port():
    lb = load_balancer([v1_rule("ssh-gone", 50000), v1_rule("ssh-b", 50001, "b")])
    plans = nat.plan_per_instance(per_instance(), lb, FE, [member("a"), member("b")])
    assert summary(plans) == [("ssh-a", "create", 50002, True), ("ssh-b", "keep", 50001, False)]


def test_purge_deletes_gone_members_rules_first_and_reuses_their_ports():
    lb = load_balancer([v1_rule("ssh-gone", 50000), v1_rule("ssh-b", 50001, "b")])
    plans = nat.plan_per_instance(per_instance(purge=True), lb, FE, [member("a"), member("b")])
    assert summary(plans) == [("ssh-gone", "delete", None, False), ("ssh-a", "create", 50000, True),
                              ("ssh-b", "keep", 50001, False)]


def test_purge_leaves_foreign_rules_that_share_the_prefix_alone():
    lb = load_balancer([v1_rule("ssh-admin", 22), v1_rule("ssh-other-frontend", 50005, frontend=FE2),
                        v2_rule("ssh-v2", 50010, 50020)])
    plans = nat.plan_per_instance(per_instance(purge=True), lb, FE, [member("a")])
    assert summary(plans) == [("ssh-a", "create", 50000, True)]


def test_foreign_rules_on_the_frontend_are_skipped():
    lb = load_balancer([v1_rule("admin", 50000), v2_rule("v2", 50002, 50003)],
                       lb_rules=[{"name": "http", "properties": {"frontendIPConfiguration": {"id": FE},
                                                                 "protocol": "Tcp", "frontendPort": 50004}}])
    plans = nat.plan_per_instance(per_instance(), lb, FE, [member(n) for n in "abc"])
    assert [plan.frontend_port for plan in plans] == [50001, 50005, 50006]


def test_changed_options_update_rules_but_keep_ports():
    lb = load_balancer([v1_rule("ssh-a", 50007, "a", backend_port=2222)])
    plans = nat.plan_per_instance(per_instance(), lb, FE, [member("a")])
    assert summary(plans) == [("ssh-a", "update", 50007, False)]


def test_a_rule_bound_to_another_nic_is_moved():
    lb = load_balancer([v1_rule("ssh-a", 50000, "zzz")])
    plan = nat.plan_per_instance(per_instance(), lb, FE, [member("a")])[0]
    assert (plan.action, plan.bind, plan.unbind_from) == ("keep", True, ipconfig("zzz"))


def test_a_v2_rule_with_a_members_rule_name_is_refused_for_that_member():
    lb = load_balancer([v2_rule("ssh-a", 51000, 51010)])
    plan = nat.plan_per_instance(per_instance(), lb, FE, [member("a")])[0]
    assert "exists as a V2 rule" in str(plan.error)


def test_absent_deletes_the_selected_members_rules_and_with_purge_the_gone_ones():
    lb = load_balancer([v1_rule("ssh-a", 50000, "a"), v1_rule("ssh-b", 50001, "b"), v1_rule("ssh-gone", 50002)])
    absent = per_instance(state="absent", backend_port=None)
    assert summary(nat.plan_per_instance(absent, lb, FE, [member("a")])) == [("ssh-a", "delete", None, False)]
    purge = per_instance(state="absent", backend_port=None, purge=True)
    # purge removes the rules of every member outside the selection, whether its VM still exists or not.
    assert [p.rule_name for p in nat.plan_per_instance(purge, lb, FE, [member("a")])] == ["ssh-a", "ssh-b", "ssh-gone"]


def test_single_rule_binds_to_the_one_member_and_refuses_used_ports():
    single = request(frontend_port=2222, name="admin")
    assert summary(nat.plan_single(single, load_balancer(), FE, [member("a")])) == [("admin", "create", 2222, True)]
    with pytest.raises(InvalidInputError, match="exactly one instance, but the selection holds 2: a, b"):
        nat.plan_single(single, load_balancer(), FE, [member("a"), member("b")])
    used = load_balancer([v2_rule("v2", 2200, 2300, protocol="All")])
    with pytest.raises(InvalidInputError) as refused:
        nat.plan_single(single, used, FE, [member("a")])
    assert str(refused.value) == ("Frontend port 2222 (Tcp) is already used on this frontend by inbound NAT rule v2 "
                                  "(port 2200-2300, All)")
    # Its own current port never counts as a conflict.
    own = load_balancer([v1_rule("admin", 2222, "a", backend_port=22)])
    assert summary(nat.plan_single(single, own, FE, [member("a")])) == [("admin", "keep", 2222, False)]


def test_single_rule_absent_deletes_only_when_present():
    absent = request(state="absent", name="admin", backend_port=None)
    assert summary(nat.plan_single(absent, load_balancer([v1_rule("admin", 1)]), FE, [])) == [
        ("admin", "delete", None, False)]
    assert nat.plan_single(absent, load_balancer(), FE, []) == []


def test_v2_plan_joins_missing_members_and_checks_the_range_against_the_pool():
    v2 = request(name="v2", frontend_port_range_start=60000, frontend_port_range_end=60002, add_to_pool=True)
    plan, joining = nat.plan_v2(v2, load_balancer(pool_members=["a"]), FE, load_balancer(pool_members=["a"])[
        "properties"]["backendAddressPools"][0], [member("a"), member("b")])
    assert plan.action == "create" and plan.desired["backendAddressPool"] == {"id": POOL}
    assert [m["name"] for m in joining] == ["b"]
    lb = load_balancer(pool_members=["a", "b", "c"])
    with pytest.raises(InvalidInputError, match=r"provides 3 port\(s\), but backend pool pool would have 4 member\(s\) "
                                                r"\(3 now, 1 joining\)"):
        nat.plan_v2(v2, lb, FE, lb["properties"]["backendAddressPools"][0], [member("d")])


@pytest.mark.parametrize("lb, message", [
    (load_balancer(sku="Basic"), "has the Basic SKU; V2 inbound NAT rules"),
    (load_balancer([v1_rule("x", 60001, protocol="All")]), "overlap ports already used on this frontend by inbound NAT rule x"),
    (load_balancer([v1_rule("v2", 61000)]), "exists as a V1 rule (frontend port 61000)"),
])
def test_v2_refusals(lb, message):
    v2 = request(name="v2", frontend_port_range_start=60000, frontend_port_range_end=60009)
    with pytest.raises(InvalidInputError) as refused:
        nat.plan_v2(v2, lb, FE, lb["properties"]["backendAddressPools"][0], [])
    assert message in str(refused.value)


def test_v2_rerun_keeps_the_rule():
    v2 = request(name="v2", frontend_port_range_start=60000, frontend_port_range_end=60009)
    rule = v2_rule("v2", 60000, 60009)
    rule["properties"].update(idleTimeoutInMinutes=4, enableFloatingIP=False, enableTcpReset=False)
    lb = load_balancer([rule])
    plan, joining = nat.plan_v2(v2, lb, FE, lb["properties"]["backendAddressPools"][0], [member("a")])
    assert (plan.action, joining) == ("keep", [])


# -- load balancer parts and NIC edits -----------------------------------------------------------------

def test_frontend_defaults_to_the_only_one_and_ambiguity_is_refused():
    assert nat.pick_item(load_balancer(), "frontendIPConfigurations", None, "frontend_ip_configuration",
                         "frontend IP configuration")["name"] == "fe"
    two = load_balancer(frontends=("fe", "fe2"))
    assert nat.pick_item(two, "frontendIPConfigurations", "FE2", "x", "frontend")["name"] == "fe2"
    with pytest.raises(InvalidInputError, match=r"has 2 frontends \(fe, fe2\): name the one to use in x"):
        nat.pick_item(two, "frontendIPConfigurations", None, "x", "frontend")
    with pytest.raises(InvalidInputError, match="has no frontend named other .it has: fe, fe2"):
        nat.pick_item(two, "frontendIPConfigurations", "other", "x", "frontend")


def nic():
    return {"name": "a-nic0", "properties": {"enableAcceleratedNetworking": True, "ipConfigurations": [
        {"id": ipconfig("a").replace("ipconfig1", "secondary"), "name": "secondary", "properties": {"primary": False}},
        {"id": ipconfig("a"), "name": "ipconfig1", "properties": {
            "primary": True, "privateIPAddress": "10.0.0.4",
            "loadBalancerInboundNatRules": [{"id": LB + "/inboundNatRules/other"}]}}]}}


def test_binding_edits_the_primary_ip_configuration_and_keeps_everything_else():
    edited = nic()
    assert nat.bind_rule(edited, LB + "/inboundNatRules/ssh-a") == (True, ipconfig("a"))
    primary = edited["properties"]["ipConfigurations"][1]["properties"]
    assert primary["loadBalancerInboundNatRules"] == [{"id": LB + "/inboundNatRules/other"},
                                                      {"id": LB + "/inboundNatRules/ssh-a"}]
    assert primary["privateIPAddress"] == "10.0.0.4"
    assert edited["properties"]["enableAcceleratedNetworking"] is True
    assert nat.bind_rule(edited, (LB + "/inboundNatRules/SSH-A").upper()) == (False, ipconfig("a"))


def test_unbinding_and_joining_a_pool():
    edited = nic()
    assert nat.unbind_rule(edited, LB + "/inboundNatRules/other") == (True, ipconfig("a"))
    assert edited["properties"]["ipConfigurations"][1]["properties"]["loadBalancerInboundNatRules"] == []
    assert nat.unbind_rule(edited, LB + "/inboundNatRules/other")[0] is False
    assert nat.join_pool(edited, POOL) == (True, ipconfig("a"))
    assert edited["properties"]["ipConfigurations"][1]["properties"]["loadBalancerBackendAddressPools"] == [{"id": POOL}]


def test_describe_and_endpoint():
    assert nat.describe(nat.rule_view(v1_rule("r", 50000, "a")), instance="a") == {
        "protocol": "Tcp", "backend_port": 22, "idle_timeout": 4, "enable_floating_ip": False,
        "enable_tcp_reset": False, "frontend_port": 50000, "instance": "a"}
    assert nat.describe(v2_rule("v", 1, 9)["properties"])["backend_pool"] == "pool"
    assert nat.endpoint("20.0.0.1", 50000) == "20.0.0.1:50000"
    assert nat.endpoint("2001:db8::1", 22) == "[2001:db8::1]:22"
    assert nat.endpoint(None, 22) is None and nat.endpoint("1.2.3.4", None) is None


# -- V1 -> V2 migration -----------------------------------------------------------------------------

NAMES = ["web_a", "web_b", "web_c"]


def migrate(**overrides):
    params = dict(DEFAULTS, backend_port=None, migrate_to_v2=True, frontend_port_start=50000, frontend_port_end=50099)
    params.update(overrides)
    return nat.NatRequest.from_params(params)


def members(names=None):
    return [member(name) for name in names or NAMES]


def v1_world(pool_order=("web_c", "web_a", "web_b"), extra_rules=()):
    rules = [v1_rule("ssh-%s" % name, 50000 + index, bound_to=name) for index, name in enumerate(NAMES)]
    return load_balancer(rules=rules + list(extra_rules), pool_members=pool_order)


def pool_of(lb):
    return lb["properties"]["backendAddressPools"][0]


def plan_for(lb, request=None, selected=None):
    return nat.plan_migration(request or migrate(), lb, FE, pool_of(lb), members(selected or NAMES))


# -- options --------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, message", [
    ({"frontend_port_start": None}, "needs frontend_port_start"),
    ({"frontend_port_end": None}, "needs frontend_port_end"),
    ({"instances": None}, "needs instances"),
    ({"state": "absent"}, "needs state=present"),
    ({"frontend_port": 22}, "cannot be combined with it"),
    ({"frontend_port_end": 49999}, "must not be smaller"),
    ({"frontend_port_range_start": 60000, "frontend_port_range_end": 59999}, "is empty"),
    ({"migration_port_range_start": 0}, "migration_port_range_start must be between"),
])
def test_migration_options(overrides, message):
    with pytest.raises(InvalidInputError) as info:
        migrate(**overrides)
    assert message in info.value.msg


def test_staging_start_only_with_migration():
    with pytest.raises(InvalidInputError) as info:
        nat.NatRequest.from_params(dict(DEFAULTS, frontend_port=1, migration_port_range_start=60000))
    assert "only with migrate_to_v2" in info.value.msg


def test_the_final_range_is_the_v1_range_unless_given():
    assert migrate().final_range == (50000, 50099)
    assert migrate(frontend_port_range_start=40000, frontend_port_range_end=40010).final_range == (40000, 40010)
    assert migrate(frontend_port_end=None, frontend_port_range_end=50020).final_range == (50000, 50020)


# -- the plan ---------------------------------------------------------------------------------------

def test_plan_predicts_ports_from_the_pool_order():
    plan = plan_for(v1_world())
    assert plan.final == (50000, 50099) and plan.staging == (50100, 50199)
    assert [view["name"] for _member, view in plan.v1] == ["ssh-web_a", "ssh-web_b", "ssh-web_c"]
    # Pool order c, a, b: c gets the first port, a the second, b the third.
    assert [plan.predicted_port(m, plan.final) for m in members()] == [50001, 50002, 50000]
    assert [plan.predicted_port(m, plan.staging) for m in members()] == [50101, 50102, 50100]
    assert plan.props == {"frontendIPConfiguration": {"id": FE}, "protocol": "Tcp", "backendPort": 22,
                          "idleTimeoutInMinutes": 4, "enableFloatingIP": False, "enableTcpReset": False,
                          "backendAddressPool": {"id": POOL}}
    assert plan.needed
    v2, staging, v1, stale = plan.rule_plans()
    assert (v2.rule_name, v2.action, staging.rule_name, staging.action) == ("ssh", "create", "ssh-v2-staging", "delete")
    assert staging.desired["frontendPortRangeStart"] == 50100 and v2.desired["frontendPortRangeEnd"] == 50099
    assert [p.rule_name for p in v1] == ["ssh-web_a", "ssh-web_b", "ssh-web_c"] and stale == []


def test_ports_in_the_pool_order_are_kept():
    plan = plan_for(v1_world(pool_order=NAMES))
    assert [plan.predicted_port(m, plan.final) for m in members()] == [50000, 50001, 50002]


def test_staging_range_skips_ports_in_use_and_can_be_chosen():
    busy = v1_rule("other", 50150)
    assert plan_for(v1_world(extra_rules=[busy])).staging == (50151, 50250)
    assert plan_for(v1_world(), migrate(migration_port_range_start=40000)).staging == (40000, 40099)
    for start, message in ((50050, "overlaps the V2 rule's final range"), (50101, "overlaps ports used"),
                           (65500, "leaves no room")):
        with pytest.raises(InvalidInputError) as info:
            plan_for(v1_world(extra_rules=[v1_rule("other", 50150)]), migrate(migration_port_range_start=start))
        assert message in info.value.msg


def test_refusals_that_would_strand_a_member():
    with pytest.raises(InvalidInputError) as info:
        plan_for(v1_world(pool_order=("web_a", "web_b")))
    assert "web_c" in info.value.msg and "add_to_pool=true" in info.value.msg
    plan = plan_for(v1_world(pool_order=("web_a", "web_b")), migrate(add_to_pool=True))
    assert [m["name"] for m in plan.joining] == ["web_c"]
    assert plan.predicted_port(member("web_c"), plan.final) == 50002


@pytest.mark.parametrize("lb, request_, message", [
    (load_balancer(rules=[v1_rule("ssh-web_a", 50000, "web_a"), v1_rule("ssh-web_b", 50001, "web_b", backend_port=2222)],
                   pool_members=NAMES), None, "differ in backend_port (22, 2222)"),
    (v1_world(), migrate(backend_port=2222), "differs from the V1 rules' backend port"),
    (v1_world(extra_rules=[v1_rule("ssh", 40000)]), None, "exists as a V1 rule"),
    (v1_world(extra_rules=[v2_rule("ssh", 40000, 40099)]), None, "exists with the range 40000-40099"),
    (v1_world(extra_rules=[v1_rule("keep", 50050)]), None, "overlaps ports used on this frontend by inbound NAT rule keep"),
    (v1_world(), migrate(frontend_port_end=50001), "provides 2 port(s)"),
    (load_balancer(pool_members=NAMES), None, "Nothing to migrate"),
    (dict(v1_world(), sku={"name": "Basic"}), None, "Basic SKU"),
])
def test_plan_refusals(lb, request_, message):
    with pytest.raises(InvalidInputError) as info:
        plan_for(lb, request_)
    assert message in info.value.msg


def test_resume_and_done():
    staging = v2_rule("ssh-v2-staging", 50100, 50199)
    left = load_balancer(rules=[staging, v1_rule("ssh-web_c", 50002, "web_c")], pool_members=NAMES)
    plan = plan_for(left)
    assert plan.staging == (50100, 50199) and [view["name"] for _m, view in plan.v1] == ["ssh-web_c"]
    failed_final = dict(v2_rule("ssh", 50000, 50099))
    failed_final["properties"] = dict(failed_final["properties"], provisioningState="Failed")
    plan = plan_for(load_balancer(rules=[staging, failed_final], pool_members=NAMES))
    assert not plan.final_ready and plan.rule_plans()[0].action == "update"
    done = plan_for(load_balancer(rules=[v2_rule("ssh", 50000, 50099)], pool_members=NAMES))
    assert not done.needed and done.staging is None and done.rule_plans()[1] is None


# -- the order of writes ----------------------------------------------------------------------------

class FakeWriter:
    """Records the writes; ``fail`` names the write that fails (e.g. ``delete ssh-web_b``)."""

    def __init__(self, rules, fail=None):
        self.rules = rules  # rule name -> frontend port or range
        self.fail = fail
        self.log = []

    def _maybe_fail(self, what):
        self.log.append(what)
        if what == self.fail:
            raise AzureFlexError("injected", code="InternalServerError")

    def put_rule(self, plan):
        self._maybe_fail("put %s" % plan.rule_name)
        self.rules[plan.rule_name] = (plan.desired["frontendPortRangeStart"], plan.desired["frontendPortRangeEnd"])

    def delete_rule(self, plan):
        self._maybe_fail("delete %s" % plan.rule_name)
        self.rules.pop(plan.rule_name)

    def edit_nic(self, nic_id, edit, description):
        self._maybe_fail("join %s" % nic_id.split("/")[-1])
        return nic_id + "/ipConfigurations/ipconfig1"


def fake_query(writer, order):
    def query(rule_name, pairs):
        span = writer.rules.get(rule_name)
        ports = {}
        for member_, ipconfig_id in pairs:
            if isinstance(span, tuple) and ipconfig_id.lower() in order:
                ports[member_["name"].lower()] = span[0] + order.index(ipconfig_id.lower())
        return ports, {}
    return query


def run(plan, fail=None):
    writer = FakeWriter({"ssh-%s" % name: 50000 + index for index, name in enumerate(NAMES)}, fail)
    order = [ipconfig(name).lower() for name in ("web_c", "web_a", "web_b")]
    runner = MigrationRunner(plan, plan.rule_plans(), writer, fake_query(writer, order)).run()
    return runner, writer


def reachable(runner, writer, name):
    """Every member has a V1 rule left or a port on a V2 rule that exists."""
    return ("ssh-%s" % name) in writer.rules or runner.staging_ports.get(name) is not None and runner.staging_exists \
        or runner.ports.get(name) is not None and runner.final_ready


def test_the_writes_keep_every_member_reachable():
    runner, writer = run(plan_for(v1_world()))
    assert writer.log == ["put ssh-v2-staging", "delete ssh-web_a", "delete ssh-web_b", "delete ssh-web_c", "put ssh",
                          "delete ssh-v2-staging"]
    assert runner.error is None and runner.final_ready and not runner.staging_exists
    assert runner.ports == {"web_c": 50000, "web_a": 50001, "web_b": 50002}
    assert runner.staging_ports == {"web_c": 50100, "web_a": 50101, "web_b": 50102}


@pytest.mark.parametrize("fail, done", [
    ("put ssh-v2-staging", ["put ssh-v2-staging"]),
    ("delete ssh-web_b", ["put ssh-v2-staging", "delete ssh-web_a", "delete ssh-web_b"]),
    ("put ssh", ["put ssh-v2-staging", "delete ssh-web_a", "delete ssh-web_b", "delete ssh-web_c", "put ssh"]),
    ("delete ssh-v2-staging", ["put ssh-v2-staging", "delete ssh-web_a", "delete ssh-web_b", "delete ssh-web_c",
                               "put ssh", "delete ssh-v2-staging"]),
])
def test_a_failure_stops_there_with_every_member_reachable(fail, done):
    runner, writer = run(plan_for(v1_world()), fail=fail)
    assert writer.log == done
    assert runner.error is not None and runner.error.code == "InternalServerError"
    assert all(reachable(runner, writer, name) for name in NAMES)


def test_a_v1_rule_goes_only_once_its_member_has_a_staging_port():
    plan = plan_for(v1_world())
    writer = FakeWriter({"ssh-%s" % name: 50000 + index for index, name in enumerate(NAMES)})
    order = [ipconfig(name).lower() for name in ("web_c", "web_a")]  # Azure gives web_b no port
    runner = MigrationRunner(plan, plan.rule_plans(), writer, fake_query(writer, order)).run()
    assert writer.log == ["put ssh-v2-staging"]
    assert runner.failed_member["name"] == "web_b" and "no port" in runner.error.msg
