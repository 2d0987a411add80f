"""The /_emulator/ control API: faults, settings, events, request log, reset, scenarios."""

from __future__ import annotations

import json
import time

import pytest
import requests
import yaml
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from _support import COMPUTE_API, JUMPBOX, RG, arm_requests, flex_members, power, vm_id


def control(emu, method, path, **kwargs):
    return requests.request(method, emu.url + "/_emulator/" + path, verify=emu.env["REQUESTS_CA_BUNDLE"],
                            timeout=30, **kwargs)


# -- faults ------------------------------------------------------------------------------------


def test_status_fault_is_retried_by_the_sdk(emu, sdk):
    rule = emu.add_fault(method="GET", path="/virtualMachines/jumpbox$", status=503, count=2)
    assert rule["remaining"] == 2 and rule["hits"] == 0
    client = sdk.compute(retry_backoff_factor=0.01)
    before = emu.request_count()
    assert client.virtual_machines.get(RG, JUMPBOX).name == JUMPBOX
    log = arm_requests(emu, before)
    assert [e["status"] for e in log] == [503, 503, 200]
    described = emu.control("GET", "faults")["faults"][0]
    assert described["hits"] == 2 and described["remaining"] == 0 and described["id"] == rule["id"]


def test_status_fault_body_and_headers(emu, sdk, raw):
    emu.add_fault(method="POST", path="restart", status=429, retry_after=7)
    reply = raw("POST", vm_id(sdk.subscription_id, JUMPBOX) + "/restart", api_version=COMPUTE_API)
    assert reply.status_code == 429
    assert reply.headers["Retry-After"] == "7"
    assert reply.json() == {"error": {"code": "SubscriptionRequestsThrottled", "message": "Injected fault."}}
    assert reply.headers["x-ms-request-id"]
    # count defaults to 1: the next call goes through.
    assert raw("POST", vm_id(sdk.subscription_id, JUMPBOX) + "/restart",
               api_version=COMPUTE_API).status_code == 202


def test_throttling_with_retry_after_is_retried(emu, sdk, compute):
    emu.add_fault(method="POST", path="/restart$", status=429, retry_after=1, count=1)
    started = time.monotonic()
    compute.virtual_machines.begin_restart(RG, JUMPBOX).result()
    assert time.monotonic() - started >= 0.9
    assert [e["status"] for e in arm_requests(emu) if e["method"] == "POST"] == [429, 202]


def test_throttling_without_retry_after_is_raised(emu, compute):
    emu.add_fault(method="POST", path="/restart$", status=429, code="TooManyRequests", message="Slow down.")
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machines.begin_restart(RG, JUMPBOX)
    assert info.value.status_code == 429
    assert info.value.error.code == "TooManyRequests" and info.value.error.message == "Slow down."


def test_fault_filters(emu, sdk, compute, raw):
    emu.add_fault(method="POST", path="jumpbox", status=500, count=5)
    # GETs of the same path are not affected; other VMs' POSTs neither.
    assert compute.virtual_machines.get(RG, JUMPBOX).name == JUMPBOX
    member = flex_members(compute, sdk.subscription_id)[0]
    assert raw("POST", vm_id(sdk.subscription_id, member) + "/restart", api_version=COMPUTE_API).status_code == 202
    reply = raw("POST", vm_id(sdk.subscription_id, JUMPBOX) + "/restart", api_version=COMPUTE_API)
    assert reply.status_code == 500 and reply.json()["error"]["code"] == "InternalServerError"
    # The path is a case-insensitive regular expression searched in the path.
    emu.clear_faults()
    emu.add_fault(path=r"VIRTUALMACHINES/j.*box$", status=404, code="Gone")
    assert raw("GET", vm_id(sdk.subscription_id, JUMPBOX), api_version=COMPUTE_API).json()["error"]["code"] == "Gone"


def test_probability(emu, sdk, raw):
    emu.add_fault(path="/virtualMachines/jumpbox$", status=500, probability=0)
    statuses = {raw("GET", vm_id(sdk.subscription_id, JUMPBOX), api_version=COMPUTE_API).status_code
                for _ in range(10)}
    assert statuses == {200}
    emu.clear_faults()
    emu.add_fault(path="/virtualMachines/jumpbox$", status=500, probability=1)
    statuses = {raw("GET", vm_id(sdk.subscription_id, JUMPBOX), api_version=COMPUTE_API).status_code
                for _ in range(10)}
    assert statuses == {500}  # no count: applies until cleared
    emu.clear_faults()
    emu.add_fault(path="/virtualMachines/jumpbox$", status=500, probability=0.5, count=1000)
    statuses = [raw("GET", vm_id(sdk.subscription_id, JUMPBOX), api_version=COMPUTE_API).status_code
                for _ in range(60)]
    assert 5 < statuses.count(500) < 55


def test_faults_do_not_eat_token_requests(emu, sdk, compute):
    # A catch-all rule meant for ARM is not consumed by azure-identity's calls.
    emu.add_fault(method="POST", status=503, count=1)
    fresh = sdk.compute(retry_total=0)
    with pytest.raises(HttpResponseError) as info:
        fresh.virtual_machines.begin_restart(RG, JUMPBOX)
    assert info.value.status_code == 503
    # A rule naming the token endpoint does fault it.
    from azure.identity import ClientSecretCredential
    from azure.core.exceptions import ClientAuthenticationError

    emu.add_fault(method="POST", path="/oauth2/v2.0/token$", status=503, count=10)
    cred = ClientSecretCredential(emu.env["AZURE_TENANT"], emu.env["AZURE_CLIENT_ID"], emu.env["AZURE_SECRET"],
                                  authority=emu.url + "/", disable_instance_discovery=True,
                                  connection_verify=emu.env["REQUESTS_CA_BUNDLE"], retry_total=0)
    with pytest.raises(ClientAuthenticationError):
        cred.get_token(sdk.audience + "/.default")


def test_lro_faults_apply_only_to_operations(emu, sdk, compute):
    emu.add_fault(path="jumpbox", lro="Failed")
    assert compute.virtual_machines.get(RG, JUMPBOX).name == JUMPBOX
    assert emu.control("GET", "faults")["faults"][0]["remaining"] == 1
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machines.begin_power_off(RG, JUMPBOX).result()
    assert info.value.error.code == "InternalExecutionError"
    assert power(compute, JUMPBOX) == "running"
    assert emu.control("GET", "operations")["operations"] == {"Failed": 1}


def test_canceled_lro(emu, compute):
    emu.add_fault(path="jumpbox/deallocate", lro="Canceled", message="Preempted by platform.")
    poller = compute.virtual_machines.begin_deallocate(RG, JUMPBOX)
    with pytest.raises(HttpResponseError) as info:
        poller.result()
    assert info.value.error.code == "OperationPreempted"
    assert info.value.error.message == "Preempted by platform."
    assert poller.status() == "Canceled"
    assert power(compute, JUMPBOX) == "running"


def test_stuck_lro(emu, sdk, compute):
    emu.add_fault(path="jumpbox/restart", stuck=True)
    poller = compute.virtual_machines.begin_restart(RG, JUMPBOX)
    time.sleep(0.5)
    assert not poller.done() and poller.status() == "InProgress"
    assert power(compute, JUMPBOX) == "starting"
    assert emu.control("GET", "operations")["operations"] == {"InProgress": 1}
    # A newer action preempts it.
    compute.virtual_machines.begin_deallocate(RG, JUMPBOX).result()
    with pytest.raises(HttpResponseError) as info:
        poller.result(timeout=5)
    assert info.value.error.code == "OperationPreempted"


@pytest.mark.parametrize("rule, text", [
    ({"status": 500, "colour": "red"}, "unknown fault fields"),
    ({"status": 500, "lro": "Failed"}, "exactly one"),
    ({}, "exactly one"),
    ({"status": 200}, "400-599"),
    ({"lro": "Cancelled"}, "lro must be"),
    ({"path": "(", "status": 500}, "regular expression"),
])
def test_invalid_fault_rules(emu, rule, text):
    reply = control(emu, "POST", "faults", data=json.dumps(rule))
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "InvalidRequest"
    assert text in reply.json()["error"]["message"]
    assert emu.control("GET", "faults") == {"faults": []}


def test_fault_list_and_clear(emu):
    emu.add_fault(path="a", status=500)
    emu.add_fault(path="b", lro="Canceled", count=3)
    faults = emu.control("GET", "faults")["faults"]
    assert [(f["path"], f["remaining"]) for f in faults] == [("a", 1), ("b", 3)]
    assert emu.clear_faults() == {"faults": []}
    assert emu.control("GET", "faults") == {"faults": []}


# -- settings ----------------------------------------------------------------------------------


def test_settings_roundtrip(emu):
    settings = emu.settings()
    assert settings["time_scale"] == 0.02 and settings["retry_after"] == 0
    assert set(settings) >= {"time_scale", "durations", "retry_after", "graph_lag", "readonly_blocks_post",
                             "flex_batch_actions", "strict_api_versions", "page_size", "token_lifetime",
                             "lock_list_includes_inherited", "graph_quota", "nat_v2_port_order",
                             "flex_vm_list_latest_model", "flex_native_protection"}
    updated = emu.settings(durations={"restart": 9})
    assert updated["durations"]["restart"] == 9 and updated["durations"]["start"] == settings["durations"]["start"]
    assert emu.settings()["durations"]["restart"] == 9
    # A reset goes back to the scenario's settings.
    emu.reset()
    assert emu.settings()["time_scale"] == 1.0 and emu.settings()["durations"]["restart"] == 4


@pytest.mark.parametrize("change", [
    {"nope": 1}, {"durations": {"nope": 1}}, {"durations": {"restart": "slow"}}, {"time_scale": "fast"},
    {"time_scale": -1}, {"readonly_blocks_post": "yes"}, {"page_size": 0}, {"durations": 5},
    {"nat_v2_port_order": "random"}, {"nat_v2_port_order": 1}, {"flex_native_protection": "yes"},
])
def test_invalid_settings(emu, sdk, compute, change):
    reply = control(emu, "PUT", "settings", data=json.dumps(change))
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "InvalidRequest"
    # Nothing changed and operations still work.
    assert emu.settings()["time_scale"] == 0.02
    compute.virtual_machines.begin_restart(RG, JUMPBOX).result()


def test_retry_after_setting(emu, sdk, raw):
    emu.settings(retry_after=3)
    reply = raw("POST", vm_id(sdk.subscription_id, JUMPBOX) + "/restart", api_version=COMPUTE_API)
    assert reply.headers["Retry-After"] == "3"


def test_time_scale(emu, compute):
    emu.settings(time_scale=0.1, durations={"restart": 5})  # 0.5 s
    started = time.monotonic()
    compute.virtual_machines.begin_restart(RG, JUMPBOX).result()
    elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 3.0


# -- events and requests -----------------------------------------------------------------------


def test_events_log(emu, sdk, compute):
    total = emu.control("GET", "events")["total"]
    compute.virtual_machines.begin_restart(RG, JUMPBOX).result()
    new = emu.events(total)
    assert [(e["vm"], e["power_state"], e["provisioning_state"]) for e in new] == [
        (JUMPBOX, "starting", "Updating"), (JUMPBOX, "running", "Succeeded")]
    assert new[0]["id"] == vm_id(sdk.subscription_id, JUMPBOX)
    assert new[0]["time"] <= new[1]["time"]
    assert emu.control("DELETE", "events") == {"events": []}
    assert emu.control("GET", "events") == {"events": [], "total": 0}


def test_requests_log(emu, sdk, compute):
    emu.control("DELETE", "requests")
    compute.virtual_machines.begin_restart(RG, JUMPBOX).result()
    log = arm_requests(emu)
    assert log[0]["method"] == "POST" and log[0]["status"] == 202
    assert log[0]["path"] == vm_id(sdk.subscription_id, JUMPBOX) + "/restart"
    polls = log[1:]
    assert polls and all(e["method"] == "GET" and "/operations/" in e["path"] for e in polls)
    assert all(e["status"] == 200 for e in polls)
    total = emu.control("GET", "requests")["total"]
    assert emu.requests(total) == []
    assert len(emu.requests(total - 1)) == 1


# -- reset and scenarios -----------------------------------------------------------------------


SMALL = {
    "settings": {"time_scale": 0.02, "retry_after": 0},
    "resource_groups": [{
        "name": "small-rg", "location": "westeurope",
        "virtual_networks": [{"name": "vnet"}],
        "scale_sets": [{"name": "tiny", "instances": 2, "subnet": "vnet/default",
                        "overrides": [{"index": 1, "power_state": "deallocated"}]}],
    }],
}


def test_reset_with_json(emu, sdk):
    reply = control(emu, "POST", "reset", data=json.dumps(SMALL), headers={"Content-Type": "application/json"})
    assert reply.status_code == 200
    assert reply.json()["status"] == "reset"
    compute = sdk.compute()
    names = flex_members(compute, sdk.subscription_id, "tiny", "small-rg")
    assert len(names) == 2
    assert [power(compute, n, "small-rg") for n in names].count("deallocated") == 1
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machines.get(RG, JUMPBOX)
    assert emu.control("GET", "scenario") == SMALL


def test_reset_with_yaml(emu, sdk):
    emu.reset(yaml.safe_dump(SMALL))
    assert len(list(sdk.compute().virtual_machines.list("small-rg"))) == 2
    emu.reset()
    assert len(list(sdk.compute().virtual_machines.list(RG))) == 13


@pytest.mark.parametrize("body, text", [
    ("a: [unclosed", "neither valid YAML nor JSON"),
    ("- a list", "mapping"),
    ('{"colour": "red"}', "unknown scenario keys"),
    ('{"subscription_id": "not-a-guid"}', "not a GUID"),
    ('{"settings": {"nope": 1}}', "unknown setting"),
])
def test_invalid_scenarios(emu, sdk, body, text):
    reply = control(emu, "POST", "reset", data=body)
    assert reply.status_code == 400
    assert text in reply.json()["error"]["message"]


def test_reset_drops_operations_in_flight(emu, sdk, compute, raw):
    emu.settings(durations={"restart": 100})
    reply = raw("POST", vm_id(sdk.subscription_id, JUMPBOX) + "/restart", api_version=COMPUTE_API)
    generation = emu.control("GET", "health")["generation"]
    emu.reset()
    emu.settings(time_scale=0.02, retry_after=0)
    assert emu.control("GET", "health")["generation"] == generation + 1
    assert raw("GET", reply.headers["Azure-AsyncOperation"]).status_code == 404
    assert power(compute, JUMPBOX) == "running"
    assert emu.control("GET", "operations")["operations"] == {}
    # The request log started again at the reset: only the two calls made since.
    assert [(e["status"], e["path"].rsplit("/", 1)[1]) for e in arm_requests(emu)] == [
        (404, reply.headers["Azure-AsyncOperation"].split("?")[0].rsplit("/", 1)[1]), (200, "instanceView")]


def test_multiple_subscriptions(emu, sdk):
    other = "11111111-2222-3333-4444-555555555555"
    emu.reset({"subscriptions": [{"id": other, "name": "second"}],
               "resource_groups": [{"name": "a-rg"}, {"name": "b-rg", "subscription": other,
                                                      "vms": [{"name": "vm-b", "subnet": None}]}]})
    from azure.mgmt.compute import ComputeManagementClient

    second = ComputeManagementClient(sdk.credential, other, **sdk.kwargs)
    assert [vm.name for vm in second.virtual_machines.list_all()] == ["vm-b"]
    assert list(sdk.compute().virtual_machines.list_all()) == []
    assert second.virtual_machines.get("b-rg", "vm-b").id == \
        "/subscriptions/%s/resourceGroups/b-rg/providers/Microsoft.Compute/virtualMachines/vm-b" % other


def test_custom_client(emu, sdk):
    from azure.identity import ClientSecretCredential

    emu.reset({"clients": [{"client_id": "app-1", "secret": "s1"}], "resource_groups": [{"name": RG}]})
    good = ClientSecretCredential(emu.env["AZURE_TENANT"], "app-1", "s1", authority=emu.url + "/",
                                  disable_instance_discovery=True, connection_verify=emu.env["REQUESTS_CA_BUNDLE"])
    assert good.get_token(sdk.audience + "/.default").token


def test_health_and_unknown_control_paths(emu):
    health = emu.control("GET", "health")
    assert health["status"] == "ok" and isinstance(health["generation"], int)
    reply = control(emu, "GET", "nope")
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "NotFound"
    reply = control(emu, "PATCH", "settings", data="{}")
    assert reply.status_code == 404


def test_settings_body_must_be_an_object(emu):
    for body in ("[1]", "{bad"):
        reply = control(emu, "PUT", "settings", data=body)
        assert reply.status_code == 400


def test_operations_counts(emu, compute):
    compute.virtual_machines.begin_restart(RG, JUMPBOX).result()
    compute.virtual_machines.begin_restart(RG, JUMPBOX).result()
    assert emu.control("GET", "operations")["operations"] == {"Succeeded": 2}


def test_control_calls_are_not_faulted(emu):
    emu.add_fault(status=500, probability=1)
    assert emu.control("GET", "health")["status"] == "ok"
    assert emu.settings()["time_scale"] == 0.02
    assert emu.clear_faults() == {"faults": []}


def test_lro_fault_is_kept_for_an_operation_that_really_starts(emu, compute):
    emu.add_fault(path="jumpbox/restart", lro="Failed")
    compute.virtual_machines.begin_deallocate(RG, JUMPBOX).result()
    # Refused with 409 before any operation starts: the rule is not used up ...
    from azure.core.exceptions import ResourceExistsError

    with pytest.raises(ResourceExistsError):
        compute.virtual_machines.begin_restart(RG, JUMPBOX)
    assert emu.control("GET", "faults")["faults"][0]["remaining"] == 1
    compute.virtual_machines.begin_start(RG, JUMPBOX).result()
    # ... and applies to the next restart that does run.
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machines.begin_restart(RG, JUMPBOX).result()
    assert info.value.error.code == "InternalExecutionError"
    assert emu.control("GET", "faults")["faults"][0]["remaining"] == 0


def test_lro_fault_count_applies_per_operation_in_a_batch(emu, sdk, compute):
    members = flex_members(compute, sdk.subscription_id)[:3]
    emu.add_fault(path="virtualMachineScaleSets/web/restart", lro="Failed", count=1)
    since = len(emu.events())
    with pytest.raises(HttpResponseError) as info:
        compute.virtual_machine_scale_sets.begin_restart(RG, "web", {"instanceIds": members}).result()
    assert info.value.error.code == "InternalExecutionError"
    # One member's restart failed (and was rolled back), the other two restarted.
    finished = [e["vm"] for e in emu.events(since) if e["power_state"] == "running" and
                e["provisioning_state"] == "Succeeded"]
    assert len(set(finished)) == 3
    assert {power(compute, n) for n in members} == {"running"}
    assert emu.control("GET", "operations")["operations"] == {"Failed": 2, "Succeeded": 2}
