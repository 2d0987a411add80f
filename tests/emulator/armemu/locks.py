"""Management locks (Microsoft.Authorization/locks) at any scope, and their enforcement.

Locks are inherited downwards; the most restrictive one wins. CanNotDelete
blocks DELETE; ReadOnly blocks PUT, PATCH, DELETE and (by default, as the docs
say) POST actions. ARM refuses a blocked call with 409 ScopeLocked before the
resource provider sees it. (azure-facts.md §10.)
"""

from __future__ import annotations

import re

from .errors import ArmError, bad_request
from .http import ok, page, route

LOCK_SUFFIX = "/providers/Microsoft.Authorization/locks"
LEVELS = {"cannotdelete": "CanNotDelete", "readonly": "ReadOnly"}
BAD_NAME = re.compile(r"[<>%&:\\?/\x00-\x1f]")


def _norm_scope(scope):
    scope = "/" + scope.strip("/")
    return scope


def _scope_exists(state, scope):
    """The scope spelled as its resource's id; the 404 ARM gives when it does not exist.

    The SDKs spell the same scope differently (``resourcegroups`` in lower case for
    resource-level calls), so a lock's id and the scope named in ScopeLocked messages
    use the resource's own spelling whatever the request used.
    """
    parts = scope.strip("/").split("/")
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        raise bad_request("The scope '%s' is not a valid scope for management locks." % scope, code="InvalidScope")
    if len(parts) == 2:
        return "/subscriptions/" + state.require_subscription(parts[1])["subscriptionId"]
    return state.require(scope).id


def applicable_locks(state, target):
    """Locks at the target and at every scope above it, most restrictive first."""
    target = _norm_scope(target).lower()
    found = []
    for lock in state.locks.values():
        scope = lock["scope"].lower()
        if target == scope or target.startswith(scope + "/"):
            found.append(lock)
    found.sort(key=lambda lock: (lock["properties"]["level"] != "ReadOnly", len(lock["scope"])))
    return found


def enforce(state, target, op):
    """409 ScopeLocked if a lock at or above ``target`` forbids ``op`` (write, delete or action)."""
    blocking = []
    for lock in applicable_locks(state, target):
        level = lock["properties"]["level"]
        if level == "ReadOnly" and (op != "action" or state.settings["readonly_blocks_post"]) or level == "CanNotDelete" and op == "delete":
            blocking.append(lock)
    if blocking:
        raise scope_locked(target, "delete" if op == "delete" else "write", blocking)


def enforce_below(state, scope):
    """Deleting a container fails as a whole when anything inside it is locked."""
    prefix = _norm_scope(scope).lower()
    inside = [lock for lock in state.locks.values() if lock["scope"].lower().startswith(prefix + "/")]
    if inside:
        raise scope_locked(scope, "delete", inside)


def scope_locked(target, verb, blocking):
    scopes = "','".join(sorted({lock["scope"] for lock in blocking}))
    return ArmError(409, "ScopeLocked",
                    "The scope '%s' cannot perform %s operation because following scope(s) are locked: '%s'. "
                    "Please remove the lock and try again." % (target, verb, scopes))


def _render(lock):
    return {key: lock[key] for key in ("id", "name", "type", "properties")}


def _lock_id(scope, name):
    return _norm_scope(scope) + LOCK_SUFFIX + "/" + name


@route(["PUT", "GET", "DELETE"], "{scope*}/providers/Microsoft.Authorization/locks/{name}", family="locks")
def lock_item(ctx):
    state = ctx.state
    scope = _scope_exists(state, _norm_scope(ctx.param("scope")))
    name = ctx.param("name")
    key = _lock_id(scope, name).lower()
    if ctx.method == "GET":
        lock = state.locks.get(key)
        if lock is None:
            raise ArmError(404, "LockNotFound", "The lock '%s' could not be found." % name)
        return ok(_render(lock))
    if ctx.method == "DELETE":
        if state.locks.pop(key, None) is None:
            return ok(None, status=204)
        return ok(None, status=200)
    if len(name) > 260 or BAD_NAME.search(name):
        raise bad_request("The lock name '%s' is invalid: at most 260 characters, none of < > %% & : \\ ? /."
                          % name, code="InvalidLockName")
    body = ctx.json()
    props = body.get("properties") or {}
    level = LEVELS.get(str(props.get("level", "")).lower())
    if level is None:
        raise bad_request("The lock level '%s' is invalid. Allowed values: CanNotDelete, ReadOnly."
                          % props.get("level"), code="InvalidLockLevel")
    notes = props.get("notes")
    if notes is not None and len(notes) > 512:
        raise bad_request("The lock notes exceed 512 characters.", code="InvalidLockNotes")
    existed = key in state.locks
    lock = {
        "id": _lock_id(scope, name),
        "name": name,
        "type": "Microsoft.Authorization/locks",
        "scope": scope,
        "properties": {"level": level, "notes": notes, "owners": props.get("owners") or []},
    }
    if notes is None:
        lock["properties"].pop("notes")
    if not lock["properties"]["owners"]:
        lock["properties"].pop("owners")
    state.locks[key] = lock
    return ok(_render(lock), status=200 if existed else 201)


@route("GET", "{scope*}/providers/Microsoft.Authorization/locks", family="locks")
def lock_list(ctx):
    state = ctx.state
    scope = _scope_exists(state, _norm_scope(ctx.param("scope")))
    at_scope_only = "atscope()" in ctx.query.get("$filter", "").replace(" ", "").lower()
    prefix = scope.lower()
    found = []
    for lock in state.locks.values():
        lock_scope = lock["scope"].lower()
        above_or_at = prefix == lock_scope or prefix.startswith(lock_scope + "/")
        below = lock_scope.startswith(prefix + "/")
        if above_or_at and (lock_scope == prefix or at_scope_only or state.settings["lock_list_includes_inherited"]) or below and not at_scope_only:
            found.append(lock)
    found.sort(key=lambda lock: lock["id"].lower())
    return page(ctx, found, _render)
