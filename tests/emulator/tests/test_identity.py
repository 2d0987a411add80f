"""Transport and identity: HTTPS with a private CA, the cloud metadata endpoint,
the Entra ID style authority azure-identity talks to, and bearer-token checks on ARM."""

from __future__ import annotations

import time

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError

from _support import COMPUTE_API, JUMPBOX, RG, vm_id

SUB_PATH = "/subscriptions/%s"


def _meta(emu, api_version):
    return requests.get(emu.url + "/metadata/endpoints", params={"api-version": api_version},
                        verify=emu.env["REQUESTS_CA_BUNDLE"], timeout=10)


# -- transport ---------------------------------------------------------------------------------


def test_https_with_generated_ca_only(emu):
    # Trusted through the generated CA ...
    ok = requests.get(emu.url + "/_emulator/health", verify=emu.env["REQUESTS_CA_BUNDLE"], timeout=10)
    assert ok.status_code == 200 and ok.json()["status"] == "ok"
    # ... which is a CA certificate, not the server certificate itself ...
    with open(emu.env["REQUESTS_CA_BUNDLE"], encoding="ascii") as handle:
        assert handle.read().count("BEGIN CERTIFICATE") == 1
    # ... and not by the system trust store.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(emu.url + "/_emulator/health", verify=True, timeout=10)
    # There is no plain-HTTP listener on the port.
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(emu.url.replace("https://", "http://") + "/_emulator/health", timeout=10)


# -- cloud metadata ----------------------------------------------------------------------------


def test_metadata_endpoints_one_cloud(emu):
    # 2022-09-01 (what `az cloud register --endpoint-resource-manager` asks for): this cloud, one object.
    reply = _meta(emu, "2022-09-01")
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    cloud = reply.json()
    assert isinstance(cloud, dict)
    assert cloud["resourceManager"] == emu.url + "/"
    assert cloud["authentication"]["loginEndpoint"] == emu.url + "/"
    assert cloud["authentication"]["audiences"] == ["https://management.emulator.invalid/"]
    assert cloud["authentication"]["tenant"] == emu.env["AZURE_TENANT"]
    assert cloud["name"]


def test_metadata_endpoints_cloud_list(emu):
    # 2019-05-01 (azure-cli-core's ARM_CLOUD_METADATA_URL loader): a list of clouds.
    clouds = _meta(emu, "2019-05-01").json()
    assert isinstance(clouds, list) and len(clouds) == 1
    assert clouds[0] == _meta(emu, "2022-09-01").json()


def test_metadata_endpoints_azure_stack_format(emu):
    # `az cloud register --endpoint-resource-manager` reads this legacy object.
    reply = _meta(emu, "2015-01-01")
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) >= {"galleryEndpoint", "graphEndpoint", "portalEndpoint", "authentication"}
    assert body["authentication"] == {"loginEndpoint": emu.url + "/",
                                      "audiences": ["https://management.emulator.invalid/"]}


def test_metadata_needs_no_token_but_an_api_version(emu):
    reply = requests.get(emu.url + "/metadata/endpoints", verify=emu.env["REQUESTS_CA_BUNDLE"], timeout=10)
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "MissingApiVersionParameter"


# -- the authority -----------------------------------------------------------------------------


def test_openid_configuration(emu):
    tenant = emu.env["AZURE_TENANT"]
    reply = requests.get("%s/%s/v2.0/.well-known/openid-configuration" % (emu.url, tenant),
                         verify=emu.env["REQUESTS_CA_BUNDLE"], timeout=10)
    assert reply.status_code == 200
    body = reply.json()
    assert body["token_endpoint"] == "%s/%s/oauth2/v2.0/token" % (emu.url, tenant)
    assert body["authorization_endpoint"].startswith(emu.url + "/" + tenant + "/")
    assert body["issuer"] == "%s/%s/v2.0" % (emu.url, tenant)


def test_openid_configuration_unknown_tenant(emu):
    reply = requests.get("%s/%s/v2.0/.well-known/openid-configuration" % (emu.url, "nosuchtenant"),
                         verify=emu.env["REQUESTS_CA_BUNDLE"], timeout=10)
    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_tenant"
    assert reply.json()["error_description"].startswith("AADSTS90002:")


def test_client_secret_credential_gets_a_token(sdk):
    token = sdk.credential.get_token(sdk.audience + "/.default")
    assert token.token.count(".") == 2
    assert token.expires_on > time.time() + 3000


def test_sdk_call_with_token(sdk):
    vm = sdk.compute().virtual_machines.get(RG, JUMPBOX)
    assert vm.name == JUMPBOX


def _credential(emu, secret=None, client_id=None):
    from azure.identity import ClientSecretCredential

    return ClientSecretCredential(emu.env["AZURE_TENANT"], client_id or emu.env["AZURE_CLIENT_ID"],
                                  secret or emu.env["AZURE_SECRET"], authority=emu.url + "/",
                                  disable_instance_discovery=True,
                                  connection_verify=emu.env["REQUESTS_CA_BUNDLE"])


def test_wrong_secret_is_refused_with_aadsts(emu, sdk):
    cred = _credential(emu, secret="not-the-secret")
    with pytest.raises(ClientAuthenticationError) as info:
        cred.get_token(sdk.audience + "/.default")
    assert "AADSTS7000215" in str(info.value)
    # The token endpoint itself answers 401 invalid_client.
    reply = requests.post("%s/%s/oauth2/v2.0/token" % (emu.url, emu.env["AZURE_TENANT"]),
                          data={"grant_type": "client_credentials", "client_id": emu.env["AZURE_CLIENT_ID"],
                                "client_secret": "nope", "scope": sdk.audience + "/.default"},
                          verify=emu.env["REQUESTS_CA_BUNDLE"], timeout=10)
    assert reply.status_code == 401
    body = reply.json()
    assert body["error"] == "invalid_client" and body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215:")


def test_wrong_secret_fails_an_sdk_call(emu, sdk):
    from azure.mgmt.compute import ComputeManagementClient

    client = ComputeManagementClient(_credential(emu, secret="bad"), sdk.subscription_id,
                                     **dict(sdk.kwargs, retry_total=0))
    with pytest.raises(ClientAuthenticationError) as info:
        client.virtual_machines.get(RG, JUMPBOX)
    assert "AADSTS7000215" in str(info.value)


def test_unknown_client_is_refused(emu, sdk):
    cred = _credential(emu, client_id="00000000-0000-0000-0000-00000000dead")
    with pytest.raises(ClientAuthenticationError) as info:
        cred.get_token(sdk.audience + "/.default")
    assert "AADSTS700016" in str(info.value)


def test_public_cloud_scope_is_refused(emu):
    # A client left pointing at management.azure.com's scope cannot get a token for it here.
    with pytest.raises(ClientAuthenticationError) as info:
        _credential(emu).get_token("https://management.azure.com/.default")
    assert "AADSTS500011" in str(info.value)


@pytest.mark.parametrize("form, error, code", [
    ({"grant_type": "password"}, "unsupported_grant_type", 70003),
    ({"grant_type": "client_credentials", "scope": "openid"}, "invalid_scope", 1002012),
])
def test_token_endpoint_rejects_bad_forms(emu, form, error, code):
    data = dict({"client_id": emu.env["AZURE_CLIENT_ID"], "client_secret": emu.env["AZURE_SECRET"]}, **form)
    reply = requests.post("%s/%s/oauth2/v2.0/token" % (emu.url, emu.env["AZURE_TENANT"]), data=data,
                          verify=emu.env["REQUESTS_CA_BUNDLE"], timeout=10)
    assert reply.status_code == 400
    assert reply.json()["error"] == error
    assert reply.json()["error_codes"] == [code]


# -- bearer tokens on ARM ----------------------------------------------------------------------


def _arm_calls(sub):
    vm = vm_id(sub, JUMPBOX)
    rgp = "/subscriptions/%s/resourceGroups/%s" % (sub, RG)
    return [
        ("GET", "/subscriptions?api-version=2022-12-01", None),
        ("GET", "/subscriptions/%s?api-version=2022-12-01" % sub, None),
        ("GET", rgp + "?api-version=2025-04-01", None),
        ("PUT", "/subscriptions/%s/resourceGroups/new-rg?api-version=2025-04-01" % sub, {"location": "eastus"}),
        ("DELETE", rgp + "?api-version=2025-04-01", None),
        ("GET", vm + "?api-version=" + COMPUTE_API, None),
        ("PATCH", vm + "?api-version=" + COMPUTE_API, {"tags": {}}),
        ("POST", vm + "/restart?api-version=" + COMPUTE_API, None),
        ("POST", vm + "/simulateEviction?api-version=" + COMPUTE_API, None),
        ("DELETE", vm + "?api-version=" + COMPUTE_API, None),
        ("GET", "/subscriptions/%s/providers/Microsoft.Compute/virtualMachines?api-version=%s" % (sub, COMPUTE_API),
         None),
        ("GET", rgp + "/providers/Microsoft.Network/networkInterfaces?api-version=2026-03-01", None),
        ("GET", rgp + "/providers/Microsoft.Authorization/locks?api-version=2020-05-01", None),
        ("PUT", rgp + "/providers/Microsoft.Authorization/locks/l1?api-version=2020-05-01",
         {"properties": {"level": "ReadOnly"}}),
        ("POST", "/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01", {"query": "Resources"}),
        ("GET", "/subscriptions/%s/providers/Microsoft.Compute/locations/eastus/operations/x?api-version=%s"
         % (sub, COMPUTE_API), None),
    ]


@pytest.mark.parametrize("index", range(16))
def test_every_arm_call_needs_a_bearer_token(emu, sdk, raw, index):
    method, path, body = _arm_calls(sdk.subscription_id)[index]
    before = emu.request_count()
    reply = raw(method, path, body=body, auth=False)
    assert reply.status_code == 401, reply.text
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json()["error"]["code"] == "AuthenticationFailed"
    assert reply.json()["error"]["message"].startswith("Authentication failed.")
    assert reply.headers["x-ms-request-id"]
    assert reply.headers["WWW-Authenticate"].startswith('Bearer authorization_uri="')
    assert 'error="invalid_token"' in reply.headers["WWW-Authenticate"]
    # Nothing happened: the request log shows only the refusal, and the world is unchanged.
    log = emu.requests(before)
    assert [(e["method"], e["status"]) for e in log] == [(method, 401)]
    assert sdk.compute().virtual_machines.get(RG, JUMPBOX).provisioning_state == "Succeeded"
    assert list(sdk.locks().management_locks.list_at_resource_group_level(RG)) == []
    assert sdk.resources().resource_groups.get(RG).properties.provisioning_state == "Succeeded"


@pytest.mark.parametrize("header, code", [
    ("Bearer not.a.token", "InvalidAuthenticationToken"),
    ("Bearer abc", "InvalidAuthenticationToken"),
    ("Basic dXNlcjpwYXNz", "AuthenticationFailed"),
    ("Bearer ", "AuthenticationFailed"),
])
def test_unknown_or_malformed_tokens(sdk, raw, header, code):
    reply = raw("GET", vm_id(sdk.subscription_id, JUMPBOX), auth=False, headers={"Authorization": header},
                api_version=COMPUTE_API)
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == code


def test_forged_signature_is_refused(sdk, raw):
    head, body, _sig = raw.token().split(".")
    reply = raw("GET", vm_id(sdk.subscription_id, JUMPBOX), auth=head + "." + body + ".AAAA",
                api_version=COMPUTE_API)
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_expired_token_is_refused(emu, sdk, raw):
    emu.settings(token_lifetime=2)  # exp is iat + 2 in whole seconds: valid for at least one second
    token = _credential(emu).get_token(sdk.audience + "/.default").token
    good = raw("GET", vm_id(sdk.subscription_id, JUMPBOX), auth=token, api_version=COMPUTE_API)
    assert good.status_code == 200
    time.sleep(2.1)
    reply = raw("GET", vm_id(sdk.subscription_id, JUMPBOX), auth=token, api_version=COMPUTE_API)
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "ExpiredAuthenticationToken"


def test_token_for_another_audience_is_refused(emu, sdk, raw):
    # A cloud whose resource manager has another audience issues tokens ARM here will not take.
    emu.reset({"audience": "https://other.emulator.invalid/", "resource_groups": [{"name": RG}]})
    other = _credential(emu).get_token("https://other.emulator.invalid/.default").token
    emu.reset()
    emu.settings(time_scale=0.02, retry_after=0)
    reply = raw("GET", vm_id(sdk.subscription_id, JUMPBOX), auth=other, api_version=COMPUTE_API)
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"
    # After the reset the default audience is back: the metadata says so and its tokens work.
    assert _meta(emu, "2022-09-01").json()["authentication"]["audiences"] == [
        "https://management.emulator.invalid/"]
    assert raw("GET", vm_id(sdk.subscription_id, JUMPBOX), api_version=COMPUTE_API).status_code == 200


def test_control_api_needs_no_token(emu):
    reply = requests.get(emu.url + "/_emulator/settings", verify=emu.env["REQUESTS_CA_BUNDLE"], timeout=10)
    assert reply.status_code == 200
    assert reply.json()["time_scale"] == 0.02


def test_unknown_routes_need_a_token_too(emu, raw):
    reply = raw("GET", "/subscriptions/x/whatever", auth=False)
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "AuthenticationFailed"
    assert raw("GET", "/subscriptions/x/whatever").status_code == 404


def test_sdk_with_a_token_from_elsewhere(emu, sdk):
    """A client whose credential yields a token this cloud did not issue gets ClientAuthenticationError."""
    from azure.core.credentials import AccessToken
    from azure.mgmt.compute import ComputeManagementClient

    class Foreign:
        def get_token(self, *scopes, **kwargs):
            return AccessToken("eyJhbGciOiJub25lIn0.e30.", int(time.time()) + 3600)

    client = ComputeManagementClient(Foreign(), sdk.subscription_id, **sdk.kwargs)
    with pytest.raises(ClientAuthenticationError) as info:
        client.virtual_machines.get(RG, JUMPBOX)
    assert info.value.status_code == 401
    assert info.value.error.code == "InvalidAuthenticationToken"
