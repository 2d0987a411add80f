"""Microsoft.Network through the SDK: virtual networks, subnets, NICs, public IPs, load balancers,
inbound NAT rules (V1 bound through a NIC, V2 over a backend pool with port mappings), the
validation errors Azure gives, NRP's long-running operations and AnotherOperationInProgress,
management locks on NAT rules, and paging.

Runs with the current SDK set and with the older one (azure-mgmt-network 28.x, api-version
2024-05-01): everything goes through the SDK clients and the /_emulator/ control API.
"""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from _support import RG, graph, graph_rows
from armemu.launcher import EmulatorError

LB = "web-lb"
FE = "fe"
POOL = "web-pool"
VNET = "demo-vnet"
SUBNET = "default"
LOCATION = "eastus"


@pytest.fixture()
def net(sdk):
    return sdk.network()


@pytest.fixture()
def ids(sdk):
    return Ids(sdk.subscription_id)


class Ids:
    def __init__(self, sub):
        self.sub = sub
        self.rg = "/subscriptions/%s/resourceGroups/%s" % (sub, RG)
        self.net = self.rg + "/providers/Microsoft.Network"

    def lb(self, name=LB):
        return "%s/loadBalancers/%s" % (self.net, name)

    def fe(self, lb=LB, name=FE):
        return "%s/frontendIPConfigurations/%s" % (self.lb(lb), name)

    def pool(self, lb=LB, name=POOL):
        return "%s/backendAddressPools/%s" % (self.lb(lb), name)

    def rule(self, name, lb=LB):
        return "%s/inboundNatRules/%s" % (self.lb(lb), name)

    def subnet(self, vnet=VNET, name=SUBNET):
        return "%s/virtualNetworks/%s/subnets/%s" % (self.net, vnet, name)

    def pip(self, name):
        return "%s/publicIPAddresses/%s" % (self.net, name)

    def nic(self, name):
        return "%s/networkInterfaces/%s" % (self.net, name)


def code(exc):
    return exc.value.error.code


def v1_rule(ids, frontend_port, backend_port=22, protocol="Tcp", **extra):
    props = {"frontendIPConfiguration": {"id": ids.fe()}, "protocol": protocol, "frontendPort": frontend_port,
             "backendPort": backend_port}
    props.update(extra)
    return {"properties": props}


def v2_rule(ids, start, end, backend_port=22, protocol="Tcp", pool=None, **extra):
    props = {"frontendIPConfiguration": {"id": ids.fe()}, "backendAddressPool": {"id": pool or ids.pool()},
             "protocol": protocol, "frontendPortRangeStart": start, "frontendPortRangeEnd": end,
             "backendPort": backend_port}
    props.update(extra)
    return {"properties": props}


def put_rule(net, name, body, lb=LB):
    return net.inbound_nat_rules.begin_create_or_update(RG, lb, name, body).result()


def pool_ipconfigs(net, lb=LB, pool=POOL):
    """The pool's member ip configuration ids, in the order they joined."""
    found = net.load_balancer_backend_address_pools.get(RG, lb, pool)
    return [ref.id for ref in (found.backend_ip_configurations or [])]


def nic_name(ipconfig_id):
    return ipconfig_id.split("/")[8]


def update_nic(net, name, mutate):
    nic = net.network_interfaces.get(RG, name)
    mutate(nic.ip_configurations[0])
    return net.network_interfaces.begin_create_or_update(RG, name, nic).result()


def bind(net, name, *rule_ids):
    from azure.mgmt.network.models import InboundNatRule

    def mutate(ipconfig):
        current = list(ipconfig.load_balancer_inbound_nat_rules or [])
        ipconfig.load_balancer_inbound_nat_rules = current + [InboundNatRule(id=r) for r in rule_ids]

    return update_nic(net, name, mutate)


def unbind_all(net, name):
    def mutate(ipconfig):
        ipconfig.load_balancer_inbound_nat_rules = []

    return update_nic(net, name, mutate)


def set_pools(net, name, pool_ids):
    from azure.mgmt.network.models import BackendAddressPool

    def mutate(ipconfig):
        ipconfig.load_balancer_backend_address_pools = [BackendAddressPool(id=p) for p in pool_ids]

    return update_nic(net, name, mutate)


def query(net, ipconfig=None, ip=None, pool=POOL, lb=LB):
    body = {"ipConfiguration": {"id": ipconfig}} if ipconfig else {"ipAddress": ip}
    mappings = net.load_balancers.begin_list_inbound_nat_rule_port_mappings(RG, lb, pool, body).result()
    return [(m.inbound_nat_rule_name, m.protocol, m.frontend_port, m.backend_port)
            for m in mappings.inbound_nat_rule_port_mappings or []]


def new_nic(net, ids, name, pools=(), rules=(), public_ip=None, **ip_extra):
    ip_props = {"subnet": {"id": ids.subnet()},
                "loadBalancerBackendAddressPools": [{"id": p} for p in pools],
                "loadBalancerInboundNatRules": [{"id": r} for r in rules]}
    if public_ip:
        ip_props["publicIPAddress"] = {"id": public_ip}
    ip_props.update(ip_extra)
    body = {"location": LOCATION, "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": ip_props}]}}
    return net.network_interfaces.begin_create_or_update(RG, name, body).result()


def statuses(emu, method, path_end, since=0):
    return [r["status"] for r in emu.requests(since) if r["method"] == method and r["path"].endswith(path_end)]


def try_setting(emu, **changes):
    try:
        emu.settings(**changes)
    except EmulatorError as exc:  # the setting is not registered in state.DEFAULT_SETTINGS
        pytest.skip("emulator setting not available: %s" % exc)


# -- inbound NAT rules V1 -------------------------------------------------------------------------


def test_v1_rule_create_bind_through_nic_and_get(emu, net, ids):
    mark = emu.request_count()
    rule = put_rule(net, "ssh-0", v1_rule(ids, 50001))
    assert rule.id == ids.rule("ssh-0")
    assert rule.type == "Microsoft.Network/loadBalancers/inboundNatRules"
    assert rule.provisioning_state == "Succeeded"
    assert (rule.frontend_port, rule.backend_port, rule.protocol) == (50001, 22, "Tcp")
    assert rule.idle_timeout_in_minutes == 4 and rule.enable_floating_ip is False
    assert rule.backend_ip_configuration is None
    assert rule.frontend_port_range_start is None and rule.backend_address_pool is None
    # NRP: PUT answers 201 for a new rule, 200 for an update; the final GET reads the rule.
    assert statuses(emu, "PUT", "/inboundNatRules/ssh-0", mark) == [201]
    first_etag = rule.etag
    rule = put_rule(net, "ssh-0", v1_rule(ids, 50001, idleTimeoutInMinutes=10))
    assert rule.idle_timeout_in_minutes == 10 and rule.etag != first_etag
    assert statuses(emu, "PUT", "/inboundNatRules/ssh-0", mark) == [201, 200]

    member = pool_ipconfigs(net)[0]
    before = net.network_interfaces.get(RG, nic_name(member))
    updated = bind(net, nic_name(member), rule.id)
    assert [r.id for r in updated.ip_configurations[0].load_balancer_inbound_nat_rules] == [rule.id]
    # The private IP and the (read-only) VM reference survive the update; the etag changes.
    assert updated.ip_configurations[0].private_ip_address == before.ip_configurations[0].private_ip_address
    assert updated.virtual_machine.id == before.virtual_machine.id
    assert updated.etag != before.etag
    assert updated.provisioning_state == "Succeeded"

    got = net.inbound_nat_rules.get(RG, LB, "ssh-0")
    assert got.backend_ip_configuration.id == member
    assert net.inbound_nat_rules.get(RG, LB, "ssh-0", expand="backendIPConfiguration").backend_ip_configuration.id \
        == member
    lb = net.load_balancers.get(RG, LB)
    assert [r.name for r in lb.inbound_nat_rules] == ["ssh-0"]
    assert lb.inbound_nat_rules[0].backend_ip_configuration.id == member
    fe = [f for f in lb.frontend_ip_configurations if f.name == FE][0]
    assert [r.id for r in fe.inbound_nat_rules] == [rule.id]
    assert [r.name for r in net.inbound_nat_rules.list(RG, LB)] == ["ssh-0"]

    # Unbinding through the NIC clears the rule's backendIPConfiguration.
    unbind_all(net, nic_name(member))
    assert net.inbound_nat_rules.get(RG, LB, "ssh-0").backend_ip_configuration is None


def test_v1_rule_delete_detaches_nic_binding_and_absent_delete_is_204(emu, net, ids):
    rule = put_rule(net, "ssh-0", v1_rule(ids, 50001))
    member = pool_ipconfigs(net)[0]
    bind(net, nic_name(member), rule.id)
    mark = emu.request_count()
    net.inbound_nat_rules.begin_delete(RG, LB, "ssh-0").result()
    assert statuses(emu, "DELETE", "/inboundNatRules/ssh-0", mark) == [202]
    with pytest.raises(ResourceNotFoundError) as exc:
        net.inbound_nat_rules.get(RG, LB, "ssh-0")
    assert code(exc) == "ResourceNotFound"
    nic = net.network_interfaces.get(RG, nic_name(member))
    assert not nic.ip_configurations[0].load_balancer_inbound_nat_rules
    assert net.load_balancers.get(RG, LB).inbound_nat_rules == []
    # Deleting what is not there: 204, and the poller completes.
    mark = emu.request_count()
    net.inbound_nat_rules.begin_delete(RG, LB, "ssh-0").result()
    assert statuses(emu, "DELETE", "/inboundNatRules/ssh-0", mark) == [204]


def test_v1_rule_delete_refused_while_bound_when_configured(emu, net, ids):
    try_setting(emu, refuse_delete_of_bound_nat_rule=True)
    rule = put_rule(net, "ssh-0", v1_rule(ids, 50001))
    member = pool_ipconfigs(net)[0]
    bind(net, nic_name(member), rule.id)
    with pytest.raises(HttpResponseError) as exc:
        net.inbound_nat_rules.begin_delete(RG, LB, "ssh-0").result()
    assert exc.value.status_code == 400 and code(exc) == "InboundNatRuleInUse"
    unbind_all(net, nic_name(member))
    net.inbound_nat_rules.begin_delete(RG, LB, "ssh-0").result()


def test_nic_binding_errors(net, ids):
    put_rule(net, "ssh-0", v1_rule(ids, 50001))
    put_rule(net, "ssh-1", v1_rule(ids, 50002))
    members = pool_ipconfigs(net)
    bind(net, nic_name(members[0]), ids.rule("ssh-0"))
    # A V1 rule serves one ip configuration.
    with pytest.raises(HttpResponseError) as exc:
        bind(net, nic_name(members[1]), ids.rule("ssh-0"))
    assert exc.value.status_code == 400 and code(exc) == "InboundNatRuleInUse"
    assert "already in use by another network interface" in exc.value.error.message
    # Two rules to the same backend port and protocol on one ip configuration.
    with pytest.raises(HttpResponseError) as exc:
        bind(net, nic_name(members[0]), ids.rule("ssh-1"))
    assert code(exc) == "RulesUseSameBackendPortProtocolAndIPConfig"
    # References to things that do not exist.
    for missing in (ids.rule("nope"), ids.pool(name="nope"), ids.pool(lb="no-lb")):
        def mutate(ipconfig, missing=missing):
            from azure.mgmt.network.models import BackendAddressPool, InboundNatRule
            if "/inboundNatRules/" in missing:
                ipconfig.load_balancer_inbound_nat_rules = [InboundNatRule(id=missing)]
            else:
                ipconfig.load_balancer_backend_address_pools = [BackendAddressPool(id=missing)]
        with pytest.raises(HttpResponseError) as exc:
            update_nic(net, nic_name(members[2]), mutate)
        assert exc.value.status_code == 400 and code(exc) == "InvalidResourceReference"
        assert missing in exc.value.error.message
    # Nothing changed on the NIC that was refused.
    nic = net.network_interfaces.get(RG, nic_name(members[2]))
    assert [p.id for p in nic.ip_configurations[0].load_balancer_backend_address_pools] == [ids.pool()]


# -- inbound NAT rules V2 and port mappings ----------------------------------------------------------


def test_v2_rule_port_mappings_stable_across_membership_changes(emu, net, ids):
    members = pool_ipconfigs(net)
    assert len(members) == 12
    rule = put_rule(net, "ssh-v2", v2_rule(ids, 50000, 50099))
    assert rule.backend_address_pool.id == ids.pool()
    assert (rule.frontend_port_range_start, rule.frontend_port_range_end) == (50000, 50099)
    assert rule.frontend_port is None and rule.backend_ip_configuration is None
    expected = {m: 50000 + i for i, m in enumerate(members)}
    for member in (members[0], members[5], members[11]):
        assert query(net, ipconfig=member) == [("ssh-v2", "Tcp", expected[member], 22)]
    # By private IP address as well.
    nic = net.network_interfaces.get(RG, nic_name(members[3]))
    assert query(net, ip=nic.ip_configurations[0].private_ip_address) == [
        ("ssh-v2", "Tcp", expected[members[3]], 22)]
    # The pool shows the same mappings.
    pool = net.load_balancer_backend_address_pools.get(RG, LB, POOL)
    shown = {a.network_interface_ip_configuration.id: [(m.inbound_nat_rule_name, m.frontend_port, m.backend_port)
                                                      for m in a.inbound_nat_rules_port_mapping]
             for a in pool.load_balancer_backend_addresses}
    assert shown == {m: [("ssh-v2", p, 22)] for m, p in expected.items()}
    assert [r.id for r in pool.inbound_nat_rules] == [rule.id]

    # A new member gets the next port; nobody else moves.
    extra = new_nic(net, ids, "extra-nic", pools=[ids.pool()])
    extra_ipconfig = extra.ip_configurations[0].id
    assert query(net, ipconfig=extra_ipconfig) == [("ssh-v2", "Tcp", 50012, 22)]
    for member in members:
        assert query(net, ipconfig=member)[0][2] == expected[member]

    # A member leaves the pool: the others keep their ports; it has no mapping any more.
    set_pools(net, nic_name(members[3]), [])
    with pytest.raises(HttpResponseError) as exc:
        query(net, ipconfig=members[3])
    assert code(exc) == "InvalidParameter"
    for member in members[:3] + members[4:]:
        assert query(net, ipconfig=member)[0][2] == expected[member]
    assert query(net, ipconfig=extra_ipconfig)[0][2] == 50012
    # The freed port is the lowest free one, so the next member gets it.
    second = new_nic(net, ids, "extra-nic-2", pools=[ids.pool()])
    assert query(net, ipconfig=second.ip_configurations[0].id)[0][2] == expected[members[3]]
    # The member that left and comes back gets the next free port.
    set_pools(net, nic_name(members[3]), [ids.pool()])
    assert query(net, ipconfig=members[3])[0][2] == 50013


def test_v2_port_mappings_with_removed_members_kept(emu, net, ids):
    try_setting(emu, nat_v2_keep_removed_mappings=True)
    members = pool_ipconfigs(net)
    put_rule(net, "ssh-v2", v2_rule(ids, 50000, 50099))
    set_pools(net, nic_name(members[0]), [])
    newcomer = new_nic(net, ids, "extra-nic", pools=[ids.pool()])
    assert query(net, ipconfig=newcomer.ip_configurations[0].id)[0][2] == 50012
    set_pools(net, nic_name(members[0]), [ids.pool()])
    assert query(net, ipconfig=members[0])[0][2] == 50000


@pytest.mark.parametrize("order", ["pool", "name"])
def test_v2_port_order_when_the_range_is_set(emu, net, ids, order):
    try_setting(emu, nat_v2_port_order=order)
    members = pool_ipconfigs(net)
    ranked = members if order == "pool" else sorted(members, key=str.lower)
    assert ranked != members or order == "pool"
    put_rule(net, "ssh-v2", v2_rule(ids, 50000, 50099))
    for index, member in enumerate(ranked):
        assert query(net, ipconfig=member)[0][2] == 50000 + index
    # A new range hands every port out again, in the same order.
    put_rule(net, "ssh-v2", v2_rule(ids, 51000, 51099))
    for index, member in enumerate(ranked):
        assert query(net, ipconfig=member)[0][2] == 51000 + index


def test_port_mapping_query_answers_202_with_location_or_200(emu, net, ids):
    put_rule(net, "ssh-v2", v2_rule(ids, 60000, 60099, backend_port=2222, protocol="Udp"))
    member = pool_ipconfigs(net)[1]
    mark = emu.request_count()
    assert query(net, ipconfig=member) == [("ssh-v2", "Udp", 60001, 2222)]
    log = [r for r in emu.requests(mark)]
    assert [r["status"] for r in log if r["method"] == "POST"] == [202]
    polls = [r for r in log if r["method"] == "GET" and "/operationResults/" in r["path"]]
    assert polls and polls[-1]["status"] == 200
    try_setting(emu, port_mapping_query_async=False)
    mark = emu.request_count()
    assert query(net, ipconfig=member) == [("ssh-v2", "Udp", 60001, 2222)]
    assert [r["status"] for r in emu.requests(mark) if r["method"] == "POST"] == [200]


def test_v2_range_too_small_for_pool_and_full_range_blocks_new_members(net, ids):
    with pytest.raises(HttpResponseError) as exc:
        put_rule(net, "ssh-v2", v2_rule(ids, 50000, 50005))
    assert exc.value.status_code == 400 and code(exc) == "InboundNatRuleV2PortRangeInsufficient"
    put_rule(net, "ssh-v2", v2_rule(ids, 50000, 50011))
    with pytest.raises(HttpResponseError) as exc:
        new_nic(net, ids, "extra-nic", pools=[ids.pool()])
    assert code(exc) == "InboundNatRuleV2PortRangeInsufficient"
    with pytest.raises(ResourceNotFoundError):
        net.network_interfaces.get(RG, "extra-nic")


# -- validation of NAT rules -----------------------------------------------------------------------


def test_flex_scale_out_beyond_a_v2_range_is_refused_before_any_member_is_created(sdk, net, ids):
    compute = sdk.compute()
    put_rule(net, "ssh-v2", v2_rule(ids, 50000, 50012))  # 13 ports for the 12 members of web's pool
    compute.virtual_machine_scale_sets.begin_update(RG, "web", {"sku": {"capacity": 13}}).result()
    with pytest.raises(HttpResponseError) as exc:
        compute.virtual_machine_scale_sets.begin_update(RG, "web", {"sku": {"capacity": 15}}).result()
    assert exc.value.status_code == 400 and code(exc) == "InboundNatRuleV2PortRangeInsufficient"
    assert compute.virtual_machine_scale_sets.get(RG, "web").sku.capacity == 13
    assert len(pool_ipconfigs(net)) == 13


@pytest.mark.parametrize("props, expected, target", [
    ({"frontendPort": 22, "frontendPortRangeStart": 50000, "frontendPortRangeEnd": 50010},
     "UnsupportedSetOfInboundNatRulePropertiesWhenFrontendPortIsSpecified", None),
    ({"backendAddressPool": "POOL"}, "MissedInboundNatRuleV2Properties", None),
    ({"backendAddressPool": "POOL", "frontendPortRangeStart": 50000}, "MissedInboundNatRuleV2Properties", None),
    ({"frontendPort": 0}, "InvalidParameter", "frontendPort"),
    ({"frontendPort": 65535}, "InvalidParameter", "frontendPort"),
    ({"frontendPort": 50001, "backendPort": 0}, "InvalidParameter", "backendPort"),
    ({"frontendPort": 50001, "backendPort": 65536}, "InvalidParameter", "backendPort"),
    ({"frontendPort": 50001, "idleTimeoutInMinutes": 3}, "InvalidParameter", "idleTimeoutInMinutes"),
    ({"frontendPort": 50001, "idleTimeoutInMinutes": 31}, "InvalidParameter", "idleTimeoutInMinutes"),
    ({"frontendPortRangeStart": 0, "frontendPortRangeEnd": 10, "backendAddressPool": "POOL"},
     "InvalidParameter", "frontendPortRangeStart"),
    ({"frontendPortRangeStart": 65000, "frontendPortRangeEnd": 65535, "backendAddressPool": "POOL"},
     "InvalidParameter", "frontendPortRangeEnd"),
    ({"frontendPort": 50001, "frontendIPConfiguration": "MISSING_FE"}, "InvalidResourceReference", None),
    ({"frontendPortRangeStart": 50000, "frontendPortRangeEnd": 50099, "backendAddressPool": "MISSING_POOL"},
     "InvalidResourceReference", None),
])
def test_nat_rule_validation_errors(net, ids, props, expected, target):
    body = {"frontendIPConfiguration": {"id": ids.fe()}, "protocol": "Tcp", "backendPort": 22}
    for key, value in props.items():
        if value == "POOL":
            value = {"id": ids.pool()}
        elif value == "MISSING_POOL":
            value = {"id": ids.pool(name="missing")}
        elif value == "MISSING_FE":
            value = {"id": ids.fe(name="missing")}
        body[key] = value
    with pytest.raises(HttpResponseError) as exc:
        put_rule(net, "bad", {"properties": body})
    assert exc.value.status_code == 400
    assert code(exc) == expected
    if expected == "UnsupportedSetOfInboundNatRulePropertiesWhenFrontendPortIsSpecified":
        assert exc.value.error.message == ("If FrontendPort 22 is set, properties FrontendPortRangeStart, "
                                           "FrontendPortRangeEnd should be null.")
    if expected == "MissedInboundNatRuleV2Properties":
        assert exc.value.error.message == ("For inbound Nat rule V2 properties FrontendPortRangeStart, "
                                           "FrontendPortRangeEnd should not be null.")
    if target:
        assert exc.value.error.target == target and target in exc.value.error.message
    with pytest.raises(ResourceNotFoundError):
        net.inbound_nat_rules.get(RG, LB, "bad")


def test_frontend_port_conflicts(net, ids):
    put_rule(net, "ssh-0", v1_rule(ids, 50001))
    put_rule(net, "ssh-v2", v2_rule(ids, 51000, 51099))
    for name, body in (("dup", v1_rule(ids, 50001, backend_port=23)),
                       ("all", v1_rule(ids, 50001, backend_port=23, protocol="All")),
                       ("inside", v1_rule(ids, 51050, backend_port=23)),
                       ("overlap", v2_rule(ids, 50950, 51000, backend_port=23))):
        with pytest.raises(HttpResponseError) as exc:
            put_rule(net, name, body)
        assert exc.value.status_code == 400 and code(exc) == "InboundNatRuleFrontendPortConflict", name
    # Another protocol on the same port is fine, and so is updating a rule in place.
    assert put_rule(net, "udp", v1_rule(ids, 50001, protocol="Udp")).protocol == "Udp"
    assert put_rule(net, "ssh-0", v1_rule(ids, 50001, backend_port=2222)).backend_port == 2222


def test_v2_rule_on_basic_load_balancer_is_refused(net, ids):
    net.public_ip_addresses.begin_create_or_update(
        RG, "basic-pip", {"location": LOCATION, "sku": {"name": "Basic"},
                          "properties": {"publicIPAllocationMethod": "Static"}}).result()
    lb_body = {"location": LOCATION, "sku": {"name": "Basic"}, "properties": {
        "frontendIPConfigurations": [{"name": "fe", "properties": {"publicIPAddress": {"id": ids.pip("basic-pip")}}}],
        "backendAddressPools": [{"name": "pool"}]}}
    lb = net.load_balancers.begin_create_or_update(RG, "basic-lb", lb_body).result()
    assert lb.sku.name == "Basic"
    body = v2_rule(ids, 50000, 50099, pool=ids.pool(lb="basic-lb", name="pool"))
    body["properties"]["frontendIPConfiguration"] = {"id": ids.fe(lb="basic-lb")}
    with pytest.raises(HttpResponseError) as exc:
        put_rule(net, "v2", body, lb="basic-lb")
    assert exc.value.status_code == 400 and code(exc) == "InboundNatRuleV2NotSupportedOnBasicSku"
    # V1 rules are fine on Basic.
    body = v1_rule(ids, 50001)
    body["properties"]["frontendIPConfiguration"] = {"id": ids.fe(lb="basic-lb")}
    assert put_rule(net, "v1", body, lb="basic-lb").frontend_port == 50001


def test_nat_rule_on_missing_load_balancer_is_404(net, ids):
    with pytest.raises(ResourceNotFoundError) as exc:
        put_rule(net, "x", v1_rule(ids, 50001), lb="no-such-lb")
    assert code(exc) == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError):
        list(net.inbound_nat_rules.list(RG, "no-such-lb"))


# -- load balancers ---------------------------------------------------------------------------------


def _full_lb_body(ids, name, pip_name):
    lb = ids.lb(name)
    return {"location": LOCATION, "sku": {"name": "Standard"}, "tags": {"role": "test"}, "properties": {
        "frontendIPConfigurations": [{"name": "fe", "properties": {"publicIPAddress": {"id": ids.pip(pip_name)}}}],
        "backendAddressPools": [{"name": "pool"}, {"name": "spare"}],
        "probes": [{"name": "http", "properties": {"protocol": "Http", "port": 80, "requestPath": "/health",
                                                   "intervalInSeconds": 5, "numberOfProbes": 2}}],
        "loadBalancingRules": [{"name": "web", "properties": {
            "frontendIPConfiguration": {"id": lb + "/frontendIPConfigurations/fe"},
            "backendAddressPool": {"id": lb + "/backendAddressPools/pool"},
            "probe": {"id": lb + "/probes/http"}, "protocol": "Tcp", "frontendPort": 80, "backendPort": 8080,
            "disableOutboundSnat": True}}],
        "inboundNatRules": [
            {"name": "ssh-a", "properties": {"frontendIPConfiguration": {"id": lb + "/frontendIPConfigurations/fe"},
                                             "protocol": "Tcp", "frontendPort": 2201, "backendPort": 22}},
            {"name": "ssh-b", "properties": {"frontendIPConfiguration": {"id": lb + "/frontendIPConfigurations/fe"},
                                             "protocol": "Tcp", "frontendPort": 2202, "backendPort": 22}},
        ],
        "inboundNatPools": [{"name": "rdp", "properties": {
            "frontendIPConfiguration": {"id": lb + "/frontendIPConfigurations/fe"}, "protocol": "Tcp",
            "frontendPortRangeStart": 3000, "frontendPortRangeEnd": 3099, "backendPort": 3389}}],
        "outboundRules": [{"name": "out", "properties": {
            "frontendIPConfigurations": [{"id": lb + "/frontendIPConfigurations/fe"}],
            "backendAddressPool": {"id": lb + "/backendAddressPools/pool"}, "protocol": "All",
            "allocatedOutboundPorts": 1024}}],
    }}


def test_load_balancer_put_round_trips_and_inline_nat_rules_are_authoritative(emu, net, ids):
    net.public_ip_addresses.begin_create_or_update(
        RG, "lb2-pip", {"location": LOCATION, "sku": {"name": "Standard"}}).result()
    mark = emu.request_count()
    lb = net.load_balancers.begin_create_or_update(RG, "lb2", _full_lb_body(ids, "lb2", "lb2-pip")).result()
    assert statuses(emu, "PUT", "/loadBalancers/lb2", mark) == [201]
    assert lb.provisioning_state == "Succeeded" and lb.sku.name == "Standard" and lb.tags == {"role": "test"}
    assert [p.name for p in lb.backend_address_pools] == ["pool", "spare"]
    assert lb.probes[0].request_path == "/health" and lb.probes[0].load_balancing_rules[0].id.endswith("/web")
    rule = lb.load_balancing_rules[0]
    assert (rule.frontend_port, rule.backend_port, rule.disable_outbound_snat) == (80, 8080, True)
    assert [r.name for r in lb.inbound_nat_rules] == ["ssh-a", "ssh-b"]
    assert lb.inbound_nat_pools[0].frontend_port_range_end == 3099
    assert lb.outbound_rules[0].allocated_outbound_ports == 1024
    fe = lb.frontend_ip_configurations[0]
    assert sorted(r.id.split("/")[-1] for r in fe.inbound_nat_rules) == ["ssh-a", "ssh-b"]
    assert [r.id.split("/")[-1] for r in fe.load_balancing_rules] == ["web"]
    assert [r.id.split("/")[-1] for r in fe.outbound_rules] == ["out"]
    assert [r.id.split("/")[-1] for r in fe.inbound_nat_pools] == ["rdp"]
    # The inline rules are the child resources.
    assert sorted(r.name for r in net.inbound_nat_rules.list(RG, "lb2")) == ["ssh-a", "ssh-b"]
    assert net.inbound_nat_rules.get(RG, "lb2", "ssh-b").frontend_port == 2202
    # The public IP now shows what uses it.
    assert net.public_ip_addresses.get(RG, "lb2-pip").ip_configuration.id == fe.id
    # A child rule added through its own API shows in the load balancer.
    put_rule(net, "ssh-c", {"properties": {"frontendIPConfiguration": {"id": fe.id}, "protocol": "Tcp",
                                           "frontendPort": 2203, "backendPort": 22}}, lb="lb2")
    got = net.load_balancers.get(RG, "lb2")
    assert [r.name for r in got.inbound_nat_rules] == ["ssh-a", "ssh-b", "ssh-c"]
    # A NAT rule port inside the NAT pool's range conflicts.
    with pytest.raises(HttpResponseError) as exc:
        put_rule(net, "in-pool", {"properties": {"frontendIPConfiguration": {"id": fe.id}, "protocol": "Tcp",
                                                 "frontendPort": 3050, "backendPort": 22}}, lb="lb2")
    assert code(exc) == "InboundNatRuleFrontendPortConflict"
    # GET -> modify -> PUT the SDK model: read-only fields are dropped or tolerated, the list is authoritative.
    got.inbound_nat_rules = [r for r in got.inbound_nat_rules if r.name != "ssh-a"]
    got.tags = {"role": "changed"}
    mark = emu.request_count()
    updated = net.load_balancers.begin_create_or_update(RG, "lb2", got).result()
    assert statuses(emu, "PUT", "/loadBalancers/lb2", mark) == [200]
    assert updated.tags == {"role": "changed"} and updated.etag != lb.etag
    assert [r.name for r in updated.inbound_nat_rules] == ["ssh-b", "ssh-c"]
    with pytest.raises(ResourceNotFoundError):
        net.inbound_nat_rules.get(RG, "lb2", "ssh-a")
    # Child views of the load balancer.
    assert net.load_balancer_probes.get(RG, "lb2", "http").port == 80
    assert [r.name for r in net.load_balancer_load_balancing_rules.list(RG, "lb2")] == ["web"]
    assert [f.name for f in net.load_balancer_frontend_ip_configurations.list(RG, "lb2")] == ["fe"]
    assert net.load_balancer_outbound_rules.get(RG, "lb2", "out").protocol == "All"
    # Deleting the load balancer frees the public IP.
    mark = emu.request_count()
    net.load_balancers.begin_delete(RG, "lb2").result()
    assert statuses(emu, "DELETE", "/loadBalancers/lb2", mark) == [202]
    with pytest.raises(ResourceNotFoundError):
        net.load_balancers.get(RG, "lb2")
    net.public_ip_addresses.begin_delete(RG, "lb2-pip").result()


def test_load_balancer_put_reference_errors(net, ids):
    body = _full_lb_body(ids, "lb3", "missing-pip")
    with pytest.raises(HttpResponseError) as exc:
        net.load_balancers.begin_create_or_update(RG, "lb3", body).result()
    assert code(exc) == "InvalidResourceReference" and ids.pip("missing-pip") in exc.value.error.message
    net.public_ip_addresses.begin_create_or_update(RG, "lb3-pip", {"location": LOCATION,
                                                                   "sku": {"name": "Standard"}}).result()
    body = _full_lb_body(ids, "lb3", "lb3-pip")
    body["properties"]["loadBalancingRules"][0]["properties"]["probe"] = {"id": ids.lb("lb3") + "/probes/nope"}
    with pytest.raises(HttpResponseError) as exc:
        net.load_balancers.begin_create_or_update(RG, "lb3", body).result()
    assert code(exc) == "InvalidResourceReference"
    body = _full_lb_body(ids, "lb3", "lb3-pip")
    body["properties"]["inboundNatRules"][1]["properties"]["frontendPort"] = 2201
    with pytest.raises(HttpResponseError) as exc:
        net.load_balancers.begin_create_or_update(RG, "lb3", body).result()
    assert code(exc) == "InboundNatRuleFrontendPortConflict"
    body = _full_lb_body(ids, "lb3", "lb3-pip")
    body["sku"] = {"name": "Basic"}
    with pytest.raises(HttpResponseError) as exc:
        net.load_balancers.begin_create_or_update(RG, "lb3", body).result()
    assert code(exc) == "DifferentSkuLoadBalancersAndPublicIPAddressNotAllowed"
    with pytest.raises(ResourceNotFoundError):
        net.load_balancers.get(RG, "lb3")


def test_load_balancer_used_by_scale_set_cannot_be_deleted(net):
    with pytest.raises(HttpResponseError) as exc:
        net.load_balancers.begin_delete(RG, LB).result()
    assert exc.value.status_code == 400 and code(exc) == "LoadBalancerInUseByVirtualMachineScaleSet"
    assert net.load_balancers.get(RG, LB).provisioning_state == "Succeeded"


# -- virtual networks, subnets, public IPs, NICs ----------------------------------------------------


def test_virtual_network_and_subnet_lifecycle(emu, net, ids):
    mark = emu.request_count()
    vnet = net.virtual_networks.begin_create_or_update(RG, "vnet2", {
        "location": LOCATION, "tags": {"a": "b"},
        "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]},
                       "subnets": [{"name": "one", "properties": {"addressPrefix": "10.1.0.0/24"}}]}}).result()
    assert statuses(emu, "PUT", "/virtualNetworks/vnet2", mark) == [201]
    assert vnet.provisioning_state == "Succeeded" and [s.name for s in vnet.subnets] == ["one"]
    assert vnet.address_space.address_prefixes == ["10.1.0.0/16"]
    subnet = net.subnets.begin_create_or_update(RG, "vnet2", "two", {"properties": {
        "addressPrefix": "10.1.1.0/24"}}).result()
    assert subnet.id == ids.subnet("vnet2", "two") and subnet.address_prefix == "10.1.1.0/24"
    assert subnet.provisioning_state == "Succeeded"
    assert sorted(s.name for s in net.subnets.list(RG, "vnet2")) == ["one", "two"]
    assert sorted(s.name for s in net.virtual_networks.get(RG, "vnet2").subnets) == ["one", "two"]
    with pytest.raises(HttpResponseError) as exc:
        net.subnets.begin_create_or_update(RG, "vnet2", "out", {"properties": {
            "addressPrefix": "10.2.0.0/24"}}).result()
    assert code(exc) == "NetcfgSubnetRangeOutsideVnet"
    with pytest.raises(HttpResponseError) as exc:
        net.subnets.begin_create_or_update(RG, "vnet2", "overlap", {"properties": {
            "addressPrefix": "10.1.1.128/25"}}).result()
    assert code(exc) == "NetcfgSubnetRangesOverlap"
    # A NIC in subnet "two" makes it undeletable, also by leaving it out of a VNet PUT.
    nic = new_nic(net, ids, "vnet2-nic", subnet={"id": ids.subnet("vnet2", "two")})
    assert nic.ip_configurations[0].private_ip_address == "10.1.1.4"
    assert [c.id for c in net.subnets.get(RG, "vnet2", "two").ip_configurations] == [nic.ip_configurations[0].id]
    with pytest.raises(HttpResponseError) as exc:
        net.subnets.begin_delete(RG, "vnet2", "two").result()
    assert exc.value.status_code == 400 and code(exc) == "InUseSubnetCannotBeDeleted"
    assert nic.ip_configurations[0].id in exc.value.error.message
    with pytest.raises(HttpResponseError) as exc:
        net.virtual_networks.begin_create_or_update(RG, "vnet2", {
            "location": LOCATION, "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}}}).result()
    assert code(exc) == "InUseSubnetCannotBeDeleted"
    with pytest.raises(HttpResponseError) as exc:
        net.virtual_networks.begin_delete(RG, "vnet2").result()
    assert code(exc) == "InUseSubnetCannotBeDeleted"
    net.network_interfaces.begin_delete(RG, "vnet2-nic").result()
    mark = emu.request_count()
    net.subnets.begin_delete(RG, "vnet2", "two").result()
    assert statuses(emu, "DELETE", "/subnets/two", mark) == [202]
    assert [s.name for s in net.virtual_networks.get(RG, "vnet2").subnets] == ["one"]
    net.virtual_networks.begin_delete(RG, "vnet2").result()
    with pytest.raises(ResourceNotFoundError):
        net.virtual_networks.get(RG, "vnet2")
    mark = emu.request_count()
    net.virtual_networks.begin_delete(RG, "vnet2").result()
    assert statuses(emu, "DELETE", "/virtualNetworks/vnet2", mark) == [204]


def test_public_ip_and_nic_lifecycle(emu, net, ids):
    mark = emu.request_count()
    pip = net.public_ip_addresses.begin_create_or_update(RG, "pip2", {
        "location": LOCATION, "sku": {"name": "Standard"}, "zones": ["1"],
        "properties": {"publicIPAllocationMethod": "Static", "idleTimeoutInMinutes": 10}}).result()
    assert statuses(emu, "PUT", "/publicIPAddresses/pip2", mark) == [201]
    assert pip.ip_address and pip.idle_timeout_in_minutes == 10 and pip.zones == ["1"]
    again = net.public_ip_addresses.begin_create_or_update(RG, "pip2", {
        "location": LOCATION, "sku": {"name": "Standard"}, "zones": ["1"], "tags": {"x": "y"},
        "properties": {"publicIPAllocationMethod": "Static"}}).result()
    assert again.ip_address == pip.ip_address and again.tags == {"x": "y"} and again.etag != pip.etag
    assert statuses(emu, "PUT", "/publicIPAddresses/pip2", mark) == [201, 200]
    with pytest.raises(HttpResponseError) as exc:
        net.public_ip_addresses.begin_create_or_update(RG, "pip2", {
            "location": LOCATION, "sku": {"name": "Standard"},
            "properties": {"idleTimeoutInMinutes": 31}}).result()
    assert code(exc) == "InvalidParameter" and exc.value.error.target == "idleTimeoutInMinutes"

    nic = new_nic(net, ids, "nic2", public_ip=pip.id)
    address = nic.ip_configurations[0].private_ip_address
    assert nic.ip_configurations[0].public_ip_address.id == pip.id and nic.provisioning_state == "Succeeded"
    assert net.public_ip_addresses.get(RG, "pip2").ip_configuration.id == nic.ip_configurations[0].id
    # The same public IP cannot serve two ip configurations.
    with pytest.raises(HttpResponseError) as exc:
        new_nic(net, ids, "nic3", public_ip=pip.id)
    assert code(exc) == "PublicIPAddressInUse"
    with pytest.raises(HttpResponseError) as exc:
        net.public_ip_addresses.begin_delete(RG, "pip2").result()
    assert exc.value.status_code == 400 and code(exc) == "PublicIPAddressCannotBeDeleted"
    # PUT again: the dynamic private IP stays; a static one is honoured.
    assert new_nic(net, ids, "nic2", public_ip=pip.id).ip_configurations[0].private_ip_address == address
    static = new_nic(net, ids, "nic2", public_ip=pip.id, privateIPAllocationMethod="Static",
                     privateIPAddress="10.0.15.200")
    assert static.ip_configurations[0].private_ip_address == "10.0.15.200"
    assert static.ip_configurations[0].private_ip_allocation_method == "Static"
    with pytest.raises(HttpResponseError) as exc:
        new_nic(net, ids, "nic4", privateIPAllocationMethod="Static", privateIPAddress="10.0.15.200")
    assert code(exc) == "PrivateIPAddressInUse"
    with pytest.raises(HttpResponseError) as exc:
        new_nic(net, ids, "nic4", subnet={"id": ids.subnet(name="missing")})
    assert code(exc) == "InvalidResourceReference"
    assert "nic2" in [n.name for n in net.network_interfaces.list(RG)]
    mark = emu.request_count()
    net.network_interfaces.begin_delete(RG, "nic2").result()
    assert statuses(emu, "DELETE", "/networkInterfaces/nic2", mark) == [202]
    net.public_ip_addresses.begin_delete(RG, "pip2").result()
    with pytest.raises(ResourceNotFoundError):
        net.public_ip_addresses.get(RG, "pip2")
    mark = emu.request_count()
    net.network_interfaces.begin_delete(RG, "nic2").result()
    net.public_ip_addresses.begin_delete(RG, "pip2").result()
    assert [r["status"] for r in emu.requests(mark) if r["method"] == "DELETE"] == [204, 204]


def test_nic_attached_to_vm_cannot_be_deleted(net):
    with pytest.raises(HttpResponseError) as exc:
        net.network_interfaces.begin_delete(RG, "jumpbox-nic").result()
    assert exc.value.status_code == 400 and code(exc) == "NicInUse"
    assert "virtualMachines/jumpbox" in exc.value.error.message
    assert net.network_interfaces.get(RG, "jumpbox-nic").provisioning_state == "Succeeded"


# -- long-running operations and concurrency ---------------------------------------------------------


def test_another_operation_in_progress(emu, net, ids):
    emu.settings(time_scale=1.0, durations={"network": 2})
    first = net.inbound_nat_rules.begin_create_or_update(RG, LB, "ssh-0", v1_rule(ids, 50001))
    try:
        # The rule and the load balancer show the write in progress.
        assert net.inbound_nat_rules.get(RG, LB, "ssh-0").provisioning_state == "Updating"
        assert net.load_balancers.get(RG, LB).provisioning_state == "Updating"
        refused = []
        with pytest.raises(ResourceExistsError) as exc:
            net.inbound_nat_rules.begin_create_or_update(RG, LB, "ssh-1", v1_rule(ids, 50002))
        refused.append(exc.value)
        lb = net.load_balancers.get(RG, LB)
        with pytest.raises(ResourceExistsError) as exc:
            net.load_balancers.begin_create_or_update(RG, LB, lb)
        refused.append(exc.value)
        with pytest.raises(ResourceExistsError) as exc:
            net.inbound_nat_rules.begin_delete(RG, LB, "ssh-0")
        refused.append(exc.value)
        # A NIC update that binds a rule of the load balancer is a write to it as well.
        member = pool_ipconfigs(net)[0]
        with pytest.raises(ResourceExistsError) as exc:
            bind(net, nic_name(member), ids.rule("ssh-0"))
        refused.append(exc.value)
        for error in refused:
            assert error.status_code == 409 and error.error.code == "AnotherOperationInProgress"
            assert error.error.message.startswith(
                "Another operation on this or dependent resource is in progress. To retrieve status of the "
                "operation use uri: https://")
            assert "/providers/Microsoft.Network/locations/eastus/operations/" in error.error.message
            assert "Retry-After" not in error.response.headers
        # A NIC update that does not touch the load balancer is not blocked.
        tagged = net.network_interfaces.get(RG, "jumpbox-nic")
        tagged.tags = {"k": "v"}
        other = net.network_interfaces.begin_create_or_update(RG, "jumpbox-nic", tagged)
        assert other.result().tags == {"k": "v"}
    finally:
        rule = first.result()
    assert rule.provisioning_state == "Succeeded"
    assert net.load_balancers.get(RG, LB).provisioning_state == "Succeeded"
    assert put_rule(net, "ssh-1", v1_rule(ids, 50002)).provisioning_state == "Succeeded"


def test_nic_write_in_progress_blocks_load_balancer_writes(emu, net, ids):
    put_rule(net, "ssh-0", v1_rule(ids, 50001))
    emu.settings(time_scale=1.0, durations={"network": 2})
    member = pool_ipconfigs(net)[0]
    nic = net.network_interfaces.get(RG, nic_name(member))
    from azure.mgmt.network.models import InboundNatRule
    nic.ip_configurations[0].load_balancer_inbound_nat_rules = [InboundNatRule(id=ids.rule("ssh-0"))]
    poller = net.network_interfaces.begin_create_or_update(RG, nic.name, nic)
    try:
        assert net.network_interfaces.get(RG, nic.name).provisioning_state == "Updating"
        with pytest.raises(ResourceExistsError) as exc:
            net.inbound_nat_rules.begin_create_or_update(RG, LB, "ssh-1", v1_rule(ids, 50002))
        assert exc.value.error.code == "AnotherOperationInProgress"
        with pytest.raises(ResourceExistsError) as exc:
            net.network_interfaces.begin_create_or_update(RG, nic.name, nic)
        assert exc.value.error.code == "AnotherOperationInProgress"
    finally:
        assert poller.result().provisioning_state == "Succeeded"
    assert net.inbound_nat_rules.get(RG, LB, "ssh-0").backend_ip_configuration.id == member


def test_failed_network_operation_leaves_failed_state(emu, net, ids):
    emu.add_fault(method="PUT", path="/inboundNatRules/ssh-0$", lro="Failed", code="InternalServerError",
                  message="boom")
    with pytest.raises(HttpResponseError) as exc:
        put_rule(net, "ssh-0", v1_rule(ids, 50001))
    assert code(exc) == "InternalServerError"
    assert net.inbound_nat_rules.get(RG, LB, "ssh-0").provisioning_state == "Failed"
    # A new PUT repairs it.
    assert put_rule(net, "ssh-0", v1_rule(ids, 50001)).provisioning_state == "Succeeded"


# -- locks and paging --------------------------------------------------------------------------------


def test_readonly_lock_on_load_balancer_blocks_nat_rule_writes(sdk, net, ids):
    locks = sdk.locks()
    put_rule(net, "ssh-0", v1_rule(ids, 50001))
    locks.management_locks.create_or_update_by_scope(ids.lb(), "ro", {"properties": {"level": "ReadOnly"}})
    try:
        with pytest.raises(ResourceExistsError) as exc:
            put_rule(net, "ssh-1", v1_rule(ids, 50002))
        assert exc.value.status_code == 409 and exc.value.error.code == "ScopeLocked"
        assert "write" in exc.value.error.message
        with pytest.raises(ResourceExistsError) as exc:
            net.inbound_nat_rules.begin_delete(RG, LB, "ssh-0").result()
        assert exc.value.error.code == "ScopeLocked"
        # Reads still work, including the port-mapping query (a read-like POST).
        assert [r.name for r in net.inbound_nat_rules.list(RG, LB)] == ["ssh-0"]
    finally:
        locks.management_locks.delete_by_scope(ids.lb(), "ro")
    locks.management_locks.create_or_update_by_scope(ids.lb(), "nodelete", {"properties": {"level": "CanNotDelete"}})
    try:
        assert put_rule(net, "ssh-1", v1_rule(ids, 50002)).provisioning_state == "Succeeded"
        with pytest.raises(ResourceExistsError) as exc:
            net.inbound_nat_rules.begin_delete(RG, LB, "ssh-1").result()
        assert exc.value.error.code == "ScopeLocked" and "delete" in exc.value.error.message
    finally:
        locks.management_locks.delete_by_scope(ids.lb(), "nodelete")
    net.inbound_nat_rules.begin_delete(RG, LB, "ssh-1").result()


def test_readonly_lock_does_not_block_port_mapping_query(sdk, net, ids):
    put_rule(net, "ssh-v2", v2_rule(ids, 50000, 50099))
    locks = sdk.locks()
    locks.management_locks.create_or_update_by_scope(ids.lb(), "ro", {"properties": {"level": "ReadOnly"}})
    try:
        member = pool_ipconfigs(net)[0]
        assert query(net, ipconfig=member) == [("ssh-v2", "Tcp", 50000, 22)]
    finally:
        locks.management_locks.delete_by_scope(ids.lb(), "ro")


def test_nat_rule_list_pages(emu, net, ids):
    for index in range(5):
        put_rule(net, "r%d" % index, v1_rule(ids, 50001 + index))
    emu.settings(page_size=2)
    mark = emu.request_count()
    assert [r.name for r in net.inbound_nat_rules.list(RG, LB)] == ["r0", "r1", "r2", "r3", "r4"]
    lists = [r for r in emu.requests(mark) if r["method"] == "GET" and r["path"].endswith("/inboundNatRules")]
    assert len(lists) == 3
    assert [r.get("query", {}).get("$skiptoken") for r in lists] == [None, "2", "4"]


# -- scenarios and Resource Graph --------------------------------------------------------------------


def test_scenario_nat_rules(emu, net, ids):
    from conftest import FAST

    scenario = {"resource_groups": [{
        "name": RG, "location": LOCATION,
        "virtual_networks": [{"name": VNET, "address_prefix": "10.0.0.0/16",
                              "subnets": [{"name": SUBNET, "address_prefix": "10.0.0.0/20"}]}],
        "load_balancers": [{
            "name": LB, "sku": "Standard", "frontends": [{"name": FE, "public_ip": "web-lb-pip"}],
            "backend_pools": [POOL],
            "nat_rules": [
                {"name": "ssh-jump", "frontend": FE, "protocol": "Tcp", "frontend_port": 50001, "backend_port": 22,
                 "nic": "jumpbox-nic"},
                {"name": "ssh-web", "frontend": FE, "backend_pool": POOL, "frontend_port_range_start": 52000,
                 "frontend_port_range_end": 52009, "backend_port": 22},
            ]}],
        "scale_sets": [{"name": "web", "instances": 3, "subnet": "%s/%s" % (VNET, SUBNET),
                        "backend_pools": ["%s/%s" % (LB, POOL)]}],
        "vms": [{"name": "jumpbox", "subnet": "%s/%s" % (VNET, SUBNET)}],
    }]}
    emu.reset(scenario)
    emu.settings(**FAST)
    jump = net.inbound_nat_rules.get(RG, LB, "ssh-jump")
    assert jump.backend_ip_configuration.id == ids.nic("jumpbox-nic") + "/ipConfigurations/ipconfig1"
    members = pool_ipconfigs(net)
    assert len(members) == 3
    assert [query(net, ipconfig=m)[0][2] for m in members] == [52000, 52001, 52002]
    bad = dict(scenario)
    bad["resource_groups"] = [dict(scenario["resource_groups"][0])]
    bad["resource_groups"][0]["load_balancers"] = [dict(scenario["resource_groups"][0]["load_balancers"][0],
                                                        nat_rules=[{"name": "x", "frontend_port": 1,
                                                                    "frontend_port_range_start": 5,
                                                                    "frontend_port_range_end": 6,
                                                                    "backend_port": 22}])]
    with pytest.raises(EmulatorError) as exc:
        emu.reset(bad)
    assert "UnsupportedSetOf" in str(exc.value) or "FrontendPort 1 is set" in str(exc.value)


def test_resource_graph_sees_nat_rules_and_pool_members(sdk, net, ids):
    put_rule(net, "ssh-0", v1_rule(ids, 50001))
    member = pool_ipconfigs(net)[0]
    bind(net, nic_name(member), ids.rule("ssh-0"))
    rows = graph_rows(graph(sdk, "Resources | where type =~ 'microsoft.network/loadbalancers' "
                                 "| project name, properties"))
    row = [r for r in rows if r["name"] == LB][0]
    rules = row["properties"]["inboundNatRules"]
    assert [r["name"] for r in rules] == ["ssh-0"]
    assert rules[0]["properties"]["backendIPConfiguration"]["id"] == member
    pool = row["properties"]["backendAddressPools"][0]
    assert len(pool["properties"]["backendIPConfigurations"]) == 12
    rows = graph_rows(graph(sdk, "Resources | where type =~ 'microsoft.network/networkinterfaces' "
                                 "and name == '%s' | project properties" % nic_name(member)))
    assert rows[0]["properties"]["ipConfigurations"][0]["properties"]["loadBalancerInboundNatRules"][0]["id"] \
        == ids.rule("ssh-0")


def test_network_lro_headers(emu, sdk, ids):
    """What the SDK saw on the wire: PUT with Azure-AsyncOperation only, DELETE with Location too."""
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    seen = []

    class Recorder(SansIOHTTPPolicy):
        def on_response(self, request, response):
            seen.append((request.http_request.method, request.http_request.url.split("?")[0],
                         response.http_response.status_code, dict(response.http_response.headers)))

    client = sdk.network(per_call_policies=[Recorder()])
    client.inbound_nat_rules.begin_create_or_update(RG, LB, "ssh-0", v1_rule(ids, 50001)).result()
    client.inbound_nat_rules.begin_delete(RG, LB, "ssh-0").result()
    put = [s for s in seen if s[0] == "PUT"][0]
    assert put[2] == 201
    headers = {k.lower(): v for k, v in put[3].items()}
    assert "/providers/Microsoft.Network/locations/eastus/operations/" in headers["azure-asyncoperation"]
    assert "location" not in headers
    delete = [s for s in seen if s[0] == "DELETE"][0]
    headers = {k.lower(): v for k, v in delete[3].items()}
    assert delete[2] == 202
    assert "/operations/" in headers["azure-asyncoperation"] and "/operationResults/" in headers["location"]
    polls = [s for s in seen if s[0] == "GET" and "/operations/" in s[1]]
    assert polls and all(p[2] == 200 for p in polls)


def test_api_version_and_lists(emu, net, ids):
    from importlib.metadata import version

    major = int(version("azure-mgmt-network").split(".")[0])
    expected = {33: "2026-03-01", 28: "2024-05-01"}.get(major)
    mark = emu.request_count()
    put_rule(net, "ssh-0", v1_rule(ids, 50001))
    sent = {r["query"]["api-version"] for r in emu.requests(mark)
            if r["path"].endswith("/inboundNatRules/ssh-0") and "query" in r}
    if expected:
        assert sent == {expected}
    assert LB in [lb.name for lb in net.load_balancers.list_all()]
    assert [lb.name for lb in net.load_balancers.list(RG)] == [LB]
    assert VNET in [v.name for v in net.virtual_networks.list_all()]
    assert sorted(p.name for p in net.public_ip_addresses.list(RG)) == ["jumpbox-pip", "web-lb-pip"]
    assert len([n for n in net.network_interfaces.list_all() if n.name.startswith("web_")]) == 12
    # The load balancer's NICs are its pool members.
    assert len(list(net.load_balancer_network_interfaces.list(RG, LB))) == 12
