# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run a module's main() end to end over a scripted ARM (the ``run_module`` fixture of tests/unit/conftest.py).

Only the credential, the environment and the transport are replaced (the transport's sleeps are recorded, not
slept): argument parsing, AzureFlexModule, the selection, every SDK client and its pipeline (retry policy, LRO
polling, deserialisation) and exit_json/fail_json run for real.
"""

from __future__ import annotations

import collections
import json

import pytest
from ansible.module_utils.common import warnings as ansible_warnings

try:
    from ansible.module_utils import _internal as ansible_internal  # ansible-core 2.19 and later
except ImportError:  # older ansible-core has no controller switch: module warnings always go into the result
    ansible_internal = None

from ansible_collections.azure_flex.vmss.plugins.module_utils import _clients
from ansible_collections.azure_flex.vmss.plugins.module_utils._module import AzureFlexModule
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import (
    SUBSCRIPTION_ID,
    FakeCredential,
    clients_over,
)
from ansible_collections.azure_flex.vmss.tests.unit.utils.module_args import patch_module_args

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

    @property
    def warnings(self):
        """The texts of the task's warnings (ansible-core 2.19 reports each as a structured summary)."""
        return [warning if isinstance(warning, str) else (warning.get("event") or warning).get("msg")
                for warning in self.result.get("warnings") or []]


def writes(requests):
    return [request for request in requests if request.method not in ("GET", "HEAD")
            and "/providers/Microsoft.ResourceGraph/" not in request.url]


def run_main(module, args, arm, capsys, monkeypatch):
    """Run ``module.main()`` with ``args`` (resource_group and scale_set default to the ARM's) over ``arm``."""
    built = []
    real_init = AzureFlexModule.__init__

    def init(self, *a, **kw):
        kw["environ"] = dict(CREDENTIAL_ENVIRONMENT)
        real_init(self, *a, **kw)

    def scripted_clients(credential, subscription_id, cloud, deadline=None, polling_interval=None, ca_bundle=None):
        # Built when the module first uses its clients, with the deadline and polling interval it has then.
        clients, adapter, _sleeps = clients_over(arm, polling_interval=polling_interval, ca_bundle=ca_bundle,
                                                 deadline=deadline)
        built.append(adapter)
        return clients

    defaults = {"resource_group": getattr(arm, "resource_group", None), "scale_set": getattr(arm, "scale_set", None)}
    given = dict(defaults, **args)
    given = {key: value for key, value in given.items() if value is not None}
    capsys.readouterr()
    with monkeypatch.context() as patch:
        patch.setattr(AzureFlexModule, "__init__", init)
        patch.setattr(_clients, "build_credential", lambda settings, cloud: FakeCredential())
        patch.setattr(_clients, "AzureClients", scripted_clients)
        as_a_module_process(patch)
        with patch_module_args(given):
            with pytest.raises(SystemExit) as exited:
                module.main()
    requests = [request for adapter in built for request in adapter.requests]
    return ModuleRun(exited.value.code, json.loads(capsys.readouterr().out), requests)


def as_a_module_process(patch):
    """Make ansible-core treat this run as a module process: warnings go into the result, none of an earlier run.

    Once controller code is imported (the inventory, action and filter plugin tests do), ansible-core 2.19 sends
    module warnings to the controller's display instead of the result.
    """
    if ansible_internal is not None:
        patch.setattr(ansible_internal, "is_controller", False)
    for name in ("_global_warnings", "_global_deprecations"):
        if hasattr(ansible_warnings, name):
            patch.setattr(ansible_warnings, name, type(getattr(ansible_warnings, name))())


def module_over(arm, args=None, argument_spec=None):
    """``(module, adapter)``: a real AzureFlexModule with the task options ``args`` whose clients talk to ``arm``.

    For tests of module_utils functions that take the module (fan_out, deadline, clients, warn...): everything
    they use is the real thing, only the transport is scripted.
    """
    with patch_module_args(dict(args or {})):
        module = AzureFlexModule(argument_spec or {}, supports_check_mode=True,
                                 environ=dict(CREDENTIAL_ENVIRONMENT))
    clients, adapter, _sleeps = clients_over(arm, deadline=module.deadline)
    module.clients = clients
    return module, adapter
