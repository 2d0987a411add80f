"""Microsoft.Network REST API: virtual networks, subnets, NICs, public IPs, load balancers and NAT rules.

Writes behave as the Network resource provider's: PUT answers 201 (new) or
200 (update) with the body in provisioningState ``Updating`` and an
``Azure-AsyncOperation`` header; DELETE answers 202 with ``Location`` and
``Azure-AsyncOperation`` (204 when there is nothing to delete). While a write
is in progress, another write to the same resource, or to a load balancer it
depends on, is refused with 409 ``AnotherOperationInProgress``.

Relations are derived when rendering, never stored twice (see ``netmodel``):
a backend pool's members are the NIC ip configurations that name the pool; a
load balancer's ``inboundNatRules`` are its NAT-rule child resources.

Behaviour switches read from the settings (with these defaults):
``refuse_delete_of_bound_nat_rule`` (False): deleting a V1 NAT rule still
bound to a NIC removes the binding, or (True) is refused with 400
InboundNatRuleInUse; ``nat_v2_keep_removed_mappings`` (False): a member
leaving a V2 rule's pool keeps its port reserved; ``port_mapping_query_async``
(True): queryInboundNatRulePortMapping answers 202 + Location (else 200).
"""

from __future__ import annotations

import copy
import ipaddress
import uuid

from . import lro, netmodel
from .errors import ArmError, not_found
from .http import Reply, ok, page, route
from .state import Resource
from .netmodel import (LB_TYPE, NAT_RULE_TYPE, NIC_TYPE, PIP_TYPE, SUBNET_TYPE, VNET_TYPE, ref_id,  # noqa: F401
                       render_lb, render_nat_rule, same)

RGN = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network"

NIC_READ_ONLY = {"provisioningState", "resourceGuid", "virtualMachine", "macAddress", "primary", "hostedWorkloads",
                 "tapConfigurations", "privateEndpoint", "dscpConfiguration", "vnetEncryptionSupported",
                 "privateLinkService", "defaultOutboundConnectivityEnabled", "ipConfigurations"}
IPCONFIG_READ_ONLY = {"provisioningState", "privateLinkConnectionProperties"}
SUBNET_READ_ONLY = {"provisioningState", "ipConfigurations", "ipConfigurationProfiles", "purpose", "privateEndpoints",
                    "resourceNavigationLinks", "serviceAssociationLinks", "ipAllocations", "addressPrefix",
                    "addressPrefixes"}
VNET_READ_ONLY = {"provisioningState", "resourceGuid", "subnets", "addressSpace"}
PIP_READ_ONLY = {"provisioningState", "resourceGuid", "ipAddress", "ipConfiguration", "natGateway", "ipTags"}
LB_READ_ONLY = {"provisioningState", "resourceGuid", "inboundNatRules"} | set(netmodel.LB_COLLECTIONS)


def _settings(ctx, name, default):
    return ctx.state.settings.get(name, default)


def _render(state, res):
    if res.type == LB_TYPE:
        return render_lb(state, res)
    if res.type == VNET_TYPE:
        return netmodel.render_vnet(state, res)
    if res.type == SUBNET_TYPE:
        return netmodel.render_subnet(state, res)
    if res.type == PIP_TYPE:
        return netmodel.render_public_ip(state, res)
    if res.type == NAT_RULE_TYPE:
        return render_nat_rule(state, res)
    return copy.deepcopy(res.body)


def _rid(ctx, suffix):
    return "%s/providers/Microsoft.Network/%s" % (ctx.state.group_id(ctx.param("sub"), ctx.param("rg")), suffix)


def _require(ctx, suffix, resource_type):
    path = _rid(ctx, suffix)
    ctx.state.require_group(ctx.param("sub"), ctx.param("rg"))
    res = ctx.state.get(path)
    if res is None or res.type != resource_type:
        raise not_found(path, ctx.param("rg"))
    return res


def _existing(ctx, resource_id, resource_type):
    res = ctx.state.get(resource_id)
    return res if res is not None and res.type == resource_type else None


def _location(ctx, body, existing):
    location = body.get("location") or (existing.body.get("location") if existing is not None else None)
    if not location:
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
    if existing is not None and existing.body.get("location") and \
            str(location).replace(" ", "").lower() != existing.body["location"].replace(" ", "").lower():
        raise ArmError(400, "InvalidResourceLocation",
                       "The resource '%s' already exists in location '%s' in resource group '%s'. A resource with "
                       "the same name cannot be created in location '%s'. Please select a new resource name."
                       % (existing.name, existing.body["location"], existing.resource_group, location))
    return existing.body["location"] if existing is not None else location


def _name_of(raw, what):
    name = raw.get("name") or (raw.get("id") or "").rstrip("/").split("/")[-1]
    if not name:
        raise ArmError(400, "InvalidRequestFormat", "Cannot parse the request: a %s has no name." % what)
    return name


# ---------------------------------------------------------------------------
# Operations in progress
# ---------------------------------------------------------------------------

def _busy(state, res):
    if res is None:
        return None
    op = state.operations.get(res.emu.get("op") or "")
    return op if op is not None and not op.done else None


def _check_idle(ctx, *resources):
    """409 AnotherOperationInProgress if a write to one of ``resources`` is still running (no Retry-After)."""
    for res in resources:
        if _busy(ctx.state, res) is not None:
            raise ArmError(409, "AnotherOperationInProgress",
                           "Another operation on this or dependent resource is in progress. To retrieve status of "
                           "the operation use uri: %s." % res.emu.get("op_url"))


def _begin(ctx, location, kind, target, complete, failed, busy):
    op = lro.start(ctx, "Microsoft.Network", location, kind, ctx.state.duration("network"), complete, failed,
                   target=target)
    url = lro.headers_for(ctx, op)["Azure-AsyncOperation"]
    for res in busy:
        if res is not None:
            res.emu["op"] = op.id
            res.emu["op_url"] = url
    return op


def _finish_write(ctx, res, created, location, updating=(), busy=(), refresh=None, render=None):
    """Start the operation of a PUT whose changes are applied (the resources are in state Updating)."""
    state = ctx.state
    targets = (res,) + tuple(updating)

    def settle(status):
        for item in targets:
            if state.get(item.id) is item:
                item.props["provisioningState"] = status
                state.save(item)
        if refresh is not None:
            refresh()

    op = _begin(ctx, location, "put", res.id, lambda op: settle("Succeeded"), lambda op: settle("Failed"),
                (res,) + tuple(busy))
    body = render() if render is not None else _render(state, res)
    return lro.accepted(ctx, op, status=201 if created else 200, body=body, location=False)


def _start_delete(ctx, res, location, remove, busy=()):
    state = ctx.state
    previous = res.props.get("provisioningState") or "Succeeded"
    res.props["provisioningState"] = "Deleting"
    state.save(res)

    def complete(op):
        if state.get(res.id) is res:
            remove()

    def failed(op):
        if state.get(res.id) is res:
            res.props["provisioningState"] = previous
            state.save(res)

    op = _begin(ctx, location, "delete", res.id, complete, failed, (res,) + tuple(busy))
    return lro.accepted(ctx, op)


def _refresh_vnets_of(state, subnet_ids):
    seen = set()
    for subnet_id in subnet_ids:
        idx = (subnet_id or "").lower().rfind("/subnets/")
        vnet = state.get(subnet_id[:idx]) if idx > 0 else None
        if vnet is not None and vnet.key not in seen:
            seen.add(vnet.key)
            netmodel.refresh_vnet(state, vnet)


# ---------------------------------------------------------------------------
# Reads of the top-level types
# ---------------------------------------------------------------------------

def _reads(collection, resource_type):
    """GET one, list in a group, list in the subscription, for a top-level network resource type."""

    @route("GET", RGN + "/%s/{name}" % collection, family="network")
    def get_one(ctx):
        return ok(_render(ctx.state, _require(ctx, "%s/%s" % (collection, ctx.param("name")), resource_type)))

    @route("GET", RGN + "/%s" % collection, family="network")
    def list_group(ctx):
        ctx.state.require_group(ctx.param("sub"), ctx.param("rg"))
        items = ctx.state.of_type(resource_type, ctx.param("sub"), ctx.param("rg"))
        return page(ctx, items, lambda res: _render(ctx.state, res))

    @route("GET", "/subscriptions/{sub}/providers/Microsoft.Network/%s" % collection, family="network")
    def list_all(ctx):
        ctx.state.require_subscription(ctx.param("sub"))
        items = ctx.state.of_type(resource_type, ctx.param("sub"))
        return page(ctx, items, lambda res: _render(ctx.state, res))


for _collection, _type in (("networkInterfaces", NIC_TYPE), ("virtualNetworks", VNET_TYPE),
                           ("publicIPAddresses", PIP_TYPE), ("loadBalancers", LB_TYPE)):
    _reads(_collection, _type)


# ---------------------------------------------------------------------------
# Virtual networks and subnets
# ---------------------------------------------------------------------------

def _subnet_props(raw_props, kept=None):
    props = {k: copy.deepcopy(v) for k, v in (raw_props or {}).items() if k not in SUBNET_READ_ONLY}
    prefixes = netmodel.subnet_prefixes(raw_props or {})
    if len(prefixes) == 1 and not (raw_props or {}).get("addressPrefixes"):
        props["addressPrefix"] = prefixes[0]
    else:
        props["addressPrefixes"] = list(prefixes)
    for key, default in (("privateEndpointNetworkPolicies", "Disabled"),
                         ("privateLinkServiceNetworkPolicies", "Enabled")):
        props.setdefault(key, (kept or {}).get(key, default))
    return props


def _check_prefix_change(state, subnet, prefixes):
    """A subnet in use keeps the addresses it has handed out."""
    users = netmodel.users_of_subnet(state, subnet.id)
    if not users:
        return
    new_nets = [netmodel.parse_prefix(p, subnet.id) for p in prefixes]
    for cfg in subnet.emu.get("allocated", {}).values():
        address = cfg.get("privateIPAddress")
        if address and not any(ipaddress.ip_address(address) in net for net in new_nets):
            raise ArmError(400, "InUseSubnetCannotBeUpdated",
                           "Subnet %s is in use and its address prefix cannot be changed to exclude address %s in "
                           "use by %s." % (subnet.name, address, users[0]))


@route("PUT", RGN + "/virtualNetworks/{name}", family="network", lock_op="write", starts_operation=True)
def put_vnet(ctx):
    state = ctx.state
    state.require_group(ctx.param("sub"), ctx.param("rg"))
    name = ctx.param("name")
    vnet_id = _rid(ctx, "virtualNetworks/" + name)
    body = ctx.json()
    existing = _existing(ctx, vnet_id, VNET_TYPE)
    _check_idle(ctx, existing)
    location = _location(ctx, body, existing)
    props = body.get("properties") or {}
    prefixes = list((props.get("addressSpace") or {}).get("addressPrefixes") or [])
    if not prefixes:
        raise ArmError(400, "InvalidRequestFormat", "Cannot parse the request: virtual network %s must have at least "
                       "one address prefix in addressSpace.addressPrefixes." % vnet_id)
    specs = []
    names = set()
    for raw in props.get("subnets") or []:
        sub_name = _name_of(raw, "subnet")
        if sub_name.lower() in names:
            raise ArmError(400, "InvalidRequestFormat", "Subnet %s appears more than once in virtual network %s."
                           % (sub_name, vnet_id))
        names.add(sub_name.lower())
        raw_props = raw.get("properties") or {}
        sub_prefixes = netmodel.subnet_prefixes(raw_props)
        if not sub_prefixes:
            raise ArmError(400, "InvalidRequestFormat", "Cannot parse the request: subnet %s/subnets/%s has no "
                           "addressPrefix." % (vnet_id, sub_name))
        specs.append((sub_name, sub_prefixes, raw_props))
    netmodel.check_subnets(name, vnet_id, prefixes, [(n, p) for n, p, _ in specs])
    # The subnets list is authoritative: a subnet left out is deleted, which fails while it is in use.
    removed = []
    if existing is not None:
        for subnet in netmodel.subnets_of(state, existing):
            if subnet.name.lower() not in names:
                users = netmodel.users_of_subnet(state, subnet.id)
                if users:
                    raise netmodel.in_use_subnet_error(subnet, users)
                removed.append(subnet)
        for sub_name, sub_prefixes, _ in specs:
            subnet = _existing(ctx, "%s/subnets/%s" % (vnet_id, sub_name), SUBNET_TYPE)
            if subnet is not None:
                _check_prefix_change(state, subnet, sub_prefixes)
    new_props = {k: copy.deepcopy(v) for k, v in props.items() if k not in VNET_READ_ONLY}
    new_props.setdefault("virtualNetworkPeerings", [])
    new_props.setdefault("enableDdosProtection", False)
    new_props.update({"provisioningState": "Updating", "addressSpace": {"addressPrefixes": prefixes},
                      "resourceGuid": existing.props.get("resourceGuid") if existing else str(uuid.uuid4()),
                      "subnets": []})
    new_body = {"id": vnet_id, "name": name, "type": VNET_TYPE, "location": location,
                "tags": dict(body.get("tags") or {}), "properties": new_props}
    if body.get("extendedLocation"):
        new_body["extendedLocation"] = copy.deepcopy(body["extendedLocation"])
    created = existing is None
    if created:
        vnet = state.add(Resource(vnet_id, VNET_TYPE, new_body))
    else:
        vnet = existing
        vnet.body = new_body
    tag = netmodel.stamp(vnet)
    for subnet in removed:
        state.remove(subnet)
    touched = []
    for sub_name, sub_prefixes, raw_props in specs:
        subnet = _existing(ctx, "%s/subnets/%s" % (vnet_id, sub_name), SUBNET_TYPE)
        sub_props = _subnet_props(raw_props, subnet.props if subnet is not None else None)
        if subnet is None:
            subnet = netmodel.add_subnet(state, vnet, sub_name, sub_prefixes[0], extra=sub_props)
        subnet.props.clear()
        subnet.props.update(sub_props)
        subnet.props["provisioningState"] = "Updating"
        subnet.body["etag"] = tag
        state.save(subnet)
        touched.append(subnet)
    netmodel.refresh_vnet(state, vnet)
    return _finish_write(ctx, vnet, created, location, updating=touched,
                         refresh=lambda: netmodel.refresh_vnet(state, vnet))


@route("DELETE", RGN + "/virtualNetworks/{name}", family="network", lock_op="delete", starts_operation=True)
def delete_vnet(ctx):
    state = ctx.state
    state.require_group(ctx.param("sub"), ctx.param("rg"))
    vnet = _existing(ctx, _rid(ctx, "virtualNetworks/" + ctx.param("name")), VNET_TYPE)
    if vnet is None:
        return Reply(204, None)
    _check_idle(ctx, vnet)
    for subnet in netmodel.subnets_of(state, vnet):
        users = netmodel.users_of_subnet(state, subnet.id)
        if users:
            raise netmodel.in_use_subnet_error(subnet, users)

    def remove():
        for subnet in netmodel.subnets_of(state, vnet):
            state.remove(subnet)
        state.remove(vnet)

    return _start_delete(ctx, vnet, vnet.body["location"], remove)


def _vnet_of(ctx):
    return _require(ctx, "virtualNetworks/" + ctx.param("vnet"), VNET_TYPE)


@route("GET", RGN + "/virtualNetworks/{vnet}/subnets", family="network")
def list_subnets(ctx):
    vnet = _vnet_of(ctx)
    return page(ctx, netmodel.subnets_of(ctx.state, vnet), lambda s: netmodel.render_subnet(ctx.state, s))


@route("GET", RGN + "/virtualNetworks/{vnet}/subnets/{subnet}", family="network")
def get_subnet(ctx):
    return ok(netmodel.render_subnet(ctx.state, _require(
        ctx, "virtualNetworks/%s/subnets/%s" % (ctx.param("vnet"), ctx.param("subnet")), SUBNET_TYPE)))


@route("PUT", RGN + "/virtualNetworks/{vnet}/subnets/{subnet}", family="network", lock_op="write",
       starts_operation=True)
def put_subnet(ctx):
    state = ctx.state
    vnet = _vnet_of(ctx)
    name = ctx.param("subnet")
    subnet_id = "%s/subnets/%s" % (vnet.id, name)
    body = ctx.json()
    existing = _existing(ctx, subnet_id, SUBNET_TYPE)
    _check_idle(ctx, vnet, existing)
    raw_props = body.get("properties") or {}
    prefixes = netmodel.subnet_prefixes(raw_props)
    if not prefixes:
        raise ArmError(400, "InvalidRequestFormat", "Cannot parse the request: subnet %s has no addressPrefix."
                       % subnet_id)
    siblings = [(s.name, netmodel.subnet_prefixes(s.props)) for s in netmodel.subnets_of(state, vnet)
                if not same(s.id, subnet_id)]
    netmodel.check_subnets(vnet.name, vnet.id, vnet.props["addressSpace"]["addressPrefixes"],
                           siblings + [(name, prefixes)])
    if existing is not None:
        _check_prefix_change(state, existing, prefixes)
    created = existing is None
    new_props = _subnet_props(raw_props, existing.props if existing else None)
    new_props["provisioningState"] = "Updating"
    if created:
        subnet = netmodel.add_subnet(state, vnet, name, prefixes[0], extra=new_props)
        subnet.props.clear()
        subnet.props.update(new_props)
    else:
        subnet = existing
        subnet.props.clear()
        subnet.props.update(new_props)
    tag = netmodel.stamp(vnet)
    subnet.body["etag"] = tag
    state.save(subnet)
    netmodel.refresh_vnet(state, vnet)
    return _finish_write(ctx, subnet, created, vnet.body["location"], busy=(vnet,),
                         refresh=lambda: netmodel.refresh_vnet(state, vnet))


@route("DELETE", RGN + "/virtualNetworks/{vnet}/subnets/{subnet}", family="network", lock_op="delete",
       starts_operation=True)
def delete_subnet(ctx):
    state = ctx.state
    state.require_group(ctx.param("sub"), ctx.param("rg"))
    vnet = _existing(ctx, _rid(ctx, "virtualNetworks/" + ctx.param("vnet")), VNET_TYPE)
    subnet = _existing(ctx, "%s/subnets/%s" % (vnet.id, ctx.param("subnet")), SUBNET_TYPE) if vnet else None
    if subnet is None:
        return Reply(204, None)
    _check_idle(ctx, vnet, subnet)
    users = netmodel.users_of_subnet(state, subnet.id)
    if users:
        raise netmodel.in_use_subnet_error(subnet, users)

    def remove():
        state.remove(subnet)
        netmodel.refresh_vnet(state, vnet)

    return _start_delete(ctx, subnet, vnet.body["location"], remove, busy=(vnet,))


# ---------------------------------------------------------------------------
# Public IP addresses
# ---------------------------------------------------------------------------

@route("PUT", RGN + "/publicIPAddresses/{name}", family="network", lock_op="write", starts_operation=True)
def put_public_ip(ctx):
    state = ctx.state
    state.require_group(ctx.param("sub"), ctx.param("rg"))
    name = ctx.param("name")
    pip_id = _rid(ctx, "publicIPAddresses/" + name)
    body = ctx.json()
    existing = _existing(ctx, pip_id, PIP_TYPE)
    _check_idle(ctx, existing)
    location = _location(ctx, body, existing)
    sku = dict(body.get("sku") or (existing.body.get("sku") if existing else None) or {"name": "Standard"})
    sku_name = {"basic": "Basic", "standard": "Standard"}.get(str(sku.get("name", "Standard")).lower())
    if sku_name is None:
        raise ArmError(400, "InvalidParameter", "The value %s of property 'sku.name' is invalid. Allowed values are "
                       "Basic, Standard." % sku.get("name"), target="sku.name")
    sku = {"name": sku_name, "tier": sku.get("tier") or "Regional"}
    props = body.get("properties") or {}
    new_props = {k: copy.deepcopy(v) for k, v in props.items() if k not in PIP_READ_ONLY}
    method = str(new_props.get("publicIPAllocationMethod") or ("Static" if sku_name == "Standard" else "Dynamic"))
    method = {"static": "Static", "dynamic": "Dynamic"}.get(method.lower())
    if method is None:
        raise ArmError(400, "InvalidParameter", "The value %s of property 'publicIPAllocationMethod' is invalid."
                       % props.get("publicIPAllocationMethod"), target="publicIPAllocationMethod")
    new_props["publicIPAllocationMethod"] = method
    new_props.setdefault("publicIPAddressVersion", "IPv4")
    idle = netmodel.as_int(new_props.get("idleTimeoutInMinutes", 4), "idleTimeoutInMinutes", pip_id)
    if not 4 <= idle <= 30:
        raise netmodel.bad_value("idleTimeoutInMinutes", idle, pip_id, 4, 30)
    new_props["idleTimeoutInMinutes"] = idle
    new_props["ipTags"] = copy.deepcopy(props.get("ipTags") or [])
    new_props["resourceGuid"] = existing.props.get("resourceGuid") if existing else str(uuid.uuid4())
    new_props["ipAddress"] = (existing.props.get("ipAddress") if existing else None) or netmodel.next_public_ip(state)
    new_props["provisioningState"] = "Updating"
    new_body = {"id": pip_id, "name": name, "type": PIP_TYPE, "location": location,
                "tags": dict(body.get("tags") or {}), "sku": sku, "properties": new_props}
    zones = body.get("zones") if "zones" in body else (existing.body.get("zones") if existing else None)
    if zones:
        new_body["zones"] = [str(z) for z in zones]
    created = existing is None
    if created:
        pip = state.add(Resource(pip_id, PIP_TYPE, new_body))
    else:
        pip = existing
        pip.body = new_body
    netmodel.stamp(pip)
    state.save(pip)
    return _finish_write(ctx, pip, created, location)


@route("DELETE", RGN + "/publicIPAddresses/{name}", family="network", lock_op="delete", starts_operation=True)
def delete_public_ip(ctx):
    state = ctx.state
    state.require_group(ctx.param("sub"), ctx.param("rg"))
    pip = _existing(ctx, _rid(ctx, "publicIPAddresses/" + ctx.param("name")), PIP_TYPE)
    if pip is None:
        return Reply(204, None)
    _check_idle(ctx, pip)
    user = netmodel.user_of_public_ip(state, pip.id)
    if user:
        raise netmodel.public_ip_in_use(pip, user)
    return _start_delete(ctx, pip, pip.body["location"], lambda: state.remove(pip))


# ---------------------------------------------------------------------------
# Network interfaces
# ---------------------------------------------------------------------------

def _lb_refs(nic_props):
    out = set()
    for ipconfig in nic_props.get("ipConfigurations") or []:
        props = ipconfig.get("properties") or {}
        for key in ("loadBalancerBackendAddressPools", "loadBalancerInboundNatRules"):
            for ref in props.get(key) or []:
                if ref_id(ref):
                    out.add(ref_id(ref).lower())
    return out


def _check_nat_bindings(state, nic_id, nic_name, ipconfig_id, rule_refs):
    """The V1 rules an ip configuration names: they exist, are free, and do not clash on the backend side."""
    rules = []
    for rule_ref in rule_refs:
        rule = state.get(rule_ref)
        if rule is None or rule.type != NAT_RULE_TYPE:
            raise netmodel.invalid_reference(rule_ref, ipconfig_id)
        owner, owner_ipconfig = netmodel.bound_ipconfig(state, rule.id)
        if owner is not None and not same(owner.id, nic_id):
            raise ArmError(400, "InboundNatRuleInUse",
                           "Network interface %s is trying to use NAT rule %s that is already in use by another "
                           "network interface %s." % (nic_name, rule.id, owner.id))
        if owner is not None and not same(owner_ipconfig["id"], ipconfig_id):
            raise ArmError(400, "InboundNatRuleInUse",
                           "IP configuration %s is trying to use NAT rule %s that is already in use by IP "
                           "configuration %s." % (ipconfig_id, rule.id, owner_ipconfig["id"]))
        for other in rules:
            a, b = other.props, rule.props
            if a.get("backendPort") == b.get("backendPort") and \
                    netmodel._protocols_overlap(a.get("protocol"), b.get("protocol")) and \
                    not a.get("enableFloatingIP") and not b.get("enableFloatingIP"):
                raise ArmError(400, "RulesUseSameBackendPortProtocolAndIPConfig",
                               "Load balancer rules %s and %s with floating IP disabled use the same backend port %s "
                               "and protocol %s, and must not be used with the same backend IP %s."
                               % (other.id, rule.id, b.get("backendPort"), b.get("protocol"), ipconfig_id))
        rules.append(rule)
    return rules


@route("PUT", RGN + "/networkInterfaces/{name}", family="network", lock_op="write", starts_operation=True)
def put_nic(ctx):
    state = ctx.state
    state.require_group(ctx.param("sub"), ctx.param("rg"))
    name = ctx.param("name")
    nic_id = _rid(ctx, "networkInterfaces/" + name)
    body = ctx.json()
    existing = _existing(ctx, nic_id, NIC_TYPE)
    _check_idle(ctx, existing)
    location = _location(ctx, body, existing)
    props = body.get("properties") or {}
    raw_ipconfigs = props.get("ipConfigurations") or []
    if not raw_ipconfigs:
        raise ArmError(400, "InvalidRequestFormat", "Cannot parse the request: network interface %s must have at "
                       "least one IP configuration." % nic_id)
    old = {ipc["name"].lower(): ipc for ipc in (existing.props.get("ipConfigurations") or [])} if existing else {}
    any_primary = any((raw.get("properties") or {}).get("primary") for raw in raw_ipconfigs)
    planned = []
    names = set()
    joins = {}  # pool id (lower) -> [pool id, count of ip configurations joining]
    for index, raw in enumerate(raw_ipconfigs):
        ipc_name = _name_of(raw, "IP configuration")
        if ipc_name.lower() in names:
            raise ArmError(400, "InvalidRequestFormat", "IP configuration %s appears more than once in network "
                           "interface %s." % (ipc_name, nic_id))
        names.add(ipc_name.lower())
        ipc_id = "%s/ipConfigurations/%s" % (nic_id, ipc_name)
        rp = raw.get("properties") or {}
        subnet_id = ref_id(rp.get("subnet"))
        if not subnet_id:
            raise ArmError(400, "InvalidRequestFormat", "IP configuration %s must reference a subnet." % ipc_id,
                           target="subnet")
        subnet = state.get(subnet_id)
        if subnet is None or subnet.type != SUBNET_TYPE:
            raise netmodel.invalid_reference(subnet_id, ipc_id)
        pip_id = ref_id(rp.get("publicIPAddress"))
        if pip_id:
            pip = state.get(pip_id)
            if pip is None or pip.type != PIP_TYPE:
                raise netmodel.invalid_reference(pip_id, ipc_id)
            user = netmodel.user_of_public_ip(state, pip.id, ignore=[ipc_id])
            if user:
                raise ArmError(400, "PublicIPAddressInUse",
                               "Resource %s is referencing public IP address %s that is already allocated to "
                               "resource %s." % (ipc_id, pip.id, user))
            pip_id = pip.id
        pools = []
        for ref in rp.get("loadBalancerBackendAddressPools") or []:
            pool_ref = ref_id(ref)
            lb, pool = netmodel.find_lb_item(state, pool_ref, "backendAddressPools") if pool_ref else (None, None)
            if pool is None:
                raise netmodel.invalid_reference(pool_ref, ipc_id)
            if not any(same(p, pool["id"]) for p in pools):
                pools.append(pool["id"])
        rule_refs = []
        for ref in rp.get("loadBalancerInboundNatRules") or []:
            if ref_id(ref) and not any(same(r, ref_id(ref)) for r in rule_refs):
                rule_refs.append(ref_id(ref))
        rules = _check_nat_bindings(state, nic_id, name, ipc_id, rule_refs)
        previous = old.get(ipc_name.lower())
        old_pools = {(ref_id(r) or "").lower() for r in ((previous or {}).get("properties") or {}).get(
            "loadBalancerBackendAddressPools") or []}
        for pool_id in pools:
            if pool_id.lower() not in old_pools:
                joins.setdefault(pool_id.lower(), [pool_id, 0])[1] += 1
        method = str(rp.get("privateIPAllocationMethod") or "Dynamic")
        method = {"static": "Static", "dynamic": "Dynamic"}.get(method.lower())
        if method is None:
            raise ArmError(400, "InvalidParameter", "The value %s of property 'privateIPAllocationMethod' is "
                           "invalid." % rp.get("privateIPAllocationMethod"), target="privateIPAllocationMethod")
        extra = {k: copy.deepcopy(v) for k, v in rp.items() if k not in IPCONFIG_READ_ONLY}
        planned.append({"name": ipc_name, "id": ipc_id, "subnet": subnet, "pip": pip_id, "pools": pools,
                        "rules": [r.id for r in rules], "method": method, "requested": rp.get("privateIPAddress"),
                        "previous": previous, "extra": extra,
                        "primary": bool(rp.get("primary")) if any_primary else index == 0})
    new_refs = {p.lower() for item in planned for p in item["pools"] + item["rules"]}
    old_refs = _lb_refs(existing.props) if existing else set()
    affected = netmodel.lbs_of_refs(state, sorted(new_refs ^ old_refs))
    _check_idle(ctx, *affected)
    for pool_id, count in joins.values():
        netmodel.check_pool_capacity(state, [pool_id], count)
    # Private IPs: an ip configuration that stays in its subnet keeps its address.
    reserved = []
    try:
        for item in planned:
            previous = item["previous"]
            prev_props = (previous or {}).get("properties") or {}
            subnet = item["subnet"]
            kept = prev_props.get("privateIPAddress") if previous and same(
                ref_id(prev_props.get("subnet")), subnet.id) else None
            requested = item["requested"] if item["method"] == "Static" else None
            if kept and (not requested or requested == kept):
                address = kept
            else:
                address = netmodel.allocate_private_ip(state, subnet, requested, item["id"])
                netmodel.reserve_ip(state, subnet.id, item["id"] + "#pending", address)
                reserved.append((subnet.id, item["id"] + "#pending"))
            item["address"] = address
    finally:
        for subnet_id, key in reserved:
            netmodel.release_ip(state, subnet_id, key)
    touched_subnets = set()
    for ipc in old.values():
        subnet_ref = ref_id((ipc.get("properties") or {}).get("subnet"))
        netmodel.release_ip(state, subnet_ref, ipc["id"])
        touched_subnets.add(subnet_ref)
    ipconfigs = []
    for item in planned:
        ip_props = item["extra"]
        ip_props.update({
            "provisioningState": "Succeeded",
            "privateIPAddress": item["address"],
            "privateIPAllocationMethod": item["method"],
            "privateIPAddressVersion": ip_props.get("privateIPAddressVersion") or "IPv4",
            "subnet": {"id": item["subnet"].id},
            "primary": item["primary"],
            "loadBalancerBackendAddressPools": [{"id": p} for p in item["pools"]],
            "loadBalancerInboundNatRules": [{"id": r} for r in item["rules"]],
        })
        if item["pip"]:
            ip_props["publicIPAddress"] = {"id": item["pip"]}
        else:
            ip_props.pop("publicIPAddress", None)
        netmodel.reserve_ip(state, item["subnet"].id, item["id"], item["address"])
        touched_subnets.add(item["subnet"].id)
        ipconfigs.append({"id": item["id"], "name": item["name"], "type": netmodel.IPCONFIG_TYPE,
                          "properties": ip_props})
    new_props = {k: copy.deepcopy(v) for k, v in props.items() if k not in NIC_READ_ONLY}
    new_props.setdefault("enableAcceleratedNetworking", False)
    new_props.setdefault("enableIPForwarding", False)
    new_props.setdefault("nicType", "Standard")
    dns = dict(new_props.get("dnsSettings") or {})
    dns.setdefault("dnsServers", [])
    dns["appliedDnsServers"] = list(dns.get("dnsServers") or [])
    new_props["dnsSettings"] = dns
    new_props["ipConfigurations"] = ipconfigs
    new_props["resourceGuid"] = existing.props.get("resourceGuid") if existing else str(uuid.uuid4())
    for carry in ("virtualMachine", "macAddress", "primary"):
        if existing is not None and existing.props.get(carry) is not None:
            new_props[carry] = copy.deepcopy(existing.props[carry])
    new_props["provisioningState"] = "Updating"
    new_body = {"id": nic_id, "name": name, "type": NIC_TYPE, "location": location,
                "tags": dict(body.get("tags") or {}), "properties": new_props}
    for extra in ("extendedLocation",):
        if body.get(extra):
            new_body[extra] = copy.deepcopy(body[extra])
    created = existing is None
    if created:
        nic = state.add(Resource(nic_id, NIC_TYPE, new_body))
    else:
        nic = existing
        nic.body = new_body
    netmodel.stamp(nic)
    state.save(nic)
    for lb in affected:
        netmodel.stamp(lb)
    netmodel.touch_lbs(state, affected)
    _refresh_vnets_of(state, touched_subnets)

    def refresh():
        netmodel.touch_lbs(state, affected)

    return _finish_write(ctx, nic, created, location, busy=affected, refresh=refresh)


@route("DELETE", RGN + "/networkInterfaces/{name}", family="network", lock_op="delete", starts_operation=True)
def delete_nic(ctx):
    state = ctx.state
    state.require_group(ctx.param("sub"), ctx.param("rg"))
    nic = _existing(ctx, _rid(ctx, "networkInterfaces/" + ctx.param("name")), NIC_TYPE)
    if nic is None:
        return Reply(204, None)
    affected = netmodel.lbs_of_refs(state, sorted(_lb_refs(nic.props)))
    _check_idle(ctx, nic, *affected)
    owner = ref_id(nic.props.get("virtualMachine"))
    if owner:
        raise netmodel.nic_in_use(nic, owner)
    subnets = [ref_id((ipc.get("properties") or {}).get("subnet")) for ipc in nic.props.get("ipConfigurations") or []]

    def remove():
        netmodel.release_nic(state, nic)
        state.remove(nic)
        netmodel.touch_lbs(state, affected)
        _refresh_vnets_of(state, subnets)

    return _start_delete(ctx, nic, nic.body["location"], remove, busy=affected)


# ---------------------------------------------------------------------------
# Load balancers
# ---------------------------------------------------------------------------

def _frontend_ips(state, lb_id, items, previous):
    """Private IPs of internal frontends: kept while in the same subnet, else allocated."""
    old = {fe["id"].lower(): fe for fe in (previous or {}).get("frontendIPConfigurations") or []}
    plan = []
    for fe in items["frontendIPConfigurations"]:
        props = fe["properties"]
        subnet_id = ref_id(props.get("subnet"))
        if not subnet_id or ref_id(props.get("publicIPAddress")):
            props.pop("privateIPAddress", None)
            props["privateIPAllocationMethod"] = props.get("privateIPAllocationMethod") or "Dynamic"
            continue
        subnet = state.get(subnet_id)
        method = {"static": "Static"}.get(str(props.get("privateIPAllocationMethod") or "").lower(), "Dynamic")
        prev = old.get(fe["id"].lower())
        prev_props = (prev or {}).get("properties") or {}
        kept = prev_props.get("privateIPAddress") if prev and same(ref_id(prev_props.get("subnet")), subnet.id) \
            else None
        requested = props.get("privateIPAddress") if method == "Static" else None
        if kept and (not requested or requested == kept):
            address = kept
        else:
            address = netmodel.allocate_private_ip(state, subnet, requested, fe["id"])
        props["privateIPAddress"] = address
        props["privateIPAllocationMethod"] = method
        props.setdefault("privateIPAddressVersion", "IPv4")
        plan.append((subnet.id, fe["id"], address))
    return plan


def _release_frontends(state, lb_props):
    subnets = []
    for fe in (lb_props or {}).get("frontendIPConfigurations") or []:
        subnet_id = ref_id((fe.get("properties") or {}).get("subnet"))
        if subnet_id:
            netmodel.release_ip(state, subnet_id, fe["id"])
            subnets.append(subnet_id)
    return subnets


def _refuse_bound_delete(ctx):
    return bool(_settings(ctx, "refuse_delete_of_bound_nat_rule", False))


def _rule_in_use(rule, ipconfig):
    return ArmError(400, "InboundNatRuleInUse",
                    "Inbound NAT rule %s cannot be deleted because it is in use by IP configuration %s. Remove the "
                    "rule from the IP configuration first." % (rule.id, ipconfig["id"]))


@route("PUT", RGN + "/loadBalancers/{name}", family="network", lock_op="write", starts_operation=True)
def put_lb(ctx):
    state = ctx.state
    state.require_group(ctx.param("sub"), ctx.param("rg"))
    name = ctx.param("name")
    lb_id = _rid(ctx, "loadBalancers/" + name)
    body = ctx.json()
    existing = _existing(ctx, lb_id, LB_TYPE)
    _check_idle(ctx, existing)
    location = _location(ctx, body, existing)
    sku_in = dict(body.get("sku") or {})
    sku_name = {"basic": "Basic", "standard": "Standard", "gateway": "Gateway"}.get(
        str(sku_in.get("name") or "Basic").lower())
    if sku_name is None:
        raise ArmError(400, "InvalidParameter", "The value %s of property 'sku.name' is invalid. Allowed values are "
                       "Basic, Standard, Gateway." % sku_in.get("name"), target="sku.name")
    props = body.get("properties") or {}
    items = netmodel.build_lb_items(lb_id, props, existing.props if existing else None)
    netmodel.validate_lb_items(state, lb_id, sku_name, items)
    view = dict(items, id=lb_id, sku=sku_name)
    normalized = []
    names = set()
    for raw in props.get("inboundNatRules") or []:
        rule_name = _name_of(raw, "inbound NAT rule")
        if rule_name.lower() in names:
            raise ArmError(400, "InvalidRequestFormat", "Inbound NAT rule %s appears more than once in load balancer "
                           "%s." % (rule_name, lb_id))
        names.add(rule_name.lower())
        rule_id = netmodel.nat_rule_id(lb_id, rule_name)
        normalized.append((rule_id, rule_name, netmodel.normalise_nat_rule(lb_id, rule_name, raw.get("properties"))))
    for rule_id, _, rule_props in normalized:
        others = [(oid, oprops) for oid, _, oprops in normalized if oid != rule_id]
        netmodel.validate_nat_rule(state, rule_id, rule_props, view, others)
    # The load balancer's list is authoritative: rules left out are deleted.
    removed = []
    if existing is not None:
        for rule in netmodel.nat_rules_of(state, existing):
            if rule.name.lower() not in names:
                removed.append(rule)
    if _refuse_bound_delete(ctx):
        for rule in removed:
            _, ipconfig = netmodel.bound_ipconfig(state, rule.id)
            if ipconfig is not None:
                raise _rule_in_use(rule, ipconfig)
    # Commit.
    plan = _frontend_ips(state, lb_id, items, existing.props if existing else None)
    released = _release_frontends(state, existing.props) if existing is not None else []
    for subnet_id, fe_id, address in plan:
        netmodel.reserve_ip(state, subnet_id, fe_id, address)
    new_props = {k: copy.deepcopy(v) for k, v in props.items() if k not in LB_READ_ONLY}
    new_props.update(items)
    new_props["inboundNatRules"] = []
    new_props["resourceGuid"] = existing.props.get("resourceGuid") if existing else str(uuid.uuid4())
    new_props["provisioningState"] = "Updating"
    new_body = {"id": lb_id, "name": name, "type": LB_TYPE, "location": location,
                "tags": dict(body.get("tags") or {}),
                "sku": {"name": sku_name, "tier": sku_in.get("tier") or "Regional"}, "properties": new_props}
    if body.get("extendedLocation"):
        new_body["extendedLocation"] = copy.deepcopy(body["extendedLocation"])
    created = existing is None
    if created:
        lb = state.add(Resource(lb_id, LB_TYPE, new_body))
    else:
        lb = existing
        lb.body = new_body
    tag = netmodel.stamp(lb)
    for rule in removed:
        netmodel.detach_rule(state, rule.id)
        state.remove(rule)
    rules = []
    for rule_id, rule_name, rule_props in normalized:
        rule = _existing(ctx, rule_id, NAT_RULE_TYPE)
        if rule is None:
            rule = state.add(netmodel.new_nat_rule(lb, rule_name, rule_props))
        rule.body["properties"] = dict(rule_props, provisioningState="Updating")
        rule.body["etag"] = tag
        state.save(rule)
        rules.append(rule)
    keep = [item["id"] for key in netmodel.LB_COLLECTIONS for item in items[key]] + [r.id for r in rules]
    netmodel.detach_lb_refs(state, lb_id, keep)
    netmodel.refresh_lb(state, lb)
    _refresh_vnets_of(state, released + [s for s, _, _ in plan])
    return _finish_write(ctx, lb, created, location, updating=rules, refresh=lambda: netmodel.refresh_lb(state, lb))


@route("DELETE", RGN + "/loadBalancers/{name}", family="network", lock_op="delete", starts_operation=True)
def delete_lb(ctx):
    state = ctx.state
    state.require_group(ctx.param("sub"), ctx.param("rg"))
    lb = _existing(ctx, _rid(ctx, "loadBalancers/" + ctx.param("name")), LB_TYPE)
    if lb is None:
        return Reply(204, None)
    _check_idle(ctx, lb)
    vmss = netmodel.lb_in_use_by_scale_set(state, lb)
    if vmss is not None:
        raise ArmError(400, "LoadBalancerInUseByVirtualMachineScaleSet",
                       "Cannot delete load balancer %s since its child resources are in use by virtual machine scale "
                       "set %s." % (lb.id, vmss.id))

    def remove():
        netmodel.detach_lb_refs(state, lb.id, [])
        for rule in netmodel.nat_rules_of(state, lb):
            state.remove(rule)
        subnets = _release_frontends(state, lb.props)
        state.remove(lb)
        _refresh_vnets_of(state, subnets)

    return _start_delete(ctx, lb, lb.body["location"], remove)


# -- sub-resources of a load balancer (read-only views) -------------------------------------------

def _lb(ctx):
    return _require(ctx, "loadBalancers/%s" % ctx.param("lb"), LB_TYPE)


def _lb_child_routes(segment):
    @route("GET", RGN + "/loadBalancers/{lb}/%s" % segment, family="network")
    def list_children(ctx):
        lb = _lb(ctx)
        items = render_lb(ctx.state, lb)["properties"][segment]
        return page(ctx, items, lambda item: item)

    @route("GET", RGN + "/loadBalancers/{lb}/%s/{child}" % segment, family="network")
    def get_child(ctx):
        lb = _lb(ctx)
        for item in render_lb(ctx.state, lb)["properties"][segment]:
            if item["name"].lower() == ctx.param("child").lower():
                return ok(item)
        raise not_found("%s/%s/%s" % (lb.id, segment, ctx.param("child")), ctx.param("rg"))


for _segment in ("backendAddressPools", "frontendIPConfigurations", "loadBalancingRules", "probes", "outboundRules"):
    _lb_child_routes(_segment)


@route("GET", RGN + "/loadBalancers/{lb}/networkInterfaces", family="network")
def list_lb_nics(ctx):
    lb = _lb(ctx)
    nics = {}
    for pool in lb.props.get("backendAddressPools") or []:
        for nic, _ in netmodel.pool_members(ctx.state, pool["id"]):
            nics[nic.key] = nic
    return page(ctx, list(nics.values()), lambda nic: _render(ctx.state, nic))


# -- inbound NAT rules ------------------------------------------------------------------------------

@route("GET", RGN + "/loadBalancers/{lb}/inboundNatRules", family="network")
def list_nat_rules(ctx):
    lb = _lb(ctx)
    return page(ctx, netmodel.nat_rules_of(ctx.state, lb), lambda rule: render_nat_rule(ctx.state, rule))


@route("GET", RGN + "/loadBalancers/{lb}/inboundNatRules/{rule}", family="network")
def get_nat_rule(ctx):
    lb = _lb(ctx)
    rule = _existing(ctx, netmodel.nat_rule_id(lb.id, ctx.param("rule")), NAT_RULE_TYPE)
    if rule is None:
        raise not_found(netmodel.nat_rule_id(lb.id, ctx.param("rule")), ctx.param("rg"))
    netmodel.sync_lb(ctx.state, lb)
    return ok(render_nat_rule(ctx.state, rule))


@route("PUT", RGN + "/loadBalancers/{lb}/inboundNatRules/{rule}", family="network", lock_op="write",
       starts_operation=True)
def put_nat_rule(ctx):
    state = ctx.state
    lb = _lb(ctx)
    name = ctx.param("rule")
    rule_id = netmodel.nat_rule_id(lb.id, name)
    body = ctx.json()
    existing = _existing(ctx, rule_id, NAT_RULE_TYPE)
    _check_idle(ctx, lb, existing)
    props = netmodel.normalise_nat_rule(lb.id, name, body.get("properties"))
    others = [(rule.id, rule.props) for rule in netmodel.nat_rules_of(state, lb) if not same(rule.id, rule_id)]
    netmodel.validate_nat_rule(state, rule_id, props, netmodel.lb_view(lb.body), others)
    if existing is not None and props.get("backendAddressPool"):
        _, ipconfig = netmodel.bound_ipconfig(state, rule_id)
        if ipconfig is not None:
            raise ArmError(400, "InvalidParameter",
                           "Inbound NAT rule %s is bound to IP configuration %s and cannot reference a backend "
                           "address pool." % (rule_id, ipconfig["id"]), target="backendAddressPool")
    created = existing is None
    if created:
        rule = state.add(netmodel.new_nat_rule(lb, name, props))
    else:
        rule = existing
    rule.body["properties"] = dict(props, provisioningState="Updating")
    tag = netmodel.stamp(lb)
    rule.body["etag"] = tag
    lb.props["provisioningState"] = "Updating"
    state.save(rule)
    netmodel.refresh_lb(state, lb)
    return _finish_write(ctx, rule, created, lb.body["location"], updating=(lb,), busy=(lb,),
                         refresh=lambda: netmodel.refresh_lb(state, lb),
                         render=lambda: render_nat_rule(state, rule))


@route("DELETE", RGN + "/loadBalancers/{lb}/inboundNatRules/{rule}", family="network", lock_op="delete",
       starts_operation=True)
def delete_nat_rule(ctx):
    state = ctx.state
    state.require_group(ctx.param("sub"), ctx.param("rg"))
    lb = _existing(ctx, _rid(ctx, "loadBalancers/" + ctx.param("lb")), LB_TYPE)
    rule = _existing(ctx, netmodel.nat_rule_id(lb.id, ctx.param("rule")), NAT_RULE_TYPE) if lb else None
    if rule is None:
        return Reply(204, None)
    _check_idle(ctx, lb, rule)
    _, ipconfig = netmodel.bound_ipconfig(state, rule.id)
    if ipconfig is not None and _refuse_bound_delete(ctx):
        raise _rule_in_use(rule, ipconfig)

    def remove():
        netmodel.detach_rule(state, rule.id)
        state.remove(rule)
        netmodel.stamp(lb)
        netmodel.refresh_lb(state, lb)

    return _start_delete(ctx, rule, lb.body["location"], remove, busy=(lb,))


# -- V2 port mappings -------------------------------------------------------------------------------

@route("POST", RGN + "/loadBalancers/{lb}/backendAddressPools/{pool}/queryInboundNatRulePortMapping",
       family="network")
def query_port_mapping(ctx):
    state = ctx.state
    lb = _lb(ctx)
    pool_id = "%s/backendAddressPools/%s" % (lb.id, ctx.param("pool"))
    _, pool = netmodel.find_lb_item(state, pool_id, "backendAddressPools")
    if pool is None:
        raise not_found(pool_id, ctx.param("rg"))
    body = ctx.json()
    wanted_id = ref_id(body.get("ipConfiguration"))
    wanted_ip = body.get("ipAddress")
    if not wanted_id and not wanted_ip:
        raise ArmError(400, "InvalidParameter", "Either ipConfiguration or ipAddress must be specified to query the "
                       "inbound NAT rule port mappings of backend address pool %s." % pool["id"],
                       target="ipConfiguration")
    member = None
    for _, ipconfig in netmodel.pool_members(state, pool["id"]):
        if (wanted_id and same(ipconfig["id"], wanted_id)) or (
                not wanted_id and ipconfig.get("properties", {}).get("privateIPAddress") == wanted_ip):
            member = ipconfig
            break
    if member is None:
        raise ArmError(400, "InvalidParameter", "%s is not a member of backend address pool %s."
                       % ("IP configuration %s" % wanted_id if wanted_id else "IP address %s" % wanted_ip, pool["id"]),
                       target="ipConfiguration" if wanted_id else "ipAddress")
    member_id = member["id"]

    def result():
        return {"inboundNatRulePortMappings": netmodel.port_mappings_for(state, lb, pool["id"], member_id)}

    if not _settings(ctx, "port_mapping_query_async", True):
        return ok(result())

    def complete(op):
        op.result = result()

    op = lro.start(ctx, "Microsoft.Network", lb.body["location"], "queryInboundNatRulePortMapping",
                   state.duration("network"), complete, target=lb.id)
    headers = lro.headers_for(ctx, op)
    headers.pop("Azure-AsyncOperation")
    return Reply(202, None, headers)
