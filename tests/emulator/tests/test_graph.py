"""Azure Resource Graph through the SDK: the KQL the collection uses, paging, formats, lag, errors."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import HttpResponseError

from _support import (FLEX, GRAPH_API, JUMPBOX, RG, arm_requests, flex_members, graph, graph_rows, vm_id,
                      vmss_id, wait_until)

VMS = "Resources | where type =~ 'microsoft.compute/virtualmachines'"


def rows(sdk, query, **options):
    return graph_rows(graph(sdk, query, **options))


def power_of(sdk, name):
    found = rows(sdk, VMS + " | where name == '%s' | project p = tostring(properties.extended.instanceView"
                            ".powerState.code)" % name)
    return found[0]["p"] if found else None


def test_basic_query(sdk):
    result = graph(sdk, VMS + " | project id, name | order by name asc")
    data = graph_rows(result)
    assert result.total_records == 13 and result.count == 13
    assert result.result_truncated == "false"
    assert result.skip_token is None
    assert [r["name"] for r in data] == sorted([JUMPBOX] + flex_members(sdk.compute(), sdk.subscription_id))
    assert data[0] == {"id": vm_id(sdk.subscription_id, JUMPBOX), "name": JUMPBOX}
    assert result.facets == []


def test_vm_row_shape(sdk, compute):
    member = flex_members(compute, sdk.subscription_id)[0]
    row = rows(sdk, VMS + " | where name == '%s'" % member)[0]
    assert set(row) == {"id", "name", "type", "tenantId", "kind", "location", "resourceGroup", "subscriptionId",
                        "managedBy", "sku", "plan", "properties", "tags", "identity", "zones", "extendedLocation"}
    assert row["type"] == "microsoft.compute/virtualmachines"
    assert row["resourceGroup"] == RG and row["subscriptionId"] == sdk.subscription_id
    assert row["managedBy"] == vmss_id(sdk.subscription_id, FLEX)
    assert row["properties"]["virtualMachineScaleSet"]["id"] == vmss_id(sdk.subscription_id, FLEX)
    assert row["properties"]["extended"]["instanceView"]["powerState"] == {
        "code": "PowerState/running", "level": "Info", "displayStatus": "VM running"}
    assert "vmHealth" not in row["properties"]["extended"]["instanceView"]
    assert "instanceView" not in {k for k in row["properties"] if k != "extended"}
    vm = compute.virtual_machines.get(RG, member)
    assert row["properties"]["platformFaultDomain"] == vm.platform_fault_domain
    assert row["properties"]["vmId"] == vm.vm_id


def test_collection_discovery_query(sdk, compute):
    sub = sdk.subscription_id
    compute.virtual_machines.begin_deallocate(RG, flex_members(compute, sub)[0]).result()
    query = (VMS + " | where properties.virtualMachineScaleSet.id =~ '%s'"
             " | extend powerState = tostring(properties.extended.instanceView.powerState.code)"
             " | project id, name, resourceGroup, location, zones, fd = properties.platformFaultDomain, powerState"
             " | order by name asc" % vmss_id(sub, FLEX).upper())
    data = rows(sdk, query)
    assert [r["name"] for r in data] == flex_members(compute, sub)
    assert set(data[0]) == {"id", "name", "resourceGroup", "location", "zones", "fd", "powerState"}
    assert sorted(r["fd"] for r in data) == [0] * 4 + [1] * 4 + [2] * 4
    assert [r["powerState"] for r in data].count("PowerState/deallocated") == 1
    summary = rows(sdk, VMS + " | extend powerState = tostring(properties.extended.instanceView.powerState.code)"
                              " | summarize count() by powerState | order by powerState asc")
    assert summary == [{"powerState": "PowerState/deallocated", "count_": 1},
                       {"powerState": "PowerState/running", "count_": 12}]


def test_more_kql(sdk, compute):
    members = flex_members(compute, sdk.subscription_id)
    ids = ", ".join("'%s'" % vm_id(sdk.subscription_id, n).upper() for n in members[:3])
    assert len(rows(sdk, VMS + " | where id in~ (%s) | project id" % ids)) == 3
    assert len(rows(sdk, VMS + " | take 4")) == 4
    expanded = rows(sdk, VMS + " | where name == 'jumpbox' | mv-expand nic = properties.networkProfile"
                               ".networkInterfaces | project nicId = tostring(nic.id)")
    assert len(expanded) == 1 and expanded[0]["nicId"].endswith("/networkInterfaces/jumpbox-nic")
    joined = rows(sdk, VMS + " | where name == 'jumpbox' | mv-expand nic = properties.networkProfile"
                             ".networkInterfaces | extend nicId = tolower(tostring(nic.id)) | project name, nicId"
                             " | join kind=leftouter (Resources | where type =~ 'microsoft.network/networkinterfaces'"
                             " | project nicId = tolower(id), ip = tostring(properties.ipConfigurations[0]"
                             ".properties.privateIPAddress)) on nicId | project name, ip")
    assert len(joined) == 1 and joined[0]["ip"].startswith("10.0.")
    sets = rows(sdk, "Resources | where type =~ 'microsoft.compute/virtualmachinescalesets'"
                     " | project name, mode = tostring(properties.orchestrationMode) | order by name asc")
    assert sets == [{"name": "legacy", "mode": "Uniform"}, {"name": "web", "mode": "Flexible"}]


def test_resource_containers(sdk):
    data = rows(sdk, "ResourceContainers | where type =~ 'microsoft.resources/subscriptions/resourcegroups'"
                     " | project name, location")
    assert data == [{"name": RG, "location": "eastus"}]
    # Resource groups are not in the Resources table, nor are Uniform instances.
    assert rows(sdk, "Resources | where type contains 'resourcegroups' or type contains 'virtualmachinescalesets/'"
                     " | project id") == []


# -- paging ------------------------------------------------------------------------------------


def test_paging_with_skip_token(emu, sdk):
    query = VMS + " | project id, name | order by name asc"
    seen = []
    token = None
    pages = 0
    while True:
        result = graph(sdk, query, top=5, skip_token=token)
        pages += 1
        assert result.total_records == 13
        seen += [r["name"] for r in graph_rows(result)]
        token = result.skip_token
        if token is None:
            assert result.result_truncated == "false"
            break
        assert result.count == 5
    assert pages == 3
    assert len(seen) == 13 and seen == sorted(seen)


def test_skip_and_top(sdk):
    query = VMS + " | project id, name | order by name asc"
    everything = [r["name"] for r in rows(sdk, query)]
    assert [r["name"] for r in rows(sdk, query, skip=10)] == everything[10:]
    assert [r["name"] for r in rows(sdk, query, skip=2, top=3)] == everything[2:5]
    # take disables $skip.
    assert [r["name"] for r in rows(sdk, VMS + " | project id, name | order by name asc | take 3", skip=2)] == \
        everything[:3]


def test_default_page_size_is_100(emu, sdk):
    result = graph(sdk, "Resources | project id")
    assert result.total_records > 13
    total = result.total_records
    assert result.count == min(total, 100)


def test_no_skip_token_without_id(sdk):
    result = graph(sdk, VMS + " | project name | order by name asc", top=5)
    assert result.count == 5
    assert result.skip_token is None
    assert result.result_truncated == "true"


@pytest.mark.parametrize("options", [{"top": 1001}, {"top": 0}, {"skip": -1}])
def test_top_limits(sdk, options):
    with pytest.raises(HttpResponseError) as info:
        graph(sdk, VMS + " | project id", **options)
    assert info.value.status_code == 400
    assert info.value.error.code == "BadRequest"


def test_top_1000_is_allowed(sdk):
    assert graph(sdk, VMS + " | project id", top=1000).count == 13


def test_skip_token_of_another_query(sdk):
    token = graph(sdk, VMS + " | project id | order by id asc", top=2).skip_token
    assert token
    with pytest.raises(HttpResponseError) as info:
        graph(sdk, VMS + " | project id, name | order by id asc", top=2, skip_token=token)
    assert info.value.status_code == 400


# -- formats -----------------------------------------------------------------------------------


def test_table_format(sdk):
    result = graph(sdk, VMS + " | where name == 'jumpbox' | project id, name", result_format="table")
    assert result.data == {"columns": [{"name": "id", "type": "string"}, {"name": "name", "type": "string"}],
                           "rows": [[vm_id(sdk.subscription_id, JUMPBOX), JUMPBOX]]}
    counted = graph(sdk, VMS + " | summarize count() by location", result_format="table")
    assert counted.data == {"columns": [{"name": "location", "type": "string"},
                                        {"name": "count_", "type": "integer"}],
                            "rows": [["eastus", 13]]}


def test_service_default_format_is_table(sdk, raw):
    reply = raw("POST", "/providers/Microsoft.ResourceGraph/resources", api_version=GRAPH_API,
                body={"subscriptions": [sdk.subscription_id], "query": VMS + " | project name | take 1"})
    assert reply.status_code == 200
    body = reply.json()
    assert body["data"]["columns"] == [{"name": "name", "type": "string"}]
    assert len(body["data"]["rows"]) == 1
    assert body["resultTruncated"] == "false" and body["count"] == 1 and body["totalRecords"] == 1
    reply = raw("POST", "/providers/Microsoft.ResourceGraph/resources", api_version=GRAPH_API,
                body={"subscriptions": [sdk.subscription_id], "query": VMS + " | project name | take 1",
                      "options": {"resultFormat": "objectArray"}})
    assert isinstance(reply.json()["data"], list)


def test_what_the_sdk_sends(emu, sdk):
    before = emu.request_count()
    graph(sdk, VMS + " | project id", result_format=None)
    entry = arm_requests(emu, before)[0]
    assert entry["method"] == "POST" and entry["path"] == "/providers/Microsoft.ResourceGraph/resources"
    assert entry["query"] == {"api-version": GRAPH_API}


def test_other_subscriptions_are_not_visible(sdk):
    from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

    result = sdk.graph().resources(QueryRequest(subscriptions=["00000000-0000-0000-0000-000000000000"],
                                                query=VMS, options=QueryRequestOptions(result_format="objectArray")))
    assert result.total_records == 0 and graph_rows(result) == []


# -- freshness ---------------------------------------------------------------------------------


def test_no_lag_by_default(sdk, compute):
    member = flex_members(compute, sdk.subscription_id)[0]
    compute.virtual_machines.begin_power_off(RG, member).result()
    assert power_of(sdk, member) == "PowerState/stopped"


def test_transitional_states_are_indexed(emu, sdk, compute):
    member = flex_members(compute, sdk.subscription_id)[0]
    emu.settings(durations={"restart": 50})
    poller = compute.virtual_machines.begin_restart(RG, member)
    assert power_of(sdk, member) == "PowerState/starting"
    poller.result()
    assert power_of(sdk, member) == "PowerState/running"


def test_graph_lag(emu, sdk, compute):
    member = flex_members(compute, sdk.subscription_id)[0]
    emu.settings(graph_lag=1.0)
    # The scenario itself was just loaded: Resource Graph has not caught up with it yet.
    assert power_of(sdk, member) is None
    wait_until(lambda: power_of(sdk, member) == "PowerState/running", timeout=5)
    compute.virtual_machines.begin_deallocate(RG, member).result()
    changed = time.monotonic()
    assert power_of(sdk, member) == "PowerState/running"
    compute.virtual_machines.begin_create_or_update(RG, "fresh", {"location": "eastus"}).result()
    compute.virtual_machines.begin_delete(RG, JUMPBOX).result()
    assert rows(sdk, VMS + " | where name in ('fresh', 'jumpbox') | project name") == [{"name": "jumpbox"}]
    wait_until(lambda: power_of(sdk, member) == "PowerState/deallocated", timeout=5)
    assert time.monotonic() - changed >= 0.9
    wait_until(lambda: rows(sdk, VMS + " | where name in ('fresh', 'jumpbox') | project name") ==
               [{"name": "fresh"}], timeout=5)
    # The VM API is never stale.
    assert compute.virtual_machines.get(RG, "fresh").provisioning_state == "Succeeded"


# -- errors and quota --------------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    "Resources | frobnicate",
    "Resources | where",
    "Resources | project nosuchcolumn",
    "Resources | join (Resources) on id | join (Resources) on id | join (Resources) on id | join (Resources) on id",
    "NoSuchTable",
])
def test_invalid_queries(sdk, query):
    with pytest.raises(HttpResponseError) as info:
        graph(sdk, query)
    assert info.value.status_code == 400
    error = info.value.error
    assert error.code == "BadRequest"
    assert error.message.startswith("Query is invalid.")
    assert [d.code for d in error.details][:1] == ["InvalidQuery"]


def test_query_is_required(sdk, raw):
    reply = raw("POST", "/providers/Microsoft.ResourceGraph/resources", api_version=GRAPH_API,
                body={"subscriptions": [sdk.subscription_id]})
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "BadRequest"


def test_quota(emu, sdk, raw):
    emu.settings(graph_quota=3)
    body = {"subscriptions": [sdk.subscription_id], "query": VMS + " | project id | take 1"}
    path = "/providers/Microsoft.ResourceGraph/resources"
    remaining = []
    for _ in range(3):
        reply = raw("POST", path, body=body, api_version=GRAPH_API)
        assert reply.status_code == 200
        remaining.append(int(reply.headers["x-ms-user-quota-remaining"]))
        assert reply.headers["x-ms-user-quota-resets-after"].startswith("00:00:0")
    assert remaining == [2, 1, 0]
    throttled = raw("POST", path, body=body, api_version=GRAPH_API)
    assert throttled.status_code == 429
    error = throttled.json()["error"]
    assert error["code"] == "RateLimiting"
    assert error["details"][0]["code"] == "RateLimiting"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 5
    assert throttled.headers["x-ms-user-quota-remaining"] == "0"


def test_old_and_new_api_versions(sdk, raw):
    body = {"subscriptions": [sdk.subscription_id], "query": VMS + " | project id | take 1"}
    for version in ("2021-03-01", "2022-10-01", "2024-04-01"):
        assert raw("POST", "/providers/Microsoft.ResourceGraph/resources", body=body,
                   api_version=version).status_code == 200
    reply = raw("POST", "/providers/Microsoft.ResourceGraph/resources", body=body, api_version="2026-04-01")
    assert reply.status_code == 400


def test_facets_are_refused_not_ignored(sdk):
    from azure.mgmt.resourcegraph.models import FacetRequest, QueryRequest

    request = QueryRequest(subscriptions=[sdk.subscription_id], query=VMS + " | project id, location",
                           facets=[FacetRequest(expression="location")])
    with pytest.raises(HttpResponseError) as info:
        sdk.graph().resources(request)
    assert info.value.status_code == 400
    assert [d.code for d in info.value.error.details] == ["InvalidQuery", "UnsupportedFeature"]


def test_invalid_result_format(sdk, raw):
    reply = raw("POST", "/providers/Microsoft.ResourceGraph/resources", api_version=GRAPH_API,
                body={"subscriptions": [sdk.subscription_id], "query": VMS,
                      "options": {"resultFormat": "csv"}})
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "BadRequest"
