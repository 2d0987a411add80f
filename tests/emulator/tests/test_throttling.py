"""Azure's request limits (setting rate_limits): ARM's token buckets per subscription and principal,
Compute's per-VM and per-subscription policies, each refusal a 429 with Retry-After."""

from __future__ import annotations

import json
import time

import requests

from _support import COMPUTE_API, FLEX, JUMPBOX, RG, vm_id

READ_HEADER = "x-ms-ratelimit-remaining-subscription-reads"


class Session:
    """Keep-alive HTTPS with one principal's token (hundreds of requests in a second or two)."""

    def __init__(self, emu, token):
        self.base = emu.url
        self.http = requests.Session()
        self.http.headers["Authorization"] = "Bearer " + token
        self.verify = emu.env["REQUESTS_CA_BUNDLE"]

    def __call__(self, method, path, body=None, api_version=COMPUTE_API):
        url = path if path.startswith("https://") else self.base + path
        if api_version:
            url += ("&" if "?" in url else "?") + "api-version=" + api_version
        return self.http.request(method, url, data=json.dumps(body) if body is not None else None,
                                 headers={"Content-Type": "application/json"} if body is not None else {},
                                 verify=self.verify, timeout=30)


def _session(emu, sdk, client_id=None, secret=None):
    from conftest import Sdk

    other = Sdk(emu, client_id, secret) if client_id else sdk
    return Session(emu, other.credential.get_token(other.audience + "/.default").token)


def _until_refused(call, limit):
    """Call until the first 429; return (successful calls, the 429 response)."""
    for count in range(limit):
        reply = call()
        if reply.status_code == 429:
            return count, reply
        assert reply.status_code < 500, reply.text
    raise AssertionError("no 429 within %d requests" % limit)


def test_off_by_default_full_buckets_and_nothing_refused(emu, sdk):
    call = _session(emu, sdk)
    path = vm_id(sdk.subscription_id, JUMPBOX)
    values = set()
    for _ in range(300):
        reply = call("GET", path)
        assert reply.status_code == 200
        values.add(reply.headers[READ_HEADER])
    # A subscription far from its limits: the bucket shows full after every request.
    assert values == {"249"}
    assert reply.headers["x-ms-ratelimit-remaining-resource"] == (
        "Microsoft.Compute/LowCostGetVMResource;35,Microsoft.Compute/LowCostGetVMSubscription;23999")


def test_reads_bucket_counts_down_then_refuses_with_retry_after(emu, sdk):
    emu.settings(rate_limits=True)
    call = _session(emu, sdk)
    path = "/subscriptions/%s/resourceGroups/%s" % (sdk.subscription_id, RG)
    first = [int(call("GET", path, api_version="2021-04-01").headers[READ_HEADER]) for _ in range(3)]
    assert first[0] == 249 and first[0] > first[2]
    served, refused = _until_refused(lambda: call("GET", path, api_version="2021-04-01"), 1000)
    # 250 of burst, plus what refilled at 25 a second meanwhile.
    assert 247 <= served <= 247 + 25 * 10
    error = refused.json()["error"]
    assert error["code"] == "SubscriptionRequestsThrottled"
    assert "Number of 'read' requests for subscription '%s'" % sdk.subscription_id in error["message"]
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers[READ_HEADER] == "0"
    # One token comes back every 40 ms.
    time.sleep(0.1)
    assert call("GET", path, api_version="2021-04-01").status_code == 200
    # The 429 is in the request log; it never reached the provider.
    assert emu.requests()[-2]["status"] == 429


def test_writes_and_deletes_have_their_own_buckets(emu, sdk):
    emu.settings(rate_limits=True)
    call = _session(emu, sdk)
    group = "/subscriptions/%s/resourceGroups/throttle-rg" % sdk.subscription_id
    served, refused = _until_refused(lambda: call("PUT", group, {"location": "eastus"}, api_version="2021-04-01"),
                                     600)
    assert 199 <= served <= 199 + 10 * 15
    assert refused.json()["error"]["code"] == "SubscriptionRequestsThrottled"
    assert "'write' requests" in refused.json()["error"]["message"]
    assert refused.headers["x-ms-ratelimit-remaining-subscription-writes"] == "0"
    # Reads are still served while writes are refused, and deletes have a full bucket of their own.
    assert call("GET", group, api_version="2021-04-01").status_code == 200
    missing = "/subscriptions/%s/resourceGroups/no-such-rg" % sdk.subscription_id
    reply = call("DELETE", missing, api_version="2021-04-01")
    assert reply.status_code == 404
    assert reply.headers["x-ms-ratelimit-remaining-subscription-deletes"] == "199"
    served, refused = _until_refused(lambda: call("DELETE", missing, api_version="2021-04-01"), 600)
    assert 198 <= served <= 198 + 10 * 15
    assert "'delete' requests" in refused.json()["error"]["message"]


def test_buckets_are_per_principal(emu, sdk):
    emu.reset({"clients": [{"client_id": "11111111-1111-1111-1111-111111111111", "secret": "one"},
                           {"client_id": "22222222-2222-2222-2222-222222222222", "secret": "two"}],
               "resource_groups": [{"name": RG}], "settings": {"rate_limits": True}})
    one = _session(emu, sdk, "11111111-1111-1111-1111-111111111111", "one")
    two = _session(emu, sdk, "22222222-2222-2222-2222-222222222222", "two")
    path = "/subscriptions/%s/resourceGroups/%s" % (sdk.subscription_id, RG)
    _until_refused(lambda: one("GET", path, api_version="2021-04-01"), 1000)
    reply = two("GET", path, api_version="2021-04-01")
    assert reply.status_code == 200 and reply.headers[READ_HEADER] == "249"


def test_compute_per_vm_update_policy(emu, sdk):
    emu.settings(rate_limits=True)
    call = _session(emu, sdk)
    path = vm_id(sdk.subscription_id, JUMPBOX)
    reply = call("PATCH", path, {"tags": {"n": "0"}})
    assert reply.status_code in (200, 202)
    assert reply.headers["x-ms-ratelimit-remaining-resource"] == (
        "Microsoft.Compute/UpdateVMResource;11,Microsoft.Compute/UpdateVMSubscription;1499")
    served, refused = _until_refused(lambda: call("PATCH", path, {"tags": {"n": "1"}}), 50)
    assert served == 11  # 12 a VM, then 4 a minute
    error = refused.json()["error"]
    assert error["code"] == "OperationNotAllowed"
    assert error["details"][0]["code"] == "TooManyRequests"
    assert error["details"][0]["target"] == "UpdateVMResource"
    assert json.loads(error["details"][0]["message"])["operationGroup"] == "UpdateVMResource"
    assert refused.headers["Retry-After"] == "15"
    assert refused.headers["x-ms-ratelimit-remaining-resource"].startswith("Microsoft.Compute/UpdateVMResource;0,")
    # A restart is in the same operation group, so the same VM is refused ...
    assert call("POST", path + "/restart").status_code == 429
    # ... while another VM has its own per-VM budget; the subscription's is shared (and refills 500 a minute).
    member = [vm.name for vm in sdk.compute().virtual_machines.list(RG) if vm.name.startswith(FLEX)][0]
    reply = call("POST", vm_id(sdk.subscription_id, member) + "/restart")
    assert reply.status_code == 202
    resource, subscription = reply.headers["x-ms-ratelimit-remaining-resource"].split(",")
    assert resource == "Microsoft.Compute/UpdateVMResource;11"
    assert subscription.startswith("Microsoft.Compute/UpdateVMSubscription;")
    assert 1487 <= int(subscription.split(";")[1]) < 1499


def test_compute_per_vm_poll_policy(emu, sdk):
    emu.settings(rate_limits=True)
    call = _session(emu, sdk)
    emu.settings(durations={"restart": 60.0}, time_scale=1.0)
    started = call("POST", vm_id(sdk.subscription_id, JUMPBOX) + "/restart")
    assert started.status_code == 202
    status_url = started.headers["Azure-AsyncOperation"]
    served, refused = _until_refused(lambda: call("GET", status_url, api_version=None), 100)
    assert served == 45
    assert refused.json()["error"]["details"][0]["target"] == "GetOperationResource"


def test_compute_per_subscription_policy(emu, sdk):
    # Four principals: ARM's read buckets (per principal) hold more than Compute's VM-list policy (per
    # subscription: 900, then 300 a minute), so the subscription's policy is what refuses.
    clients = [{"client_id": "%d%d%d%d%d%d%d%d-0000-0000-0000-000000000000" % ((n,) * 8), "secret": "s%d" % n}
               for n in range(1, 5)]
    emu.reset({"clients": clients, "resource_groups": [{"name": RG}], "settings": {"rate_limits": True}})
    sessions = [_session(emu, sdk, c["client_id"], c["secret"]) for c in clients]
    path = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines" % (
        sdk.subscription_id, RG)
    calls = iter(range(10 ** 6))
    served, refused = _until_refused(lambda: sessions[next(calls) % 4]("GET", path), 1000)
    assert 900 <= served <= 900 + 5 * 10  # and 5 a second refilled meanwhile
    error = refused.json()["error"]
    assert error["code"] == "OperationNotAllowed" and error["details"][0]["target"] == "ListVMSubscription"
    assert refused.headers["Retry-After"] == "1"


def test_sdk_retries_a_throttled_read(emu, sdk):
    # azure-core's own retry policy honours Retry-After on a 429 GET: the limits slow a client, not break it.
    emu.settings(rate_limits=True)
    call = _session(emu, sdk)
    path = "/subscriptions/%s/resourceGroups/%s" % (sdk.subscription_id, RG)
    _until_refused(lambda: call("GET", path, api_version="2021-04-01"), 1000)
    vm = sdk.compute().virtual_machines.get(RG, JUMPBOX)
    assert vm.name == JUMPBOX
