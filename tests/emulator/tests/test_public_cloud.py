"""What unmodified third-party clients (azure.azcollection, the Azure CLI) need to talk to the emulator as
if it were public Azure: extra certificate names, the classic management audience, MSAL instance
discovery, and Flexible VMSS-VM list items without provisioningState."""

from __future__ import annotations

import socket
import ssl

import requests

from armemu.launcher import Emulator

from _support import COMPUTE_API, FLEX, JUMPBOX, RG, vm_id

CORE = "https://management.core.windows.net/"


def _token_reply(emu, scope):
    return requests.post("%s/%s/oauth2/v2.0/token" % (emu.url, emu.env["AZURE_TENANT"]),
                         data={"grant_type": "client_credentials", "client_id": emu.env["AZURE_CLIENT_ID"],
                               "client_secret": emu.env["AZURE_SECRET"], "scope": scope},
                         verify=emu.env["REQUESTS_CA_BUNDLE"], timeout=10)


def test_management_core_audience_is_refused_unless_switched_on(emu, sdk, raw):
    refused = _token_reply(emu, CORE + "/.default")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_resource"
    emu.settings(accept_management_core_audience=True)
    # The Azure CLI's scope: the v1 resource id (trailing slash) plus /.default.
    reply = _token_reply(emu, CORE + "/.default")
    assert reply.status_code == 200
    token = reply.json()["access_token"]
    assert raw("GET", vm_id(sdk.subscription_id, JUMPBOX), auth=token, api_version=COMPUTE_API).status_code == 200
    # The cloud's own audience still works, and the metadata names both (its own first).
    assert raw("GET", vm_id(sdk.subscription_id, JUMPBOX), api_version=COMPUTE_API).status_code == 200
    meta = requests.get(emu.url + "/metadata/endpoints?api-version=2022-09-01",
                        verify=emu.env["REQUESTS_CA_BUNDLE"], timeout=10).json()
    assert meta["authentication"]["audiences"] == ["https://management.emulator.invalid/", CORE]
    # Switched off again, a token already issued for it is refused by ARM.
    emu.settings(accept_management_core_audience=False)
    reply = raw("GET", vm_id(sdk.subscription_id, JUMPBOX), auth=token, api_version=COMPUTE_API)
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"


def test_msal_instance_discovery(emu):
    host = emu.url.split("://", 1)[1]
    reply = requests.get(emu.url + "/common/discovery/instance",
                         params={"api-version": "1.1",
                                 "authorization_endpoint": "%s/%s/oauth2/v2.0/authorize" % (emu.url, "common")},
                         verify=emu.env["REQUESTS_CA_BUNDLE"], timeout=10)
    assert reply.status_code == 200
    body = reply.json()
    assert body["tenant_discovery_endpoint"] == emu.url + "/common/v2.0/.well-known/openid-configuration"
    assert body["metadata"] == [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}]
    other = requests.get(emu.url + "/common/discovery/instance",
                         params={"authorization_endpoint": "https://login.example.invalid/common/oauth2/authorize"},
                         verify=emu.env["REQUESTS_CA_BUNDLE"], timeout=10)
    assert other.status_code == 400 and other.json()["error"] == "invalid_instance"


def test_msal_with_instance_discovery_gets_a_token(emu, sdk):
    # MSAL validates an authority it does not know through instance discovery (for real clients at
    # login.microsoftonline.com; here pointed at the emulator so that nothing leaves the machine).
    import msal

    http = requests.Session()
    http.verify = emu.env["REQUESTS_CA_BUNDLE"]
    http.trust_env = False  # else REQUESTS_CA_BUNDLE in the environment would replace verify
    app = msal.ConfidentialClientApplication(
        emu.env["AZURE_CLIENT_ID"], client_credential=emu.env["AZURE_SECRET"],
        authority="%s/%s" % (emu.url, emu.env["AZURE_TENANT"]), http_client=http,
        instance_discovery=emu.url + "/common/discovery/instance")
    result = app.acquire_token_for_client([sdk.audience + "/.default"])
    assert result.get("access_token"), result
    paths = [entry["path"] for entry in emu.requests()]
    assert "/common/discovery/instance" in paths


def test_flex_vmss_vm_list_items_omit_provisioning_state(emu, sdk, raw):
    path = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachineScaleSets/%s/virtualMachines" % (
        sdk.subscription_id, RG, FLEX)
    items = raw("GET", path, api_version=COMPUTE_API).json()["value"]
    assert items and all("provisioningState" not in item["properties"] for item in items)
    assert all(item["instanceId"] == item["name"] for item in items)
    assert all(item["properties"]["virtualMachineResourceId"].endswith("/virtualMachines/" + item["name"])
               for item in items)
    emu.settings(flex_vmss_vm_list_provisioning_state=True)
    items = raw("GET", path, api_version=COMPUTE_API).json()["value"]
    assert {item["properties"]["provisioningState"] for item in items} == {"Succeeded"}


def test_extra_certificate_names(tmp_path):
    with Emulator(state_dir=str(tmp_path), cert_names=["management.azure.com", "login.microsoftonline.com"]) as emu:
        port = int(emu.url.rsplit(":", 1)[1])
        context = ssl.create_default_context(cafile=emu.env["REQUESTS_CA_BUNDLE"])
        for name in ("management.azure.com", "login.microsoftonline.com", "localhost"):
            # The certificate verifies for each name (connecting to the loopback address, naming the host).
            plain = socket.create_connection(("127.0.0.1", port), timeout=10)
            with context.wrap_socket(plain, server_hostname=name) as tls:
                names = [value for kind, value in tls.getpeercert()["subjectAltName"] if kind == "DNS"]
            assert name in names
        with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
            try:
                context.wrap_socket(plain, server_hostname="management.example.invalid")
            except ssl.SSLCertVerificationError:
                pass
            else:
                raise AssertionError("a name not on the certificate was accepted")
