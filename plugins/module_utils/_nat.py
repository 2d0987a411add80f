# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""Inbound NAT rules for members of a Flexible scale set: validation, port assignment and planning.

Pure logic on REST-shaped dicts (no SDK, no I/O), so every decision is unit-tested directly. Three
kinds of request, told apart by their options:

* ``single``: one V1 rule (``frontendPort``) bound to one member's NIC ip configuration;
* ``per_instance``: the replacement for Uniform's NAT pool, one V1 rule per selected member, named
  ``<prefix>-<vm name>``. The name is the record of which member a rule belongs to, so a member keeps
  its frontend port across runs; new members get the lowest free port of the range, skipping ports
  used on the same frontend by any other rule (NAT rules V1 and V2, load-balancing rules, NAT pools);
* ``v2``: one V2 rule (``frontendPortRangeStart``/``End`` over a backend pool); Azure gives each pool
  member a port.

Everything a user can get wrong is refused here, before any request, with a message naming the options.
"""

from __future__ import annotations

import re

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import InvalidInputError


SINGLE = "single"
PER_INSTANCE = "per_instance"
V2 = "v2"

PROTOCOLS = ("Tcp", "Udp", "All")
FRONTEND_PORT_RANGE = (1, 65534)
BACKEND_PORT_RANGE = (1, 65535)
IDLE_TIMEOUT_RANGE = (4, 30)
RULE_NAME_MAX = 80

# Which options make which kind of rule (a boolean counts as given only when true).
KIND_OPTIONS = (
    (SINGLE, ("frontend_port",)),
    (PER_INSTANCE, ("frontend_port_start", "frontend_port_end", "purge")),
    (V2, ("frontend_port_range_start", "frontend_port_range_end", "backend_pool", "add_to_pool")),
)
KIND_DESCRIPTIONS = {
    SINGLE: "a V1 rule for one instance",
    PER_INSTANCE: "one V1 rule per instance",
    V2: "a V2 rule over a backend pool",
}

# NAT rule names: 1-80 letters, digits, '_', '.', '-'; starting with a letter or digit, ending with a
# letter, digit or '_'.
_RULE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?\Z")


class PortRangeExhaustedError(InvalidInputError):
    """The per-instance port range has no free port left for some members."""


# --------------------------------------------------------------------------------------------
# The request
# --------------------------------------------------------------------------------------------

def _given(value):
    return value is not None and value is not False


def _check_range(option, value, bounds):
    if value is None:
        return
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError("%s must be between %d and %d, got %r" % (option, low, high, value))


def validate_rule_name(name, what="name"):
    if not isinstance(name, str) or not _RULE_NAME.match(name):
        raise InvalidInputError(
            "%s %r is not a valid inbound NAT rule name: use 1-80 letters, digits, '_', '.' or '-', starting with a "
            "letter or digit and ending with a letter, digit or '_'" % (what, name))
    return name


class NatRequest:
    """The validated NAT options of a task (see ``from_params``)."""

    def __init__(self, **values):
        self.state = values.get("state") or "present"
        self.kind = values.get("kind") or SINGLE
        self.name = values.get("name")
        self.frontend_port = values.get("frontend_port")
        self.port_start = values.get("frontend_port_start")
        self.port_end = values.get("frontend_port_end")
        self.range_start = values.get("frontend_port_range_start")
        self.range_end = values.get("frontend_port_range_end")
        self.backend_port = values.get("backend_port")
        self.backend_pool = values.get("backend_pool")
        self.add_to_pool = bool(values.get("add_to_pool"))
        self.purge = bool(values.get("purge"))
        self.protocol = values.get("protocol") or "Tcp"
        self.idle_timeout = values.get("idle_timeout") or IDLE_TIMEOUT_RANGE[0]
        self.floating_ip = bool(values.get("enable_floating_ip"))
        self.tcp_reset = bool(values.get("enable_tcp_reset"))
        self.instances_given = values.get("instances") is not None

    @property
    def present(self):
        return self.state == "present"

    @classmethod
    def from_params(cls, params):
        """Validate the module parameters; raise ``InvalidInputError`` with a clear message."""
        given = [(kind, [option for option in options if _given(params.get(option))]) for kind, options in KIND_OPTIONS]
        given = [(kind, options) for kind, options in given if options]
        if len(given) > 1:
            raise InvalidInputError(
                "Options of different kinds of NAT rule cannot be mixed: %s. Use frontend_port for a V1 rule bound to "
                "one instance, frontend_port_start (and frontend_port_end, purge) for one V1 rule per instance, or "
                "frontend_port_range_start and frontend_port_range_end (and backend_pool, add_to_pool) for a V2 rule."
                % "; ".join("%s (%s)" % (", ".join(options), KIND_DESCRIPTIONS[kind]) for kind, options in given))
        kind = given[0][0] if given else SINGLE
        values = dict(params, kind=kind)
        request = cls(**values)
        request._validate(params)
        return request

    def _validate(self, params):
        if self.state not in ("present", "absent"):
            raise InvalidInputError("state must be present or absent, got %r" % (self.state,))
        validate_rule_name(self.name, "name (the rule name prefix)" if self.kind == PER_INSTANCE else "name")
        for option in ("frontend_port", "frontend_port_start", "frontend_port_end", "frontend_port_range_start",
                       "frontend_port_range_end"):
            _check_range(option, params.get(option), FRONTEND_PORT_RANGE)
        _check_range("backend_port", params.get("backend_port"), BACKEND_PORT_RANGE)
        _check_range("idle_timeout", params.get("idle_timeout"), IDLE_TIMEOUT_RANGE)
        if self.protocol not in PROTOCOLS:
            raise InvalidInputError("protocol must be one of %s, got %r" % (", ".join(PROTOCOLS), self.protocol))
        if self.kind == PER_INSTANCE:
            if self.port_start is None:
                raise InvalidInputError("frontend_port_end and purge need frontend_port_start (one V1 rule per instance)")
            if self.port_end is None:
                self.port_end = FRONTEND_PORT_RANGE[1]
            if self.port_end < self.port_start:
                raise InvalidInputError("frontend_port_end (%d) must not be smaller than frontend_port_start (%d)"
                                        % (self.port_end, self.port_start))
            if not self.instances_given:
                raise InvalidInputError("One V1 rule per instance needs instances (VM names or 'all')")
        if self.kind == V2 and (self.present or self.range_start is not None or self.range_end is not None):
            if self.range_start is None or self.range_end is None:
                raise InvalidInputError("A V2 rule needs both frontend_port_range_start and frontend_port_range_end")
            if self.range_end < self.range_start:
                raise InvalidInputError("frontend_port_range_end (%d) must not be smaller than frontend_port_range_start"
                                        " (%d)" % (self.range_end, self.range_start))
        if self.kind == V2 and self.add_to_pool and not self.instances_given:
            raise InvalidInputError("add_to_pool needs instances (the members whose NICs join the backend pool)")
        if not self.present:
            return
        if self.kind == SINGLE and self.frontend_port is None:
            raise InvalidInputError(
                "state=present needs frontend_port (a V1 rule for one instance), frontend_port_start (one V1 rule per "
                "instance) or frontend_port_range_start and frontend_port_range_end (a V2 rule)")
        if self.kind == SINGLE and not self.instances_given:
            raise InvalidInputError("A V1 rule with frontend_port is bound to one instance: name it in instances")
        if self.backend_port is None:
            raise InvalidInputError("state=present needs backend_port")

    def rule_name_for(self, member_name):
        """The per-instance rule name of a member: ``<prefix>-<vm name>``."""
        name = "%s-%s" % (self.name, member_name)
        if len(name) > RULE_NAME_MAX:
            raise InvalidInputError("The rule name %s (name prefix %s and VM name %s) is longer than %d characters; "
                                    "use a shorter name" % (name, self.name, member_name, RULE_NAME_MAX))
        return validate_rule_name(name, "rule name")

    def member_of_rule(self, rule_name):
        """The VM name a per-instance rule name stands for, or None when it is not one of ours."""
        prefix = (self.name + "-").lower()
        if not str(rule_name).lower().startswith(prefix) or len(rule_name) == len(prefix):
            return None
        return rule_name[len(prefix):]

    def desired_properties(self, frontend_id, frontend_port=None, pool_id=None):
        """REST ``properties`` of the rule this request wants."""
        props = {
            "frontendIPConfiguration": {"id": frontend_id},
            "protocol": self.protocol,
            "backendPort": self.backend_port,
            "idleTimeoutInMinutes": self.idle_timeout,
            "enableFloatingIP": self.floating_ip,
            "enableTcpReset": self.tcp_reset,
        }
        if self.kind == V2:
            props.update(frontendPortRangeStart=self.range_start, frontendPortRangeEnd=self.range_end,
                         backendAddressPool={"id": pool_id})
        else:
            props["frontendPort"] = frontend_port
        return props


# --------------------------------------------------------------------------------------------
# Reading a load balancer
# --------------------------------------------------------------------------------------------

def _ref(value):
    return value.get("id") if isinstance(value, dict) else None


def _int(value):
    return None if value is None else int(value)


def _same(first, second):
    return bool(first) and bool(second) and str(first).lower() == str(second).lower()


def rule_view(raw):
    """A NAT rule (REST layout, as in a load balancer's ``inboundNatRules``) as a flat dict."""
    props = raw.get("properties") or {}
    start, end = _int(props.get("frontendPortRangeStart")), _int(props.get("frontendPortRangeEnd"))
    return {
        "name": raw.get("name"),
        "id": raw.get("id"),
        "frontend_id": _ref(props.get("frontendIPConfiguration")),
        "protocol": props.get("protocol"),
        "frontend_port": _int(props.get("frontendPort")),
        "range": (start, end) if start is not None and end is not None else None,
        "backend_port": _int(props.get("backendPort")),
        "idle_timeout": _int(props.get("idleTimeoutInMinutes")),
        "floating_ip": bool(props.get("enableFloatingIP")),
        "tcp_reset": bool(props.get("enableTcpReset")),
        "pool_id": _ref(props.get("backendAddressPool")),
        "backend_ipconfig_id": _ref(props.get("backendIPConfiguration")),
    }


def nat_rules(lb):
    """The load balancer's inbound NAT rules as ``rule_view`` dicts, by lower-cased name."""
    return {str(raw.get("name")).lower(): rule_view(raw)
            for raw in (lb.get("properties") or {}).get("inboundNatRules") or [] if raw.get("name")}


def is_v2(view):
    return view["pool_id"] is not None or view["range"] is not None


def differs(view, props):
    """True when the existing rule ``view`` does not have the ``props`` a request wants."""
    wanted = rule_view({"properties": props})
    for key in ("protocol", "frontend_port", "range", "backend_port", "floating_ip", "tcp_reset"):
        if (str(view[key]).lower() if key == "protocol" else view[key]) != \
                (str(wanted[key]).lower() if key == "protocol" else wanted[key]):
            return True
    if (view["idle_timeout"] or IDLE_TIMEOUT_RANGE[0]) != wanted["idle_timeout"]:
        return True
    return not _same(view["frontend_id"], wanted["frontend_id"]) or \
        (view["pool_id"] or "").lower() != (wanted["pool_id"] or "").lower()


def pick_item(lb, collection, wanted, option, what):
    """A frontend or pool by name; with no name, the only one (refusing ambiguity)."""
    items = (lb.get("properties") or {}).get(collection) or []
    names = [item.get("name") for item in items]
    if wanted:
        for item in items:
            if str(item.get("name")).lower() == wanted.lower():
                return item
        raise InvalidInputError("Load balancer %s has no %s named %s (it has: %s)"
                                % (lb.get("name"), what, wanted, ", ".join(names) or "none"))
    if len(items) != 1:
        raise InvalidInputError("Load balancer %s has %d %ss (%s): name the one to use in %s"
                                % (lb.get("name"), len(items), what, ", ".join(names) or "none", option))
    return items[0]


class PortUse:
    """A span of frontend ports used by something on a frontend, with its protocol."""

    def __init__(self, start, end, protocol, owner):
        self.start = start
        self.end = end
        self.protocol = protocol
        self.owner = owner

    def overlaps(self, start, end, protocol):
        protocols = {str(self.protocol or "").lower(), str(protocol or "").lower()}
        if len(protocols) > 1 and "all" not in protocols:
            return False
        return self.start <= end and start <= self.end

    def describe(self):
        ports = str(self.start) if self.start == self.end else "%d-%d" % (self.start, self.end)
        return "%s (port %s, %s)" % (self.owner, ports, self.protocol)


def port_uses(lb, frontend_id, skip_rule_names=()):
    """What uses ports of the frontend ``frontend_id``: NAT rules (but those named in ``skip_rule_names``),
    load-balancing rules and NAT pools."""
    props = lb.get("properties") or {}
    skip = {str(name).lower() for name in skip_rule_names}
    uses = []
    for view in nat_rules(lb).values():
        if view["name"].lower() in skip or not _same(view["frontend_id"], frontend_id):
            continue
        span = view["range"] or ((view["frontend_port"],) * 2 if view["frontend_port"] is not None else None)
        if span:
            uses.append(PortUse(span[0], span[1], view["protocol"], "inbound NAT rule %s" % view["name"]))
    for rule in props.get("loadBalancingRules") or []:
        rule_props = rule.get("properties") or {}
        if not _same(_ref(rule_props.get("frontendIPConfiguration")), frontend_id):
            continue
        port = _int(rule_props.get("frontendPort"))
        span = (port, port) if port else (BACKEND_PORT_RANGE[0], BACKEND_PORT_RANGE[1])  # 0: HA ports, every port
        uses.append(PortUse(span[0], span[1], rule_props.get("protocol"), "load-balancing rule %s" % rule.get("name")))
    for nat_pool in props.get("inboundNatPools") or []:
        pool_props = nat_pool.get("properties") or {}
        if _same(_ref(pool_props.get("frontendIPConfiguration")), frontend_id) and \
                pool_props.get("frontendPortRangeStart") is not None:
            uses.append(PortUse(int(pool_props["frontendPortRangeStart"]), int(pool_props["frontendPortRangeEnd"]),
                                pool_props.get("protocol"), "inbound NAT pool %s" % nat_pool.get("name")))
    return uses


def first_conflict(uses, start, end, protocol):
    for use in uses:
        if use.overlaps(start, end, protocol):
            return use
    return None


def assign_ports(member_names, kept_ports, start, end, uses, protocol):
    """Give every member a frontend port in ``start``-``end``.

    ``member_names`` in the order ports are handed out; ``kept_ports`` maps a lower-cased member name
    to the port its existing rule has (kept when it is in the range and free of ``uses``); ``uses``
    are what else occupies the frontend. New members get the lowest free port, so ports freed by
    removed members are reused. Raises ``PortRangeExhaustedError`` naming the members left without one.
    """
    assigned = {}
    taken = set()
    for name in member_names:
        port = kept_ports.get(name.lower())
        if port is not None and start <= port <= end and port not in taken and \
                first_conflict(uses, port, port, protocol) is None:
            assigned[name.lower()] = port
            taken.add(port)
    candidate = start
    left_out = []
    for name in member_names:
        if name.lower() in assigned:
            continue
        while candidate <= end and (candidate in taken or first_conflict(uses, candidate, candidate, protocol)):
            candidate += 1
        if candidate > end:
            left_out.append(name)
            continue
        assigned[name.lower()] = candidate
        taken.add(candidate)
    if left_out:
        raise PortRangeExhaustedError(
            "The frontend port range %d-%d has no free port left for %d member(s): %s (ports used by other rules on "
            "the frontend are skipped); widen frontend_port_end or choose another frontend_port_start"
            % (start, end, len(left_out), ", ".join(left_out)))
    return assigned


# --------------------------------------------------------------------------------------------
# Members and NICs
# --------------------------------------------------------------------------------------------

def ipconfig_of_member(member, ipconfig_ids):
    """The first of ``ipconfig_ids`` that belongs to one of the member's NICs, or None."""
    prefixes = [nic.lower() + "/ipconfigurations/" for nic in member.get("network_interface_ids") or []]
    for ipconfig_id in ipconfig_ids:
        if ipconfig_id and any(str(ipconfig_id).lower().startswith(prefix) for prefix in prefixes):
            return ipconfig_id
    return None


def primary_ipconfig(nic):
    """The primary ip configuration of a NIC (REST layout): the one marked primary, else the first."""
    ipconfigs = (nic.get("properties") or {}).get("ipConfigurations") or []
    if not ipconfigs:
        raise InvalidInputError("Network interface %s has no IP configuration" % nic.get("name"))
    for ipconfig in ipconfigs:
        if (ipconfig.get("properties") or {}).get("primary"):
            return ipconfig
    return ipconfigs[0]


def _edit_refs(nic, key, add_id=None, remove_id=None):
    """Add ``add_id`` to the primary ip configuration's ``key`` list, or remove ``remove_id`` from every
    ip configuration. Changes ``nic`` in place; returns (changed, id of the ip configuration concerned)."""
    changed = False
    touched = None
    if add_id:
        ipconfig = primary_ipconfig(nic)
        props = ipconfig.setdefault("properties", {})
        refs = props.get(key) or []
        touched = ipconfig.get("id")
        if not any(_same(_ref(ref), add_id) for ref in refs):
            props[key] = list(refs) + [{"id": add_id}]
            changed = True
    if remove_id:
        for ipconfig in (nic.get("properties") or {}).get("ipConfigurations") or []:
            props = ipconfig.get("properties") or {}
            refs = props.get(key) or []
            kept = [ref for ref in refs if not _same(_ref(ref), remove_id)]
            if len(kept) != len(refs):
                props[key] = kept
                changed = True
                touched = ipconfig.get("id")
    return changed, touched


def bind_rule(nic, rule_id):
    """Name the V1 rule in the NIC's primary ip configuration (``loadBalancerInboundNatRules``)."""
    return _edit_refs(nic, "loadBalancerInboundNatRules", add_id=rule_id)


def unbind_rule(nic, rule_id):
    return _edit_refs(nic, "loadBalancerInboundNatRules", remove_id=rule_id)


def join_pool(nic, pool_id):
    """Put the NIC's primary ip configuration in the backend pool (``loadBalancerBackendAddressPools``)."""
    return _edit_refs(nic, "loadBalancerBackendAddressPools", add_id=pool_id)


# --------------------------------------------------------------------------------------------
# Plans
# --------------------------------------------------------------------------------------------

class RulePlan:
    """What to do about one rule (and, for V1, the member it is bound to)."""

    def __init__(self, rule_name, current=None, member=None, desired=None, action="keep", bind=False,
                 unbind_from=None, frontend_port=None):
        self.rule_name = rule_name
        self.current = current
        self.member = member
        self.desired = desired
        self.action = action  # create, update, keep or delete
        self.bind = bind
        self.unbind_from = unbind_from
        self.frontend_port = frontend_port
        self.error = None

    @property
    def changes(self):
        return self.action != "keep" or self.bind or bool(self.unbind_from)

    def __repr__(self):
        return "RulePlan(%r, action=%r, bind=%r, port=%r)" % (self.rule_name, self.action, self.bind, self.frontend_port)


def _v1_plan(request, rule_name, member, current, frontend_id, port):
    desired = request.desired_properties(frontend_id, frontend_port=port)
    plan = RulePlan(rule_name, current=current, member=member, desired=desired, frontend_port=port)
    if current is None:
        plan.action = "create"
    elif is_v2(current):
        plan.error = InvalidInputError("Inbound NAT rule %s exists as a V2 rule (over a backend pool); remove it with "
                                       "state=absent before using the name for a V1 rule" % current["name"])
        return plan
    elif differs(current, desired):
        plan.action = "update"
    bound_to = current["backend_ipconfig_id"] if current else None
    if member is not None and ipconfig_of_member(member, [bound_to]) is None:
        plan.bind = True
        plan.unbind_from = bound_to
    return plan


def plan_single(request, lb, frontend_id, members):
    """One V1 rule ``request.name`` bound to the single selected member."""
    rules = nat_rules(lb)
    current = rules.get(request.name.lower())
    if not request.present:
        return [RulePlan(request.name, current=current, action="delete")] if current else []
    if len(members) != 1:
        raise InvalidInputError("A V1 rule with frontend_port is bound to exactly one instance, but the selection "
                                "holds %d: %s" % (len(members), ", ".join(m["name"] for m in members) or "none"))
    conflict = first_conflict(port_uses(lb, frontend_id, skip_rule_names=[request.name]), request.frontend_port,
                              request.frontend_port, request.protocol)
    if conflict is not None:
        raise InvalidInputError("Frontend port %d (%s) is already used on this frontend by %s"
                                % (request.frontend_port, request.protocol, conflict.describe()))
    plan = _v1_plan(request, request.name, members[0], current, frontend_id, request.frontend_port)
    if plan.error is not None:
        raise plan.error
    return [plan]


def plan_per_instance(request, lb, frontend_id, members):
    """One V1 rule ``<prefix>-<vm>`` per selected member, plus the deletions (absent, purge)."""
    rules = nat_rules(lb)
    selected = {member["name"].lower(): member for member in members}
    own = {}  # member name (lower) -> rule view, for rules named <prefix>-<something>
    for view in rules.values():
        member_name = request.member_of_rule(view["name"])
        if member_name is not None:
            own[member_name.lower()] = view
    # Rules of members outside the selection: removed by purge (only V1 rules on this frontend, in the range,
    # so that a foreign rule that happens to share the prefix is never touched).
    stale = [view for name, view in sorted(own.items()) if name not in selected and not is_v2(view)
             and _same(view["frontend_id"], frontend_id)
             and view["frontend_port"] is not None and request.port_start <= view["frontend_port"] <= request.port_end]
    deletions = [RulePlan(view["name"], current=view, action="delete") for view in stale] if request.purge else []
    if not request.present:
        for name in sorted(selected):
            view = own.get(name)
            if view is not None:
                deletions.append(RulePlan(view["name"], current=view, member=selected[name], action="delete"))
        return sorted(deletions, key=lambda plan: plan.rule_name.lower())
    ordered = sorted(members, key=lambda member: member["name"].lower())
    names = [request.rule_name_for(member["name"]) for member in ordered]
    skip = names + [plan.rule_name for plan in deletions]
    uses = port_uses(lb, frontend_id, skip_rule_names=skip)
    kept = {}
    for member in ordered:
        view = own.get(member["name"].lower())
        if view is not None and not is_v2(view) and _same(view["frontend_id"], frontend_id):
            kept[member["name"].lower()] = view["frontend_port"]
    ports = assign_ports([member["name"] for member in ordered], kept, request.port_start, request.port_end, uses,
                         request.protocol)
    plans = []
    for member, rule_name in zip(ordered, names):
        current = rules.get(rule_name.lower())
        plans.append(_v1_plan(request, current["name"] if current else rule_name, member, current, frontend_id,
                              ports[member["name"].lower()]))
    return deletions + plans


def pool_ipconfig_ids(pool):
    return [_ref(ref) for ref in (pool.get("properties") or {}).get("backendIPConfigurations") or [] if _ref(ref)]


def plan_v2(request, lb, frontend_id, pool, members):
    """One V2 rule over ``pool``; with ``add_to_pool``, the selected members not yet in it join it.

    Returns ``(rule plan or None, members to add)``.
    """
    rules = nat_rules(lb)
    current = rules.get(request.name.lower())
    if not request.present:
        return (RulePlan(request.name, current=current, action="delete") if current else None), []
    sku = str(((lb.get("sku") or {}).get("name")) or "Basic")
    if sku.lower() == "basic":
        raise InvalidInputError("Load balancer %s has the Basic SKU; V2 inbound NAT rules (over a backend pool) need a "
                                "Standard load balancer. Use one V1 rule per instance (frontend_port_start) instead"
                                % lb.get("name"))
    conflict = first_conflict(port_uses(lb, frontend_id, skip_rule_names=[request.name]), request.range_start,
                              request.range_end, request.protocol)
    if conflict is not None:
        raise InvalidInputError("Frontend ports %d-%d (%s) overlap ports already used on this frontend by %s"
                                % (request.range_start, request.range_end, request.protocol, conflict.describe()))
    if current is not None and not is_v2(current):
        raise InvalidInputError("Inbound NAT rule %s exists as a V1 rule (frontend port %s); remove it with "
                                "state=absent before using the name for a V2 rule"
                                % (current["name"], current["frontend_port"]))
    in_pool = pool_ipconfig_ids(pool)
    joining = [member for member in members if request.add_to_pool and ipconfig_of_member(member, in_pool) is None]
    size = request.range_end - request.range_start + 1
    if len(in_pool) + len(joining) > size:
        raise InvalidInputError(
            "The frontend port range %d-%d provides %d port(s), but backend pool %s would have %d member(s) (%d now%s);"
            " Azure needs one port per member" % (request.range_start, request.range_end, size, pool.get("name"),
                                                  len(in_pool) + len(joining), len(in_pool),
                                                  ", %d joining" % len(joining) if joining else ""))
    desired = request.desired_properties(frontend_id, pool_id=pool.get("id"))
    plan = RulePlan(request.name, current=current, desired=desired,
                    action="create" if current is None else "update" if differs(current, desired) else "keep")
    return plan, joining


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------

def describe(props_or_view, instance=None, pool_name=None):
    """A rule as the module reports it (and shows it in a diff)."""
    view = props_or_view if "backend_ipconfig_id" in props_or_view else rule_view({"properties": props_or_view})
    described = {"protocol": view["protocol"], "backend_port": view["backend_port"],
                 "idle_timeout": view["idle_timeout"], "enable_floating_ip": view["floating_ip"],
                 "enable_tcp_reset": view["tcp_reset"]}
    if view["range"] is not None:
        described.update(frontend_port_range_start=view["range"][0], frontend_port_range_end=view["range"][1],
                         backend_pool=pool_name or (view["pool_id"] or "").split("/")[-1] or None)
    else:
        described.update(frontend_port=view["frontend_port"], instance=instance)
    return described


def endpoint(address, port):
    """``ip:port`` (IPv6 addresses in brackets), or None when either is unknown."""
    if not address or port is None:
        return None
    return "[%s]:%d" % (address, port) if ":" in address else "%s:%d" % (address, port)
