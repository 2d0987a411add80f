# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Collection metadata that must stay in step with the code."""

from __future__ import annotations

import os

import yaml

from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import COLLECTION_VERSION

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_yaml(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def test_user_agent_version_matches_galaxy_yml():
    assert load_yaml("galaxy.yml")["version"] == COLLECTION_VERSION


def test_every_module_is_in_the_action_group():
    modules_dir = os.path.join(ROOT, "plugins", "modules")
    modules = sorted(name[:-3] for name in os.listdir(modules_dir) if name.endswith(".py") and name != "__init__.py") \
        if os.path.isdir(modules_dir) else []

    group = load_yaml("meta", "runtime.yml")["action_groups"]["all"]

    assert set(modules) <= set(group)
    assert group == sorted(group)


def test_execution_environment_points_at_shipped_files():
    dependencies = load_yaml("meta", "execution-environment.yml")["dependencies"]
    build_ignore = load_yaml("galaxy.yml")["build_ignore"]

    for path in dependencies.values():
        assert os.path.isfile(os.path.join(ROOT, path))
        assert path not in build_ignore
