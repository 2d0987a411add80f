#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: flex_upgrade_policy
short_description: Upgrade policy and Azure's rolling upgrades of a Flexible scale set
version_added: 0.2.0
description:
  - Reads and sets the upgrade policy of an Azure Virtual Machine Scale Set in Flexible orchestration mode
    (O(mode) Manual, Automatic or Rolling, and the O(rolling_upgrade_policy)), reads the status of its latest
    rolling upgrade, waits for it within O(timeout), or cancels it.
  - Azure's rolling upgrade brings members to the scale set's latest B(model) (image, size, extensions) batch by
    batch; it does not restart, redeploy or reimage members whose model did not change. For health-gated rolling
    restarts and reimages use the roles C(azure_flex.vmss.rolling_restart) and C(azure_flex.vmss.rolling_reimage).
  - Everything is validated before any write, with the ranges Azure documents (batch and unhealthy percentages
    5 to 100, unhealthy upgraded 0 to 100, the pause an ISO 8601 duration). On a Flexible scale set the Rolling
    mode needs the Application Health extension in the model (load-balancer probes are not used), and rollback of
    failed instances is Uniform only; both are refused before anything is sent.
  - The policy is written only when it differs from the current one (fields not given are kept), so the task is
    idempotent; in check mode nothing is written and the result shows the policy as it would be.
  - Also reports how many members run the latest model (from the scale set's instance list, when Azure says) and
    the scale set's automatic repairs policy.
author:
  - azure_flex.vmss maintainers (@azure-flex)
options:
  resource_group:
    description:
      - Resource group of the scale set. Use with O(scale_set).
    type: str
  scale_set:
    description:
      - Name of the scale set. Use with O(resource_group), or give O(scale_set_id) instead.
    type: str
  scale_set_id:
    description:
      - Resource ID of the scale set, instead of O(resource_group) and O(scale_set).
    type: str
  mode:
    description:
      - How members are brought to the latest model after a model change. V(Manual) leaves it to you
        (see the scale set's manual upgrade by VM name); V(Automatic) upgrades every member at once, with no
        availability guarantee; V(Rolling) upgrades them in batches as O(rolling_upgrade_policy) says.
      - Not given, the mode is kept.
    type: str
    choices: [Automatic, Manual, Rolling]
  rolling_upgrade_policy:
    description:
      - The rolling upgrade policy's fields to set; the fields not given keep their current value (Azure's default
        when there is none). Azure keeps this policy whatever the mode.
    type: dict
    suboptions:
      max_batch_instance_percent:
        description: Largest share of the members upgraded at once (5-100; Azure's default 20).
        type: int
      max_unhealthy_instance_percent:
        description: Largest share of the members that may be unhealthy before and during the upgrade (5-100; 20).
        type: int
      max_unhealthy_upgraded_instance_percent:
        description: Largest share of the members found unhealthy after being upgraded (0-100; 20).
        type: int
      pause_time_between_batches:
        description: Wait after each batch, an ISO 8601 duration such as V(PT0S) (Azure's default) or V(PT30S).
        type: str
      enable_cross_zone_upgrade:
        description: Form batches across availability zones instead of zone by zone.
        type: bool
      prioritize_unhealthy_instances:
        description: Upgrade unhealthy members first.
        type: bool
      max_surge:
        description: Create new members with the new model before deleting old ones, batch by batch.
        type: bool
      rollback_failed_instances_on_policy_breach:
        description:
          - Roll failed members back when the policy is breached. Uniform scale sets only; V(true) is refused here.
        type: bool
  rolling_upgrade:
    description:
      - What to do about the latest rolling upgrade, after the policy is set.
      - V(status) reports it.
      - V(wait) waits until it is no longer C(RollingForward), within O(timeout) (one read every
        O(polling_interval) seconds), and fails the task when it ends C(Faulted), with Azure's error code and
        message. A rolling upgrade the policy change starts is waited for too.
      - V(cancel) cancels it when it is C(RollingForward) (nothing to do otherwise); with O(wait), until Azure
        stopped it (after the batch in flight).
    type: str
    choices: [status, wait, cancel]
    default: status
extends_documentation_fragment:
  - azure_flex.vmss._azure_auth
  - azure_flex.vmss._wait
  - azure_flex.vmss._attributes
  - azure_flex.vmss._attributes.ACTIONGROUP_ALL
attributes:
  check_mode:
    support: full
    details:
      - Reads the scale set, its latest rolling upgrade and its instance list, validates and predicts the policy,
        and makes no write call (no policy update, no cancel). O(rolling_upgrade=wait) does not wait.
  diff_mode:
    support: full
    details:
      - The diff shows the upgrade policy before and after.
  idempotent:
    support: full
    details:
      - The policy is written only when it differs; cancelling when no rolling upgrade runs does nothing.
seealso:
  - module: azure_flex.vmss.flex_list_instances
    description: Reports which members run the latest model (RV(azure_flex.vmss.flex_list_instances#module:instances[].latest_model)).
  - name: Configure rolling upgrades on Virtual Machine Scale Sets
    description: Azure's rolling upgrade policy, its requirements on Flexible scale sets, status and cancel.
    link: https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-configure-rolling-upgrades
notes:
  - Changing the model of a scale set in Rolling mode, or updating a Rolling scale set while members are behind,
    makes Azure start a rolling upgrade; O(rolling_upgrade=wait) in the same task waits for it.
  - Azure skips members protected from scale-set actions (instance protection) in upgrades.
"""

EXAMPLES = r"""
- name: Rolling upgrades in batches of 25 %, 30 seconds apart, unhealthy members first
  azure_flex.vmss.flex_upgrade_policy:
    resource_group: web-rg
    scale_set: web
    mode: Rolling
    rolling_upgrade_policy:
      max_batch_instance_percent: 25
      pause_time_between_batches: PT30S
      prioritize_unhealthy_instances: true

- name: Wait (at most 30 minutes) for the rolling upgrade the model change started
  azure_flex.vmss.flex_upgrade_policy:
    resource_group: web-rg
    scale_set: web
    rolling_upgrade: wait
    timeout: 1800
  register: upgrade

- name: Show its progress
  ansible.builtin.debug:
    msg: "{{ upgrade.rolling_upgrade.code }}: {{ upgrade.rolling_upgrade.progress }}"

- name: Stop a rolling upgrade that goes wrong
  azure_flex.vmss.flex_upgrade_policy:
    resource_group: web-rg
    scale_set: web
    rolling_upgrade: cancel
"""

RETURN = r"""
upgrade_policy:
  description: The scale set's upgrade policy after the task (predicted in check mode).
  returned: always
  type: dict
  contains:
    mode:
      description: C(Automatic), C(Manual) or C(Rolling).
      type: str
      sample: Rolling
    rolling_upgrade_policy:
      description: The rolling upgrade policy (the options' names and values, Azure's defaults filled in); null when
        the scale set has none.
      type: dict
      sample: {"max_batch_instance_percent": 25, "max_unhealthy_instance_percent": 20,
               "max_unhealthy_upgraded_instance_percent": 20, "pause_time_between_batches": "PT30S",
               "enable_cross_zone_upgrade": false, "prioritize_unhealthy_instances": true, "max_surge": false,
               "rollback_failed_instances_on_policy_breach": false}
rolling_upgrade:
  description: The latest rolling upgrade after the task; null when the scale set never had one.
  returned: always
  type: dict
  contains:
    code:
      description: C(RollingForward) (running), C(Completed), C(Cancelled) or C(Faulted) (a threshold was crossed).
      type: str
    start_time:
      description: When it started.
      type: str
    last_action:
      description: C(Start) or C(Cancel).
      type: str
    last_action_time:
      description: When the last action happened.
      type: str
    progress:
      description: Members C(successful), C(failed), C(in_progress) and C(pending).
      type: dict
      sample: {"successful": 8, "failed": 0, "in_progress": 2, "pending": 2}
    error:
      description: Azure's error (C(code), C(message)) when it faulted; null otherwise.
      type: dict
    policy:
      description: The rolling upgrade policy it runs with.
      type: dict
members:
  description:
    - How many members run the scale set's latest model (C(latest)), an older one (C(behind)), or are not described
      by Azure's instance list (C(unknown)).
  returned: always
  type: dict
  sample: {"latest": 10, "behind": 2, "unknown": 0}
automatic_repairs:
  description: The scale set's automatic repairs policy (C(enabled), C(grace_period), C(repair_action)); null when none.
  returned: always
  type: dict
actions:
  description: What the task did (or would do in check mode), among C(update_policy) and C(cancel_rolling_upgrade).
  returned: always
  type: list
  elements: str
  sample: [update_policy]
scale_set:
  description: The scale set (C(id), C(name), C(resource_group)).
  returned: always
  type: dict
msg:
  description:
    - A one-line summary of the task, naming the scale set and what was done, or C(no change).
    - When the task fails, what failed.
  returned: always
  type: str
  sample: "upgrade policy of web: update_policy"
elapsed_seconds:
  description: Wall-clock time the task took.
  returned: always
  type: float
retries:
  description: Retries after throttling (429) and transient errors.
  returned: always
  type: dict
  sample: {"retries": 0, "throttled_responses": 0}
"""

from ansible_collections.azure_flex.vmss.plugins.module_utils import _upgrades as upgrades
from ansible_collections.azure_flex.vmss.plugins.module_utils._criteria import SelectionCriteria
from ansible_collections.azure_flex.vmss.plugins.module_utils._module import (
    WAIT_ARGUMENT_SPEC,
    AzureFlexModule,
    MemberFailures,
)


def argument_spec():
    spec = dict(
        resource_group=dict(type="str"),
        scale_set=dict(type="str"),
        scale_set_id=dict(type="str"),
        mode=dict(type="str", choices=list(upgrades.UPGRADE_MODES)),
        rolling_upgrade_policy=dict(type="dict", options=upgrades.rolling_policy_argument_spec()),
        rolling_upgrade=dict(type="str", default="status", choices=["status", "wait", "cancel"]),
    )
    spec.update(WAIT_ARGUMENT_SPEC)
    return spec


def run(module):
    params = module.params
    # Every option is checked before the first request.
    wanted = upgrades.WantedPolicy.from_params(params["mode"], params["rolling_upgrade_policy"])
    criteria = SelectionCriteria(resource_group=params["resource_group"], scale_set=params["scale_set"],
                                 scale_set_id=params["scale_set_id"])
    ref = criteria.scale_set_ref(module.subscription_id)
    client = upgrades.UpgradeClient(module.clients.compute(), ref)

    # read
    scale_set = client.read_scale_set()
    current = (scale_set.get("properties") or {}).get("upgradePolicy") or {}
    status = client.latest_rolling_upgrade()

    # decide
    policy = upgrades.merged_policy(current, wanted)
    actions = []
    if not wanted.empty:
        upgrades.check_for_scale_set(scale_set, policy)
        if upgrades.policy_differs(current, policy):
            actions.append("update_policy")
    running = upgrades.status_view(status) is not None and upgrades.status_view(status)["code"] == upgrades.RUNNING
    if params["rolling_upgrade"] == "cancel" and running:
        actions.append("cancel_rolling_upgrade")

    # act
    after = policy if "update_policy" in actions else current
    if not module.check_mode:
        if "update_policy" in actions:
            module.run_operation(lambda: client.begin_policy_update(policy),
                                 "update the upgrade policy of scale set %s" % ref.name)
            scale_set = client.read_scale_set()
            after = (scale_set.get("properties") or {}).get("upgradePolicy") or {}
        if "cancel_rolling_upgrade" in actions:
            module.run_operation(client.begin_cancel, "cancel the rolling upgrade of scale set %s" % ref.name)
        if actions:
            status = client.latest_rolling_upgrade()
        if params["rolling_upgrade"] == "wait":
            status = client.wait_until_ended(module.deadline, module.params["polling_interval"])
    members = upgrades.model_counts(client.latest_model_by_member())

    # report
    result = module.common_result(
        "upgrade policy of %s: %s" % (ref.name, ", ".join(actions) if actions else "no change"),
        {"id": scale_set.get("id") or ref.id, "name": ref.name, "resource_group": ref.resource_group},
        changed=bool(actions))
    result.update({
        "actions": actions,
        "upgrade_policy": upgrades.policy_view(after),
        "rolling_upgrade": upgrades.status_view(status),
        "members": members,
        "automatic_repairs": upgrades.repairs_view((scale_set.get("properties") or {}).get("automaticRepairsPolicy")),
    })
    if module._diff:
        result["diff"] = {"before": {"upgrade_policy": upgrades.policy_view(current)},
                          "after": {"upgrade_policy": result["upgrade_policy"]}}
    rolling = result["rolling_upgrade"]
    if params["rolling_upgrade"] == "wait" and not module.check_mode and rolling and rolling["code"] == "Faulted":
        error = upgrades.faulted_error(ref.name, status)
        raise MemberFailures(error.msg, dict(result, code=error.code))
    if params["rolling_upgrade"] == "wait" and not module.check_mode and rolling and rolling["code"] == "Cancelled":
        module.warn("The rolling upgrade of scale set %s was cancelled (%d member(s) still pending)"
                    % (ref.name, rolling["progress"]["pending"]))
    return result


def main():
    AzureFlexModule(argument_spec=argument_spec(), supports_check_mode=True, selects_members=True).run(run)


if __name__ == "__main__":
    main()
