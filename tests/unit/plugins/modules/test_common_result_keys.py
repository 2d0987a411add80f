# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The result keys every module reports, run through main() over the scripted ARM, and documented in RETURN.

Every result, of a success and of a task with a failed member, has ``changed`` (bool), ``msg`` (str),
``scale_set`` ({id, name, resource_group}), ``elapsed_seconds`` (float) and ``retries`` ({retries,
throttled_responses}). Modules that act on or list members also have ``instances`` (a list; each entry with
``name`` and ``status``, or ``name`` and ``id`` for the listing modules) and ``counts`` (with selected, changed,
skipped, failed, filtered_out).
"""

from __future__ import annotations

import importlib
import os

import pytest
import yaml

from ansible_collections.azure_flex.vmss.tests.unit.utils.scripted_arm import (
    Member,
    ScriptedArm,
    load_balancer,
)

MODULES_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "modules")
COMMON_KEYS = ("changed", "msg", "scale_set", "elapsed_seconds", "retries")
MEMBER_KEYS = ("instances", "counts")
COUNT_KEYS = ("selected", "changed", "skipped", "failed", "filtered_out")
# Modules that neither act on nor list members.
SCALE_SET_MODULES = ("flex_rolling_batch", "flex_upgrade_policy")
# Modules whose instances are listed (name and id) rather than acted on (name and status).
LISTING_MODULES = ("flex_list_instances", "flex_instance_extension_info")
# flex_list_instances reads the members in one selection: a refused read fails the task as a whole (no partial list
# passes for the scale set's members), so its failure result has the common keys only.
WHOLE_TASK_FAILURES = ("flex_list_instances",)
# Ansible's own return values (changed, failed, msg...) are not documented per module, except msg, whose one-line
# summary is this collection's own.
DOCUMENTED_COMMON_KEYS = tuple(key for key in COMMON_KEYS if key != "changed")

NAT_ARGS = {"load_balancer": "web-lb", "name": "ssh", "instances": ["all"], "frontend_port_start": 50000,
            "frontend_port_end": 50010, "backend_port": 22}
EXTENSION_ARGS = {"instances": ["all"], "name": "CustomScript", "publisher": "Microsoft.Azure.Extensions",
                  "type": "CustomScript", "type_handler_version": "2.1"}
FAULTED = {"runningStatus": {"code": "Faulted"}, "progress": {"successfulInstanceCount": 1, "failedInstanceCount": 1},
           "error": {"code": "MaxUnhealthyInstancePercentExceededInRollingUpgrade", "message": "too many unhealthy"}}


def members(**options):
    return ScriptedArm([Member("a", health="healthy"), Member("b", health="healthy", fault_domain=1)], **options)


def refusing(path_pattern, method="PUT", **options):
    """Members a and b; Azure refuses the request on b matching ``path_pattern`` (403, as a missing role does)."""
    arm = members(**options)
    arm.refuse(method, path_pattern, 403, "AuthorizationFailed", "refused", request_id="req-b")
    return arm


# module: (args, the ARM of a success, args and the ARM of a task with a failed member)
SCENARIOS = {
    "flex_instance_action": (
        {"action": "restart", "instances": ["all"]}, members,
        {"action": "restart", "instances": ["all"]}, lambda: refusing(r"/virtualMachines/b/restart$", "POST")),
    "flex_instance_extension": (
        EXTENSION_ARGS, members, EXTENSION_ARGS, lambda: refusing(r"/virtualMachines/b/extensions/")),
    "flex_instance_extension_info": (
        {}, members, {}, lambda: refusing(r"/virtualMachines/b/extensions$", "GET")),
    "flex_instance_lock": (
        {"instances": ["all"], "protection": "scale_in"}, members,
        {"instances": ["all"], "protection": "scale_in"},
        lambda: refusing(r"/virtualMachines/b/providers/Microsoft.Authorization/locks/")),
    "flex_instance_tags": (
        {"instances": ["all"], "set_tags": {"run": "r1"}}, members,
        {"instances": ["all"], "set_tags": {"run": "r1"}},
        lambda: refusing(r"/virtualMachines/b/providers/Microsoft.Resources/tags/default$", "PATCH")),
    "flex_list_instances": (
        {}, members,
        {"member_source": "compute", "instances": ["a", "b"]},
        lambda: refusing(r"/virtualMachines/b/instanceView$", "GET")),
    "flex_nat_rule": (
        NAT_ARGS, lambda: members(load_balancer=load_balancer()),
        NAT_ARGS, lambda: refusing(r"/inboundNatRules/ssh-b$", load_balancer=load_balancer())),
    "flex_rolling_batch": (
        {"step": "plan"}, lambda: members(health_extension=True),
        {"step": "plan", "protected": "fail"},
        lambda: ScriptedArm([Member("a", locks=[{"name": "freeze", "level": "ReadOnly"}]), Member("b")],
                            health_extension=True)),
    "flex_upgrade_policy": (
        {}, members,
        {"rolling_upgrade": "wait"}, lambda: members(rolling_upgrade=FAULTED)),
}


def module_named(name):
    return importlib.import_module("ansible_collections.azure_flex.vmss.plugins.modules.%s" % name)


def violations(name, result, whole_task_failure=False):
    """What ``result`` lacks of the common contract, one sentence each."""
    found = []
    expected_types = {"changed": bool, "msg": str, "scale_set": dict, "elapsed_seconds": float, "retries": dict}
    for key in COMMON_KEYS:
        if key not in result:
            found.append("no %s" % key)
        elif not isinstance(result[key], expected_types[key]):
            found.append("%s is a %s, not a %s" % (key, type(result[key]).__name__, expected_types[key].__name__))
    if isinstance(result.get("scale_set"), dict):
        found.extend("no scale_set.%s" % key for key in ("id", "name", "resource_group") if key not in result["scale_set"])
    if isinstance(result.get("retries"), dict):
        found.extend("no retries.%s" % key for key in ("retries", "throttled_responses") if key not in result["retries"])
    if name in SCALE_SET_MODULES or whole_task_failure:
        return found
    entry_keys = ("name", "id") if name in LISTING_MODULES else ("name", "status")
    instances = result.get("instances")
    if not isinstance(instances, list):
        found.append("no instances list")
    else:
        for entry in instances:
            found.extend("instance %s has no %s" % (entry.get("name"), key) for key in entry_keys if key not in entry)
    counts = result.get("counts")
    if not isinstance(counts, dict):
        found.append("no counts")
    else:
        found.extend("no counts.%s" % key for key in COUNT_KEYS if key not in counts)
    return found


def test_every_module_has_a_scenario():
    shipped = {name[:-3] for name in os.listdir(MODULES_DIR) if name.endswith(".py") and not name.startswith("_")}
    assert shipped == set(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_successful_result_has_the_common_keys(run_module, name):
    args, arm, _failing_args, _failing_arm = SCENARIOS[name]

    run = run_module(module_named(name), arm(), args)

    assert run.exit_code == 0, run.result.get("msg")
    assert violations(name, run.result) == []


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_result_of_a_failed_member_has_the_common_keys(run_module, name):
    _args, _arm, failing_args, failing_arm = SCENARIOS[name]

    run = run_module(module_named(name), failing_arm(), failing_args)

    assert run.exit_code == 1 and run.result["failed"] is True
    assert violations(name, run.result, whole_task_failure=name in WHOLE_TASK_FAILURES) == []


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_return_documentation_documents_the_common_keys(name):
    documented = yaml.safe_load(module_named(name).RETURN) or {}
    keys = DOCUMENTED_COMMON_KEYS + (() if name in SCALE_SET_MODULES else MEMBER_KEYS)

    assert [key for key in keys if key not in documented] == []
