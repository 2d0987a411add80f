# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Resource Graph: the queries (ids validated and quoted), paging and the refusal of a truncated result."""

from __future__ import annotations

import types

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import AzureFlexError, InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils._graph import (
    SCALE_SETS_PER_MEMBER_QUERY,
    member_query,
    member_query_for_scale_sets,
    query_resource_graph,
)
from ansible_collections.azure_flex.vmss.tests.unit.plugins.module_utils.selection_samples import SET_ID
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import SUBSCRIPTION_ID as SUB


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
