# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils import _clients
from ansible_collections.azure_flex.vmss.plugins.module_utils._auth import resolve_auth_settings
from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import (
    USER_AGENT,
    AzureClients,
    as_rest_dict,
    clients_for_settings,
    import_client_class,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import MissingDependencyError
from ansible_collections.azure_flex.vmss.plugins.module_utils._resilience import Deadline, RetryRules, wait_for_poller
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import (
    BASE_URL,
    CLOUD,
    SUBSCRIPTION_ID,
    FakeCredential,
    clients_over,
    reply,
)

MODULE_UTILS_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "module_utils")


def test_client_options():
    clients = AzureClients(FakeCredential(), SUBSCRIPTION_ID, CLOUD, polling_interval=3, ca_bundle="/ca.pem")

    options = clients.client_options()

    assert options["base_url"] == BASE_URL
    assert options["credential_scopes"] == ["https://arm.test.invalid//.default"]
    assert options["polling_interval"] == 3
    assert options["connection_verify"] == "/ca.pem"
    assert options["user_agent"] == USER_AGENT
    assert options["retry_policy"].rules is clients.retry_rules
    assert options["retry_policy"].budget is clients.rate_budget


def test_clients_share_one_connection_pool_big_enough_for_every_worker():
    clients = AzureClients(FakeCredential(), SUBSCRIPTION_ID, CLOUD)

    session = clients._shared_session()  # pylint: disable=protected-access

    assert clients._shared_session() is session  # pylint: disable=protected-access
    adapter = session.get_adapter(BASE_URL)
    assert adapter._pool_maxsize == _clients.CONNECTION_POOL_SIZE  # pylint: disable=protected-access
    assert adapter.max_retries.total is False
    compute, network = clients.compute(), clients.network()
    assert compute._client._pipeline._transport.session is session  # pylint: disable=protected-access
    assert network._client._pipeline._transport.session is session  # pylint: disable=protected-access


def test_no_connection_verify_override_without_a_ca_bundle():
    assert "connection_verify" not in AzureClients(FakeCredential(), SUBSCRIPTION_ID, CLOUD).client_options()


def test_missing_sdk_package_names_the_pip_package(monkeypatch):
    monkeypatch.setitem(_clients.SERVICES, "compute",
                        _clients.ServiceSpec("azure.mgmt.does_not_exist", "Nope", "azure-mgmt-does-not-exist"))

    with pytest.raises(MissingDependencyError) as caught:
        AzureClients(FakeCredential(), SUBSCRIPTION_ID, CLOUD).compute()

    assert caught.value.library == "azure-mgmt-does-not-exist"


def test_clients_are_built_once_even_when_requested_concurrently():
    built = []

    def importer(service):
        def build(*args, **kwargs):
            time.sleep(0.01)
            built.append(service)
            return object()
        return build

    clients = AzureClients(FakeCredential(), SUBSCRIPTION_ID, CLOUD, client_importer=importer)
    threads = [threading.Thread(target=clients.compute) for _thread_number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert built == ["compute"]
    assert clients.compute() is clients.compute()


def test_resource_graph_client_takes_no_subscription():
    calls = []

    def importer(service):
        return lambda *args, **kwargs: calls.append((service, args))

    clients = AzureClients("cred", SUBSCRIPTION_ID, CLOUD, client_importer=importer)
    clients.resource_graph()
    clients.locks()

    assert calls == [("resource_graph", ("cred",)), ("locks", ("cred", SUBSCRIPTION_ID))]


# -- the real SDK clients, over a scripted transport ------------------------------------------

def scale_set_body(name="ss1"):
    return {"id": "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets/%s"
                  % (SUBSCRIPTION_ID, name),
            "name": name, "location": "westeurope", "properties": {"orchestrationMode": "Flexible"}}


def test_every_request_goes_to_the_cloud_with_its_scope_and_user_agent():
    clients, adapter, _sleeps = clients_over([reply(200, scale_set_body())])

    clients.compute().virtual_machine_scale_sets.get(resource_group_name="rg1", vm_scale_set_name="ss1")

    request = adapter.requests[0]
    assert request.url.startswith(BASE_URL + "/subscriptions/%s/resourceGroups/rg1/" % SUBSCRIPTION_ID)
    assert request.headers["Authorization"] == "Bearer fake-token"
    assert USER_AGENT in request.headers["User-Agent"]
    assert clients.credential.scopes_requested[0] == ("https://arm.test.invalid//.default",)


@pytest.mark.parametrize("service, call, body", [
    ("network", lambda client: client.load_balancers.get("rg1", "lb1"), {"name": "lb1"}),
    ("locks", lambda client: list(client.management_locks.list_at_resource_group_level("rg1")), {"value": []}),
])
def test_each_service_client_uses_the_cloud(service, call, body):
    clients, adapter, _sleeps = clients_over([reply(200, body)])

    call(clients.client(service))

    assert adapter.requests[0].url.startswith(BASE_URL + "/subscriptions/%s/" % SUBSCRIPTION_ID)


def test_resource_graph_client_uses_the_cloud():
    from azure.mgmt.resourcegraph.models import QueryRequest

    empty_result = {"totalRecords": 0, "count": 0, "resultTruncated": "false", "data": []}
    clients, adapter, _sleeps = clients_over([reply(200, empty_result)])

    clients.resource_graph().resources(QueryRequest(subscriptions=[SUBSCRIPTION_ID], query="Resources"))

    assert adapter.requests[0].url.startswith(BASE_URL + "/providers/Microsoft.ResourceGraph/resources")


def test_throttled_resource_graph_post_is_retried():
    from azure.mgmt.resourcegraph.models import QueryRequest

    clients, adapter, sleeps = clients_over([
        reply(429, {"error": {"code": "RateLimiting", "message": "throttled"}}),
        reply(200, {"totalRecords": 0, "count": 0, "resultTruncated": "false", "data": []}),
    ])
    clients.retry_rules = RetryRules(jitter=lambda: 1.0)

    clients.resource_graph().resources(QueryRequest(subscriptions=[SUBSCRIPTION_ID], query="Resources"))

    assert len(adapter.requests) == 2
    assert sleeps == [1.0]


def async_operation_script(poll_headers):
    operation_url = BASE_URL + "/subscriptions/%s/providers/Microsoft.Compute/locations/westeurope/operations/op1" \
        "?api-version=2024-07-01" % SUBSCRIPTION_ID
    return [
        reply(202, None, {"Azure-AsyncOperation": operation_url, "Location": operation_url + "&monitor=true"}),
        reply(200, {"status": "InProgress", "name": "op1"}, poll_headers),
        reply(200, {"status": "Succeeded", "name": "op1"}),
        reply(200, None),  # final GET of the Location URL, as ARM polling does for POST actions
    ]


@pytest.mark.parametrize("poll_headers, expected_sleep", [
    ({"Retry-After": "0"}, 2),  # the SDK would sleep its default 30 s here
    ({}, 2),
    ({"Retry-After": "3"}, 3),
])
def test_long_running_operations_poll_at_our_interval_unless_told_otherwise(poll_headers, expected_sleep):
    clients, adapter, sleeps = clients_over(async_operation_script(poll_headers), polling_interval=2)

    poller = clients.compute().virtual_machines.begin_restart(resource_group_name="rg1", vm_name="vm1")
    wait_for_poller(poller, Deadline(30), "restart vm1")

    assert [request.method for request in adapter.requests] == ["POST", "GET", "GET", "GET"]
    assert adapter.requests[0].url.split("?")[0].endswith("/virtualMachines/vm1/restart")
    assert sleeps == [expected_sleep]


def test_as_rest_dict_gives_the_rest_layout_for_installed_models():
    from azure.mgmt.compute import ComputeManagementClient

    clients, _adapter, _sleeps = clients_over([reply(200, {
        "name": "vm1", "location": "westeurope", "zones": ["2"],
        "properties": {"virtualMachineScaleSet": {"id": "/x"}, "platformFaultDomain": 1,
                       "hardwareProfile": {"vmSize": "Standard_B1s"}, "priority": "Spot"}})])
    assert ComputeManagementClient is import_client_class("compute")

    vm = as_rest_dict(clients.compute().virtual_machines.get(resource_group_name="rg1", vm_name="vm1"))

    assert vm["properties"]["virtualMachineScaleSet"] == {"id": "/x"}
    assert vm["properties"]["platformFaultDomain"] == 1
    assert vm["properties"]["hardwareProfile"]["vmSize"] == "Standard_B1s"
    assert vm["properties"]["priority"] == "Spot"
    assert vm["zones"] == ["2"]


def test_as_rest_dict_passes_dicts_and_none_through():
    assert as_rest_dict({"a": 1}) == {"a": 1}
    assert as_rest_dict(None) is None
    with pytest.raises(TypeError):
        as_rest_dict(object())


def test_importing_module_utils_needs_no_azure_package():
    """What ansible-test's import sanity test checks: the SDKs are optional at import time."""
    script = "\n".join([
        "import importlib, sys",
        "class BlockAzure:",
        "    def find_spec(self, name, path=None, target=None):",
        "        if name == 'azure' or name.startswith('azure.'):",
        "            raise ImportError('azure is blocked for this test')",
        "sys.meta_path.insert(0, BlockAzure())",
        "for name in sys.argv[1:]:",
        "    importlib.import_module('ansible_collections.azure_flex.vmss.plugins.module_utils.' + name)",
        "assert not [m for m in sys.modules if m == 'azure' or m.startswith('azure.')]",
    ])
    names = sorted(file_name[:-3] for file_name in os.listdir(MODULE_UTILS_DIR) if file_name.endswith(".py"))
    collection_search_path = [entry for entry in sys.path if os.path.isdir(os.path.join(entry, "ansible_collections"))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(collection_search_path + [os.environ.get("PYTHONPATH", "")]))

    completed = subprocess.run([sys.executable, "-c", script] + names, env=env, capture_output=True, text=True,
                               check=False)

    assert completed.returncode == 0, completed.stderr
    assert len(names) >= 7


def test_connection_pool_holds_every_worker_a_task_may_run():
    from ansible_collections.azure_flex.vmss.plugins.module_utils._module import MAX_PARALLEL_LIMIT

    assert _clients.CONNECTION_POOL_SIZE > MAX_PARALLEL_LIMIT


# -- one wiring of credential, cloud and clients for the modules and the inventory ---------------------------

OTHER_SUBSCRIPTION_ID = "99999999-8888-7777-6666-555555555555"


def service_principal_settings(**params):
    task = {"auth_source": "auto", "subscription_id": SUBSCRIPTION_ID, "client_id": "app", "secret": "s" * 40,
            "tenant": "t"}
    task.update(params)
    return resolve_auth_settings(task, {})


def test_clients_for_settings_builds_each_subscription_once_on_one_credential_and_cloud(tmp_path):
    ca_bundle = tmp_path / "ca.pem"
    ca_bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    deadline = Deadline(60)
    clients_for = clients_for_settings(service_principal_settings(ca_bundle=str(ca_bundle)), deadline, polling_interval=7)

    default, other = clients_for(), clients_for(OTHER_SUBSCRIPTION_ID)

    assert default.subscription_id == SUBSCRIPTION_ID
    assert clients_for(SUBSCRIPTION_ID.upper()) is default
    assert clients_for(OTHER_SUBSCRIPTION_ID) is other
    assert other.subscription_id == OTHER_SUBSCRIPTION_ID
    assert other.credential is default.credential
    assert other.cloud is default.cloud
    assert default.cloud.name == "AzureCloud"
    assert other.retry_rules is not default.retry_rules and other.rate_budget is not default.rate_budget
    assert default.retry_rules.deadline is deadline
    assert (default.polling_interval, default.ca_bundle) == (7, str(ca_bundle))
    assert default.client_options()["connection_verify"] == str(ca_bundle)


def test_clients_for_settings_uses_the_cloud_given_or_the_one_the_settings_name():
    assert clients_for_settings(service_principal_settings(), cloud=CLOUD)().client_options()["base_url"] == BASE_URL
    china = clients_for_settings(service_principal_settings(cloud_environment="AzureChinaCloud"))()
    assert china.client_options()["base_url"] == "https://management.chinacloudapi.cn"
