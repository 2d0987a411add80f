#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: flex_instance_action
short_description: Start, stop, restart, reimage or delete members of a Flexible scale set
version_added: 0.1.0
description:
  - Runs one lifecycle action on one, several or all member VMs of an Azure Virtual Machine Scale Set in
    Flexible orchestration mode, concurrently, in one task.
  - Flexible scale sets have no scale-set level lifecycle API for their members, so each member is acted on
    through the single-VM API (start, power off, deallocate, restart, redeploy, reimage, perform maintenance,
    simulate eviction), and deletion goes through the scale set's batch delete with VM names as instance IDs.
  - The power state of every targeted member is read from the compute API before deciding, never from Resource
    Graph alone (it can lag by a minute), so the state actions are idempotent.
  - State actions (V(start), V(power_off), V(deallocate), V(delete)) skip members already in that state and
    report C(changed=false) when there is nothing to do. V(upgrade) skips members already on the scale set's
    latest model. One-shot actions (V(restart), V(redeploy), V(reimage), V(perform_maintenance),
    V(simulate_eviction)) act every time.
  - Members selected by V(all) or by a filter that cannot take the action are skipped and reported with the
    reason (for example V(restart) of a deallocated member, V(simulate_eviction) of a regular VM,
    V(perform_maintenance) without pending maintenance). Members named in O(instances) are always attempted,
    so Azure's own refusal is reported.
  - Members protected by an ARM lock (see M(azure_flex.vmss.flex_instance_lock)) are left alone. A C(ReadOnly)
    lock (protection from scale-set actions) blocks every action; any lock blocks V(delete). Protected members
    selected by V(all) or a filter are skipped and reported with the lock; naming a protected member fails the
    task before anything is done, unless O(attempt_protected=true). Inherited locks (resource group, subscription)
    count too.
  - Throttling (HTTP 429 with Retry-After) and transient server errors are retried for every call; every wait is
    bounded by O(timeout).
author:
  - azure_flex.vmss maintainers (@azure-flex)
options:
  action:
    description:
      - The action to run on the selected members.
      - V(start) starts stopped or deallocated members.
      - V(power_off) stops members but keeps them allocated (still billed); see O(skip_shutdown).
      - V(deallocate) stops and deallocates members; see O(hibernate).
      - V(restart) restarts running members.
      - V(redeploy) moves members to new hosts and starts them.
      - V(reimage) reimages the OS disk of members; see O(temp_disk) and O(exact_version).
      - V(perform_maintenance) starts platform maintenance that is pending on the members.
      - V(simulate_eviction) simulates the eviction of Spot members.
      - V(delete) deletes members through the scale set's batch delete; see O(force_deletion).
      - V(upgrade) brings members to the scale set's latest model (Uniform's "update instances") through the scale
        set's manual upgrade with each member's VM name, one call per member. Which members are behind is read from
        the scale set's VM list (C(latestModelApplied)); members already on the latest model are skipped, members
        Azure says nothing about are upgraded. The member is briefly down while Azure applies the model. For an
        upgrade in batches with a health gate, use the role C(azure_flex.vmss.rolling_upgrade); for Azure's own
        rolling upgrade policy, M(azure_flex.vmss.flex_upgrade_policy).
    type: str
    required: true
    choices: [start, power_off, deallocate, restart, redeploy, reimage, perform_maintenance, simulate_eviction,
              delete, upgrade]
  instances:
    description:
      - Names of the member VMs, or V(all). Required, so that acting on every member is always explicit.
    required: true
  skip_shutdown:
    description:
      - With O(action=power_off), stop the VMs without a graceful shutdown of the guest OS.
    type: bool
    default: false
  hibernate:
    description:
      - With O(action=deallocate), hibernate the VMs (they need hibernation enabled).
    type: bool
    default: false
  temp_disk:
    description:
      - With O(action=reimage), also reset the temporary disk (VMs with an ephemeral OS disk only).
    type: bool
  exact_version:
    description:
      - With O(action=reimage), the image version (C(Major.Minor.Patch)) to reimage to, when the VM's image
        reference uses C(latest).
    type: str
  force_deletion:
    description:
      - With O(action=delete), force the deletion (faster; the guest gets no chance to shut down).
    type: bool
    default: false
  attempt_protected:
    description:
      - Act on members protected by an ARM lock too, and let Azure decide (it refuses with C(ScopeLocked)).
      - By default protected members selected by V(all) or a filter are skipped, and naming one fails the task
        before any member is acted on. Reading the locks costs one request for the subscription and one per
        resource group; with V(true) no lock is read.
    type: bool
    default: false
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
      - Reads the scale set and the members, predicts each member's outcome, and makes no write call.
  diff_mode:
    support: full
    details:
      - The diff shows each targeted member's power state before and after (C(absent) once deleted).
  idempotent:
    support: partial
    details:
      - V(start), V(power_off), V(deallocate), V(delete) and V(upgrade) are idempotent. The other actions act every
        time.
seealso:
  - module: azure_flex.vmss.flex_list_instances
notes:
  - With O(wait=false) the actions are started and the task returns at once; members then show as
    C(started) with no C(after) state.
  - V(simulate_eviction) always reports C(started), because Azure accepts the request and evicts the VM shortly after.
"""

EXAMPLES = r"""
- name: Restart every member of a Flexible scale set, 10 at a time
  azure_flex.vmss.flex_instance_action:
    resource_group: web-rg
    scale_set: web
    action: restart
    instances: all
    max_parallel: 10

- name: Deallocate the members of fault domain 2 that are running
  azure_flex.vmss.flex_instance_action:
    resource_group: web-rg
    scale_set: web
    action: deallocate
    instances: all
    fault_domains: [2]
    power_states: [running]

- name: Reimage two members to a pinned image version
  azure_flex.vmss.flex_instance_action:
    scale_set_id: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/web-rg/providers/Microsoft.Compute/virtualMachineScaleSets/web
    action: reimage
    instances: [web_1a2b3c4d, web_5e6f7a8b]
    exact_version: 1.2.3

- name: Bring the members that are behind to the scale set's latest model (a second run changes nothing)
  azure_flex.vmss.flex_instance_action:
    resource_group: web-rg
    scale_set: web
    action: upgrade
    instances: all

- name: Delete members (idempotent, a second run changes nothing)
  azure_flex.vmss.flex_instance_action:
    resource_group: web-rg
    scale_set: web
    action: delete
    instances: [web_1a2b3c4d]
    force_deletion: true

# Ad-hoc, with credentials in the environment (AZURE_SUBSCRIPTION_ID, AZURE_CLIENT_ID, AZURE_SECRET, AZURE_TENANT):
# ansible localhost -m azure_flex.vmss.flex_instance_action -a "resource_group=web-rg scale_set=web action=restart instances=all"
"""

RETURN = r"""
instances:
  description: One entry per selected member, in name order.
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
    action:
      description: The action requested.
      type: str
      sample: restart
    status:
      description:
        - C(changed) (acted and finished), C(started) (acted, not waited for), C(would_change) (check mode),
          C(skipped) (nothing to do, see RV(instances[].reason)) or C(failed) (see RV(instances[].error)).
      type: str
      sample: changed
    changed:
      description: Whether the action ran (or would run, in check mode) on this member.
      type: bool
    reason:
      description: Why a member was skipped.
      type: str
      sample: already deallocated
    protection:
      description:
        - The member's effective protection (as RV(azure_flex.vmss.flex_list_instances#module:instances[].protection)),
          when a lock made the task skip it.
      type: dict
      returned: when a lock made the task skip the member
    before:
      description: Power state before the action (C(running), C(stopped), C(deallocated), ...).
      type: str
      sample: running
    after:
      description:
        - Power state after the action (predicted in check mode); C(absent) once deleted; null when not waited for.
        - C(unknown) when the VM answered 404 to every read right after the action (a warning says so); a VM that
          was just acted on is not reported C(absent) on the strength of one 404.
      type: str
      sample: running
    latest_model:
      description:
        - With O(action=upgrade), whether the member runs the scale set's latest model (after the upgrade when it
          was waited for); null when Azure does not say.
      type: bool
      returned: with O(action=upgrade)
    fault_domain:
      description: Platform fault domain of the member.
      type: int
    zones:
      description: Availability zones of the member.
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
          description: ARM error code, such as C(OperationNotAllowed) or C(ScopeLocked).
          type: str
        status:
          description: HTTP status, when the failure was an HTTP error.
          type: int
        request_id:
          description: The C(x-ms-request-id) of the failing response, for Azure support.
          type: str
counts:
  description:
    - How many members were selected, changed (or would be, in check mode, or were started), skipped and failed, and how
      many members named in O(instances) a filter left out (C(filtered_out), not counted in C(selected)).
  returned: always
  type: dict
  sample: {"selected": 12, "changed": 12, "skipped": 0, "failed": 0, "filtered_out": 0}
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
    - A one-line summary of the task (the action and the members changed, skipped, failed and filtered out).
    - When the task fails, what failed.
  returned: always
  type: str
  sample: "restart: 3 of 12 member(s) changed, 9 skipped"
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

from ansible_collections.azure_flex.vmss.plugins.module_utils._actions import (
    ACTION_OPTIONS_ARGUMENT_SPEC,
    ACTIONS,
    Upgrade,
    act_delete,
    act_one_by_one,
    check_action_options,
    plan_members,
    read_latest_model,
    refresh_after,
    respect_protection,
    select_for_delete,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._criteria import (
    SelectionCriteria,
    selection_argument_spec,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import member_error
from ansible_collections.azure_flex.vmss.plugins.module_utils._members import ABSENT
from ansible_collections.azure_flex.vmss.plugins.module_utils._module import WAIT_ARGUMENT_SPEC, AzureFlexModule


def argument_spec():
    spec = selection_argument_spec(instances_required=True)
    spec.update(WAIT_ARGUMENT_SPEC)
    spec.update(ACTION_OPTIONS_ARGUMENT_SPEC)
    spec.update(
        action=dict(type="str", required=True, choices=sorted(ACTIONS)),
        attempt_protected=dict(type="bool", default=False),
    )
    return spec


def run(module):
    params = module.params
    check_action_options(params)
    action = ACTIONS[params["action"]]
    criteria = SelectionCriteria.from_params(params)
    named = criteria.instances is not None
    selector = module.selector()
    # Every target's state is read again before deciding: Resource Graph can lag by a minute.
    if action.goal == ABSENT and named:
        selection = select_for_delete(module, selector, criteria.scope_only())
        selection.members = selector.refresh(selection.members, criteria, selection.scale_set)
    else:
        selection = selector.select_current(criteria)
    if isinstance(action, Upgrade):
        # The manual upgrade needs the scale set; whether a member is behind comes from its VM list.
        params = dict(params, scale_set=selection.scale_set)
        read_latest_model(module, selection.scale_set, selection.members)
    planned = plan_members(action, selection.members, named)
    if isinstance(action, Upgrade):
        for entry, member in planned:
            entry["latest_model"] = member.get("latest_model")
    if not params["attempt_protected"]:
        respect_protection(module, action, planned, named, selection.scale_set)
    todo = [(entry, member) for entry, member in planned if entry["status"] == "act"]

    def act(todo):
        if action.goal == ABSENT:
            return act_delete(module, selection.scale_set, todo, params)
        return [(outcome.item, outcome.result if outcome.ok else False, outcome.error)
                for outcome in act_one_by_one(module, action, todo, params)]

    waited = []
    for (entry, member), finished, error in module.mark_or_act(todo, act):
        if error is not None:
            entry.update(status="failed", changed=False, after=None, error=member_error(error))
        elif finished:
            entry["status"] = "changed"
            waited.append((entry, member))
        else:
            entry.update(status="started", after=None)
    if waited:
        refresh_after(module, action, waited, selection.scale_set)
        if isinstance(action, Upgrade):
            latest = read_latest_model(module, selection.scale_set, [dict(member) for _entry, member in waited])
            for (entry, _member), member in zip(waited, latest):
                entry["latest_model"] = member["latest_model"]

    entries = [entry for entry, _member in planned]
    return module.report_members(selection.scale_set, entries, "instances", action.description, what=params["action"])


def main():
    AzureFlexModule(argument_spec=argument_spec(), supports_check_mode=True, selects_members=True).run(run)


if __name__ == "__main__":
    main()
