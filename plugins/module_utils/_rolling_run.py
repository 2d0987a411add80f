# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""The state of a rolling run from step to step, and what it reports; no I/O.

The state of a run travels from step to step in one dict: ``new_run`` makes it from the plan (with the plan's
read, reused by the first batch), ``check_run`` refuses anything else, ``latest_run`` picks it from the
registered results of the steps, and each step of the engine (``_rolling``) returns it updated
(``advance_run``, ``stopped_run``). A batch's report is one dict (``empty_report``), printed by ``batch_line``;
``summarize`` turns the run into the run's summary, which ``summary_lines`` and ``failure_message`` put in words.
The filters of the rolling roles (``plugins/filter/rolling.py``) need this room only.
"""

from __future__ import annotations

import time
import uuid

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import ScaleSetRef
from ansible_collections.azure_flex.vmss.plugins.module_utils._rolling_plan import DONE_TAG, describe_entries, name_key


# ------------------------------------------------------------------------------------------------
# The state of a run, from step to step
# ------------------------------------------------------------------------------------------------

SNAPSHOT_KEYS = ("name", "id", "resource_group", "power_state", "provisioning_state", "health", "fault_domain",
                 "zones", "tags")


def compact_member(member):
    """What the engine keeps of a member between steps."""
    return {key: member.get(key) for key in SNAPSHOT_KEYS}


def new_run(plan, settings, run_id, resumed, notes, scale_set, members, now):
    """The state of a run right after its plan (``members`` is the plan's read, reused by the first batch)."""
    return {
        "token": uuid.uuid4().hex, "run_id": run_id, "action": settings.action, "marker": plan["marker"],
        "done_tag": DONE_TAG, "resumed": resumed, "notes": notes,
        "scale_set": {key: scale_set[key] for key in ("id", "name", "resource_group")},
        "automatic_repairs": scale_set.get("automatic_repairs"),
        "started": now, "steps": 0, "batch_size": plan["batch_size"], "batch_by": plan["batch_by"],
        "batches_planned": len(plan["batches"]), "to_process": plan["to_process"], "skipped": plan["skipped"],
        "done_before": plan["done_before"],
        "processed": [], "done": [], "failed": [], "unhealthy": [], "late_skipped": [], "batches": [],
        "stopped": False, "stop_reason": "",
        "snapshot": {"time": now, "members": [compact_member(member) for member in members]},
    }


RUN_KEYS = ("token", "run_id", "action", "marker", "scale_set", "steps", "processed", "done", "failed", "batches")


def check_run(run):
    """Refuse a ``run`` that is not the state a plan (or a previous step) returned."""
    if not isinstance(run, dict) or any(key not in run for key in RUN_KEYS):
        raise InvalidInputError("run must be the 'run' that the plan step (or the previous step) of flex_rolling_batch "
                                "returned")
    ScaleSetRef.parse(run["scale_set"].get("id"))
    return run


def latest_run(results, token):
    """Of the registered results of a run's steps, the ``run`` of the most recent one (most steps) with ``token``.

    Results without a run (skipped or failed tasks) are ignored; so are runs of another plan.
    """
    runs = [result["run"] for result in results
            if isinstance(result, dict) and isinstance(result.get("run"), dict) and result["run"].get("token") == token]
    if not runs:
        raise InvalidInputError("no step of this run returned its state")
    return max(runs, key=lambda run: run.get("steps", 0))


def empty_report(batch, **values):
    """The report of one step on ``batch``, with ``values`` set and everything else as if nothing happened."""
    report = {"number": batch["number"], "domain": batch.get("domain"), "members": list(batch["members"]),
              "ran": False, "acted": [], "passed": [], "done": [], "failed": [], "unhealthy": [], "skipped": [],
              "precheck": None, "postcheck": None, "action_seconds": None, "health_seconds": None, "seconds": 0.0,
              "marked": False, "stop_reason": ""}
    report.update(values)
    return report


def advance_run(run, snapshot=None, **changes):
    """``run`` one step further, with ``changes``; ``snapshot`` (members just read) is kept for the next step."""
    run = dict(run, **changes)
    run["steps"] = run.get("steps", 0) + 1
    if snapshot is not None:
        run["snapshot"] = {"time": time.time(), "members": [compact_member(member) for member in snapshot]}
    return run


def stopped_run(run, reason, report):
    """``run`` stopped for ``reason``, with the report of the step that stopped it."""
    return dict(run, stopped=True, stop_reason=reason, batches=run["batches"] + [report])


def unique_names(names):
    """``names`` without repeats (compared as Azure does, ignoring case), in their first order."""
    seen, result = set(), []
    for name in names:
        if name_key(name) not in seen:
            seen.add(name_key(name))
            result.append(name)
    return result


# ------------------------------------------------------------------------------------------------
# Reports
# ------------------------------------------------------------------------------------------------

def batch_line(report, run):
    """One line for the job output: the batch, its domain, action time, health wait, outcome, progress."""
    head = "batch %d/%d%s" % (report["number"], run["batches_planned"],
                              " (%s)" % report["domain"] if report["domain"] else "")
    parts = []
    if report["ran"]:
        parts.append("%s %s" % (run["action"], ", ".join(report["acted"])) if report["acted"] else
                     "nothing to %s" % run["action"])
        if report["action_seconds"] is not None:
            parts.append("action %.1f s, health wait %.1f s" % (report["action_seconds"], report["health_seconds"]))
        parts.append("%d/%d serving again%s" % (len(report["passed"]), len(report["acted"]),
                                                "" if report["marked"] or not report["passed"] else " (not marked yet)"))
    else:
        parts.append("not run")
    if report["failed"]:
        parts.append("failed: %s" % describe_entries(report["failed"]))
    if report["unhealthy"]:
        parts.append("unhealthy: %s" % describe_entries(report["unhealthy"]))
    if report["skipped"]:
        parts.append("skipped: %s" % describe_entries(report["skipped"]))
    parts.append("%d/%d done in this run, %.1f s" % (len(run["done"]), len(run["to_process"]), report["seconds"]))
    if report["stop_reason"]:
        parts.append("STOP: %s" % report["stop_reason"])
    return "%s: %s" % (head, "; ".join(parts))


def summarize(run, failure=None, now=None):
    """The run's summary (the roles publish it as ``rolling_restart_summary`` / ``rolling_reimage_summary``).

    ``failure`` (``{"task", "msg", "batch"}``) describes a task of the role that failed outside the engine's own
    decisions (a hook, a check task, an Azure error before acting): it stops the run too, and the members of
    batch ``batch`` that were acted on but not marked done count as failed.
    """
    now = time.time() if now is None else now
    stopped, reason = run["stopped"], run["stop_reason"]
    processed, failed, done = list(run["processed"]), list(run["failed"]), list(run["done"])
    if failure:
        task_reason = "in batch %s, the task '%s' failed: %s" % (failure.get("batch") or "?", failure.get("task"),
                                                                 failure.get("msg") or "no message")
        if not stopped:
            stopped, reason = True, task_reason
        last = run["batches"][-1] if run["batches"] else None
        if last is not None and str(last["number"]) == str(failure.get("batch")):
            settled = {name_key(name) for name in done} | {name_key(entry["name"]) for entry in failed}
            victims = [name for name in last["acted"] if name_key(name) not in settled]
            failed += [{"name": name, "reason": task_reason} for name in victims]
            processed = unique_names(processed + victims)
    failed_keys = {name_key(entry["name"]) for entry in failed}
    late = {name_key(entry["name"]) for entry in run["late_skipped"]}
    processed_keys = {name_key(name) for name in processed}
    done_before = {name_key(name) for name in run["done_before"]}
    return {
        "run_id": run["run_id"], "action": run["action"], "resource_group": run["scale_set"]["resource_group"],
        "scale_set": run["scale_set"]["name"], "done_tag": "%s=%s" % (run["done_tag"], run["marker"]),
        "resumed": run["resumed"], "notes": run["notes"], "automatic_repairs": run.get("automatic_repairs"),
        "batch_size": run["batch_size"], "batch_by": run["batch_by"], "batches_planned": run["batches_planned"],
        "batches_run": sum(1 for batch in run["batches"] if batch["ran"]),
        "done": done, "done_before": run["done_before"],
        "skipped": [entry for entry in run["skipped"] if name_key(entry["name"]) not in done_before] + run["late_skipped"],
        "failed": [{"name": entry["name"], "reason": entry["reason"]} for entry in failed],
        "unhealthy": [entry for entry in run["unhealthy"] if name_key(entry["name"]) not in failed_keys],
        "not_processed": [name for name in run["to_process"] if name_key(name) not in processed_keys and name_key(name) not in late],
        "aborted": stopped, "abort_reason": reason,
        "seconds": round(now - run["started"], 1),
        "batches": run["batches"],
    }


def summary_lines(summary):
    """The summary for the job output."""
    def entries(items):
        return ", ".join("%s (%s)" % (entry["name"], entry["reason"]) for entry in items)

    by = ", by %s" % summary["batch_by"].replace("_", " ") if summary["batch_by"] != "none" else ""
    lines = ["run %s: %s of %s/%s %s in %s s; batches run %d/%d (at most %d members each%s)" % (
        summary["run_id"], summary["action"], summary["resource_group"], summary["scale_set"],
        "STOPPED" if summary["aborted"] else "finished", summary["seconds"], summary["batches_run"],
        summary["batches_planned"], summary["batch_size"], by),
        "done: %d %s" % (len(summary["done"]), ", ".join(summary["done"]))]
    if summary["done_before"]:
        lines.append("done in an earlier attempt of this run: %d %s"
                     % (len(summary["done_before"]), ", ".join(summary["done_before"])))
    for key in ("skipped", "failed", "unhealthy"):
        if summary[key]:
            lines.append("%s: %s" % (key, entries(summary[key])))
    if summary["not_processed"]:
        lines.append("not processed: %s" % ", ".join(summary["not_processed"]))
    if summary["aborted"]:
        lines.append("stopped %s" % summary["abort_reason"])
    lines.append("batch durations (s): %s" % ", ".join(str(batch["seconds"]) for batch in summary["batches"]))
    return lines


def failure_message(summary):
    """Why the role fails (it stopped, or members failed), or '' when it does not."""
    if not summary["aborted"] and not summary["failed"]:
        return ""
    unhealthy = [entry["name"] for entry in summary["unhealthy"]] + [entry["name"] for entry in summary["failed"]]
    return ("The rolling %s of %s (run %s) %s. Unhealthy: %s. Not processed: %s. Relaunch with the same run id "
            "(run_id=%s) to continue with the members not yet done." % (
                summary["action"], summary["scale_set"], summary["run_id"],
                "stopped " + summary["abort_reason"] if summary["aborted"] else "finished with failed members",
                ", ".join(unhealthy) or "none", ", ".join(summary["not_processed"]) or "none", summary["run_id"]))
