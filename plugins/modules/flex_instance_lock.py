#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: flex_instance_lock
short_description: Protect members of a Flexible scale set (instance protection, by ARM locks or natively)
version_added: 0.1.0
description:
  - Instance protection for one, several or all members of a Flexible scale set in one task, with Azure Resource
    Manager locks on the member VMs (O(mechanism=lock), the default), or with Azure's own protection policy
    (C(protectionPolicy)) where Azure accepts it on Flexible scale sets (O(mechanism=native); O(mechanism=auto)
    tries it and falls back to locks).
  - O(protection=scale_in) stands for Uniform's C(protectFromScaleIn) and places a C(CanNotDelete) lock, so the
    member cannot be deleted (scale-in, batch delete, VM delete) until the lock is removed.
  - O(protection=scale_set_actions) stands for C(protectFromScaleSetActions) and places a C(ReadOnly) lock, which
    also makes Azure refuse start, restart, power off, reimage and every other POST action and any update.
  - Idempotent. An existing lock of that name is compared (level, and notes when O(notes) is given) and only
    written when it differs. O(state=absent) removes only the named lock on each member, never a lock of another
    name and never an inherited one.
  - Every member's result reports its effective protection afterwards, including locks inherited from its
    resource group or subscription, so a task shows why Azure will refuse an action even when this module has
    nothing to change.
  - With O(mechanism=native) the module sets C(protectFromScaleIn) and C(protectFromScaleSetActions) through the
    scale set VM API with the VM name (one read and, where it differs, one write per member). Sources disagree on
    whether Flexible scale sets accept it (the instance-protection page says so from API version 2023-09-01; calls
    with a VM name were seen refused with C(instanceId must be a number)), so the module probes first. Where Azure
    refuses, V(native) fails before any write and V(auto) warns and uses locks. Azure enforces native protection
    on autoscale scale-in and on scale-set level operations (upgrades, batch actions) only; the collection's
    own actions (M(azure_flex.vmss.flex_instance_action), the rolling roles) honour it as they honour locks.
author:
  - azure_flex.vmss maintainers (@azure-flex)
options:
  instances:
    description:
      - Names of the member VMs, or V(all). Required, so that locking every member is always explicit.
    required: true
  protection:
    description:
      - The protection to give, in the terms of Uniform scale sets. V(scale_in) places a C(CanNotDelete) lock,
        V(scale_set_actions) a C(ReadOnly) lock.
      - One of O(protection) and O(level) is required with O(state=present).
    type: str
    choices: [scale_in, scale_set_actions]
  level:
    description:
      - The lock level, for those who prefer the ARM terms.
    type: str
    choices: [CanNotDelete, ReadOnly]
  name:
    description:
      - Name of the lock on each member.
      - Defaults to C(azure-flex-protect-from-scale-in) for C(CanNotDelete) and
        C(azure-flex-protect-from-scale-set-actions) for C(ReadOnly). With O(state=absent) give O(name), or
        O(protection) or O(level) to pick the default name.
      - At most 260 characters, none of C(<), C(>), C(%), C(&), C(:), C(\\), C(?) or C(/).
    type: str
  notes:
    description:
      - Notes stored on the lock (at most 512 characters), for example the reason and a ticket number.
      - When not given, the notes of an existing lock are left as they are.
    type: str
  mechanism:
    description:
      - How members are protected.
      - V(lock), ARM locks (C(CanNotDelete) for scale-in, C(ReadOnly) for scale-set actions).
      - V(native), Azure's protection policy on the member (C(protectFromScaleIn); C(protectFromScaleSetActions),
        which implies protection from scale-in). O(name) and O(notes) do not apply. Fails, before any write,
        where Azure refuses it on the scale set.
      - V(auto), V(native) where Azure accepts it, else V(lock) with a warning. The result's RV(mechanism) says
        which one was used.
      - With V(native), O(state=absent) and O(protection=scale_in) remove both flags; O(protection=scale_set_actions)
        removes protection from scale-set actions and keeps protection from scale-in.
    type: str
    choices: [lock, native, auto]
    default: lock
  state:
    description:
      - V(present) ensures the lock on every selected member; V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - azure_flex.vmss._azure_auth
  - azure_flex.vmss._selection
  - azure_flex.vmss._wait.READ
  - azure_flex.vmss._attributes
  - azure_flex.vmss._attributes.ACTIONGROUP_ALL
attributes:
  check_mode:
    support: full
    details:
      - Reads the members and their locks, predicts each member's outcome, and makes no write call.
  diff_mode:
    support: full
    details:
      - The diff shows, per changed member, the lock before and after (null when there is none).
  idempotent:
    support: full
seealso:
  - module: azure_flex.vmss.flex_instance_action
    description: Skips members protected from the action it runs, and refuses named ones.
  - module: azure_flex.vmss.flex_list_instances
    description: Reports each member's effective protection with O(azure_flex.vmss.flex_list_instances#module:include_protection=true).
  - name: Lock your resources to protect your infrastructure
    description: How Azure locks work, and what a ReadOnly lock blocks.
    link: https://learn.microsoft.com/azure/azure-resource-manager/management/lock-resources
notes:
  - Creating and deleting locks needs the Owner or User Access Administrator role, or a custom role with
    C(Microsoft.Authorization/locks/*); Contributor is not enough. A 403 says so.
  - A C(ReadOnly) lock also blocks changes made by Azure on the VM's behalf, such as extension updates; remove it
    (O(state=absent)) before maintenance that needs them.
  - The lock API is synchronous, so O(timeout) bounds the task and there is nothing to wait for.
"""

EXAMPLES = r"""
- name: Protect two members from scale-in (as Uniform's protectFromScaleIn)
  azure_flex.vmss.flex_instance_lock:
    resource_group: web-rg
    scale_set: web
    instances: [web_1a2b3c4d, web_5e6f7a8b]
    protection: scale_in
    notes: Holds the leader role; CHG-1234

- name: Freeze the members of zone 1 (no start, restart, reimage or delete)
  azure_flex.vmss.flex_instance_lock:
    resource_group: web-rg
    scale_set: web
    instances: all
    zones: ["1"]
    protection: scale_set_actions

- name: Remove the scale-in protection from every member
  azure_flex.vmss.flex_instance_lock:
    resource_group: web-rg
    scale_set: web
    instances: all
    protection: scale_in
    state: absent

- name: Show why members are protected (inherited locks included)
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.protection.locks | map(attribute='name') | list }}"
  loop: "{{ lock_result.instances }}"
  loop_control:
    label: "{{ item.name }}"
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
    status:
      description:
        - C(changed) (lock written or removed), C(would_change) (check mode), C(skipped) (already as requested,
          or a member named in O(instances) that a filter left out, see RV(instances[].reason)) or C(failed) (see
          RV(instances[].error)).
      type: str
      sample: changed
    reason:
      description: Why a member named in O(instances) was left out by a filter.
      type: str
      returned: when a named member was left out
    changed:
      description: Whether the lock was (or, in check mode, would be) written or removed.
      type: bool
    native:
      description:
        - With the native mechanism, the member's protection policy after the task (predicted in check mode), with
          C(protect_from_scale_in) and C(protect_from_scale_set_actions).
      type: dict
      returned: with the native mechanism
    lock:
      description:
        - The named lock on the member after the task (predicted in check mode); null when absent, and with the
          native mechanism.
      type: dict
      contains:
        name:
          description: Lock name.
          type: str
        level:
          description: C(CanNotDelete) or C(ReadOnly).
          type: str
        notes:
          description: Lock notes.
          type: str
    protection:
      description: The member's effective protection after the task, from its own and its inherited locks.
      type: dict
      contains:
        level:
          description: The most restrictive lock level that applies (C(ReadOnly), C(CanNotDelete)) or null.
          type: str
        protected_from_scale_in:
          description: Whether any lock keeps the member from being deleted, or its native protection policy protects it
            from scale-in.
          type: bool
        protected_from_scale_set_actions:
          description: Whether a ReadOnly lock makes Azure refuse start, restart and other actions.
          type: bool
        native:
          description:
            - The member's native protection policy (C(protect_from_scale_in), C(protect_from_scale_set_actions));
              null when not read (the lock mechanism) or not accepted by Azure.
          type: dict
        locks:
          description: Every lock that applies, its own first.
          type: list
          elements: dict
          contains:
            name:
              description: Lock name.
              type: str
            id:
              description: Lock resource ID.
              type: str
            level:
              description: Lock level.
              type: str
            notes:
              description: Lock notes.
              type: str
            scope:
              description: The resource ID the lock sits on (the VM, its resource group or subscription).
              type: str
            inherited:
              description: Whether the lock sits on a scope above the VM.
              type: bool
    error:
      description: For a failed member, the Azure error (msg, code, status, request_id).
      type: dict
      returned: when the member failed
counts:
  description:
    - How many members were selected, changed (or would be, in check mode, or were started), skipped and failed, and how
      many members named in O(instances) a filter left out (C(filtered_out), not counted in C(selected)).
  returned: always
  type: dict
  sample: {"selected": 2, "changed": 2, "skipped": 0, "failed": 0, "filtered_out": 0}
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
lock:
  description: The lock the task manages; null with the native mechanism.
  returned: always
  type: dict
  sample: {"name": "azure-flex-protect-from-scale-in", "level": "CanNotDelete", "state": "present"}
mechanism:
  description: The mechanism used, C(lock) or C(native) (with O(mechanism=auto), the one chosen).
  returned: always
  type: str
  sample: lock
msg:
  description:
    - A one-line summary of the task, naming the lock (or native protection) and the members changed, skipped,
      failed and filtered out.
    - When the task fails, what failed.
  returned: always
  type: str
  sample: "set lock azure-flex-protect-from-scale-in: 2 of 2 member(s) changed, 0 skipped"
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
from ansible_collections.azure_flex.vmss.plugins.module_utils._criteria import (
    SelectionCriteria,
    selection_argument_spec,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    AzureFlexError,
    InvalidInputError,
    member_error,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._locks import (
    CODE_NATIVE_REFUSED,
    DEFAULT_LOCK_NAMES,
    LOCK_LEVELS,
    MECHANISM_LOCK,
    MECHANISM_NATIVE,
    MECHANISMS,
    PROTECTION_LEVELS,
    PROTECTION_OF_LEVEL,
    LockReader,
    NativeProtection,
    lock_errors,
    native_flags,
    protection_summary,
    validate_lock_name,
    validate_lock_notes,
    wanted_native,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._module import READ_ARGUMENT_SPEC, AzureFlexModule

LOCK_PROVIDER = "/providers/Microsoft.Authorization/locks/"


def argument_spec():
    spec = selection_argument_spec(instances_required=True)
    spec.update(READ_ARGUMENT_SPEC)
    spec.update(
        protection=dict(type="str", choices=sorted(PROTECTION_LEVELS)),
        level=dict(type="str", choices=list(LOCK_LEVELS)),
        name=dict(type="str"),
        notes=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        mechanism=dict(type="str", default=MECHANISM_LOCK, choices=list(MECHANISMS)),
    )
    return spec


class WantedLock:
    """The lock the task asks for: its name, level (None for state=absent without a level) and notes."""

    def __init__(self, params):
        self.state = params["state"]
        self.level = PROTECTION_LEVELS.get(params["protection"]) or params["level"]
        if self.state == "present" and self.level is None:
            raise InvalidInputError("state=present needs protection (scale_in or scale_set_actions) or level")
        name = params["name"] or DEFAULT_LOCK_NAMES.get(self.level)
        if name is None:
            raise InvalidInputError("state=absent needs the lock's name, or protection or level to pick the default name")
        self.name = validate_lock_name(name)
        self.notes = validate_lock_notes(params["notes"])

    def differs(self, existing):
        if existing is None:
            return self.state == "present"
        if self.state == "absent":
            return True
        return existing["level"] != self.level or (self.notes is not None and (existing["notes"] or "") != self.notes)

    def after(self, existing):
        if self.state == "absent":
            return None
        notes = self.notes if self.notes is not None else (existing or {}).get("notes")
        return {"name": self.name, "level": self.level, "notes": notes}

    def body(self, existing):
        properties = {"level": self.after(existing)["level"]}
        notes = self.after(existing)["notes"]
        if notes is not None:
            properties["notes"] = notes
        return {"properties": properties}

    def summary(self):
        return {"name": self.name, "level": self.level, "state": self.state}


# -- decide --------------------------------------------------------------------------------------

def own_lock(protection, name):
    """The lock called ``name`` on the member itself (not an inherited one), or None."""
    for lock in protection["locks"]:
        if not lock["inherited"] and (lock["name"] or "").lower() == name.lower():
            return lock
    return None


def plan(members, protections, wanted):
    entries = []
    for member in members:
        protection = protections.get(member["id"].lower()) or protection_summary([])
        existing = own_lock(protection, wanted.name)
        before = _public(existing)
        changes = wanted.differs(existing)
        entry = {"name": member["name"], "id": member["id"], "changed": changes,
                 "status": "act" if changes else "skipped", "before": before,
                 "lock": wanted.after(existing) if changes else before}
        entry["protection"] = predicted_protection(protection, member["id"], existing, entry["lock"])
        entries.append((entry, member, existing))
    return entries


def predicted_protection(protection, member_id, existing, lock_after):
    """The member's protection once its named lock is as ``lock_after`` (None: removed)."""
    locks = [lock for lock in protection["locks"] if lock is not existing]
    if lock_after is not None:
        lock_id = (existing or {}).get("id") or member_id + LOCK_PROVIDER + lock_after["name"]
        locks.append(dict(lock_after, id=lock_id, scope=member_id, inherited=False))
    return protection_summary(locks)


def _public(lock):
    return None if lock is None else {"name": lock["name"], "level": lock["level"], "notes": lock["notes"]}


# -- act -----------------------------------------------------------------------------------------

def apply_locks(module, todo, wanted):
    client = module.clients.locks()

    def write(item):
        entry, member, existing = item
        if wanted.state == "absent":
            with lock_errors("Failed to remove lock %s from VM %s" % (wanted.name, member["name"])):
                client.management_locks.delete_by_scope(member["id"], existing["name"])
            return None
        with lock_errors("Failed to lock VM %s" % member["name"]):
            return as_rest_dict(client.management_locks.create_or_update_by_scope(
                member["id"], wanted.name, wanted.body(existing)))

    return module.fan_out(write, todo)


# -- the task ------------------------------------------------------------------------------------

def choose_mechanism(module, params, wanted, scale_set, members):
    """``(mechanism, native flags by member id, NativeProtection)``: probe native protection unless locks are asked."""
    mechanism = params["mechanism"]
    if mechanism == MECHANISM_LOCK:
        return MECHANISM_LOCK, None, None
    lock_only = [option for option in ("name", "notes") if params[option] is not None]
    if mechanism == MECHANISM_NATIVE and lock_only:
        raise InvalidInputError("%s apply to ARM locks only, not with mechanism=native" % " and ".join(lock_only))
    if wanted.level is None:
        raise InvalidInputError("mechanism=%s needs protection (scale_in or scale_set_actions) or level" % mechanism)
    native = NativeProtection(module.clients, scale_set, module.fan_out)
    flags = native.flags_by_member(members)
    if native.refusal is None:
        if lock_only:
            module.warn("%s apply to ARM locks only; Azure accepts native protection here, so they are ignored"
                        % " and ".join(lock_only))
        return MECHANISM_NATIVE, flags, native
    if mechanism == MECHANISM_NATIVE:
        raise AzureFlexError("%s. Nothing was changed; use mechanism=lock (ARM locks) or mechanism=auto."
                             % native.refusal_message(), code=CODE_NATIVE_REFUSED, status=native.refusal.status,
                             request_id=native.refusal.request_id)
    module.warn("%s; using ARM locks instead (mechanism=auto)." % native.refusal_message())
    return MECHANISM_LOCK, None, None


def run_native(module, scale_set, wanted, members, flags, native):
    """Set or clear the protection policy of each member where it differs."""
    protection = PROTECTION_OF_LEVEL[wanted.level]
    locks = LockReader(module.clients, module.subscription_id).locks_by_member(members)
    planned = []
    for member in members:
        key = member["id"].lower()
        current = flags.get(key)
        entry = {"name": member["name"], "id": member["id"], "lock": None, "before": current}
        if current is None:  # deleted since it was listed
            entry.update(status="failed", changed=False, native=None, protection=protection_summary(locks.get(key, [])),
                         error={"msg": "VM %s is no longer a member of the scale set" % member["name"]})
            planned.append((entry, member, None))
            continue
        policy = wanted_native(current, protection, wanted.state)
        after = native_flags(policy)
        changes = after != current
        entry.update(changed=changes, status="act" if changes else "skipped", native=after if changes else current,
                     protection=protection_summary(locks.get(key, []), after if changes else current))
        planned.append((entry, member, policy))
    todo = [item for item in planned if item[0]["status"] == "act"]

    def write(item):
        _entry, member, policy = item
        return module.run_operation(lambda: native.begin_write(member, policy),
                                    "set the instance protection of VM %s" % member["name"])

    for outcome in module.mark_or_act(todo, lambda todo: module.fan_out(write, todo)):
        entry = outcome.item[0]
        if outcome.ok:
            entry["status"] = "changed"
        else:
            entry.update(status="failed", changed=False, native=entry["before"],
                         protection=protection_summary(locks.get(entry["id"].lower(), []), entry["before"]),
                         error=member_error(outcome.error))
    return report(module, scale_set, [entry for entry, _member, _policy in planned], wanted, MECHANISM_NATIVE)


def run(module):
    params = module.params
    wanted = WantedLock(params)
    selection = module.selector().select(SelectionCriteria.from_params(params))
    members = sorted(selection.members, key=lambda member: (member["name"] or "").lower())
    mechanism, flags, native = choose_mechanism(module, params, wanted, selection.scale_set, members)
    if mechanism == MECHANISM_NATIVE:
        return run_native(module, selection.scale_set, wanted, members, flags, native)
    protections = LockReader(module.clients, module.subscription_id).protection_by_member(members)
    planned = plan(members, protections, wanted)
    todo = [item for item in planned if item[0]["status"] == "act"]
    for outcome in module.mark_or_act(todo, lambda todo: apply_locks(module, todo, wanted)):
        entry = outcome.item[0]
        if outcome.ok:
            entry["status"] = "changed"
        else:
            entry.update(status="failed", changed=False, lock=entry["before"],
                         protection=protections.get(entry["id"].lower()), error=member_error(outcome.error))
    return report(module, selection.scale_set, [entry for entry, _member, _existing in planned], wanted)


def report(module, scale_set, entries, wanted, mechanism=MECHANISM_LOCK):
    native = mechanism == MECHANISM_NATIVE
    diff = None
    if module._diff:
        acted = [entry for entry in entries if entry["changed"]]
        key, after = ("native", "native") if native else ("locks", "lock")
        diff = {"before": {key: {entry["name"]: entry["before"] for entry in acted}},
                "after": {key: {entry["name"]: entry[after] for entry in acted}}}
    for entry in entries:
        entry.pop("before", None)
    if native:
        failed_to = "%s native protection" % ("set" if wanted.state == "present" else "clear")
    else:
        failed_to = "%s lock %s" % ("set" if wanted.state == "present" else "remove", wanted.name)
    return module.report_members(scale_set, entries, None, failed_to, diff=diff, mechanism=mechanism,
                                 lock=None if native else wanted.summary())


def main():
    module = AzureFlexModule(argument_spec=argument_spec(), supports_check_mode=True, selects_members=True,
                             mutually_exclusive=[("protection", "level")])
    module.run(run)


if __name__ == "__main__":
    main()
