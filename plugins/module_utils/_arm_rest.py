# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""ARM REST APIs the collection calls without a service SDK package, over azure-mgmt-core's ARM pipeline.

Why: the management-locks SDK lives in ``azure.mgmt.resource.locks``, which two packages provide
(azure-mgmt-resource up to 24.x, multi-API; azure-mgmt-resource-locks from 25.0, single API). Installing
the second over the first replaces files of the first, and afterwards azure.azcollection's call
``ManagementLockClient.models('2016-09-01')`` fails in an execution environment shared by both
collections. The locks API is four plain, synchronous REST calls, and the Tags API two, so the collection
sends them itself and needs no azure-mgmt-resource package at all: nothing it installs can break another
collection's SDK.

``ArmRestClient`` is built like the SDK clients (same constructor keywords: ``base_url``,
``credential_scopes``, ``retry_policy``, ``user_agent``, ``connection_verify``, ``transport``), so the
same retry rules, deadline and cloud endpoints apply, and it raises the same exception classes as the
generated SDKs (404 ``ResourceNotFoundError``, 409 ``ResourceExistsError``, 401
``ClientAuthenticationError``, otherwise ``HttpResponseError``), with the ARM error body parsed.
azure-core and azure-mgmt-core are imported when a client is built, never at import time.
"""

from __future__ import annotations

from urllib.parse import quote

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import MissingDependencyError

LOCKS_API_VERSION = "2020-05-01"
LOCKS_PROVIDER = "/providers/Microsoft.Authorization/locks"
# The Tags API at any scope exists from 2019-10-01; 2021-04-01 is the oldest version both SDK generations
# know (azure-mgmt-resource 23.2 sends 2022-09-01, 26.x 2025-04-01), so every ARM endpoint has it.
TAGS_API_VERSION = "2021-04-01"
TAGS_PROVIDER = "/providers/Microsoft.Resources/tags/default"


class ArmRestClient:
    """Send ARM REST requests through an ARM pipeline: authentication, our retry policy, user agent, TLS."""

    def __init__(self, credential, subscription_id, base_url, credential_scopes, retry_policy=None, user_agent=None,
                 connection_verify=True, transport=None, polling_interval=30, session=None, session_owner=True,
                 **_sdk_only_options):
        # _sdk_only_options: options the SDK clients take that a plain pipeline has no use for.
        self._polling_interval = polling_interval
        try:
            # pylint: disable=import-outside-toplevel
            from azure.core.pipeline import policies
            from azure.mgmt.core import ARMPipelineClient
            from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy, ARMHttpLoggingPolicy
        except ImportError as exc:
            raise MissingDependencyError("azure-mgmt-core", exc) from exc
        self.subscription_id = subscription_id
        pipeline_policies = [
            policies.RequestIdPolicy(),
            policies.HeadersPolicy(),
            policies.UserAgentPolicy(user_agent),
            policies.ProxyPolicy(),
            policies.ContentDecodePolicy(),
            policies.RedirectPolicy(),
            retry_policy or policies.RetryPolicy(),
            ARMChallengeAuthenticationPolicy(credential, *credential_scopes),
            policies.NetworkTraceLoggingPolicy(),
            ARMHttpLoggingPolicy(),
        ]
        options = {"connection_verify": connection_verify}
        if transport is not None:
            options["transport"] = transport
        elif session is not None:
            # The clients' shared connection pool (AzureClients), as the SDK clients get it.
            options.update(session=session, session_owner=session_owner)
        self._client = ARMPipelineClient(base_url=base_url, policies=pipeline_policies, **options)

    def send(self, method, path, api_version, body=None, query=None, accepted=(200,)):
        """Send one request to ``path`` (absolute URL or path under the base URL); return its JSON body or None."""
        response = self._send(method, path, api_version, body, query, accepted).http_response
        if not response.content:
            return None
        return response.json()

    def begin(self, method, path, api_version, body=None, accepted=(200, 202), polling_interval=None):
        """Send a request that may start a long-running operation; return azure-core's ``LROPoller`` for it.

        The poller follows Azure's headers (Azure-AsyncOperation, Location, Retry-After) as the SDKs' do
        (azure-mgmt-core's ``ARMPolling``); the caller waits with ``_resilience.wait_for_poller``.
        """
        # pylint: disable=import-outside-toplevel
        from azure.core.polling import LROPoller
        from azure.mgmt.core.polling.arm_polling import ARMPolling

        initial = self._send(method, path, api_version, body, None, accepted)

        def result(pipeline_response):
            response = pipeline_response.http_response
            return response.json() if response.content else None

        interval = self._polling_interval if polling_interval is None else polling_interval
        return LROPoller(self._client, initial, result, ARMPolling(interval))

    def _send(self, method, path, api_version, body, query, accepted):
        # pylint: disable=import-outside-toplevel
        from azure.core.rest import HttpRequest

        params = dict(query or {})
        if api_version:
            params["api-version"] = api_version
        url = path if path.startswith("https://") or path.startswith("http://") else self._client.format_url(path)
        request = HttpRequest(method, url, params=params, json=body)
        pipeline_response = self._client.send_request(request, _return_pipeline_response=True)
        if pipeline_response.http_response.status_code not in accepted:
            raise_for_arm_error(pipeline_response.http_response)
        return pipeline_response

    def pages(self, path, api_version, query=None):
        """Every item of a listing, following ``nextLink`` (an absolute URL that carries its own query)."""
        page = self.send("GET", path, api_version, query=query)
        while True:
            yield from (page or {}).get("value") or []
            next_link = (page or {}).get("nextLink")
            if not next_link:
                return
            page = self.send("GET", next_link, None)


def raise_for_arm_error(response):
    """Raise what a generated SDK raises for this response (the same classes, the ARM error body parsed)."""
    # pylint: disable=import-outside-toplevel
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceExistsError,
        ResourceNotFoundError,
        ResourceNotModifiedError,
    )
    from azure.mgmt.core.exceptions import ARMErrorFormat

    error_class = {401: ClientAuthenticationError, 404: ResourceNotFoundError, 409: ResourceExistsError,
                   304: ResourceNotModifiedError}.get(response.status_code, HttpResponseError)
    raise error_class(response=response, error_format=ARMErrorFormat)


class ManagementLocks:
    """The management-lock operations the collection uses, with the SDK's names and arguments; items are REST dicts."""

    def __init__(self, rest):
        self._rest = rest

    def list_by_scope(self, scope, filter=None):  # pylint: disable=redefined-builtin
        query = {"$filter": filter} if filter else None
        return self._rest.pages(_scope_path(scope) + LOCKS_PROVIDER, LOCKS_API_VERSION, query=query)

    def list_at_resource_group_level(self, resource_group_name, filter=None):  # pylint: disable=redefined-builtin
        scope = "/subscriptions/%s/resourceGroups/%s" % (self._rest.subscription_id, quote(resource_group_name, safe=""))
        return self.list_by_scope(scope, filter=filter)

    def get_by_scope(self, scope, lock_name):
        return self._rest.send("GET", _lock_path(scope, lock_name), LOCKS_API_VERSION)

    def create_or_update_by_scope(self, scope, lock_name, parameters):
        return self._rest.send("PUT", _lock_path(scope, lock_name), LOCKS_API_VERSION, body=parameters,
                               accepted=(200, 201))

    def delete_by_scope(self, scope, lock_name):
        self._rest.send("DELETE", _lock_path(scope, lock_name), LOCKS_API_VERSION, accepted=(200, 204))


class ManagementLockClient(ArmRestClient):
    """Locks at any scope (API 2020-05-01), shaped like the SDK's client: ``client.management_locks.<call>``."""

    def __init__(self, credential, subscription_id, **options):
        super().__init__(credential, subscription_id, **options)
        self.management_locks = ManagementLocks(self)


def _scope_path(scope):
    # A scope is a resource id: its segments are already URL-safe ARM names, as the SDK assumes (it
    # inserts the scope unquoted).
    return "/" + scope.strip("/")


def _lock_path(scope, lock_name):
    return "%s%s/%s" % (_scope_path(scope), LOCKS_PROVIDER, quote(lock_name, safe=""))


class TagsOperations:
    """The Tags API at a scope, with the SDK's names and arguments (``tags.get_at_scope``,
    ``tags.begin_update_at_scope``, ``tags.create_or_update_at_scope``); bodies are REST dicts."""

    def __init__(self, rest):
        self._rest = rest

    def get_at_scope(self, scope):
        return self._rest.send("GET", _scope_path(scope) + TAGS_PROVIDER, TAGS_API_VERSION)

    def begin_update_at_scope(self, scope, parameters):
        # Azure answers 200 with the tags, or 202 and a Location to poll (both in the SDKs' accepted list).
        return self._rest.begin("PATCH", _scope_path(scope) + TAGS_PROVIDER, TAGS_API_VERSION, body=parameters)

    def create_or_update_at_scope(self, scope, parameters):
        return self._rest.send("PUT", _scope_path(scope) + TAGS_PROVIDER, TAGS_API_VERSION, body=parameters)


class ResourceTagsClient(ArmRestClient):
    """The Tags API (Microsoft.Resources/tags), shaped like the SDK's ``ResourceManagementClient.tags``."""

    def __init__(self, credential, subscription_id, **options):
        super().__init__(credential, subscription_id, **options)
        self.tags = TagsOperations(self)
