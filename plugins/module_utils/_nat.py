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
* ``migrate`` (``migrate_to_v2``): the per-instance V1 rules become one V2 rule over a backend pool
  (``plan_migration``; V1 rules retire on 30 September 2027). V2 hands out ports by backend order from
  ``frontendPortRangeStart``, so a member keeps its port only where its V1 port is the one its place in
  the pool gives it; the plan predicts the mapping from the pool's order, and the migration observes
  Azure's own order on a staging range before it relies on it.

Everything a user can get wrong is refused here, before any request, with a message naming the options.
"""

from __future__ import annotations

import re

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import InvalidInputError


SINGLE = "single"
PER_INSTANCE = "per_instance"
V2 = "v2"
MIGRATE = "migrate"

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
        self.staging_start = values.get("migration_port_range_start")

    @property
    def present(self):
        return self.state == "present"

    @classmethod
    def from_params(cls, params):
        """Validate the module parameters; raise ``InvalidInputError`` with a clear message."""
        if params.get("migrate_to_v2"):
            request = cls(**dict(params, kind=MIGRATE))
            request._validate_migration(params)
            return request
        if params.get("migration_port_range_start") is not None:
            raise InvalidInputError("migration_port_range_start applies only with migrate_to_v2=true")
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

    def _validate_migration(self, params):
        """``migrate_to_v2``: the options of the per-instance V1 rules it reads, and of the V2 rule it makes."""
        if self.state != "present":
            raise InvalidInputError("migrate_to_v2 needs state=present (it replaces the V1 rules by a V2 rule)")
        if params.get("frontend_port") is not None:
            raise InvalidInputError("migrate_to_v2 moves the per-instance V1 rules (frontend_port_start): frontend_port "
                                    "(a V1 rule for one instance) cannot be combined with it")
        validate_rule_name(self.name, "name (the V1 rule name prefix and the V2 rule name)")
        for option in ("frontend_port_start", "frontend_port_end", "frontend_port_range_start", "frontend_port_range_end",
                       "migration_port_range_start"):
            _check_range(option, params.get(option), FRONTEND_PORT_RANGE)
        _check_range("backend_port", params.get("backend_port"), BACKEND_PORT_RANGE)
        if self.port_start is None:
            raise InvalidInputError("migrate_to_v2 needs frontend_port_start (and frontend_port_end): the port range of "
                                    "the V1 rules <name>-<vm name> to migrate")
        if not self.instances_given:
            raise InvalidInputError("migrate_to_v2 needs instances (VM names or 'all'): the members whose V1 rules move")
        if self.port_end is None and self.range_end is None:
            raise InvalidInputError("migrate_to_v2 needs frontend_port_end (or frontend_port_range_end): the V2 rule's "
                                    "range must be bounded (it needs one port per pool member, and room for new ones)")
        if self.port_end is not None and self.port_end < self.port_start:
            raise InvalidInputError("frontend_port_end (%d) must not be smaller than frontend_port_start (%d)"
                                    % (self.port_end, self.port_start))
        start, end = self.final_range
        if end < start:
            raise InvalidInputError("The V2 rule's range %d-%d is empty: check frontend_port_range_start and "
                                    "frontend_port_range_end" % (start, end))

    @property
    def final_range(self):
        """The V2 rule's range a migration ends with: frontend_port_range_start/end, else the V1 rules' range."""
        return (self.range_start if self.range_start is not None else self.port_start,
                self.range_end if self.range_end is not None else self.port_end)

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
        # A write that failed leaves the rule in provisioning state Failed; a new PUT repairs it.
        "failed": str(props.get("provisioningState") or "").lower() == "failed",
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


# --------------------------------------------------------------------------------------------
# V1 -> V2 migration
# --------------------------------------------------------------------------------------------

# What a V2 rule made from V1 rules takes from them; one V2 rule has one value of each.
MIGRATED_FIELDS = (("protocol", "protocol"), ("backend_port", "backendPort"), ("idle_timeout", "idleTimeoutInMinutes"),
                   ("floating_ip", "enableFloatingIP"), ("tcp_reset", "enableTcpReset"))


STAGING_SUFFIX = "-v2-staging"


class MigrationPlan:
    """How the per-instance V1 rules ``<name>-<vm>`` of the selected members become the V2 rule ``name``.

    The writes are ordered so that every member keeps a working rule at every moment, and each step waits for the
    one before: (1) members not in the pool join it; (2) a V2 rule ``<name>-v2-staging`` is created on a staging
    range that overlaps nothing (the V1 rules still hold their ports), so each member is reachable on its V1 port
    and on a staging port; (3) the V1 rules are deleted one by one, each only once Azure reports its member's
    staging port; (4) the V2 rule ``name`` is created on the final range (free now) and (5) once Azure reports
    every member's port on it, the staging rule is deleted. A failure stops the sequence where it is; no member
    ever loses its last working rule, and a rerun resumes from what it finds.
    """

    def __init__(self, name, frontend_id, pool, props, final, staging, current, staging_rule, v1, stale, joining,
                 order, members):
        self.name = name
        self.staging_name = name + STAGING_SUFFIX
        self.frontend_id = frontend_id
        self.pool = pool
        self.props = props  # the V2 rules' properties without their range
        self.final = final
        self.staging = staging  # the staging range; None when no staging rule is needed (or left)
        self.current = current  # the V2 rule ``name`` as it is (rule_view), or None
        self.staging_rule = staging_rule  # the staging rule as it is, or None
        self.v1 = v1  # [(member, rule_view)] of the selected members that have a V1 rule
        self.stale = stale  # rule views of V1 rules of members not selected, deleted with purge
        self.joining = joining  # members that join the pool first
        self.order = order  # pool order: ipconfig ids (lower case) and ("join", member name) for joining members
        self.members = members

    def rule_properties(self, span):
        return dict(self.props, frontendPortRangeStart=span[0], frontendPortRangeEnd=span[1])

    @property
    def final_ready(self):
        """The V2 rule exists on its final range and is not Failed."""
        return self.current is not None and not self.current["failed"]

    def position(self, member):
        """The member's place in the pool's order (0 first), or None when it is not (and will not be) in the pool."""
        in_pool = ipconfig_of_member(member, [key for key in self.order if isinstance(key, str)])
        if in_pool is not None:
            return self.order.index(in_pool.lower())
        key = ("join", member["name"].lower())
        return self.order.index(key) if key in self.order else None

    def predicted_port(self, member, span):
        position = self.position(member)
        return None if position is None or span is None else span[0] + position

    def old_rule(self, member):
        for candidate, view in self.v1:
            if candidate["name"].lower() == member["name"].lower():
                return view
        return None

    def rule_plans(self):
        """``(V2 rule, staging rule or None, V1 rule deletions of selected members, deletions of stale V1 rules)``.

        The staging rule's plan is a deletion (it is gone when the migration ends); its ``desired`` is what it is
        created with first, when it does not exist yet.
        """
        v2 = RulePlan(self.name, current=self.current, desired=self.rule_properties(self.final),
                      action="keep" if self.final_ready else "update" if self.current is not None else "create")
        staging = None
        if self.staging is not None:
            staging = RulePlan(self.staging_name, current=self.staging_rule, action="delete",
                               desired=self.rule_properties(self.staging))
        v1 = [RulePlan(view["name"], current=view, member=member, action="delete") for member, view in self.v1]
        stale = [RulePlan(view["name"], current=view, action="delete") for view in self.stale]
        return v2, staging, v1, stale

    @property
    def needed(self):
        """Whether anything is left to do."""
        return bool(self.joining or not self.final_ready or self.v1 or self.stale or self.staging_rule is not None)


def _first_free_span(uses, size, protocol, avoid, start_from):
    """The lowest start >= start_from (then from 1) of ``size`` free ports clear of ``uses`` and of ``avoid``."""
    low, high = FRONTEND_PORT_RANGE
    for first in (start_from, low):
        start = max(low, first)
        while start + size - 1 <= high:
            end = start + size - 1
            if avoid[0] <= end and start <= avoid[1]:
                start = avoid[1] + 1
                continue
            conflict = first_conflict(uses, start, end, protocol)
            if conflict is None:
                return start, end
            start = conflict.end + 1
    return None


def _v2_of_pool(view, pool, what):
    if view is None:
        return None
    if not is_v2(view):
        raise InvalidInputError("Inbound NAT rule %s exists as a V1 rule (frontend port %s); the migration needs that "
                                "name for its %s: rename or remove it first" % (view["name"], view["frontend_port"], what))
    if not _same(view["pool_id"], pool.get("id")):
        raise InvalidInputError("Inbound NAT rule %s exists as a V2 rule over another backend pool (%s)"
                                % (view["name"], (view["pool_id"] or "").split("/")[-1]))
    return view


def plan_migration(request, lb, frontend_id, pool, members):
    """Plan ``migrate_to_v2``; raise ``InvalidInputError`` for anything that would leave a member unreachable."""
    rules = nat_rules(lb)
    sku = str(((lb.get("sku") or {}).get("name")) or "Basic")
    if sku.lower() == "basic":
        raise InvalidInputError("Load balancer %s has the Basic SKU; V2 inbound NAT rules need a Standard load balancer"
                                % lb.get("name"))
    current = _v2_of_pool(rules.get(request.name.lower()), pool, "V2 rule")
    staging_name = validate_rule_name(request.name + STAGING_SUFFIX, "staging rule name (name + %s)" % STAGING_SUFFIX)
    staging_rule = _v2_of_pool(rules.get(staging_name.lower()), pool, "staging rule")
    final = request.final_range
    if current is not None and current["range"] != final:
        raise InvalidInputError("V2 rule %s exists with the range %d-%d, not %d-%d: give that range as "
                                "frontend_port_range_start and frontend_port_range_end, or remove the rule"
                                % (current["name"], current["range"][0], current["range"][1], final[0], final[1]))
    selected = {member["name"].lower(): member for member in members}
    port_end = request.port_end if request.port_end is not None else FRONTEND_PORT_RANGE[1]
    own = {}
    for view in rules.values():
        vm = request.member_of_rule(view["name"])
        if vm is not None and not is_v2(view) and _same(view["frontend_id"], frontend_id) and \
                view["frontend_port"] is not None and request.port_start <= view["frontend_port"] <= port_end:
            own[vm.lower()] = view
    v1 = [(selected[key], own[key]) for key in sorted(selected) if key in own]
    stale = [own[key] for key in sorted(own) if key not in selected] if request.purge else []
    props = _migrated_properties(request, frontend_id, pool, [view for _member, view in v1] + stale,
                                 current or staging_rule)
    protocol = props["protocol"]

    in_pool = [ipconfig_id.lower() for ipconfig_id in pool_ipconfig_ids(pool)]
    outside = [member for member in sorted(members, key=lambda m: m["name"].lower())
               if ipconfig_of_member(member, in_pool) is None]
    if outside and not request.add_to_pool:
        stranded = [member["name"] for member in outside if member["name"].lower() in own]
        if stranded:
            raise InvalidInputError(
                "Members with V1 rules are not in backend pool %s: %s. The V2 rule reaches pool members only, so they "
                "would be unreachable once their V1 rules are gone; set add_to_pool=true to add their NICs first"
                % (pool.get("name"), ", ".join(stranded)))
    joining = outside if request.add_to_pool else []
    order = in_pool + [("join", member["name"].lower()) for member in joining]

    size = final[1] - final[0] + 1
    if size < len(order):
        raise InvalidInputError("The V2 rule's range %d-%d provides %d port(s), but backend pool %s will have %d member(s);"
                                " Azure needs one port per member (and refuses scale-outs beyond the range)"
                                % (final[0], final[1], size, pool.get("name"), len(order)))
    moving = [view["name"] for _member, view in v1] + [view["name"] for view in stale] + [request.name, staging_name]
    conflict = first_conflict(port_uses(lb, frontend_id, skip_rule_names=moving), final[0], final[1], protocol)
    if conflict is not None:
        raise InvalidInputError("The V2 rule's range %d-%d (%s) overlaps ports used on this frontend by %s, which the "
                                "migration does not move; choose frontend_port_range_start and frontend_port_range_end"
                                % (final[0], final[1], protocol, conflict.describe()))
    if staging_rule is not None:
        staging = staging_rule["range"]  # resume: the staging rule is where it was left
    elif (v1 or stale) and current is None:
        staging = _staging_range(request, lb, frontend_id, protocol, final, size, staging_name)
    else:
        staging = None  # nothing holds the final range's ports: no need for a bridge
    return MigrationPlan(request.name, frontend_id, pool, props, final, staging, current, staging_rule, v1, stale,
                         joining, order, sorted(members, key=lambda m: m["name"].lower()))


def _staging_range(request, lb, frontend_id, protocol, final, size, staging_name):
    uses = port_uses(lb, frontend_id, skip_rule_names=[request.name, staging_name])  # the V1 rules hold their ports
    if request.staging_start is not None:
        span = (request.staging_start, request.staging_start + size - 1)
        if span[1] > FRONTEND_PORT_RANGE[1]:
            raise InvalidInputError("migration_port_range_start %d leaves no room for the %d ports of the staging range "
                                    "(ports end at %d)" % (span[0], size, FRONTEND_PORT_RANGE[1]))
        if span[0] <= final[1] and final[0] <= span[1]:
            raise InvalidInputError("The staging range %d-%d overlaps the V2 rule's final range %d-%d" % (
                span[0], span[1], final[0], final[1]))
        conflict = first_conflict(uses, span[0], span[1], protocol)
        if conflict is not None:
            raise InvalidInputError("The staging range %d-%d (%s) overlaps ports used on this frontend by %s; choose "
                                    "another migration_port_range_start" % (span[0], span[1], protocol, conflict.describe()))
        return span
    span = _first_free_span(uses, size, protocol, final, final[1] + 1)
    if span is None:
        raise InvalidInputError("No free range of %d ports on this frontend for the staging rule of the migration (it "
                                "bridges the members while their V1 rules are removed); narrow the final range" % size)
    return span


def _migrated_properties(request, frontend_id, pool, sources, current):
    """The V2 rule's properties (without its range), from the V1 rules, which must agree on them."""
    if current is not None and not sources:
        sources = [current]
    if not sources:
        if request.backend_port is None:
            raise InvalidInputError("Nothing to migrate: no V1 rule %s-<vm name> of the selected members on this frontend"
                                    " with a port from %d, and no V2 rule %s; give backend_port to create the V2 rule "
                                    "anyway" % (request.name, request.port_start, request.name))
        values = {"protocol": request.protocol, "backend_port": request.backend_port,
                  "idle_timeout": request.idle_timeout, "floating_ip": request.floating_ip,
                  "tcp_reset": request.tcp_reset}
    else:
        values = {}
        differing = []
        for field, _rest in MIGRATED_FIELDS:
            seen = sorted({str(view[field]).lower() if field == "protocol" else
                           (view[field] if field != "idle_timeout" else view[field] or IDLE_TIMEOUT_RANGE[0])
                           for view in sources}, key=str)
            if len(seen) > 1:
                differing.append("%s (%s)" % (field, ", ".join(str(value) for value in seen)))
            values[field] = next(view[field] for view in sources) if field != "idle_timeout" else \
                (sources[0]["idle_timeout"] or IDLE_TIMEOUT_RANGE[0])
        if differing:
            raise InvalidInputError("The V1 rules to migrate differ in %s, but one V2 rule has one value of each; make "
                                    "them agree first" % "; ".join(differing))
        if request.backend_port is not None and request.backend_port != values["backend_port"]:
            raise InvalidInputError("backend_port %d differs from the V1 rules' backend port %d; a migration keeps it"
                                    % (request.backend_port, values["backend_port"]))
    return {"frontendIPConfiguration": {"id": frontend_id}, "protocol": values["protocol"],
            "backendPort": values["backend_port"], "idleTimeoutInMinutes": values["idle_timeout"],
            "enableFloatingIP": bool(values["floating_ip"]), "enableTcpReset": bool(values["tcp_reset"]),
            "backendAddressPool": {"id": pool.get("id")}}
