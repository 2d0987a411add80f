"""Helpers shared by the emulator tests (not a test module).

Everything here talks to the emulator from the outside: the public SDK clients,
azure-identity tokens sent with plain HTTPS requests (for the wire-level checks
the SDKs hide), and the /_emulator/ control API.
"""

from __future__ import annotations

import json
import time
from importlib.metadata import version

import requests

RG = "demo-rg"
FLEX = "web"
UNIFORM = "legacy"
JUMPBOX = "jumpbox"
COMPUTE_API = None  # filled below from the installed SDK

COMPUTE_VERSION = tuple(int(x) for x in version("azure-mgmt-compute").split(".")[:2])
GRAPH_VERSION = version("azure-mgmt-resourcegraph")
NEW_SDK = COMPUTE_VERSION >= (34, 0)
COMPUTE_API = "2026-04-01" if NEW_SDK else "2024-07-01"
GRAPH_API = "2021-03-01" if GRAPH_VERSION.startswith("8.0") else "2022-10-01"
LOCKS_API = "2020-05-01" if NEW_SDK else "2016-09-01"


def vm_id(sub, name, rg=RG):
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s" % (sub, rg, name)


def vmss_id(sub, name, rg=RG):
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachineScaleSets/%s" % (
        sub, rg, name)


class Raw:
    """Plain HTTPS requests to the emulator with a token from azure-identity."""

    def __init__(self, sdk, emu):
        self.sdk = sdk
        self.base = emu.env["AZURE_EMULATOR_URL"]
        self.verify = emu.env["REQUESTS_CA_BUNDLE"]
        self._token = None

    def token(self):
        if self._token is None:
            self._token = self.sdk.credential.get_token(self.sdk.audience + "/.default").token
        return self._token

    def __call__(self, method, path, body=None, data=None, auth=True, headers=None, params=None,
                 api_version=None):
        hdrs = {}
        if auth:
            hdrs["Authorization"] = "Bearer " + (auth if isinstance(auth, str) else self.token())
        if body is not None:
            data = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        url = path if path.startswith("https://") else self.base + path
        if api_version:
            url += ("&" if "?" in url else "?") + "api-version=" + api_version
        return requests.request(method, url, data=data, headers=hdrs, params=params, verify=self.verify,
                                timeout=30)


def wait_until(predicate, timeout=5.0, interval=0.01, message="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, message))
        time.sleep(interval)


def codes(instance_view):
    return [s.code for s in instance_view.statuses]


def power(compute, name, rg=RG):
    for code in codes(compute.virtual_machines.instance_view(rg, name)):
        if code.startswith("PowerState/"):
            return code.split("/", 1)[1]
    return None


def health(compute, name, rg=RG):
    view = compute.virtual_machines.instance_view(rg, name)
    return view.vm_health.status.code if view.vm_health else None


def flex_members(compute, sub, scale_set=FLEX, rg=RG):
    flt = "'virtualMachineScaleSet/id' eq '%s'" % vmss_id(sub, scale_set, rg)
    return sorted(vm.name for vm in compute.virtual_machines.list(rg, filter=flt))


def graph_rows(result):
    """Rows of a Resource Graph response as dicts, whatever its resultFormat."""
    data = result.data
    if isinstance(data, dict) and "columns" in data:
        names = [c["name"] for c in data["columns"]]
        return [dict(zip(names, row)) for row in data["rows"]]
    return list(data)


def graph(sdk, query, result_format="objectArray", **options):
    from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

    opts = QueryRequestOptions(result_format=result_format, **options) if result_format else (
        QueryRequestOptions(**options) if options else None)
    return sdk.graph().resources(QueryRequest(subscriptions=[sdk.subscription_id], query=query, options=opts))


def events_for(emu, names, since=0):
    names = set(names)
    return [e for e in emu.events(since) if e["vm"] in names]


def max_down(events, names):
    """The largest number of ``names`` not running at once, replaying the event log."""
    current = {}
    worst = 0
    for event in events:
        if event["vm"] not in names:
            continue
        current[event["vm"]] = event["power_state"] != "running"
        worst = max(worst, sum(current.values()))
    return worst


def arm_requests(emu, since=0):
    """The request log without the identity calls (openid-configuration, token)."""
    return [e for e in emu.requests(since) if e["path"].lower().startswith(("/subscriptions", "/providers"))]
