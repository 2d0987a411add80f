# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""Authentication: which credential to use, for which subscription, against which cloud.

Three steps, kept apart so the first two can be tested without the SDK or a network:

1. ``resolve_auth_settings(params, environ)`` picks the credential source and collects its inputs
   from task options, environment variables and ``~/.azure/credentials`` (pure; no network).
2. ``resolve_cloud(name_or_url, ca_bundle)`` turns ``cloud_environment`` into endpoints: a known
   cloud name, or the URL of a Resource Manager that publishes ``/metadata/endpoints`` (Azure Stack
   Hub and other private clouds).
3. ``build_credential(settings, cloud)`` creates the azure-identity credential (lazy import).

Environment variables are read here rather than through ``env_fallback`` in the argument spec,
because ``auth_source: auto`` must know whether a value was given on the task or only found in the
environment (explicit task options win over ambient credentials).

The collection never guesses a subscription: without one, the task fails.
"""

from __future__ import annotations

import configparser
import http.client
import json
import os
import re
from urllib.parse import urlsplit

from ansible.module_utils.urls import open_url, ConnectionError as UrlsConnectionError

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    AzureFlexError,
    InvalidInputError,
    MissingDependencyError,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import is_guid


AUTH_SOURCES = ("auto", "env", "credential_file", "cli", "msi", "workload_identity")

DEFAULT_CLOUD = "AzureCloud"
DEFAULT_PROFILE = "default"
DEFAULT_CREDENTIAL_FILE = os.path.join("~", ".azure", "credentials")
CLOUD_METADATA_API_VERSION = "2022-09-01"
CLOUD_METADATA_TIMEOUT = 30

# Environment variable names, in lookup order. The first of each list is the name AWX/AAP injects
# for its "Microsoft Azure Resource Manager" credential; later ones are azure-identity's names.
ENV_SUBSCRIPTION_ID = ("AZURE_SUBSCRIPTION_ID",)
ENV_CLIENT_ID = ("AZURE_CLIENT_ID",)
ENV_SECRET = ("AZURE_SECRET", "AZURE_CLIENT_SECRET")
ENV_TENANT = ("AZURE_TENANT", "AZURE_TENANT_ID")
ENV_PROFILE = ("AZURE_PROFILE",)
ENV_CLOUD_ENVIRONMENT = ("AZURE_CLOUD_ENVIRONMENT",)
ENV_CA_BUNDLE = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
ENV_FEDERATED_TOKEN_FILE = ("AZURE_FEDERATED_TOKEN_FILE",)
# Certificate service principals: azure-identity's names first, then azure.azcollection's.
ENV_CLIENT_CERTIFICATE_PATH = ("AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_X509_CERTIFICATE_PATH")
ENV_CLIENT_CERTIFICATE_PASSWORD = ("AZURE_CLIENT_CERTIFICATE_PASSWORD",)
ENV_THUMBPRINT = ("AZURE_THUMBPRINT",)
ENV_AUTHORITY_HOST = ("AZURE_AUTHORITY_HOST",)

AUTH_ARGUMENT_SPEC = dict(
    auth_source=dict(type="str", default="auto", choices=list(AUTH_SOURCES)),
    subscription_id=dict(type="str"),
    tenant=dict(type="str"),
    client_id=dict(type="str"),
    secret=dict(type="str", no_log=True),
    client_certificate_path=dict(type="path", aliases=["x509_certificate_path"]),
    client_certificate_password=dict(type="str", no_log=True),
    thumbprint=dict(type="str"),
    profile=dict(type="str"),
    cloud_environment=dict(type="str"),
    ca_bundle=dict(type="path"),
)

# A profile brings its own secret; a task giving both is ambiguous. A service principal uses a secret or a
# certificate, not both.
AUTH_MUTUALLY_EXCLUSIVE = [("profile", "secret"), ("profile", "client_certificate_path"),
                           ("secret", "client_certificate_path")]

# Resolved credential sources (what was actually chosen, as opposed to the auth_source option).
SOURCE_SERVICE_PRINCIPAL = "service_principal"
SOURCE_CERTIFICATE = "certificate"
SOURCE_CREDENTIAL_FILE = "credential_file"
SOURCE_WORKLOAD_IDENTITY = "workload_identity"
SOURCE_MANAGED_IDENTITY = "msi"
SOURCE_CLI = "cli"
SOURCE_MANAGED_IDENTITY_OR_CLI = "msi_or_cli"


# --------------------------------------------------------------------------------------------
# Clouds
# --------------------------------------------------------------------------------------------

class CloudEndpoints:
    """The endpoints of one Azure cloud that the collection needs."""

    def __init__(self, name, resource_manager, login_endpoint, audience, identity_provider="AAD"):
        self.name = name
        self.resource_manager = resource_manager.rstrip("/")
        self.login_endpoint = login_endpoint.rstrip("/")
        self.audience = audience
        self.identity_provider = (identity_provider or "AAD").upper()

    @property
    def token_scope(self):
        """The OAuth scope every management client must request.

        The audience is used as published, trailing slash included: for a v1-style resource such as
        ``https://management.core.windows.net/`` the matching scope is ``...windows.net//.default``.
        """
        return self.audience + "/.default"

    @property
    def authority_host(self):
        """Scheme and host of the login endpoint: what azure-identity calls the authority."""
        parts = urlsplit(self.login_endpoint)
        return "%s://%s" % (parts.scheme, parts.netloc)

    @property
    def uses_adfs(self):
        """Azure Stack Hub disconnected deployments authenticate against AD FS, tenant ``adfs``."""
        return self.identity_provider == "ADFS" or urlsplit(self.login_endpoint).path.rstrip("/").lower().endswith("/adfs")

    def to_dict(self):
        return {
            "name": self.name,
            "resource_manager": self.resource_manager,
            "login_endpoint": self.login_endpoint,
            "audience": self.audience,
            "identity_provider": self.identity_provider,
        }


KNOWN_CLOUDS = {
    "azurecloud": CloudEndpoints(
        "AzureCloud", "https://management.azure.com", "https://login.microsoftonline.com", "https://management.azure.com"),
    "azurechinacloud": CloudEndpoints(
        "AzureChinaCloud", "https://management.chinacloudapi.cn", "https://login.chinacloudapi.cn",
        "https://management.chinacloudapi.cn"),
    "azureusgovernment": CloudEndpoints(
        "AzureUSGovernment", "https://management.usgovcloudapi.net", "https://login.microsoftonline.us",
        "https://management.usgovcloudapi.net"),
}

# Authorities that Microsoft Entra instance discovery knows. For any other authority (Azure Stack,
# private clouds) discovery would fail or leak a request to the public cloud, so it is turned off.
KNOWN_AUTHORITY_HOSTS = frozenset(cloud.authority_host for cloud in KNOWN_CLOUDS.values())


def known_cloud(name):
    """Return the built-in ``CloudEndpoints`` for a cloud name (case-insensitive), or None."""
    return KNOWN_CLOUDS.get(str(name).strip().lower())


def cloud_metadata_url(resource_manager_url):
    """Return the metadata URL published by a Resource Manager endpoint."""
    base = _require_https(resource_manager_url, "cloud_environment").rstrip("/")
    suffix = "/metadata/endpoints"
    if base.lower().endswith(suffix):
        base = base[:-len(suffix)]
    return "%s%s?api-version=%s" % (base, suffix, CLOUD_METADATA_API_VERSION)


def parse_cloud_metadata(document, resource_manager_url):
    """Build ``CloudEndpoints`` from a metadata document, in either of its two published formats.

    * current format: a JSON list of clouds, each with ``resourceManager`` and ``authentication``;
      the entry whose ``resourceManager`` is ``resource_manager_url`` is used, else the only entry;
    * legacy Azure Stack format: one object with ``authentication`` (and ``galleryEndpoint``,
      ``graphEndpoint``, ...) but no ``resourceManager``: the Resource Manager is the URL itself.
    """
    if isinstance(document, list):
        return _cloud_from_entry(_pick_cloud_entry(document, resource_manager_url), resource_manager_url)
    if isinstance(document, dict) and "authentication" in document:
        return _cloud_from_entry(document, resource_manager_url)
    raise InvalidInputError(
        "The cloud metadata of %s is neither a list of clouds nor an object with 'authentication'" % resource_manager_url)


def _pick_cloud_entry(entries, resource_manager_url):
    clouds = [entry for entry in entries if isinstance(entry, dict)]
    wanted = _normalise_url(resource_manager_url)
    for entry in clouds:
        if _normalise_url(entry.get("resourceManager") or "") == wanted:
            return entry
    if len(clouds) == 1:
        return clouds[0]
    names = ", ".join(sorted(str(entry.get("name")) for entry in clouds)) or "none"
    raise InvalidInputError(
        "The cloud metadata of %s lists no cloud whose resourceManager is that URL (clouds listed: %s)"
        % (resource_manager_url, names))


def _cloud_from_entry(entry, resource_manager_url):
    authentication = entry.get("authentication")
    if not isinstance(authentication, dict):
        raise InvalidInputError("The cloud metadata of %s has no 'authentication' object" % resource_manager_url)
    audiences = authentication.get("audiences")
    if not isinstance(audiences, list) or not audiences or not isinstance(audiences[0], str) or not audiences[0]:
        raise InvalidInputError("The cloud metadata of %s has no token audience" % resource_manager_url)
    login_endpoint = authentication.get("loginEndpoint")
    if not isinstance(login_endpoint, str) or not login_endpoint:
        raise InvalidInputError("The cloud metadata of %s has no loginEndpoint" % resource_manager_url)
    resource_manager = entry.get("resourceManager") or resource_manager_url
    return CloudEndpoints(
        name=entry.get("name") or resource_manager_url,
        resource_manager=_require_https(resource_manager, "resourceManager in the cloud metadata"),
        login_endpoint=_require_https(login_endpoint, "loginEndpoint in the cloud metadata"),
        audience=audiences[0],
        identity_provider=authentication.get("identityProvider") or "AAD",
    )


def resolve_cloud(cloud_environment, ca_bundle=None, fetch_json=None):
    """Return ``CloudEndpoints`` for a cloud name, or for the https URL of a Resource Manager.

    ``fetch_json(url, ca_bundle)`` reads the metadata document; tests pass a fake.
    """
    value = (cloud_environment or DEFAULT_CLOUD).strip()
    cloud = known_cloud(value)
    if cloud is not None:
        return cloud
    if not value.lower().startswith("https://"):
        known = ", ".join(sorted(endpoint.name for endpoint in KNOWN_CLOUDS.values()))
        raise InvalidInputError(
            "cloud_environment %r is neither a known cloud (%s) nor an https:// Resource Manager URL" % (value, known))
    fetch_json = fetch_json or fetch_cloud_metadata
    return parse_cloud_metadata(fetch_json(cloud_metadata_url(value), ca_bundle), value)


def fetch_cloud_metadata(url, ca_bundle=None, timeout=CLOUD_METADATA_TIMEOUT):
    """GET a cloud metadata document over verified TLS (``ca_bundle`` replaces the system CAs)."""
    try:
        response = open_url(url, method="GET", headers={"Accept": "application/json"}, validate_certs=True,
                            ca_path=ca_bundle, timeout=timeout, http_agent="azure_flex.vmss")
        return json.loads(response.read())
    except (OSError, UrlsConnectionError, http.client.HTTPException) as exc:
        raise AzureFlexError("Could not read the cloud metadata from %s: %s" % (url, exc)) from exc
    except ValueError as exc:
        raise AzureFlexError("The cloud metadata from %s is not valid JSON: %s" % (url, exc)) from exc


def _normalise_url(url):
    return str(url).strip().rstrip("/").lower()


def _require_https(url, what):
    if not isinstance(url, str) or not url.lower().startswith("https://") or not urlsplit(url).netloc:
        raise InvalidInputError("%s must be an https:// URL, got %r" % (what, url))
    return url


# --------------------------------------------------------------------------------------------
# Credential file
# --------------------------------------------------------------------------------------------

def read_credential_profile(path, profile_name):
    """Return the keys of ``[profile_name]`` in the INI file at ``path``, or None if absent.

    The file format is the one azure.azcollection documents for ``~/.azure/credentials``:
    sections named after profiles, keys ``subscription_id``, ``client_id``, ``secret``, ``tenant``
    and optionally ``cloud_environment``.

    Nothing read from the file ever goes into an error message, whatever the file's shape: Ansible's
    ``no_log`` only masks task options, and a malformed line (``secret S3cr3t`` without ``=``) is the
    secret itself. configparser's own messages quote the offending line, so only line numbers are said.
    """
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle, source=path)
    except OSError as exc:
        raise InvalidInputError("Could not read the credential file %s: %s" % (path, exc.strerror or type(exc).__name__)) from None
    except UnicodeDecodeError as exc:
        raise InvalidInputError("The credential file %s is not UTF-8 text (undecodable byte at offset %d)"
                                % (path, exc.start)) from None
    except configparser.Error as exc:
        raise InvalidInputError("Could not parse the credential file %s: %s. The file needs [profile] sections of"
                                " 'key = value' lines (the lines are not shown, they may hold a secret)"
                                % (path, _where(exc))) from None
    if not parser.has_section(profile_name):
        return None
    return {key: value.strip() for key, value in parser.items(profile_name) if value.strip()}


def _where(error):
    """Where a configparser error is, by line number only (its message quotes the line)."""
    if isinstance(error, configparser.MissingSectionHeaderError):
        return "line %d comes before any [profile] section header" % error.lineno
    if isinstance(error, configparser.ParsingError):
        lines = sorted({lineno for lineno, _line in error.errors})
        return "line%s %s %s not 'key = value'" % ("s" if len(lines) > 1 else "", ", ".join(str(n) for n in lines),
                                                   "are" if len(lines) > 1 else "is")
    if isinstance(error, configparser.DuplicateSectionError):
        return "a profile section is repeated%s" % (" at line %d" % error.lineno if error.lineno else "")
    if isinstance(error, configparser.DuplicateOptionError):
        return "a key is repeated within its profile%s" % (" at line %d" % error.lineno if error.lineno else "")
    return "it is not an INI file (%s)" % type(error).__name__


# --------------------------------------------------------------------------------------------
# Settings resolution
# --------------------------------------------------------------------------------------------

class AuthSettings:
    """Everything needed to build a credential, and where it came from. Holds no SDK objects."""

    def __init__(self, source, subscription_id, cloud_environment, tenant=None, client_id=None, secret=None,
                 federated_token_file=None, authority_host=None, ca_bundle=None, profile=None, certificate_path=None,
                 certificate_password=None, thumbprint=None):
        self.source = source
        self.certificate_path = certificate_path
        self.certificate_data = None
        self.certificate_password = certificate_password
        self.thumbprint = thumbprint
        self.subscription_id = subscription_id
        self.cloud_environment = cloud_environment
        self.tenant = tenant
        self.client_id = client_id
        self.secret = secret
        self.federated_token_file = federated_token_file
        self.authority_host = authority_host
        self.ca_bundle = ca_bundle
        self.profile = profile

    def describe(self):
        """A summary safe to show to the user (never contains the secret)."""
        return {
            "source": self.source,
            "subscription_id": self.subscription_id,
            "tenant": self.tenant,
            "client_id": self.client_id,
            "profile": self.profile,
            "cloud_environment": self.cloud_environment,
        }


class _Inputs:
    """Looks values up in task options first, then in the environment."""

    def __init__(self, params, environ):
        self.params = params
        self.environ = environ

    def option(self, name):
        value = self.params.get(name)
        return value if value not in (None, "") else None

    def env(self, names):
        for name in names:
            value = self.environ.get(name)
            if value:
                return value
        return None

    def value(self, name, env_names):
        option = self.option(name)
        return option if option is not None else self.env(env_names)


def resolve_auth_settings(params, environ=None, credential_file=DEFAULT_CREDENTIAL_FILE):
    """Choose the credential source and gather its inputs; raise ``InvalidInputError`` if unusable.

    ``auth_source: auto`` takes the first of:

    1. a ``secret`` task option: service principal (``client_id``, ``tenant`` from options or env);
       a ``client_certificate_path`` task option: service principal with a certificate;
    2. a ``profile`` task option: that profile of the credential file;
    3. a secret in the environment: service principal from the environment; else a certificate path there;
    4. the ``AZURE_PROFILE`` (or ``default``) profile, if the credential file has it;
    5. ``AZURE_FEDERATED_TOKEN_FILE`` with a client and tenant id: workload identity;
    6. managed identity, then the Azure CLI login (tried in that order when a token is needed).

    ``auth_source: env`` is a service principal from options and environment: with a secret if one is
    given, else with a certificate.
    """
    inputs = _Inputs(params, os.environ if environ is None else environ)
    requested = inputs.option("auth_source") or "auto"
    if requested == "auto":
        source, profile = _choose_automatically(inputs, credential_file)
    elif requested == "credential_file":
        source, profile = SOURCE_CREDENTIAL_FILE, _load_profile(inputs, credential_file, required=True)
    elif requested == "env":
        with_certificate = inputs.value("secret", ENV_SECRET) is None and \
            inputs.value("client_certificate_path", ENV_CLIENT_CERTIFICATE_PATH) is not None
        source, profile = (SOURCE_CERTIFICATE if with_certificate else SOURCE_SERVICE_PRINCIPAL), None
    elif requested in AUTH_SOURCES:
        source = {"msi": SOURCE_MANAGED_IDENTITY}.get(requested, requested)
        profile = None
    else:
        raise InvalidInputError("auth_source must be one of %s, got %r" % (", ".join(AUTH_SOURCES), requested))
    return _settings_for(source, inputs, profile)


def _choose_automatically(inputs, credential_file):
    """Return ``(source, profile)`` following the precedence documented in ``resolve_auth_settings``."""
    if inputs.option("secret") is not None:
        return SOURCE_SERVICE_PRINCIPAL, None
    if inputs.option("client_certificate_path") is not None:
        return SOURCE_CERTIFICATE, None
    if inputs.option("profile") is not None:
        return SOURCE_CREDENTIAL_FILE, _load_profile(inputs, credential_file, required=True)
    if inputs.env(ENV_SECRET) is not None:
        return SOURCE_SERVICE_PRINCIPAL, None
    if inputs.env(ENV_CLIENT_CERTIFICATE_PATH) is not None:
        return SOURCE_CERTIFICATE, None
    # A profile named in AZURE_PROFILE must exist; the implicit "default" profile is optional.
    profile = _load_profile(inputs, credential_file, required=inputs.env(ENV_PROFILE) is not None)
    if profile is not None:
        return SOURCE_CREDENTIAL_FILE, profile
    if inputs.env(ENV_FEDERATED_TOKEN_FILE) and inputs.value("client_id", ENV_CLIENT_ID) and inputs.value("tenant", ENV_TENANT):
        return SOURCE_WORKLOAD_IDENTITY, None
    return SOURCE_MANAGED_IDENTITY_OR_CLI, None


def _load_profile(inputs, credential_file, required):
    """Return ``(name, keys)`` of the wanted credential-file profile, or None when absent and optional."""
    name = inputs.value("profile", ENV_PROFILE) or DEFAULT_PROFILE
    keys = read_credential_profile(credential_file, name)
    if keys is None and required:
        raise InvalidInputError(
            "Profile %r was not found in the credential file %s" % (name, os.path.expanduser(credential_file)))
    return None if keys is None else (name, keys)


def _settings_for(source, inputs, profile):
    profile_name, profile_keys = profile if (profile and source == SOURCE_CREDENTIAL_FILE) else (None, {})
    settings = AuthSettings(
        source=source,
        subscription_id=_subscription_id(inputs, profile_keys, profile_name),
        cloud_environment=_cloud_environment(inputs, profile_keys, profile_name),
        authority_host=inputs.env(ENV_AUTHORITY_HOST),
        ca_bundle=_ca_bundle(inputs),
        profile=profile_name,
    )
    if source == SOURCE_CREDENTIAL_FILE:
        settings.client_id = profile_keys.get("client_id")
        settings.secret = profile_keys.get("secret")
        settings.tenant = profile_keys.get("tenant")
        _require_present(settings, ("client_id", "secret", "tenant"), "profile %r of the credential file" % profile_name)
    else:
        settings.client_id = inputs.value("client_id", ENV_CLIENT_ID)
        settings.tenant = inputs.value("tenant", ENV_TENANT)
    if source == SOURCE_SERVICE_PRINCIPAL:
        settings.secret = inputs.value("secret", ENV_SECRET)
        _require_present(settings, ("client_id", "secret", "tenant"), "a service principal",
                         env_hint={"client_id": ENV_CLIENT_ID, "secret": ENV_SECRET, "tenant": ENV_TENANT})
    if source == SOURCE_CERTIFICATE:
        settings.certificate_path = inputs.value("client_certificate_path", ENV_CLIENT_CERTIFICATE_PATH)
        settings.certificate_password = inputs.value("client_certificate_password", ENV_CLIENT_CERTIFICATE_PASSWORD)
        settings.thumbprint = inputs.value("thumbprint", ENV_THUMBPRINT)
        _require_present(settings, ("client_id", "tenant"), "a certificate service principal",
                         env_hint={"client_id": ENV_CLIENT_ID, "tenant": ENV_TENANT})
        settings.certificate_path = os.path.expanduser(settings.certificate_path)
        if not os.path.isfile(settings.certificate_path):
            raise InvalidInputError("The client certificate %s does not exist (client_certificate_path, "
                                    "AZURE_CLIENT_CERTIFICATE_PATH)" % settings.certificate_path)
        # Read and checked now, so a wrong file fails before any request (even the cloud metadata read).
        settings.certificate_data = read_client_certificate(settings.certificate_path, settings.certificate_password,
                                                            settings.thumbprint)
    if source == SOURCE_WORKLOAD_IDENTITY:
        settings.federated_token_file = inputs.env(ENV_FEDERATED_TOKEN_FILE)
        _require_workload_identity(settings)
    return settings


def _subscription_id(inputs, profile_keys, profile_name=None):
    from_profile = inputs.option("subscription_id") is None and profile_keys.get("subscription_id") is not None
    value = inputs.option("subscription_id") or profile_keys.get("subscription_id") or inputs.env(ENV_SUBSCRIPTION_ID)
    if value is None:
        raise InvalidInputError(
            "No subscription ID: set the subscription_id option or the AZURE_SUBSCRIPTION_ID environment variable"
            " (or subscription_id in the credential file profile). The collection never picks a subscription for you.")
    value = value.strip()
    if not is_guid(value):
        if from_profile:
            # Values from the credential file are never shown (see read_credential_profile).
            raise InvalidInputError("subscription_id in profile %r of the credential file must be a GUID such as"
                                    " 00000000-0000-0000-0000-000000000000 (its value is not shown)" % profile_name)
        raise InvalidInputError("subscription_id must be a GUID such as 00000000-0000-0000-0000-000000000000, got %r" % value)
    return value


def _cloud_environment(inputs, profile_keys, profile_name=None):
    option = inputs.option("cloud_environment")
    value = option or profile_keys.get("cloud_environment")
    if option is None and value is not None:
        # resolve_cloud quotes an unusable value; one from the credential file is refused here, unquoted.
        if known_cloud(value) is None and not value.strip().lower().startswith("https://"):
            raise InvalidInputError("cloud_environment in profile %r of the credential file is neither a known cloud"
                                    " nor an https:// Resource Manager URL (its value is not shown)" % profile_name)
        return value
    return value or inputs.env(ENV_CLOUD_ENVIRONMENT) or DEFAULT_CLOUD


def _ca_bundle(inputs):
    path = inputs.option("ca_bundle")
    origin = "ca_bundle"
    if path is None:
        for name in ENV_CA_BUNDLE:
            if inputs.environ.get(name):
                path, origin = inputs.environ[name], name
                break
    if path is None:
        return None
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        raise InvalidInputError("%s points to %s, which does not exist" % (origin, path))
    return path


def _require_present(settings, names, what, env_hint=None):
    missing = [name for name in names if not getattr(settings, name)]
    if not missing:
        return
    env_hint = env_hint or {}
    described = ["%s (%s)" % (name, " or ".join(env_hint[name])) if name in env_hint else name for name in missing]
    raise InvalidInputError("Authentication with %s needs: %s" % (what, ", ".join(described)))


def _require_workload_identity(settings):
    _require_present(settings, ("client_id", "tenant"), "workload identity",
                     env_hint={"client_id": ENV_CLIENT_ID, "tenant": ENV_TENANT})
    if not settings.federated_token_file:
        raise InvalidInputError("Workload identity needs the AZURE_FEDERATED_TOKEN_FILE environment variable")
    if not os.path.isfile(settings.federated_token_file):
        raise InvalidInputError("AZURE_FEDERATED_TOKEN_FILE points to %s, which is not a file" % settings.federated_token_file)


# --------------------------------------------------------------------------------------------
# Credential objects
# --------------------------------------------------------------------------------------------

def build_credential(settings, cloud):
    """Create the azure-identity credential described by ``settings`` for ``cloud``."""
    identity = _import_identity()
    authority = settings.authority_host or cloud.authority_host
    tls = {"connection_verify": settings.ca_bundle} if settings.ca_bundle else {}
    tenant = settings.tenant or ("adfs" if cloud.uses_adfs else None)
    try:
        if settings.source in (SOURCE_SERVICE_PRINCIPAL, SOURCE_CREDENTIAL_FILE):
            return identity.ClientSecretCredential(
                tenant, settings.client_id, settings.secret, authority=authority,
                disable_instance_discovery=_authority_host(authority) not in KNOWN_AUTHORITY_HOSTS,
                **dict(tls, **token_cache_options(identity)))
        if settings.source == SOURCE_CERTIFICATE:
            return identity.CertificateCredential(
                tenant, settings.client_id, certificate_data=settings.certificate_data,
                password=settings.certificate_password, authority=authority,
                disable_instance_discovery=_authority_host(authority) not in KNOWN_AUTHORITY_HOSTS,
                **dict(tls, **token_cache_options(identity)))
        if settings.source == SOURCE_WORKLOAD_IDENTITY:
            return identity.WorkloadIdentityCredential(
                tenant_id=tenant, client_id=settings.client_id, token_file_path=settings.federated_token_file,
                authority=authority, **dict(tls, **token_cache_options(identity)))
        if settings.source == SOURCE_MANAGED_IDENTITY:
            return identity.ManagedIdentityCredential(client_id=settings.client_id)
        if settings.source == SOURCE_CLI:
            return _cli_credential(identity, settings.tenant)
        if settings.source == SOURCE_MANAGED_IDENTITY_OR_CLI:
            return identity.ChainedTokenCredential(
                identity.ManagedIdentityCredential(client_id=settings.client_id),
                _cli_credential(identity, settings.tenant))
    except ValueError as exc:
        # azure-identity validates tenant ids and authorities eagerly; these are input errors.
        raise InvalidInputError("Invalid credential settings: %s" % exc) from exc
    raise InvalidInputError("Unknown credential source %r" % settings.source)


def read_client_certificate(path, password=None, thumbprint=None):
    """The bytes of a client certificate file (PEM with key and certificate, or PKCS#12), checked.

    Checked here so a wrong file fails the task before any request with a message that names it, never
    its content: it must hold a private key and a certificate, and, when ``thumbprint`` is given (as
    azure.azcollection's ``thumbprint`` option and ``AZURE_THUMBPRINT``), the certificate's SHA-1 thumbprint
    must be that one.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        raise InvalidInputError("Cannot read the client certificate %s: %s" % (path, exc.strerror)) from None
    try:
        # pylint: disable=import-outside-toplevel
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.serialization import pkcs12
    except ImportError as exc:
        raise MissingDependencyError("cryptography", exc) from exc
    secret = password.encode("utf-8") if password else None
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, secret)
            certificate = x509.load_pem_x509_certificate(data)
        else:
            key, certificate, _chain = pkcs12.load_key_and_certificates(data, secret)
    except (ValueError, TypeError):
        # The parser's message may quote the file; say what is wrong without it.
        raise InvalidInputError(
            "The client certificate %s must hold the private key and the certificate, PEM or PKCS#12 (.pfx), "
            "with client_certificate_password when the key is encrypted" % path) from None
    if key is None or certificate is None:
        raise InvalidInputError("The client certificate %s must hold both the private key and the certificate" % path)
    if thumbprint:
        actual = certificate.fingerprint(hashes.SHA1()).hex().upper()  # nosec - Azure's certificate thumbprint is SHA-1
        wanted = re.sub(r"[^0-9A-Fa-f]", "", thumbprint).upper()
        if actual != wanted:
            raise InvalidInputError("The client certificate %s has thumbprint %s, not %s (thumbprint, AZURE_THUMBPRINT)"
                                    % (path, actual, wanted))
    return data


# --------------------------------------------------------------------------------------------
# Token reuse across tasks
# --------------------------------------------------------------------------------------------

# Every task is a process of its own, so azure-identity's in-memory token cache dies with it and each task
# fetches a token anew. AZURE_FLEX_TOKEN_CACHE lets the tasks of a play share one:
#   memory (default)  nothing is written anywhere;
#   encrypted         azure-identity's persistent cache, only where it can be encrypted (libsecret, Keychain,
#                     DPAPI); without that the task fails rather than write a token in clear;
#   persistent        the same, falling back to a file readable by the user only (mode 0600,
#                     ~/.IdentityService/azure_flex.vmss.nocae) where nothing can encrypt it (Linux without a
#                     keyring: AWX execution environments, CI). It holds access tokens, not the secret.
ENV_TOKEN_CACHE = "AZURE_FLEX_TOKEN_CACHE"
TOKEN_CACHE_MODES = ("memory", "encrypted", "persistent")
TOKEN_CACHE_NAME = "azure_flex.vmss"


def token_cache_mode(environ=None):
    """The token cache the environment asks for (``memory``, ``encrypted`` or ``persistent``)."""
    value = ((os.environ if environ is None else environ).get(ENV_TOKEN_CACHE) or "memory").strip().lower()
    if value not in TOKEN_CACHE_MODES:
        raise InvalidInputError("%s must be one of %s, got %r" % (ENV_TOKEN_CACHE, ", ".join(TOKEN_CACHE_MODES), value))
    return value


def token_cache_options(identity, environ=None):
    """Keyword arguments that give an azure-identity credential the token cache asked for (none by default)."""
    mode = token_cache_mode(environ)
    if mode == "memory":
        return {}
    return {"cache_persistence_options": identity.TokenCachePersistenceOptions(
        name=TOKEN_CACHE_NAME, allow_unencrypted_storage=mode == "persistent")}


def _cli_credential(identity, tenant):
    return identity.AzureCliCredential(tenant_id=tenant) if tenant else identity.AzureCliCredential()


def _authority_host(authority):
    """Normalise ``login.microsoftonline.com`` or ``https://host/path`` to ``https://host``."""
    if "://" not in authority:
        authority = "https://" + authority
    parts = urlsplit(authority)
    return "%s://%s" % (parts.scheme, parts.netloc)


def _import_identity():
    try:
        from azure import identity  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        raise MissingDependencyError("azure-identity", exc) from exc
    return identity
