# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The rolling roles' filters: thin calls of the engine, with its errors as filter errors."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.azure_flex.vmss.plugins.filter import rolling as filters
from ansible_collections.azure_flex.vmss.plugins.module_utils import _rolling_plan, _rolling_run


SCALE_SET = {"id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
                   "Microsoft.Compute/virtualMachineScaleSets/web", "name": "web", "resource_group": "rg", "zones": []}


def a_run():
    members = [{"name": "web_%d" % i, "fault_domain": i % 2, "power_state": "running", "provisioning_state": "Succeeded",
                "health": "healthy", "zones": [], "tags": {}} for i in range(4)]
    settings = _rolling_plan.RollingSettings()
    plan = _rolling_plan.plan_batches(members, settings, "r1", SCALE_SET)
    return _rolling_run.new_run(plan, settings, "r1", False, [], SCALE_SET, members, 0.0)


def test_the_filters_are_registered():
    assert sorted(filters.FilterModule().filters()) == ["rolling_failure_message", "rolling_latest_run",
                                                        "rolling_summary", "rolling_summary_lines"]


def test_the_filters_are_the_engine():
    run = a_run()
    later = dict(run, steps=2)
    assert filters.rolling_latest_run([{"run": run}, {"run": later}, {"skipped": True}], run["token"]) is later
    summary = filters.rolling_summary(run, {})
    assert summary == _rolling_run.summarize(run, None, now=summary["seconds"] + run["started"])
    assert filters.rolling_summary_lines(summary) == _rolling_run.summary_lines(summary)
    assert filters.rolling_failure_message(summary) == ""


def test_engine_errors_are_filter_errors():
    with pytest.raises(AnsibleFilterError, match="no step of this run returned its state"):
        filters.rolling_latest_run([{"skipped": True}], "token")
    with pytest.raises(AnsibleFilterError, match="expects the list of the steps' registered results"):
        filters.rolling_latest_run({"run": {}}, "token")
    with pytest.raises(AnsibleFilterError, match="run must be the 'run'"):
        filters.rolling_summary({"run_id": "r1"})
