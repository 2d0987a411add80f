# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This doc fragment is PRIVATE to the azure_flex.vmss collection. It can change or disappear in
# any release; do not use it from other collections.

from __future__ import annotations


class ModuleDocFragment:
    """Authentication options shared by every module (argument spec: module_utils/_auth.py)."""

    DOCUMENTATION = r"""
options:
  auth_source:
    description:
      - Where the credentials come from.
      - V(auto) uses the first of the following that applies.
      - 1. A O(secret) option given on the task (service principal), or a O(client_certificate_path) option
        (service principal with a certificate).
      - 2. A O(profile) option given on the task (that profile of C(~/.azure/credentials)).
      - 3. A secret in E(AZURE_SECRET) or E(AZURE_CLIENT_SECRET) (service principal from the environment), else
        a certificate in E(AZURE_CLIENT_CERTIFICATE_PATH) or E(AZURE_X509_CERTIFICATE_PATH).
      - 4. The profile named by E(AZURE_PROFILE), or the C(default) profile, if C(~/.azure/credentials) has it.
      - 5. E(AZURE_FEDERATED_TOKEN_FILE) together with a client ID and a tenant (workload identity).
      - 6. Managed identity, then the Azure CLI login, tried in that order when a token is first needed.
      - V(env) uses a service principal from O(client_id), O(secret) (or O(client_certificate_path)) and
        O(tenant), each falling back to its environment variables.
      - V(credential_file) uses a profile of C(~/.azure/credentials) (see O(profile)).
      - V(cli) uses the account the Azure CLI is logged in with (C(az login)).
      - V(msi) uses the managed identity of the machine running the module; set O(client_id) for a
        user-assigned identity.
      - V(workload_identity) exchanges the token in E(AZURE_FEDERATED_TOKEN_FILE) (for example a Kubernetes
        service account token) for an Azure token, for O(client_id) in O(tenant).
      - Whatever the source, a subscription must be given; see O(subscription_id).
    type: str
    default: auto
    choices: [auto, env, credential_file, cli, msi, workload_identity]
  subscription_id:
    description:
      - The subscription the task works in.
      - If not set, the C(subscription_id) of the credential file profile (when that profile is used), then
        E(AZURE_SUBSCRIPTION_ID).
      - There is no implicit choice; the task fails when no subscription is given.
    type: str
  tenant:
    description:
      - Microsoft Entra tenant (directory) ID of the service principal or workload identity.
      - If not set, E(AZURE_TENANT), then E(AZURE_TENANT_ID).
      - With the Azure CLI, selects the tenant to get a token for.
    type: str
  client_id:
    description:
      - Application (client) ID of the service principal or workload identity, or the client ID of a
        user-assigned managed identity.
      - If not set, E(AZURE_CLIENT_ID).
    type: str
  secret:
    description:
      - Client secret of the service principal.
      - If not set, E(AZURE_SECRET), then E(AZURE_CLIENT_SECRET).
      - Cannot be combined with O(profile).
    type: str
  client_certificate_path:
    description:
      - Path of the certificate of a service principal that authenticates with a certificate instead of a
        secret. A PEM file holding the private key and the certificate, or a PKCS#12 (C(.pfx)) file.
      - If not set, E(AZURE_CLIENT_CERTIFICATE_PATH), then E(AZURE_X509_CERTIFICATE_PATH).
      - Cannot be combined with O(secret) or O(profile).
    type: path
    aliases: [x509_certificate_path]
  client_certificate_password:
    description:
      - Password of the private key in O(client_certificate_path), when it is encrypted.
      - If not set, E(AZURE_CLIENT_CERTIFICATE_PASSWORD).
    type: str
  thumbprint:
    description:
      - SHA-1 thumbprint (hexadecimal) the certificate in O(client_certificate_path) must have.
      - Optional, as Azure identifies the certificate by itself. When given, a different certificate fails the
        task before any request.
      - If not set, E(AZURE_THUMBPRINT).
    type: str
  profile:
    description:
      - Name of a profile (INI section) of C(~/.azure/credentials) holding C(subscription_id), C(client_id),
        C(secret), C(tenant) and optionally C(cloud_environment).
      - If not set, E(AZURE_PROFILE), then C(default).
      - Cannot be combined with O(secret).
    type: str
  cloud_environment:
    description:
      - The Azure cloud, by name (V(AzureCloud), V(AzureChinaCloud), V(AzureUSGovernment)) or as the
        C(https://) URL of a Resource Manager endpoint that publishes C(/metadata/endpoints), such as an
        Azure Stack Hub (the same URL C(az cloud register --endpoint-resource-manager) takes).
      - For a URL, the Resource Manager, login endpoint and token audience are read from that metadata.
      - If not set, the C(cloud_environment) of the credential file profile (when that profile is used), then
        E(AZURE_CLOUD_ENVIRONMENT), then V(AzureCloud).
      - E(AZURE_AUTHORITY_HOST), when set, replaces the login endpoint of the cloud.
    type: str
  ca_bundle:
    description:
      - Path of a PEM file of certificate authorities to trust for every HTTPS connection (Resource Manager,
        login endpoint, cloud metadata), instead of the default ones.
      - If not set, E(REQUESTS_CA_BUNDLE), then E(SSL_CERT_FILE).
      - Certificates are always verified; there is no option to turn verification off.
    type: path
requirements:
  - python >= 3.9
  - azure-identity >= 1.19.0
  - azure-core >= 1.30.0
notes:
  - For Ansible Automation Platform and AWX, the "Microsoft Azure Resource Manager" credential type sets
    E(AZURE_SUBSCRIPTION_ID), E(AZURE_CLIENT_ID), E(AZURE_SECRET), E(AZURE_TENANT) and
    E(AZURE_CLOUD_ENVIRONMENT), which these modules read.
  - Options shared by several tasks are best set once with C(module_defaults) and the group
    C(group/azure_flex.vmss.all).
  - The collection's C(docs/authentication.md) explains each credential source with examples.
  - Each task fetches its own access token unless E(AZURE_FLEX_TOKEN_CACHE) is V(persistent) (azure-identity's
    persistent token cache, in a file readable by its owner only where it cannot be encrypted) or
    V(encrypted) (never in clear); the default V(memory) writes nothing. See C(docs/authentication.md).
"""
