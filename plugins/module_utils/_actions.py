# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""The lifecycle actions on Flexible members: what each needs, where it leads, and how it is run.

``flex_instance_action`` (one action on many members at once) and ``flex_rolling_batch`` (one batch of
a rolling run) share this: the ``Action`` classes with their single-VM SDK calls, the per-member
decision (``plan_members``: act or skip, and why), the lock check (``respect_protection``), running the
action (``act_on_member``, ``act_one_by_one``, ``act_delete``) and reading the state after it
(``refresh_after``).
"""

from __future__ import annotations

import time

from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import as_rest_dict
from ansible_collections.azure_flex.vmss.plugins.module_utils._criteria import SelectionCriteria
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    AzureFlexError,
    InvalidInputError,
    azure_errors,
    is_not_found,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import ScaleSetRef
from ansible_collections.azure_flex.vmss.plugins.module_utils._locks import (
    CODE_PROTECTED,
    ProtectionReader,
    blocking_locks,
    describe_locks,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._members import ABSENT, member_from_vm
from ansible_collections.azure_flex.vmss.plugins.module_utils._selection import BULK_READ_MIN, CODE_NOT_A_MEMBER
from ansible_collections.azure_flex.vmss.plugins.module_utils._upgrades import UpgradeClient

# A transitional power state counts as the state it is heading for.
SETTLING = {"starting": "running", "stopping": "stopped", "deallocating": "deallocated"}

# The power state reported when the VM could not be read after the action (see ``refresh_after``).
UNKNOWN = "unknown"

# Right after an action Azure has been seen to answer a VM read with 404 for a moment although the VM
# exists (it was just acted on). Such a read is repeated this many times, this many seconds apart.
AFTER_READ_ATTEMPTS = 3
AFTER_READ_PAUSE_SECONDS = 1.0


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
        if params.get("temp_disk") is not None:
            body["tempDisk"] = params["temp_disk"]
        if params.get("exact_version"):
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


class Upgrade(Action):
    """Bring a member to the scale set's latest model: the scale set's manual upgrade with the VM's name as its
    instance id (Flexible). One call per member, so each member has its own result and wait.

    Idempotent: a member whose ``latest_model`` is true (``read_latest_model``) is skipped, named or not; one
    Azure does not say about (null) is upgraded, as Azure decides what is left to apply. ``params`` carries
    the ``scale_set`` (the selection's summary).
    """

    def extra_skip_reason(self, member, named):
        return "already on the latest model" if member.get("latest_model") is True else None

    def predicted(self, member):
        return self.settled(member)

    def begin(self, compute, member, params):
        return UpgradeClient(compute, ScaleSetRef.parse(params["scale_set"]["id"])).begin_manual_upgrade(
            [member["name"]])


def read_latest_model(module, scale_set, members):
    """Set each member's ``latest_model`` (True, False, or None where Azure does not say) from the scale set's
    VM list: one listing for the whole set, whatever the number of members."""
    by_name = UpgradeClient(module.clients.compute(), ScaleSetRef.parse(scale_set["id"])).latest_model_by_member()
    for member in members:
        member["latest_model"] = by_name.get(str(member["name"]).lower())
    return members


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
    "upgrade": Upgrade("upgrade", description="upgrade to the latest model"),
}

# Options that only mean something with one action.
ACTION_OPTIONS = {"skip_shutdown": "power_off", "hibernate": "deallocate", "temp_disk": "reimage",
                  "exact_version": "reimage", "force_deletion": "delete"}

# The argument spec of those options, and of attempt_protected (flex_instance_action's own options).
ACTION_OPTIONS_ARGUMENT_SPEC = dict(
    skip_shutdown=dict(type="bool", default=False),
    hibernate=dict(type="bool", default=False),
    temp_disk=dict(type="bool"),
    exact_version=dict(type="str"),
    force_deletion=dict(type="bool", default=False),
)


def check_action_options(params):
    """Refuse an option of another action (``temp_disk`` with ``restart``) before any call."""
    defaults = {name: spec.get("default") for name, spec in ACTION_OPTIONS_ARGUMENT_SPEC.items()}
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

def plan_members(action, members, named):
    """Per member: the result entry so far (status ``act`` or ``skipped``), and the member."""
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


def respect_protection(module, action, planned, named, scale_set):
    """Skip, or refuse when named, the members an ARM lock or native instance protection protects from ``action``."""
    todo = [(entry, member) for entry, member in planned if entry["status"] == "act"]
    if not todo:
        return
    protections = ProtectionReader(module.clients, module.subscription_id, scale_set,
                                   module.fan_out).protection_by_member([member for _entry, member in todo])
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
            "Refusing to %s members protected by ARM locks or instance protection: %s. Remove the protection "
            "(azure_flex.vmss.flex_instance_lock with state=absent) or set attempt_protected=true to let Azure decide; nothing was "
            "done." % (action.description, "; ".join(refused)), code=CODE_PROTECTED)


# -- act -----------------------------------------------------------------------------------------

def act_on_member(module, action, member, params):
    """Run ``action`` on one member; True when it finished (waited for), False when only started."""
    compute = module.clients.compute()
    description = "%s VM %s" % (action.description, member["name"])
    if isinstance(action, SimulateEviction):
        with azure_errors("Failed to %s" % description):
            compute.virtual_machines.simulate_eviction(member["resource_group"], member["name"])
        # Azure accepts the request (204) and evicts the VM later: nothing to wait for yet.
        return False
    finished, _result = module.run_operation(lambda: action.begin(compute, member, params), description)
    return finished


def act_one_by_one(module, action, todo, params):
    """``act_on_member`` for every ``(entry, member)`` of ``todo``, concurrently; the fan-out outcomes."""
    return module.fan_out(lambda pair: act_on_member(module, action, pair[1], params), todo)


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


def power_state_after(module, action, member, sleep=time.sleep):
    """The member's power state read after ``action`` finished on it.

    A 404 means ``absent`` after a delete. After any other action the VM was just acted on, so a 404 is
    taken for the brief inconsistency Azure can show right after an operation: the read is repeated
    (``AFTER_READ_ATTEMPTS``, within the task's deadline), and when the VM still cannot be read the state is
    ``unknown`` rather than a claim that the VM is gone.
    """
    compute = module.clients.compute()
    for attempt in range(1, AFTER_READ_ATTEMPTS + 1):
        view = read_unless_gone(member["name"], lambda: compute.virtual_machines.instance_view(
            member["resource_group"], member["name"]))
        if view is not None:
            return member_from_vm({"id": member["id"], "name": member["name"]}, view)["power_state"]
        if action.goal == ABSENT:
            return ABSENT
        if attempt == AFTER_READ_ATTEMPTS or not module.deadline.allows_wait(AFTER_READ_PAUSE_SECONDS):
            break
        sleep(AFTER_READ_PAUSE_SECONDS)
    module.warn("VM %s answered 404 Not Found to %d reads after the %s finished; its power state after the action "
                "is reported as unknown" % (member["name"], attempt, action.description))
    return UNKNOWN


def refresh_after(module, action, acted, scale_set=None):
    """Read the power state of acted-on members after the wait, so RV(after) is observed, not assumed.

    Many members of ``scale_set`` are read with one listing of the set with instance views
    (``ScaleSetSelector.current_members``); a member the listing does not show is read on its own
    (``power_state_after``: a 404 right after an action is read again), so the listing never reports a member
    gone that Azure only briefly did not show.
    """
    todo = list(acted)
    if scale_set is not None and len(todo) > BULK_READ_MIN:
        listed = module.selector().current_members([member for _entry, member in todo], scale_set)
        unseen = []
        for (entry, member), current in zip(todo, listed):
            if current["power_state"] == ABSENT and action.goal != ABSENT:
                unseen.append((entry, member))
            else:
                entry["after"] = current["power_state"]
        todo = unseen
    for outcome in module.fan_out(lambda pair: power_state_after(module, action, pair[1]), todo):
        outcome.item[0]["after"] = outcome.result if outcome.ok else None


# -- selecting for delete --------------------------------------------------------------------------

def select_for_delete(module, selector, listing):
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
