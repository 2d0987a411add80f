# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import http.server
import json
import ssl
import threading
import types

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils import _auth
from ansible_collections.azure_flex.vmss.plugins.module_utils._auth import (
    CloudEndpoints,
    build_credential,
    cloud_metadata_url,
    known_cloud,
    parse_cloud_metadata,
    resolve_auth_settings,
    resolve_cloud,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import AzureFlexError, InvalidInputError

SUB = "11111111-2222-3333-4444-555555555555"
OTHER_SUB = "99999999-8888-7777-6666-555555555555"
STACK_URL = "https://management.local.azurestack.external"

MODERN_METADATA = [
    {
        "name": "AzureCloud",
        "resourceManager": "https://management.azure.com/",
        "authentication": {
            "loginEndpoint": "https://login.microsoftonline.com",
            "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "suffixes": {"storage": "core.windows.net"},
    },
    {
        "name": "PrivateCloud",
        "resourceManager": "https://arm.private.example/",
        "authentication": {
            "loginEndpoint": "https://login.private.example/",
            "audiences": ["https://arm.private.example/"],
            "tenant": "common",
            "identityProvider": "AAD",
        },
    },
]

LEGACY_STACK_METADATA = {
    "galleryEndpoint": "https://portal.local.azurestack.external:30015/",
    "graphEndpoint": "https://graph.local.azurestack.external/",
    "portalEndpoint": "https://portal.local.azurestack.external/",
    "authentication": {
        "loginEndpoint": "https://adfs.local.azurestack.external/adfs",
        "audiences": ["https://management.adfs.azurestack.local/4de154de-f8a8-4017-af41-df619da68155"],
    },
}


# -- clouds -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, resource_manager, scope", [
    ("AzureCloud", "https://management.azure.com", "https://management.azure.com/.default"),
    ("azurechinacloud", "https://management.chinacloudapi.cn", "https://management.chinacloudapi.cn/.default"),
    ("AzureUSGovernment", "https://management.usgovcloudapi.net", "https://management.usgovcloudapi.net/.default"),
])
def test_known_clouds(name, resource_manager, scope):
    cloud = known_cloud(name)

    assert cloud.resource_manager == resource_manager
    assert cloud.token_scope == scope
    assert not cloud.uses_adfs


def test_modern_metadata_picks_the_entry_for_the_url():
    cloud = parse_cloud_metadata(MODERN_METADATA, "https://arm.private.example")

    assert cloud.name == "PrivateCloud"
    assert cloud.resource_manager == "https://arm.private.example"
    assert cloud.login_endpoint == "https://login.private.example"
    assert cloud.authority_host == "https://login.private.example"
    # The audience is used as published; a trailing slash gives the v1-resource style scope.
    assert cloud.token_scope == "https://arm.private.example//.default"


def test_modern_metadata_with_a_single_entry_uses_it_whatever_the_url():
    cloud = parse_cloud_metadata(MODERN_METADATA[1:], "https://127.0.0.1:8443")

    assert cloud.resource_manager == "https://arm.private.example"


def test_modern_metadata_without_a_match_names_the_clouds():
    with pytest.raises(InvalidInputError) as caught:
        parse_cloud_metadata(MODERN_METADATA, "https://elsewhere.example")

    assert "AzureCloud, PrivateCloud" in caught.value.msg


def test_legacy_azure_stack_metadata_uses_the_url_as_resource_manager():
    cloud = parse_cloud_metadata(LEGACY_STACK_METADATA, STACK_URL + "/")

    assert cloud.resource_manager == STACK_URL
    assert cloud.audience == "https://management.adfs.azurestack.local/4de154de-f8a8-4017-af41-df619da68155"
    assert cloud.token_scope == cloud.audience + "/.default"
    assert cloud.authority_host == "https://adfs.local.azurestack.external"
    assert cloud.uses_adfs


@pytest.mark.parametrize("document", [
    {"galleryEndpoint": "https://x/"},
    {"authentication": {"loginEndpoint": "https://login.example"}},
    {"authentication": {"loginEndpoint": "https://login.example", "audiences": []}},
    {"authentication": {"loginEndpoint": "http://login.example", "audiences": ["https://a/"]}},
    [{"name": "x", "resourceManager": "http://arm.example", "authentication": {
        "loginEndpoint": "https://login.example", "audiences": ["https://a/"]}}],
    "not json structure",
])
def test_unusable_metadata_is_an_input_error(document):
    with pytest.raises(InvalidInputError):
        parse_cloud_metadata(document, "https://arm.example")


@pytest.mark.parametrize("url", [
    "https://arm.example", "https://arm.example/", "https://arm.example/metadata/endpoints"])
def test_metadata_url(url):
    assert cloud_metadata_url(url) == "https://arm.example/metadata/endpoints?api-version=2022-09-01"


def test_resolve_cloud_reads_metadata_for_a_url():
    calls = []

    def fetch(url, ca_bundle):
        calls.append((url, ca_bundle))
        return LEGACY_STACK_METADATA

    cloud = resolve_cloud(STACK_URL, ca_bundle="/etc/ca.pem", fetch_json=fetch)

    assert calls == [(STACK_URL + "/metadata/endpoints?api-version=2022-09-01", "/etc/ca.pem")]
    assert cloud.resource_manager == STACK_URL


def test_resolve_cloud_defaults_to_the_public_cloud():
    assert resolve_cloud(None).name == "AzureCloud"


@pytest.mark.parametrize("value", ["AzureGermany", "http://arm.example", "ftp://arm.example"])
def test_resolve_cloud_refuses_unknown_names_and_plain_http(value):
    with pytest.raises(InvalidInputError):
        resolve_cloud(value, fetch_json=lambda url, ca: pytest.fail("must not fetch"))


# -- cloud metadata over real TLS (loopback only) ---------------------------------------------

class MetadataServer:
    """An HTTPS server on 127.0.0.1 serving one metadata document, with a throw-away CA."""

    def __init__(self, tmp_path, document):
        trustme = pytest.importorskip("trustme")
        authority = trustme.CA()
        certificate = authority.issue_cert("127.0.0.1")
        self.ca_path = str(tmp_path / "ca.pem")
        authority.cert_pem.write_to_path(self.ca_path)
        self.requests = []
        body = json.dumps(document).encode()
        requests_seen = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # pylint: disable=invalid-name
                requests_seen.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep test output quiet
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        certificate.configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = "https://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_metadata_is_fetched_over_tls_verified_with_the_ca_bundle(tmp_path):
    server = MetadataServer(tmp_path, LEGACY_STACK_METADATA)
    try:
        cloud = resolve_cloud(server.url, ca_bundle=server.ca_path)
    finally:
        server.close()

    assert server.requests == ["/metadata/endpoints?api-version=2022-09-01"]
    assert cloud.resource_manager == server.url
    assert cloud.uses_adfs


def test_metadata_from_an_untrusted_server_is_refused(tmp_path):
    server = MetadataServer(tmp_path, LEGACY_STACK_METADATA)
    try:
        with pytest.raises(AzureFlexError) as caught:
            resolve_cloud(server.url)
    finally:
        server.close()

    assert "Could not read the cloud metadata" in caught.value.msg


# -- settings resolution ----------------------------------------------------------------------

def params(**values):
    base = dict(auth_source="auto", subscription_id=None, tenant=None, client_id=None, secret=None, profile=None,
                cloud_environment=None, ca_bundle=None)
    base.update(values)
    return base


@pytest.fixture
def credential_file(tmp_path):
    path = tmp_path / "credentials"
    path.write_text(
        "[default]\n"
        "subscription_id = %s\nclient_id = default-app\nsecret = default-secret\ntenant = default-tenant\n\n"
        "[stack]\n"
        "subscription_id = %s\nclient_id = stack-app\nsecret = stack-secret\ntenant = stack-tenant\n"
        "cloud_environment = %s\n\n"
        "[incomplete]\nsubscription_id = %s\nclient_id = app-only\n" % (SUB, OTHER_SUB, STACK_URL, SUB)
    )
    return str(path)


@pytest.fixture
def no_file(tmp_path):
    return str(tmp_path / "does-not-exist")


AWX_ENV = {"AZURE_SUBSCRIPTION_ID": SUB, "AZURE_CLIENT_ID": "env-app", "AZURE_SECRET": "env-secret",
           "AZURE_TENANT": "env-tenant"}


def test_awx_environment_gives_a_service_principal(no_file):
    settings = resolve_auth_settings(params(), AWX_ENV, no_file)

    assert settings.source == "service_principal"
    assert (settings.client_id, settings.secret, settings.tenant, settings.subscription_id) == (
        "env-app", "env-secret", "env-tenant", SUB)
    assert settings.cloud_environment == "AzureCloud"


def test_azure_identity_environment_names_are_read_too(no_file):
    environ = {"AZURE_SUBSCRIPTION_ID": SUB, "AZURE_CLIENT_ID": "app", "AZURE_CLIENT_SECRET": "s",
               "AZURE_TENANT_ID": "t"}

    settings = resolve_auth_settings(params(), environ, no_file)

    assert (settings.source, settings.secret, settings.tenant) == ("service_principal", "s", "t")


def test_task_options_override_the_environment_field_by_field(no_file):
    settings = resolve_auth_settings(params(client_id="task-app", secret="task-secret"), AWX_ENV, no_file)

    assert (settings.client_id, settings.secret, settings.tenant) == ("task-app", "task-secret", "env-tenant")


def test_explicit_secret_beats_a_profile_from_the_environment(credential_file):
    environ = dict(AZURE_PROFILE="stack", AZURE_CLIENT_ID="env-app", AZURE_TENANT="env-tenant")

    settings = resolve_auth_settings(params(secret="task-secret", subscription_id=SUB), environ, credential_file)

    assert settings.source == "service_principal"


def test_explicit_profile_beats_the_environment_service_principal(credential_file):
    settings = resolve_auth_settings(params(profile="stack"), AWX_ENV, credential_file)

    assert settings.source == "credential_file"
    assert (settings.client_id, settings.secret, settings.tenant) == ("stack-app", "stack-secret", "stack-tenant")
    assert settings.subscription_id == OTHER_SUB
    assert settings.cloud_environment == STACK_URL
    assert settings.profile == "stack"


def test_environment_service_principal_beats_the_default_profile(credential_file):
    assert resolve_auth_settings(params(), AWX_ENV, credential_file).source == "service_principal"


def test_default_profile_is_used_without_other_credentials(credential_file):
    settings = resolve_auth_settings(params(), {}, credential_file)

    assert (settings.source, settings.profile, settings.client_id) == ("credential_file", "default", "default-app")


def test_profile_named_in_the_environment_is_used(credential_file):
    settings = resolve_auth_settings(params(), {"AZURE_PROFILE": "stack"}, credential_file)

    assert (settings.profile, settings.subscription_id) == ("stack", OTHER_SUB)


@pytest.mark.parametrize("task_params, environ", [
    (params(profile="nope"), {}),
    (params(), {"AZURE_PROFILE": "nope"}),
    (params(auth_source="credential_file", profile="nope"), {}),
])
def test_a_named_profile_must_exist(credential_file, task_params, environ):
    with pytest.raises(InvalidInputError) as caught:
        resolve_auth_settings(task_params, environ, credential_file)

    assert "'nope'" in caught.value.msg


def test_an_incomplete_profile_is_refused(credential_file):
    with pytest.raises(InvalidInputError) as caught:
        resolve_auth_settings(params(profile="incomplete"), {}, credential_file)

    assert "secret, tenant" in caught.value.msg


def test_subscription_option_overrides_the_profile(credential_file):
    settings = resolve_auth_settings(params(profile="stack", subscription_id=SUB), {}, credential_file)

    assert settings.subscription_id == SUB


def test_workload_identity_is_detected_from_the_token_file(tmp_path, no_file):
    token = tmp_path / "token"
    token.write_text("eyJ...")
    environ = {"AZURE_SUBSCRIPTION_ID": SUB, "AZURE_CLIENT_ID": "app", "AZURE_TENANT_ID": "t",
               "AZURE_FEDERATED_TOKEN_FILE": str(token),
               "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/"}

    settings = resolve_auth_settings(params(), environ, no_file)

    assert settings.source == "workload_identity"
    assert settings.federated_token_file == str(token)
    assert settings.authority_host == "https://login.microsoftonline.com/"


def test_workload_identity_needs_an_existing_token_file(no_file):
    environ = {"AZURE_SUBSCRIPTION_ID": SUB, "AZURE_CLIENT_ID": "app", "AZURE_TENANT_ID": "t",
               "AZURE_FEDERATED_TOKEN_FILE": "/nonexistent/token"}

    with pytest.raises(InvalidInputError):
        resolve_auth_settings(params(), environ, no_file)


def test_without_credentials_auto_falls_back_to_managed_identity_then_cli(no_file):
    settings = resolve_auth_settings(params(), {"AZURE_SUBSCRIPTION_ID": SUB}, no_file)

    assert settings.source == "msi_or_cli"


@pytest.mark.parametrize("auth_source, resolved", [
    ("msi", "msi"), ("cli", "cli"), ("env", "service_principal")])
def test_explicit_sources(no_file, auth_source, resolved):
    settings = resolve_auth_settings(params(auth_source=auth_source), AWX_ENV, no_file)

    assert settings.source == resolved


def test_explicit_service_principal_names_what_is_missing(no_file):
    with pytest.raises(InvalidInputError) as caught:
        resolve_auth_settings(params(auth_source="env"), {"AZURE_SUBSCRIPTION_ID": SUB, "AZURE_CLIENT_ID": "a"},
                              no_file)

    assert "secret (AZURE_SECRET or AZURE_CLIENT_SECRET)" in caught.value.msg
    assert "tenant (AZURE_TENANT or AZURE_TENANT_ID)" in caught.value.msg


def test_missing_subscription_is_an_error_never_a_guess(no_file):
    environ = dict(AWX_ENV)
    del environ["AZURE_SUBSCRIPTION_ID"]

    with pytest.raises(InvalidInputError) as caught:
        resolve_auth_settings(params(), environ, no_file)

    assert "No subscription ID" in caught.value.msg


def test_subscription_must_be_a_guid(no_file):
    with pytest.raises(InvalidInputError):
        resolve_auth_settings(params(subscription_id="my-sub"), AWX_ENV, no_file)


def test_cloud_environment_precedence(credential_file):
    environ = dict(AWX_ENV, AZURE_CLOUD_ENVIRONMENT="AzureChinaCloud")

    assert resolve_auth_settings(params(), environ, credential_file).cloud_environment == "AzureChinaCloud"
    assert resolve_auth_settings(params(cloud_environment="AzureUSGovernment"), environ,
                                 credential_file).cloud_environment == "AzureUSGovernment"
    assert resolve_auth_settings(params(profile="stack"), environ, credential_file).cloud_environment == STACK_URL


def test_ca_bundle_precedence(tmp_path, no_file):
    option, requests_bundle, ssl_file = (tmp_path / name for name in ("option.pem", "requests.pem", "ssl.pem"))
    for path in (option, requests_bundle, ssl_file):
        path.write_text("pem")
    environ = dict(AWX_ENV, REQUESTS_CA_BUNDLE=str(requests_bundle), SSL_CERT_FILE=str(ssl_file))

    assert resolve_auth_settings(params(ca_bundle=str(option)), environ, no_file).ca_bundle == str(option)
    assert resolve_auth_settings(params(), environ, no_file).ca_bundle == str(requests_bundle)
    del environ["REQUESTS_CA_BUNDLE"]
    assert resolve_auth_settings(params(), environ, no_file).ca_bundle == str(ssl_file)


def test_a_missing_ca_bundle_is_an_error(no_file):
    with pytest.raises(InvalidInputError) as caught:
        resolve_auth_settings(params(), dict(AWX_ENV, REQUESTS_CA_BUNDLE="/nonexistent/ca.pem"), no_file)

    assert "REQUESTS_CA_BUNDLE" in caught.value.msg


def test_describe_never_contains_the_secret(no_file):
    described = resolve_auth_settings(params(), AWX_ENV, no_file).describe()

    assert "env-secret" not in json.dumps(described)


def test_a_broken_credential_file_is_an_input_error(tmp_path):
    path = tmp_path / "credentials"
    path.write_text("no section header\n")

    with pytest.raises(InvalidInputError):
        resolve_auth_settings(params(), {"AZURE_SUBSCRIPTION_ID": SUB}, str(path))


SECRET = "S3cr3t-Value-Never-Shown"


@pytest.mark.parametrize("content, where", [
    ("[default]\nclient_id = app\nsecret %s\ntenant = t\n" % SECRET, "line 3 is not 'key = value'"),
    ("secret = %s\n[default]\n" % SECRET, "line 1 comes before any [profile] section header"),
    ("%s\n" % SECRET, "line 1 comes before any [profile] section header"),
    ("[default]\nsecret = %s\nsecret = %s-again\n" % (SECRET, SECRET), "a key is repeated within its profile at line 3"),
    ("[default]\nsecret = %s\n[default]\n" % SECRET, "a profile section is repeated at line 3"),
    ("[default]\n%s\n%s2\n" % (SECRET, SECRET), "lines 2, 3 are not 'key = value'"),
    ("[%s\nsecret = x\n" % SECRET, "line 1 comes before any [profile] section header"),
])
def test_no_value_of_a_malformed_credential_file_appears_in_the_error(tmp_path, content, where):
    """F2: configparser's messages quote the bad line, which can be the secret itself."""
    path = tmp_path / "credentials"
    path.write_text(content)

    with pytest.raises(InvalidInputError) as caught:
        resolve_auth_settings(params(auth_source="credential_file"), {"AZURE_SUBSCRIPTION_ID": SUB}, str(path))

    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value.to_dict())
    assert where in caught.value.msg
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_credential_file_that_is_not_utf8_is_named_without_its_content(tmp_path):
    path = tmp_path / "credentials"
    path.write_bytes(b"[default]\nsecret = " + SECRET.encode() + b"\xff\xfe\n")
    with pytest.raises(InvalidInputError) as caught:
        resolve_auth_settings(params(auth_source="credential_file"), {"AZURE_SUBSCRIPTION_ID": SUB}, str(path))
    assert "is not UTF-8 text" in caught.value.msg and SECRET not in caught.value.msg


def test_an_unreadable_credential_file_is_named_without_its_content(tmp_path, monkeypatch):
    path = tmp_path / "credentials"
    path.write_text("[default]\nsecret = %s\n" % SECRET)

    def denied(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_auth, "open", denied, raising=False)
    with pytest.raises(InvalidInputError) as caught:
        resolve_auth_settings(params(auth_source="credential_file"), {"AZURE_SUBSCRIPTION_ID": SUB}, str(path))
    assert caught.value.msg == "Could not read the credential file %s: Permission denied" % path


@pytest.mark.parametrize("key", ["subscription_id", "cloud_environment"])
def test_an_unusable_value_from_the_credential_file_is_refused_without_showing_it(tmp_path, key):
    path = tmp_path / "credentials"
    values = {"subscription_id": SUB, "client_id": "app", "secret": "s", "tenant": "t", key: SECRET}
    path.write_text("[default]\n" + "".join("%s = %s\n" % item for item in values.items()))

    with pytest.raises(InvalidInputError) as caught:
        resolve_auth_settings(params(auth_source="credential_file"), {}, str(path))

    assert "%s in profile 'default' of the credential file" % key in caught.value.msg
    assert SECRET not in caught.value.msg


# -- credential objects -----------------------------------------------------------------------

class RecordingIdentity:
    """Stands in for the azure.identity module and records how credentials are built."""

    def __init__(self):
        self.built = []
        for name in ("ClientSecretCredential", "WorkloadIdentityCredential", "ManagedIdentityCredential",
                     "AzureCliCredential", "ChainedTokenCredential"):
            setattr(self, name, self._recorder(name))

    def _recorder(self, name):
        def build(*args, **kwargs):
            self.built.append((name, args, kwargs))
            return types.SimpleNamespace(kind=name, args=args, kwargs=kwargs)
        return build


@pytest.fixture
def identity(monkeypatch):
    recorder = RecordingIdentity()
    monkeypatch.setattr(_auth, "_import_identity", lambda: recorder)
    return recorder


def settings_for(source, **extra):
    values = dict(source=source, subscription_id=SUB, cloud_environment="AzureCloud", tenant="t", client_id="app",
                  secret="s")
    values.update(extra)
    return _auth.AuthSettings(**values)


def test_service_principal_in_the_public_cloud(identity):
    credential = build_credential(settings_for("service_principal"), known_cloud("AzureCloud"))

    assert credential.kind == "ClientSecretCredential"
    assert credential.args == ("t", "app", "s")
    assert credential.kwargs == {"authority": "https://login.microsoftonline.com", "disable_instance_discovery": False}


def test_service_principal_in_a_private_cloud_skips_instance_discovery_and_uses_the_ca(identity):
    cloud = parse_cloud_metadata(MODERN_METADATA, "https://arm.private.example")

    credential = build_credential(settings_for("service_principal", ca_bundle="/ca.pem"), cloud)

    assert credential.kwargs == {"authority": "https://login.private.example", "disable_instance_discovery": True,
                                 "connection_verify": "/ca.pem"}


def test_azure_stack_adfs_uses_the_adfs_tenant(identity):
    cloud = parse_cloud_metadata(LEGACY_STACK_METADATA, STACK_URL)

    credential = build_credential(settings_for("credential_file", tenant=None), cloud)

    assert credential.args[0] == "adfs"
    assert credential.kwargs["authority"] == "https://adfs.local.azurestack.external"


def test_authority_host_from_the_environment_wins(identity):
    credential = build_credential(settings_for("workload_identity", federated_token_file="/token",
                                               authority_host="https://login.microsoftonline.us"),
                                  known_cloud("AzureCloud"))

    assert credential.kind == "WorkloadIdentityCredential"
    assert credential.kwargs == {"tenant_id": "t", "client_id": "app", "token_file_path": "/token",
                                 "authority": "https://login.microsoftonline.us"}


def test_managed_identity_cli_and_the_fallback_chain(identity):
    cloud = known_cloud("AzureCloud")

    assert build_credential(settings_for("msi", client_id=None), cloud).kwargs == {"client_id": None}
    assert build_credential(settings_for("cli", tenant=None), cloud).kwargs == {}
    assert build_credential(settings_for("cli"), cloud).kwargs == {"tenant_id": "t"}
    chain = build_credential(settings_for("msi_or_cli"), cloud)
    assert chain.kind == "ChainedTokenCredential"
    assert [link.kind for link in chain.args] == ["ManagedIdentityCredential", "AzureCliCredential"]


def test_real_azure_identity_accepts_the_arguments(tmp_path):
    token = tmp_path / "token"
    token.write_text("eyJ...")
    private_cloud = parse_cloud_metadata(MODERN_METADATA, "https://arm.private.example")
    for settings in (settings_for("service_principal"), settings_for("workload_identity", federated_token_file=str(token)),
                     settings_for("msi"), settings_for("cli"), settings_for("msi_or_cli")):
        assert build_credential(settings, private_cloud) is not None


def test_invalid_tenant_is_an_input_error():
    with pytest.raises(InvalidInputError):
        build_credential(settings_for("service_principal", tenant="not a tenant!"), known_cloud("AzureCloud"))


def test_cloud_endpoints_to_dict():
    cloud = CloudEndpoints("X", "https://arm.x/", "https://login.x/", "https://arm.x/")

    assert cloud.to_dict() == {"name": "X", "resource_manager": "https://arm.x", "login_endpoint": "https://login.x",
                               "audience": "https://arm.x/", "identity_provider": "AAD"}


# -- certificate service principals ---------------------------------------------------------------------

def _certificate_files(tmp_path, password=None):
    """A PEM key+certificate file (optionally with an encrypted key) and a PKCS#12 file of the same pair."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unit-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    encryption = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    pem = tmp_path / "sp.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
                    + certificate.public_bytes(serialization.Encoding.PEM))
    pfx = tmp_path / "sp.pfx"
    pfx.write_bytes(pkcs12.serialize_key_and_certificates(b"sp", key, certificate, None, encryption))
    return str(pem), str(pfx), certificate.fingerprint(hashes.SHA1()).hex().upper()


CERT_ENV = {"AZURE_SUBSCRIPTION_ID": SUB, "AZURE_CLIENT_ID": "cert-app", "AZURE_TENANT": "cert-tenant"}


def test_a_certificate_option_gives_a_certificate_service_principal(tmp_path, no_file):
    pem, _pfx, _thumbprint = _certificate_files(tmp_path)

    settings = resolve_auth_settings(params(client_certificate_path=pem), CERT_ENV, no_file)

    assert (settings.source, settings.client_id, settings.tenant, settings.certificate_path) == (
        "certificate", "cert-app", "cert-tenant", pem)


@pytest.mark.parametrize("variable", ["AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_X509_CERTIFICATE_PATH"])
def test_a_certificate_in_the_environment_is_used_when_there_is_no_secret(tmp_path, no_file, variable):
    pem, _pfx, _thumbprint = _certificate_files(tmp_path)
    environ = dict(CERT_ENV, **{variable: pem})

    assert resolve_auth_settings(params(), environ, no_file).source == "certificate"
    assert resolve_auth_settings(params(auth_source="env"), environ, no_file).source == "certificate"
    # A secret in the environment wins, as the precedence documents.
    assert resolve_auth_settings(params(), dict(environ, AZURE_SECRET="s"), no_file).source == "service_principal"


def test_a_missing_certificate_file_is_an_input_error(no_file):
    with pytest.raises(InvalidInputError) as caught:
        resolve_auth_settings(params(client_certificate_path="/nonexistent/sp.pem"), CERT_ENV, no_file)

    assert "/nonexistent/sp.pem does not exist" in caught.value.msg


@pytest.mark.parametrize("kind", ["pem", "pfx"])
def test_the_certificate_is_read_and_its_thumbprint_checked(tmp_path, kind):
    pem, pfx, thumbprint = _certificate_files(tmp_path, password="pw")
    path = pem if kind == "pem" else pfx

    assert _auth.read_client_certificate(path, "pw", thumbprint.lower()) == open(path, "rb").read()
    with pytest.raises(InvalidInputError) as caught:
        _auth.read_client_certificate(path, "pw", "00" * 20)
    assert "has thumbprint %s, not %s" % (thumbprint, "00" * 20) in caught.value.msg


def test_a_wrong_password_or_a_certificate_without_its_key_fails_without_showing_the_file(tmp_path):
    pem, _pfx, _thumbprint = _certificate_files(tmp_path, password="right")
    with pytest.raises(InvalidInputError) as caught:
        _auth.read_client_certificate(pem, "wrong")
    assert "must hold the private key and the certificate" in caught.value.msg
    assert "BEGIN" not in caught.value.msg

    only_certificate = tmp_path / "cert-only.pem"
    only_certificate.write_text(open(pem).read().split("-----END ENCRYPTED PRIVATE KEY-----\n")[1])
    with pytest.raises(InvalidInputError):
        _auth.read_client_certificate(str(only_certificate))


def test_build_credential_gives_a_certificate_credential(tmp_path, no_file):
    from azure.identity import CertificateCredential

    pem, _pfx, thumbprint = _certificate_files(tmp_path)
    settings = resolve_auth_settings(params(client_certificate_path=pem, thumbprint=thumbprint), CERT_ENV, no_file)

    credential = build_credential(settings, known_cloud("AzureCloud"))

    assert isinstance(credential, CertificateCredential)
