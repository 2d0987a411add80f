# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One execution environment for azure.azcollection and azure_flex.vmss: both keep working.

Runs in .venv-shared (both collections' requirements installed by one pip command, as ansible-builder
does for an execution environment), inside `python -m armemu.launcher run`, so the emulator's
environment variables are set. tests/shared_env/run.sh runs it, then this collection's lock
integration target in the same venv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version

import pytest
import requests

SHARED_VENV_PYTHON = sys.executable


def emulator_endpoints():
    env = os.environ
    metadata = requests.get(env["AZURE_CLOUD_ENVIRONMENT"] + "/metadata/endpoints?api-version=2019-05-01",
                            verify=env["REQUESTS_CA_BUNDLE"], timeout=30).json()
    return metadata[0] if isinstance(metadata, list) else metadata


def test_azcollections_pinned_resource_package_is_the_one_installed():
    assert version("azure-mgmt-resource") == "23.2.0"
    # This collection requires neither of the packages that write into azure/mgmt/resource/locks/.
    with pytest.raises(PackageNotFoundError):
        version("azure-mgmt-resource-locks")


def test_pip_sees_no_conflict():
    completed = subprocess.run([SHARED_VENV_PYTHON, "-m", "pip", "check"], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_azcollections_lock_models_call_works():
    """What azure.azcollection's azure_rm_lock does: ManagementLockClient.models('2016-09-01')."""
    from azure.mgmt.resource.locks import ManagementLockClient

    models = ManagementLockClient.models("2016-09-01")
    lock = models.ManagementLockObject(level="CanNotDelete", notes="shared EE")
    assert lock.level == "CanNotDelete"


def test_azcollections_lock_client_round_trip_at_its_api_version():
    """azure.azcollection's lock client (multi-API, 2016-09-01) creates, reads and deletes a lock."""
    from azure.identity import ClientSecretCredential
    from azure.mgmt.resource.locks import ManagementLockClient

    env = os.environ
    endpoints = emulator_endpoints()
    audience = endpoints["authentication"]["audiences"][0]
    credential = ClientSecretCredential(env["AZURE_TENANT"], env["AZURE_CLIENT_ID"], env["AZURE_SECRET"],
                                        authority=endpoints["authentication"]["loginEndpoint"],
                                        disable_instance_discovery=True, connection_verify=env["REQUESTS_CA_BUNDLE"])
    client = ManagementLockClient(credential, env["AZURE_SUBSCRIPTION_ID"], api_version="2016-09-01",
                                  base_url=endpoints["resourceManager"], credential_scopes=[audience + "/.default"],
                                  connection_verify=env["REQUESTS_CA_BUNDLE"])
    models = ManagementLockClient.models("2016-09-01")
    scope = "/subscriptions/%s/resourceGroups/%s" % (env["AZURE_SUBSCRIPTION_ID"], resource_group())

    created = client.management_locks.create_or_update_by_scope(scope, "shared-ee", models.ManagementLockObject(
        level="CanNotDelete", notes="written by azure.azcollection's client"))
    assert created.level == "CanNotDelete"
    assert client.management_locks.get_by_scope(scope, "shared-ee").notes == "written by azure.azcollection's client"
    client.management_locks.delete_by_scope(scope, "shared-ee")


def test_this_collections_lock_reader_works_in_the_same_environment():
    """Our locks client (REST over azure-mgmt-core) beside azure.azcollection's SDK pins."""
    script = (
        "import json, sys\n"
        "from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import import_client_class\n"
        "print(json.dumps(import_client_class('locks').__module__))\n"
    )
    completed = subprocess.run([SHARED_VENV_PYTHON, "-c", script], capture_output=True, text=True, check=False,
                               env=dict(os.environ, PYTHONPATH=os.environ["AZURE_FLEX_COLLECTIONS_PATH"]))
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout).endswith("_arm_rest")


def resource_group():
    # The launcher's default scenario (tests/emulator/scenarios/demo.yml).
    return "demo-rg"
