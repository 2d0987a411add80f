"""Fixtures: one emulator process per test session, reset before every test, and SDK clients.

Tests drive the emulator only through the public SDK clients and azure-identity
(plus the /_emulator/ control API), never through its internals.
"""

import os
import sys

import pytest
import requests

EMULATOR_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, EMULATOR_DIR)

from armemu.launcher import Emulator  # noqa: E402

# Fast but still asynchronous: every operation takes a few tens of milliseconds,
# and Retry-After 0 makes the SDK poll at the client's polling_interval.
FAST = {"time_scale": 0.02, "retry_after": 0}
POLL = 0.02


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    emu = Emulator(state_dir=str(tmp_path_factory.mktemp("armemu")))
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture()
def emu(emulator):
    """The emulator, reset to the demo scenario with fast timings."""
    emulator.reset()
    emulator.settings(**FAST)
    return emulator


class Sdk:
    """SDK clients configured the way a sovereign-cloud / Azure Stack user configures them."""

    def __init__(self, emu, client_id=None, secret=None):
        from azure.identity import ClientSecretCredential

        env = emu.env
        meta = requests.get(env["AZURE_CLOUD_ENVIRONMENT"] + "/metadata/endpoints?api-version=2022-09-01",
                            verify=env["REQUESTS_CA_BUNDLE"], timeout=10).json()
        self.subscription_id = env["AZURE_SUBSCRIPTION_ID"]
        self.audience = meta["authentication"]["audiences"][0]
        self.credential = ClientSecretCredential(
            env["AZURE_TENANT"], client_id or env["AZURE_CLIENT_ID"], secret or env["AZURE_SECRET"],
            authority=meta["authentication"]["loginEndpoint"], disable_instance_discovery=True,
            connection_verify=env["REQUESTS_CA_BUNDLE"])
        self.kwargs = dict(base_url=meta["resourceManager"], credential_scopes=[self.audience + "/.default"],
                           polling_interval=POLL, connection_verify=env["REQUESTS_CA_BUNDLE"])

    def compute(self, **extra):
        from azure.mgmt.compute import ComputeManagementClient
        return ComputeManagementClient(self.credential, self.subscription_id, **dict(self.kwargs, **extra))

    def network(self, **extra):
        from azure.mgmt.network import NetworkManagementClient
        return NetworkManagementClient(self.credential, self.subscription_id, **dict(self.kwargs, **extra))

    def locks(self, **extra):
        from azure.mgmt.resource.locks import ManagementLockClient
        return ManagementLockClient(self.credential, self.subscription_id, **dict(self.kwargs, **extra))

    def graph(self, **extra):
        from azure.mgmt.resourcegraph import ResourceGraphClient
        return ResourceGraphClient(self.credential, **dict(self.kwargs, **extra))

    def resources(self, **extra):
        try:
            from azure.mgmt.resource.resources import ResourceManagementClient
        except ImportError:  # pragma: no cover - very old azure-mgmt-resource
            from azure.mgmt.resource import ResourceManagementClient
        return ResourceManagementClient(self.credential, self.subscription_id, **dict(self.kwargs, **extra))


@pytest.fixture()
def sdk(emu):
    return Sdk(emu)


def pytest_configure(config):
    config.addinivalue_line("markers", "capacity: a reduced run of bench/capacity.py (emulator scale and latency)")


@pytest.fixture()
def compute(sdk):
    return sdk.compute()


@pytest.fixture()
def raw(sdk, emu):
    """Plain HTTPS requests with a real token, for the wire-level checks the SDKs hide."""
    from _support import Raw

    return Raw(sdk, emu)
