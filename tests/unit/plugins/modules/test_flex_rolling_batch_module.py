# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""flex_rolling_batch end to end: main() over a scripted ARM, every SDK layer real (the engine's
plan and run state: test_rolling_plan.py, test_rolling_run.py).

Named _module: tests/unit/plugins/action/test_flex_rolling_batch.py has the plain name, and pytest needs unique
basenames here.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ansible_collections.azure_flex.vmss.plugins.modules import flex_rolling_batch as module
from ansible_collections.azure_flex.vmss.tests.unit.utils.scripted_arm import Member, ScriptedArm


def healthy_set(*members):
    return ScriptedArm(members or [Member("a", health="healthy"), Member("b", health="healthy", fault_domain=1)],
                       health_extension=True)


def test_the_plan_reads_only_and_puts_each_fault_domain_in_its_own_batch(run_module):
    run = run_module(module, healthy_set(), {"step": "plan"})

    assert run.exit_code == 0 and run.result["changed"] is False
    assert run.writes == []
    assert [(batch["domain"], batch["members"]) for batch in run.result["plan"]["batches"]] == [
        ("fault domain 0", ["a"]), ("fault domain 1", ["b"])]
    assert run.result["lines"][1:] == ["batch 1/2 (fault domain 0): a", "batch 2/2 (fault domain 1): b"]


def test_a_batch_restarts_its_members_only_and_marks_them_done_in_azure(run_module):
    arm = healthy_set()
    plan = run_module(module, arm, {"step": "plan"}).result

    run = run_module(module, arm, {"step": "batch", "run": plan["run"], "batch": plan["plan"]["batches"][0]})

    assert run.exit_code == 0 and run.result["changed"] is True
    assert [urlsplit(request.url).path.split("/virtualMachines/")[1] for request in run.writes] == [
        "a/restart", "a/providers/Microsoft.Resources/tags/default"]
    assert run.writes[1].json() == {"operation": "Merge", "properties": {"tags": {
        "azure-flex-rolling-run": plan["plan"]["marker"]}}}
    assert (run.result["batch"]["passed"], run.result["batch"]["stop_reason"]) == (["a"], "")
    assert arm.member("a").tags == {"azure-flex-rolling-run": plan["plan"]["marker"]}


def test_a_batch_in_check_mode_writes_nothing(run_module):
    arm = healthy_set()
    plan = run_module(module, arm, {"step": "plan"}).result

    run = run_module(module, arm, {"step": "batch", "run": plan["run"], "batch": plan["plan"]["batches"][0],
                                   "_ansible_check_mode": True})

    assert run.exit_code == 0 and run.result["changed"] is False
    assert run.writes == []


def test_a_member_locked_read_only_fails_the_plan_when_protected_is_fail(run_module):
    arm = healthy_set(Member("a", health="healthy", locks=[{"name": "freeze", "level": "ReadOnly"}]),
                      Member("b", health="healthy"))

    run = run_module(module, arm, {"step": "plan", "protected": "fail"})

    assert run.exit_code == 1
    assert run.result["msg"].startswith("Refusing to restart scale set web: members protected by ARM locks: a (")
    assert run.writes == []


def test_a_batch_percent_out_of_range_fails_before_any_request(run_module):
    run = run_module(module, healthy_set(), {"step": "plan", "batch_percent": 0})

    assert run.exit_code == 1 and "batch_percent" in run.result["msg"]
    assert run.requests == []
