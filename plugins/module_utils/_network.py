# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""Network I/O: reads and writes of load balancers, NAT rules and NICs, writes made one at a time, and resource ids.

The Network resource provider takes one change at a time per load balancer: while a write to the
load balancer, to one of its inbound NAT rules, or to a NIC that joins or leaves one of its pools or
NAT rules is running, another such write is refused with HTTP 409 ``AnotherOperationInProgress``,
without a ``Retry-After`` header (so neither the SDK's retry policy nor ``RetryRules`` retries it).

The collection does both things that make this safe:

* **serialize**: every write that changes a load balancer goes through ``LoadBalancerWriter.run()``,
  which holds a lock per load balancer, so the writes of one task never collide with each other, even
  when a module fans out;
* **retry**: a write still refused with 409 ``AnotherOperationInProgress`` (another task, the portal,
  or the platform itself is changing the load balancer) is sent again after an exponential backoff
  with jitter, for as long as the task's deadline allows. Only the refused *initial* request is
  repeated: a PUT or DELETE is idempotent, and a refused request changed nothing.
"""

from __future__ import annotations

import re
import threading
import time

from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import as_rest_dict
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    AzureFlexError,
    InvalidInputError,
    azure_errors,
    is_not_found,
    member_error,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._nat import bind_rule, ipconfig_of_member, join_pool, unbind_rule
from ansible_collections.azure_flex.vmss.plugins.module_utils._resilience import RetryRules, run_operation


CONFLICT_CODE = "AnotherOperationInProgress"
# At most this many attempts per write; the deadline usually ends the retries first.
CONFLICT_MAX_ATTEMPTS = 20
CONFLICT_BACKOFF_BASE = 1.0
CONFLICT_BACKOFF_CAP = 10.0
# Azure refuses to delete an inbound NAT rule still bound to a NIC with this code.
RULE_IN_USE = "InboundNatRuleInUse"

_NETWORK_ID = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<resource_group>[^/]+)"
    r"/providers/Microsoft\.Network/(?P<type>[^/]+)/(?P<name>[^/]+)(?P<rest>/.*)?\Z",
    re.IGNORECASE,
)


class NetworkId:
    """The parts of a Microsoft.Network resource id (``rest`` is the child path, if any)."""

    def __init__(self, subscription_id, resource_group, resource_type, name, rest=""):
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.resource_type = resource_type
        self.name = name
        self.rest = rest or ""

    @classmethod
    def parse(cls, resource_id, resource_type=None):
        """Parse ``resource_id``; with ``resource_type`` (e.g. ``loadBalancers``), insist on that type."""
        match = _NETWORK_ID.match(str(resource_id or "").rstrip("/"))
        if not match or (resource_type and match.group("type").lower() != resource_type.lower()):
            raise InvalidInputError("%r is not a %s resource id (/subscriptions/<id>/resourceGroups/<group>/providers/"
                                    "Microsoft.Network/%s/<name>)" % (resource_id, resource_type or "network",
                                                                      resource_type or "<type>"))
        return cls(match.group("subscription"), match.group("resource_group"), match.group("type"),
                   match.group("name"), match.group("rest"))

    @property
    def id(self):
        """The resource id these parts name (without ``rest``)."""
        return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/%s/%s" % (
            self.subscription_id, self.resource_group, self.resource_type, self.name)


def nat_rule_id(lb_id, rule_name):
    """The resource id of the inbound NAT rule ``rule_name`` of the load balancer ``lb_id``."""
    return "%s/inboundNatRules/%s" % (lb_id, rule_name)


class LoadBalancerWriter:
    """Runs writes that change a load balancer one at a time, retrying ``AnotherOperationInProgress``.

    ``run(lb_id, begin, description)`` takes the load balancer's lock, starts ``begin()`` (a
    ``begin_*`` SDK call) and waits for it (when ``wait``) within the deadline, as ``run_operation``
    does. ``conflicts`` counts the refused attempts, for the task's report.
    """

    def __init__(self, deadline, wait=True, max_attempts=CONFLICT_MAX_ATTEMPTS, backoff=None, sleep=time.sleep):
        self.deadline = deadline
        self.wait = wait
        self.max_attempts = max_attempts
        self._backoff = backoff or RetryRules(deadline=deadline, backoff_base=CONFLICT_BACKOFF_BASE,
                                              backoff_cap=CONFLICT_BACKOFF_CAP).backoff
        self._sleep = sleep
        self._guard = threading.Lock()
        self._locks = {}
        self._conflicts = 0

    @property
    def conflicts(self):
        with self._guard:
            return self._conflicts

    def run(self, lb_id, begin, description):
        """Return ``(finished, result)`` like ``run_operation``; raise ``AzureFlexError`` on failure."""
        with self._lock_for(lb_id):
            attempts = 0
            while True:
                attempts += 1
                try:
                    return run_operation(begin, self.deadline, description, wait=self.wait)
                except AzureFlexError as exc:
                    if not is_conflict(exc):
                        raise
                    delay = self._backoff(attempts)
                    if attempts >= self.max_attempts or not self.deadline.allows_wait(delay):
                        raise exc.with_message(
                            "%s (the load balancer was still busy with another operation after %d attempt(s) in %.0f s;"
                            " writes to one load balancer are made one at a time)"
                            % (exc.msg, attempts, self.deadline.elapsed()))
                    with self._guard:
                        self._conflicts += 1
                    self._sleep(delay)

    def _lock_for(self, lb_id):
        key = str(lb_id).lower()
        with self._guard:
            if key not in self._locks:
                self._locks[key] = threading.Lock()
            return self._locks[key]


def is_conflict(error):
    """True for the refused initial request of a write (409 AnotherOperationInProgress).

    A long-running operation that *ended* Failed has no HTTP status here and is not repeated.
    """
    return getattr(error, "code", None) == CONFLICT_CODE and getattr(error, "status", None) == 409


# -- load balancer reads ----------------------------------------------------------------------------

def read_load_balancer(network, ref):
    """The load balancer ``ref`` (a ``NetworkId``) as a REST dict; a missing one is reported by name and group."""
    try:
        with azure_errors("Failed to read load balancer %s" % ref.name):
            return as_rest_dict(network.load_balancers.get(ref.resource_group, ref.name))
    except AzureFlexError as exc:
        if is_not_found(exc):
            raise exc.with_message("Load balancer %s was not found in resource group %s"
                                   % (ref.name, ref.resource_group)) from exc
        raise


def frontend_address(network, frontend):
    """The frontend's public IP address, or its private one (internal load balancer)."""
    props = frontend.get("properties") or {}
    public_ip_id = (props.get("publicIPAddress") or {}).get("id")
    if not public_ip_id:
        return props.get("privateIPAddress")
    ref = NetworkId.parse(public_ip_id, "publicIPAddresses")
    with azure_errors("Failed to read public IP address %s" % ref.name):
        public_ip = as_rest_dict(network.public_ip_addresses.get(ref.resource_group, ref.name))
    return (public_ip.get("properties") or {}).get("ipAddress")


def query_port_mappings(module, lb_ref, pool, rule_name, pairs):
    """Ports of the V2 rule from queryInboundNatRulePortMapping, for (member, ip configuration id) pairs.

    ``module`` gives the clients, the deadline and ``fan_out``. Returns ``({member name (lower): frontend port},
    {member name (lower): error})``.
    """
    network = module.clients.network()

    def query(pair):
        member, ipconfig_id = pair
        _finished, result = run_operation(
            lambda: network.load_balancers.begin_list_inbound_nat_rule_port_mappings(
                lb_ref.resource_group, lb_ref.name, pool["name"], {"ipConfiguration": {"id": ipconfig_id}}),
            module.deadline, "query the inbound NAT port mappings of VM %s" % member["name"], wait=True)
        return as_rest_dict(result) or {}

    ports, errors = {}, {}
    for outcome in module.fan_out(query, pairs):
        key = outcome.item[0]["name"].lower()
        if not outcome.ok:
            errors[key] = outcome.error
            continue
        for mapping in outcome.result.get("inboundNatRulePortMappings") or []:
            if str(mapping.get("inboundNatRuleName")).lower() == rule_name.lower():
                ports[key] = mapping.get("frontendPort")
    return ports, errors


# -- NAT rule and NIC writes -------------------------------------------------------------------------

class NatWriter:
    """The NAT rule and NIC writes of a task, each one through the load balancer's ``LoadBalancerWriter``.

    ``module`` gives the clients, the deadline and ``wait``; ``lb_ref`` is the load balancer's ``NetworkId``.
    """

    def __init__(self, module, lb_ref):
        self.network = module.clients.network()
        self.lb = lb_ref
        self.lb_id = lb_ref.id
        self.serial = LoadBalancerWriter(module.deadline, wait=module.wait)

    def put_rule(self, plan):
        body = {"properties": plan.desired}
        self.serial.run(self.lb_id, lambda: self.network.inbound_nat_rules.begin_create_or_update(
            self.lb.resource_group, self.lb.name, plan.rule_name, body),
            "%s inbound NAT rule %s" % (plan.action, plan.rule_name))

    def delete_rule(self, plan):
        def begin():
            return self.network.inbound_nat_rules.begin_delete(self.lb.resource_group, self.lb.name, plan.rule_name)

        description = "delete inbound NAT rule %s" % plan.rule_name
        try:
            self.serial.run(self.lb_id, begin, description)
        except AzureFlexError as exc:
            bound = (plan.current or {}).get("backend_ipconfig_id")
            if exc.code != RULE_IN_USE or not bound:
                raise
            # Where Azure refuses to delete a rule still bound to a NIC: unbind it, then delete.
            self.edit_nic(bound.split("/ipConfigurations/")[0], lambda nic: unbind_rule(nic, plan.current["id"]),
                          "unbind inbound NAT rule %s" % plan.rule_name)
            self.serial.run(self.lb_id, begin, description)

    def edit_nic(self, nic_id, edit, description):
        """Read-modify-write of a NIC: ``edit(nic)`` changes the REST dict in place and returns
        ``(changed, ip configuration id)``; every other field is sent back as read."""
        ref = NetworkId.parse(nic_id, "networkInterfaces")
        with azure_errors("Failed to read network interface %s" % ref.name):
            nic = as_rest_dict(self.network.network_interfaces.get(ref.resource_group, ref.name))
        changed, ipconfig_id = edit(nic)
        if changed:
            self.serial.run(self.lb_id, lambda: self.network.network_interfaces.begin_create_or_update(
                ref.resource_group, ref.name, nic), "%s on network interface %s" % (description, ref.name))
        return ipconfig_id


def apply_rule(writer, plan, done):
    """Unbind from another NIC, create or update the rule, bind it to the member's NIC.

    Each step is appended to ``done`` as it completes, so a failure part-way reports what was changed.
    """
    if plan.unbind_from:
        writer.edit_nic(plan.unbind_from.split("/ipConfigurations/")[0],
                        lambda nic: unbind_rule(nic, plan.current["id"]),
                        "unbind inbound NAT rule %s" % plan.rule_name)
        done.append("unbind_other_nic")
    if plan.action in ("create", "update"):
        writer.put_rule(plan)
        done.append("%s_rule" % plan.action)
    if plan.bind:
        nic_ids = plan.member.get("network_interface_ids") or []
        if not nic_ids:
            raise AzureFlexError("VM %s has no network interface to bind the rule to" % plan.member["name"])
        rule_id = nat_rule_id(writer.lb_id, plan.rule_name)
        writer.edit_nic(nic_ids[0], lambda nic: bind_rule(nic, rule_id), "bind inbound NAT rule %s" % plan.rule_name)
        done.append("bind_nic")


def planned_actions(plan):
    actions = ["unbind_other_nic"] if plan.unbind_from else []
    if plan.action != "keep":
        actions.append("%s_rule" % plan.action)
    if plan.bind:
        actions.append("bind_nic")
    return actions


def execute_rule_plans(module, writer, plans):
    """Run the plans one by one (a load balancer takes one change at a time); record each outcome."""
    for plan in plans:
        plan.outcome = {"actions": planned_actions(plan), "status": "skipped"}
        if plan.error is not None:
            plan.outcome.update(status="failed", error=member_error(plan.error), actions=[])
            continue
        if not plan.changes:
            continue
        if module.check_mode:
            plan.outcome["status"] = "would_change"
            continue
        done = []
        try:
            if plan.action == "delete":
                writer.delete_rule(plan)
                done.append("delete_rule")
            else:
                apply_rule(writer, plan, done)
            plan.outcome.update(status="changed", actions=done)
        except AzureFlexError as exc:
            plan.outcome.update(status="failed", actions=done, error=member_error(exc))


def join_members(module, writer, pool, joining):
    """Add the NICs of ``joining`` to the pool; returns {member name (lower): outcome}."""
    outcomes = {}
    for member in joining:
        outcome = {"actions": ["join_pool"], "status": "would_change" if module.check_mode else "changed"}
        outcomes[member["name"].lower()] = outcome
        if module.check_mode:
            continue
        try:
            nic_ids = member.get("network_interface_ids") or []
            if not nic_ids:
                raise AzureFlexError("VM %s has no network interface to add to the pool" % member["name"])
            outcome["ipconfig_id"] = writer.edit_nic(nic_ids[0], lambda nic: join_pool(nic, pool["id"]),
                                                     "add to backend pool %s" % pool["name"])
        except AzureFlexError as exc:
            outcome.update(status="failed", actions=[], error=member_error(exc))
    return outcomes


class MigrationRunner:
    """Runs a ``_nat.MigrationPlan`` so that every member keeps a working rule, stopping at the first failure.

    ``writer`` makes the load balancer writes one at a time (``put_rule``, ``delete_rule`` and ``edit_nic`` of
    ``NatWriter``: serialized, ``AnotherOperationInProgress`` retried); ``query_ports(rule_name, pairs)``
    reads the port of each ``(member, ip configuration id)`` pair on a V2 rule and returns ``({member name (lower):
    port}, {member name (lower): error})``. ``rule_plans`` is ``plan.rule_plans()``; each plan gets its ``outcome``.

    After ``run()``: ``error`` is the failure that stopped it (None when it completed) and ``failed_member`` the
    member it concerned; ``removed`` the members whose V1 rule is gone; ``joined`` the ip configuration of each
    member that joined the pool; ``staging_exists`` and ``final_ready`` which V2 rules work now; ``staging_ports``
    and ``ports`` the ports Azure reported on the staging and on the final rule.
    """

    def __init__(self, plan, rule_plans, writer, query_ports):
        self.plan = plan
        self.v2_plan, self.staging_plan, self.v1_plans, self.stale_plans = rule_plans
        self.writer = writer
        self.query_ports = query_ports
        self.error = None
        self.failed_member = None
        self.removed = set()
        self.joined = {}
        self.staging_exists = plan.staging_rule is not None and not plan.staging_rule["failed"]
        self.final_ready = plan.final_ready
        self.staging_ports = {}
        self.ports = {}
        for rule_plan in self.all_plans():
            rule_plan.outcome = {"actions": [], "status": "skipped"}

    def all_plans(self):
        return [self.v2_plan] + ([self.staging_plan] if self.staging_plan else []) + self.v1_plans + self.stale_plans

    def pairs(self):
        in_pool = [key for key in self.plan.order if isinstance(key, str)]
        out = []
        for member in self.plan.members:
            ipconfig_id = ipconfig_of_member(member, in_pool) or self.joined.get(member["name"].lower())
            if ipconfig_id:
                out.append((member, ipconfig_id))
        return out

    def run(self):
        for step in (self._join, self._stage, self._remove_v1, self._create_final, self._unstage):
            if not step():
                break
        if self.final_ready and not self.ports:
            self.ports, _errors = self.query_ports(self.plan.name, self.pairs())
        if self.staging_exists and not self.staging_ports:
            self.staging_ports, _errors = self.query_ports(self.plan.staging_name, self.pairs())
        return self

    def _fail(self, error, member=None, rule_plan=None):
        self.error = error
        self.failed_member = member
        if rule_plan is not None:
            rule_plan.outcome = {"actions": rule_plan.outcome["actions"], "status": "failed", "error": error}
        return False

    def _done(self, rule_plan, action):
        rule_plan.outcome = {"actions": rule_plan.outcome["actions"] + [action], "status": "changed"}

    def _join(self):
        for member in self.plan.joining:
            nic_ids = member.get("network_interface_ids") or []
            try:
                if not nic_ids:
                    raise AzureFlexError("VM %s has no network interface to add to the pool" % member["name"])
                self.joined[member["name"].lower()] = self.writer.edit_nic(
                    nic_ids[0], lambda nic: join_pool(nic, self.plan.pool["id"]),
                    "add to backend pool %s" % self.plan.pool.get("name"))
            except AzureFlexError as exc:
                return self._fail(exc, member)
        return True

    def _stage(self):
        if self.staging_plan is None or self.staging_exists:
            return True
        try:
            self.writer.put_rule(_Put(self.staging_plan, "create"))
        except AzureFlexError as exc:
            return self._fail(exc, rule_plan=self.staging_plan)
        self._done(self.staging_plan, "create_rule")
        self.staging_exists = True
        return True

    def _confirmed(self, rule_name, members):
        """Azure reports a port of ``rule_name`` for each of ``members``; otherwise fail naming the first without."""
        ports, errors = self.query_ports(rule_name, self.pairs())
        for member in members:
            key = member["name"].lower()
            if ports.get(key) is None:
                error = errors.get(key) or AzureFlexError("Azure reports no port of V2 rule %s for VM %s"
                                                          % (rule_name, member["name"]))
                return ports, self._fail(error.with_message("%s; nothing of it was removed" % error.msg)
                                         if isinstance(error, AzureFlexError) else error, member)
        return ports, True

    def _remove_v1(self):
        if not (self.v1_plans or self.stale_plans):
            return True
        # Each V1 rule goes only once Azure reports its member's port on the rule that bridges it.
        bridge = self.plan.staging_name if self.staging_exists else self.plan.name
        ports, ok = self._confirmed(bridge, [rule_plan.member for rule_plan in self.v1_plans])
        if bridge == self.plan.staging_name:
            self.staging_ports = ports
        else:
            self.ports = ports
        if not ok:
            return False
        for rule_plan in self.v1_plans + self.stale_plans:
            try:
                self.writer.delete_rule(rule_plan)
            except AzureFlexError as exc:
                return self._fail(exc, rule_plan.member, rule_plan)
            self._done(rule_plan, "delete_rule")
            if rule_plan.member is not None:
                self.removed.add(rule_plan.member["name"].lower())
        return True

    def _create_final(self):
        if self.final_ready:
            return True
        try:
            self.writer.put_rule(_Put(self.v2_plan, self.v2_plan.action))
        except AzureFlexError as exc:
            return self._fail(exc, rule_plan=self.v2_plan)
        self._done(self.v2_plan, "%s_rule" % self.v2_plan.action)
        self.final_ready = True
        return True

    def _unstage(self):
        if not self.staging_exists and (self.plan.staging_rule is None or self.staging_plan is None):
            return True
        # The bridge goes only once every member has its port on the final rule.
        self.ports, ok = self._confirmed(self.plan.name, [member for member, _ipconfig in self.pairs()])
        if not ok:
            return False
        try:
            self.writer.delete_rule(self.staging_plan)
        except AzureFlexError as exc:
            return self._fail(exc, rule_plan=self.staging_plan)
        self._done(self.staging_plan, "delete_rule")
        self.staging_exists = False
        return True


class _Put:
    """A rule plan as ``put_rule`` takes it (name, properties, the word for its description)."""

    def __init__(self, rule_plan, action):
        self.rule_name = rule_plan.rule_name
        self.desired = rule_plan.desired
        self.action = action
