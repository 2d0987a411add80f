"""The Tags API at resource, resource group and subscription scope, through azure-mgmt-resource's tags client.

Both SDK sets reach it the same way (``ResourceManagementClient.tags.begin_update_at_scope``, api-version
2022-09-01 in azure-mgmt-resource 23.2, 2025-04-01 in 26.x).
"""

from __future__ import annotations

import threading
import time

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from _support import FLEX, JUMPBOX, RG, arm_requests, flex_members, graph, graph_rows, vm_id

TAGS = "/providers/Microsoft.Resources/tags/default"


@pytest.fixture()
def tags(sdk):
    return sdk.resources().tags


def patch(tags, scope, operation, values):
    return tags.begin_update_at_scope(scope, {"operation": operation, "properties": {"tags": values}}).result()


def as_dict(result):
    return dict(result.properties.tags or {})


def test_get_and_merge_at_resource_scope(emu, sdk, tags):
    scope = vm_id(sdk.subscription_id, JUMPBOX)
    current = tags.get_at_scope(scope)
    assert current.id == scope + TAGS and current.name == "default" and current.type == "Microsoft.Resources/tags"
    assert as_dict(current) == {}
    assert as_dict(patch(tags, scope, "Merge", {"team": "a"})) == {"team": "a"}
    assert as_dict(patch(tags, scope, "Merge", {"owner": "b", "team": "a2"})) == {"team": "a2", "owner": "b"}
    # The VM itself carries them (the same tags, not a copy).
    assert sdk.compute().virtual_machines.get(RG, JUMPBOX).tags == {"team": "a2", "owner": "b"}


def test_replace_and_delete(emu, sdk, tags):
    scope = vm_id(sdk.subscription_id, JUMPBOX)
    patch(tags, scope, "Merge", {"a": "1", "b": "2", "c": "3"})
    assert as_dict(patch(tags, scope, "Delete", {"a": "1", "absent": "x"})) == {"b": "2", "c": "3"}
    assert as_dict(patch(tags, scope, "Replace", {"z": "9"})) == {"z": "9"}
    assert as_dict(tags.begin_create_or_update_at_scope(scope, {"properties": {"tags": {"y": "8"}}}).result()) == {
        "y": "8"}
    tags.begin_delete_at_scope(scope).result()
    assert as_dict(tags.get_at_scope(scope)) == {}


def test_delete_by_name_or_by_name_and_value(emu, sdk, tags):
    scope = vm_id(sdk.subscription_id, JUMPBOX)
    patch(tags, scope, "Merge", {"a": "1", "b": "2"})
    # By default a value that no longer matches keeps the tag; an empty value matches any.
    assert as_dict(patch(tags, scope, "Delete", {"a": "other"})) == {"a": "1", "b": "2"}
    assert as_dict(patch(tags, scope, "Delete", {"A": ""})) == {"b": "2"}
    emu.settings(tags_delete_requires_value=False)
    assert as_dict(patch(tags, scope, "Delete", {"b": "other"})) == {}


def test_names_are_case_insensitive(emu, sdk, tags):
    scope = vm_id(sdk.subscription_id, JUMPBOX)
    patch(tags, scope, "Merge", {"Env": "dev"})
    assert as_dict(patch(tags, scope, "Merge", {"env": "prod"})) == {"Env": "prod"}
    assert as_dict(patch(tags, scope, "Delete", {"ENV": "prod"})) == {}


def test_resource_group_and_subscription_scopes(emu, sdk, tags):
    group = "/subscriptions/%s/resourceGroups/%s" % (sdk.subscription_id, RG)
    assert as_dict(tags.get_at_scope(group)) == {"purpose": "demo"}
    assert as_dict(patch(tags, group, "Merge", {"cost": "42"})) == {"purpose": "demo", "cost": "42"}
    subscription = "/subscriptions/%s" % sdk.subscription_id
    assert as_dict(patch(tags, subscription, "Merge", {"org": "x"})) == {"org": "x"}
    assert as_dict(tags.get_at_scope(subscription)) == {"org": "x"}


def test_scope_without_leading_slash_and_missing_scopes(emu, sdk, tags):
    scope = vm_id(sdk.subscription_id, JUMPBOX)
    assert as_dict(patch(tags, scope.lstrip("/"), "Merge", {"k": "v"})) == {"k": "v"}
    with pytest.raises(ResourceNotFoundError) as info:
        tags.get_at_scope(vm_id(sdk.subscription_id, "nope"))
    assert info.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as info:
        tags.get_at_scope(vm_id(sdk.subscription_id, "nope", rg="no-rg"))
    assert info.value.error.code == "ResourceGroupNotFound"


@pytest.mark.parametrize("body, code", [
    ({"operation": "Upsert", "properties": {"tags": {"a": "1"}}}, "InvalidTagsPatchOperation"),
    ({"operation": "Merge", "properties": {}}, "InvalidRequestContent"),
    ({"operation": "Merge", "properties": {"tags": {"a/b": "1"}}}, "InvalidTagNameCharacters"),
    ({"operation": "Merge", "properties": {"tags": {"a": "x" * 257}}}, "InvalidTagValueLength"),
    ({"operation": "Merge", "properties": {"tags": {"n%d" % i: "v" for i in range(51)}}}, "InvalidTagCount"),
    ({"operation": "Merge", "properties": {"tags": {"a": 1}}}, "InvalidRequestContent"),
])
def test_refusals_change_nothing(emu, sdk, raw, body, code):
    scope = vm_id(sdk.subscription_id, JUMPBOX)
    reply = raw("PATCH", scope + TAGS, body=body, api_version="2022-09-01")
    assert reply.status_code == 400 and reply.json()["error"]["code"] == code
    assert raw("GET", scope + TAGS, api_version="2022-09-01").json()["properties"]["tags"] == {}


def test_locks_apply(emu, sdk, tags):
    scope = vm_id(sdk.subscription_id, JUMPBOX)
    sdk.locks().management_locks.create_or_update_by_scope(scope, "ro", {"properties": {"level": "ReadOnly"}})
    with pytest.raises(ResourceExistsError) as info:
        patch(tags, scope, "Merge", {"a": "1"})
    assert info.value.error.code == "ScopeLocked"
    assert as_dict(tags.get_at_scope(scope)) == {}


def test_change_is_seen_by_resource_graph_and_bumps_the_etag(emu, sdk, tags):
    compute = sdk.compute()
    member = flex_members(compute, sdk.subscription_id)[0]
    etag = compute.virtual_machines.get(RG, member).etag
    patch(tags, vm_id(sdk.subscription_id, member), "Merge", {"seen": "yes"})
    assert compute.virtual_machines.get(RG, member).etag != etag
    rows = graph_rows(graph(sdk, "Resources | where name =~ '%s' | project name, tags" % member))
    assert rows[0]["tags"]["seen"] == "yes"


def test_async_answer(emu, sdk, tags):
    emu.settings(tags_update_async=True)
    scope = vm_id(sdk.subscription_id, JUMPBOX)
    before = emu.request_count()
    assert as_dict(patch(tags, scope, "Merge", {"a": "1"})) == {"a": "1"}
    log = arm_requests(emu, before)
    assert log[0]["method"] == "PATCH" and log[0]["status"] == 202
    assert any("/operationResults/" in entry["path"] for entry in log)


def test_concurrent_merges_keep_every_tag(emu, sdk):
    """Writers racing on the same 12 members through Merge: every writer's tag survives."""
    members = flex_members(sdk.compute(), sdk.subscription_id, FLEX)
    errors = []

    def writer(name, value):
        client = sdk.resources().tags
        try:
            for member in members:
                patch(client, vm_id(sdk.subscription_id, member), "Merge", {name: value})
        except HttpResponseError as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=("w%d" % index, str(index))) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    compute = sdk.compute()
    for member in members:
        assert {"w0", "w1", "w2", "w3"} <= set(compute.virtual_machines.get(RG, member).tags)


def test_delay_fault_holds_the_answer_after_handling(emu, sdk, tags):
    scope = vm_id(sdk.subscription_id, JUMPBOX)
    emu.add_fault(method="PATCH", path="tags/default$", delay=1.0, count=1)
    finished = []
    started = time.monotonic()
    writer = threading.Thread(target=lambda: finished.append(patch(sdk.resources().tags, scope, "Merge", {"slow": "1"})))
    writer.start()
    # The change is made when the request is handled; only its answer is held.
    seen = None
    while time.monotonic() - started < 0.9 and not seen:
        seen = as_dict(tags.get_at_scope(scope)).get("slow")
    assert seen == "1" and not finished
    writer.join(10)
    assert finished and time.monotonic() - started >= 1.0
    assert emu.control("GET", "faults")["faults"][0]["hits"] == 1
    started = time.monotonic()
    patch(tags, scope, "Merge", {"fast": "1"})
    assert time.monotonic() - started < 1.0


def test_delay_fault_is_validated(emu):
    from armemu.launcher import EmulatorError

    for bad in (0, -1, 500, True):
        with pytest.raises(EmulatorError):
            emu.add_fault(delay=bad)
    with pytest.raises(EmulatorError):
        emu.add_fault(delay=1, status=500)
