"""Identity: the cloud metadata endpoint, an Entra ID (AAD) style authority, and token checks.

azure-identity's ``ClientSecretCredential(authority=<emulator>, disable_instance_discovery=True)``
reads ``/{tenant}/v2.0/.well-known/openid-configuration`` and posts to the
token endpoint it names (azure-facts.md §4). Tokens are HMAC-signed JWTs
carrying the audience they were issued for; ARM accepts only tokens for its own
audience, so a client that asks for the public cloud's scope is refused exactly
as Azure Stack Hub would refuse it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from urllib.parse import parse_qsl

from .errors import ArmError
from .http import Reply, ok, route

SECRET = os.urandom(32)
DEFAULT_AUDIENCE = "https://management.emulator.invalid/"
# Public ARM also takes tokens for its classic (v1) resource id, which the Azure CLI asks for
# (setting accept_management_core_audience).
MANAGEMENT_CORE_AUDIENCE = "https://management.core.windows.net/"
# The aliases Entra ID's instance discovery returns for the public cloud's authority.
PUBLIC_AUTHORITY_ALIASES = ["login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"]


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(audience, tenant_id, client_id, lifetime):
    issued = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"aud": audience, "iss": "https://sts.emulator.invalid/%s/" % tenant_id, "tid": tenant_id,
              "appid": client_id, "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, client_id)),
              "iat": issued, "nbf": issued, "exp": issued + int(lifetime)}
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    signature = hmac.new(SECRET, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def read_token(token):
    """The claims of a token this emulator issued, or None if it is not one."""
    try:
        head, body, sig = token.split(".")
        expected = hmac.new(SECRET, (head + "." + body).encode("ascii"), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(sig)):
            return None
        return json.loads(_unb64(body))
    except (ValueError, TypeError):
        return None


def _same_audience(a, b):
    return (a or "").rstrip("/").lower() == (b or "").rstrip("/").lower()


def accepted_audiences(state):
    """The token audiences this cloud's ARM accepts: its own, and public ARM's classic one when switched on."""
    audiences = [state.audience]
    if state.settings["accept_management_core_audience"] and not _same_audience(state.audience, MANAGEMENT_CORE_AUDIENCE):
        audiences.append(MANAGEMENT_CORE_AUDIENCE)
    return audiences


def _accepted(state, audience):
    return any(_same_audience(audience, allowed) for allowed in accepted_audiences(state))


def _unauthorized(code, message, description):
    # As ARM: a Bearer challenge naming the authority (no claims, so the SDK does not retry).
    challenge = 'Bearer authorization_uri="%s", error="invalid_token", error_description="%s"' % (
        "https://login.emulator.invalid/", description)
    return ArmError(401, code, message, headers={"WWW-Authenticate": challenge})


def authenticate(state, header):
    """Raise ARM's 401 unless the Authorization header holds a valid token for this cloud."""
    if not header:
        raise _unauthorized("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.",
                            "The authentication failed because of missing 'Authorization' header.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("AuthenticationFailed",
                            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
                            "The authentication failed because of invalid 'Authorization' header.")
    claims = read_token(token.strip())
    if claims is None:
        raise _unauthorized("InvalidAuthenticationToken", "The access token is invalid.",
                            "The access token is invalid.")
    if claims.get("exp", 0) < time.time():
        raise _unauthorized("ExpiredAuthenticationToken",
                            "The access token expiry UTC time '%s' is earlier than current UTC time."
                            % time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(claims.get("exp", 0))),
                            "The access token has expired.")
    if not _accepted(state, claims.get("aud")):
        raise _unauthorized("InvalidAuthenticationTokenAudience",
                            "The access token has been obtained for wrong audience or resource '%s'. It should "
                            "exactly match with one of the allowed audiences '%s'."
                            % (claims.get("aud"), "','".join(accepted_audiences(state))),
                            "The access token has been obtained for wrong audience.")
    return claims


# -- cloud metadata -------------------------------------------------------------

@route("GET", "/metadata/endpoints", family="metadata", auth=False)
def metadata_endpoints(ctx):
    """Cloud endpoints, in the shape each api-version has on Azure.

    * 2015-01-01: the legacy Azure Stack object (``galleryEndpoint``, ``authentication``; no
      ``resourceManager``), which msrestazure's ``get_cloud_from_metadata_endpoint`` reads;
    * 2022-09-01: one object, the cloud this Resource Manager serves, which ``az cloud register
      --endpoint-resource-manager`` reads (azure-cli ``command_modules/cloud/custom.py``
      ``_populate_from_metadata_endpoint`` passes the body to ``_arm_to_cli_mapper`` as one dict);
    * the versions in between (2019-05-01, ...): the list of clouds that azure-cli-core's
      ``ARM_CLOUD_METADATA_URL`` loader iterates (``cloud.py`` ``_convert_arm_to_cli``).
    """
    base = ctx.base_url
    audiences = accepted_audiences(ctx.state)
    if ctx.api_version == "2015-01-01":
        return ok({
            "galleryEndpoint": base + "/gallery/",
            "graphEndpoint": base + "/graph/",
            "portalEndpoint": base + "/portal/",
            "authentication": {"loginEndpoint": base + "/", "audiences": audiences},
        })
    cloud = {
        "name": ctx.state.cloud_name,
        "portal": base + "/portal",
        "resourceManager": base + "/",
        "authentication": {"loginEndpoint": base + "/", "audiences": audiences,
                           "tenant": ctx.state.tenant_id, "identityProvider": "AAD"},
        "graph": base + "/graph/",
        "graphAudience": base + "/graph/",
        "media": base + "/media/",
        "activeDirectoryDataLake": "",
        "batch": "",
        "gallery": base + "/gallery/",
        "sqlManagement": "",
        "vmImageAliasDoc": "",
        "microsoftGraphResourceId": base + "/graph/",
        "suffixes": {"storage": "core.emulator.invalid", "keyVaultDns": "vault.emulator.invalid",
                     "acrLoginServer": "azurecr.emulator.invalid", "sqlServerHostname": "database.emulator.invalid"},
    }
    if ctx.api_version >= "2022-09-01":
        return ok(cloud)
    return ok([cloud])


# -- Entra ID authority -----------------------------------------------------------

def _aad_error(status, error, code, description):
    trace = str(uuid.uuid4())
    return Reply(status, {
        "error": error,
        "error_description": "AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s"
                             % (code, description, trace, uuid.uuid4(), time.strftime("%Y-%m-%d %H:%M:%SZ")),
        "error_codes": [code],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ"),
        "trace_id": trace,
        "correlation_id": str(uuid.uuid4()),
        "error_uri": "https://login.emulator.invalid/error?code=%d" % code,
    })


def _known_tenant(state, tenant):
    return tenant.lower() in (state.tenant_id.lower(), "organizations", "common")


@route("GET", "/{tenant}/discovery/instance", family=None, auth=False)
def instance_discovery(ctx):
    """Entra ID instance discovery (MSAL asks ``/common/discovery/instance?authorization_endpoint=...``).

    Answers for this authority: its tenant discovery document and its aliases (the public cloud's
    alias group when it serves as login.microsoftonline.com), or ``invalid_instance`` for another host.
    """
    endpoint = ctx.query.get("authorization_endpoint") or ""
    host = ctx.base_url.split("://", 1)[1]
    parts = endpoint.split("/")
    # MSAL names the authority by host name alone (no port).
    if len(parts) < 4 or parts[2].split(":")[0].lower() != host.split(":")[0].lower():
        return _aad_error(400, "invalid_instance", 50049, "Unknown or invalid instance.")
    tenant = parts[3] or "common"
    aliases = PUBLIC_AUTHORITY_ALIASES if host.lower() in PUBLIC_AUTHORITY_ALIASES else [host]
    return ok({
        "tenant_discovery_endpoint": "%s/%s/v2.0/.well-known/openid-configuration" % (ctx.base_url, tenant),
        "api-version": "1.1",
        "metadata": [{"preferred_network": aliases[0], "preferred_cache": aliases[1] if len(aliases) > 1 else aliases[0],
                      "aliases": aliases}],
    })


@route("GET", "/{tenant}/v2.0/.well-known/openid-configuration", family=None, auth=False)
def openid_configuration(ctx):
    tenant = ctx.param("tenant")
    if not _known_tenant(ctx.state, tenant):
        return _aad_error(400, "invalid_tenant", 90002, "Tenant '%s' not found." % tenant)
    base = ctx.base_url + "/" + tenant
    return ok({
        "token_endpoint": base + "/oauth2/v2.0/token",
        "authorization_endpoint": base + "/oauth2/v2.0/authorize",
        "device_authorization_endpoint": base + "/oauth2/v2.0/devicecode",
        "issuer": base + "/v2.0",
        "jwks_uri": base + "/discovery/v2.0/keys",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "tenant_region_scope": "EU",
    })


@route("POST", "/{tenant}/oauth2/v2.0/token", family=None, auth=False)
def token(ctx):
    state = ctx.state
    tenant = ctx.param("tenant")
    form = dict(parse_qsl((ctx.raw_body or b"").decode("utf-8"), keep_blank_values=True))
    if not _known_tenant(state, tenant):
        return _aad_error(400, "invalid_request", 90002, "Tenant '%s' not found." % tenant)
    if form.get("grant_type") != "client_credentials":
        return _aad_error(400, "unsupported_grant_type", 70003,
                          "The app requested an unsupported grant type '%s'." % form.get("grant_type"))
    client_id = form.get("client_id", "")
    client = state.clients.get(client_id.lower())
    if client is None:
        return _aad_error(400, "unauthorized_client", 700016,
                          "Application with identifier '%s' was not found in the directory '%s'."
                          % (client_id, tenant))
    if "client_assertion" in form:
        if client.get("certificates"):
            refusal = _check_certificate_assertion(form.get("client_assertion", ""), client, client_id, tenant)
            if refusal is not None:
                return refusal
        elif not client.get("federated") or not form.get("client_assertion"):
            return _aad_error(401, "invalid_client", 700213,
                              "No matching federated identity record found for presented assertion.")
    elif not client.get("secret") or not hmac.compare_digest(form.get("client_secret", ""), client["secret"]):
        return _aad_error(401, "invalid_client", 7000215,
                          "Invalid client secret provided. Ensure the secret being sent in the request is the "
                          "client secret value, not the client secret ID, for a secret added to app '%s'." % client_id)
    scopes = form.get("scope", "").split()
    resource_scopes = [s for s in scopes if s.endswith("/.default")]
    if len(resource_scopes) != 1:
        return _aad_error(400, "invalid_scope", 1002012,
                          "The provided value for scope %s is not valid. Client credential flows must have a "
                          "scope value with /.default suffixed to the resource identifier (application ID URI)."
                          % form.get("scope", ""))
    audience = resource_scopes[0][: -len("/.default")]
    if not _accepted(state, audience):
        return _aad_error(400, "invalid_resource", 500011,
                          "The resource principal named %s was not found in the tenant named %s. This can happen "
                          "if the application has not been installed by the administrator of the tenant."
                          % (audience, tenant))
    lifetime = int(state.settings["token_lifetime"])
    return ok({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
               "access_token": issue_token(audience, state.tenant_id, client_id, lifetime)})


# -- certificate credentials (private_key_jwt) --------------------------------------------------------

def certificate_thumbprints(pem):
    """``(sha1, sha256)`` of a PEM certificate, as the ``x5t`` / ``x5t#S256`` JWT headers carry them."""
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes  # pylint: disable=import-outside-toplevel

    certificate = x509.load_pem_x509_certificate(pem.encode("ascii") if isinstance(pem, str) else pem)
    return certificate.fingerprint(hashes.SHA1()), certificate.fingerprint(hashes.SHA256())  # nosec - Entra's x5t


def _check_certificate_assertion(assertion, client, client_id, tenant):
    """Entra ID's checks of a client assertion signed with an application's certificate; None when it passes.

    The assertion is a JWT (RS256 or PS256) whose ``x5t`` (SHA-1) or ``x5t#S256`` header names one of the
    application's registered certificates, signed with that certificate's key, with ``iss`` and ``sub`` the
    client id, ``aud`` this tenant's token endpoint, and a valid time range.
    """
    # pylint: disable=import-outside-toplevel
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        head, body, signature = assertion.split(".")
        header = json.loads(_unb64(head))
        claims = json.loads(_unb64(body))
        signature = _unb64(signature)
    except (ValueError, TypeError):
        return _aad_error(400, "invalid_request", 50027, "JWT token is invalid or malformed.")
    registered = None
    for pem in client["certificates"]:
        sha1, sha256 = certificate_thumbprints(pem)
        if header.get("x5t#S256") and _unb64(header["x5t#S256"]) == sha256 or \
                header.get("x5t") and _unb64(header["x5t"]) == sha1:
            registered = pem
            break
    if registered is None:
        return _aad_error(401, "invalid_client", 700027,
                          "Client assertion failed signature validation. The certificate with identifier used to sign "
                          "the client assertion is not registered on application '%s'." % client_id)
    public_key = x509.load_pem_x509_certificate(registered.encode("ascii")).public_key()
    schemes = {"RS256": padding.PKCS1v15(),
               "PS256": padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)}
    scheme = schemes.get(header.get("alg"))
    if scheme is None:
        return _aad_error(400, "invalid_request", 5002738, "Unsupported client assertion algorithm %r."
                          % header.get("alg"))
    try:
        public_key.verify(signature, (head + "." + body).encode("ascii"), scheme, hashes.SHA256())
    except InvalidSignature:
        return _aad_error(401, "invalid_client", 700027, "Client assertion failed signature validation.")
    now = time.time()
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        return _aad_error(401, "invalid_client", 700021, "Client assertion application identifier doesn't match "
                          "'client_id' parameter.")
    if not str(claims.get("aud", "")).rstrip("/").lower().endswith("/%s/oauth2/v2.0/token" % tenant.lower()):
        return _aad_error(401, "invalid_client", 700212, "Client assertion audience claim does not match the "
                          "token endpoint of tenant '%s'." % tenant)
    if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] < now - 300 or \
            claims.get("nbf", now) > now + 300:
        return _aad_error(401, "invalid_client", 700024, "Client assertion is not within its valid time range.")
    return None
