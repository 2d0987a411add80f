# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The collection's own locks REST client, over the real azure-core pipeline and a scripted transport."""

from __future__ import annotations

import functools
import sys
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils._arm_rest import LOCKS_API_VERSION
from ansible_collections.azure_flex.vmss.plugins.module_utils._auth import CloudEndpoints
from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import USER_AGENT, AzureClients, import_client_class
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import azure_errors, AzureFlexError
from ansible_collections.azure_flex.vmss.plugins.module_utils._resilience import RetryRules
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import (
    BASE_URL,
    SUBSCRIPTION_ID,
    FakeCredential,
    arm_error,
    reply,
    scripted_transport,
)

CLOUD = CloudEndpoints("Test", BASE_URL, "https://login.test.invalid", "https://arm.test.invalid/")
VM_ID = "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/web_1" % SUBSCRIPTION_ID
LOCK_URL = BASE_URL + VM_ID + "/providers/Microsoft.Authorization/locks/"


def lock(scope, name, level="CanNotDelete"):
    return {"id": scope + "/providers/Microsoft.Authorization/locks/" + name, "name": name,
            "type": "Microsoft.Authorization/locks", "properties": {"level": level}}


def locks_over(script):
    transport, adapter = scripted_transport(script)
    transport.sleep = lambda seconds: None

    def importer(service):
        return functools.partial(import_client_class(service), transport=transport)

    clients = AzureClients(FakeCredential(), SUBSCRIPTION_ID, CLOUD, client_importer=importer)
    clients.retry_rules = RetryRules(jitter=lambda: 0.0)
    return clients.locks(), adapter


def test_a_listing_follows_next_link_with_the_api_version_of_the_first_page():
    next_link = BASE_URL + "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.Authorization/locks?" \
        "api-version=%s&%%24skiptoken=abc" % (SUBSCRIPTION_ID, LOCKS_API_VERSION)
    client, adapter = locks_over([
        reply(200, {"value": [lock(VM_ID, "a")], "nextLink": next_link}),
        reply(200, {"value": [lock(VM_ID, "b")]}),
    ])

    names = [item["name"] for item in client.management_locks.list_at_resource_group_level("rg1")]

    assert names == ["a", "b"]
    first, second = adapter.requests
    assert first.method == "GET"
    assert first.url == (BASE_URL + "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.Authorization/locks"
                         "?api-version=%s" % (SUBSCRIPTION_ID, LOCKS_API_VERSION))
    assert second.url == next_link
    assert first.headers["Authorization"] == "Bearer fake-token"
    assert USER_AGENT in first.headers["User-Agent"]


def test_list_by_scope_sends_the_filter():
    client, adapter = locks_over([reply(200, {"value": []})])

    assert list(client.management_locks.list_by_scope("/subscriptions/%s" % SUBSCRIPTION_ID, filter="atScope()")) == []

    query = parse_qs(urlsplit(adapter.requests[0].url).query)
    assert query == {"$filter": ["atScope()"], "api-version": [LOCKS_API_VERSION]}


def test_create_puts_the_body_and_quotes_the_lock_name():
    client, adapter = locks_over([reply(201, lock(VM_ID, "keep me"))])

    created = client.management_locks.create_or_update_by_scope(VM_ID, "keep me", {"properties": {"level": "ReadOnly"}})

    assert created["name"] == "keep me"
    assert adapter.requests[0].method == "PUT"
    assert adapter.requests[0].url.startswith(LOCK_URL + "keep%20me?api-version=")
    assert adapter.requests[0].json() == {"properties": {"level": "ReadOnly"}}


@pytest.mark.parametrize("status", [200, 204])
def test_delete_accepts_both_success_codes(status):
    client, adapter = locks_over([reply(status)])

    assert client.management_locks.delete_by_scope(VM_ID, "l1") is None
    assert adapter.requests[0].method == "DELETE"


@pytest.mark.parametrize("status, code, exception_name", [
    (404, "LockNotFound", "ResourceNotFoundError"),
    (409, "ScopeLocked", "ResourceExistsError"),
    (403, "AuthorizationFailed", "HttpResponseError"),
    (401, "InvalidAuthenticationToken", "ClientAuthenticationError"),
])
def test_errors_raise_the_sdk_classes_with_the_arm_code_and_request_id(status, code, exception_name):
    client, _adapter = locks_over([reply(status, arm_error(code, "no"), {"x-ms-request-id": "req-1"})])

    with pytest.raises(Exception) as caught:
        client.management_locks.get_by_scope(VM_ID, "l1")

    assert type(caught.value).__name__ == exception_name
    with pytest.raises(AzureFlexError) as converted:
        with azure_errors("Failed to read lock l1"):
            raise caught.value
    assert converted.value.code == code
    assert converted.value.status == status
    assert converted.value.request_id == "req-1"


def test_throttling_is_retried_by_the_collections_policy():
    client, adapter = locks_over([reply(429, arm_error("TooManyRequests", "slow down"), {"Retry-After": "1"}),
                                  reply(200, {"value": []})])

    assert list(client.management_locks.list_at_resource_group_level("rg1")) == []
    assert len(adapter.requests) == 2


def test_the_locks_client_needs_no_resource_sdk_package():
    """azure.azcollection's pin (azure-mgmt-resource 23.2) must never be touched by this collection's clients."""
    client, _adapter = locks_over([reply(200, {"value": []})])
    list(client.management_locks.list_at_resource_group_level("rg1"))

    assert not [name for name in sys.modules if name == "azure.mgmt.resource" or name.startswith("azure.mgmt.resource.")]
