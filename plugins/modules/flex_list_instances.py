#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: flex_list_instances
short_description: List the members of Flexible scale sets and their state
version_added: 0.1.0
description:
  - Lists the member VMs of one Azure Virtual Machine Scale Set in Flexible orchestration mode, of several,
    or of every Flexible scale set in a resource group or in the subscription, with their power state,
    fault domain, zone, size, priority, tags and private IP addresses.
  - Flexible scale sets have no instance list or scale-set instance view API. By default the members come
    from Azure Resource Graph, one request per 1,000 members whatever the number of scale sets.
  - Resource Graph is a cache that usually lags by seconds and can lag by a minute or more. Use
    O(member_source=compute) when the state must be current (for example right after changing it) or when
    you need application health. The compute API is authoritative but costs one request per member (made in
    parallel, see O(max_parallel)).
  - Membership is never silently short. When Resource Graph lists a different number of members than the scale
    set's own count (its capacity), the members are checked against the compute API's list, members Resource
    Graph does not show yet are added (and ones it still shows after their deletion dropped), and the task warns
    with both counts.
author:
  - azure_flex.vmss maintainers (@azure-flex)
options:
  resource_group:
    description:
      - Resource group of the scale set(s).
      - Without O(scale_set), O(scale_sets) or O(scale_set_id), every Flexible scale set of this resource group
        is listed; without O(resource_group) either, every Flexible scale set of the subscription.
  scale_set:
    description:
      - Name of one scale set in O(resource_group).
  scale_sets:
    description:
      - Several scale sets, each a name (in O(resource_group)) or a resource ID.
    type: list
    elements: str
  instances:
    description:
      - Only these member VMs (names), or V(all) (the default).
  include_network:
    description:
      - Add the private IP addresses of each member's network interfaces (one more Resource Graph request
        per 1,000 network interfaces).
    type: bool
    default: true
  include_protection:
    description:
      - Add each member's effective protection (RV(instances[].protection)) from its ARM locks, including the
        locks of its resource group and subscription (one request for the subscription and one per resource
        group, whatever the number of members), and from its native protection policy where Azure accepts it on
        Flexible scale sets (one request per member; one per scale set where Azure refuses it).
      - Needs C(Microsoft.Authorization/locks/read), which the Reader role includes.
    type: bool
    default: false
  include_latest_model:
    description:
      - Add whether each member runs its scale set's latest model (RV(instances[].latest_model)), from the scale
        set's instance list (one more request per 100 members of each scale set).
    type: bool
    default: false
extends_documentation_fragment:
  - azure_flex.vmss._azure_auth
  - azure_flex.vmss._selection
  - azure_flex.vmss._wait.READ
  - azure_flex.vmss._attributes
  - azure_flex.vmss._attributes.ACTIONGROUP_ALL
  - azure_flex.vmss._attributes.INFO_MODULE
seealso:
  - module: azure_flex.vmss.flex_instance_action
"""

EXAMPLES = r"""
- name: List the members of one scale set
  azure_flex.vmss.flex_list_instances:
    resource_group: web-rg
    scale_set: web
  register: web_members

- name: Running members of fault domain 0, straight from the compute API (current state and health)
  azure_flex.vmss.flex_list_instances:
    resource_group: web-rg
    scale_set: web
    power_states: [running]
    fault_domains: [0]
    member_source: compute

- name: Every Flexible scale set member in the subscription
  azure_flex.vmss.flex_list_instances:
  register: all_members

- name: Read application health (only the compute API has it; Resource Graph rows carry no health)
  azure_flex.vmss.flex_list_instances:
    resource_group: web-rg
    scale_set: web
    member_source: compute
  register: web_health

- name: Names of the unhealthy members
  ansible.builtin.debug:
    msg: "{{ web_health.instances | selectattr('health', 'equalto', 'unhealthy') | map(attribute='name') }}"

# Ad-hoc, with credentials in the environment:
# ansible localhost -m azure_flex.vmss.flex_list_instances -a "resource_group=web-rg scale_set=web"
"""

RETURN = r"""
instances:
  description: The members, sorted by scale set and name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: VM name (the instance ID in a Flexible scale set).
      type: str
      sample: web_1a2b3c4d
    id:
      description: Resource ID of the VM.
      type: str
    scale_set:
      description: Name of the scale set the VM belongs to.
      type: str
    resource_group:
      description: Resource group of the VM.
      type: str
    location:
      description: Azure region.
      type: str
    zones:
      description: Availability zones.
      type: list
      elements: str
    fault_domain:
      description: Platform fault domain, when the scale set spreads over several.
      type: int
    power_state:
      description: C(running), C(stopped), C(deallocated), C(starting), C(stopping), C(deallocating) or C(unknown).
      type: str
      sample: running
    provisioning_state:
      description: Provisioning state, such as C(Succeeded) or C(Updating).
      type: str
    health:
      description:
        - Application health reported by the Application Health extension (C(healthy), C(unhealthy), C(unknown),
          C(initializing)); null when the extension is not installed or with O(member_source=resource_graph).
      type: str
    vm_size:
      description: VM size.
      type: str
    priority:
      description: C(Regular), C(Spot) or C(Low).
      type: str
    ephemeral_os_disk:
      description: Whether the OS disk is ephemeral.
      type: bool
    tags:
      description: Tags of the VM.
      type: dict
    private_ips:
      description: Private IP addresses of the VM's network interfaces (with O(include_network)).
      type: list
      elements: str
    network_interface_ids:
      description: Resource IDs of the VM's network interfaces.
      type: list
      elements: str
    maintenance_pending:
      description:
        - Whether platform maintenance is pending that the customer may start now
          (see M(azure_flex.vmss.flex_instance_action) O(azure_flex.vmss.flex_instance_action#module:action=perform_maintenance)).
        - Null with O(member_source=resource_graph), which does not carry it.
      type: bool
    latest_model:
      description:
        - Whether the member runs the scale set's latest model (image, size, extensions of the scale set's
          C(virtualMachineProfile)); after a model change, members are brought to it by the upgrade policy (see
          M(azure_flex.vmss.flex_upgrade_policy)) or by a manual upgrade.
        - Null when Azure's instance list of the Flexible scale set does not say (C(latestModelApplied) absent).
      type: bool
      returned: with O(include_latest_model=true)
    protection:
      description:
        - The member's effective protection, from its own locks and those inherited from its resource group and
          subscription (see M(azure_flex.vmss.flex_instance_lock)).
      type: dict
      returned: with O(include_protection=true)
      contains:
        level:
          description: The most restrictive lock level that applies (C(ReadOnly), C(CanNotDelete)) or null.
          type: str
        protected_from_scale_in:
          description: Whether any lock keeps the member from being deleted, or its native protection policy protects it
            from scale-in.
          type: bool
        protected_from_scale_set_actions:
          description:
            - Whether a ReadOnly lock makes Azure refuse start, restart and the other actions, or the native protection
              policy protects the member from scale-set actions.
          type: bool
        native:
          description:
            - The member's native protection policy (C(protect_from_scale_in), C(protect_from_scale_set_actions)), read
              through the scale set VM API with the VM name; null where Azure does not accept that on the scale set.
          type: dict
        locks:
          description: Every lock that applies (name, id, level, notes, scope, inherited), the member's own first.
          type: list
          elements: dict
scale_sets:
  description: The Flexible scale sets listed.
  returned: always
  type: list
  elements: dict
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
    platform_fault_domain_count:
      description: Number of fault domains members are spread over.
      type: int
    location:
      description: Azure region.
      type: str
    zones:
      description: Availability zones of the scale set.
      type: list
      elements: str
    member_count:
      description: Number of members listed.
      type: int
scale_set:
  description:
    - The scale set listed, as in every module's result; null when the task listed several (or none), see
      RV(scale_sets).
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
counts:
  description:
    - Members listed, in total and by power state (and by health with O(member_source=compute)).
    - As in every module that lists or acts on members, C(selected) (the members listed), C(changed) and C(failed)
      (always 0), C(skipped) (every member listed, as nothing is changed) and C(filtered_out) (members named in
      O(instances) a filter left out).
  returned: always
  type: dict
  sample: {"total": 12, "power_state": {"running": 11, "deallocated": 1}, "health": {}, "selected": 12, "changed": 0,
           "skipped": 12, "failed": 0, "filtered_out": 0}
source:
  description: Where the members came from (C(resource_graph) or C(compute)).
  returned: always
  type: str
filtered_out:
  description:
    - The members named in O(instances) that a filter (O(power_states), O(zones), O(fault_domains), O(tags)) left
      out, each with the reason; the task also warns about them. Empty when no member was named or none was left out.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: VM name.
      type: str
    id:
      description: Resource ID of the VM.
      type: str
    status:
      description: Always C(skipped).
      type: str
    changed:
      description: Always false.
      type: bool
    reason:
      description: Which filter left the member out, and why.
      type: str
      sample: "named in instances, but left out by the filters: power state deallocated is not in power_states (running)"
msg:
  description:
    - A one-line summary of the task (the members listed and filtered out).
    - When the task fails, what failed.
  returned: always
  type: str
  sample: "list instances: 12 member(s) listed"
elapsed_seconds:
  description: Wall-clock time the task took.
  returned: always
  type: float
retries:
  description: Retries made on throttling (429) and transient errors during the task.
  returned: always
  type: dict
  sample: {"retries": 0, "throttled_responses": 0}
"""

from ansible_collections.azure_flex.vmss.plugins.module_utils._criteria import (
    SelectionCriteria,
    filter_members,
    selection_argument_spec,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils._graph import (
    private_ips_by_nic,
    read_resource_graph,
    scale_set_query,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import (
    ScaleSetRef,
    validate_resource_group_name,
    validate_vm_name,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._locks import (
    LockReader,
    NativeProtection,
    protection_summary,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._module import (
    READ_ARGUMENT_SPEC,
    AzureFlexModule,
    listing_line,
    member_counts,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._upgrades import UpgradeClient


def argument_spec():
    spec = selection_argument_spec()
    spec.update(READ_ARGUMENT_SPEC)
    spec.update(
        scale_sets=dict(type="list", elements="str"),
        include_network=dict(type="bool", default=True),
        include_protection=dict(type="bool", default=False),
        include_latest_model=dict(type="bool", default=False),
    )
    return spec


def scale_set_refs(module):
    """The scale sets named by the task, or None for 'every Flexible scale set in scope'."""
    params = module.params
    subscription_id = module.subscription_id
    if params.get("scale_set_id"):
        return [ScaleSetRef.parse(params["scale_set_id"])]
    names = list(params.get("scale_sets") or [])
    if params.get("scale_set"):
        names.append(params["scale_set"])
    if not names:
        return None
    refs = []
    for name in names:
        if name.startswith("/"):
            refs.append(ScaleSetRef.parse(name))
            continue
        if not params.get("resource_group"):
            raise InvalidInputError("scale set %r is a name, so resource_group is required" % name)
        refs.append(ScaleSetRef(subscription_id, params["resource_group"], validate_vm_name(name, "scale set name")))
    for ref in refs:
        if ref.subscription_id.lower() != subscription_id.lower():
            raise InvalidInputError("scale set %s is in subscription %s but the task authenticates to %s"
                                    % (ref.name, ref.subscription_id, subscription_id))
    return refs


def flexible_scale_sets_in_scope(module, resource_group):
    """Every Flexible scale set of the subscription (or of one resource group), from Resource Graph."""
    groups = [validate_resource_group_name(resource_group)] if resource_group else []
    rows = read_resource_graph(module.clients.resource_graph(), module.subscription_id,
                               scale_set_query([], groups, [module.subscription_id]), "list the Flexible scale sets")
    return sorted((ScaleSetRef.parse(row["id"]) for row in rows), key=lambda ref: ref.name)


def run(module):
    params = module.params
    refs = scale_set_refs(module)
    if refs is None:
        refs = flexible_scale_sets_in_scope(module, params.get("resource_group"))
    selector = module.selector()
    criteria_base = dict(instances=params.get("instances"), power_states=params.get("power_states"),
                         zones=params.get("zones"), fault_domains=params.get("fault_domains"),
                         tags=params.get("tags"), member_source=params["member_source"])
    instances, scale_sets, selected = [], [], []
    compute = module.clients.compute() if params["include_latest_model"] else None
    for ref in refs:
        criteria = SelectionCriteria(scale_set_id=ref.id, **criteria_base)
        selection = selector.select(criteria)
        members = filter_members(selection.members, criteria)
        latest = UpgradeClient(compute, ref).latest_model_by_member() if compute is not None and members else {}
        for member in members:
            member["scale_set"] = selection.scale_set["name"]
            if compute is not None:
                member["latest_model"] = latest.get((member["name"] or "").lower())
        instances.extend(members)
        selected.append((selection.scale_set, members))
        summary_keys = ("id", "name", "resource_group", "location", "platform_fault_domain_count", "zones")
        summary = {key: selection.scale_set.get(key) for key in summary_keys}
        summary["member_count"] = len(members)
        scale_sets.append(summary)
    # RV(instances) is documented sorted by scale set and name, whatever order the sets and names were given in.
    instances.sort(key=lambda member: ((member["scale_set"] or "").lower(), (member["name"] or "").lower()))
    if params["include_network"] and instances:
        ips = private_ips_by_nic(module.clients.resource_graph(), module.subscription_id,
                                 [nic for m in instances for nic in m["network_interface_ids"]])
        for member in instances:
            member["private_ips"] = [ip for nic in member["network_interface_ids"] for ip in ips.get(nic.lower(), [])]
    if params["include_protection"] and instances:
        locks = LockReader(module.clients, module.subscription_id).locks_by_member(instances)
        native = {}
        for scale_set, members in selected:
            native.update(NativeProtection(module.clients, scale_set, module.fan_out).flags_by_member(members))
        for member in instances:
            key = member["id"].lower()
            member["protection"] = protection_summary(locks[key], native.get(key))
    for member in instances:
        member.pop("source", None)
    filtered_out = module.selection_outcome()
    counts = member_counts(instances, filtered_out)
    counts.update(total=len(instances), power_state={}, health={})
    for member in instances:
        counts["power_state"][member["power_state"]] = counts["power_state"].get(member["power_state"], 0) + 1
        if member.get("health"):
            counts["health"][member["health"]] = counts["health"].get(member["health"], 0) + 1
    result = module.common_result(listing_line("list instances", counts), selected[0][0] if len(selected) == 1 else None,
                                  instances=instances, scale_sets=scale_sets, counts=counts,
                                  source=params["member_source"], filtered_out=filtered_out)
    if len(selected) != 1:
        result["scale_set"] = None  # a listing of several scale sets (or none) is no one scale set's: see scale_sets
    return result


def main():
    module = AzureFlexModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=[("scale_set_id", "scale_set"), ("scale_set_id", "scale_sets"),
                            ("scale_set_id", "resource_group")],
    )
    module.run(run)


if __name__ == "__main__":
    main()
