# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""Instance protection for Flexible members, through ARM management locks.

Flexible scale sets have no ``protectionPolicy``: Uniform's ``protectFromScaleIn`` becomes a
CanNotDelete lock on the member VM, ``protectFromScaleSetActions`` a ReadOnly lock (which also
refuses POST actions such as start and restart). A member is protected by its own locks and by the
locks of its resource group and subscription, which it inherits.

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
    azure_errors,
)

LEVEL_CAN_NOT_DELETE = "CanNotDelete"
LEVEL_READ_ONLY = "ReadOnly"
LOCK_LEVELS = (LEVEL_CAN_NOT_DELETE, LEVEL_READ_ONLY)

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


def protection_summary(locks):
    """What a member's effective locks protect it from (the most restrictive lock wins)."""
    levels = {lock["level"] for lock in locks}
    read_only = LEVEL_READ_ONLY in levels
    return {
        "level": LEVEL_READ_ONLY if read_only else (LEVEL_CAN_NOT_DELETE if levels else None),
        "protected_from_scale_in": bool(levels & set(LOCK_LEVELS)),
        "protected_from_scale_set_actions": read_only,
        # The member's own locks first, then the nearest scope above it (resource group, subscription).
        "locks": sorted(locks, key=lambda lock: (lock["inherited"], -len(lock["scope"] or ""),
                                                 (lock["name"] or "").lower())),
    }


def blocking_locks(protection, deleting):
    """The locks that make Azure refuse an action: any lock for a delete, ReadOnly for a POST action."""
    return [lock for lock in protection["locks"]
            if deleting and lock["level"] in LOCK_LEVELS or lock["level"] == LEVEL_READ_ONLY]


def describe_locks(locks):
    """``"'name' (ReadOnly, on resource group rg)"`` for each lock, comma separated."""
    return ", ".join("'%s' (%s, %s)" % (lock["name"], lock["level"], describe_scope(lock["scope"]))
                     for lock in locks)


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
            locks = [lock_from_rest(lock, member_id) for scope in scopes for lock in by_scope.get(scope, [])]
            result[member_id.lower()] = protection_summary(locks)
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
