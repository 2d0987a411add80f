"""Subscriptions, resource groups and provider registration (Microsoft.Resources)."""

from __future__ import annotations

from . import locks, lro
from .errors import ArmError, bad_request
from .http import Reply, ok, page, route
from .state import Resource

GROUP_TYPE = "Microsoft.Resources/resourceGroups"


def create_group(state, subscription_id, name, location, tags=None):
    group = Resource(state.group_id(subscription_id, name), GROUP_TYPE, {
        "id": state.group_id(subscription_id, name),
        "name": name,
        "type": GROUP_TYPE,
        "location": location,
        "tags": dict(tags or {}),
        "properties": {"provisioningState": "Succeeded"},
    })
    return state.add(group)


def _render_subscription(sub):
    return {
        "id": "/subscriptions/%s" % sub["subscriptionId"],
        "subscriptionId": sub["subscriptionId"],
        "tenantId": sub["tenantId"],
        "displayName": sub["displayName"],
        "state": sub["state"],
        "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01",
                                 "spendingLimit": "Off"},
        "authorizationSource": "RoleBased",
    }


@route("GET", "/subscriptions", family="subscriptions")
def list_subscriptions(ctx):
    subs = sorted(ctx.state.subscriptions.values(), key=lambda s: s["subscriptionId"])
    return page(ctx, subs, _render_subscription)


@route("GET", "/subscriptions/{sub}", family="subscriptions")
def get_subscription(ctx):
    return ok(_render_subscription(ctx.state.require_subscription(ctx.param("sub"))))


@route("GET", "/subscriptions/{sub}/providers/{namespace}", family="resources")
def get_provider(ctx):
    ctx.state.require_subscription(ctx.param("sub"))
    namespace = ctx.param("namespace")
    return ok({"id": "/subscriptions/%s/providers/%s" % (ctx.param("sub"), namespace), "namespace": namespace,
               "registrationState": "Registered", "registrationPolicy": "RegistrationRequired",
               "resourceTypes": []})


@route("POST", "/subscriptions/{sub}/providers/{namespace}/register", family="resources")
def register_provider(ctx):
    return get_provider(ctx)


@route("GET", "/subscriptions/{sub}/resourcegroups", family="resources")
def list_groups(ctx):
    state = ctx.state
    state.require_subscription(ctx.param("sub"))
    groups = state.of_type(GROUP_TYPE, ctx.param("sub"))
    return page(ctx, groups, lambda g: g.body)


@route("HEAD", "/subscriptions/{sub}/resourcegroups/{rg}", family="resources")
def group_exists(ctx):
    state = ctx.state
    state.require_subscription(ctx.param("sub"))
    found = state.get(state.group_id(ctx.param("sub"), ctx.param("rg")))
    return Reply(204 if found else 404, None)


@route("GET", "/subscriptions/{sub}/resourcegroups/{rg}", family="resources")
def get_group(ctx):
    return ok(ctx.state.require_group(ctx.param("sub"), ctx.param("rg")).body)


@route("PUT", "/subscriptions/{sub}/resourcegroups/{rg}", family="resources", lock_op="write")
def put_group(ctx):
    state = ctx.state
    sub, name = ctx.param("sub"), ctx.param("rg")
    state.require_subscription(sub)
    body = ctx.json()
    if not body.get("location"):
        raise bad_request("The 'location' property is required for a resource group.", code="LocationRequired")
    existing = state.get(state.group_id(sub, name))
    if existing is not None:
        if existing.body["location"].lower() != body["location"].lower():
            raise ArmError(409, "InvalidResourceGroupLocation",
                           "Invalid resource group location '%s'. The Resource group already exists in location "
                           "'%s'." % (body["location"], existing.body["location"]))
        existing.body["tags"] = dict(body.get("tags") or {})
        state.save(existing)
        return ok(existing.body)
    return ok(create_group(state, sub, name, body["location"], body.get("tags")).body, status=201)


@route("PATCH", "/subscriptions/{sub}/resourcegroups/{rg}", family="resources", lock_op="write")
def patch_group(ctx):
    state = ctx.state
    group = state.require_group(ctx.param("sub"), ctx.param("rg"))
    body = ctx.json()
    if "tags" in body:
        group.body["tags"] = dict(body["tags"] or {})
    state.save(group)
    return ok(group.body)


@route("DELETE", "/subscriptions/{sub}/resourcegroups/{rg}", family="resources", lock_op="delete",
       starts_operation=True)
def delete_group(ctx):
    state = ctx.state
    group = state.require_group(ctx.param("sub"), ctx.param("rg"))
    locks.enforce_below(state, group.id)
    group.props["provisioningState"] = "Deleting"
    state.save(group)

    def complete(op):
        for child in sorted(state.children(group.id), key=lambda r: -len(r.id)):
            state.remove(child)
        state.remove(group)

    def restore(op):
        group.props["provisioningState"] = "Succeeded"
        state.save(group)

    op = lro.start(ctx, "Microsoft.Resources", group.body["location"], "delete_group",
                   state.duration("delete"), complete, restore)
    return lro.accepted(ctx, op)
