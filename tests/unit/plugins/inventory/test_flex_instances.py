# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The flex_instances inventory plugin: queries, host records, groups, errors and caching."""

from __future__ import annotations

import functools
import types

import pytest

from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData

from ansible_collections.azure_flex.vmss.plugins.inventory import flex_instances as plugin
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import AzureFlexError, InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import ScaleSetRef
from ansible_collections.azure_flex.vmss.tests.unit.plugins.module_utils import selection_samples

SUB = "11111111-2222-3333-4444-555555555555"
SET_ID = "/subscriptions/%s/resourceGroups/web-rg/providers/Microsoft.Compute/virtualMachineScaleSets/web" % SUB


def vm_id(name, group="web-rg"):
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s" % (SUB, group, name)


def member_row(name, fault_domain=0, power="PowerState/running", zones=None, tags=None, set_id=SET_ID):
    return {"id": vm_id(name), "name": name, "resourceGroup": "web-rg", "subscriptionId": SUB, "location": "eastus",
            "zones": zones, "tags": tags if tags is not None else {"app": "web"}, "scaleSetId": set_id.lower(),
            "platformFaultDomain": fault_domain, "powerState": power, "provisioningState": "Succeeded",
            "vmSize": "Standard_D2s_v5", "priority": "Regular", "diffDiskSettings": None,
            "networkInterfaces": [{"id": vm_id(name).replace("virtualMachines", "networkInterfaces") + "-nic"}],
            "computerName": name.replace("_", ""), "osType": "Linux"}


network_row = functools.partial(selection_samples.network_row, group="web-rg")


class FakeGraph:
    """Answers Resource Graph queries by their kind; records each request."""

    def __init__(self, scale_sets, members, network, pages=1):
        self.answers = {"virtualmachinescalesets": scale_sets, "join kind=inner": network, "members": members}
        self.requests = []
        self.pages = pages

    def resources(self, request):
        self.requests.append(request)
        query = request.query
        if "join kind=inner" in query:
            rows = self.answers["join kind=inner"]
        elif "virtualmachinescalesets'" in query:
            rows = self.answers["virtualmachinescalesets"]
        else:
            rows = self.answers["members"]
        return types.SimpleNamespace(data=rows, skip_token=None, result_truncated="false")


class FakeClients:
    def __init__(self, graph, compute=None):
        self.graph = graph
        self._compute = compute

    def resource_graph(self):
        return self.graph

    def compute(self):
        return self._compute


def scale_set_row(set_id=SET_ID, mode="Flexible"):
    return {"id": set_id, "name": set_id.rsplit("/", 1)[1], "resourceGroup": "web-rg", "subscriptionId": SUB,
            "orchestrationMode": mode}


# -- scale_sets entries ----------------------------------------------------------------------------

def test_scale_set_entries_are_ids_or_mappings():
    assert plugin.parse_scale_set_entry(SET_ID, SUB).id == SET_ID
    assert plugin.parse_scale_set_entry({"resource_group": "web-rg", "name": "web"}, SUB).id == SET_ID


@pytest.mark.parametrize("entry", [{"name": "web"}, {"resource_group": "g", "name": "w", "zone": 1}, 42, "web-rg/web"])
def test_unusable_scale_set_entries_are_refused(entry):
    with pytest.raises(InvalidInputError):
        plugin.parse_scale_set_entry(entry, SUB)


# -- the reader ------------------------------------------------------------------------------------

def reader_for(graph, compute=None):
    return plugin.FlexInventoryReader(lambda sub: FakeClients(graph, compute), SUB, [])


def test_reader_builds_records_with_addresses_sorted_by_name():
    graph = FakeGraph([scale_set_row()], [member_row("web_b", 1), member_row("web_a", 0)],
                      [network_row("web_a", "10.0.0.4", "20.0.0.1"), network_row("web_b", "10.0.0.5")])
    records = reader_for(graph).read([ScaleSetRef.parse(SET_ID)], [])
    assert [r["azure_vm_name"] for r in records] == ["web_a", "web_b"]
    assert records[0]["azure_private_ip"] == "10.0.0.4"
    assert records[0]["azure_public_ip"] == "20.0.0.1"
    assert records[1]["azure_public_ip"] is None
    assert records[0]["azure_scale_set"] == "web"
    assert records[0]["azure_fault_domain"] == 0
    assert records[0]["azure_power_state"] == "running"
    # one request per kind: scale sets, members, addresses
    assert len(graph.requests) == 3
    assert all(request.subscriptions == [SUB] for request in graph.requests)


def test_reader_refuses_a_named_uniform_scale_set():
    graph = FakeGraph([scale_set_row(mode="Uniform")], [], [])
    with pytest.raises(InvalidInputError, match="uses Uniform orchestration"):
        reader_for(graph).read([ScaleSetRef.parse(SET_ID)], [])


def test_reader_confirms_a_named_set_missing_from_resource_graph_with_the_compute_api():
    class ScaleSets:
        def get(self, resource_group_name, vm_scale_set_name):
            raise AzureFlexError("not there", code="ResourceNotFound", status=404, request_id="req-1")

    compute = types.SimpleNamespace(virtual_machine_scale_sets=ScaleSets())
    with pytest.raises(AzureFlexError, match="Scale set web was not found in resource group web-rg") as raised:
        reader_for(FakeGraph([], [], []), compute).read([ScaleSetRef.parse(SET_ID)], [])
    assert raised.value.request_id == "req-1"


def test_reader_with_nothing_in_scope_makes_one_request():
    graph = FakeGraph([], [], [])
    assert reader_for(graph).read([], []) == []
    assert len(graph.requests) == 1


# -- the plugin ------------------------------------------------------------------------------------

def make_plugin(options, records=None, error=None):
    inventory_plugin = plugin.InventoryModule()
    inventory_plugin.inventory = InventoryData()
    defaults = {"hostnames": ["name"], "ansible_host_source": ["private_ip"], "power_states": None,
                "default_groups": True, "compose": {}, "groups": {}, "keyed_groups": [], "strict": False,
                "leading_separator": True, "use_extra_vars": False, "timeout": 300, "scale_sets": [],
                "resource_groups": [], "subscriptions": []}
    defaults.update(options)
    inventory_plugin.get_option = defaults.get
    inventory_plugin._options = defaults
    if error is not None:
        def fail():
            raise error
        inventory_plugin.build_clients = fail
    return inventory_plugin


def record(name, **changes):
    rows = [member_row(name, **{k: v for k, v in changes.items() if k in ("fault_domain", "power", "zones", "tags")})]
    base = plugin.host_record(rows[0], {"name": "web", "id": SET_ID, "subscription_id": SUB},
                              {"private_ips": [changes.get("ip", "10.0.0.4")], "public_ips": changes.get("public", []),
                               "public_fqdns": []})
    return base


def test_populate_adds_hosts_variables_and_default_groups():
    inventory_plugin = make_plugin({})
    inventory_plugin.populate([record("web_a", zones=["1"], tags={"Role": "front-end"}), record("web_b", fault_domain=2)])
    inventory = inventory_plugin.inventory
    assert sorted(inventory.hosts) == ["web_a", "web_b"]
    host = inventory.get_host("web_a")
    assert host.vars["ansible_host"] == "10.0.0.4"
    assert host.vars["azure_scale_set"] == "web"
    groups = {name: sorted(h.name for h in group.hosts) for name, group in inventory.groups.items()}
    assert groups["scale_set_web"] == ["web_a", "web_b"]
    assert groups["zone_1"] == ["web_a"]
    assert groups["fault_domain_0"] == ["web_a"]
    assert groups["fault_domain_2"] == ["web_b"]
    assert groups["power_state_running"] == ["web_a", "web_b"]
    assert groups["tag_Role_front_end"] == ["web_a"]


def test_populate_without_default_groups_creates_none():
    inventory_plugin = make_plugin({"default_groups": False})
    inventory_plugin.populate([record("web_a")])
    assert sorted(inventory_plugin.inventory.groups) == ["all", "ungrouped"]


def test_ansible_host_follows_the_preference_and_hostnames_fall_back():
    inventory_plugin = make_plugin({"hostnames": ["public_ip", "name"], "ansible_host_source": ["public_ip", "private_ip"]})
    inventory_plugin.populate([record("web_a", public=["20.0.0.1"]), record("web_b")])
    inventory = inventory_plugin.inventory
    assert sorted(inventory.hosts) == ["20.0.0.1", "web_b"]
    assert inventory.get_host("20.0.0.1").vars["ansible_host"] == "20.0.0.1"
    assert inventory.get_host("web_b").vars["ansible_host"] == "10.0.0.4"


def test_a_member_without_any_host_name_is_left_out_with_a_warning():
    warnings = []
    inventory_plugin = make_plugin({"hostnames": ["public_ip"]})
    inventory_plugin.display = types.SimpleNamespace(warning=warnings.append)
    inventory_plugin.populate([record("web_a")])
    assert list(inventory_plugin.inventory.hosts) == []
    assert warnings and "web_a" in warnings[0]


def test_two_members_with_one_host_name_fail_the_source():
    inventory_plugin = make_plugin({"hostnames": ["private_ip"]})
    with pytest.raises(AnsibleParserError, match="would both be host 10.0.0.4"):
        inventory_plugin.populate([record("web_a"), record("web_b")])


def test_azure_errors_become_parser_errors_with_code_and_request_id():
    error = AzureFlexError("Throttled", code="RateLimiting", status=429, request_id="abc")
    inventory_plugin = make_plugin({}, error=error)
    with pytest.raises(AnsibleParserError, match=r"Throttled \(code RateLimiting, HTTP status 429, request id abc\)"):
        inventory_plugin.fetch_records()


def test_the_clients_come_from_the_auth_options_one_per_subscription_with_the_timeout():
    inventory_plugin = make_plugin({"auth_source": "auto", "subscription_id": SUB, "client_id": "app",
                                    "secret": "s" * 40, "tenant": "t", "timeout": 120})

    clients_for, auth_subscription, deadline = inventory_plugin.build_clients()

    other = "99999999-8888-7777-6666-555555555555"
    assert auth_subscription == SUB
    assert clients_for(SUB).subscription_id == SUB
    assert clients_for(SUB.upper()) is clients_for(SUB)
    assert clients_for(other).subscription_id == other
    assert clients_for(other).credential is clients_for(SUB).credential
    assert clients_for(SUB).retry_rules.deadline is deadline
    assert deadline.seconds == 120


def test_power_states_filter_the_records(monkeypatch):
    inventory_plugin = make_plugin({"power_states": ["running"]})
    monkeypatch.setattr(inventory_plugin, "build_clients", lambda: (None, SUB, None))
    monkeypatch.setattr(plugin.FlexInventoryReader, "read", lambda self, named, groups: [
        record("web_a"), record("web_b", power="PowerState/deallocated")])
    assert [r["azure_vm_name"] for r in inventory_plugin.fetch_records()] == ["web_a"]


def test_a_subscription_that_is_not_a_guid_is_refused(monkeypatch):
    inventory_plugin = make_plugin({"subscriptions": ["prod"]})
    monkeypatch.setattr(inventory_plugin, "build_clients", lambda: (None, SUB, None))
    with pytest.raises(AnsibleParserError, match="'prod' is not a subscription ID"):
        inventory_plugin.fetch_records()


@pytest.mark.parametrize("option, value", [("hostnames", ["ip"]), ("ansible_host_source", ["name"]),
                                           ("power_states", ["on"])])
def test_unknown_choices_are_refused(option, value):
    inventory_plugin = make_plugin({option: value})
    with pytest.raises(AnsibleParserError, match="%s: unknown value" % option):
        inventory_plugin._check_choices()


def test_verify_file_accepts_only_the_documented_suffixes(tmp_path):
    inventory_plugin = plugin.InventoryModule()
    for name, expected in (("a.flex_instances.yml", True), ("flex_instances.yaml", True), ("azure_rm.yml", False)):
        path = tmp_path / name
        path.write_text("plugin: azure_flex.vmss.flex_instances\n")
        assert inventory_plugin.verify_file(str(path)) is expected


def test_cached_records_are_used_without_reading_azure(monkeypatch, tmp_path):
    config = tmp_path / "web.flex_instances.yml"
    config.write_text("plugin: azure_flex.vmss.flex_instances\n")
    calls = []
    inventory_plugin = plugin.InventoryModule()
    monkeypatch.setattr(inventory_plugin, "_read_config_data", lambda path: None)
    options = {"cache": True, "hostnames": ["name"], "ansible_host_source": ["private_ip"], "power_states": None,
               "default_groups": True, "compose": {}, "groups": {}, "keyed_groups": [], "strict": False,
               "leading_separator": True, "use_extra_vars": False, "timeout": 300}
    monkeypatch.setattr(inventory_plugin, "get_option", options.get)
    monkeypatch.setattr(inventory_plugin, "fetch_records", lambda: calls.append(1) or [record("web_a")])
    inventory_plugin._cache = {}
    # cache=False (a flush): read Azure and fill the cache; cache=True: read the cache only
    inventory_plugin.parse(InventoryData(), None, str(config), cache=False)
    inventory_plugin.parse(InventoryData(), None, str(config), cache=True)
    assert calls == [1]
    assert list(inventory_plugin.inventory.hosts) == ["web_a"]
