# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Make ``ansible_collections.azure_flex.vmss`` importable for the unit tests.

Two ways to run them:

* ``ansible-test units`` from inside ``.../ansible_collections/azure_flex/vmss``: ansible-test installs
  Ansible's collection loader itself, and this file does nothing.
* plain ``pytest tests/unit`` from a checkout with any directory name: the checkout is exposed as
  ``ansible_collections/azure_flex/vmss`` through a symlink in a temporary directory put on ``sys.path``
  (or, when the checkout already sits at such a path, its parent directory is put on ``sys.path``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

import pytest

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTION_PATH_SUFFIX = os.path.join("ansible_collections", "azure_flex", "vmss")


def _running_under_ansible_test():
    return "ansible_pytest_collections" in os.environ.get("PYTEST_PLUGINS", "")


def _expose_collection():
    if COLLECTION_ROOT.endswith(os.sep + COLLECTION_PATH_SUFFIX):
        search_root = COLLECTION_ROOT[:-len(os.sep + COLLECTION_PATH_SUFFIX)]
    else:
        search_root = tempfile.mkdtemp(prefix="azure_flex_vmss_units_")
        atexit.register(shutil.rmtree, search_root, ignore_errors=True)
        namespace_dir = os.path.join(search_root, "ansible_collections", "azure_flex")
        os.makedirs(namespace_dir)
        os.symlink(COLLECTION_ROOT, os.path.join(namespace_dir, "vmss"))
    if search_root not in sys.path:
        sys.path.insert(0, search_root)


if not _running_under_ansible_test():
    _expose_collection()


@pytest.fixture
def run_module(capsys, monkeypatch):
    """``run_module(module, arm, args)``: run ``module.main()`` with ``args`` over ``arm`` (a ScriptedArm, or any
    function of the request), returning a ``ModuleRun`` (exit_code, result, requests; ``.writes``)."""
    # Imported here: the collection is importable only once _expose_collection() has run.
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.azure_flex.vmss.tests.unit.utils.module_runner import run_main

    def runner(module, arm, args):
        return run_main(module, args, arm, capsys, monkeypatch)
    return runner
