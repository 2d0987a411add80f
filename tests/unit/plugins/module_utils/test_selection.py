# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The selector against the real SDK clients over a scripted transport: reading the scale set, listing
its members from Resource Graph or the compute API, Resource Graph lag, named members and filters."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import AzureFlexError, InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils._graph import member_query
from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import ScaleSetRef
from ansible_collections.azure_flex.vmss.plugins.module_utils._members import scale_set_from_rest
from ansible_collections.azure_flex.vmss.plugins.module_utils._selection import (
    CODE_NOT_A_MEMBER,
    CODE_UNIFORM_SCALE_SET,
    ScaleSetSelector,
)
from ansible_collections.azure_flex.vmss.tests.unit.plugins.module_utils.selection_samples import (
    GRAPH_ROW,
    OTHER_SET_ID,
    SET_ID,
    criteria,
    graph_page,
    instance_view,
    rest_vm,
    vm_id,
)
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import (
    arm_error,
    clients_over,
    reply,
)
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import (
    SUBSCRIPTION_ID as SUB,
)


def scale_set(mode="Flexible", set_id=SET_ID, capacity=None):
    """A scale set; with ``capacity``, one with a model (and so a member count to compare listings with)."""
    body = {"id": set_id, "name": set_id.rsplit("/", 1)[1], "location": "westeurope",
            "properties": {"orchestrationMode": mode, "platformFaultDomainCount": 1,
                           "provisioningState": "Succeeded", "upgradePolicy": {"mode": "Manual"}}}
    if capacity is not None:
        body["sku"] = {"name": "Standard_B2s", "capacity": capacity}
    return body


class ArmScript:
    """Answers requests by matching method and URL path (regex); records the Resource Graph bodies."""

    def __init__(self, routes):
        self.routes = routes
        self.graph_bodies = []

    def __call__(self, request):
        path = urlsplit(request.url).path
        for method, pattern, answer in self.routes:
            if request.method == method and re.search(pattern, path, re.IGNORECASE):
                if "ResourceGraph" in path:
                    self.graph_bodies.append(request.json())
                return answer(request) if callable(answer) else answer
        return reply(404, arm_error("NoRoute", "no scripted route for %s %s" % (request.method, path)))


def selector_over(routes, max_parallel=4):
    script = ArmScript(routes)
    clients, adapter, _sleeps = clients_over(script)
    return ScaleSetSelector(clients, SUB, max_parallel=max_parallel), adapter, script


GET_SET = ("GET", r"/virtualMachineScaleSets/web$", reply(200, scale_set()))


def test_missing_resource_group_is_named():
    selector, _adapter, _script = selector_over([
        ("GET", r"/virtualMachineScaleSets/web$",
         reply(404, arm_error("ResourceGroupNotFound", "Resource group 'rg1' could not be found."),
               {"x-ms-request-id": "req-9"})),
    ])

    with pytest.raises(AzureFlexError) as caught:
        selector.select(criteria())

    assert caught.value.msg == "Resource group rg1 was not found (looking for scale set web)"
    assert (caught.value.code, caught.value.status, caught.value.request_id) == ("ResourceGroupNotFound", 404, "req-9")


def test_missing_scale_set_is_named():
    selector, _adapter, _script = selector_over([
        ("GET", r"/virtualMachineScaleSets/web$", reply(404, arm_error("ResourceNotFound", "not found"))),
    ])

    with pytest.raises(AzureFlexError) as caught:
        selector.select(criteria())

    assert caught.value.msg == "Scale set web was not found in resource group rg1"
    assert caught.value.code == "ResourceNotFound"


def test_uniform_scale_set_is_refused_with_the_alternative():
    selector, _adapter, _script = selector_over([
        ("GET", r"/virtualMachineScaleSets/web$", reply(200, scale_set(mode="Uniform"))),
    ])

    with pytest.raises(InvalidInputError) as caught:
        selector.select(criteria())

    assert caught.value.code == CODE_UNIFORM_SCALE_SET
    assert "azure.azcollection.azure_rm_virtualmachinescalesetinstance" in caught.value.msg


def test_scale_set_summary():
    selector, _adapter, _script = selector_over([("GET", r"/virtualMachineScaleSets/web$",
                                                  reply(200, scale_set(capacity=3)))])

    assert selector.get_scale_set(ScaleSetRef(SUB, "rg1", "web")) == {
        "id": SET_ID, "name": "web", "resource_group": "rg1", "location": "westeurope",
        "orchestration_mode": "Flexible", "platform_fault_domain_count": 1, "zones": [],
        "provisioning_state": "Succeeded", "upgrade_mode": "Manual", "sku": {"name": "Standard_B2s", "capacity": 3},
        "automatic_repairs": None,
    }


def test_resource_graph_members_are_paged_and_filtered():
    rows_page_1 = [dict(GRAPH_ROW, name="web_0001", id=vm_id("web_0001"))]
    rows_page_2 = [dict(GRAPH_ROW, name="web_0002", id=vm_id("web_0002"), powerState="PowerState/deallocated")]
    pages = [graph_page(rows_page_1, skip_token="token-2"), graph_page(rows_page_2)]
    selector, _adapter, script = selector_over([
        GET_SET, ("POST", r"/providers/Microsoft.ResourceGraph/resources$", lambda request: pages.pop(0)),
    ])

    selection = selector.select(criteria(power_states=["running"]))

    assert [member["name"] for member in selection.members] == ["web_0001"]
    assert selection.total_members == 2
    assert selection.scale_set["id"] == SET_ID
    first, second = script.graph_bodies
    assert first["subscriptions"] == [SUB]
    assert first["query"] == member_query(SET_ID)
    assert first["options"]["$top"] == 1000
    assert first["options"]["resultFormat"] == "objectArray"
    assert "$skipToken" not in first["options"]
    assert second["options"]["$skipToken"] == "token-2"


def test_named_instances_missing_from_resource_graph_are_confirmed_with_compute():
    selector, _adapter, _script = selector_over([
        GET_SET,
        ("POST", r"Microsoft.ResourceGraph/resources$", graph_page([GRAPH_ROW])),
        ("GET", r"/virtualMachines/web_new$",
         reply(200, rest_vm("web_new", instance_view=instance_view("starting")))),
    ])

    selection = selector.select(criteria(instances=["web_new", "WEB_0001"]))

    assert [(member["name"], member["power_state"], member["source"]) for member in selection.members] == [
        ("web_new", "starting", "compute"), ("web_0001", "running", "resource_graph")]


def test_named_instances_that_are_missing_or_outside_the_set_are_refused():
    selector, _adapter, _script = selector_over([
        GET_SET,
        ("POST", r"Microsoft.ResourceGraph/resources$", graph_page([GRAPH_ROW])),
        ("GET", r"/virtualMachines/ghost$", reply(404, arm_error("ResourceNotFound", "not found"))),
        ("GET", r"/virtualMachines/api_1$", reply(200, rest_vm("api_1", owner=OTHER_SET_ID))),
        ("GET", r"/virtualMachines/loner$", reply(200, rest_vm("loner", owner=None))),
    ])

    with pytest.raises(AzureFlexError) as caught:
        selector.select(criteria(instances=["web_0001", "ghost", "api_1", "loner"]))

    message = caught.value.msg
    assert "not found in resource group rg1: ghost" in message
    assert "api_1 (member of %s)" % OTHER_SET_ID in message
    assert "loner (not in any scale set)" in message
    assert caught.value.code == "ResourceNotFound"


def test_a_vm_outside_the_set_alone_gets_the_membership_code():
    selector, _adapter, _script = selector_over([
        GET_SET,
        ("POST", r"Microsoft.ResourceGraph/resources$", graph_page([])),
        ("GET", r"/virtualMachines/api_1$", reply(200, rest_vm("api_1", owner=OTHER_SET_ID))),
    ])

    with pytest.raises(AzureFlexError) as caught:
        selector.select(criteria(instances=["api_1"]))

    assert caught.value.code == CODE_NOT_A_MEMBER


def test_every_member_comes_with_its_instance_view_from_one_listing():
    selector, adapter, _script = selector_over([
        GET_SET,
        ("GET", r"/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines$",
         reply(200, {"value": [rest_vm("web_b", fault_domain=1, instance_view=instance_view("stopped", "unhealthy")),
                               rest_vm("web_a", fault_domain=0, instance_view=instance_view("running", "healthy"))]})),
    ])

    selection = selector.select(criteria(member_source="compute"))

    assert [(m["name"], m["power_state"], m["health"], m["fault_domain"]) for m in selection.members] == [
        ("web_a", "running", "healthy", 0), ("web_b", "stopped", "unhealthy", 1)]
    list_request = next(request for request in adapter.requests if request.url.split("?")[0].endswith("/virtualMachines"))
    query = parse_qs(urlsplit(list_request.url).query)
    assert query["$filter"] == ["'virtualMachineScaleSet/id' eq '%s'" % SET_ID]
    assert query["$expand"] == ["instanceView"]
    # One listing, no read per member.
    assert not [request for request in adapter.requests if "/instanceView" in request.url]


def test_a_few_named_members_get_their_instance_views_read_in_parallel_and_a_gone_one_is_left_out():
    selector, adapter, _script = selector_over([
        GET_SET,
        ("GET", r"/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines$",
         reply(200, {"value": [rest_vm("web_b", fault_domain=1), rest_vm("web_a", fault_domain=0),
                               rest_vm("web_gone")]})),
        ("GET", r"/virtualMachines/web_a/instanceView$", reply(200, instance_view("running", "healthy"))),
        ("GET", r"/virtualMachines/web_b/instanceView$", reply(200, instance_view("stopped", "unhealthy"))),
        ("GET", r"/virtualMachines/web_gone/instanceView$", reply(404, arm_error("ResourceNotFound", "gone"))),
    ])

    members, total = selector._members_from_compute(selector.get_scale_set(ScaleSetRef.parse(SET_ID)),
                                                    ["web_a", "web_b", "web_gone"])

    assert [(m["name"], m["power_state"], m["health"], m["fault_domain"]) for m in members] == [
        ("web_b", "stopped", "unhealthy", 1), ("web_a", "running", "healthy", 0)]
    assert total == 3
    list_request = next(request for request in adapter.requests if request.url.split("?")[0].endswith("/virtualMachines"))
    assert "$expand" not in parse_qs(urlsplit(list_request.url).query)


def test_current_state_of_many_members_is_one_listing_and_a_member_missing_from_it_is_absent():
    names = ["web_%02d" % number for number in range(12)]
    listed = [rest_vm(name, instance_view=instance_view("running")) for name in names[1:]]
    selector, adapter, _script = selector_over([
        GET_SET,
        ("GET", r"/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines$", reply(200, {"value": listed})),
    ])
    scale_set = selector.get_scale_set(ScaleSetRef.parse(SET_ID))
    members = [{"name": name, "id": vm_id(name), "resource_group": "rg1", "power_state": "stopped"} for name in names]

    current = selector.current_members(members, scale_set)

    assert [member["power_state"] for member in current] == ["absent"] + ["running"] * 11
    assert len([request for request in adapter.requests if "/virtualMachines" in request.url]) == 1


def test_compute_members_read_instance_views_only_for_named_instances():
    selector, adapter, _script = selector_over([
        GET_SET,
        ("GET", r"/providers/Microsoft.Compute/virtualMachines$",
         reply(200, {"value": [rest_vm("web_%d" % number) for number in range(20)]})),
        ("GET", r"/virtualMachines/web_\d+/instanceView$", reply(200, instance_view("running"))),
    ])

    selection = selector.select(criteria(member_source="compute", instances=["web_7", "web_3"]))

    assert [member["name"] for member in selection.members] == ["web_7", "web_3"]
    assert selection.total_members == 20
    views_read = [request.url for request in adapter.requests if "/instanceView" in request.url]
    assert len(views_read) == 2


def test_list_members_returns_every_member():
    selector, _adapter, _script = selector_over([
        ("POST", r"Microsoft.ResourceGraph/resources$", graph_page([GRAPH_ROW])),
    ])

    assert [member["name"] for member in selector.list_members(scale_set_from_rest(scale_set()))] == ["web_0001"]


def test_compute_members_fail_on_other_instance_view_errors():
    selector, _adapter, _script = selector_over([
        GET_SET,
        ("GET", r"/providers/Microsoft.Compute/virtualMachines$", reply(200, {"value": [rest_vm("web_a")]})),
        ("GET", r"/virtualMachines/web_a/instanceView$", reply(403, arm_error("AuthorizationFailed", "denied"))),
    ])

    with pytest.raises(AzureFlexError) as caught:
        selector.select(criteria(member_source="compute", instances=["web_a"]))

    assert caught.value.code == "AuthorizationFailed"
    assert "instance view of VM web_a" in caught.value.msg


def test_read_member_is_authoritative():
    selector, _adapter, _script = selector_over([
        ("GET", r"/virtualMachines/web_a$", reply(200, rest_vm("web_a", instance_view=instance_view("running", "healthy")))),
    ])

    member = selector.read_member("rg1", "web_a")

    assert (member["name"], member["power_state"], member["health"]) == ("web_a", "running", "healthy")


# -- F5: Resource Graph lag; F8: named members a filter leaves out ------------------------------------

def compute_list(*names):
    return ("GET", r"/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines$",
            reply(200, {"value": [rest_vm(name) for name in names]}))


def test_a_graph_listing_that_matches_the_capacity_costs_no_compute_call():
    selector, adapter, _script = selector_over([
        ("GET", r"/virtualMachineScaleSets/web$", reply(200, scale_set(capacity=1))),
        ("POST", r"Microsoft.ResourceGraph/resources$", graph_page([GRAPH_ROW])),
    ])

    selection = selector.select(criteria())

    assert [member["name"] for member in selection.members] == ["web_0001"]
    assert not any("/virtualMachines" in request.url for request in adapter.requests)
    assert selector.warnings == []


def test_a_graph_listing_behind_the_capacity_is_completed_from_the_compute_api():
    """F5: right after a scale-out Resource Graph lists fewer members; 'all' must not mean fewer than exist."""
    selector, _adapter, _script = selector_over([
        ("GET", r"/virtualMachineScaleSets/web$", reply(200, scale_set(capacity=2))),
        ("POST", r"Microsoft.ResourceGraph/resources$", graph_page([GRAPH_ROW])),
        compute_list("web_0001", "web_0002"),
        ("GET", r"/virtualMachines/web_0002/instanceView$", reply(200, instance_view("starting"))),
    ])

    selection = selector.select(criteria())

    assert [(m["name"], m["power_state"], m["source"]) for m in selection.members] == [
        ("web_0001", "running", "resource_graph"), ("web_0002", "starting", "compute")]
    assert selection.total_members == 2
    assert selector.warnings == [
        "Resource Graph is behind for scale set web: it listed 1 member(s), the compute API 2 (capacity 2). The compute"
        " API's list was used; not yet in Resource Graph: web_0002."]


def test_members_deleted_but_still_in_resource_graph_are_dropped():
    rows = [GRAPH_ROW, dict(GRAPH_ROW, name="web_gone", id=vm_id("web_gone"))]
    selector, _adapter, _script = selector_over([
        ("GET", r"/virtualMachineScaleSets/web$", reply(200, scale_set(capacity=1))),
        ("POST", r"Microsoft.ResourceGraph/resources$", graph_page(rows)),
        compute_list("web_0001"),
    ])

    selection = selector.select(criteria())

    assert [member["name"] for member in selection.members] == ["web_0001"]
    assert "deleted, still in Resource Graph: web_gone" in selector.warnings[0]


def test_a_newly_created_set_that_resource_graph_does_not_show_yet_is_not_empty():
    selector, _adapter, _script = selector_over([
        ("GET", r"/virtualMachineScaleSets/web$", reply(200, scale_set(capacity=2))),
        ("POST", r"Microsoft.ResourceGraph/resources$", graph_page([])),
        compute_list("web_a", "web_b"),
        ("GET", r"/virtualMachines/web_[ab]/instanceView$", reply(200, instance_view("running"))),
    ])

    assert [member["name"] for member in selector.select(criteria()).members] == ["web_a", "web_b"]


def test_named_members_left_out_by_a_filter_are_recorded_with_the_reason():
    deallocated = dict(GRAPH_ROW, name="web_0002", id=vm_id("web_0002"), powerState="PowerState/deallocated")
    selector, _adapter, _script = selector_over([
        GET_SET, ("POST", r"Microsoft.ResourceGraph/resources$", graph_page([GRAPH_ROW, deallocated])),
    ])

    selection = selector.select(criteria(instances=["web_0001", "web_0002"], power_states=["running"]))

    assert [member["name"] for member in selection.members] == ["web_0001"]
    assert [(item["member"]["name"], item["reason"]) for item in selector.filtered_out] == [
        ("web_0002", "named in instances, but left out by the filters: power state deallocated is not in power_states"
                     " (running)")]
    assert selector.warnings == [
        "1 member(s) named in instances were left out by the filters (power_states running), nothing was done to"
        " them: web_0002 (power state deallocated is not in power_states (running))"]


def test_a_filter_selecting_none_of_the_members_is_a_warning():
    selector, _adapter, _script = selector_over([
        GET_SET, ("POST", r"Microsoft.ResourceGraph/resources$", graph_page([GRAPH_ROW])),
    ])

    assert selector.select(criteria(tags={"env": "prod"})).members == []
    assert selector.warnings == ["The filters (tags env=prod) selected none of the 1 member(s) of web. Note that tags"
                                 " selects members by the tags they already have."]
    assert selector.filtered_out == []
