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
``flex_rolling_batch``, one task per step:

* **plan** (``plan_run``): which members are processed, in which batches, and why the others are skipped
  (excluded, not included, already done in this run, not running, protected by a lock). Batches never mix
  failure domains unless asked (``batch_by``: ``auto`` is the zone for zonal sets, the fault domain
  otherwise), and their sizes are balanced within a domain (4 members and batches of at most 3 make 2 + 2,
  not 3 + 1). The plan also names the run (see *Resuming*) and says when automatic instance repairs are on.
* **batch** (``run_batch``): check the unhealthy share of the set, act on the batch's members all at once,
  wait (bounded by wall-clock seconds) until each serves again, mark those that do, and check the unhealthy
  share of the members processed so far. The answer is one report (``batch_line`` prints it).
* **mark** (``run_mark``): mark members done, when the user's own checks ran between the gate and the mark.

Health (``unhealthy_reason``) is Azure's: running, provisioning ``Succeeded``, and the Application Health
extension (when installed) ``healthy``; ``initializing`` is waited through, ``unknown`` counts as unhealthy.
A threshold (``threshold``) is crossed when the unhealthy share is *above* it, as in Azure's policy.

*Resuming.* Every member that passed gets the tag ``azure-flex-rolling-run=<action>:<run id>``
(``mark_done``, the one place that writes it), so a run relaunched with the same id skips it. Without a run
id the plan resumes a recent unfinished run of the same action that was itself named automatically, and
otherwise names a new one from the time (``choose_run_id``).

The state of a run travels from step to step in one dict (``new_run``), which each step returns updated;
``summarize`` turns it into the run's summary.
"""

from __future__ import annotations

import datetime
import re
import threading
import time
import uuid

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
from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import ScaleSetRef, validate_vm_name
from ansible_collections.azure_flex.vmss.plugins.module_utils._members import ABSENT

# The tag each member gets once it passed the health gate, valued "<action>:<run id>".
DONE_TAG = "azure-flex-rolling-run"
# Azure's limit for a tag value.
TAG_VALUE_MAX = 256

ROLLING_ACTIONS = ("restart", "reimage", "redeploy", "upgrade")
BATCH_BY = ("auto", "none", "fault_domain", "zone")
PROTECTED_HANDLING = ("skip", "fail", "attempt")
STEPS = ("plan", "precheck", "batch", "batches", "mark")
# Power states from which a rolling action makes sense: the member is (about to be) serving.
ACTIONABLE_POWER_STATES = ("running", "starting")
# States a member passes through on its way back to serving: the health gate waits through them.
SETTLING_POWER_STATES = ("starting", "stopping", "deallocating")
SETTLING_PROVISIONING_STATES = ("Updating", "Creating")

# Run ids made by the engine itself: "<action>-<UTC time of the plan>".
_AUTO_RUN_ID = re.compile(r"^(?P<action>[a-z_]+)-(?P<stamp>\d{8}T\d{6}Z)\Z")
_AUTO_RUN_TIME = "%Y%m%dT%H%M%SZ"
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")

# A member this run marked may still show the provisioning state of the mark's own write (a VM PATCH
# reports Updating until it settles); a fresh read waits this long for that to pass before judging it.
MARK_SETTLE_SECONDS = 30.0
MARK_SETTLE_POLL_SECONDS = 0.5

# Upper bounds of the numeric settings (they make a typo fail before any write, rather than mean a week).
MAX_TIMEOUT_SECONDS = 86400
MAX_PAUSE_SECONDS = 86400
MAX_RESUME_HOURS = 8760
# Threads for the batch's actions: all of its members at once, up to this many at a time.
MAX_ACTION_THREADS = 100


# ------------------------------------------------------------------------------------------------
# Settings
# ------------------------------------------------------------------------------------------------

class RollingSettings:
    """The validated settings of a rolling run (the options of flex_rolling_batch)."""

    def __init__(self, action="restart", run_id="", batch_percent=20, batch_size=None, batch_by="auto",
                 unhealthy_first=False, include=None, exclude=None, protected="skip", max_unhealthy_percent=20,
                 max_unhealthy_processed_percent=20, health_timeout=600, health_poll_seconds=5, action_timeout=1800,
                 pause_seconds=0, resume_hours=24, exact_version=None, temp_disk=None):
        self.action = _choice(action, ROLLING_ACTIONS, "action")
        self.run_id = _run_id(run_id or "", self.action)
        self.batch_percent = _number(batch_percent, "batch_percent", 1, 100)
        self.batch_size = None if batch_size is None else _number(batch_size, "batch_size", 1, 1000)
        self.batch_by = _choice(batch_by, BATCH_BY, "batch_by")
        self.unhealthy_first = bool(unhealthy_first)
        self.include = _names(include, "include")
        self.exclude = _names(exclude, "exclude")
        self.protected = _choice(protected, PROTECTED_HANDLING, "protected")
        self.max_unhealthy_percent = _number(max_unhealthy_percent, "max_unhealthy_percent", 0, 100)
        self.max_unhealthy_processed_percent = _number(max_unhealthy_processed_percent,
                                                       "max_unhealthy_processed_percent", 0, 100)
        self.health_timeout = _number(health_timeout, "health_timeout", 1, MAX_TIMEOUT_SECONDS)
        self.health_poll_seconds = _number(health_poll_seconds, "health_poll_seconds", 1, self.health_timeout)
        self.action_timeout = _number(action_timeout, "action_timeout", 1, MAX_TIMEOUT_SECONDS)
        self.pause_seconds = _number(pause_seconds, "pause_seconds", 0, MAX_PAUSE_SECONDS)
        self.resume_hours = _number(resume_hours, "resume_hours", 0, MAX_RESUME_HOURS)
        if self.action != "reimage" and (exact_version or temp_disk is not None):
            raise InvalidInputError("exact_version and temp_disk apply only to action=reimage, not action=%s"
                                    % self.action)
        if exact_version and not re.match(r"^\d+\.\d+\.\d+\Z", str(exact_version)):
            raise InvalidInputError("exact_version must be Major.Minor.Patch (for example 1.2.3), got %r" % exact_version)
        self.exact_version = exact_version or None
        self.temp_disk = temp_disk

    @classmethod
    def from_params(cls, params):
        names = ("action", "run_id", "batch_percent", "batch_size", "batch_by", "unhealthy_first", "include",
                 "exclude", "protected", "max_unhealthy_percent", "max_unhealthy_processed_percent", "health_timeout",
                 "health_poll_seconds", "action_timeout", "pause_seconds", "resume_hours", "exact_version",
                 "temp_disk")
        return cls(**{name: params.get(name) for name in names if params.get(name) is not None})

    @property
    def action_params(self):
        """The options ``Action.begin`` reads."""
        return {"skip_shutdown": False, "hibernate": False, "temp_disk": self.temp_disk,
                "exact_version": self.exact_version}


def _choice(value, choices, option):
    if value not in choices:
        raise InvalidInputError("%s must be one of %s, got %r" % (option, ", ".join(choices), value))
    return value


def _number(value, option, low, high):
    if isinstance(value, bool):
        raise InvalidInputError("%s must be a whole number, got %r" % (option, value))
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInputError("%s must be a whole number, got %r" % (option, value)) from None
    if number != value and str(number) != str(value).strip():
        raise InvalidInputError("%s must be a whole number, got %r" % (option, value))
    if not low <= number <= high:
        raise InvalidInputError("%s must be between %d and %d, got %d" % (option, low, high, number))
    return number


def _names(value, option):
    if value is None:
        return []
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)):
        raise InvalidInputError("%s must be a list of VM names" % option)
    return [validate_vm_name(str(name).strip(), what="VM name in %s" % option) for name in value]


def _run_id(run_id, action):
    run_id = str(run_id).strip()
    if _CONTROL_CHARACTERS.search(run_id):
        raise InvalidInputError("run_id must not contain control characters")
    marker = done_marker(action, run_id)
    if len(marker) > TAG_VALUE_MAX:
        raise InvalidInputError(
            "run_id is %d characters long: the mark %s=%s:<run id> would be %d characters, and Azure allows at "
            "most %d in a tag value; use a run id of at most %d characters" % (
                len(run_id), DONE_TAG, action, len(marker), TAG_VALUE_MAX, TAG_VALUE_MAX - len(action) - 1))
    return run_id


def done_marker(action, run_id):
    """The value of the done tag for one run: ``<action>:<run id>``."""
    return "%s:%s" % (action, run_id)


def _key(name):
    return str(name or "").lower()


# ------------------------------------------------------------------------------------------------
# Health and thresholds
# ------------------------------------------------------------------------------------------------

def unhealthy_reason(member):
    """Why a member is not serving, or None when it is.

    Serving means: power state running, provisioning succeeded, and application health healthy when the
    Application Health extension reports one (``health`` None means no extension). ``initializing`` is not
    serving yet; ``unknown`` is unhealthy, as in Azure's rolling upgrades.
    """
    power = member.get("power_state")
    if power == ABSENT:
        return "no longer exists"
    if power != "running":
        return "power state %s" % (power or "unknown")
    provisioning = member.get("provisioning_state")
    if provisioning != "Succeeded":
        return "provisioning state %s" % (provisioning or "unknown")
    health = member.get("health")
    if health not in (None, "healthy"):
        return "application health %s" % health
    return None


def is_settling(member):
    """Whether a member not serving is on its way back (booting, initializing, being updated)."""
    return (member.get("health") == "initializing" or member.get("power_state") in SETTLING_POWER_STATES
            or member.get("provisioning_state") in SETTLING_PROVISIONING_STATES)


def classify(members, names=None):
    """Split ``members`` (only those named in ``names``, when given) into serving and not.

    Returns ``{"total", "healthy": [names], "unhealthy": [{"name", "reason"}], "settling": [names]}``.
    """
    wanted = None if names is None else {_key(name) for name in names}
    result = {"total": 0, "healthy": [], "unhealthy": [], "settling": []}
    for member in members:
        if wanted is not None and _key(member.get("name")) not in wanted:
            continue
        result["total"] += 1
        reason = unhealthy_reason(member)
        if reason is None:
            result["healthy"].append(member.get("name"))
            continue
        result["unhealthy"].append({"name": member.get("name"), "reason": reason})
        if is_settling(member):
            result["settling"].append(member.get("name"))
    return result


def threshold(unhealthy, total, max_percent):
    """Whether ``unhealthy`` of ``total`` is above ``max_percent`` percent (Azure's rule), with the numbers.

    Returns ``{"breached", "unhealthy", "total", "percent", "max_percent", "allowed"}``; ``allowed`` is the
    largest count that does not breach. A total of 0 never breaches.
    """
    percent = round(100.0 * unhealthy / total, 1) if total else 0.0
    return {"breached": total > 0 and unhealthy * 100 > max_percent * total, "unhealthy": unhealthy, "total": total,
            "percent": percent, "max_percent": max_percent, "allowed": (max_percent * total) // 100}


# ------------------------------------------------------------------------------------------------
# Planning
# ------------------------------------------------------------------------------------------------

def batch_size_for(total, batch_size=None, batch_percent=20):
    """Members per batch: ``batch_size`` when given, else ``batch_percent`` of ``total`` rounded down, at least 1."""
    if batch_size is not None:
        return batch_size
    return max(1, total * batch_percent // 100)


def resolve_batch_by(batch_by, scale_set, members):
    """``auto`` is ``zone`` for a zonal scale set (or members in zones), ``fault_domain`` otherwise."""
    if batch_by != "auto":
        return batch_by
    zonal = bool((scale_set or {}).get("zones")) or any(member.get("zones") for member in members)
    return "zone" if zonal else "fault_domain"


def domain_of(member, batch_by):
    """The failure domain a member belongs to for ``batch_by`` (None when not batching by domain)."""
    if batch_by == "fault_domain":
        value = member.get("fault_domain")
        return "fault domain %s" % ("unknown" if value is None else value)
    if batch_by == "zone":
        zones = member.get("zones") or []
        return "zone %s" % (",".join(str(zone) for zone in sorted(zones)) if zones else "none")
    return None


def _domain_sort_key(domain):
    # "fault domain 2" before "fault domain 10"; "unknown"/"none" last.
    label = domain.rsplit(" ", 1)[-1]
    return (0, int(label), "") if label.isdigit() else (1, 0, label)


def balanced_sizes(count, size):
    """Split ``count`` members into the fewest batches of at most ``size``, their sizes differing by at most 1."""
    if count <= 0:
        return []
    batches = -(-count // size)
    base, extra = divmod(count, batches)
    return [base + 1] * extra + [base] * (batches - extra)


def plan_batches(members, settings, run_id, scale_set=None):
    """Plan a rolling run over ``members`` (every member of the scale set, with ``protection`` when read).

    Returns the plan: ``batches`` (``[{"number", "domain", "members", "unhealthy"}]``), ``to_process``,
    ``skipped`` (``[{"name", "reason"}]``), ``done_before``, ``protected_refused``, ``total``, ``batch_size``,
    ``batch_by`` (resolved), ``marker``, ``done_tag`` and ``counts``.
    """
    total = len(members)
    size = batch_size_for(total, settings.batch_size, settings.batch_percent)
    batch_by = resolve_batch_by(settings.batch_by, scale_set, members)
    marker = done_marker(settings.action, run_id)
    known = {_key(member.get("name")) for member in members}
    unknown = [name for name in settings.include if _key(name) not in known]
    if unknown:
        raise InvalidInputError("include names VMs that are not members of the scale set: %s" % ", ".join(unknown))
    include_keys = {_key(name) for name in settings.include}
    exclude_keys = {_key(name) for name in settings.exclude}

    skipped, done_before, refused, eligible = [], [], [], []
    for member in sorted(members, key=lambda m: _key(m.get("name"))):
        name = member.get("name")
        reason = None
        if _key(name) in exclude_keys:
            reason = "excluded"
        elif include_keys and _key(name) not in include_keys:
            reason = "not in the include list"
        elif mark_of(member) == marker:
            reason = "already done in run %s" % run_id
            done_before.append(name)
        elif member.get("power_state") not in ACTIONABLE_POWER_STATES:
            reason = "not running (power state %s)" % (member.get("power_state") or "unknown")
        elif settings.action == "upgrade" and member.get("latest_model") is True:
            reason = "already on the latest model"
        else:
            locks = _blocking(member)
            if locks and settings.protected == "skip":
                reason = "protected by lock %s" % describe_locks(locks)
            elif locks and settings.protected == "fail":
                refused.append({"name": name, "reason": "protected by lock %s" % describe_locks(locks)})
                reason = "protected by lock %s (the run refuses to start)" % describe_locks(locks)
        if reason is None:
            eligible.append(member)
        else:
            skipped.append({"name": name, "reason": reason})

    batches = _form_batches(eligible, size, batch_by, settings.unhealthy_first)
    to_process = [name for batch in batches for name in batch["members"]]
    return {
        "total": total, "batch_size": size, "batch_by": batch_by, "marker": marker, "done_tag": DONE_TAG,
        "batches": batches, "to_process": to_process, "skipped": skipped, "done_before": done_before,
        "protected_refused": refused,
        "counts": {"members": total, "to_process": len(to_process), "batches": len(batches),
                   "skipped": len(skipped), "done_before": len(done_before)},
    }


def _blocking(member):
    """The locks that make Azure refuse a restart or reimage (ReadOnly ones), from ``member["protection"]``."""
    protection = member.get("protection")
    return blocking_locks(protection, deleting=False) if protection else []


def _form_batches(eligible, size, batch_by, unhealthy_first):
    """Batches of at most ``size``, balanced, one failure domain each (unless ``batch_by`` is none)."""
    def unhealthy(member):
        return unhealthy_reason(member) is not None

    def order(group):
        ordered = sorted(group, key=lambda m: _key(m.get("name")))
        return sorted(ordered, key=lambda m: not unhealthy(m)) if unhealthy_first else ordered

    if batch_by == "none":
        groups = [(None, order(eligible))] if eligible else []
    else:
        by_domain = {}
        for member in eligible:
            by_domain.setdefault(domain_of(member, batch_by), []).append(member)
        domains = sorted(by_domain, key=_domain_sort_key)
        if unhealthy_first:
            # Domains holding unhealthy members go first (most unhealthy first), so repairs come early.
            domains = sorted(domains, key=lambda d: -sum(1 for m in by_domain[d] if unhealthy(m)))
        groups = [(domain, order(by_domain[domain])) for domain in domains]

    batches = []
    for domain, group in groups:
        start = 0
        for count in balanced_sizes(len(group), size):
            chunk = group[start:start + count]
            start += count
            batches.append({"number": len(batches) + 1, "domain": domain,
                            "members": [member.get("name") for member in chunk],
                            "unhealthy": [member.get("name") for member in chunk if unhealthy(member)]})
    return batches


def mark_of(member):
    """The value of the done tag on a member ('' when it has none); tag names are case-insensitive."""
    for name, value in (member.get("tags") or {}).items():
        if str(name).lower() == DONE_TAG:
            return str(value)
    return ""


# -- naming the run ----------------------------------------------------------------------------------

def new_run_id(action, now):
    """A run id from the time: ``<action>-<UTC time>``, e.g. ``restart-20240601T120000Z``."""
    return "%s-%s" % (action, datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime(_AUTO_RUN_TIME))


def auto_run_started(action, run_id):
    """When an automatically named run of ``action`` started (epoch seconds), or None for other ids."""
    match = _AUTO_RUN_ID.match(run_id or "")
    if not match or match.group("action") != action:
        return None
    stamp = datetime.datetime.strptime(match.group("stamp"), _AUTO_RUN_TIME)
    return stamp.replace(tzinfo=datetime.timezone.utc).timestamp()


def unfinished_runs(members, settings):
    """Runs of ``settings.action`` whose marks are on some members but missing on members they would process.

    Returns ``[{"run_id", "done", "pending", "started"}]`` (``started`` for automatically named runs), the
    most recently started first.
    """
    prefix = settings.action + ":"
    run_ids = sorted({mark_of(member)[len(prefix):] for member in members if mark_of(member).startswith(prefix)})
    runs = []
    for run_id in run_ids:
        plan = plan_batches(members, settings, run_id)
        if plan["to_process"] and plan["done_before"]:
            runs.append({"run_id": run_id, "done": len(plan["done_before"]), "pending": len(plan["to_process"]),
                         "started": auto_run_started(settings.action, run_id)})
    return sorted(runs, key=lambda run: -(run["started"] or 0))


def choose_run_id(settings, members, now):
    """The run id, whether it resumes an earlier run, and notes for the plan.

    An explicit ``run_id`` is used as given. Without one, a relaunch must not silently start over: the most
    recent unfinished run of the same action that the engine named itself (``<action>-<time>``) and that started
    less than ``resume_hours`` ago is resumed; otherwise a new id is made from the time. Unfinished runs that are
    not resumed are named in the notes, with how to resume them.
    """
    notes = []
    if settings.run_id:
        return settings.run_id, False, notes
    runs = unfinished_runs(members, settings)
    resumable = [run for run in runs if run["started"] is not None and now - run["started"] <= settings.resume_hours * 3600]
    chosen = resumable[0] if resumable else None
    for run in runs:
        if chosen is not None and run["run_id"] == chosen["run_id"]:
            continue
        why = ("started more than %d hours ago" % settings.resume_hours if run["started"] is not None
               else "named by its user")
        notes.append("run %s is unfinished (%d member(s) done, %d to go) and is not resumed (%s): set run_id to %s "
                     "to resume it" % (run["run_id"], run["done"], run["pending"], why, run["run_id"]))
    if chosen is not None:
        notes.insert(0, "resuming run %s (%d member(s) done, %d to go): no run_id was given, and that run, named "
                        "automatically, is unfinished; set run_id to start a new run instead"
                     % (chosen["run_id"], chosen["done"], chosen["pending"]))
        return chosen["run_id"], True, notes
    return new_run_id(settings.action, now), False, notes


# -- the plan in words --------------------------------------------------------------------------------

def plan_lines(plan, run, scale_set, check_mode=False):
    """The plan for the job output: a headline, notes, one line per batch, one per skipped member."""
    by = " by %s" % plan["batch_by"].replace("_", " ") if plan["batch_by"] != "none" else ""
    lines = ["run %s: %s %d of %d member(s) of %s/%s in %d batch(es) of at most %d%s%s" % (
        run["run_id"], run["action"], plan["counts"]["to_process"], plan["total"], scale_set["resource_group"],
        scale_set["name"], plan["counts"]["batches"], plan["batch_size"], by,
        " (check mode: nothing will be changed)" if check_mode else "")]
    lines.extend("note: %s" % note for note in run["notes"])
    repairs = scale_set.get("automatic_repairs") or {}
    if repairs.get("enabled"):
        lines.append("note: automatic instance repairs are enabled on %s (repair action %s, grace period %s): Azure may "
                     "repair a member while it is down for the %s; see docs/rolling.md" % (
                         scale_set["name"], repairs.get("repair_action") or "Replace",
                         repairs.get("grace_period") or "PT10M", run["action"]))
    for batch in plan["batches"]:
        domain = " (%s)" % batch["domain"] if batch["domain"] else ""
        unhealthy = " [unhealthy: %s]" % ", ".join(batch["unhealthy"]) if batch["unhealthy"] else ""
        lines.append("batch %d/%d%s: %s%s" % (batch["number"], len(plan["batches"]), domain,
                                              ", ".join(batch["members"]), unhealthy))
    lines.extend("skip %s: %s" % (entry["name"], entry["reason"]) for entry in plan["skipped"])
    return lines


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
    done = {_key(name) for name in run["done"]}

    def settling(member):
        return (_key(member.get("name")) in done and mark_of(member) == run["marker"]
                and member.get("power_state") == "running" and member.get("health") in (None, "healthy")
                and member.get("provisioning_state") in SETTLING_PROVISIONING_STATES)

    by_name = {_key(member["name"]): member for member in members}
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
                by_name[_key(outcome.result["name"])] = outcome.result
                if settling(outcome.result):
                    pending.append(outcome.result)
    return [by_name[_key(member["name"])] for member in members]


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


def precheck(members, settings, number):
    """The unhealthy share of the whole set before a batch, and the stop reason when it is too high."""
    health = classify(members)
    check = threshold(len(health["unhealthy"]), health["total"], settings.max_unhealthy_percent)
    check["members"] = health["unhealthy"]
    reason = ""
    if check["breached"]:
        reason = ("before batch %d, %d of %d members (%s %%) were unhealthy, above max_unhealthy_percent %d: %s" % (
            number, check["unhealthy"], check["total"], check["percent"], check["max_percent"],
            _describe(health["unhealthy"])))
    return check, reason


def _describe(entries, limit=10):
    text = ", ".join("%s (%s)" % (entry["name"], entry["reason"]) for entry in entries[:limit])
    return text + (", and %d more" % (len(entries) - limit) if len(entries) > limit else "")


def run_precheck(module, settings, run, batch, reuse_read_seconds=0):
    """The precheck step: the unhealthy share before a batch, without acting. Returns ``(report, run)``."""
    started = time.monotonic()
    members, reused = read_all(module, run, reuse_read_seconds)
    check, reason = precheck(members, settings, batch["number"])
    run = _advance(run, snapshot=None if reused else members)
    report = _empty_report(batch, precheck=check, seconds=round(time.monotonic() - started, 1), stop_reason=reason)
    if reason:
        run = _stopped(run, reason, report)
    return report, run


def _empty_report(batch, **values):
    report = {"number": batch["number"], "domain": batch.get("domain"), "members": list(batch["members"]),
              "ran": False, "acted": [], "passed": [], "done": [], "failed": [], "unhealthy": [], "skipped": [],
              "precheck": None, "postcheck": None, "action_seconds": None, "health_seconds": None, "seconds": 0.0,
              "marked": False, "stop_reason": ""}
    report.update(values)
    return report


def _advance(run, snapshot=None, **changes):
    run = dict(run, **changes)
    run["steps"] = run.get("steps", 0) + 1
    if snapshot is not None:
        run["snapshot"] = {"time": time.time(), "members": [compact_member(member) for member in snapshot]}
    return run


def _stopped(run, reason, report):
    return dict(run, stopped=True, stop_reason=reason, batches=run["batches"] + [report])


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
        report = _empty_report(batch, precheck=check, seconds=round(time.monotonic() - started, 1), stop_reason=reason)
        return report, _stopped(_advance(run, snapshot=members), reason, report)

    todo, skipped, refused = _current_batch(module, settings, members, batch, run["scale_set"])
    if refused:
        reason = ("in batch %d, members were locked since the plan and protected is fail: %s"
                  % (batch["number"], _describe(refused)))
        report = _empty_report(batch, precheck=check, skipped=skipped, seconds=round(time.monotonic() - started, 1),
                               stop_reason=reason)
        return report, _stopped(_advance(run, snapshot=members), reason, report)

    report = _empty_report(batch, ran=True, precheck=check, skipped=skipped, marked=bool(mark))
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
    processed = _unique(run["processed"] + gate.acted + [entry["name"] for entry in gate.failed])
    failed = run["failed"] + gate.failed
    failed_names = {_key(entry["name"]) for entry in failed}
    unhealthy = [entry for entry in classify(after, processed)["unhealthy"] if _key(entry["name"]) not in failed_names]
    missing = [name for name in processed if _key(name) not in {_key(m["name"]) for m in after}
               and _key(name) not in failed_names]
    unhealthy += [{"name": name, "reason": "no longer exists"} for name in missing]
    post = threshold(len(unhealthy) + len(failed), len(processed), settings.max_unhealthy_processed_percent)
    report["postcheck"] = post
    if post["breached"]:
        report["stop_reason"] = (
            "after batch %d, %d of the %d processed members (%s %%) were unhealthy or failed, above "
            "max_unhealthy_processed_percent %d: %s" % (batch["number"], post["unhealthy"], post["total"],
                                                        post["percent"], post["max_percent"],
                                                        _describe(failed + unhealthy)))
    report["seconds"] = round(time.monotonic() - started, 1)
    run = _advance(run, snapshot=after, processed=processed, failed=failed, unhealthy=unhealthy,
                   done=_unique(run["done"] + gate.marked), late_skipped=run["late_skipped"] + skipped,
                   batches=run["batches"] + [report])
    if report["stop_reason"]:
        run = dict(run, stopped=True, stop_reason=report["stop_reason"])
    return report, run


def _unique(names):
    seen, result = set(), []
    for name in names:
        if _key(name) not in seen:
            seen.add(_key(name))
            result.append(name)
    return result


def _replace(members, observed):
    by_name = {_key(name): member for name, member in observed.items()}
    return [by_name.get(_key(member["name"]), member) for member in members]


def _current_batch(module, settings, members, batch, scale_set):
    """The batch's members to act on now, those skipped since the plan (with why), those refused (protected=fail)."""
    by_name = {_key(member["name"]): member for member in members}
    todo, skipped = [], []
    for name in batch["members"]:
        member = by_name.get(_key(name))
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
    wanted = {_key(name) for name in names}
    members, _reused = read_all(module, run, reuse_read_seconds=0)
    targets = [member for member in members if _key(member["name"]) in wanted]
    missing = [name for name in names if _key(name) not in {_key(member["name"]) for member in targets}]
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
        last["done"] = _unique(last["done"] + report["marked"])
        batches[-1] = last
    return report, _advance(run, snapshot=_replace(members, {m["name"]: m for m in targets}),
                            done=_unique(run["done"] + report["marked"]), batches=batches)


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
        parts.append("failed: %s" % _describe(report["failed"]))
    if report["unhealthy"]:
        parts.append("unhealthy: %s" % _describe(report["unhealthy"]))
    if report["skipped"]:
        parts.append("skipped: %s" % _describe(report["skipped"]))
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
            settled = {_key(name) for name in done} | {_key(entry["name"]) for entry in failed}
            victims = [name for name in last["acted"] if _key(name) not in settled]
            failed += [{"name": name, "reason": task_reason} for name in victims]
            processed = _unique(processed + victims)
    failed_keys = {_key(entry["name"]) for entry in failed}
    late = {_key(entry["name"]) for entry in run["late_skipped"]}
    processed_keys = {_key(name) for name in processed}
    done_before = {_key(name) for name in run["done_before"]}
    return {
        "run_id": run["run_id"], "action": run["action"], "resource_group": run["scale_set"]["resource_group"],
        "scale_set": run["scale_set"]["name"], "done_tag": "%s=%s" % (run["done_tag"], run["marker"]),
        "resumed": run["resumed"], "notes": run["notes"], "automatic_repairs": run.get("automatic_repairs"),
        "batch_size": run["batch_size"], "batch_by": run["batch_by"], "batches_planned": run["batches_planned"],
        "batches_run": sum(1 for batch in run["batches"] if batch["ran"]),
        "done": done, "done_before": run["done_before"],
        "skipped": [entry for entry in run["skipped"] if _key(entry["name"]) not in done_before] + run["late_skipped"],
        "failed": [{"name": entry["name"], "reason": entry["reason"]} for entry in failed],
        "unhealthy": [entry for entry in run["unhealthy"] if _key(entry["name"]) not in failed_keys],
        "not_processed": [name for name in run["to_process"] if _key(name) not in processed_keys and _key(name) not in late],
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
