"""The compute modules import one another in a cycle (a scale set's member is a VM, an upgrade is a VM action;
vmmodel imports its siblings last): whichever of them a program imports first, the package loads and
registers every route once."""

from __future__ import annotations

import functools
import os
import subprocess
import sys

import pytest

EMULATOR_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPUTE_MODULES = ("vmmodel", "vms", "extensionmodel", "extensions", "scalesetmodel", "scalesets", "upgrades")
PROBE = """
import importlib, sys
importlib.import_module("armemu." + sys.argv[1])
from armemu import app
from armemu.http import ROUTES
print(len(ROUTES), len({(tuple(sorted(r.methods)), r.pattern) for r in ROUTES}))
"""


@functools.cache
def _routes_after_importing(module):
    """(routes, distinct method/pattern pairs) once ``module`` was imported first in a fresh interpreter."""
    result = subprocess.run([sys.executable, "-c", PROBE, module], cwd=EMULATOR_DIR, capture_output=True, text=True,
                            timeout=60, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    assert result.returncode == 0, result.stderr[-3000:]
    return tuple(int(n) for n in result.stdout.split())


def test_compute_py_is_split():
    present = {name[:-3] for name in os.listdir(os.path.join(EMULATOR_DIR, "armemu")) if name.endswith(".py")}
    assert set(COMPUTE_MODULES) <= present
    assert "compute" not in present


@pytest.mark.parametrize("module", COMPUTE_MODULES)
def test_any_compute_module_can_be_imported_first(module):
    total, distinct = _routes_after_importing(module)
    assert total == distinct, "a route was registered twice"
    assert total == _routes_after_importing("app")[0]
