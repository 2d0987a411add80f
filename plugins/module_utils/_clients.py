# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""Management clients, built on first use and configured the same way.

Each service's SDK package is imported only when that client is first requested, so a module that
only lists VMs never needs azure-mgmt-network, and a missing package fails only the task that needs
it, with the pip name to install.

Both SDK generations the collection supports import from the same paths:

* ``azure.mgmt.compute.ComputeManagementClient``: multi-API in 33.x, single-API from 36; the
  collection passes no ``api_version`` and uses each package's default.
* ``azure.mgmt.network.NetworkManagementClient`` and ``azure.mgmt.resourcegraph.ResourceGraphClient``.

The management-locks and Tags APIs are not reached through an SDK package: ``_arm_rest``'s
``ManagementLockClient`` and ``ResourceTagsClient`` send their REST calls over azure-mgmt-core's ARM
pipeline (see that file for why), built with the same options as the SDK clients.

The modules (``_module``) and the inventory plugin get their clients from ``clients_for_settings``, so
both build credential, cloud and clients the same way.
"""

from __future__ import annotations

import importlib
import threading

from ansible_collections.azure_flex.vmss.plugins.module_utils._arm_rest import ManagementLockClient, ResourceTagsClient
from ansible_collections.azure_flex.vmss.plugins.module_utils._auth import build_credential, resolve_cloud
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import MissingDependencyError
from ansible_collections.azure_flex.vmss.plugins.module_utils._resilience import (
    OperationTimer,
    RateBudget,
    RetryRules,
    build_retry_policy,
)


COLLECTION_NAME = "azure_flex.vmss"
# Keep in step with galaxy.yml (a unit test checks it); it is sent in the User-Agent header.
COLLECTION_VERSION = "0.2.0"
USER_AGENT = "%s/%s" % (COLLECTION_NAME, COLLECTION_VERSION)

DEFAULT_POLLING_INTERVAL = 5

# Connections kept open to Resource Manager, shared by all clients and workers of a task. azure-core's
# default pool keeps 10: with more workers, every request beyond them would open (and close) a TLS
# connection of its own. As many as the most workers a task may run (module_utils/_module.py
# MAX_PARALLEL_LIMIT), plus the main thread.
CONNECTION_POOL_SIZE = 101


class ServiceSpec:
    """Where a management client class lives and which pip package provides it.

    ``client_class`` is given for the collection's own REST clients (``_arm_rest``), which import their
    azure-core dependencies when built.
    """

    def __init__(self, module_name, class_name, pip_name, takes_subscription=True, client_class=None):
        self.module_name = module_name
        self.class_name = class_name
        self.pip_name = pip_name
        self.takes_subscription = takes_subscription
        self.client_class = client_class


SERVICES = {
    "compute": ServiceSpec("azure.mgmt.compute", "ComputeManagementClient", "azure-mgmt-compute"),
    "network": ServiceSpec("azure.mgmt.network", "NetworkManagementClient", "azure-mgmt-network"),
    "locks": ServiceSpec(None, "ManagementLockClient", "azure-mgmt-core", client_class=ManagementLockClient),
    "tags": ServiceSpec(None, "ResourceTagsClient", "azure-mgmt-core", client_class=ResourceTagsClient),
    "resource_graph": ServiceSpec("azure.mgmt.resourcegraph", "ResourceGraphClient", "azure-mgmt-resourcegraph",
                                  takes_subscription=False),
}


def import_client_class(service):
    """Import and return the client class of ``service`` (a key of ``SERVICES``)."""
    spec = SERVICES[service]
    if spec.client_class is not None:
        return spec.client_class
    try:
        module = importlib.import_module(spec.module_name)
        return getattr(module, spec.class_name)
    except (ImportError, AttributeError) as exc:
        raise MissingDependencyError(spec.pip_name, exc) from exc


class AzureClients:
    """Lazily built, cached management clients sharing one credential, cloud and retry policy.

    Thread-safe: fan-out workers may ask for a client concurrently; each is built once.
    """

    def __init__(self, credential, subscription_id, cloud, deadline=None, polling_interval=DEFAULT_POLLING_INTERVAL,
                 ca_bundle=None, retry_rules=None, client_importer=import_client_class, rate_budget=None):
        self.credential = credential
        self.subscription_id = subscription_id
        self.cloud = cloud
        self.polling_interval = polling_interval
        self.ca_bundle = ca_bundle
        self.retry_rules = retry_rules or RetryRules(deadline=deadline)
        # One budget for every client of the task: ARM counts the requests of all of them together.
        self.rate_budget = rate_budget or RateBudget()
        # When to poll the task's long-running operations, learnt from those that finished.
        self.operation_timer = OperationTimer()
        self._import_client_class = client_importer
        self._clients = {}
        self._session = None
        self._lock = threading.Lock()

    def compute(self):
        return self.client("compute")

    def network(self):
        return self.client("network")

    def locks(self):
        return self.client("locks")

    def tags(self):
        return self.client("tags")

    def resource_graph(self):
        return self.client("resource_graph")

    def client(self, service):
        """Return the client for ``service``, building it on first use."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._build(service)
            return self._clients[service]

    def client_options(self):
        """Keyword arguments given to every management client."""
        options = {
            "base_url": self.cloud.resource_manager,
            # Without this the SDK asks for a management.azure.com token whatever base_url says.
            "credential_scopes": [self.cloud.token_scope],
            "retry_policy": build_retry_policy(self.retry_rules, self.rate_budget, self.operation_timer),
            # The SDK's default is 30 s between polls when the service sends no Retry-After.
            "polling_interval": self.polling_interval,
            "user_agent": USER_AGENT,
        }
        if self.ca_bundle:
            options["connection_verify"] = self.ca_bundle
        return options

    def _build(self, service):
        client_class = self._import_client_class(service)
        # A transport given by the importer (tests) takes precedence over the session.
        options = dict(self.client_options(), session=self._shared_session(), session_owner=False)
        if SERVICES[service].takes_subscription:
            return client_class(self.credential, self.subscription_id, **options)
        return client_class(self.credential, **options)

    def _shared_session(self):
        """One ``requests`` session (connection pool) for every client; set up as azure-core sets up its own."""
        if self._session is None:
            # pylint: disable=import-outside-toplevel
            import requests
            from urllib3.util.retry import Retry

            session = requests.Session()
            # azure-core retries (here: RetryRules); the adapter must not retry on its own.
            adapter = requests.adapters.HTTPAdapter(
                pool_connections=4, pool_maxsize=CONNECTION_POOL_SIZE,
                max_retries=Retry(total=False, redirect=False, raise_on_status=False))
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            self._session = session
        return self._session


def clients_for_settings(settings, deadline=None, polling_interval=DEFAULT_POLLING_INTERVAL, cloud=None):
    """Return ``clients_for(subscription_id=None)``: the ``AzureClients`` of a subscription (by default the one
    of ``settings``, resolved ``AuthSettings``), built on first use, one per subscription.

    The one place where the modules and the inventory plugin put credential, cloud and clients together:
    every subscription's clients share one credential (one token) and the cloud (resolved here unless
    given), each with its own retry rules and request budget, as ARM counts requests per subscription.
    """
    cloud = cloud or resolve_cloud(settings.cloud_environment, settings.ca_bundle)
    credential = build_credential(settings, cloud)
    built = {}

    def clients_for(subscription_id=None):
        subscription_id = subscription_id or settings.subscription_id
        key = subscription_id.lower()
        if key not in built:
            built[key] = AzureClients(credential, subscription_id, cloud, deadline=deadline,
                                      polling_interval=polling_interval, ca_bundle=settings.ca_bundle)
        return built[key]

    return clients_for


def as_rest_dict(model):
    """Return an SDK model as a plain dict with the REST (camelCase, nested) layout.

    Older msrest-generated models (compute 33, network 28, ...) serialise with ``serialize()``; the
    newer "hybrid" models (compute 36+) already hold the REST JSON and give it with ``as_dict()``.
    Working on the REST layout lets the same code read a VM from the compute API and from Resource
    Graph, whose rows carry the same ``properties`` object.
    """
    if model is None:
        return None
    if isinstance(model, dict):
        return model
    if hasattr(model, "serialize"):
        return model.serialize(keep_readonly=True)
    if hasattr(model, "as_dict"):
        return model.as_dict()
    raise TypeError("cannot convert %r to a dict" % type(model).__name__)
