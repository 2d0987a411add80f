# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""Instance protection for Flexible members: ARM management locks, and Azure's own protection policy.

Through locks: Uniform's ``protectFromScaleIn`` becomes a CanNotDelete lock on the member VM,
``protectFromScaleSetActions`` a ReadOnly lock (which also refuses POST actions such as start and
restart). A member is protected by its own locks and by the locks of its resource group and
subscription, which it inherits.

Natively: one page says Flexible sets accept ``protectionPolicy`` through the VMSS-VM API with the VM
name from api-version 2023-09-01; calls with a VM name were also observed to fail with 400
InvalidParameter "instanceId must be a number". ``NativeProtection`` therefore probes (one GET of
one member) and reports ``None`` (unknown) when Azure refuses, never a guess. Azure enforces the
native flags only on autoscale scale-in and scale-set level operations; the collection's own actions
honour them as they honour locks: protection from scale-set actions blocks every action, protection
from scale-in blocks delete (``blocking_locks`` returns them as entries of level ``instance
protection``).

``LockReader`` finds the effective locks of many members in a few calls: one listing for the
subscription's own locks and one per resource group (a resource group listing includes the locks of
the resources inside it). Which scope a lock sits on is taken from its id, so the result does not
depend on whether a listing also returns inherited locks (Azure's documentation is not explicit).
"""

from __future__ import annotations

import contextlib
import re

from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import as_rest_dict
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    AzureFlexError,
    InvalidInputError,
    arm_error_code,
    azure_errors,
    http_status,
    is_not_found,
)

LEVEL_CAN_NOT_DELETE = "CanNotDelete"
LEVEL_READ_ONLY = "ReadOnly"
LOCK_LEVELS = (LEVEL_CAN_NOT_DELETE, LEVEL_READ_ONLY)
# How blocking_locks() names a member's native protection policy among its locks.
LEVEL_NATIVE = "instance protection"

MECHANISM_LOCK = "lock"
MECHANISM_NATIVE = "native"
MECHANISM_AUTO = "auto"
MECHANISMS = (MECHANISM_LOCK, MECHANISM_NATIVE, MECHANISM_AUTO)
CODE_NATIVE_REFUSED = "AzureFlexNativeProtectionRefused"

# The Uniform protection policy each lock level stands in for.
PROTECTION_LEVELS = {"scale_in": LEVEL_CAN_NOT_DELETE, "scale_set_actions": LEVEL_READ_ONLY}
DEFAULT_LOCK_NAMES = {
    LEVEL_CAN_NOT_DELETE: "azure-flex-protect-from-scale-in",
    LEVEL_READ_ONLY: "azure-flex-protect-from-scale-set-actions",
}

CODE_PROTECTED = "AzureFlexProtectedByLock"

LOCK_NAME_MAX = 260
LOCK_NOTES_MAX = 512
_BAD_LOCK_NAME = re.compile(r"[<>%&:\\?/\x00-\x1f]")
_LOCK_ID = re.compile(r"^(?P<scope>.*?)/providers/Microsoft\.Authorization/locks/(?P<name>[^/]+)$", re.IGNORECASE)

READ_PERMISSION_HINT = ("Reading locks needs Microsoft.Authorization/locks/read, which the Reader role includes.")
WRITE_PERMISSION_HINT = ("Creating or deleting locks needs the Owner or User Access Administrator role, or a custom "
                         "role with Microsoft.Authorization/locks/*.")


def validate_lock_name(name):
    if not name or len(name) > LOCK_NAME_MAX or _BAD_LOCK_NAME.search(name):
        raise InvalidInputError("lock name %r is invalid: 1 to %d characters, none of < > %% & : \\ ? / or control "
                                "characters" % (name, LOCK_NAME_MAX))
    return name


def validate_lock_notes(notes):
    if notes is not None and len(notes) > LOCK_NOTES_MAX:
        raise InvalidInputError("lock notes are %d characters long; Azure allows at most %d"
                                % (len(notes), LOCK_NOTES_MAX))
    return notes


def lock_scope(lock_id):
    """The resource id a lock sits on, from the lock's id (None when the id is not a lock id)."""
    match = _LOCK_ID.match(lock_id or "")
    return match.group("scope") if match else None


def lock_from_rest(lock, member_id=None):
    """A lock in the collection's layout; ``inherited`` says whether it sits above ``member_id``."""
    properties = lock.get("properties") or {}
    scope = lock_scope(lock.get("id"))
    return {
        "name": lock.get("name"),
        "id": lock.get("id"),
        "level": properties.get("level"),
        "notes": properties.get("notes"),
        "scope": scope,
        "inherited": member_id is not None and (scope or "").lower() != member_id.lower(),
    }


def protection_summary(locks, native=None):
    """What a member's effective locks (the most restrictive wins) and its native protection policy (``native``:
    ``native_flags()``, or None when not known) protect it from."""
    levels = {lock["level"] for lock in locks}
    read_only = LEVEL_READ_ONLY in levels
    native_actions = bool(native and native["protect_from_scale_set_actions"])
    native_scale_in = bool(native and (native["protect_from_scale_in"] or native_actions))
    return {
        "level": LEVEL_READ_ONLY if read_only else (LEVEL_CAN_NOT_DELETE if levels else None),
        "protected_from_scale_in": bool(levels & set(LOCK_LEVELS)) or native_scale_in,
        "protected_from_scale_set_actions": read_only or native_actions,
        "native": dict(native) if native is not None else None,
        # The member's own locks first, then the nearest scope above it (resource group, subscription).
        "locks": sorted(locks, key=lambda lock: (lock["inherited"], -len(lock["scope"] or ""),
                                                 (lock["name"] or "").lower())),
    }


def blocking_locks(protection, deleting):
    """What protects a member from an action: the locks that make Azure refuse it (any lock for a delete, ReadOnly
    for a POST action), then its native protection, as an entry of level ``instance protection``
    (``protectFromScaleSetActions`` for every action, ``protectFromScaleIn`` for a delete)."""
    blocking = [lock for lock in protection["locks"]
                if deleting and lock["level"] in LOCK_LEVELS or lock["level"] == LEVEL_READ_ONLY]
    native = protection.get("native") or {}
    flag = ("protectFromScaleSetActions" if native.get("protect_from_scale_set_actions") else
            "protectFromScaleIn" if deleting and native.get("protect_from_scale_in") else None)
    if flag is not None:
        blocking.append({"name": flag, "id": None, "level": LEVEL_NATIVE, "notes": None, "scope": None,
                         "inherited": False})
    return blocking


def describe_locks(locks):
    """``"'name' (ReadOnly, on resource group rg)"`` for each lock, comma separated."""
    return ", ".join("'%s' (%s of the VM)" % (lock["name"], lock["level"]) if lock["level"] == LEVEL_NATIVE else
                     "'%s' (%s, %s)" % (lock["name"], lock["level"], describe_scope(lock["scope"])) for lock in locks)


def describe_scope(scope):
    parts = (scope or "").strip("/").split("/")
    if len(parts) == 2:
        return "on subscription %s" % parts[1]
    if len(parts) == 4:
        return "on resource group %s" % parts[3]
    return "on the VM" if len(parts) >= 8 and parts[-2].lower() == "virtualmachines" else "on %s" % scope


class LockReader:
    """Reads the effective locks of Flexible members (their own, their resource group's, their subscription's)."""

    def __init__(self, clients, subscription_id):
        self.clients = clients
        self.subscription_id = subscription_id

    def protection_by_member(self, members):
        """``{member id (lower case): protection_summary(...)}`` for every member with an id."""
        return {key: protection_summary(locks) for key, locks in self.locks_by_member(members).items()}

    def locks_by_member(self, members):
        """``{member id (lower case): [lock_from_rest(...)]}``: each member's own and inherited locks."""
        members = [member for member in members if member.get("id")]
        if not members:
            return {}
        subscription_scope = "/subscriptions/%s" % self.subscription_id
        subscription_locks = [lock for lock in self._list_by_scope(subscription_scope)
                              if (lock_scope(lock.get("id")) or "").lower() == subscription_scope.lower()]
        by_scope = {}
        seen_ids = set()
        for lock in subscription_locks:
            seen_ids.add(lock.get("id", "").lower())
            by_scope.setdefault(subscription_scope.lower(), []).append(lock)
        groups = {}
        for member in members:
            groups.setdefault(member["resource_group"].lower(), member["resource_group"])
        for group in sorted(groups.values(), key=str.lower):
            for lock in self._list_in_resource_group(group):
                # A listing may repeat locks another listing returned (the subscription's, inherited).
                if lock.get("id", "").lower() not in seen_ids:
                    seen_ids.add(lock.get("id", "").lower())
                    by_scope.setdefault((lock_scope(lock.get("id")) or "").lower(), []).append(lock)
        result = {}
        for member in members:
            member_id = member["id"]
            group_scope = "%s/resourcegroups/%s" % (subscription_scope, member["resource_group"])
            scopes = (subscription_scope.lower(), group_scope.lower(), member_id.lower())
            result[member_id.lower()] = [lock_from_rest(lock, member_id) for scope in scopes
                                         for lock in by_scope.get(scope, [])]
        return result

    def _list_by_scope(self, scope):
        client = self.clients.locks()
        with lock_errors("Failed to list the locks of subscription %s" % self.subscription_id, READ_PERMISSION_HINT):
            # atScope() asks for the subscription's own locks, not those of every resource below it.
            return [as_rest_dict(lock) for lock in client.management_locks.list_by_scope(scope, filter="atScope()")]

    def _list_in_resource_group(self, resource_group):
        client = self.clients.locks()
        with lock_errors("Failed to list the locks of resource group %s" % resource_group, READ_PERMISSION_HINT):
            return [as_rest_dict(lock) for lock in client.management_locks.list_at_resource_group_level(resource_group)]


@contextlib.contextmanager
def lock_errors(action, hint=WRITE_PERMISSION_HINT):
    """``azure_errors`` that also says, on a 403, which role the lock call needs."""
    try:
        with azure_errors(action):
            yield
    except AzureFlexError as error:
        if error.status == 403:
            raise error.with_message("%s %s" % (error.msg, hint)) from error
        raise


# --------------------------------------------------------------------------------------------
# Native protection (protectionPolicy through the VMSS-VM API by VM name)
# --------------------------------------------------------------------------------------------

# What each protection asks of the protection policy (protecting from scale-set actions implies scale-in).
NATIVE_FLAGS = {"scale_in": {"protectFromScaleIn": True},
                "scale_set_actions": {"protectFromScaleIn": True, "protectFromScaleSetActions": True}}
PROTECTION_OF_LEVEL = {LEVEL_CAN_NOT_DELETE: "scale_in", LEVEL_READ_ONLY: "scale_set_actions"}


def native_flags(policy):
    """A REST ``protectionPolicy`` (or None: no protection) in the collection's layout."""
    policy = policy or {}
    actions = bool(policy.get("protectFromScaleSetActions"))
    return {"protect_from_scale_in": bool(policy.get("protectFromScaleIn")) or actions,
            "protect_from_scale_set_actions": actions}


def wanted_native(current, protection, state):
    """The protection policy (REST) once ``protection`` (scale_in, scale_set_actions) is present or absent.

    Removing scale_in removes both flags (protection from scale-set actions needs it); removing
    scale_set_actions keeps protection from scale-in as it was.
    """
    current = current or {}
    policy = {"protectFromScaleIn": bool(current.get("protect_from_scale_in")),
              "protectFromScaleSetActions": bool(current.get("protect_from_scale_set_actions"))}
    if state == "present":
        policy.update(NATIVE_FLAGS[protection])
    elif protection == "scale_in":
        policy = {"protectFromScaleIn": False, "protectFromScaleSetActions": False}
    else:
        policy["protectFromScaleSetActions"] = False
    return policy


def native_refusal(error):
    """Whether Azure refused the VMSS-VM API by VM name (Flexible sets where native protection is not accepted)."""
    return http_status(error) == 400 and arm_error_code(error) in ("InvalidParameter", "BadRequest", "OperationNotAllowed")


class NativeProtection:
    """Reads and writes members' ``protectionPolicy`` through the VMSS-VM API, where Azure accepts it.

    ``scale_set`` is a dict with ``name`` and ``resource_group``; ``fan_out(func, items)`` runs per-member calls
    concurrently (``AzureFlexModule.fan_out``); without it they run one after another.
    """

    def __init__(self, clients, scale_set, fan_out=None):
        self.clients = clients
        self.scale_set = scale_set
        self._fan_out = fan_out
        self.refusal = None  # the AzureFlexError with which Azure refused, once probed

    def _view(self, member):
        compute = self.clients.compute()
        with azure_errors("Failed to read the instance protection of VM %s" % member["name"]):
            return as_rest_dict(compute.virtual_machine_scale_set_vms.get(
                self.scale_set["resource_group"], self.scale_set["name"], member["name"]))

    def probe(self, member):
        """The member's native flags, or None when Azure refuses the VM name (the refusal is kept)."""
        try:
            view = self._view(member)
        except AzureFlexError as exc:
            if native_refusal(exc):
                self.refusal = exc
                return None
            raise
        return native_flags((view.get("properties") or {}).get("protectionPolicy"))

    def flags_by_member(self, members):
        """``{member id (lower case): native_flags(...)}``, or ``{}`` when Azure refuses (one probe only)."""
        members = [member for member in members if member.get("id")]
        if not members:
            return {}
        first = self.probe(members[0])
        if first is None:
            return {}
        result = {members[0]["id"].lower(): first}

        def read(member):
            try:
                return self.probe(member)
            except AzureFlexError as exc:
                if is_not_found(exc):  # deleted since it was listed
                    return None
                raise

        rest = members[1:]
        outcomes = self._fan_out(read, rest) if self._fan_out else [_Outcome(member, read) for member in rest]
        for outcome in outcomes:
            if not outcome.ok:
                raise outcome.error
            if outcome.result is not None:
                result[outcome.item["id"].lower()] = outcome.result
        return result

    def begin_write(self, member, policy):
        """Start writing the member's protection policy (an LRO; the poller is returned)."""
        compute = self.clients.compute()
        body = {"location": member.get("location"), "properties": {"protectionPolicy": dict(policy)}}
        return compute.virtual_machine_scale_set_vms.begin_update(
            self.scale_set["resource_group"], self.scale_set["name"], member["name"], body)

    def refusal_message(self):
        return ("Azure refused instance protection by VM name on scale set %s (%s: %s); Flexible scale sets accept "
                "protectionPolicy through the scale set VM API only where Azure supports it"
                % (self.scale_set["name"], self.refusal.code, self.refusal.msg) if self.refusal else None)


class _Outcome:
    """A sequential stand-in for a fan-out outcome (``ok``, ``result``, ``error``, ``item``)."""

    def __init__(self, item, func):
        self.item = item
        try:
            self.result, self.error, self.ok = func(item), None, True
        except AzureFlexError as exc:
            self.result, self.error, self.ok = None, exc, False


class ProtectionReader:
    """Each member's effective protection: its locks (own and inherited) and its native protection policy.

    What flex_instance_action needs to honour both: ``ProtectionReader(clients, subscription_id, scale_set,
    fan_out).protection_by_member(members)`` returns the same summaries as ``LockReader`` plus ``native``, and
    ``blocking_locks`` then sees the native flags too. Native protection costs one read per member, and one
    read in all where Azure refuses it.
    """

    def __init__(self, clients, subscription_id, scale_set, fan_out=None):
        self.locks = LockReader(clients, subscription_id)
        self.native = NativeProtection(clients, scale_set, fan_out)

    def protection_by_member(self, members):
        locks = self.locks.locks_by_member(members)
        native = self.native.flags_by_member(members)
        return {key: protection_summary(member_locks, native.get(key)) for key, member_locks in locks.items()}
