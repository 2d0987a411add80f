# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""The rolling engine: restart (or reimage, redeploy) the members of a Flexible scale set batch by batch.

Azure's rolling upgrade policy does this for model changes only. The engine brings its rules to the
other actions, and the roles ``rolling_restart`` / ``rolling_reimage`` drive it through the module
``flex_rolling_batch``, one task per step. The plan (which members, in which batches, under which run id) is
decided without I/O in ``_rolling_plan``; the state of a run and its reports are ``_rolling_run``. This room
runs the steps that talk to Azure:

* **precheck** (``run_precheck``): read every member and check the unhealthy share of the set, without acting.
* **batch** (``run_batch``): check the unhealthy share of the set, act on the batch's members all at once,
  wait (bounded by wall-clock seconds) until each serves again (``HealthGate``), mark those that do, and check
  the unhealthy share of the members processed so far. The answer is one report (``batch_line`` prints it);
  ``run_batches`` runs several in a row.
* **mark** (``run_mark``): mark members done, when the user's own checks ran between the gate and the mark.

*Marks.* Every member that passed gets the tag ``azure-flex-rolling-run=<action>:<run id>`` (``mark_done``,
the one place that writes it), so a run relaunched with the same id skips it.
"""

from __future__ import annotations

import threading
import time

from ansible_collections.azure_flex.vmss.plugins.module_utils._actions import ACTIONS
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    AzureFlexError,
    InvalidInputError,
    OperationTimeoutError,
    member_error,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._fanout import run_bounded
from ansible_collections.azure_flex.vmss.plugins.module_utils._locks import (
    ProtectionReader,
    blocking_locks,
    describe_locks,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._resilience import start_operation, wait_for_poller
from ansible_collections.azure_flex.vmss.plugins.module_utils._tags import merge_tags
from ansible_collections.azure_flex.vmss.plugins.module_utils._rolling_plan import (
    ACTIONABLE_POWER_STATES,
    DONE_TAG,
    SETTLING_PROVISIONING_STATES,
    classify,
    describe_entries,
    mark_of,
    name_key,
    precheck,
    threshold,
    unhealthy_reason,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._rolling_run import (
    advance_run,
    batch_line,
    empty_report,
    stopped_run,
    unique_names,
)

# The steps of flex_rolling_batch (its option step).
STEPS = ("plan", "precheck", "batch", "batches", "mark")

# A member this run marked may still show the provisioning state of the mark's own write (a VM PATCH
# reports Updating until it settles); a fresh read waits this long for that to pass before judging it.
MARK_SETTLE_SECONDS = 30.0
MARK_SETTLE_POLL_SECONDS = 0.5
# Threads for the batch's actions: all of its members at once, up to this many at a time.
MAX_ACTION_THREADS = 100


# ------------------------------------------------------------------------------------------------
# Marks
# ------------------------------------------------------------------------------------------------

def mark_done(module, members, marker):
    """Write the done tag (``DONE_TAG=marker``) on each member; ``{name: None or member_error}``.

    The one place the engine writes its marks, through ``_tags.merge_tags`` (the one place every tag write
    goes through): one Tags API Merge of the done tag at the member's scope, so every other tag, whoever set
    it meanwhile, is kept. The member dict takes the tags Azure reports afterwards. Where a provider answers
    the Merge asynchronously and a later read still shows the write settling, ``settle_own_marks`` makes that
    read wait.
    """
    def write(member):
        member["tags"] = merge_tags(module.clients, member["id"], {DONE_TAG: marker}, module.deadline)

    outcomes = run_bounded(write, members, max(1, min(len(members), MAX_ACTION_THREADS)), module.deadline)
    return {outcome.item["name"]: (None if outcome.ok else member_error(outcome.error)) for outcome in outcomes}


def settle_own_marks(module, members, run):
    """Members this run marked that still show the provisioning state of the mark's write are read again.

    A member is judged by its health, not by the bookkeeping of the engine's own tag write: when it is running,
    serving by its application health, carries this run's mark and only its provisioning state says Updating,
    it is read again (every ``MARK_SETTLE_POLL_SECONDS``, at most ``MARK_SETTLE_SECONDS``) until that settles.
    Returns ``members`` with those read again.
    """
    done = {name_key(name) for name in run["done"]}

    def settling(member):
        return (name_key(member.get("name")) in done and mark_of(member) == run["marker"]
                and member.get("power_state") == "running" and member.get("health") in (None, "healthy")
                and member.get("provisioning_state") in SETTLING_PROVISIONING_STATES)

    by_name = {name_key(member["name"]): member for member in members}
    pending = [member for member in members if settling(member)]
    give_up = time.monotonic() + MARK_SETTLE_SECONDS
    selector = module.selector()
    while pending and time.monotonic() < give_up and module.deadline.allows_wait(MARK_SETTLE_POLL_SECONDS):
        time.sleep(MARK_SETTLE_POLL_SECONDS)
        outcomes = run_bounded(lambda member: selector.read_member(member["resource_group"], member["name"]),
                               pending, max(1, min(len(pending), MAX_ACTION_THREADS)), module.deadline)
        pending = []
        for outcome in outcomes:
            if outcome.ok:
                by_name[name_key(outcome.result["name"])] = outcome.result
                if settling(outcome.result):
                    pending.append(outcome.result)
    return [by_name[name_key(member["name"])] for member in members]


# ------------------------------------------------------------------------------------------------
# The steps that talk to Azure
# ------------------------------------------------------------------------------------------------

def read_all(module, run, reuse_read_seconds=0):
    """Every member now: the previous step's read when at most ``reuse_read_seconds`` old, else a fresh one."""
    snapshot = run.get("snapshot") or {}
    if reuse_read_seconds and snapshot.get("members") is not None \
            and 0 <= time.time() - float(snapshot.get("time") or 0) <= reuse_read_seconds:
        return [dict(member) for member in snapshot["members"]], True
    members = module.selector().list_members(run["scale_set"], member_source="compute")
    return settle_own_marks(module, members, run), False


def run_precheck(module, settings, run, batch, reuse_read_seconds=0):
    """The precheck step: the unhealthy share before a batch, without acting. Returns ``(report, run)``."""
    started = time.monotonic()
    members, reused = read_all(module, run, reuse_read_seconds)
    check, reason = precheck(members, settings, batch["number"])
    run = advance_run(run, snapshot=None if reused else members)
    report = empty_report(batch, precheck=check, seconds=round(time.monotonic() - started, 1), stop_reason=reason)
    if reason:
        run = stopped_run(run, reason, report)
    return report, run


def run_batch(module, settings, run, batch, mark=True, reuse_read_seconds=0):
    """The batch step. Returns ``(report, run)``; a stop is ``report["stop_reason"]``, not an exception.

    1. every member now (one read, or the previous step's when fresh) → the unhealthy share; above the threshold
       the batch is not run;
    2. the batch's members as they are now: gone, not running or (``protected`` skip) locked since the plan are
       skipped; with ``protected`` fail a lock stops the run;
    3. the action on every remaining member at once; each one's wait for serving again starts when its action
       finished and lasts at most ``health_timeout`` seconds (wall clock), reading it every
       ``health_poll_seconds``; a member that serves is marked done at once (``mark``);
    4. every member read again → the unhealthy share of the members processed in this run (failed ones count
       as unhealthy); above the threshold the run stops. That read is the next batch's when it follows at once.
    """
    started = time.monotonic()
    if run.get("stopped"):
        raise InvalidInputError("run %s stopped (%s); plan a new run or relaunch with the same run id"
                                % (run["run_id"], run.get("stop_reason")))
    members, _reused = read_all(module, run, reuse_read_seconds)
    check, reason = precheck(members, settings, batch["number"])
    if reason:
        report = empty_report(batch, precheck=check, seconds=round(time.monotonic() - started, 1), stop_reason=reason)
        return report, stopped_run(advance_run(run, snapshot=members), reason, report)

    todo, skipped, refused = _current_batch(module, settings, members, batch, run["scale_set"])
    if refused:
        reason = ("in batch %d, members were locked since the plan and protected is fail: %s"
                  % (batch["number"], describe_entries(refused)))
        report = empty_report(batch, precheck=check, skipped=skipped, seconds=round(time.monotonic() - started, 1),
                              stop_reason=reason)
        return report, stopped_run(advance_run(run, snapshot=members), reason, report)

    report = empty_report(batch, ran=True, precheck=check, skipped=skipped, marked=bool(mark))
    if module.check_mode:
        report.update(acted=[member["name"] for member in todo], seconds=round(time.monotonic() - started, 1))
        return report, run

    gate = HealthGate(module, settings, run["marker"] if mark else None, run["scale_set"])
    gate.run(todo)
    report.update(acted=gate.acted, passed=gate.passed, done=gate.marked, failed=gate.failed,
                  unhealthy=gate.unhealthy, action_seconds=gate.action_seconds, health_seconds=gate.health_seconds)

    # The processed members' health, and the next batch's read: everyone now, the batch's members as the gate saw
    # them (a fresh read would show the provisioning state of their marks' writes).
    after = _replace(module.selector().list_members(run["scale_set"], member_source="compute"), gate.observed)
    processed = unique_names(run["processed"] + gate.acted + [entry["name"] for entry in gate.failed])
    failed = run["failed"] + gate.failed
    failed_names = {name_key(entry["name"]) for entry in failed}
    unhealthy = [entry for entry in classify(after, processed)["unhealthy"] if name_key(entry["name"]) not in failed_names]
    missing = [name for name in processed if name_key(name) not in {name_key(m["name"]) for m in after}
               and name_key(name) not in failed_names]
    unhealthy += [{"name": name, "reason": "no longer exists"} for name in missing]
    post = threshold(len(unhealthy) + len(failed), len(processed), settings.max_unhealthy_processed_percent)
    report["postcheck"] = post
    if post["breached"]:
        report["stop_reason"] = (
            "after batch %d, %d of the %d processed members (%s %%) were unhealthy or failed, above "
            "max_unhealthy_processed_percent %d: %s" % (batch["number"], post["unhealthy"], post["total"],
                                                        post["percent"], post["max_percent"],
                                                        describe_entries(failed + unhealthy)))
    report["seconds"] = round(time.monotonic() - started, 1)
    run = advance_run(run, snapshot=after, processed=processed, failed=failed, unhealthy=unhealthy,
                      done=unique_names(run["done"] + gate.marked), late_skipped=run["late_skipped"] + skipped,
                      batches=run["batches"] + [report])
    if report["stop_reason"]:
        run = dict(run, stopped=True, stop_reason=report["stop_reason"])
    return report, run


def _replace(members, observed):
    by_name = {name_key(name): member for name, member in observed.items()}
    return [by_name.get(name_key(member["name"]), member) for member in members]


def _current_batch(module, settings, members, batch, scale_set):
    """The batch's members to act on now, those skipped since the plan (with why), those refused (protected=fail)."""
    by_name = {name_key(member["name"]): member for member in members}
    todo, skipped = [], []
    for name in batch["members"]:
        member = by_name.get(name_key(name))
        if member is None:
            skipped.append({"name": name, "reason": "no longer exists"})
        elif member.get("power_state") not in ACTIONABLE_POWER_STATES:
            power = member.get("power_state") or "unknown"
            skipped.append({"name": name, "reason": "not running (power state %s)" % power})
        else:
            todo.append(member)
    refused = []
    if todo and settings.protected != "attempt":
        protections = ProtectionReader(module.clients, module.subscription_id, scale_set,
                                       module.fan_out).protection_by_member(todo)
        unlocked = []
        for member in todo:
            locks = blocking_locks(protections[member["id"].lower()], deleting=False) \
                if member["id"].lower() in protections else []
            if not locks:
                unlocked.append(member)
                continue
            entry = {"name": member["name"], "reason": "protected by lock %s" % describe_locks(locks)}
            (refused if settings.protected == "fail" else skipped).append(entry)
        todo = unlocked
    return todo, skipped, refused


class HealthGate:
    """Act on a batch's members at once and wait for each to serve again; mark those that do.

    Each member's action is started at once (its poller polls in its own thread); the gate thread wakes when
    an action finishes or a member's next read is due. A member whose action finished is read every
    ``health_poll_seconds`` until it serves (then it is marked) or its ``health_timeout`` seconds have passed
    (then it is unhealthy, with the reason seen last). An action not finished after ``action_timeout`` seconds,
    or refused, makes the member failed.
    """

    def __init__(self, module, settings, marker, scale_set):
        self.module = module
        self.settings = settings
        self.marker = marker
        self.action = ACTIONS[settings.action]
        # The scale set goes with the action's options: the model upgrade is a call on the scale set.
        self.action_params = dict(settings.action_params, scale_set=scale_set)
        self.acted, self.passed, self.marked, self.failed, self.unhealthy = [], [], [], [], []
        self.observed = {}
        self.action_seconds = None
        self.health_seconds = None
        self._wake = threading.Event()

    def run(self, todo):
        if not todo:
            return
        started = time.monotonic()
        action_ends = []
        waiting = {}  # name -> {"member", "poller", "action_deadline", "health_deadline", "next_read", "reason"}
        for outcome in run_bounded(self._begin, todo, max(1, min(len(todo), MAX_ACTION_THREADS)),
                                   self.module.deadline):
            member = outcome.item
            if not outcome.ok:
                self._fail(member, outcome.error)
                continue
            self.acted.append(member["name"])
            waiting[member["name"]] = {"member": member, "poller": outcome.result, "health_deadline": None,
                                       "next_read": None, "reason": "did not serve again"}
        action_deadline = started + self.settings.action_timeout
        while waiting:
            now = time.monotonic()
            if self.module.deadline.expired():
                for name in list(waiting):
                    del waiting[name]
                    self.unhealthy.append({"name": name, "reason": "the step's timeout was reached before it served"})
                break
            for name, state in list(waiting.items()):
                if state["health_deadline"] is not None:
                    continue
                if state["poller"].done():
                    try:
                        wait_for_poller(state["poller"], self.module.deadline,
                                        "%s VM %s" % (self.action.description, name))
                    except AzureFlexError as error:
                        del waiting[name]
                        self._fail(state["member"], error)
                        continue
                    action_ends.append(now)
                    state.update(health_deadline=now + self.settings.health_timeout, next_read=now)
                elif now >= action_deadline or self.module.deadline.expired():
                    del waiting[name]
                    self._fail(state["member"], OperationTimeoutError(
                        "The %s did not finish within action_timeout (%d s); it may still complete in Azure"
                        % (self.action.description, self.settings.action_timeout)))
            due = [state for state in waiting.values() if state["next_read"] is not None and state["next_read"] <= now]
            if due:
                self._read(due, waiting)
            if not waiting:
                break
            times = [state["next_read"] for state in waiting.values() if state["next_read"] is not None]
            if any(state["health_deadline"] is None for state in waiting.values()):
                times.append(action_deadline)
            pause = max(0.0, min(times) - time.monotonic()) if times else self.settings.health_poll_seconds
            self._wake.wait(min(pause, self.module.deadline.remaining()))
            self._wake.clear()
        ended = time.monotonic()
        if action_ends:
            self.action_seconds = round(max(action_ends) - started, 1)
            self.health_seconds = round(ended - max(action_ends), 1)

    def _begin(self, member):
        compute = self.module.clients.compute()
        poller = start_operation(lambda: self.action.begin(compute, member, self.action_params),
                                 "%s VM %s" % (self.action.description, member["name"]))
        poller.add_done_callback(lambda _method: self._wake.set())
        return poller

    def _read(self, due, waiting):
        selector = self.module.selector()
        outcomes = run_bounded(lambda state: selector.read_member(state["member"]["resource_group"],
                                                                  state["member"]["name"]),
                               due, max(1, min(len(due), MAX_ACTION_THREADS)), self.module.deadline)
        now = time.monotonic()
        serving = []
        for outcome in outcomes:
            state = outcome.item
            name = state["member"]["name"]
            if outcome.ok:
                current = outcome.result
                self.observed[name] = current
                state["reason"] = unhealthy_reason(current)
                if state["reason"] is None:
                    del waiting[name]
                    serving.append(current)
                    continue
            else:
                state["reason"] = "could not be read: %s" % member_error(outcome.error).get("msg")
            if now >= state["health_deadline"]:
                del waiting[name]
                self.unhealthy.append({"name": name, "reason": "%s after health_timeout (%d s)" % (
                    state["reason"], self.settings.health_timeout)})
            else:
                # On a fixed grid from the action's end, not from when the read came back: reads taking their
                # time must not push the next ones later and later.
                due_next = state["next_read"] + self.settings.health_poll_seconds
                while due_next <= now:
                    due_next += self.settings.health_poll_seconds
                state["next_read"] = min(due_next, state["health_deadline"])
        self.passed.extend(member["name"] for member in serving)
        if serving and self.marker:
            for name, error in mark_done(self.module, serving, self.marker).items():
                if error is None:
                    self.marked.append(name)
                else:
                    self.module.warn("VM %s serves again but could not be marked done: %s; a relaunch of this run "
                                     "will %s it again" % (name, error.get("msg"), self.settings.action))

    def _fail(self, member, error):
        details = member_error(error)
        reason = " ".join(part for part in (details.get("code"), details.get("msg")) if part)
        self.failed.append({"name": member["name"], "reason": reason, "error": details})


def run_batches(module, settings, run, batches, reuse_read_seconds=0, progress=None):
    """Several batches in a row, each exactly as ``run_batch`` makes it (with its marks), stopping at the first
    stop; when nothing else runs between batches, they need not each start a process and a read of their own.

    ``progress(kind, text)``, when given, hears ``("current", what)`` when a batch starts and ``("line", line)``
    when it ended. Returns ``(reports, run)``.
    """
    reports = []
    for batch in batches:
        if progress is not None:
            progress("current", "batch %d/%d%s: %s of %d member(s)" % (
                batch["number"], run["batches_planned"], " (%s)" % batch["domain"] if batch.get("domain") else "",
                settings.action, len(batch["members"])))
        report, run = run_batch(module, settings, run, batch, mark=True, reuse_read_seconds=reuse_read_seconds)
        reports.append(report)
        if progress is not None:
            progress("line", batch_line(report, run))
        if report["stop_reason"] or module.check_mode:
            break
    return reports, run


def run_mark(module, run, names):
    """The mark step: mark members of this run done (after the user's checks). Returns ``(report, run)``."""
    wanted = {name_key(name) for name in names}
    members, _reused = read_all(module, run, reuse_read_seconds=0)
    targets = [member for member in members if name_key(member["name"]) in wanted]
    missing = [name for name in names if name_key(name) not in {name_key(member["name"]) for member in targets}]
    report = {"marked": [], "failed": [{"name": name, "reason": "no longer exists"} for name in missing]}
    if module.check_mode:
        report["marked"] = [member["name"] for member in targets]
        return report, run
    for name, error in mark_done(module, targets, run["marker"]).items():
        if error is None:
            report["marked"].append(name)
        else:
            report["failed"].append({"name": name, "reason": error.get("msg"), "error": error})
    batches = list(run["batches"])
    if batches:
        last = dict(batches[-1])
        last["done"] = unique_names(last["done"] + report["marked"])
        batches[-1] = last
    return report, advance_run(run, snapshot=_replace(members, {m["name"]: m for m in targets}),
                               done=unique_names(run["done"] + report["marked"]), batches=batches)
