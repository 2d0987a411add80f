# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The state of a rolling run from step to step, and what it reports: its latest state, the summary, the lines."""

from __future__ import annotations

import time

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils import _rolling_run as rolling_run
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import InvalidInputError
from ansible_collections.azure_flex.vmss.tests.unit.plugins.module_utils.rolling_samples import NOW, new_run, web


# -- the state, the summary ---------------------------------------------------------------------

def test_latest_run_picks_the_most_recent_step_of_this_run():
    _plan, run = new_run(web(4))
    later = dict(run, steps=3)
    other = dict(run, token="another", steps=9)
    results = [{"run": run}, {"skipped": True}, {"failed": True, "msg": "x"}, {"run": later}, {"run": other}, {}]
    assert rolling_run.latest_run(results, run["token"]) is later
    with pytest.raises(InvalidInputError):
        rolling_run.latest_run([{"skipped": True}], run["token"])


def test_check_run_refuses_what_is_not_a_run():
    with pytest.raises(InvalidInputError, match="run must be the 'run' that the plan step"):
        rolling_run.check_run({"run_id": "r1"})


def report(batch, **values):
    result = rolling_run.empty_report(batch, ran=True, marked=True, seconds=6.5, action_seconds=4.1, health_seconds=2.0)
    result.update(values)
    return result


def test_summary_of_a_finished_run_keeps_the_roles_keys():
    the_plan, run = new_run(web(4), batch_size=2, batch_by="none")
    first, second = the_plan["batches"]
    reports = [report(first, acted=first["members"], passed=first["members"], done=first["members"]),
               report(second, acted=second["members"], passed=second["members"], done=second["members"])]
    run = dict(run, processed=the_plan["to_process"], done=the_plan["to_process"], batches=reports)
    summary = rolling_run.summarize(run, now=NOW + 14.04)
    assert set(summary) >= {"run_id", "action", "resource_group", "scale_set", "done_tag", "batch_size", "batch_by",
                            "batches_planned", "batches_run", "done", "done_before", "skipped", "failed", "unhealthy",
                            "not_processed", "aborted", "abort_reason", "seconds", "batches"}
    assert (summary["batches_run"], summary["done"], summary["not_processed"], summary["aborted"]) == (
        2, ["web_00", "web_01", "web_02", "web_03"], [], False)
    assert summary["done_tag"] == "azure-flex-rolling-run=restart:r1" and summary["seconds"] == 14.0
    assert rolling_run.failure_message(summary) == ""
    assert rolling_run.summary_lines(summary)[0] == ("run r1: restart of rg/web finished in 14.0 s; batches run 2/2 "
                                                     "(at most 2 members each)")


def test_a_failed_hook_stops_the_run_and_fails_the_batch_members_not_marked():
    the_plan, run = new_run(web(4), batch_size=2, batch_by="none")
    first = the_plan["batches"][0]
    run = dict(run, processed=first["members"], done=[],
               batches=[report(first, acted=first["members"], passed=first["members"], marked=False)])
    summary = rolling_run.summarize(run, {"task": "Each member answers on /healthz", "msg": "HTTP 503", "batch": 1}, now=NOW)
    assert summary["aborted"] and summary["abort_reason"] == \
        "in batch 1, the task 'Each member answers on /healthz' failed: HTTP 503"
    assert [entry["name"] for entry in summary["failed"]] == ["web_00", "web_01"]
    assert summary["not_processed"] == ["web_02", "web_03"]
    message = rolling_run.failure_message(summary)
    assert "stopped in batch 1, the task 'Each member answers on /healthz' failed: HTTP 503" in message
    assert "Relaunch with the same run id (run_id=r1)" in message


def test_a_stop_by_threshold_keeps_its_reason_and_its_unhealthy_members():
    the_plan, run = new_run(web(4), batch_size=2, batch_by="none")
    first = the_plan["batches"][0]
    sick = [{"name": "web_00", "reason": "application health unhealthy after health_timeout (4 s)"}]
    reason = "after batch 1, 1 of the 2 processed members (50.0 %) were unhealthy or failed"
    run = dict(run, processed=first["members"], done=["web_01"], unhealthy=sick, stopped=True, stop_reason=reason,
               batches=[report(first, acted=first["members"], passed=["web_01"], done=["web_01"], unhealthy=sick,
                               stop_reason=reason)])
    summary = rolling_run.summarize(run, {}, now=NOW)
    assert (summary["aborted"], summary["abort_reason"], summary["unhealthy"], summary["failed"]) == (
        True, reason, sick, [])
    assert summary["not_processed"] == ["web_02", "web_03"]
    assert "stopped after batch 1, 1 of the 2 processed members (50.0 %)" in rolling_run.failure_message(summary)
    assert "Unhealthy: web_00." in rolling_run.failure_message(summary)


def test_the_batch_line_says_members_domain_times_outcome_and_progress():
    the_plan, run = new_run(web(6), batch_size=2)
    first = the_plan["batches"][0]
    done = report(first, acted=first["members"], passed=first["members"], done=first["members"])
    run = dict(run, done=first["members"])
    assert rolling_run.batch_line(done, run) == ("batch 1/3 (fault domain 0): restart web_00, web_03; action 4.1 s, health "
                                                 "wait 2.0 s; 2/2 serving again; 2/6 done in this run, 6.5 s")
    stopped = rolling_run.empty_report(first, seconds=0.4, stop_reason="before batch 1, ...")
    assert rolling_run.batch_line(stopped, run) == ("batch 1/3 (fault domain 0): not run; 2/6 done in this run, 0.4 s; "
                                                    "STOP: before batch 1, ...")


def test_new_run_keeps_the_plans_read_for_the_first_batch():
    _plan, run = new_run(web(3))
    assert run["snapshot"]["time"] == NOW
    assert [m["name"] for m in run["snapshot"]["members"]] == ["web_00", "web_01", "web_02"]
    assert set(run["snapshot"]["members"][0]) == set(rolling_run.SNAPSHOT_KEYS)
    assert time.time() > NOW
