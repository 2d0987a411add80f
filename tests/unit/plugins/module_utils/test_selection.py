# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import functools
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils._auth import CloudEndpoints
from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import AzureClients, import_client_class
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import AzureFlexError, InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils._selection import (
    CODE_NOT_A_MEMBER,
    CODE_UNIFORM_SCALE_SET,
    ScaleSetRef,
    ScaleSetSelector,
    SelectionCriteria,
    filter_members,
    filter_reason,
    kql_quote,
    member_from_graph_row,
    member_from_vm,
    member_query,
    normalize_health,
    normalize_power_state,
    odata_quote,
    power_state_from_statuses,
    scale_set_from_rest,
    selection_argument_spec,
    validate_resource_group_name,
    validate_vm_name,
)
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import (
    BASE_URL,
    SUBSCRIPTION_ID as SUB,
    FakeCredential,
    arm_error,
    reply,
    scripted_transport,
)

SET_ID = "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/web" % SUB
OTHER_SET_ID = "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/api" % SUB


def vm_id(name, group="rg1"):
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s" % (SUB, group, name)


# -- quoting and validation -------------------------------------------------------------------

@pytest.mark.parametrize("value, quoted", [
    ("web", "'web'"),
    ("", "''"),
    ("it's", "'it\\'s'"),
    ("back\\slash", "'back\\\\slash'"),
    ("tab\there", "'tab\\there'"),
    ("line\nbreak", "'line\\nbreak'"),
    ("x' or 1==1 //", "'x\\' or 1==1 //'"),
    ("x\\' | project secrets //", "'x\\\\\\' | project secrets //'"),
    ("\u00e9t\u00e9", "'\u00e9t\u00e9'"),
])
def test_kql_quote(value, quoted):
    assert kql_quote(value) == quoted


@pytest.mark.parametrize("value", ["nul\x00byte", "bell\x07", "del\x7f"])
def test_kql_quote_refuses_control_characters(value):
    with pytest.raises(InvalidInputError):
        kql_quote(value)


def test_kql_quote_refuses_non_strings():
    with pytest.raises(InvalidInputError):
        kql_quote(42)


def kql_literal_end(quoted):
    """Index just after the closing quote of the KQL literal that starts ``quoted`` (a tiny lexer)."""
    index = 1
    while index < len(quoted):
        if quoted[index] == "\\":
            index += 2
            continue
        if quoted[index] == "'":
            return index + 1
        index += 1
    return -1


@pytest.mark.parametrize("attack", [
    "a' | project id //", "a\\' | extend x=1", "a\\\\' or true //", "'''", "\\", "\\\\'", "x'\n| take 1",
])
def test_quoted_injection_attempts_stay_one_literal(attack):
    quoted = kql_quote(attack)

    assert kql_literal_end(quoted) == len(quoted)


def test_odata_quote_doubles_quotes():
    assert odata_quote("/a/b'c") == "'/a/b''c'"


@pytest.mark.parametrize("name", ["web_1a2b3c4d", "vm-01", "VM.1", "a", "_hidden", "x" * 64])
def test_valid_vm_names(name):
    assert validate_vm_name(name) == name


@pytest.mark.parametrize("name", ["", "-vm", "vm-", "vm.", ".vm", "x" * 65, "vm 1", "vm'1", "vm/1", "vm\\1",
                                  "vm\n", "web' or 1==1", None, 7])
def test_invalid_vm_names(name):
    with pytest.raises(InvalidInputError):
        validate_vm_name(name)


@pytest.mark.parametrize("name", ["rg1", "my-rg.prod", "rg_(test)", "gr\u00fcn", "r" * 90])
def test_valid_resource_group_names(name):
    assert validate_resource_group_name(name) == name


@pytest.mark.parametrize("name", ["", "rg.", "r" * 91, "rg/1", "rg'1", "rg 1"])
def test_invalid_resource_group_names(name):
    with pytest.raises(InvalidInputError):
        validate_resource_group_name(name)


def test_scale_set_id_parsing_is_case_insensitive_and_canonicalises():
    ref = ScaleSetRef.parse(SET_ID.replace("resourceGroups", "resourcegroups").replace("Microsoft.Compute", "microsoft.compute"))

    assert (ref.subscription_id, ref.resource_group, ref.name) == (SUB, "rg1", "web")
    assert ref.id == SET_ID


@pytest.mark.parametrize("value", [
    None, "", "web", SET_ID + "/virtualMachines/1", SET_ID + "\n", SET_ID.replace(SUB, SUB + "\n"),
    "/subscriptions/not-a-guid/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/web",
    "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/we'b" % SUB,
    "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.Network/loadBalancers/web" % SUB,
])
def test_invalid_scale_set_ids(value):
    with pytest.raises(InvalidInputError):
        ScaleSetRef.parse(value)


def test_member_query_quotes_the_validated_id():
    query = member_query(SET_ID)

    assert "| where properties.virtualMachineScaleSet.id =~ '%s'" % SET_ID in query
    assert query.startswith("Resources\n| where type =~ 'microsoft.compute/virtualmachines'")
    assert "order by name asc" in query


def test_member_query_refuses_an_injected_id():
    with pytest.raises(InvalidInputError):
        member_query(SET_ID + "' | project secrets //")


# -- normalisation ----------------------------------------------------------------------------

@pytest.mark.parametrize("code, word", [
    ("PowerState/running", "running"), ("PowerState/Deallocated", "deallocated"), ("VM stopped", "stopped"),
    ("starting", "starting"), ("PowerState/stopping", "stopping"), ("PowerState/deallocating", "deallocating"),
    ("PowerState/hibernated", "unknown"), ("", "unknown"), (None, "unknown"),
])
def test_normalize_power_state(code, word):
    assert normalize_power_state(code) == word


def test_power_state_comes_from_the_power_status_entry():
    statuses = [{"code": "ProvisioningState/succeeded"}, {"code": "PowerState/deallocated"},
                {"code": "HibernationState/Hibernated"}]

    assert power_state_from_statuses(statuses) == "deallocated"
    assert power_state_from_statuses([{"code": "ProvisioningState/creating"}]) == "unknown"
    assert power_state_from_statuses(None) == "unknown"


@pytest.mark.parametrize("code, word", [
    ("HealthState/healthy", "healthy"), ("HealthState/Unhealthy", "unhealthy"), ("HealthState/unknown", "unknown"),
    ("HealthState/initializing", "initializing"), ("HealthState/weird", "unknown"), (None, None), ("", None),
])
def test_normalize_health(code, word):
    assert normalize_health(code) == word


GRAPH_ROW = {
    "id": vm_id("web_0001"), "name": "web_0001", "resourceGroup": "rg1", "location": "westeurope", "zones": ["1"],
    "tags": {"Role": "web"}, "platformFaultDomain": 2, "powerState": "PowerState/running",
    "provisioningState": "Succeeded", "vmSize": "Standard_B2s", "priority": "Spot",
    "diffDiskSettings": {"option": "Local"},
    "networkInterfaces": [{"id": "/nic/1", "properties": {"primary": True}}, {"id": "/nic/2"}],
}


def test_member_from_graph_row():
    assert member_from_graph_row(GRAPH_ROW) == {
        "name": "web_0001", "id": vm_id("web_0001"), "resource_group": "rg1", "location": "westeurope",
        "zones": ["1"], "fault_domain": 2, "power_state": "running", "health": None,
        "provisioning_state": "Succeeded", "vm_size": "Standard_B2s", "priority": "Spot",
        "ephemeral_os_disk": True, "tags": {"Role": "web"}, "network_interface_ids": ["/nic/1", "/nic/2"],
        "maintenance_pending": None, "source": "resource_graph",
    }


def test_member_from_a_sparse_graph_row():
    member = member_from_graph_row({"id": vm_id("web_0002", "RG-Upper"), "name": "web_0002",
                                    "resourceGroup": "rg-upper"})

    assert member["resource_group"] == "RG-Upper"
    assert (member["zones"], member["fault_domain"], member["power_state"]) == ([], None, "unknown")
    assert (member["ephemeral_os_disk"], member["tags"], member["network_interface_ids"]) == (False, {}, [])


def rest_vm(name, zones=None, fault_domain=None, tags=None, owner=SET_ID, instance_view=None):
    properties = {"provisioningState": "Succeeded", "hardwareProfile": {"vmSize": "Standard_B2s"},
                  "storageProfile": {"osDisk": {"name": "os"}},
                  "networkProfile": {"networkInterfaces": [{"id": "/nic/" + name}]}}
    if owner:
        properties["virtualMachineScaleSet"] = {"id": owner}
    if fault_domain is not None:
        properties["platformFaultDomain"] = fault_domain
    if instance_view is not None:
        properties["instanceView"] = instance_view
    return {"id": vm_id(name), "name": name, "location": "westeurope", "zones": zones or [], "tags": tags or {},
            "properties": properties}


def instance_view(power="running", health=None, fault_domain=None):
    view = {"statuses": [{"code": "ProvisioningState/succeeded"}, {"code": "PowerState/" + power}]}
    if health:
        view["vmHealth"] = {"status": {"code": "HealthState/" + health}}
    if fault_domain is not None:
        view["platformFaultDomain"] = fault_domain
    return view


def test_member_from_vm_and_instance_view():
    member = member_from_vm(rest_vm("web_1", zones=["3"], tags={"a": "b"}),
                            instance_view("deallocated", "unhealthy", fault_domain=1))

    assert member["power_state"] == "deallocated"
    assert member["health"] == "unhealthy"
    assert member["fault_domain"] == 1
    assert member["zones"] == ["3"]
    assert member["ephemeral_os_disk"] is False
    assert member["network_interface_ids"] == ["/nic/web_1"]
    assert member["source"] == "compute"
    assert member["maintenance_pending"] is False


def test_member_from_vm_uses_the_expanded_instance_view():
    member = member_from_vm(rest_vm("web_1", fault_domain=0, instance_view=instance_view("stopped", "healthy")))

    assert (member["power_state"], member["health"], member["fault_domain"]) == ("stopped", "healthy", 0)


# -- criteria and filters ---------------------------------------------------------------------

def criteria(**options):
    base = dict(resource_group="rg1", scale_set="web")
    base.update(options)
    return SelectionCriteria(**base)


MEMBERS = [
    dict(name="a", power_state="running", zones=["1"], fault_domain=0, tags={"Role": "web", "tier": "1"}),
    dict(name="b", power_state="deallocated", zones=["2"], fault_domain=1, tags={"role": "web"}),
    dict(name="c", power_state="running", zones=[], fault_domain=None, tags={}),
]


@pytest.mark.parametrize("options, expected", [
    ({}, ["a", "b", "c"]),
    ({"power_states": ["running"]}, ["a", "c"]),
    ({"power_states": ["Deallocated", "stopped"]}, ["b"]),
    ({"zones": ["2", "3"]}, ["b"]),
    ({"zones": [1]}, ["a"]),
    ({"fault_domains": [0, 1]}, ["a", "b"]),
    ({"tags": {"role": "web"}}, ["a", "b"]),
    ({"tags": {"Role": "web", "tier": 1}}, ["a"]),
    ({"tags": {"role": "WEB"}}, []),
    ({"power_states": ["running"], "zones": ["1"]}, ["a"]),
])
def test_filters(options, expected):
    assert [member["name"] for member in filter_members(MEMBERS, criteria(**options))] == expected


def test_instances_all_means_every_member():
    assert criteria(instances=["all"]).instances is None
    assert criteria(instances=["ALL"]).instances is None
    assert criteria().instances is None


def test_instances_are_validated_and_deduplicated():
    assert criteria(instances=["web_1", "WEB_1", "web_2"]).instances == ["web_1", "web_2"]
    with pytest.raises(InvalidInputError):
        criteria(instances=["all", "web_1"])
    with pytest.raises(InvalidInputError):
        criteria(instances=["web_1' or 1==1"])


def test_unknown_power_state_is_refused():
    with pytest.raises(InvalidInputError):
        criteria(power_states=["hibernated"])


@pytest.mark.parametrize("options", [
    dict(resource_group=None, scale_set=None),
    dict(scale_set=None),
    dict(scale_set_id=SET_ID),
])
def test_scale_set_must_be_named_exactly_one_way(options):
    with pytest.raises(InvalidInputError):
        criteria(**options)


def test_scale_set_id_must_be_in_the_task_subscription():
    other = SET_ID.replace(SUB, "99999999-8888-7777-6666-555555555555")

    with pytest.raises(InvalidInputError) as caught:
        SelectionCriteria(scale_set_id=other).scale_set_ref(SUB)

    assert "subscription" in caught.value.msg


def test_criteria_from_module_params():
    params = {name: None for name in selection_argument_spec()}
    params.update(scale_set_id=SET_ID, member_source="compute", instances=["web_1"])

    built = SelectionCriteria.from_params(params)

    assert (built.scale_set_ref(SUB).id, built.member_source, built.instances) == (SET_ID, "compute", ["web_1"])


# -- the selector, against the real SDK clients over a scripted transport ---------------------

CLOUD = CloudEndpoints("Test", BASE_URL, "https://login.test.invalid", "https://arm.test.invalid/")


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
    transport, adapter = scripted_transport(script)

    def importer(service):
        return functools.partial(import_client_class(service), transport=transport)

    clients = AzureClients(FakeCredential(), SUB, CLOUD, client_importer=importer)
    return ScaleSetSelector(clients, SUB, max_parallel=max_parallel), adapter, script


GET_SET = ("GET", r"/virtualMachineScaleSets/web$", reply(200, scale_set()))


def graph_page(rows, skip_token=None):
    body = {"totalRecords": len(rows), "count": len(rows), "resultTruncated": "false", "data": rows}
    if skip_token:
        body["$skipToken"] = skip_token
    return reply(200, body)


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


def test_member_from_vm_reports_pending_maintenance():
    view = {"statuses": [{"code": "PowerState/running"}],
            "maintenanceRedeployStatus": {"isCustomerInitiatedMaintenanceAllowed": True}}
    assert member_from_vm(rest_vm("web_1"), view)["maintenance_pending"] is True


# -- F5: Resource Graph lag; F8: named members a filter leaves out, empty lists ------------------------

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


def test_an_empty_instances_list_is_refused():
    with pytest.raises(InvalidInputError, match="instances is an empty list: name at least one member, or use"
                                                " instances: all"):
        criteria(instances=[])


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


@pytest.mark.parametrize("member, options, reason", [
    (dict(MEMBERS[0], power_state="absent"), {"power_states": ["running"]}, "no longer exists"),
    (dict(MEMBERS[0], fault_domain=2), {"fault_domains": [0, 1]}, "fault domain 2 is not in fault_domains (0, 1)"),
    (dict(MEMBERS[0], zones=[]), {"zones": ["1"]}, "zones (none) are not in zones (1)"),
    (dict(MEMBERS[0], tags={"env": "dev"}), {"tags": {"env": "prod"}}, "its tags do not match tags (env=prod)"),
])
def test_filter_reasons(member, options, reason):
    assert filter_reason(member, criteria(**options)) == reason
    assert filter_reason(member, criteria()) is None
