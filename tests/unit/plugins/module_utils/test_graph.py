# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Resource Graph: the queries (ids validated and quoted), paging and the refusal of a truncated result."""

from __future__ import annotations

import types

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils import _graph
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import AzureFlexError, InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils._graph import (
    CODE_GRAPH_TRUNCATED,
    NIC_IDS_PER_QUERY,
    SCALE_SETS_PER_MEMBER_QUERY,
    addresses_by_vm,
    batches,
    member_query,
    member_query_for_scale_sets,
    network_query,
    nic_private_ip_query,
    private_ips_by_nic,
    query_resource_graph,
    read_resource_graph,
    scale_set_query,
)
from ansible_collections.azure_flex.vmss.tests.unit.plugins.module_utils.selection_samples import (
    SET_ID,
    graph_page,
    network_row,
    vm_id,
)
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import (
    SUBSCRIPTION_ID as SUB,
    arm_error,
    clients_over,
    reply,
)

OTHER_SUB = "99999999-8888-7777-6666-555555555555"


def test_member_query_quotes_the_validated_id():
    query = member_query(SET_ID)

    assert "| where properties.virtualMachineScaleSet.id =~ '%s'" % SET_ID in query
    assert query.startswith("Resources\n| where type =~ 'microsoft.compute/virtualmachines'")
    assert "order by name asc" in query


def test_member_query_refuses_an_injected_id():
    with pytest.raises(InvalidInputError):
        member_query(SET_ID + "' | project secrets //")


def test_member_query_for_scale_sets_quotes_validated_ids_and_caps_the_batch():
    query = member_query_for_scale_sets([SET_ID])
    assert "| where scaleSetId in ('%s')" % SET_ID.lower() in query
    assert "| order by id asc" in query
    with pytest.raises(InvalidInputError):
        member_query_for_scale_sets([SET_ID] * (SCALE_SETS_PER_MEMBER_QUERY + 1))
    with pytest.raises(InvalidInputError):
        member_query_for_scale_sets(["/subscriptions/x/not-a-scale-set"])


class PagedGraph:
    def __init__(self, pages):
        self.pages = list(pages)
        self.requests = []

    def resources(self, request):
        self.requests.append(request)
        return self.pages.pop(0)


def test_query_resource_graph_spans_several_subscriptions_and_follows_tokens():
    graph = PagedGraph([types.SimpleNamespace(data=[{"id": "1"}], skip_token="t1", result_truncated="false"),
                        types.SimpleNamespace(data=[{"id": "2"}], skip_token=None, result_truncated="false")])
    assert query_resource_graph(graph, [SUB, "other"], "Resources") == [{"id": "1"}, {"id": "2"}]
    assert [request.subscriptions for request in graph.requests] == [[SUB, "other"], [SUB, "other"]]
    assert graph.requests[1].options.skip_token == "t1"


def test_a_truncated_result_without_token_is_an_error_not_a_partial_list():
    graph = PagedGraph([types.SimpleNamespace(data=[{"id": "1"}], skip_token=None, result_truncated="true")])
    with pytest.raises(AzureFlexError, match="truncated") as raised:
        query_resource_graph(graph, SUB, "Resources")
    assert raised.value.code == "AzureFlexResourceGraphTruncated"


def test_scale_set_query_names_sets_and_scopes_groups():
    query = scale_set_query([SET_ID], ["web-rg", "other"], [SUB])
    assert "tolower(id) in ('%s')" % SET_ID.lower() in query
    assert "resourceGroup in~ ('web-rg', 'other')" in query
    assert "properties.orchestrationMode =~ 'Flexible'" in query
    assert "subscriptionId in~ ('%s')" % SUB in query


def test_scale_set_query_with_names_only_does_not_list_every_flexible_set():
    assert "orchestrationMode =~" not in scale_set_query([SET_ID], [], [SUB])


def test_network_query_joins_nics_and_public_ips_and_projects_id_for_paging():
    query = network_query([SET_ID])
    assert query.count("join kind=") == 2
    assert "| project id, vmId" in query
    assert "'%s'" % SET_ID.lower() in query


def test_addresses_put_the_primary_nic_and_ip_configuration_first():
    rows = [network_row("a", "10.0.0.9", nic_primary="false", nic="-nic2"),
            network_row("a", "10.0.0.5", ipconfig_primary="false"),
            network_row("a", "10.0.0.4", public_ip="20.0.0.1")]
    assert addresses_by_vm(rows)[vm_id("a").lower()] == {
        "private_ips": ["10.0.0.4", "10.0.0.5", "10.0.0.9"], "public_ips": ["20.0.0.1"], "public_fqdns": []}


# -- reading, as the selector, flex_list_instances and the inventory read: through the real SDK client ---------

def graph_client_over(script):
    """The real ResourceGraphClient of ``AzureClients``, answering from a scripted transport."""
    clients, adapter, _sleeps = clients_over(script)
    return clients.resource_graph(), adapter


def test_one_query_over_several_subscriptions_reads_every_page():
    client, adapter = graph_client_over([graph_page([{"id": "a"}, {"id": "b"}], skip_token="page-2"),
                                         graph_page([{"id": "c"}])])

    rows = read_resource_graph(client, [SUB, OTHER_SUB], "Resources | order by id asc", "read scale set members")

    assert rows == [{"id": "a"}, {"id": "b"}, {"id": "c"}]
    first, second = [request.json() for request in adapter.requests]
    assert first["subscriptions"] == second["subscriptions"] == [SUB, OTHER_SUB]
    assert first["query"] == second["query"] == "Resources | order by id asc"
    assert (first["options"]["$top"], first["options"]["resultFormat"]) == (1000, "objectArray")
    assert "$skipToken" not in first["options"]
    assert second["options"]["$skipToken"] == "page-2"


def test_a_result_the_service_truncated_is_refused_not_returned_in_part():
    client, _adapter = graph_client_over([graph_page([{"id": "a"}], skip_token="page-2"),
                                          graph_page([{"id": "b"}], truncated="true")])

    with pytest.raises(AzureFlexError) as raised:
        read_resource_graph(client, SUB, "Resources", "read network interfaces")

    assert raised.value.code == CODE_GRAPH_TRUNCATED
    assert "(2 rows read)" in raised.value.msg


def test_an_arm_error_says_what_was_being_read_with_its_code_and_request_id():
    client, _adapter = graph_client_over([reply(403, arm_error("AuthorizationFailed", "No read access."),
                                                {"x-ms-request-id": "req-7"})])

    with pytest.raises(AzureFlexError) as raised:
        read_resource_graph(client, SUB, "Resources", "read scale sets")

    assert raised.value.msg.startswith("Failed to read scale sets with Resource Graph")
    assert (raised.value.code, raised.value.status, raised.value.request_id) == ("AuthorizationFailed", 403, "req-7")


def test_rows_in_table_format_become_dicts():
    table = {"columns": [{"name": "id", "type": "string"}, {"name": "ip", "type": "string"}],
             "rows": [["/nic/1", "10.0.0.4"], ["/nic/2", "10.0.0.5"]]}
    graph = PagedGraph([types.SimpleNamespace(data=table, skip_token=None, result_truncated="false")])

    assert query_resource_graph(graph, SUB, "Resources") == [{"id": "/nic/1", "ip": "10.0.0.4"},
                                                             {"id": "/nic/2", "ip": "10.0.0.5"}]


def test_a_continuation_token_given_twice_stops_the_paging():
    graph = PagedGraph([types.SimpleNamespace(data=[{"id": str(page)}], skip_token="same", result_truncated="false")
                        for page in range(3)])

    with pytest.raises(AzureFlexError, match="same continuation token twice"):
        query_resource_graph(graph, SUB, "Resources")
    assert len(graph.requests) == 2


def test_paging_stops_at_the_page_cap(monkeypatch):
    monkeypatch.setattr(_graph, "RESOURCE_GRAPH_MAX_PAGES", 3)
    graph = PagedGraph([types.SimpleNamespace(data=[], skip_token="t%d" % page, result_truncated="false")
                        for page in range(5)])

    with pytest.raises(AzureFlexError, match="more than 3 pages"):
        query_resource_graph(graph, SUB, "Resources")
    assert len(graph.requests) == 3


def test_private_ips_are_read_by_lower_cased_nic_id_in_batches():
    nic_ids = ["/NIC/%03d" % number for number in range(NIC_IDS_PER_QUERY + 1)]
    answers = [[{"id": "/nic/000", "ip": "10.0.0.4"}, {"id": "/NIC/000", "ip": "10.0.0.5"}, {"id": "/nic/001", "ip": ""}],
               [{"id": "/nic/300", "ip": "10.0.1.4"}]]
    graph = PagedGraph([types.SimpleNamespace(data=rows, skip_token=None, result_truncated="false") for rows in answers])

    by_nic = private_ips_by_nic(graph, SUB, nic_ids + ["/nic/000"])

    assert by_nic == {"/nic/000": ["10.0.0.4", "10.0.0.5"], "/nic/300": ["10.0.1.4"]}
    assert [request.query.count("'/nic/") for request in graph.requests] == [NIC_IDS_PER_QUERY, 1]
    assert all(request.subscriptions == [SUB] for request in graph.requests)


def test_nic_query_quotes_every_id():
    query = nic_private_ip_query(["/nic/a", "/nic/b' | project secrets //"])

    assert "| where tolower(id) in ('/nic/a', '/nic/b\\' | project secrets //')" in query


def test_scale_set_query_of_one_resource_group_lists_its_flexible_sets():
    query = scale_set_query([], ["rg1"], [SUB])

    assert "| where (properties.orchestrationMode =~ 'Flexible' and subscriptionId in~ ('%s') and resourceGroup in~"\
           " ('rg1'))" % SUB in query
    assert "tolower(id) in" not in query


def test_batches_are_consecutive_slices():
    assert batches(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    assert batches([], 50) == []
