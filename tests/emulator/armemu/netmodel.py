"""Network resource bodies (Microsoft.Network), shared by scenarios, compute and the network REST API.

Builders, validation and relations live here: what a NIC, a virtual network,
a public IP, a load balancer and an inbound NAT rule look like on the wire,
how they point at each other, and the V2 NAT-rule port mappings. The REST
handlers are in ``network.py``.

Relations are stored once and derived when rendering: a NIC ip configuration
names its backend pools and (V1) NAT rules; a pool's members, a rule's
``backendIPConfiguration``, a subnet's ``ipConfigurations`` and a public IP's
``ipConfiguration`` are computed from the NICs and load balancers.
"""

from __future__ import annotations

import copy
import ipaddress
import uuid

from .errors import ArmError
from .state import Resource

VNET_TYPE = "Microsoft.Network/virtualNetworks"
SUBNET_TYPE = "Microsoft.Network/virtualNetworks/subnets"
NIC_TYPE = "Microsoft.Network/networkInterfaces"
PIP_TYPE = "Microsoft.Network/publicIPAddresses"
LB_TYPE = "Microsoft.Network/loadBalancers"
NAT_RULE_TYPE = "Microsoft.Network/loadBalancers/inboundNatRules"
IPCONFIG_TYPE = NIC_TYPE + "/ipConfigurations"
VMSS_TYPE = "Microsoft.Compute/virtualMachineScaleSets"

# A load balancer's sub-resources stored inline (inbound NAT rules are child resources).
LB_COLLECTIONS = ("frontendIPConfigurations", "backendAddressPools", "loadBalancingRules", "probes",
                  "inboundNatPools", "outboundRules")
# Read-only back references Azure computes on each kind of sub-resource (ignored in requests).
LB_DERIVED = {
    "frontendIPConfigurations": ("inboundNatRules", "inboundNatPools", "outboundRules", "loadBalancingRules"),
    "backendAddressPools": ("backendIPConfigurations", "loadBalancingRules", "outboundRule", "outboundRules",
                            "inboundNatRules"),
    "loadBalancingRules": (),
    "probes": ("loadBalancingRules",),
    "inboundNatPools": (),
    "outboundRules": (),
}
PROTOCOLS = {"tcp": "Tcp", "udp": "Udp", "all": "All", "quic": "Quic"}

REFERENCE_HINT = ("Please make sure that the referenced resource exists, and that both resources are in the "
                  "same region.")


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

def rg_path(state, subscription_id, resource_group):
    return "%s/providers/Microsoft.Network" % state.group_id(subscription_id, resource_group)


def etag():
    return 'W/"%s"' % uuid.uuid4()


def same(a, b):
    return (a or "").lower() == (b or "").lower()


def ref_id(value):
    return value.get("id") if isinstance(value, dict) else None


def invalid_reference(target_id, referrer_id):
    return ArmError(400, "InvalidResourceReference", "Resource %s referenced by resource %s was not found. %s"
                    % (target_id, referrer_id, REFERENCE_HINT))


def bad_value(prop, value, owner_id, low, high):
    return ArmError(400, "InvalidParameter",
                    "The value %s of property '%s' of resource %s is out of range. Allowed values are %d-%d."
                    % (value, prop, owner_id, low, high), target=prop)


def as_int(value, prop, owner_id):
    if isinstance(value, bool):
        raise ArmError(400, "InvalidParameter", "Property '%s' of resource %s must be an integer." % (prop, owner_id),
                       target=prop)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ArmError(400, "InvalidParameter", "Property '%s' of resource %s must be an integer." % (prop, owner_id),
                       target=prop)


def stamp(res):
    """A new etag on a resource and on its inline sub-resources (NRP gives them the one etag)."""
    tag = etag()
    res.body["etag"] = tag
    props = res.body.get("properties") or {}
    keys = ("ipConfigurations",) if res.type == NIC_TYPE else LB_COLLECTIONS if res.type == LB_TYPE else ()
    for key in keys:
        for item in props.get(key) or []:
            if isinstance(item, dict):
                item["etag"] = tag
    return tag


def parent_lb_id(child_id):
    """The load balancer id of '.../loadBalancers/{lb}/{collection}/{name}', else None."""
    parts = (child_id or "").split("/")
    if len(parts) < 11 or parts[7].lower() != "loadbalancers":
        return None
    return "/".join(parts[:9])


def parent_nic_id(ipconfig_id):
    parts = (ipconfig_id or "").split("/")
    if len(parts) < 11 or parts[7].lower() != "networkinterfaces":
        return None
    return "/".join(parts[:9])


def find_lb_item(state, item_id, collection):
    """(load balancer, item) for a sub-resource id; item is None when absent."""
    lb_id = parent_lb_id(item_id)
    lb = state.get(lb_id) if lb_id else None
    if lb is None or lb.type != LB_TYPE:
        return None, None
    for item in lb.props.get(collection) or []:
        if same(item.get("id"), item_id):
            return lb, item
    return lb, None


def nat_rules_of(state, lb):
    return state.children(lb.id, NAT_RULE_TYPE)


def nic_ipconfigs(state, subscription_id=None):
    """(nic, ipconfig) for every NIC, in creation order; NICs being released are left out."""
    for res in list(state.resources.values()):
        if res.type != NIC_TYPE or res.emu.get("released"):
            continue
        if subscription_id is not None and not same(res.subscription_id, subscription_id):
            continue
        for ipconfig in res.props.get("ipConfigurations") or []:
            yield res, ipconfig


def pool_members(state, pool_id):
    out = []
    for nic, ipconfig in nic_ipconfigs(state, pool_id.split("/")[2]):
        refs = ipconfig.get("properties", {}).get("loadBalancerBackendAddressPools") or []
        if any(same(ref_id(ref), pool_id) for ref in refs):
            out.append((nic, ipconfig))
    return out


def bound_ipconfig(state, rule_id):
    """The NIC ip configuration a V1 NAT rule is bound to: (nic, ipconfig) or (None, None)."""
    for nic, ipconfig in nic_ipconfigs(state, rule_id.split("/")[2]):
        refs = ipconfig.get("properties", {}).get("loadBalancerInboundNatRules") or []
        if any(same(ref_id(ref), rule_id) for ref in refs):
            return nic, ipconfig
    return None, None


def users_of_subnet(state, subnet_id):
    """Ids of the ip configurations (NICs, LB frontends) in a subnet."""
    out = []
    sub = subnet_id.split("/")[2]
    for _, ipconfig in nic_ipconfigs(state, sub):
        if same(ref_id(ipconfig.get("properties", {}).get("subnet")), subnet_id):
            out.append(ipconfig["id"])
    for lb in state.of_type(LB_TYPE, sub):
        for fe in lb.props.get("frontendIPConfigurations") or []:
            if same(ref_id(fe.get("properties", {}).get("subnet")), subnet_id):
                out.append(fe["id"])
    return out


def user_of_public_ip(state, pip_id, ignore=()):
    """The id of the ip configuration (NIC or LB frontend) using a public IP, or None."""
    ignore = {i.lower() for i in ignore}
    sub = pip_id.split("/")[2]
    for _, ipconfig in nic_ipconfigs(state, sub):
        if ipconfig["id"].lower() in ignore:
            continue
        if same(ref_id(ipconfig.get("properties", {}).get("publicIPAddress")), pip_id):
            return ipconfig["id"]
    for lb in state.of_type(LB_TYPE, sub):
        for fe in lb.props.get("frontendIPConfigurations") or []:
            if fe["id"].lower() in ignore:
                continue
            if same(ref_id(fe.get("properties", {}).get("publicIPAddress")), pip_id):
                return fe["id"]
    return None


# ---------------------------------------------------------------------------
# Virtual networks and subnets
# ---------------------------------------------------------------------------

def create_vnet(state, subscription_id, resource_group, name, location, address_prefix, subnets):
    vnet_id = "%s/virtualNetworks/%s" % (rg_path(state, subscription_id, resource_group), name)
    prefixes = address_prefix if isinstance(address_prefix, list) else [address_prefix]
    body = {
        "id": vnet_id, "name": name, "type": VNET_TYPE, "location": location, "etag": etag(), "tags": {},
        "properties": {
            "provisioningState": "Succeeded",
            "resourceGuid": str(uuid.uuid4()),
            "addressSpace": {"addressPrefixes": list(prefixes)},
            "subnets": [],
            "virtualNetworkPeerings": [],
            "enableDdosProtection": False,
        },
    }
    vnet = state.add(Resource(vnet_id, VNET_TYPE, body))
    for subnet in subnets:
        add_subnet(state, vnet, subnet["name"], subnet["address_prefix"])
    return vnet


def add_subnet(state, vnet, name, address_prefix, extra=None):
    subnet_id = "%s/subnets/%s" % (vnet.id, name)
    props = dict(copy.deepcopy(extra or {}))
    props.update({"provisioningState": "Succeeded", "addressPrefix": address_prefix})
    props.setdefault("privateEndpointNetworkPolicies", "Disabled")
    props.setdefault("privateLinkServiceNetworkPolicies", "Enabled")
    body = {"id": subnet_id, "name": name, "type": SUBNET_TYPE, "etag": vnet.body.get("etag") or etag(),
            "properties": props}
    subnet = state.add(Resource(subnet_id, SUBNET_TYPE, body, emu={"next_host": 4, "allocated": {}}))
    refresh_vnet(state, vnet)
    return subnet


def subnets_of(state, vnet):
    return state.children(vnet.id, SUBNET_TYPE)


def render_subnet(state, subnet):
    body = copy.deepcopy(subnet.body)
    props = body.setdefault("properties", {})
    users = users_of_subnet(state, subnet.id)
    if users:
        props["ipConfigurations"] = [{"id": user} for user in users]
    else:
        props.pop("ipConfigurations", None)
    return body


def render_vnet(state, vnet):
    body = copy.deepcopy(vnet.body)
    body.setdefault("properties", {})["subnets"] = [render_subnet(state, s) for s in subnets_of(state, vnet)]
    return body


def refresh_vnet(state, vnet):
    """Store the derived view in the VNet body (what Resource Graph sees) and record the change."""
    if state.get(vnet.id) is not vnet:
        return
    vnet.props["subnets"] = [render_subnet(state, s) for s in subnets_of(state, vnet)]
    state.save(vnet)


def parse_prefix(text, owner_id, prop="addressPrefix"):
    try:
        return ipaddress.ip_network(str(text), strict=False)
    except ValueError:
        raise ArmError(400, "InvalidAddressPrefixFormat", "Address prefix %s of resource %s is not formatted "
                       "correctly. It should follow CIDR notation, for example 10.0.0.0/24." % (text, owner_id),
                       target=prop)


def subnet_prefixes(props):
    if props.get("addressPrefix"):
        return [props["addressPrefix"]]
    return list(props.get("addressPrefixes") or [])


def check_subnets(vnet_name, vnet_id, address_prefixes, subnets):
    """``subnets`` is [(name, [prefix, ...])]: each inside the address space, none overlapping."""
    space = [parse_prefix(p, vnet_id, "addressSpace") for p in address_prefixes]
    seen = []
    for name, prefixes in subnets:
        for text in prefixes:
            net = parse_prefix(text, "%s/subnets/%s" % (vnet_id, name))
            if not any(net.version == s.version and net.subnet_of(s) for s in space):
                raise ArmError(400, "NetcfgSubnetRangeOutsideVnet",
                               "Subnet '%s' is not valid because its IP address range is outside the IP address "
                               "range of virtual network '%s'." % (name, vnet_name))
            for other_name, other in seen:
                if other.version == net.version and other.overlaps(net):
                    raise ArmError(400, "NetcfgSubnetRangesOverlap",
                                   "Subnet '%s' is not valid because its IP address range overlaps with that of an "
                                   "existing subnet '%s' in virtual network '%s'." % (name, other_name, vnet_name))
            seen.append((name, net))


def in_use_subnet_error(subnet, users):
    return ArmError(400, "InUseSubnetCannotBeDeleted",
                    "Subnet %s is in use by %s and cannot be deleted. In order to delete the subnet, delete all the "
                    "resources within the subnet. See aka.ms/deletesubnet." % (subnet.name, " and ".join(users)))


def allocate_private_ip(state, subnet, requested=None, owner_id=None):
    network = ipaddress.ip_network(subnet_prefixes(subnet.props)[0], strict=False)
    allocated = subnet.emu.setdefault("allocated", {})
    taken = {cfg.get("privateIPAddress"): key for key, cfg in allocated.items()}
    if requested:
        try:
            address = ipaddress.ip_address(requested)
        except ValueError:
            raise ArmError(400, "InvalidParameter", "The private IP address %s is not a valid IP address."
                           % requested, target="privateIPAddress")
        if address not in network or int(address) - int(network.network_address) < 4 or \
                address == network.broadcast_address:
            raise ArmError(400, "PrivateIPAddressNotInSubnet",
                           "IP configuration %s is using the private IP address %s which is not in the usable "
                           "address range of subnet %s (%s)." % (owner_id, requested, subnet.id, network))
        holder = taken.get(str(address))
        if holder and holder != (owner_id or "").lower():
            raise ArmError(400, "PrivateIPAddressInUse",
                           "IP configuration %s is using the private IP address %s which is already allocated to "
                           "resource %s." % (owner_id, requested, holder))
        return str(address)
    for host in range(4, network.num_addresses - 1):
        candidate = str(network.network_address + host)
        if candidate not in taken:
            return candidate
    raise ArmError(400, "SubnetIsFull", "Subnet %s with address prefix %s does not have enough capacity for 1 IP "
                   "addresses." % (subnet.name, network))


def release_ip(state, subnet_id, owner_id):
    subnet = state.get(subnet_id or "")
    if subnet is not None:
        subnet.emu.get("allocated", {}).pop(owner_id.lower(), None)


def reserve_ip(state, subnet_id, owner_id, address):
    subnet = state.get(subnet_id)
    if subnet is not None:
        subnet.emu.setdefault("allocated", {})[owner_id.lower()] = {"privateIPAddress": address}


# ---------------------------------------------------------------------------
# Public IP addresses
# ---------------------------------------------------------------------------

def next_public_ip(state):
    used = {pip.props.get("ipAddress") for pip in state.of_type(PIP_TYPE)}
    seq = 10
    while True:
        candidate = "20.%d.%d.%d" % (seq // 65536 % 256, seq // 256 % 256, seq % 256)
        if candidate not in used:
            return candidate
        seq += 1


def create_public_ip(state, subscription_id, resource_group, name, location, sku="Standard", zones=None):
    pip_id = "%s/publicIPAddresses/%s" % (rg_path(state, subscription_id, resource_group), name)
    body = {
        "id": pip_id, "name": name, "type": PIP_TYPE, "location": location, "etag": etag(), "tags": {},
        "sku": {"name": sku, "tier": "Regional"},
        "properties": {"provisioningState": "Succeeded", "resourceGuid": str(uuid.uuid4()),
                       "publicIPAddressVersion": "IPv4",
                       "publicIPAllocationMethod": "Static" if sku == "Standard" else "Dynamic",
                       "ipAddress": next_public_ip(state),
                       "idleTimeoutInMinutes": 4, "ipTags": []},
    }
    if zones:
        body["zones"] = [str(z) for z in zones]
    return state.add(Resource(pip_id, PIP_TYPE, body))


def render_public_ip(state, pip):
    body = copy.deepcopy(pip.body)
    user = user_of_public_ip(state, pip.id)
    if user:
        body["properties"]["ipConfiguration"] = {"id": user}
    else:
        body["properties"].pop("ipConfiguration", None)
    return body


def public_ip_in_use(pip, user):
    return ArmError(400, "PublicIPAddressCannotBeDeleted",
                    "Public IP address %s can not be deleted since it is still allocated to resource %s. In order to "
                    "delete the public IP, disassociate/detach the Public IP address from the resource.  To learn how "
                    "to do this, see aka.ms/deletepublicip." % (pip.id, user))


# ---------------------------------------------------------------------------
# Network interfaces
# ---------------------------------------------------------------------------

def create_nic(state, subscription_id, resource_group, name, location, subnet_id, backend_pool_ids=(),
               public_ip_id=None, tags=None):
    """A NIC with one primary IP configuration in ``subnet_id`` (private IP allocated here).

    Used by scenarios and by compute (scale-out): the NIC joins its backend
    pools at once, so V2 NAT rules give it a port mapping in creation order.
    """
    subnet = state.get(subnet_id or "")
    nic_id = "%s/networkInterfaces/%s" % (rg_path(state, subscription_id, resource_group), name)
    if subnet is None or subnet.type != SUBNET_TYPE:
        raise invalid_reference(subnet_id, nic_id)
    ipconfig_id = nic_id + "/ipConfigurations/ipconfig1"
    private_ip = allocate_private_ip(state, subnet)
    tag = etag()
    ipconfig = {
        "id": ipconfig_id, "name": "ipconfig1", "type": IPCONFIG_TYPE, "etag": tag,
        "properties": {
            "provisioningState": "Succeeded",
            "privateIPAddress": private_ip,
            "privateIPAllocationMethod": "Dynamic",
            "privateIPAddressVersion": "IPv4",
            "subnet": {"id": subnet.id},
            "primary": True,
            "loadBalancerBackendAddressPools": [{"id": pool} for pool in backend_pool_ids],
            "loadBalancerInboundNatRules": [],
        },
    }
    if public_ip_id:
        ipconfig["properties"]["publicIPAddress"] = {"id": public_ip_id}
    body = {
        "id": nic_id, "name": name, "type": NIC_TYPE, "location": location, "etag": tag,
        "tags": dict(tags or {}),
        "properties": {"provisioningState": "Succeeded", "resourceGuid": str(uuid.uuid4()),
                       "ipConfigurations": [ipconfig], "dnsSettings": {"dnsServers": [], "appliedDnsServers": []},
                       "enableAcceleratedNetworking": False, "enableIPForwarding": False, "nicType": "Standard",
                       "macAddress": "00-0D-3A-%02X-%02X-%02X" % tuple(uuid.uuid4().bytes[:3]),
                       "primary": True},
    }
    nic = state.add(Resource(nic_id, NIC_TYPE, body))
    reserve_ip(state, subnet.id, ipconfig_id, private_ip)
    sync_pools(state, backend_pool_ids)
    return nic


def release_nic(state, nic):
    """Free the NIC's private IPs and its pool memberships (the NIC itself is removed by the caller)."""
    pool_ids = []
    for ipconfig in nic.props.get("ipConfigurations", []):
        props = ipconfig.get("properties", {})
        release_ip(state, ref_id(props.get("subnet")), ipconfig["id"])
        pool_ids.extend(ref_id(ref) for ref in props.get("loadBalancerBackendAddressPools") or [] if ref_id(ref))
    nic.emu["released"] = True
    sync_pools(state, pool_ids)


def render_nic(state, nic):
    return copy.deepcopy(nic.body)


def nic_in_use(nic, owner):
    return ArmError(400, "NicInUse",
                    "Network Interface %s is used by existing resource %s. In order to delete the network interface, "
                    "it must be dissociated from the resource. To learn more, see aka.ms/deletenic." % (nic.id, owner))


def nic_ids_of_vm(vm):
    return [ref["id"] for ref in vm.props.get("networkProfile", {}).get("networkInterfaces", [])]


def lbs_of_refs(state, ids):
    out = {}
    for item_id in ids:
        lb_id = parent_lb_id(item_id)
        lb = state.get(lb_id) if lb_id else None
        if lb is not None and lb.type == LB_TYPE:
            out[lb.key] = lb
    return list(out.values())


# ---------------------------------------------------------------------------
# Load balancers
# ---------------------------------------------------------------------------

def create_load_balancer(state, subscription_id, resource_group, name, location, sku, frontends, pools):
    """A load balancer; ``frontends`` is [{name, public_ip_id}], ``pools`` is [name]."""
    lb_id = "%s/loadBalancers/%s" % (rg_path(state, subscription_id, resource_group), name)
    tag = etag()
    body = {
        "id": lb_id, "name": name, "type": LB_TYPE, "location": location, "etag": tag, "tags": {},
        "sku": {"name": sku, "tier": "Regional"},
        "properties": {
            "provisioningState": "Succeeded",
            "resourceGuid": str(uuid.uuid4()),
            "frontendIPConfigurations": [
                {"id": "%s/frontendIPConfigurations/%s" % (lb_id, fe["name"]), "name": fe["name"],
                 "type": LB_TYPE + "/frontendIPConfigurations", "etag": tag,
                 "properties": {"provisioningState": "Succeeded", "privateIPAllocationMethod": "Dynamic",
                                "publicIPAddress": {"id": fe["public_ip_id"]}}}
                for fe in frontends
            ],
            "backendAddressPools": [
                {"id": "%s/backendAddressPools/%s" % (lb_id, pool), "name": pool,
                 "type": LB_TYPE + "/backendAddressPools", "etag": tag,
                 "properties": {"provisioningState": "Succeeded", "loadBalancerBackendAddresses": []}}
                for pool in pools
            ],
            "loadBalancingRules": [],
            "probes": [],
            "inboundNatRules": [],
            "inboundNatPools": [],
            "outboundRules": [],
        },
    }
    return state.add(Resource(lb_id, LB_TYPE, body))


def render_nat_rule(state, rule):
    body = copy.deepcopy(rule.body)
    props = body.setdefault("properties", {})
    props.pop("backendIPConfiguration", None)
    if props.get("frontendPort") is not None and not props.get("backendAddressPool"):
        _, ipconfig = bound_ipconfig(state, rule.id)
        if ipconfig is not None:
            props["backendIPConfiguration"] = {"id": ipconfig["id"]}
    return body


def _append(item, key, value):
    item.setdefault("properties", {}).setdefault(key, []).append({"id": value})


def render_lb(state, lb):
    """The load balancer as Azure shows it: NAT rules inline, back references and pool members derived."""
    sync_lb(state, lb)
    body = copy.deepcopy(lb.body)
    props = body.setdefault("properties", {})
    for key in LB_COLLECTIONS:
        props.setdefault(key, [])
        for item in props[key]:
            item_props = item.setdefault("properties", {})
            for derived in LB_DERIVED[key]:
                item_props.pop(derived, None)
    rules = [render_nat_rule(state, rule) for rule in nat_rules_of(state, lb)]
    props["inboundNatRules"] = rules
    fes = {fe["id"].lower(): fe for fe in props["frontendIPConfigurations"]}
    pools = {pool["id"].lower(): pool for pool in props["backendAddressPools"]}
    probes = {probe["id"].lower(): probe for probe in props["probes"]}

    def lookup(table, ref):
        return table.get((ref_id(ref) or "").lower())

    for rule in rules:
        rule_props = rule["properties"]
        fe = lookup(fes, rule_props.get("frontendIPConfiguration"))
        if fe is not None:
            _append(fe, "inboundNatRules", rule["id"])
        pool = lookup(pools, rule_props.get("backendAddressPool"))
        if pool is not None:
            _append(pool, "inboundNatRules", rule["id"])
    for lbr in props["loadBalancingRules"]:
        lbr_props = lbr.get("properties", {})
        fe = lookup(fes, lbr_props.get("frontendIPConfiguration"))
        if fe is not None:
            _append(fe, "loadBalancingRules", lbr["id"])
        pool_refs = list(lbr_props.get("backendAddressPools") or [])
        if lbr_props.get("backendAddressPool"):
            pool_refs.append(lbr_props["backendAddressPool"])
        for pool_id in {(ref_id(r) or "").lower() for r in pool_refs}:
            if pool_id in pools:
                _append(pools[pool_id], "loadBalancingRules", lbr["id"])
        probe = lookup(probes, lbr_props.get("probe"))
        if probe is not None:
            _append(probe, "loadBalancingRules", lbr["id"])
    for nat_pool in props["inboundNatPools"]:
        fe = lookup(fes, nat_pool.get("properties", {}).get("frontendIPConfiguration"))
        if fe is not None:
            _append(fe, "inboundNatPools", nat_pool["id"])
    for outbound in props["outboundRules"]:
        out_props = outbound.get("properties", {})
        for ref in out_props.get("frontendIPConfigurations") or []:
            fe = lookup(fes, ref)
            if fe is not None:
                _append(fe, "outboundRules", outbound["id"])
        pool = lookup(pools, out_props.get("backendAddressPool"))
        if pool is not None:
            pool["properties"]["outboundRule"] = {"id": outbound["id"]}
            _append(pool, "outboundRules", outbound["id"])
    for pool in pools.values():
        pool_props = pool["properties"]
        addresses = [a for a in pool_props.get("loadBalancerBackendAddresses") or []
                     if not (a.get("properties") or {}).get("networkInterfaceIPConfiguration")]
        members = pool_members(state, pool["id"])
        if members:
            pool_props["backendIPConfigurations"] = [{"id": ipconfig["id"]} for _, ipconfig in members]
        for nic, ipconfig in members:
            entry_props = {"networkInterfaceIPConfiguration": {"id": ipconfig["id"]}}
            mappings = port_mappings_for(state, lb, pool["id"], ipconfig["id"], with_protocol=False)
            if mappings:
                entry_props["inboundNatRulesPortMapping"] = mappings
            addresses.append({"name": "%s_%s" % (nic.name, ipconfig["name"]), "properties": entry_props})
        pool_props["loadBalancerBackendAddresses"] = addresses
    return body


def refresh_lb(state, lb):
    """Store the derived view in the load balancer body (what Resource Graph sees) and record the change."""
    if lb is None or state.get(lb.id) is not lb:
        return
    rendered = render_lb(state, lb)
    lb.body["properties"] = rendered["properties"]
    state.save(lb)


def touch_lbs(state, lbs):
    for lb in lbs:
        if lb is not None:
            refresh_lb(state, lb)


def lb_in_use_by_scale_set(state, lb):
    """A scale set whose model names one of the load balancer's pools (Azure refuses to delete the LB)."""
    prefix = lb.id.lower() + "/"
    for vmss in state.of_type(VMSS_TYPE, lb.subscription_id):
        profile = vmss.props.get("virtualMachineProfile") or {}
        for nic_config in (profile.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []:
            for ipconfig in (nic_config.get("properties") or {}).get("ipConfigurations") or []:
                ip_props = ipconfig.get("properties") or {}
                for key in ("loadBalancerBackendAddressPools", "loadBalancerInboundNatPools"):
                    for ref in ip_props.get(key) or []:
                        if (ref_id(ref) or "").lower().startswith(prefix):
                            return vmss
    return None


def build_lb_items(lb_id, props, previous=None):
    """Normalise the inline sub-resources of a load balancer PUT (names -> ids, derived fields dropped)."""
    out = {}
    previous = previous or {}
    for key in LB_COLLECTIONS:
        items = []
        names = set()
        old = {item["name"].lower(): item for item in previous.get(key) or [] if item.get("name")}
        for raw in props.get(key) or []:
            if not isinstance(raw, dict):
                raise ArmError(400, "InvalidRequestFormat", "Cannot parse the request: %s must be a list of objects."
                               % key)
            name = raw.get("name") or (raw.get("id") or "").rstrip("/").split("/")[-1]
            if not name:
                raise ArmError(400, "InvalidRequestFormat", "Cannot parse the request: an item of %s has no name."
                               % key, target=key)
            if name.lower() in names:
                raise ArmError(400, "InvalidRequestFormat", "Resource %s/%s/%s appears more than once in the request."
                               % (lb_id, key, name))
            names.add(name.lower())
            item_props = copy.deepcopy(raw.get("properties") or {})
            for derived in LB_DERIVED[key] + ("provisioningState",):
                item_props.pop(derived, None)
            if key == "backendAddressPools":
                item_props["loadBalancerBackendAddresses"] = [
                    a for a in item_props.get("loadBalancerBackendAddresses") or []
                    if not (a.get("properties") or {}).get("networkInterfaceIPConfiguration")]
            item_id = "%s/%s/%s" % (lb_id, key, name)
            kept = old.get(name.lower())
            if kept is not None and key == "frontendIPConfigurations":
                for carry in ("privateIPAddress",):
                    if carry in kept.get("properties", {}) and not item_props.get(carry):
                        item_props[carry] = kept["properties"][carry]
            item_props["provisioningState"] = "Succeeded"
            item = {"id": item_id, "name": name, "type": "%s/%s" % (LB_TYPE, key), "properties": item_props}
            if raw.get("zones") and key == "frontendIPConfigurations":
                item["zones"] = [str(z) for z in raw["zones"]]
            items.append(item)
        out[key] = items
    return out


def validate_lb_items(state, lb_id, sku, items):
    """References between the inline sub-resources, and frontends' public IPs and subnets."""
    ids = {key: {item["id"].lower() for item in items[key]} for key in LB_COLLECTIONS}

    def need(ref, key, owner):
        target = ref_id(ref)
        if target and target.lower() not in ids[key]:
            raise invalid_reference(target, owner)

    for fe in items["frontendIPConfigurations"]:
        fe_props = fe["properties"]
        pip_id = ref_id(fe_props.get("publicIPAddress"))
        subnet_id = ref_id(fe_props.get("subnet"))
        if pip_id:
            pip = state.get(pip_id)
            if pip is None or pip.type != PIP_TYPE:
                raise invalid_reference(pip_id, fe["id"])
            pip_sku = (pip.body.get("sku") or {}).get("name", "Basic")
            if pip_sku.lower() != sku.lower():
                raise ArmError(400, "DifferentSkuLoadBalancersAndPublicIPAddressNotAllowed",
                               "Standard sku load balancer /public IP resources should be used together: load "
                               "balancer %s has sku %s, public IP %s has sku %s."
                               % (lb_id, sku, pip.id, pip_sku))
            user = user_of_public_ip(state, pip.id, ignore=[fe["id"]])
            if user and not same(parent_lb_id(user), lb_id):
                raise ArmError(400, "PublicIPAddressInUse",
                               "Resource %s is referencing public IP address %s that is already allocated to "
                               "resource %s." % (fe["id"], pip.id, user))
        elif subnet_id:
            subnet = state.get(subnet_id)
            if subnet is None or subnet.type != SUBNET_TYPE:
                raise invalid_reference(subnet_id, fe["id"])
        else:
            raise ArmError(400, "InvalidRequestFormat",
                           "Frontend IP configuration %s must reference either a public IP address or a subnet."
                           % fe["id"], target="frontendIPConfigurations")
    for lbr in items["loadBalancingRules"]:
        p = lbr["properties"]
        need(p.get("frontendIPConfiguration"), "frontendIPConfigurations", lbr["id"])
        need(p.get("backendAddressPool"), "backendAddressPools", lbr["id"])
        for ref in p.get("backendAddressPools") or []:
            need(ref, "backendAddressPools", lbr["id"])
        need(p.get("probe"), "probes", lbr["id"])
        if not ref_id(p.get("frontendIPConfiguration")):
            raise ArmError(400, "InvalidParameter", "Load balancing rule %s must reference a frontend IP "
                           "configuration." % lbr["id"], target="frontendIPConfiguration")
        p["protocol"] = normalise_protocol(p.get("protocol"), lbr["id"])
        for prop, high in (("frontendPort", 65534), ("backendPort", 65535)):
            if p.get(prop) is not None:
                value = as_int(p[prop], prop, lbr["id"])
                if not 0 <= value <= high:
                    raise bad_value(prop, value, lbr["id"], 0, high)
        p.setdefault("idleTimeoutInMinutes", 4)
        p.setdefault("enableFloatingIP", False)
        p.setdefault("loadDistribution", "Default")
    for nat_pool in items["inboundNatPools"]:
        p = nat_pool["properties"]
        need(p.get("frontendIPConfiguration"), "frontendIPConfigurations", nat_pool["id"])
        p["protocol"] = normalise_protocol(p.get("protocol"), nat_pool["id"])
    for outbound in items["outboundRules"]:
        p = outbound["properties"]
        for ref in p.get("frontendIPConfigurations") or []:
            need(ref, "frontendIPConfigurations", outbound["id"])
        need(p.get("backendAddressPool"), "backendAddressPools", outbound["id"])
    for probe in items["probes"]:
        p = probe["properties"]
        if p.get("port") is not None:
            value = as_int(p["port"], "port", probe["id"])
            if not 1 <= value <= 65535:
                raise bad_value("port", value, probe["id"], 1, 65535)
        p.setdefault("intervalInSeconds", 15)
        p.setdefault("numberOfProbes", 2)


def normalise_protocol(value, owner_id):
    if value is None:
        raise ArmError(400, "InvalidParameter", "Required property 'protocol' of resource %s is missing." % owner_id,
                       target="protocol")
    proto = PROTOCOLS.get(str(value).lower())
    if proto is None:
        raise ArmError(400, "InvalidParameter", "The value %s of property 'protocol' of resource %s is invalid. "
                       "Allowed values are Tcp, Udp, All." % (value, owner_id), target="protocol")
    return proto


# ---------------------------------------------------------------------------
# Inbound NAT rules (V1: one NIC ip configuration; V2: a backend pool and a port range)
# ---------------------------------------------------------------------------

NAT_RULE_PROPS = ("frontendIPConfiguration", "protocol", "frontendPort", "backendPort", "idleTimeoutInMinutes",
                  "enableFloatingIP", "enableTcpReset", "frontendPortRangeStart", "frontendPortRangeEnd",
                  "backendAddressPool")


def nat_rule_id(lb_id, name):
    return "%s/inboundNatRules/%s" % (lb_id, name)


def normalise_nat_rule(lb_id, name, raw_props):
    """The stored properties of a NAT rule from a request (unknown and read-only fields dropped)."""
    raw_props = raw_props or {}
    props = {}
    for key in NAT_RULE_PROPS:
        value = raw_props.get(key)
        if value is None:
            continue
        if key in ("frontendIPConfiguration", "backendAddressPool"):
            if ref_id(value):
                props[key] = {"id": ref_id(value)}
        else:
            props[key] = copy.deepcopy(value)
    return props


def _frontend_span(props):
    if props.get("frontendPort") is not None:
        port = int(props["frontendPort"])
        return port, port
    if props.get("frontendPortRangeStart") is not None and props.get("frontendPortRangeEnd") is not None:
        return int(props["frontendPortRangeStart"]), int(props["frontendPortRangeEnd"])
    return None


def _protocols_overlap(a, b):
    a, b = (a or "").lower(), (b or "").lower()
    return a == b or "all" in (a, b)


def _describe_span(span):
    return str(span[0]) if span[0] == span[1] else "%d-%d" % span


def validate_nat_rule(state, rule_id, props, lb_view, others):
    """Validate (and complete) one NAT rule's properties in place, as NRP does.

    ``lb_view``: {"id", "sku", "frontendIPConfigurations", "backendAddressPools",
    "inboundNatPools", "loadBalancingRules"} of the load balancer as it will be;
    ``others``: [(rule id, props)] of the load balancer's other NAT rules.
    """
    fe_ref = ref_id(props.get("frontendIPConfiguration"))
    if not fe_ref:
        raise ArmError(400, "InvalidParameter", "Required property 'frontendIPConfiguration' of inbound NAT rule %s "
                       "is missing." % rule_id, target="frontendIPConfiguration")
    fe = next((f for f in lb_view["frontendIPConfigurations"] if same(f["id"], fe_ref)), None)
    if fe is None:
        raise invalid_reference(fe_ref, rule_id)
    props["frontendIPConfiguration"] = {"id": fe["id"]}
    props["protocol"] = normalise_protocol(props.get("protocol"), rule_id)
    has_port = props.get("frontendPort") is not None
    has_range = props.get("frontendPortRangeStart") is not None or props.get("frontendPortRangeEnd") is not None
    pool_ref = ref_id(props.get("backendAddressPool"))
    if has_port and has_range:
        raise ArmError(400, "UnsupportedSetOfInboundNatRulePropertiesWhenFrontendPortIsSpecified",
                       "If FrontendPort %s is set, properties FrontendPortRangeStart, FrontendPortRangeEnd should be "
                       "null." % props["frontendPort"])
    if pool_ref and (props.get("frontendPortRangeStart") is None or props.get("frontendPortRangeEnd") is None):
        raise ArmError(400, "MissedInboundNatRuleV2Properties",
                       "For inbound Nat rule V2 properties FrontendPortRangeStart, FrontendPortRangeEnd should not be "
                       "null.")
    if not has_port and not has_range:
        raise ArmError(400, "InvalidParameter", "Inbound NAT rule %s must specify either frontendPort or "
                       "frontendPortRangeStart and frontendPortRangeEnd." % rule_id, target="frontendPort")
    if has_range and (props.get("frontendPortRangeStart") is None or props.get("frontendPortRangeEnd") is None):
        missing = "frontendPortRangeEnd" if props.get("frontendPortRangeEnd") is None else "frontendPortRangeStart"
        raise ArmError(400, "InvalidParameter", "Required property '%s' of inbound NAT rule %s is missing."
                       % (missing, rule_id), target=missing)
    for prop, low, high in (("frontendPort", 1, 65534), ("frontendPortRangeStart", 1, 65534),
                            ("frontendPortRangeEnd", 1, 65534), ("backendPort", 1, 65535),
                            ("idleTimeoutInMinutes", 4, 30)):
        if props.get(prop) is None:
            continue
        value = as_int(props[prop], prop, rule_id)
        if not low <= value <= high:
            raise bad_value(prop, value, rule_id, low, high)
        props[prop] = value
    if props.get("backendPort") is None:
        raise ArmError(400, "InvalidParameter", "Required property 'backendPort' of inbound NAT rule %s is missing."
                       % rule_id, target="backendPort")
    if has_range and props["frontendPortRangeStart"] > props["frontendPortRangeEnd"]:
        raise ArmError(400, "InvalidParameter", "The value %s of property 'frontendPortRangeEnd' of inbound NAT rule "
                       "%s must not be smaller than frontendPortRangeStart %s."
                       % (props["frontendPortRangeEnd"], rule_id, props["frontendPortRangeStart"]),
                       target="frontendPortRangeEnd")
    props.setdefault("idleTimeoutInMinutes", 4)
    props.setdefault("enableFloatingIP", False)
    props.setdefault("enableTcpReset", False)
    pool = None
    if pool_ref:
        if (lb_view.get("sku") or "Basic").lower() == "basic":
            raise ArmError(400, "InboundNatRuleV2NotSupportedOnBasicSku",
                           "Inbound NAT rule %s references backend address pool %s, but inbound NAT rules with a "
                           "backend address pool (V2) are only supported on Standard SKU load balancers."
                           % (rule_id, pool_ref))
        pool = next((p for p in lb_view["backendAddressPools"] if same(p["id"], pool_ref)), None)
        if pool is None:
            raise invalid_reference(pool_ref, rule_id)
        props["backendAddressPool"] = {"id": pool["id"]}
    span = _frontend_span(props)
    conflicts = [(oid, _frontend_span(o), o.get("protocol")) for oid, o in others
                 if same(ref_id(o.get("frontendIPConfiguration")), fe["id"])]
    for nat_pool in lb_view.get("inboundNatPools") or []:
        p = nat_pool.get("properties") or {}
        if same(ref_id(p.get("frontendIPConfiguration")), fe["id"]) and p.get("frontendPortRangeStart") is not None:
            conflicts.append((nat_pool["id"], (int(p["frontendPortRangeStart"]), int(p["frontendPortRangeEnd"])),
                              p.get("protocol")))
    for lbr in lb_view.get("loadBalancingRules") or []:
        p = lbr.get("properties") or {}
        if same(ref_id(p.get("frontendIPConfiguration")), fe["id"]) and p.get("frontendPort"):
            port = int(p["frontendPort"])
            conflicts.append((lbr["id"], (port, port), p.get("protocol")))
    for other_id, other_span, other_proto in conflicts:
        if other_span is None or not _protocols_overlap(props["protocol"], other_proto):
            continue
        if span[0] <= other_span[1] and other_span[0] <= span[1]:
            raise ArmError(400, "InboundNatRuleFrontendPortConflict",
                           "Inbound NAT rule %s uses frontend port %s with protocol %s on frontend IP configuration "
                           "%s, which overlaps with frontend port %s of %s."
                           % (rule_id, _describe_span(span), props["protocol"], fe["id"],
                              _describe_span(other_span), other_id))
    if pool is not None:
        members = len(pool_members(state, pool["id"]))
        size = span[1] - span[0] + 1
        if members > size:
            raise range_insufficient(rule_id, span, pool["id"], members)
    return props


def range_insufficient(rule_id, span, pool_id, members):
    return ArmError(400, "InboundNatRuleV2PortRangeInsufficient",
                    "The frontend port range %d-%d of inbound NAT rule %s provides %d port(s), but backend address "
                    "pool %s needs %d: one for each of its members." % (span[0], span[1], rule_id,
                                                                        span[1] - span[0] + 1, pool_id, members))


def new_nat_rule(lb, name, props):
    rule_id = nat_rule_id(lb.id, name)
    body = {"id": rule_id, "name": name, "type": NAT_RULE_TYPE, "etag": etag(),
            "properties": dict(props, provisioningState="Succeeded")}
    return Resource(rule_id, NAT_RULE_TYPE, body)


def lb_view(lb_body):
    props = lb_body.get("properties") or {}
    view = {key: props.get(key) or [] for key in LB_COLLECTIONS}
    view["id"] = lb_body["id"]
    view["sku"] = (lb_body.get("sku") or {}).get("name", "Basic")
    return view


def detach_rule(state, rule_id):
    """Remove a V1 rule's binding from the NIC ip configuration that names it; returns the NIC or None."""
    nic, ipconfig = bound_ipconfig(state, rule_id)
    if ipconfig is None:
        return None
    props = ipconfig["properties"]
    props["loadBalancerInboundNatRules"] = [r for r in props.get("loadBalancerInboundNatRules") or []
                                            if not same(ref_id(r), rule_id)]
    stamp(nic)
    state.save(nic)
    return nic


def detach_lb_refs(state, lb_id, keep_ids):
    """Drop NIC references to sub-resources of ``lb_id`` that no longer exist; returns the NICs changed."""
    keep = {i.lower() for i in keep_ids}
    prefix = lb_id.lower() + "/"
    changed = {}
    for nic, ipconfig in list(nic_ipconfigs(state, lb_id.split("/")[2])):
        props = ipconfig["properties"]
        for key in ("loadBalancerBackendAddressPools", "loadBalancerInboundNatRules"):
            refs = props.get(key) or []
            kept = [r for r in refs if not ((ref_id(r) or "").lower().startswith(prefix)
                                            and (ref_id(r) or "").lower() not in keep)]
            if len(kept) != len(refs):
                props[key] = kept
                changed[nic.key] = nic
    for nic in changed.values():
        stamp(nic)
        state.save(nic)
    return list(changed.values())


def scenario_nat_rule(state, lb, spec):
    """A NAT rule from a scenario: V1 {name, frontend, protocol, frontend_port, backend_port, nic?} or
    V2 {name, frontend, backend_pool, frontend_port_range_start, frontend_port_range_end, backend_port}."""
    name = spec["name"]
    fe_name = spec.get("frontend") or (lb.props.get("frontendIPConfigurations") or [{}])[0].get("name", "fe")
    raw = {"frontendIPConfiguration": {"id": "%s/frontendIPConfigurations/%s" % (lb.id, fe_name)},
           "protocol": spec.get("protocol", "Tcp"), "backendPort": spec.get("backend_port")}
    for key, wire in (("frontend_port", "frontendPort"), ("frontend_port_range_start", "frontendPortRangeStart"),
                      ("frontend_port_range_end", "frontendPortRangeEnd"),
                      ("idle_timeout_in_minutes", "idleTimeoutInMinutes"), ("enable_floating_ip", "enableFloatingIP"),
                      ("enable_tcp_reset", "enableTcpReset")):
        if spec.get(key) is not None:
            raw[wire] = spec[key]
    if spec.get("backend_pool"):
        raw["backendAddressPool"] = {"id": "%s/backendAddressPools/%s" % (lb.id, spec["backend_pool"])}
    rule_id = nat_rule_id(lb.id, name)
    props = normalise_nat_rule(lb.id, name, raw)
    others = [(r.id, r.props) for r in nat_rules_of(state, lb) if not same(r.id, rule_id)]
    validate_nat_rule(state, rule_id, props, lb_view(lb.body), others)
    rule = state.add(new_nat_rule(lb, name, props))
    if spec.get("nic"):
        nic_id = "%s/networkInterfaces/%s" % ("/".join(lb.id.split("/")[:7]), spec["nic"])
        nic = state.get(nic_id)
        if nic is None or nic.type != NIC_TYPE:
            raise invalid_reference(nic_id, rule_id)
        ipconfig = nic.props["ipConfigurations"][0]
        ipconfig["properties"].setdefault("loadBalancerInboundNatRules", []).append({"id": rule.id})
        state.save(nic)
    refresh_lb(state, lb)
    return rule


# ---------------------------------------------------------------------------
# V2 port mappings
# ---------------------------------------------------------------------------

def sync_rule(state, rule):
    """Bring a V2 rule's port assignments up to date with its pool's members.

    A member keeps its port for as long as it stays in the pool; a new member
    gets the lowest free port of the range. Members found at the same time (all
    of them when the rule is created or its range changes) are served in the
    order of the ``nat_v2_port_order`` setting: the order the pool lists them
    (NIC creation order), or by ip configuration id. A member that leaves the
    pool releases its port, unless the ``nat_v2_keep_removed_mappings`` setting
    keeps it reserved.
    """
    props = rule.props
    pool_id = ref_id(props.get("backendAddressPool"))
    start, end = props.get("frontendPortRangeStart"), props.get("frontendPortRangeEnd")
    if not pool_id or start is None or end is None:
        rule.emu.pop("mappings", None)
        rule.emu.pop("signature", None)
        return {}
    signature = (pool_id.lower(), int(start), int(end))
    if rule.emu.get("signature") != signature:
        rule.emu["signature"] = signature
        rule.emu["mappings"] = {}
    mappings = rule.emu.setdefault("mappings", {})
    keep_removed = bool(state.settings.get("nat_v2_keep_removed_mappings", False))
    current = {}
    for _, ipconfig in pool_members(state, pool_id):
        current[ipconfig["id"].lower()] = ipconfig["id"]
    if state.settings.get("nat_v2_port_order") == "name":
        current = dict(sorted(current.items()))
    for key in list(mappings):
        if key not in current:
            if keep_removed:
                mappings[key]["removed"] = True
            else:
                del mappings[key]
    used = {entry["port"] for entry in mappings.values()}
    port = int(start)
    for key, ipconfig_id in current.items():
        entry = mappings.get(key)
        if entry is not None:
            entry["removed"] = False
            entry["id"] = ipconfig_id
            continue
        while port <= int(end) and port in used:
            port += 1
        if port > int(end):
            continue  # range exhausted: Azure blocks the scale-out; this member gets no mapping
        mappings[key] = {"id": ipconfig_id, "port": port, "removed": False}
        used.add(port)
    return mappings


def sync_pools(state, pool_ids):
    """Update the V2 port assignments of the rules over these pools (members joined or left)."""
    for pool_id in {p.lower(): p for p in pool_ids or []}.values():
        for rule in v2_rules_of_pool(state, pool_id):
            sync_rule(state, rule)


def sync_lb(state, lb):
    for rule in nat_rules_of(state, lb):
        if rule.props.get("backendAddressPool"):
            sync_rule(state, rule)


def free_ports(state, rule):
    """How many more members a V2 rule's range can take."""
    mappings = sync_rule(state, rule)
    start, end = rule.props.get("frontendPortRangeStart"), rule.props.get("frontendPortRangeEnd")
    if start is None or end is None:
        return 0
    return int(end) - int(start) + 1 - len(mappings)


def v2_rules_of_pool(state, pool_id):
    lb_id = parent_lb_id(pool_id)
    if not lb_id:
        return []
    return [rule for rule in state.children(lb_id, NAT_RULE_TYPE)
            if same(ref_id(rule.props.get("backendAddressPool")), pool_id)]


def port_mappings_for(state, lb, pool_id, ipconfig_id, with_protocol=True):
    """[{inboundNatRuleName, protocol?, frontendPort, backendPort}] of one pool member."""
    out = []
    for rule in v2_rules_of_pool(state, pool_id):
        entry = sync_rule(state, rule).get(ipconfig_id.lower())
        if entry is None or entry.get("removed"):
            continue
        mapping = {"inboundNatRuleName": rule.name}
        if with_protocol:
            mapping["protocol"] = rule.props.get("protocol")
        mapping["frontendPort"] = entry["port"]
        mapping["backendPort"] = rule.props.get("backendPort")
        out.append(mapping)
    return out


def check_pool_capacity(state, pool_ids, extra=1):
    """Raise InboundNatRuleV2PortRangeInsufficient if ``extra`` new members would not fit a V2 rule's range.

    Compute may call this before a scale-out adds members to ``pool_ids``
    (Azure blocks a scale-out the frontend port range cannot serve).
    """
    for pool_id in pool_ids:
        for rule in v2_rules_of_pool(state, pool_id):
            if free_ports(state, rule) < extra:
                span = (int(rule.props["frontendPortRangeStart"]), int(rule.props["frontendPortRangeEnd"]))
                raise range_insufficient(rule.id, span, pool_id, len(pool_members(state, pool_id)) + extra)
