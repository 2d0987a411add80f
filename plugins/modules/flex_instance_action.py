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
    report C(changed=false) when there is nothing to do. One-shot actions (V(restart), V(redeploy),
    V(reimage), V(perform_maintenance), V(simulate_eviction)) act every time.
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
    type: str
    required: true
    choices: [start, power_off, deallocate, restart, redeploy, reimage, perform_maintenance, simulate_eviction,
              delete]
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
  - azure_flex.vmss.azure_auth
  - azure_flex.vmss.selection
  - azure_flex.vmss.wait
  - azure_flex.vmss.attributes
  - azure_flex.vmss.attributes.ACTIONGROUP_ALL
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
      - V(start), V(power_off), V(deallocate) and V(delete) are idempotent. The other actions act every time.
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
      description: Power state after the action (predicted in check mode); C(absent) once deleted; null when not waited for.
      type: str
      sample: running
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
  description: How many members were selected, changed, skipped and failed.
  returned: always
  type: dict
  sample: {"selected": 12, "changed": 12, "skipped": 0, "failed": 0}
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

from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import as_rest_dict
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    AzureFlexError,
    InvalidInputError,
    azure_errors,
    is_not_found,
    member_error,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._locks import (
    CODE_PROTECTED,
    LockReader,
    blocking_locks,
    describe_locks,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._module import WAIT_ARGUMENT_SPEC, AzureFlexModule
from ansible_collections.azure_flex.vmss.plugins.module_utils._selection import (
    ABSENT,
    CODE_NOT_A_MEMBER,
    SELECTION_MUTUALLY_EXCLUSIVE,
    SELECTION_REQUIRED_ONE_OF,
    SELECTION_REQUIRED_TOGETHER,
    SelectionCriteria,
    member_from_vm,
    selection_argument_spec,
)

# A transitional power state counts as the state it is heading for.
SETTLING = {"starting": "running", "stopping": "stopped", "deallocating": "deallocated"}


class Action:
    """What an action needs, where it leads, and the SDK call that runs it on one VM."""

    def __init__(self, name, goal=None, needs=None, description=None):
        self.name = name
        self.goal = goal  # the power state a state action ensures; None for one-shot actions
        self.needs = needs  # power states an implicitly selected member must be in
        self.description = description or name.replace("_", " ")

    def settled(self, member):
        return SETTLING.get(member["power_state"], member["power_state"])

    def skip_reason(self, member, named):
        """Why this member is skipped (None: act on it)."""
        state = self.settled(member)
        if self.goal is not None and (state == self.goal or (self.goal == "stopped" and state == "deallocated")):
            return "already %s" % member["power_state"]
        if named or self.needs is None or state in self.needs:
            return self.extra_skip_reason(member, named)
        return "not %s (power state %s)" % (" or ".join(self.needs), member["power_state"])

    def extra_skip_reason(self, member, named):
        return None

    def predicted(self, member):
        return self.goal or ("running" if self.settled(member) in ("running", "stopped", "deallocated") else
                             member["power_state"])

    def begin(self, compute, member, params):
        raise NotImplementedError


class Start(Action):
    def begin(self, compute, member, params):
        return compute.virtual_machines.begin_start(member["resource_group"], member["name"])


class PowerOff(Action):
    def begin(self, compute, member, params):
        return compute.virtual_machines.begin_power_off(member["resource_group"], member["name"],
                                                        skip_shutdown=params["skip_shutdown"])


class Deallocate(Action):
    def begin(self, compute, member, params):
        kwargs = {"hibernate": True} if params["hibernate"] else {}
        return compute.virtual_machines.begin_deallocate(member["resource_group"], member["name"], **kwargs)


class Restart(Action):
    def begin(self, compute, member, params):
        return compute.virtual_machines.begin_restart(member["resource_group"], member["name"])


class Redeploy(Action):
    def predicted(self, member):
        return "running"

    def begin(self, compute, member, params):
        return compute.virtual_machines.begin_redeploy(member["resource_group"], member["name"])


class Reimage(Action):
    def predicted(self, member):
        return "running"

    def begin(self, compute, member, params):
        body = {}
        if params["temp_disk"] is not None:
            body["tempDisk"] = params["temp_disk"]
        if params["exact_version"]:
            body["exactVersion"] = params["exact_version"]
        if body:
            return compute.virtual_machines.begin_reimage(member["resource_group"], member["name"], body)
        return compute.virtual_machines.begin_reimage(member["resource_group"], member["name"])


class PerformMaintenance(Action):
    def extra_skip_reason(self, member, named):
        if not named and not member.get("maintenance_pending"):
            return "no maintenance pending"
        return None

    def predicted(self, member):
        return "running"

    def begin(self, compute, member, params):
        return compute.virtual_machines.begin_perform_maintenance(member["resource_group"], member["name"])


class SimulateEviction(Action):
    def extra_skip_reason(self, member, named):
        if not named and str(member.get("priority") or "").lower() != "spot":
            return "not a Spot VM"
        return None

    def predicted(self, member):
        return "deallocated"


ACTIONS = {
    "start": Start("start", goal="running"),
    "power_off": PowerOff("power_off", goal="stopped", description="power off"),
    "deallocate": Deallocate("deallocate", goal="deallocated"),
    "restart": Restart("restart", needs=("running",)),
    "redeploy": Redeploy("redeploy"),
    "reimage": Reimage("reimage"),
    "perform_maintenance": PerformMaintenance("perform_maintenance", description="perform maintenance on"),
    "simulate_eviction": SimulateEviction("simulate_eviction", needs=("running",), description="simulate eviction of"),
    "delete": Action("delete", goal=ABSENT),
}

# Options that only mean something with one action.
ACTION_OPTIONS = {"skip_shutdown": "power_off", "hibernate": "deallocate", "temp_disk": "reimage",
                  "exact_version": "reimage", "force_deletion": "delete"}


def argument_spec():
    spec = selection_argument_spec(instances_required=True)
    spec.update(WAIT_ARGUMENT_SPEC)
    spec.update(
        action=dict(type="str", required=True, choices=sorted(ACTIONS)),
        skip_shutdown=dict(type="bool", default=False),
        hibernate=dict(type="bool", default=False),
        temp_disk=dict(type="bool"),
        exact_version=dict(type="str"),
        force_deletion=dict(type="bool", default=False),
        attempt_protected=dict(type="bool", default=False),
    )
    return spec


def check_action_options(params):
    defaults = {name: spec.get("default") for name, spec in argument_spec().items()}
    for option, action in ACTION_OPTIONS.items():
        value = params.get(option)
        if value is not None and value != defaults[option] and params["action"] != action:
            raise InvalidInputError("%s applies only to action=%s, not action=%s" % (option, action, params["action"]))


# -- read ----------------------------------------------------------------------------------------

def read_unless_gone(name, call):
    """The VM read by ``call()`` as a REST dict, or None when the VM no longer exists."""
    try:
        with azure_errors("Failed to read VM %s" % name):
            return as_rest_dict(call())
    except AzureFlexError as exc:
        if is_not_found(exc):
            return None
        raise


# -- decide --------------------------------------------------------------------------------------

def plan(action, members, named):
    """Per member: the result entry so far, and whether to act."""
    entries = []
    for member in members:
        entry = {"name": member["name"], "id": member["id"], "action": action.name, "before": member["power_state"],
                 "after": member["power_state"], "fault_domain": member["fault_domain"], "zones": member["zones"],
                 "changed": False, "status": "skipped"}
        if member["power_state"] == ABSENT and action.goal != ABSENT:
            entry["reason"] = "no longer exists"
        else:
            reason = action.skip_reason(member, named)
            if reason:
                entry["reason"] = reason
            else:
                entry.update(changed=True, status="act", after=action.predicted(member))
        entries.append((entry, member))
    return entries


def respect_protection(module, action, planned, named):
    """Skip, or refuse when named, the members an ARM lock protects from ``action``."""
    todo = [(entry, member) for entry, member in planned if entry["status"] == "act"]
    if not todo:
        return
    protections = LockReader(module.clients, module.subscription_id).protection_by_member(
        [member for _entry, member in todo])
    refused = []
    for entry, member in todo:
        protection = protections.get(member["id"].lower())
        blocking = blocking_locks(protection, deleting=action.goal == ABSENT) if protection else []
        if not blocking:
            continue
        if named:
            refused.append("%s (%s)" % (member["name"], describe_locks(blocking)))
        else:
            entry.update(status="skipped", changed=False, after=entry["before"], protection=protection,
                         reason="protected by lock %s" % describe_locks(blocking))
    if refused:
        raise AzureFlexError(
            "Refusing to %s members protected by ARM locks: %s. Remove the protection (azure_flex.vmss."
            "flex_instance_lock with state=absent) or set attempt_protected=true to let Azure decide; nothing was "
            "done." % (action.description, "; ".join(refused)), code=CODE_PROTECTED)


# -- act -----------------------------------------------------------------------------------------

def act_one_by_one(module, action, todo, params):
    compute = module.clients.compute()

    def act(pair):
        entry, member = pair
        description = "%s VM %s" % (action.description, member["name"])
        if isinstance(action, SimulateEviction):
            with azure_errors("Failed to %s" % description):
                compute.virtual_machines.simulate_eviction(member["resource_group"], member["name"])
            # Azure accepts the request (204) and evicts the VM later: nothing to wait for yet.
            return False
        finished, _result = module.run_operation(lambda: action.begin(compute, member, params), description)
        return finished

    return module.fan_out(act, todo)


def act_delete(module, scale_set, todo, params):
    """One batch delete through the scale set (Flexible: the instance ids are the VM names)."""
    compute = module.clients.compute()
    names = [member["name"] for _entry, member in todo]
    kwargs = {"force_deletion": True} if params["force_deletion"] else {}

    def begin():
        return compute.virtual_machine_scale_sets.begin_delete_instances(
            scale_set["resource_group"], scale_set["name"], {"instanceIds": names}, **kwargs)

    try:
        finished, _result = module.run_operation(begin, "delete %d member(s) of scale set %s"
                                                 % (len(names), scale_set["name"]))
        return [(pair, finished, None) for pair in todo]
    except AzureFlexError as exc:
        return [(pair, False, exc) for pair in todo]


def refresh_after(module, acted):
    """Read the power state of acted-on members after the wait, so RV(after) is observed, not assumed."""
    compute = module.clients.compute()

    def read(pair):
        entry, member = pair
        view = read_unless_gone(entry["name"], lambda: compute.virtual_machines.instance_view(
            member["resource_group"], member["name"]))
        return ABSENT if view is None else member_from_vm({"id": entry["id"], "name": entry["name"]}, view)["power_state"]

    for outcome in module.fan_out(read, acted):
        outcome.item[0]["after"] = outcome.result if outcome.ok else None


# -- the task ------------------------------------------------------------------------------------

def run(module):
    params = module.params
    check_action_options(params)
    action = ACTIONS[params["action"]]
    criteria = SelectionCriteria.from_params(params)
    named = criteria.instances is not None
    selector = module.selector()
    # Every target's state is read again before deciding: Resource Graph can lag by a minute.
    if action.goal == ABSENT and named:
        selection = _select_for_delete(module, selector, criteria.scope_only())
        selection.members = selector.refresh(selection.members, criteria)
    else:
        selection = selector.select_current(criteria)
    planned = plan(action, selection.members, named)
    if not params["attempt_protected"]:
        respect_protection(module, action, planned, named)
    todo = [(entry, member) for entry, member in planned if entry["status"] == "act"]

    if module.check_mode:
        for entry, _member in todo:
            entry["status"] = "would_change"
    elif todo:
        if action.goal == ABSENT:
            outcomes = act_delete(module, selection.scale_set, todo, params)
        else:
            outcomes = [(outcome.item, outcome.result if outcome.ok else False, outcome.error)
                        for outcome in act_one_by_one(module, action, todo, params)]
        waited = []
        for (entry, member), finished, error in outcomes:
            if error is not None:
                entry.update(status="failed", changed=False, after=None, error=member_error(error))
            elif finished:
                entry["status"] = "changed"
                waited.append((entry, member))
            else:
                entry.update(status="started", after=None)
        if waited:
            refresh_after(module, waited)

    entries = [entry for entry, _member in planned]
    return module.report_members(selection.scale_set, entries, "instances", action.description)


def _select_for_delete(module, selector, listing):
    """For delete, a named VM that no longer exists is already in the desired state.

    Every member is listed; a name missing from the listing is read directly (Resource Graph may not
    show a VM created seconds ago): gone means absent, a VM outside the scale set is refused.
    """
    everyone = SelectionCriteria(resource_group=listing.resource_group, scale_set=listing.scale_set,
                                 scale_set_id=listing.scale_set_id, member_source=listing.member_source)
    selection = selector.select(everyone)
    scale_set = selection.scale_set
    present = {member["name"].lower(): member for member in selection.members}
    compute = module.clients.compute()
    members, outsiders = [], []
    for name in listing.instances:
        member = present.get(name.lower())
        if member is None:
            raw = read_unless_gone(name, lambda: compute.virtual_machines.get(
                scale_set["resource_group"], name, expand="instanceView"))
            if raw is None:
                member = {"name": name, "resource_group": scale_set["resource_group"], "power_state": ABSENT,
                          "id": "%s/virtualMachines/%s" % (scale_set["id"].split("/providers/")[0]
                                                           + "/providers/Microsoft.Compute", name),
                          "fault_domain": None, "zones": [], "tags": {}}
            else:
                owner = ((raw.get("properties") or {}).get("virtualMachineScaleSet") or {}).get("id") or ""
                if owner.lower() != scale_set["id"].lower():
                    outsiders.append("%s (%s)" % (name, "member of %s" % owner if owner else "not in any scale set"))
                member = member_from_vm(raw)
        members.append(member)
    if outsiders:
        raise AzureFlexError("Requested instances are unusable; not members of scale set %s: %s"
                             % (scale_set["name"], ", ".join(outsiders)), code=CODE_NOT_A_MEMBER)
    selection.members = members
    return selection


def main():
    module = AzureFlexModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=SELECTION_MUTUALLY_EXCLUSIVE,
        required_one_of=SELECTION_REQUIRED_ONE_OF,
        required_together=SELECTION_REQUIRED_TOGETHER,
    )
    module.run(run)


if __name__ == "__main__":
    main()
