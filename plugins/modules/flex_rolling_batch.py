#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: flex_rolling_batch
short_description: One step of a rolling restart, reimage or redeploy of a Flexible scale set
version_added: 0.2.0
description:
  - Runs one step of a rolling run over the members of an Azure Flexible scale set, the way Azure's rolling
    upgrade policy rolls out model changes, for actions that policy does not cover (restart, reimage,
    redeploy). The roles C(azure_flex.vmss.rolling_restart) and C(azure_flex.vmss.rolling_reimage) are built on it;
    use them unless you write your own orchestration.
  - O(step=plan) reads every member (power state, provisioning state, application health, locks, tags) and
    plans the batches, without writing anything. It names the run (see O(run_id)) and returns its state,
    RV(run), which every later step takes and returns updated.
  - O(step=batch) runs one batch of the plan (O(batch)), in one task. It reads the members once (or reuses the
    previous step's read, see O(reuse_read_seconds)) and stops before the batch when more than
    O(max_unhealthy_percent) of them are unhealthy; acts on all the batch's members at once; waits for each to
    serve again for at most O(health_timeout) seconds of wall-clock time (running, provisioning C(Succeeded),
    and C(healthy) when the Application Health extension is installed; C(initializing) is waited through,
    C(unknown) counts as unhealthy); marks each member that serves again done (tag C(azure-flex-rolling-run)
    with the value C(<action>:<run id>)); and reads every member again to check that at most
    O(max_unhealthy_processed_percent) of the members processed in this run are unhealthy or failed. A stop is
    reported in RV(stop_reason), not as a failure, so the caller can still run its own tasks for the batch.
  - O(step=batches) runs several batches of the plan (O(batches)) one after the other in one task, each exactly
    as O(step=batch) does, and stops at the first stop. The roles use it when nothing of the user's runs between
    two batches (no hooks, no checks, no pause), so the batches do not each pay the start of a module, a login
    and a read of their own; each batch still gets its own line in the job output as soon as it ends.
  - O(step=precheck) only checks the unhealthy share before a batch (for callers that run their own tasks
    before the batch); O(step=mark) marks members done (when the caller's own checks run between the health
    gate and the mark, with O(mark=false) on the batch).
  - Plan and steps are one module so that they share one set of options, one validation (every input is
    checked before the plan's first read, let alone the first write) and one health rule.
  - The answer includes RV(lines), the step in words (the plan, or one line for the batch); the module's action
    plugin prints them, and prints a line every 15 seconds while a step runs, so a long batch never looks hung.
author:
  - azure_flex.vmss maintainers (@azure-flex)
options:
  resource_group:
    description:
      - Resource group of the Flexible scale set.
    type: str
    required: true
  scale_set:
    description:
      - Name of the Flexible scale set.
    type: str
    required: true
  step:
    description:
      - Which step of the run to make (see the description).
    type: str
    default: batch
    choices: [plan, precheck, batch, batches, mark]
  action:
    description:
      - The action of the run.
      - V(upgrade) brings members to the scale set's latest model (the scale set's manual upgrade with each member's
        VM name); members already on it are left out of the plan.
    type: str
    default: restart
    choices: [restart, reimage, redeploy, upgrade]
  run_id:
    description:
      - Names the run (O(step=plan)). Members carrying the mark C(<action>:<run id>) are skipped, so an
        interrupted run is resumed by planning it again with the same id.
      - Empty (the default) resumes the most recent unfinished run of the same O(action) that was itself named
        automatically (C(<action>-<UTC time>)) and started less than O(resume_hours) ago, and otherwise makes a
        new id from the time. So relaunching a failed job without a run id continues it rather than starting
        over; the plan says so.
      - C(<action>:<run id>) must fit an Azure tag value (256 characters).
    type: str
    default: ''
  resume_hours:
    description:
      - How recent (hours) an unfinished, automatically named run must be for an empty O(run_id) to resume it
        (0 never resumes).
    type: int
    default: 24
  batch_percent:
    description:
      - Members per batch as a percentage of all members, rounded down, at least 1 (1 to 100; Azure's
        C(maxBatchInstancePercent)). Ignored when O(batch_size) is set.
    type: int
    default: 20
  batch_size:
    description:
      - Members per batch (1 to 1000); overrides O(batch_percent).
    type: int
  batch_by:
    description:
      - Keep every batch within one failure domain, so the other domains stay whole while a batch is down.
      - V(auto) uses the availability zone for a zonal scale set and the fault domain otherwise; the plan says
        which. V(fault_domain) and V(zone) choose; V(none) ignores domains (like Azure's C(enableCrossZoneUpgrade)).
      - Within a domain, batch sizes are balanced (4 members in batches of at most 3 make 2 and 2).
    type: str
    default: auto
    choices: [auto, none, fault_domain, zone]
  unhealthy_first:
    description:
      - Process unhealthy members first (and, with domains, the domains with the most unhealthy members first).
        Azure's C(prioritizeUnhealthyInstances).
    type: bool
    default: false
  include:
    description:
      - Only these members (VM names). Empty means every member.
    type: list
    elements: str
    default: []
  exclude:
    description:
      - Never these members (VM names).
    type: list
    elements: str
    default: []
  protected:
    description:
      - Members protected by a C(ReadOnly) ARM lock (own or inherited) cannot be acted on, Azure refuses.
      - V(skip) leaves them out, V(fail) refuses the plan (and stops a batch whose member got locked since),
        V(attempt) lets Azure decide (they then fail) and reads no lock.
    type: str
    default: skip
    choices: [skip, fail, attempt]
  max_unhealthy_percent:
    description:
      - Before a batch, stop when more than this percentage (0 to 100) of all members is unhealthy. Azure's
        C(maxUnhealthyInstancePercent).
    type: int
    default: 20
  max_unhealthy_processed_percent:
    description:
      - After a batch, stop when more than this percentage (0 to 100) of the members processed in this run is
        unhealthy or failed. Azure's C(maxUnhealthyUpgradedInstancePercent).
    type: int
    default: 20
  health_timeout:
    description:
      - Seconds of wall-clock time (1 to 86400) each member gets to serve again after its action finished.
        A member still not serving then is unhealthy, and the thresholds decide whether the run goes on.
    type: int
    default: 600
  health_poll_seconds:
    description:
      - Seconds between two reads of a member waiting to serve again (1 to O(health_timeout)).
    type: int
    default: 5
  action_timeout:
    description:
      - Seconds (1 to 86400) the action may take on a member before the member counts as failed.
    type: int
    default: 1800
  pause_seconds:
    description:
      - Seconds to wait between two batches (0 to 86400; Azure's C(pauseTimeBetweenBatches)). Validated here; the
        caller makes the pause.
    type: int
    default: 0
  exact_version:
    description:
      - With O(action=reimage), the image version (C(Major.Minor.Patch)) to reimage to, when the VMs' image
        reference uses C(latest).
    type: str
  temp_disk:
    description:
      - With O(action=reimage), also reset the temporary disk (VMs with an ephemeral OS disk only).
    type: bool
  run:
    description:
      - The state of the run as the previous step returned it (RV(run)); required for every step but the plan.
    type: dict
  batch:
    description:
      - With O(step=batch) or O(step=precheck), the batch, as the plan returned it (an element of
        RV(plan.batches), with C(number), C(domain) and C(members)).
    type: dict
  batches:
    description:
      - With O(step=batches), the batches to run in order, as the plan returned them (elements of RV(plan.batches)).
    type: list
    elements: dict
  progress_file:
    description:
      - A file the step appends its progress to (one JSON object a line), for the module's action plugin, which
        prints each batch's line from it as soon as the batch ended. The action plugin sets it when the module runs
        on the controller; you do not need it.
    type: path
  members:
    description:
      - With O(step=mark), the members to mark done.
    type: list
    elements: str
  mark:
    description:
      - With O(step=batch), mark the members that serve again done at once. Set V(false) when your own checks
        must pass first, and mark them with O(step=mark) after the checks.
    type: bool
    default: true
  reuse_read_seconds:
    description:
      - Reuse the members as the previous step read them (at its end) for the check before the batch, when that
        read is at most this many seconds old. 0 (the default) always reads again. The roles set it when nothing
        of yours runs between two batches, so a batch's closing read is the next batch's opening read.
    type: int
    default: 0
  timeout:
    description:
      - Time limit in seconds for the whole step, including retries after throttling. Defaults to
        O(action_timeout) + O(health_timeout) + 300 (for each batch, with O(step=batches)).
    type: int
  max_parallel:
    description:
      - How many members are read at the same time (between 1 and 100). The batch's actions always run all at
        once (up to 100 at a time).
    type: int
    default: 10
  polling_interval:
    description:
      - Seconds between two status checks of a running action, when Azure does not say how long to wait.
    type: int
    default: 5
extends_documentation_fragment:
  - azure_flex.vmss._azure_auth
  - azure_flex.vmss._attributes
  - azure_flex.vmss._attributes.ACTIONGROUP_ALL
attributes:
  check_mode:
    support: full
    details:
      - The plan and the precheck only read, and run normally. The batch and mark steps read and report what
        they would do, with no write call.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - The plan and the precheck change nothing. A batch acts every time it is run; a run planned again with the
        same run id skips the members already marked, so a relaunch does not act on them twice.
seealso:
  - module: azure_flex.vmss.flex_instance_action
  - module: azure_flex.vmss.flex_list_instances
notes:
  - The mark is written with one Tags API C(Merge) at the member's scope; it needs
    C(Microsoft.Resources/tags/write) (Tag Contributor). A member's other tags are kept, whoever writes them meanwhile.
  - When the scale set has automatic instance repairs enabled, the plan says so, because Azure may repair
    (replace, restart or reimage) a member while it is down for the batch.
"""

EXAMPLES = r"""
# The roles azure_flex.vmss.rolling_restart and rolling_reimage do all of this (and hooks, checks, the summary).
- name: Plan a rolling restart of web, one fault domain at a time
  azure_flex.vmss.flex_rolling_batch:
    resource_group: web-rg
    scale_set: web
    step: plan
    run_id: patch-2024-06
  register: plan

- name: Restart the first batch and wait until its members serve again
  azure_flex.vmss.flex_rolling_batch:
    resource_group: web-rg
    scale_set: web
    step: batch
    run_id: patch-2024-06
    run: "{{ plan.run }}"
    batch: "{{ plan.plan.batches[0] }}"
  register: batch1

- name: Stop when the batch crossed a threshold
  ansible.builtin.fail:
    msg: "{{ batch1.stop_reason }}"
  when: batch1.stop_reason | length > 0
"""

RETURN = r"""
lines:
  description: The step in words, as the action plugin prints it (the plan, or one line for a batch).
  returned: always
  type: list
  elements: str
run:
  description:
    - The state of the run after this step; pass it to the next step. Its keys are internal to the engine, except
      C(run_id), C(action), C(marker) (the mark's value), C(done), C(failed), C(stopped) and C(stop_reason).
  returned: always
  type: dict
plan:
  description: The plan (O(step=plan)).
  returned: when O(step=plan)
  type: dict
  contains:
    batches:
      description: The batches in order, each with C(number), C(domain) (null with O(batch_by=none)), C(members)
        and C(unhealthy) (its members unhealthy at planning time).
      type: list
      elements: dict
    to_process:
      description: Every member in the batches, in order.
      type: list
      elements: str
    skipped:
      description: The members not processed, each with C(name) and C(reason).
      type: list
      elements: dict
    done_before:
      description: Members already marked done for this run (resuming).
      type: list
      elements: str
    batch_size:
      description: Members per batch at most.
      type: int
    batch_by:
      description: The failure domain batches keep to (V(auto) resolved), or C(none).
      type: str
    marker:
      description: The value of the mark, C(<action>:<run id>).
      type: str
    total:
      description: How many members the scale set has.
      type: int
check_mode:
  description: Whether the step ran in check mode (nothing was changed).
  returned: always
  type: bool
batches:
  description: What each batch did (O(step=batches)), in order; each as RV(batch).
  returned: when O(step=batches)
  type: list
  elements: dict
batch:
  description: What the batch (or precheck) step did; with O(step=batches), the last batch run.
  returned: when O(step=batch), O(step=batches) or O(step=precheck)
  type: dict
  contains:
    number:
      description: The batch's number.
      type: int
    domain:
      description: The batch's failure domain.
      type: str
    ran:
      description: Whether the batch was acted on (false when a check stopped it first).
      type: bool
    acted:
      description: Members the action was started on.
      type: list
      elements: str
    passed:
      description: Members that serve again.
      type: list
      elements: str
    done:
      description: Members marked done.
      type: list
      elements: str
    failed:
      description: Members whose action failed, with C(name), C(reason) and C(error) (ARM code, message, request id).
      type: list
      elements: dict
    unhealthy:
      description: Members that did not serve again within O(health_timeout), with C(name) and C(reason).
      type: list
      elements: dict
    skipped:
      description: Members of the batch not acted on because they changed since the plan, with C(name) and C(reason).
      type: list
      elements: dict
    precheck:
      description: The unhealthy share before the batch (C(unhealthy), C(total), C(percent), C(max_percent), C(breached)).
      type: dict
    postcheck:
      description: The unhealthy share of the processed members after it.
      type: dict
    action_seconds:
      description: Seconds from the start of the batch until the last member's action finished.
      type: float
    health_seconds:
      description: Seconds from then until the last member served again (or ran out of time).
      type: float
    seconds:
      description: Seconds the step took.
      type: float
stop_reason:
  description: Why the run stops (a threshold was crossed, or a member got locked with O(protected=fail)); empty
    when it goes on.
  returned: when O(step=batch), O(step=batches) or O(step=precheck)
  type: str
marked:
  description: Members marked done (O(step=mark)).
  returned: when O(step=mark)
  type: list
  elements: str
not_marked:
  description: Members that could not be marked done (O(step=mark)), with C(name) and C(reason).
  returned: when O(step=mark)
  type: list
  elements: dict
scale_set:
  description: The scale set (C(id), C(name), C(resource_group), C(automatic_repairs)).
  returned: always
  type: dict
msg:
  description:
    - A one-line summary of the task, naming the run, the step and whether (and why) it stopped.
    - When the task fails, what failed.
  returned: always
  type: str
  sample: "rolling restart patch-2024-06, step batch: done"
elapsed_seconds:
  description: Wall-clock time the step took.
  returned: always
  type: float
retries:
  description: Retries made on throttling (429) and transient errors during the step.
  returned: always
  type: dict
"""

import json
import time

from ansible_collections.azure_flex.vmss.plugins.module_utils._actions import read_latest_model
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import ScaleSetRef
from ansible_collections.azure_flex.vmss.plugins.module_utils._locks import ProtectionReader
from ansible_collections.azure_flex.vmss.plugins.module_utils._module import AzureFlexModule, MemberFailures
from ansible_collections.azure_flex.vmss.plugins.module_utils._resilience import Deadline
from ansible_collections.azure_flex.vmss.plugins.module_utils._rolling import (
    STEPS,
    run_batch,
    run_batches,
    run_mark,
    run_precheck,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._rolling_plan import (
    BATCH_BY,
    PROTECTED_HANDLING,
    ROLLING_ACTIONS,
    RollingSettings,
    choose_run_id,
    plan_batches,
    plan_lines,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._rolling_run import batch_line, check_run, new_run

# Reading the members and checking before and after a batch, on top of the action and the health gate.
STEP_TIME_MARGIN = 300


def argument_spec():
    return dict(
        resource_group=dict(type="str", required=True),
        scale_set=dict(type="str", required=True),
        step=dict(type="str", default="batch", choices=list(STEPS)),
        action=dict(type="str", default="restart", choices=list(ROLLING_ACTIONS)),
        run_id=dict(type="str", default=""),
        resume_hours=dict(type="int", default=24),
        batch_percent=dict(type="int", default=20),
        batch_size=dict(type="int"),
        batch_by=dict(type="str", default="auto", choices=list(BATCH_BY)),
        unhealthy_first=dict(type="bool", default=False),
        include=dict(type="list", elements="str", default=[]),
        exclude=dict(type="list", elements="str", default=[]),
        protected=dict(type="str", default="skip", choices=list(PROTECTED_HANDLING)),
        max_unhealthy_percent=dict(type="int", default=20),
        max_unhealthy_processed_percent=dict(type="int", default=20),
        health_timeout=dict(type="int", default=600),
        health_poll_seconds=dict(type="int", default=5),
        action_timeout=dict(type="int", default=1800),
        pause_seconds=dict(type="int", default=0),
        exact_version=dict(type="str"),
        temp_disk=dict(type="bool"),
        run=dict(type="dict"),
        batch=dict(type="dict"),
        batches=dict(type="list", elements="dict"),
        progress_file=dict(type="path"),
        members=dict(type="list", elements="str"),
        mark=dict(type="bool", default=True),
        reuse_read_seconds=dict(type="int", default=0),
        timeout=dict(type="int"),
        max_parallel=dict(type="int", default=10),
        polling_interval=dict(type="int", default=5),
    )


def run(module):
    params = module.params
    settings = RollingSettings.from_params(params)
    ref = ScaleSetRef(module.subscription_id, params["resource_group"], params["scale_set"])
    if params["timeout"] is None:
        # Before any client exists: the clients take the deadline when they are built.
        batches = len(params["batches"] or []) if params["step"] == "batches" else 1
        module.deadline = Deadline(max(1, batches) * (settings.action_timeout + settings.health_timeout
                                                      + STEP_TIME_MARGIN))
    if params["step"] == "plan":
        return plan(module, settings, ref)
    state = check_run(params["run"] or {})
    if state["scale_set"]["id"].lower() != ref.id.lower():
        raise InvalidInputError("run is the state of a run on %s, not on scale set %s" % (state["scale_set"]["id"], ref.id))
    if state["action"] != settings.action:
        raise InvalidInputError("run is the state of a %s run, not of a %s run" % (state["action"], settings.action))
    if params["step"] == "mark":
        return mark(module, state, params["members"])
    if params["step"] == "batches":
        return batches_step(module, settings, state, params)
    batch = _checked_batch(params["batch"])
    if params["step"] == "precheck":
        report, state = run_precheck(module, settings, state, batch, params["reuse_read_seconds"])
    else:
        report, state = run_batch(module, settings, state, batch, mark=params["mark"],
                                  reuse_read_seconds=params["reuse_read_seconds"])
    return _result(module, state, changed=bool(report["acted"]) and not module.check_mode,
                   lines=[batch_line(report, state)] if params["step"] == "batch" or report["stop_reason"] else [],
                   batch=report, stop_reason=report["stop_reason"])


def plan(module, settings, ref):
    selector = module.selector()
    scale_set = selector.get_scale_set(ref)
    members = selector.list_members(scale_set, member_source="compute")
    if settings.action == "upgrade":
        # Members already on the latest model are left out of the plan.
        read_latest_model(module, scale_set, members)
    if settings.protected != "attempt":
        protections = ProtectionReader(module.clients, module.subscription_id, scale_set,
                                       module.fan_out).protection_by_member(members)
        for member in members:
            member["protection"] = protections.get(member["id"].lower())
    now = time.time()
    run_id, resumed, notes = choose_run_id(settings, members, now)
    the_plan = plan_batches(members, settings, run_id, scale_set)
    state = new_run(the_plan, settings, run_id, resumed, notes, scale_set, members, now)
    result = _result(module, state, plan=the_plan, lines=plan_lines(the_plan, state, scale_set, module.check_mode),
                     scale_set_summary=scale_set)
    if the_plan["protected_refused"]:
        raise MemberFailures(
            "Refusing to %s scale set %s: members protected by ARM locks: %s. Nothing was changed. Remove the "
            "protection, exclude them, or set protected to skip or attempt." % (
                settings.action, ref.name, "; ".join("%s (%s)" % (entry["name"], entry["reason"])
                                                     for entry in the_plan["protected_refused"])), result)
    return result


def batches_step(module, settings, state, params):
    batches = [_checked_batch(batch) for batch in params["batches"] or []]
    if not batches:
        raise InvalidInputError("step=batches needs batches: the batches of the plan to run")
    progress = ProgressFile(params["progress_file"])
    reports, state = run_batches(module, settings, state, batches, params["reuse_read_seconds"], progress)
    progress.close()
    return _result(module, state, changed=any(report["acted"] for report in reports) and not module.check_mode,
                   lines=progress.lines, batches=reports, batch=reports[-1], stop_reason=reports[-1]["stop_reason"])


class ProgressFile:
    """The step's progress, kept for the result and appended to ``progress_file`` (for the action plugin)."""

    def __init__(self, path):
        self.lines = []
        self._handle = None
        if path:
            try:
                self._handle = open(path, "a", encoding="utf-8")  # pylint: disable=consider-using-with
            except OSError:
                pass  # progress is only shown at the end then; the result carries every line

    def __call__(self, kind, text):
        if kind == "line":
            self.lines.append(text)
        if self._handle is not None:
            self._handle.write(json.dumps({kind: text}) + "\n")
            self._handle.flush()

    def close(self):
        if self._handle is not None:
            self._handle.close()


def mark(module, state, names):
    if not names:
        raise InvalidInputError("step=mark needs members: the members to mark done")
    report, state = run_mark(module, state, names)
    line = "marked done: %s" % (", ".join(report["marked"]) or "nobody")
    if report["failed"]:
        line += "; not marked: %s" % ", ".join("%s (%s)" % (entry["name"], entry["reason"]) for entry in report["failed"])
    return _result(module, state, changed=bool(report["marked"]) and not module.check_mode, lines=[line],
                   marked=report["marked"], not_marked=report["failed"])


def _checked_batch(batch):
    if not isinstance(batch, dict) or not isinstance(batch.get("members"), list) or "number" not in batch:
        raise InvalidInputError("batch must be a batch of the plan (number, domain, members)")
    return batch


def _result(module, state, changed=False, lines=None, scale_set_summary=None, **values):
    scale_set = dict(state["scale_set"], automatic_repairs=(scale_set_summary or {}).get("automatic_repairs",
                                                                                         state.get("automatic_repairs")))
    stopped = values.get("stop_reason")
    msg = "rolling %s %s, step %s: %s" % (state["action"], state["run_id"], module.params["step"],
                                          "stopped (%s)" % stopped if stopped else "done")
    result = module.common_result(msg, scale_set, changed=changed, run=state, lines=lines or [],
                                  check_mode=module.check_mode)
    # This module's scale_set also says whether automatic repairs could interfere.
    result["scale_set"] = scale_set
    result.update(values)
    return result


def main():
    module = AzureFlexModule(argument_spec=argument_spec(), supports_check_mode=True)
    module.run(run)


if __name__ == "__main__":
    main()
