# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Test doubles for the Azure SDK: a credential, a scripted HTTP transport, a fake clock.

The scripted transport is azure-core's real ``RequestsTransport`` over a ``requests.Session`` whose
adapter answers from a script instead of the network, so every SDK layer above it (pipeline,
policies, retry, LRO polling, deserialisation) runs for real.
"""

from __future__ import annotations

import functools
import http.client
import io
import json
import threading
import time

import requests
from requests.adapters import BaseAdapter

from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport

from ansible_collections.azure_flex.vmss.plugins.module_utils._auth import CloudEndpoints
from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import AzureClients, import_client_class


SUBSCRIPTION_ID = "11111111-2222-3333-4444-555555555555"
BASE_URL = "https://arm.test.invalid"
CLOUD = CloudEndpoints("Test", BASE_URL, "https://login.test.invalid", "https://arm.test.invalid/")


class FakeCredential:
    """A TokenCredential that hands out a fixed token and records the scopes asked for."""

    def __init__(self):
        self.scopes_requested = []

    def get_token(self, *scopes, **kwargs):
        self.scopes_requested.append(scopes)
        return AccessToken("fake-token", int(time.time()) + 3600)


class RecordedRequest:
    def __init__(self, prepared, send_kwargs):
        self.method = prepared.method
        self.url = prepared.url
        self.headers = dict(prepared.headers)
        self.body = prepared.body
        self.send_kwargs = send_kwargs

    def json(self):
        return json.loads(self.body) if self.body else None


def reply(status, body=None, headers=None):
    """One scripted answer: an HTTP status, a JSON-able body (or bytes) and headers."""
    return (status, body, headers or {})


class ScriptedAdapter(BaseAdapter):
    """A requests adapter answering from ``script``: a list of replies, or a function of the request.

    An entry may also be an exception instance, which is raised instead of answering.
    """

    def __init__(self, script):
        super().__init__()
        self._script = script if callable(script) else list(script)
        self._lock = threading.Lock()
        self.requests = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # pylint: disable=arguments-differ
        recorded = RecordedRequest(request, {"timeout": timeout, "verify": verify})
        with self._lock:
            self.requests.append(recorded)
            answer = self._script(recorded) if callable(self._script) else self._script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body, headers = answer
        return _build_response(request, status, body, headers)

    def close(self):
        """Nothing to release."""


def _build_response(request, status, body, headers):
    if body is None:
        content = b""
    elif isinstance(body, bytes):
        content = body
    else:
        content = json.dumps(body).encode("utf-8")
    response = requests.Response()
    response.status_code = status
    response.reason = http.client.responses.get(status, "Unknown")
    response.headers.update({"Content-Type": "application/json; charset=utf-8"})
    response.headers.update(headers)
    response.raw = io.BytesIO(content)
    response.url = request.url
    response.request = request
    return response


def scripted_transport(script):
    """Return ``(transport, adapter)``: a real RequestsTransport whose HTTPS traffic goes to ``script``."""
    adapter = ScriptedAdapter(script)
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return RequestsTransport(session=session, session_owner=False), adapter


def clients_over(script, polling_interval=2, ca_bundle=None, deadline=None):
    """AzureClients whose real SDK clients talk to a scripted transport. Returns (clients, adapter, sleeps).

    The transport's sleeps (retry waits, LRO polling) are recorded in ``sleeps`` instead of slept.
    """
    transport, adapter = scripted_transport(script)
    sleeps = []
    transport.sleep = sleeps.append

    def importer(service):
        return functools.partial(import_client_class(service), transport=transport)

    clients = AzureClients(FakeCredential(), SUBSCRIPTION_ID, CLOUD, deadline=deadline,
                           polling_interval=polling_interval, ca_bundle=ca_bundle, client_importer=importer)
    return clients, adapter, sleeps


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def arm_error(code, message, details=None):
    body = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return body
