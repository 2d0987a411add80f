# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run a module's main() end to end over a scripted ARM (the ``run_module`` fixture of tests/unit/conftest.py).

Only the credential and the transport are replaced: argument parsing, AzureFlexModule, the selection, every
SDK client and its pipeline (retry policy, LRO polling, deserialisation) and exit_json/fail_json run for real.
"""

from __future__ import annotations

import collections
import functools
import json

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils._auth import CloudEndpoints
from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import AzureClients, import_client_class
from ansible_collections.azure_flex.vmss.plugins.module_utils._module import AzureFlexModule
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import (
    BASE_URL,
    SUBSCRIPTION_ID,
    FakeCredential,
    scripted_transport,
)
from ansible_collections.azure_flex.vmss.tests.unit.utils.module_args import patch_module_args

CLOUD = CloudEndpoints("Test", BASE_URL, "https://login.test.invalid", BASE_URL + "/")
# What the AWX credential injects: the module resolves a service principal from it (the credential itself is fake).
CREDENTIAL_ENVIRONMENT = {"AZURE_SUBSCRIPTION_ID": SUBSCRIPTION_ID, "AZURE_CLIENT_ID": "app", "AZURE_SECRET": "s",
                          "AZURE_TENANT": "t"}


class ModuleRun(collections.namedtuple("ModuleRun", "exit_code result requests")):
    """What one run of a module did: its exit code, its result (the JSON it printed), the requests it sent."""

    __slots__ = ()

    @property
    def writes(self):
        """The requests that could change something (Resource Graph's read-only query POST excluded)."""
        return writes(self.requests)


def writes(requests):
    return [request for request in requests if request.method not in ("GET", "HEAD")
            and "/providers/Microsoft.ResourceGraph/" not in request.url]


def run_main(module, args, arm, capsys, monkeypatch):
    """Run ``module.main()`` with ``args`` (resource_group and scale_set default to the ARM's) over ``arm``."""
    transport, adapter = scripted_transport(arm)

    def importer(service):
        return functools.partial(import_client_class(service), transport=transport)

    real_init = AzureFlexModule.__init__

    def init(self, *a, **kw):
        kw["environ"] = dict(CREDENTIAL_ENVIRONMENT)
        real_init(self, *a, **kw)
        self.clients = AzureClients(FakeCredential(), SUBSCRIPTION_ID, CLOUD, deadline=self.deadline,
                                    polling_interval=1, client_importer=importer)

    defaults = {"resource_group": getattr(arm, "resource_group", None), "scale_set": getattr(arm, "scale_set", None)}
    given = dict(defaults, **args)
    given = {key: value for key, value in given.items() if value is not None}
    capsys.readouterr()
    with monkeypatch.context() as patch:
        patch.setattr(AzureFlexModule, "__init__", init)
        with patch_module_args(given):
            with pytest.raises(SystemExit) as exited:
                module.main()
    return ModuleRun(exited.value.code, json.loads(capsys.readouterr().out), list(adapter.requests))
