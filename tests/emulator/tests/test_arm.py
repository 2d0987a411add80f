"""ARM manners: headers, routing, error bodies, api-versions, paging, resource groups."""

from __future__ import annotations

import re
import uuid
from urllib.parse import quote

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from _support import arm_requests, COMPUTE_API, FLEX, JUMPBOX, NEW_SDK, RG, vm_id

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RG_API = "2025-04-01"


def _error(reply, status, code):
    assert reply.status_code == status, reply.text
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    body = reply.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]


# -- headers -----------------------------------------------------------------------------------


def test_standard_headers_on_a_read(sdk, raw):
    reply = raw("GET", vm_id(sdk.subscription_id, JUMPBOX), api_version=COMPUTE_API)
    assert reply.status_code == 200
    h = reply.headers
    assert GUID.match(h["x-ms-request-id"])
    assert GUID.match(h["x-ms-correlation-request-id"])
    assert re.match(r"^[A-Z]+:\d{8}T\d{6}Z:" + h["x-ms-correlation-request-id"] + "$", h["x-ms-routing-request-id"])
    assert h["Content-Type"] == "application/json; charset=utf-8"
    assert h["Cache-Control"] == "no-cache" and h["Pragma"] == "no-cache" and h["Expires"] == "-1"
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Strict-Transport-Security"].startswith("max-age=")
    assert int(h["x-ms-ratelimit-remaining-subscription-reads"]) >= 0
    assert "x-ms-ratelimit-remaining-subscription-writes" not in h
    # Compute adds its own resource-level budget and request charge.
    assert re.match(r"^(Microsoft\.Compute/\w+;\d+,?)+$", h["x-ms-ratelimit-remaining-resource"])
    assert h["x-ms-request-charge"] == "1"


def test_request_ids_are_fresh_and_correlation_is_echoed(sdk, raw):
    path = vm_id(sdk.subscription_id, JUMPBOX)
    first = raw("GET", path, api_version=COMPUTE_API)
    second = raw("GET", path, api_version=COMPUTE_API)
    assert first.headers["x-ms-request-id"] != second.headers["x-ms-request-id"]
    assert first.headers["x-ms-correlation-request-id"] != second.headers["x-ms-correlation-request-id"]
    mine = str(uuid.uuid4())
    echoed = raw("GET", path, api_version=COMPUTE_API, headers={"x-ms-correlation-request-id": mine})
    assert echoed.headers["x-ms-correlation-request-id"] == mine
    assert echoed.headers["x-ms-routing-request-id"].endswith(":" + mine)
    client = str(uuid.uuid4())
    echoed = raw("GET", path, api_version=COMPUTE_API, headers={"x-ms-client-request-id": client})
    assert echoed.headers["x-ms-client-request-id"] == client


@pytest.mark.parametrize("method, suffix, body, bucket", [
    ("GET", "", None, "reads"),
    ("PATCH", "", {"tags": {"a": "b"}}, "writes"),
    ("POST", "/restart", None, "writes"),
    ("DELETE", "", None, "deletes"),
])
def test_ratelimit_header_names_the_bucket(sdk, raw, method, suffix, body, bucket):
    reply = raw(method, vm_id(sdk.subscription_id, JUMPBOX) + suffix, body=body, api_version=COMPUTE_API)
    assert reply.status_code < 300
    names = [k.lower() for k in reply.headers if k.lower().startswith("x-ms-ratelimit-remaining-subscription-")]
    assert names == ["x-ms-ratelimit-remaining-subscription-" + bucket]


def test_ratelimit_counts_down(emu, sdk, raw):
    emu.settings(rate_limits=True)
    values = [int(raw("GET", vm_id(sdk.subscription_id, JUMPBOX), api_version=COMPUTE_API)
                  .headers["x-ms-ratelimit-remaining-subscription-reads"]) for _ in range(3)]
    assert values[0] > values[2]
    assert values[0] <= 249


def test_errors_carry_the_headers_too(sdk, raw):
    reply = raw("GET", vm_id(sdk.subscription_id, "nosuchvm"), api_version=COMPUTE_API)
    _error(reply, 404, "ResourceNotFound")
    assert GUID.match(reply.headers["x-ms-request-id"])
    assert reply.headers["x-ms-correlation-request-id"]


# -- routing -----------------------------------------------------------------------------------


def test_routing_is_case_insensitive(sdk, raw):
    path = vm_id(sdk.subscription_id, JUMPBOX)
    for variant in (path.upper(), path.lower()):
        reply = raw("GET", variant.replace("API-VERSION", "api-version"), api_version=COMPUTE_API)
        assert reply.status_code == 200, variant
        # The resource keeps its own casing whatever the request used.
        assert reply.json()["id"] == path
        assert reply.json()["name"] == JUMPBOX
    upper_query = raw("GET", path + "?API-VERSION=" + COMPUTE_API)
    assert upper_query.status_code == 200


def test_percent_encoded_paths_are_decoded(sdk, raw):
    path = vm_id(sdk.subscription_id, JUMPBOX)
    encoded = "/" + quote(path[1:], safe="")
    assert "%2F" in encoded
    reply = raw("GET", encoded, api_version=COMPUTE_API)
    assert reply.status_code == 200
    assert reply.json()["id"] == path


def test_double_and_trailing_slashes(sdk, raw):
    path = vm_id(sdk.subscription_id, JUMPBOX)
    assert raw("GET", path.replace("/providers/", "//providers//"), api_version=COMPUTE_API).status_code == 200
    assert raw("GET", path + "/", api_version=COMPUTE_API).status_code == 200


def test_unknown_route_is_a_json_404(sdk, raw):
    reply = raw("GET", "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Foo/bars/x" % (
        sdk.subscription_id, RG), api_version=COMPUTE_API)
    _error(reply, 404, "NotFound")
    _error(raw("GET", "/definitely/not/arm"), 404, "NotFound")
    # Not even the root serves HTML.
    _error(raw("GET", "/"), 404, "NotFound")


def test_wrong_method_is_a_json_405(sdk, raw):
    reply = raw("PUT", vm_id(sdk.subscription_id, JUMPBOX) + "/instanceView", body={}, api_version=COMPUTE_API)
    error = _error(reply, 405, "MethodNotAllowed")
    assert "GET" in error["message"]


# -- request content ---------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["{not json", "[1, 2]", '"text"', "{\"location\": \"eastus\",}"])
def test_malformed_json_is_invalid_request_content(sdk, raw, data):
    path = "/subscriptions/%s/resourceGroups/newrg" % sdk.subscription_id
    reply = raw("PUT", path, data=data, headers={"Content-Type": "application/json"}, api_version=RG_API)
    error = _error(reply, 400, "InvalidRequestContent")
    assert error["message"].startswith("The request content was invalid and could not be deserialized")
    assert raw("GET", path, api_version=RG_API).status_code == 404


def test_empty_body_where_one_is_required(sdk, raw):
    _error(raw("PUT", vm_id(sdk.subscription_id, "newvm"), api_version=COMPUTE_API), 400, "InvalidRequestContent")


@pytest.mark.parametrize("body, path_text", [
    ({"location": "eastus", "tags": "x"}, "tags"),
    ({"location": "eastus", "tags": {"a": 1}}, "tags.a"),
    ({"location": "eastus", "properties": "x"}, "properties"),
    ({"location": "eastus", "properties": {"networkProfile": []}}, "properties.networkProfile"),
    ({"location": "eastus", "properties": {"virtualMachineScaleSet": {"id": 5}}}, "properties.virtualMachineScaleSet.id"),
    ({"location": "eastus", "zones": "1"}, "zones"),
    ({"location": 5}, "location"),
])
def test_wrongly_typed_fields_are_400_not_500(sdk, raw, body, path_text):
    reply = raw("PUT", vm_id(sdk.subscription_id, "typedvm"), body=body, api_version=COMPUTE_API)
    error = _error(reply, 400, "InvalidRequestContent")
    assert "Path '%s'" % path_text in error["message"]
    _error(raw("GET", vm_id(sdk.subscription_id, "typedvm"), api_version=COMPUTE_API), 404, "ResourceNotFound")


def test_wrongly_typed_fields_elsewhere(sdk, raw):
    sub = sdk.subscription_id
    cases = [
        ("PATCH", "/subscriptions/%s/resourceGroups/%s" % (sub, RG), RG_API, {"tags": []}),
        ("PUT", "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Authorization/locks/l" % (sub, RG),
         "2020-05-01", {"properties": {"level": "ReadOnly", "notes": 5}}),
        ("POST", "/providers/Microsoft.ResourceGraph/resources", "2021-03-01",
         {"query": "Resources", "subscriptions": [5]}),
        ("POST", "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachineScaleSets/%s/delete"
         % (sub, RG, FLEX), COMPUTE_API, {"instanceIds": "web_1"}),
        ("PUT", "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachineScaleSets/x"
         % (sub, RG), COMPUTE_API, {
             "location": "eastus", "sku": {"capacity": "3"},
             "properties": {"orchestrationMode": "Flexible", "platformFaultDomainCount": 1}}),
    ]
    for method, path, api, body in cases:
        _error(raw(method, path, body=body, api_version=api), 400, "InvalidRequestContent")
    assert sdk.compute().virtual_machine_scale_sets.get(RG, FLEX).sku.capacity == 12


# -- api-version ---------------------------------------------------------------------------------


def test_missing_api_version(sdk, raw):
    error = _error(raw("GET", vm_id(sdk.subscription_id, JUMPBOX)), 400, "MissingApiVersionParameter")
    assert "api-version" in error["message"]


def test_malformed_api_version(sdk, raw):
    error = _error(raw("GET", vm_id(sdk.subscription_id, JUMPBOX), api_version="latest"), 400,
                   "InvalidApiVersionParameter")
    assert "'latest'" in error["message"] and "2026-04-01" in error["message"]


def test_unknown_api_version(sdk, raw):
    error = _error(raw("GET", vm_id(sdk.subscription_id, JUMPBOX), api_version="2099-01-01"), 400,
                   "NoRegisteredProviderFound")
    assert "2099-01-01" in error["message"] and "2024-07-01" in error["message"]


def test_api_versions_are_per_provider(sdk, raw):
    # A network api-version is not a compute one, and the other way round.
    _error(raw("GET", vm_id(sdk.subscription_id, JUMPBOX), api_version="2026-03-01"), 400,
           "NoRegisteredProviderFound")
    _error(raw("GET", "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Authorization/locks" % (
        sdk.subscription_id, RG), api_version="2026-04-01"), 400, "NoRegisteredProviderFound")


def test_unknown_api_version_accepted_when_not_strict(emu, sdk, raw):
    emu.settings(strict_api_versions=False)
    assert raw("GET", vm_id(sdk.subscription_id, JUMPBOX), api_version="2099-01-01").status_code == 200
    # Malformed stays refused.
    _error(raw("GET", vm_id(sdk.subscription_id, JUMPBOX), api_version="v2"), 400, "InvalidApiVersionParameter")


def test_sdk_sends_its_api_versions(emu, sdk):
    before = emu.request_count()
    sdk.compute().virtual_machines.get(RG, JUMPBOX)
    list(sdk.locks().management_locks.list_at_resource_group_level(RG))
    sdk.resources().resource_groups.get(RG)
    log = arm_requests(emu, before)
    expected = [COMPUTE_API, "2020-05-01" if NEW_SDK else "2016-09-01", "2025-04-01" if NEW_SDK else "2022-09-01"]
    assert [e["query"]["api-version"] for e in log] == expected


# -- not found ---------------------------------------------------------------------------------


def test_resource_not_found_message(sdk):
    with pytest.raises(ResourceNotFoundError) as info:
        sdk.compute().virtual_machines.get(RG, "ghost")
    assert info.value.status_code == 404
    assert info.value.error.code == "ResourceNotFound"
    assert info.value.error.message == (
        "The Resource 'Microsoft.Compute/virtualMachines/ghost' under resource group 'demo-rg' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix")


def test_resource_group_not_found(sdk):
    with pytest.raises(ResourceNotFoundError) as info:
        sdk.compute().virtual_machines.get("nope-rg", JUMPBOX)
    assert info.value.error.code == "ResourceGroupNotFound"
    assert info.value.error.message == "Resource group 'nope-rg' could not be found."


def test_subscription_not_found(sdk):
    from azure.mgmt.compute import ComputeManagementClient

    other = str(uuid.uuid4())
    client = ComputeManagementClient(sdk.credential, other, **sdk.kwargs)
    with pytest.raises(ResourceNotFoundError) as info:
        client.virtual_machines.get(RG, JUMPBOX)
    assert info.value.error.code == "SubscriptionNotFound"
    assert other in info.value.error.message


# -- paging ------------------------------------------------------------------------------------


def test_lists_page_with_next_link(emu, sdk):
    emu.settings(page_size=5)
    before = emu.request_count()
    names = [vm.name for vm in sdk.compute().virtual_machines.list(RG)]
    assert len(names) == 13 and len(set(names)) == 13
    log = arm_requests(emu, before)
    assert [e["method"] for e in log] == ["GET"] * 3
    assert [e["query"].get("$skiptoken") for e in log] == [None, "5", "10"]
    assert all(e["query"]["api-version"] == COMPUTE_API for e in log)
    all_names = [vm.name for vm in sdk.compute().virtual_machines.list_all()]
    assert sorted(all_names) == sorted(names)


@pytest.mark.parametrize("token", ["abc", "-5"])
def test_bad_skiptoken(sdk, raw, token):
    reply = raw("GET", "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines" % (
        sdk.subscription_id, RG) + "?$skiptoken=" + token, api_version=COMPUTE_API)
    _error(reply, 400, "InvalidSkipToken")


# -- resource groups ---------------------------------------------------------------------------


def test_resource_group_lifecycle(emu, sdk, raw):
    rgs = sdk.resources().resource_groups
    assert rgs.check_existence("fresh-rg") is False
    created = raw("PUT", "/subscriptions/%s/resourceGroups/fresh-rg" % sdk.subscription_id,
                  body={"location": "westeurope", "tags": {"a": "1"}}, api_version=RG_API)
    assert created.status_code == 201
    assert created.json()["properties"]["provisioningState"] == "Succeeded"
    assert rgs.check_existence("fresh-rg") is True
    group = rgs.create_or_update("fresh-rg", {"location": "westeurope", "tags": {"b": "2"}})
    assert group.tags == {"b": "2"} and group.location == "westeurope"
    assert group.id == "/subscriptions/%s/resourceGroups/fresh-rg" % sdk.subscription_id
    with pytest.raises(ResourceExistsError) as info:
        rgs.create_or_update("fresh-rg", {"location": "eastus"})
    assert info.value.error.code == "InvalidResourceGroupLocation"
    patched = rgs.update("fresh-rg", {"tags": {"c": "3"}})
    assert patched.tags == {"c": "3"}
    assert sorted(g.name for g in rgs.list()) == ["demo-rg", "fresh-rg"]
    rgs.begin_delete("fresh-rg", polling_interval=0.02).result()
    assert rgs.check_existence("fresh-rg") is False


def test_resource_group_needs_a_location(sdk, raw):
    reply = raw("PUT", "/subscriptions/%s/resourceGroups/nolocation" % sdk.subscription_id, body={"tags": {}},
                api_version=RG_API)
    _error(reply, 400, "LocationRequired")


def test_deleting_a_resource_group_deletes_its_resources(emu, sdk):
    compute = sdk.compute()
    emu.settings(durations={"delete": 25})  # 0.5 s, to see the Deleting state
    poller = sdk.resources().resource_groups.begin_delete(RG, polling_interval=0.02)
    # While it runs the group says Deleting.
    assert sdk.resources().resource_groups.get(RG).properties.provisioning_state == "Deleting"
    poller.result()
    with pytest.raises(ResourceNotFoundError) as info:
        compute.virtual_machines.get(RG, JUMPBOX)
    assert info.value.error.code == "ResourceGroupNotFound"
    assert list(compute.virtual_machines.list_all()) == []
    assert list(sdk.network().network_interfaces.list_all()) == []


def test_subscriptions_are_listed(sdk, raw):
    reply = raw("GET", "/subscriptions", api_version="2022-12-01")
    assert reply.status_code == 200
    subs = reply.json()["value"]
    assert [s["subscriptionId"] for s in subs] == [sdk.subscription_id]
    assert subs[0]["state"] == "Enabled" and subs[0]["tenantId"]


def test_provider_registration_answers_registered(sdk, raw):
    path = "/subscriptions/%s/providers/Microsoft.Compute" % sdk.subscription_id
    reply = raw("GET", path, api_version=RG_API)
    assert reply.status_code == 200 and reply.json()["registrationState"] == "Registered"
    reply = raw("POST", path + "/register", api_version=RG_API)
    assert reply.status_code == 200 and reply.json()["registrationState"] == "Registered"


def test_no_traceback_ever(emu, sdk, raw):
    """Odd but well-typed requests never produce a 500 and the server log stays clean."""
    sub = sdk.subscription_id
    base = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute" % (sub, RG)
    calls = [
        ("PUT", base + "/virtualMachineScaleSets/s1", {"location": "eastus", "sku": {"capacity": 2},
                                                       "properties": {"orchestrationMode": "Flexible",
                                                                      "platformFaultDomainCount": 1}}),
        ("PUT", base + "/virtualMachineScaleSets/s2", {"location": "eastus", "sku": {"capacity": 1}, "properties": {
            "orchestrationMode": "Flexible", "platformFaultDomainCount": 1, "virtualMachineProfile": {
                "networkProfile": {"networkInterfaceConfigurations": [{"name": "n", "properties": {
                    "ipConfigurations": [{"name": "i", "properties": {"subnet": {"id": "/nope"}}}]}}]}}}}),
        ("PUT", base + "/virtualMachineScaleSets/s3", {"location": "eastus", "sku": {"capacity": 1}, "properties": {
            "orchestrationMode": "Flexible", "platformFaultDomainCount": 1,
            "virtualMachineProfile": {"extensionProfile": {"extensions": [{}]}}}}),
        ("PUT", base + "/virtualMachineScaleSets/s4", {"location": "eastus", "sku": {"capacity": -1},
                                                       "properties": {"orchestrationMode": "Flexible",
                                                                      "platformFaultDomainCount": 1}}),
        ("PATCH", base + "/virtualMachineScaleSets/" + FLEX, {"sku": {"capacity": 5000}}),
        ("PUT", base + "/virtualMachines/v1", {"location": "eastus", "properties": {
            "networkProfile": {"networkInterfaces": [{}]}}}),
        ("POST", base + "/virtualMachineScaleSets/%s/delete" % FLEX, {"instanceIds": []}),
        ("POST", "/providers/Microsoft.ResourceGraph/resources", {"query": "Resources", "options": {"$skipToken": "@"}}),
    ]
    for method, path, body in calls:
        reply = raw(method, path, body=body, api_version=COMPUTE_API if "Compute" in path else "2021-03-01")
        assert 400 <= reply.status_code < 500, (path, reply.status_code, reply.text)
        assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    # None of the refused scale sets exists half-made.
    names = sorted(s.name for s in sdk.compute().virtual_machine_scale_sets.list(RG))
    assert names == ["legacy", "web"]
    assert sdk.compute().virtual_machine_scale_sets.get(RG, FLEX).sku.capacity == 12
    assert emu.control("GET", "operations")["operations"] == {}


def test_lro_status_of_unknown_operation(sdk, raw):
    reply = raw("GET", "/subscriptions/%s/providers/Microsoft.Compute/locations/eastus/operations/%s" % (
        sdk.subscription_id, uuid.uuid4()), api_version=COMPUTE_API)
    _error(reply, 404, "NotFound")


def test_sdk_error_parsing(sdk):
    # azure-core parses the ARM error body into .error (code, message) for any status.
    with pytest.raises(HttpResponseError) as info:
        sdk.compute().virtual_machines.get(RG, JUMPBOX, expand="everything")
    assert info.value.status_code == 400
    assert info.value.error.code == "InvalidParameter"
    assert info.value.error.target == "$expand"


def test_request_log_records_arm_calls_only(emu, sdk):
    before = emu.request_count()
    sdk.compute().virtual_machines.get(RG, JUMPBOX)
    emu.settings()  # control API calls are not logged
    log = arm_requests(emu, before)
    assert len(log) == 1
    entry = log[0]
    # azure-identity's calls are logged too (token requests are visible), the control API's are not.
    assert all(not e["path"].startswith("/_emulator") for e in emu.requests(before))
    assert entry["method"] == "GET" and entry["status"] == 200
    assert entry["path"] == vm_id(sdk.subscription_id, JUMPBOX)
    assert entry["query"] == {"api-version": COMPUTE_API}
    assert entry["duration_ms"] >= 0
