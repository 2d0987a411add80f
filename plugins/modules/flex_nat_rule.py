#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: flex_nat_rule
short_description: Inbound NAT rules of a load balancer for members of a Flexible scale set
version_added: 0.1.0
description:
  - Manages load balancer inbound NAT rules for the member VMs of an Azure Virtual Machine Scale Set in Flexible
    orchestration mode, which has no NAT pools. Three kinds of request, chosen by the options given.
  - B(One V1 rule for one instance) (O(frontend_port)). The rule O(name) forwards O(frontend_port) to
    O(backend_port) of the one member named in O(instances); the module binds it to that member's NIC (the
    primary IP configuration lists the rule in C(loadBalancerInboundNatRules)).
  - B(One V1 rule per instance), the replacement for a Uniform scale set's NAT pool (O(frontend_port_start)).
    Every selected member gets its own rule named C(<name>-<vm name>), bound to its NIC, on a frontend port from
    O(frontend_port_start) to O(frontend_port_end). The rule name records which member a rule belongs to, so a
    member keeps its port across runs; new members get the lowest free port, skipping ports used on the frontend
    by any other rule. O(purge) removes the rules of members no longer selected (for example deleted VMs).
  - B(One V2 rule) over a backend pool (O(frontend_port_range_start) and O(frontend_port_range_end)). Azure gives
    every member of O(backend_pool) its own port from the range; O(add_to_pool) first adds the selected members'
    NICs to the pool. The ports are read with the load balancer's C(queryInboundNatRulePortMapping) API.
  - Every selected member is reported with its public endpoint C(ip:port) (the frontend's public IP address, or its
    private one for an internal load balancer), ready for an SSH configuration or an inventory.
  - Mixed V1 and V2 options, ports out of range, a frontend port already used by another rule (overlapping ranges
    included), an exhausted port range, an ambiguous frontend or pool, and a V2 rule on a Basic load balancer are
    refused before anything is changed.
  - A load balancer takes one change at a time. Every write that changes it (NAT rule, NIC binding, pool
    membership) is made one after another, and a write refused with C(AnotherOperationInProgress) because
    something else is changing the load balancer is sent again after a backoff, within O(timeout).
author:
  - azure_flex.vmss maintainers (@azure-flex)
options:
  state:
    description:
      - V(present) creates or updates the rules (and bindings); V(absent) deletes them.
      - With O(frontend_port_start), V(absent) deletes the rules of the selected members.
      - Otherwise V(absent) deletes the rule O(name) (a V1 rule's NIC binding goes with it).
    type: str
    choices: [present, absent]
    default: present
  load_balancer:
    description:
      - Name of the load balancer, in O(load_balancer_resource_group), or its resource ID.
    type: str
    required: true
  load_balancer_resource_group:
    description:
      - Resource group of the load balancer when O(load_balancer) is a name.
      - Defaults to the resource group of the scale set.
    type: str
  frontend_ip_configuration:
    description:
      - Name of the load balancer's frontend IP configuration the rules listen on.
      - Defaults to the only one; a load balancer with several needs this option.
    type: str
  name:
    description:
      - Name of the rule. With O(frontend_port_start), the prefix of the per-instance rule names
        (C(<name>-<vm name>)).
    type: str
    required: true
  frontend_port:
    description:
      - One V1 rule for the one instance named in O(instances), on this frontend port (1-65534).
      - Cannot be combined with the per-instance or V2 options.
    type: int
  frontend_port_start:
    description:
      - One V1 rule per selected instance; the first frontend port to hand out (1-65534).
      - Cannot be combined with O(frontend_port) or the V2 options.
    type: int
  frontend_port_end:
    description:
      - With O(frontend_port_start), the last frontend port to hand out. Defaults to 65534.
    type: int
  purge:
    description:
      - With O(frontend_port_start), also delete the rules named C(<name>-<vm name>) (on the same frontend, with a
        port in the range) whose VM is not selected, for example because it was deleted or filtered out.
    type: bool
    default: false
  frontend_port_range_start:
    description:
      - One V2 rule over O(backend_pool); the first port of its frontend port range (1-65534).
      - Cannot be combined with the V1 options.
    type: int
  frontend_port_range_end:
    description:
      - The last port of the V2 rule's frontend port range. The range needs one port per pool member.
    type: int
  backend_pool:
    description:
      - Name of the backend pool of the V2 rule. Defaults to the load balancer's only pool.
    type: str
  add_to_pool:
    description:
      - With a V2 rule, first add the NICs of the selected members to O(backend_pool) (those not in it yet).
    type: bool
    default: false
  backend_port:
    description:
      - The port on the VMs the rule forwards to (1-65535). Required with O(state=present).
    type: int
  protocol:
    description:
      - Transport protocol of the rule.
    type: str
    choices: [Tcp, Udp, All]
    default: Tcp
  idle_timeout:
    description:
      - TCP idle timeout in minutes (4-30).
    type: int
    default: 4
  enable_floating_ip:
    description:
      - Enable floating IP (direct server return).
    type: bool
    default: false
  enable_tcp_reset:
    description:
      - Send a TCP reset when an idle connection times out.
    type: bool
    default: false
  migrate_to_v2:
    description:
      - Move the per-instance V1 rules C(<name>-<vm name>) (those of the selected members on the frontend, with a port
        from O(frontend_port_start) to O(frontend_port_end)) to one V2 rule O(name) over O(backend_pool). V1 rules
        retire on 30 September 2027.
      - The V2 rule's range is O(frontend_port_start) to O(frontend_port_end) (the ports the V1 rules used), or
        O(frontend_port_range_start) and O(frontend_port_range_end). Protocol, backend port, idle timeout, floating IP
        and TCP reset are taken from the V1 rules, which must agree on them.
      - Azure gives each pool member a port of a V2 rule's range in the pool's order, not the port of its choice. A
        member keeps its frontend port only where its V1 port is the one its place gives it; every member is
        reported with its old and new C(ip:port) (RV(instances[].migration)), and RV(migration.ports_kept) counts
        those kept. Check mode predicts the mapping from the pool's order; the real run observes Azure's order first.
      - Every member stays reachable throughout, through this order of writes, each finished before the next (so
        O(wait=false) is refused). Members not in the pool join it (O(add_to_pool=true) is needed when a member with a
        V1 rule is not in it); a V2 rule C(<name>-v2-staging) is created on a staging range next to the final one (see
        O(migration_port_range_start)), so each member is reachable on its V1 port and on a staging port; each V1
        rule is deleted only once Azure reports its member's staging port; then the V2 rule O(name) is created on the
        final range, and the staging rule is deleted once Azure reports every member's port on it. A failure stops the
        sequence there, with every member reachable on at least one working rule
        (RV(instances[].migration.reachable)); a rerun resumes.
      - With O(purge), the V1 rules C(<name>-<vm name>) of VMs not selected are deleted too.
    type: bool
    default: false
  migration_port_range_start:
    description:
      - With O(migrate_to_v2), the first port of the range of the staging rule that bridges the members while their V1
        rules are removed (as many ports as the final range). Defaults to the first free range after the final one.
    type: int
  instances:
    description:
      - Names of the member VMs, or the single word V(all) for every member (then narrowed by the filters).
      - Required for a V1 rule (exactly one instance with O(frontend_port)), for one rule per instance, and with
        O(add_to_pool). With a V2 rule, the port mappings of these members are reported.
    type: list
    elements: str
extends_documentation_fragment:
  - azure_flex.vmss._azure_auth
  - azure_flex.vmss._selection
  - azure_flex.vmss._wait
  - azure_flex.vmss._attributes
  - azure_flex.vmss._attributes.ACTIONGROUP_ALL
attributes:
  check_mode:
    support: full
    details:
      - Reads the scale set, the members and the load balancer, plans every rule (including the ports new members
        would get), and makes no write call.
      - For a V2 rule, reports the port mappings as they are now.
  diff_mode:
    support: full
    details:
      - The diff shows every rule created, changed or deleted (ports, protocol, bound instance), and the members
        joining the backend pool.
  idempotent:
    support: full
    details:
      - A rule is written only when it differs from the options, and a NIC only when its binding is missing.
seealso:
  - module: azure_flex.vmss.flex_list_instances
  - module: azure_flex.vmss.flex_instance_action
notes:
  - V1 rules are what replaces NAT pools for Flexible scale sets. Microsoft recommends V2 rules for Standard load
    balancers; V2 ports are assigned by Azure in pool order and a member's port is not guaranteed to stay the same
    when the pool changes.
  - With O(wait=false) the writes are still made one after another (a load balancer takes one change at a time);
    only the last one is not waited for.
  - Purging with filters (O(power_states), O(zones), O(fault_domains), O(tags)) deletes the rules of the members
    the filters leave out.
"""

EXAMPLES = r"""
- name: SSH to every member through the load balancer, one port each from 50000 (replaces a NAT pool)
  azure_flex.vmss.flex_nat_rule:
    resource_group: web-rg
    scale_set: web
    load_balancer: web-lb
    name: ssh
    instances: all
    frontend_port_start: 50000
    frontend_port_end: 50999
    backend_port: 22
    purge: true  # drop the rules of members that are gone
  register: ssh

- name: Write an SSH config from the endpoints
  ansible.builtin.copy:
    dest: ~/.ssh/config.d/web
    content: |
      {% for vm, endpoint in ssh.endpoints.items() %}
      Host {{ vm }}
        HostName {{ endpoint.split(':')[0] }}
        Port {{ endpoint.split(':')[1] }}
      {% endfor %}

- name: One RDP rule for one member
  azure_flex.vmss.flex_nat_rule:
    resource_group: web-rg
    scale_set: web
    load_balancer: web-lb
    name: rdp-admin
    instances: [web_1a2b3c4d]
    frontend_port: 33890
    backend_port: 3389

- name: A V2 rule over the backend pool, adding the members' NICs to it
  azure_flex.vmss.flex_nat_rule:
    resource_group: web-rg
    scale_set: web
    load_balancer: web-lb
    backend_pool: web-pool
    add_to_pool: true
    name: ssh-v2
    instances: all
    frontend_port_range_start: 60000
    frontend_port_range_end: 60099
    backend_port: 22

- name: Move the per-member V1 rules to one V2 rule over the pool (V1 retires in September 2027)
  azure_flex.vmss.flex_nat_rule:
    resource_group: web-rg
    scale_set: web
    load_balancer: web-lb
    backend_pool: web-pool
    name: ssh
    instances: all
    frontend_port_start: 50000
    frontend_port_end: 50999
    migrate_to_v2: true
  register: migrated   # migrated.instances[].migration: old and new ip:port of each member

- name: Remove the per-member rules
  azure_flex.vmss.flex_nat_rule:
    resource_group: web-rg
    scale_set: web
    load_balancer: web-lb
    name: ssh
    instances: all
    frontend_port_start: 50000
    frontend_port_end: 50999
    purge: true
    state: absent
"""

RETURN = r"""
instances:
  description: One entry per selected member, in name order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: VM name.
      type: str
      sample: web_1a2b3c4d
    id:
      description: Resource ID of the VM.
      type: str
    rule:
      description: Name of the member's NAT rule.
      type: str
      sample: ssh-web_1a2b3c4d
    frontend_port:
      description: The member's frontend port (predicted in check mode); null when it has none.
      type: int
      sample: 50000
    backend_port:
      description: The port on the VM.
      type: int
      sample: 22
    endpoint:
      description: C(ip:port) to reach the member's backend port; null when it has no port.
      type: str
      sample: 20.0.0.10:50000
    status:
      description:
        - C(changed), C(would_change) (check mode), C(skipped) (nothing to change, or a member named in
          O(instances) that a filter left out, see RV(instances[].reason)) or C(failed).
      type: str
      sample: changed
    reason:
      description: Why a member named in O(instances) was left out by a filter.
      type: str
      returned: when a named member was left out
    changed:
      description: Whether something was (or would be, in check mode) changed for this member.
      type: bool
    actions:
      description:
        - What was done for the member, in order, among C(create_rule), C(update_rule), C(delete_rule),
          C(unbind_other_nic), C(bind_nic) and C(join_pool).
      type: list
      elements: str
      sample: [create_rule, bind_nic]
    migration:
      description: With O(migrate_to_v2), how the member moves from its V1 rule to the V2 rule (predicted in check mode).
      type: dict
      returned: with O(migrate_to_v2=true)
      contains:
        old_rule:
          description: Its V1 rule (null when it had none).
          type: str
        old_port:
          description: Its V1 frontend port.
          type: int
        old_endpoint:
          description: C(ip:port) of its V1 rule.
          type: str
        staging_port:
          description: Its port on the staging range (null when the V2 rule needed none).
          type: int
        staging_endpoint:
          description: C(ip:port) on the staging range.
          type: str
        new_port:
          description: Its port on the V2 rule's final range.
          type: int
        new_endpoint:
          description: C(ip:port) on the final range.
          type: str
        port_kept:
          description: Whether the new port is the old one (null when it had no V1 rule).
          type: bool
        v1_rule_left:
          description: Whether its V1 rule still exists after the task.
          type: bool
        reachable:
          description: The endpoints that reach it after the task (before anything, in check mode).
          type: list
          elements: str
    error:
      description: For a failed member, the Azure error.
      type: dict
      returned: when the member failed
      contains:
        msg:
          description: Message.
          type: str
        code:
          description: ARM error code.
          type: str
        status:
          description: HTTP status, when the failure was an HTTP error.
          type: int
        request_id:
          description: The C(x-ms-request-id) of the failing response.
          type: str
endpoints:
  description: The endpoint C(ip:port) of every selected member that has one, by VM name.
  returned: always
  type: dict
  sample: {"web_1a2b3c4d": "20.0.0.10:50000", "web_5e6f7a8b": "20.0.0.10:50001"}
rules:
  description: Every rule the task looked at, with what was done to it.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Rule name.
      type: str
    id:
      description: Resource ID of the rule.
      type: str
    action:
      description: C(create), C(update), C(delete) or C(keep).
      type: str
    status:
      description: C(changed), C(would_change), C(skipped) (nothing to change) or C(failed).
      type: str
    protocol:
      description: Protocol.
      type: str
    frontend_port:
      description: Frontend port of a V1 rule.
      type: int
      returned: for V1 rules
    instance:
      description: The member a V1 rule is bound to.
      type: str
      returned: for V1 rules
    frontend_port_range_start:
      description: First frontend port of a V2 rule.
      type: int
      returned: for V2 rules
    frontend_port_range_end:
      description: Last frontend port of a V2 rule.
      type: int
      returned: for V2 rules
    backend_pool:
      description: Backend pool of a V2 rule.
      type: str
      returned: for V2 rules
    backend_port:
      description: Backend port.
      type: int
    idle_timeout:
      description: Idle timeout in minutes.
      type: int
    enable_floating_ip:
      description: Floating IP.
      type: bool
    enable_tcp_reset:
      description: TCP reset.
      type: bool
counts:
  description:
    - How many members were selected, changed (or would be, in check mode), skipped and failed (rules of no selected
      member that failed count as failures too), how many rules were deleted, and how many members named in
      O(instances) a filter left out (C(filtered_out), not counted in C(selected)).
  returned: always
  type: dict
  sample: {"selected": 12, "changed": 12, "skipped": 0, "failed": 0, "rules_deleted": 0, "filtered_out": 0}
load_balancer:
  description: The load balancer and frontend used.
  returned: always
  type: dict
  contains:
    id:
      description: Resource ID.
      type: str
    name:
      description: Name.
      type: str
    resource_group:
      description: Resource group.
      type: str
    sku:
      description: SKU (C(Standard) or C(Basic)).
      type: str
    frontend_ip_configuration:
      description: Name of the frontend IP configuration.
      type: str
    address:
      description: The frontend's IP address (public, or private for an internal load balancer).
      type: str
scale_set:
  description: The scale set.
  returned: always
  type: dict
  contains:
    id:
      description: Resource ID.
      type: str
    name:
      description: Name.
      type: str
    resource_group:
      description: Resource group.
      type: str
msg:
  description:
    - A one-line summary of the task (the rule and the members changed, skipped, failed and filtered out).
    - When the task fails, what failed.
  returned: always
  type: str
  sample: "inbound NAT rule ssh: 12 of 12 member(s) changed, 0 skipped"
elapsed_seconds:
  description: Wall-clock time the task took.
  returned: always
  type: float
migration:
  description: With O(migrate_to_v2), what the migration did or, in check mode, would do.
  returned: with O(migrate_to_v2=true)
  type: dict
  contains:
    state:
      description:
        - C(planned) (check mode), C(completed), C(partial) (stopped by a failure; every member still reachable; rerun
          to resume) or C(skipped) (nothing left to migrate).
      type: str
    final_range:
      description: The V2 rule's final range, C([start, end]).
      type: list
      elements: int
    staging_range:
      description: The staging range, C([start, end]); null when none was needed.
      type: list
      elements: int
    staging_rule_left:
      description: Whether the staging rule C(<name>-v2-staging) still exists after the task (it goes last).
      type: bool
    final_rule_ready:
      description: Whether the V2 rule O(name) exists on its final range after the task (and its last write succeeded).
      type: bool
    port_order:
      description:
        - C(observed) when the new ports are those Azure reported, C(predicted from the backend pool's order) otherwise.
      type: str
    ports_kept:
      description: Members whose new port is their old one.
      type: int
    ports_changed:
      description: Members whose port changes.
      type: int
    v1_rules_removed:
      description: V1 rules of the selected members deleted by the task.
      type: int
    v1_rules_left:
      description: V1 rules of the selected members that still exist after the task.
      type: int
retries:
  description:
    - Retries made during the task. C(retries) and C(throttled_responses) count throttling (429) and transient
      errors; C(conflicts) counts writes refused with C(AnotherOperationInProgress) and sent again.
  returned: always
  type: dict
  sample: {"retries": 0, "throttled_responses": 0, "conflicts": 0}
"""

from ansible_collections.azure_flex.vmss.plugins.module_utils import _nat as nat
from ansible_collections.azure_flex.vmss.plugins.module_utils._criteria import (
    SelectionCriteria,
    selection_argument_spec,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import InvalidInputError, member_error
from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import validate_resource_group_name
from ansible_collections.azure_flex.vmss.plugins.module_utils._module import (
    WAIT_ARGUMENT_SPEC,
    AzureFlexModule,
    MemberFailures,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._network import (
    MigrationRunner,
    NatWriter,
    NetworkId,
    execute_rule_plans,
    frontend_address,
    join_members,
    nat_rule_id,
    query_port_mappings,
    read_load_balancer,
)


def argument_spec():
    spec = selection_argument_spec()
    spec.update(WAIT_ARGUMENT_SPEC)
    spec.update(
        state=dict(type="str", default="present", choices=["present", "absent"]),
        load_balancer=dict(type="str", required=True),
        load_balancer_resource_group=dict(type="str"),
        frontend_ip_configuration=dict(type="str"),
        name=dict(type="str", required=True),
        frontend_port=dict(type="int"),
        frontend_port_start=dict(type="int"),
        frontend_port_end=dict(type="int"),
        purge=dict(type="bool", default=False),
        frontend_port_range_start=dict(type="int"),
        frontend_port_range_end=dict(type="int"),
        backend_pool=dict(type="str"),
        add_to_pool=dict(type="bool", default=False),
        backend_port=dict(type="int"),
        protocol=dict(type="str", default="Tcp", choices=list(nat.PROTOCOLS)),
        idle_timeout=dict(type="int", default=4),
        enable_floating_ip=dict(type="bool", default=False),
        enable_tcp_reset=dict(type="bool", default=False),
        migrate_to_v2=dict(type="bool", default=False),
        migration_port_range_start=dict(type="int"),
    )
    return spec


# -- decide ------------------------------------------------------------------------------------------

def load_balancer_ref(params, subscription_id):
    """The load balancer's id parts, from an id or from a name and a group.

    Without load_balancer_resource_group the group is None here: the scale set's, filled in once read.
    """
    value = params["load_balancer"]
    if value.startswith("/"):
        if params.get("load_balancer_resource_group"):
            raise InvalidInputError("load_balancer_resource_group cannot be combined with a load balancer resource id")
        ref = NetworkId.parse(value, "loadBalancers")
        if ref.rest:
            raise InvalidInputError("load_balancer %r is the id of a part of a load balancer, not of a load balancer"
                                    % value)
        if ref.subscription_id.lower() != subscription_id.lower():
            raise InvalidInputError("load_balancer is in subscription %s but the task authenticates to subscription %s"
                                    % (ref.subscription_id, subscription_id))
        return ref
    group = params.get("load_balancer_resource_group")
    if group is not None:
        validate_resource_group_name(group)
    nat.validate_rule_name(value, "load_balancer")  # load balancers follow the same naming rules as NAT rules
    return NetworkId(subscription_id, group, "loadBalancers", value)


# -- V1 -> V2 migration ----------------------------------------------------------------------------

def run_migration(module, request, lb, lb_ref, lb_id, frontend, members, writer, address):
    """Move the per-instance V1 rules to one V2 rule, every member reachable throughout (``_nat.MigrationPlan``)."""
    if not module.wait:
        raise InvalidInputError("migrate_to_v2 needs wait=true: each step must have finished before the next one, so "
                                "that no member loses its last working rule")
    pool = nat.pick_item(lb, "backendAddressPools", module.params["backend_pool"], "backend_pool", "backend pool")
    plan = nat.plan_migration(request, lb, frontend["id"], pool, members)
    v2_plan, staging_plan, v1_plans, stale_plans = rule_plans = plan.rule_plans()
    all_plans = [v2_plan] + ([staging_plan] if staging_plan else []) + v1_plans + stale_plans
    runner = None
    if module.check_mode:
        for rule_plan in all_plans:
            changes = rule_plan.action != "keep"
            rule_plan.outcome = {"actions": ["%s_rule" % rule_plan.action] if changes else [],
                                 "status": "would_change" if changes else "skipped"}
    else:
        runner = MigrationRunner(plan, rule_plans, writer, lambda rule_name, pairs: query_port_mappings(
            module, lb_ref, pool, rule_name, pairs))
        runner.run()
        for rule_plan in all_plans:
            if rule_plan.outcome.get("error") is not None:
                rule_plan.outcome["error"] = member_error(rule_plan.outcome["error"])
    instances, before_endpoints, after_endpoints = [], {}, {}
    for member in plan.members:
        entry, endpoints = migration_entry(plan, runner, member, address)
        instances.append(entry)
        if entry["changed"] or entry["status"] == "failed":
            before_endpoints[member["name"]], after_endpoints[member["name"]] = endpoints
    rules, before, after = rule_entries(all_plans, lb_id, members, pool_name=pool["name"])
    for name in [name for name in before if before[name] == after[name] == "absent"]:  # the staging rule, come and gone
        before.pop(name)
        after.pop(name)
    return instances, rules, {"rules": before, "endpoints": before_endpoints}, \
        {"rules": after, "endpoints": after_endpoints}, migration_summary(plan, runner, instances)


def migration_entry(plan, runner, member, address):
    """One member's result: its old (V1), staging and new (V2) endpoints, and where it is reachable afterwards."""
    key = member["name"].lower()
    old = plan.old_rule(member)
    old_port = old["frontend_port"] if old else None
    staging_port = plan.predicted_port(member, plan.staging)
    new_port = plan.predicted_port(member, plan.final)
    planned = (["join_pool"] if any(m["name"].lower() == key for m in plan.joining) else []) + \
        (["delete_v1_rule"] if old else [])
    entry = member_entry(member, plan.name)
    if runner is None:  # check mode: the plan, predicted from the pool's order; reachable as things are now
        done = planned
        entry.update(status="would_change" if planned else "skipped")
        working = [old_port, staging_port if plan.staging_rule is not None else None,
                   new_port if plan.final_ready else None]
        v1_left = old is not None
    else:
        if runner.staging_ports.get(key) is not None:
            staging_port = runner.staging_ports[key]
            new_port = plan.final[0] + staging_port - plan.staging[0]  # Azure's order on the staging range
        if runner.ports.get(key) is not None:
            new_port = runner.ports[key]
        v1_left = old is not None and key not in runner.removed
        done = (["join_pool"] if key in runner.joined else []) + (["delete_v1_rule"] if key in runner.removed else [])
        working = [old_port if v1_left else None, runner.staging_ports.get(key) if runner.staging_exists else None,
                   runner.ports.get(key) if runner.final_ready else None]
        failed = runner.failed_member is not None and runner.failed_member["name"].lower() == key
        entry.update(status="failed" if failed else "changed" if done else "skipped")
        if failed:
            entry["error"] = member_error(runner.error)
    entry.update(actions=done, changed=bool(done) and entry["status"] != "failed", frontend_port=new_port,
                 backend_port=plan.props["backendPort"], endpoint=nat.endpoint(address, new_port))
    entry["migration"] = {
        "old_rule": old["name"] if old else None, "old_port": old_port, "old_endpoint": nat.endpoint(address, old_port),
        "staging_port": staging_port, "staging_endpoint": nat.endpoint(address, staging_port),
        "new_port": new_port, "new_endpoint": nat.endpoint(address, new_port),
        "port_kept": None if old_port is None or new_port is None else old_port == new_port,
        "v1_rule_left": v1_left,
        "reachable": [nat.endpoint(address, port) for port in working if port is not None],
    }
    return entry, (nat.endpoint(address, old_port), nat.endpoint(address, new_port))


def migration_summary(plan, runner, instances):
    kept = [entry for entry in instances if entry["migration"]["port_kept"]]
    moved = [entry for entry in instances if entry["migration"]["port_kept"] is False]
    if not plan.needed:
        state = "skipped"
    elif runner is None:
        state = "planned"
    else:
        state = "partial" if runner.error is not None else "completed"
    observed = runner is not None and bool(runner.ports or runner.staging_ports)
    return {
        "state": state,
        "final_range": list(plan.final),
        "staging_range": list(plan.staging) if plan.staging else None,
        "staging_rule_left": runner.staging_exists if runner is not None else plan.staging_rule is not None,
        "final_rule_ready": runner.final_ready if runner is not None else plan.final_ready,
        "port_order": "observed" if observed else "predicted from the backend pool's order",
        "ports_kept": len(kept),
        "ports_changed": len(moved),
        "v1_rules_removed": len(runner.removed) if runner is not None else 0,
        "v1_rules_left": sum(1 for entry in instances if entry["migration"]["v1_rule_left"]),
    }


# -- report --------------------------------------------------------------------------------------

def bound_instance(view, members):
    """Name of the member a V1 rule is bound to (or of its NIC, when not a selected member); None if unbound."""
    ipconfig_id = (view or {}).get("backend_ipconfig_id")
    if not ipconfig_id:
        return None
    for member in members:
        if nat.ipconfig_of_member(member, [ipconfig_id]):
            return member["name"]
    return ipconfig_id.split("/ipConfigurations/")[0].split("/")[-1]


def rule_entries(plans, lb_id, members, pool_name=None):
    entries, before, after = [], {}, {}
    for plan in plans:
        was = nat.describe(plan.current, bound_instance(plan.current, members), pool_name) if plan.current else None
        will = None
        if plan.action != "delete" and plan.desired is not None:
            will = nat.describe(plan.desired, plan.member["name"] if plan.member else None, pool_name)
        entry = dict(will or was or {})
        entry.update(name=plan.rule_name, id=nat_rule_id(lb_id, plan.rule_name), action=plan.action,
                     status=plan.outcome["status"])
        if plan.outcome.get("error"):
            entry["error"] = plan.outcome["error"]
        entries.append(entry)
        if plan.outcome["status"] in ("changed", "would_change"):
            before[plan.rule_name] = was or "absent"
            after[plan.rule_name] = will or "absent"
    return entries, before, after


def member_entry(member, rule_name=None):
    return {"name": member["name"], "id": member["id"], "rule": rule_name, "frontend_port": None,
            "backend_port": None, "endpoint": None, "status": "skipped", "changed": False, "actions": []}


def _apply_outcome(entry, outcome):
    entry.update(status=outcome["status"], actions=list(outcome["actions"]),
                 changed=outcome["status"] in ("changed", "would_change"))
    if outcome.get("error"):
        entry["error"] = outcome["error"]


def run_v1(module, request, lb, lb_id, frontend, members, writer, address):
    if request.kind == nat.SINGLE:
        plans = nat.plan_single(request, lb, frontend["id"], members)
    else:
        plans = nat.plan_per_instance(request, lb, frontend["id"], members)
    execute_rule_plans(module, writer, plans)
    by_member = {plan.member["name"].lower(): plan for plan in plans if plan.member is not None}
    instances = []
    for member in members:
        plan = by_member.get(member["name"].lower())
        entry = member_entry(member, plan.rule_name if plan else None)
        if plan is not None:
            _apply_outcome(entry, plan.outcome)
            if plan.action != "delete" and plan.outcome["status"] != "failed":
                entry.update(frontend_port=plan.frontend_port, backend_port=request.backend_port,
                             endpoint=nat.endpoint(address, plan.frontend_port))
        instances.append(entry)
    rules, before, after = rule_entries(plans, lb_id, members)
    return instances, rules, {"rules": before}, {"rules": after}


def run_v2(module, request, lb, lb_ref, lb_id, frontend, members, writer, address):
    pool = nat.pick_item(lb, "backendAddressPools", module.params["backend_pool"], "backend_pool", "backend pool")
    plan, joining = nat.plan_v2(request, lb, frontend["id"], pool, members)
    plans = [plan] if plan is not None else []
    execute_rule_plans(module, writer, plans)
    rule_ok = plan is not None and plan.outcome["status"] != "failed"
    joins = join_members(module, writer, pool, joining) if request.present and rule_ok else {}
    in_pool = nat.pool_ipconfig_ids(pool)
    ports, errors = {}, {}
    rule_exists = rule_ok and request.present and not (module.check_mode and plan.action == "create")
    if rule_exists:
        pairs = []
        for member in members:
            ipconfig_id = nat.ipconfig_of_member(member, in_pool) or joins.get(member["name"].lower(), {}).get(
                "ipconfig_id")
            if ipconfig_id:
                pairs.append((member, ipconfig_id))
        ports, errors = query_port_mappings(module, lb_ref, pool, request.name, pairs)
    instances = []
    for member in members:
        key = member["name"].lower()
        entry = member_entry(member, request.name if request.present else None)
        if key in joins:
            _apply_outcome(entry, joins[key])
        if key in errors:
            entry.update(status="failed", error=member_error(errors[key]))
        if request.present and entry["status"] != "failed":
            entry.update(frontend_port=ports.get(key), backend_port=request.backend_port,
                         endpoint=nat.endpoint(address, ports.get(key)))
        instances.append(entry)
    rules, before, after = rule_entries(plans, lb_id, members, pool_name=pool["name"])
    diff_before, diff_after = {"rules": before}, {"rules": after}
    if joining:
        was = sorted(m["name"] for m in members if nat.ipconfig_of_member(m, in_pool))
        diff_before["backend_pool"] = {pool["name"]: was}
        diff_after["backend_pool"] = {pool["name"]: sorted(was + [
            m["name"] for m in joining if joins.get(m["name"].lower(), {}).get("status") != "failed"])}
    return instances, rules, diff_before, diff_after


# -- the task ------------------------------------------------------------------------------------

def run(module):
    params = module.params
    # Everything that can be refused from the options alone is refused before the first request.
    request = nat.NatRequest.from_params(params)
    criteria = SelectionCriteria.from_params(params)
    lb_ref = load_balancer_ref(params, module.subscription_id)
    selector = module.selector()
    if request.instances_given:
        selection = selector.select(criteria)
        scale_set = selection.scale_set
        members = sorted(selection.members, key=lambda member: member["name"].lower())
    else:
        scale_set = selector.get_scale_set(criteria.scale_set_ref(module.subscription_id))
        members = []
    if lb_ref.resource_group is None:
        lb_ref.resource_group = scale_set["resource_group"]
    network = module.clients.network()
    lb = read_load_balancer(network, lb_ref)
    lb_id = lb.get("id") or lb_ref.id
    frontend = nat.pick_item(lb, "frontendIPConfigurations", params["frontend_ip_configuration"],
                             "frontend_ip_configuration", "frontend IP configuration")
    address = frontend_address(network, frontend)
    writer = NatWriter(module, lb_ref)
    migration = None
    if request.kind == nat.MIGRATE:
        instances, rules, before, after, migration = run_migration(module, request, lb, lb_ref, lb_id, frontend,
                                                                   members, writer, address)
    elif request.kind == nat.V2:
        instances, rules, before, after = run_v2(module, request, lb, lb_ref, lb_id, frontend, members, writer,
                                                 address)
    else:
        instances, rules, before, after = run_v1(module, request, lb, lb_id, frontend, members, writer, address)
    return report(module, scale_set, lb, frontend, address, instances, rules, before, after, writer, migration)


def report(module, scale_set, lb, frontend, address, instances, rules, before, after, writer, migration=None):
    failed_rules = [rule for rule in rules if rule["status"] == "failed"]
    # A failed rule of a failed member counts once (as the member's failure).
    failed_members = [entry for entry in instances if entry["status"] == "failed"]
    member_rules = {entry["rule"].lower() for entry in failed_members if entry.get("rule")}
    member_rules |= {entry["migration"]["old_rule"].lower() for entry in failed_members
                     if (entry.get("migration") or {}).get("old_rule")}
    # Failures of rules that belong to no selected member (purged rules, a V2 rule) count too.
    other_failures = sum(1 for rule in failed_rules if rule["name"].lower() not in member_rules)
    changed = any(entry["changed"] for entry in instances) or any(
        rule["status"] in ("changed", "would_change") for rule in rules)
    extra = {
        "endpoints": {entry["name"]: entry["endpoint"] for entry in instances if entry["endpoint"]},
        "rules": rules,
        "load_balancer": {"id": lb.get("id"), "name": lb.get("name"),
                          "resource_group": NetworkId.parse(lb.get("id"), "loadBalancers").resource_group,
                          "sku": (lb.get("sku") or {}).get("name"), "frontend_ip_configuration": frontend.get("name"),
                          "address": address},
    }
    if migration is not None:
        extra["migration"] = migration
    result = module.member_result(
        scale_set, instances, "inbound NAT rule %s" % module.params["name"], changed=changed,
        filtered_fields={"endpoint": None, "rule": None},
        counts={"rules_deleted": sum(1 for rule in rules if rule["action"] == "delete"
                                     and rule["status"] in ("changed", "would_change"))}, **extra)
    counts = result["counts"]
    counts["failed"] += other_failures
    result["retries"]["conflicts"] = writer.serial.conflicts
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    if counts["failed"]:
        failures = ["%s: %s" % (entry["name"], entry["error"].get("code") or entry["error"].get("msg"))
                    for entry in instances + failed_rules if entry.get("status") == "failed" and entry.get("error")]
        reachable = " The migration stopped there; every member is still reachable (instances[].migration.reachable)" \
            " and a rerun resumes it." if migration is not None else ""
        raise MemberFailures("%d failure(s) managing inbound NAT rules: %s.%s" % (counts["failed"], "; ".join(
            sorted(set(failures))), reachable), result)
    return result


def main():
    AzureFlexModule(argument_spec=argument_spec(), supports_check_mode=True, selects_members=True).run(run)


if __name__ == "__main__":
    main()
