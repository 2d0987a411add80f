"""The Tags API at any scope: ``{scope}/providers/Microsoft.Resources/tags/default``.

    GET     the scope's tags           -> 200 TagsResource
    PUT     replace them all           -> 200 TagsResource
    PATCH   {"operation": "Merge" | "Replace" | "Delete", "properties": {"tags": {...}}}
            -> 200 TagsResource (or 202 + Location, setting ``tags_update_async``)
    DELETE  remove every tag           -> 200

The scope is a subscription, a resource group or any resource (a VM, ...). Each
request is applied atomically to the scope's current tags, which is what makes
the API safe for concurrent writers: a Merge never writes back a stale copy of
tags someone else set (unlike a read followed by a PATCH of the whole map).

Semantics (REST reference "Tags - Update At Scope"): Merge adds new names and
updates the values of existing names; Replace replaces the whole set; Delete
removes the given tags "based on given names or name/value pairs". Tag names
are case-insensitive, values case-sensitive; at most 50 tags at the end of the
operation. Uncertain details are settings:

* ``tags_delete_requires_value``: a Delete entry with a non-empty value removes
  the tag only when the value matches (an empty value matches any) [?];
* ``tags_update_async``: PATCH answers 202 + Location instead of 200 (both are
  in the SDKs' accepted list) [?];
* a Merge of a name that differs from an existing one only by case keeps the
  existing spelling and takes the new value [?].

Error codes for invalid names, values and counts are [?] (plausible ARM codes).
A tag change bumps the resource's etag and is recorded for Resource Graph and
the event log, as any other change.
"""

from __future__ import annotations

import re

from . import lro
from .errors import ArmError, bad_request
from .http import Reply, ok, route

TAGS_SUFFIX = "/providers/Microsoft.Resources/tags/default"
OPERATIONS = {"merge": "Merge", "replace": "Replace", "delete": "Delete"}
MAX_TAGS = 50
MAX_NAME = 512
MAX_VALUE = 256
BAD_NAME = re.compile(r"[<>%&\\?/\x00-\x1f]")


class _Scope:
    """Where the tags of a scope live: a resource's body, or a subscription's record."""

    def __init__(self, scope_id, holder, resource=None):
        self.id = scope_id
        self.holder = holder
        self.resource = resource

    @property
    def tags(self):
        return dict(self.holder.get("tags") or {})

    def write(self, state, tags):
        self.holder["tags"] = dict(tags)
        if self.resource is not None:
            if "etag" in self.resource.body:
                from .vmmodel import bump_etag  # the same etag counter the provider bumps

                bump_etag(self.resource)
            state.save(self.resource)


def _scope(state, raw_scope):
    parts = raw_scope.strip("/").split("/")
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        raise bad_request("The scope '%s' is not a valid scope for tags." % raw_scope, code="InvalidScope")
    if len(parts) == 2:
        sub = state.require_subscription(parts[1])
        return _Scope("/subscriptions/" + sub["subscriptionId"], sub)
    resource = state.require("/" + "/".join(parts))
    return _Scope(resource.id, resource.body, resource)


def _render(scope, tags):
    return {"id": scope.id + TAGS_SUFFIX, "name": "default", "type": "Microsoft.Resources/tags",
            "properties": {"tags": dict(tags)}}


def _requested_tags(ctx):
    body = ctx.json()
    properties = body.get("properties")
    if not isinstance(properties, dict) or not isinstance(properties.get("tags"), dict):
        raise ArmError(400, "InvalidRequestContent",
                       "The request content was invalid: 'properties.tags' is required.")
    tags = {}
    for name, value in properties["tags"].items():
        value = "" if value is None else value
        if not name or BAD_NAME.search(name):
            raise bad_request("The tag names '%s' have reserved characters '<,>,%%,&,\\,?,/' or control characters."
                              % name, code="InvalidTagNameCharacters")
        if len(name) > MAX_NAME:
            raise bad_request("The tag name '%s...' exceeds the maximum length of %d." % (name[:40], MAX_NAME),
                              code="InvalidTagNameLength")
        if len(value) > MAX_VALUE:
            raise bad_request("The value of tag '%s' exceeds the maximum length of %d." % (name, MAX_VALUE),
                              code="InvalidTagValueLength")
        tags[name] = value
    return body, tags


def _find(tags, name):
    """The existing spelling of ``name`` (tag names are case-insensitive), or None."""
    for existing in tags:
        if existing.lower() == name.lower():
            return existing
    return None


def merged(current, changes):
    result = dict(current)
    for name, value in changes.items():
        result[_find(result, name) or name] = value
    return result


def deleted(current, removals, requires_value):
    result = dict(current)
    for name, value in removals.items():
        existing = _find(result, name)
        if existing is None:
            continue
        if requires_value and value != "" and result[existing] != value:
            continue
        del result[existing]
    return result


def _check_count(tags):
    if len(tags) > MAX_TAGS:
        raise bad_request("The resource would have %d tags; at most %d tags are allowed." % (len(tags), MAX_TAGS),
                          code="InvalidTagCount")


@route("GET", "{scope*}" + TAGS_SUFFIX, family="resources")
def get_tags(ctx):
    scope = _scope(ctx.state, ctx.param("scope"))
    return ok(_render(scope, scope.tags))


@route("PUT", "{scope*}" + TAGS_SUFFIX, family="resources", lock_op="write")
def put_tags(ctx):
    scope = _scope(ctx.state, ctx.param("scope"))
    _body, tags = _requested_tags(ctx)
    _check_count(tags)
    scope.write(ctx.state, tags)
    return ok(_render(scope, tags))


@route("PATCH", "{scope*}" + TAGS_SUFFIX, family="resources", lock_op="write", starts_operation=True)
def patch_tags(ctx):
    state = ctx.state
    scope = _scope(state, ctx.param("scope"))
    body, changes = _requested_tags(ctx)
    operation = OPERATIONS.get(str(body.get("operation") or "").lower())
    if operation is None:
        raise bad_request("The tags patch operation '%s' is not supported; use Merge, Replace or Delete."
                          % body.get("operation"), code="InvalidTagsPatchOperation")
    current = scope.tags
    if operation == "Merge":
        result = merged(current, changes)
    elif operation == "Replace":
        result = dict(changes)
    else:
        result = deleted(current, changes, state.settings["tags_delete_requires_value"])
    _check_count(result)
    # Applied now, whatever the answer: the change is atomic at the moment ARM accepts it.
    scope.write(state, result)
    rendered = _render(scope, result)
    if not state.settings["tags_update_async"]:
        return ok(rendered)
    op = lro.start(ctx, "Microsoft.Resources", "global", "tags", state.duration("update"), lambda op: None)
    op.result = rendered
    reply = lro.accepted(ctx, op)
    reply.headers.pop("Azure-AsyncOperation", None)
    return reply


@route("DELETE", "{scope*}" + TAGS_SUFFIX, family="resources", lock_op="delete")
def delete_tags(ctx):
    scope = _scope(ctx.state, ctx.param("scope"))
    scope.write(ctx.state, {})
    return Reply(200, None)
