# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""The plan of a rolling run, without I/O: its settings, the health of members, its batches and its name.

``RollingSettings`` holds the options of ``flex_rolling_batch``, validated. ``plan_batches`` decides which
members are processed, in which batches, and why the others are skipped (excluded, not included, already done
in this run, not running, protected by a lock). Batches never mix failure domains unless asked (``batch_by``:
``auto`` is the zone for zonal sets, the fault domain otherwise), and their sizes are balanced within a domain
(4 members and batches of at most 3 make 2 + 2, not 3 + 1). ``plan_lines`` says the plan in words.

Health (``unhealthy_reason``) is Azure's: running, provisioning ``Succeeded``, and the Application Health
extension (when installed) ``healthy``; ``initializing`` is waited through, ``unknown`` counts as unhealthy.
A threshold (``threshold``) is crossed when the unhealthy share is *above* it, as in Azure's policy;
``precheck`` applies it to the whole set before a batch.

*Resuming.* Every member that passed gets the tag ``azure-flex-rolling-run=<action>:<run id>`` (``mark_of``
reads it; the engine, ``_rolling``, writes it), so a run relaunched with the same id skips it. Without a run
id the plan resumes a recent unfinished run of the same action that was itself named automatically, and
otherwise names a new one from the time (``choose_run_id``).
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils._locks import blocking_locks, describe_locks
from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import validate_vm_name
from ansible_collections.azure_flex.vmss.plugins.module_utils._members import ABSENT

# The tag each member gets once it passed the health gate, valued "<action>:<run id>".
DONE_TAG = "azure-flex-rolling-run"
# Azure's limit for a tag value.
TAG_VALUE_MAX = 256

ROLLING_ACTIONS = ("restart", "reimage", "redeploy", "upgrade")
BATCH_BY = ("auto", "none", "fault_domain", "zone")
PROTECTED_HANDLING = ("skip", "fail", "attempt")
# Power states from which a rolling action makes sense: the member is (about to be) serving.
ACTIONABLE_POWER_STATES = ("running", "starting")
# States a member passes through on its way back to serving: the health gate waits through them.
SETTLING_POWER_STATES = ("starting", "stopping", "deallocating")
SETTLING_PROVISIONING_STATES = ("Updating", "Creating")

# Run ids made by the engine itself: "<action>-<UTC time of the plan>".
_AUTO_RUN_ID = re.compile(r"^(?P<action>[a-z_]+)-(?P<stamp>\d{8}T\d{6}Z)\Z")
_AUTO_RUN_TIME = "%Y%m%dT%H%M%SZ"
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")

# Upper bounds of the numeric settings (they make a typo fail before any write, rather than mean a week).
MAX_TIMEOUT_SECONDS = 86400
MAX_PAUSE_SECONDS = 86400
MAX_RESUME_HOURS = 8760


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


def name_key(name):
    """What member names are compared by: Azure's names are case-insensitive."""
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
    wanted = None if names is None else {name_key(name) for name in names}
    result = {"total": 0, "healthy": [], "unhealthy": [], "settling": []}
    for member in members:
        if wanted is not None and name_key(member.get("name")) not in wanted:
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


def precheck(members, settings, number):
    """The unhealthy share of the whole set before a batch, and the stop reason when it is too high."""
    health = classify(members)
    check = threshold(len(health["unhealthy"]), health["total"], settings.max_unhealthy_percent)
    check["members"] = health["unhealthy"]
    reason = ""
    if check["breached"]:
        reason = ("before batch %d, %d of %d members (%s %%) were unhealthy, above max_unhealthy_percent %d: %s" % (
            number, check["unhealthy"], check["total"], check["percent"], check["max_percent"],
            describe_entries(health["unhealthy"])))
    return check, reason


def describe_entries(entries, limit=10):
    """``name (reason)`` of the first ``limit`` entries, and how many more (for stop reasons and batch lines)."""
    text = ", ".join("%s (%s)" % (entry["name"], entry["reason"]) for entry in entries[:limit])
    return text + (", and %d more" % (len(entries) - limit) if len(entries) > limit else "")


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
    known = {name_key(member.get("name")) for member in members}
    unknown = [name for name in settings.include if name_key(name) not in known]
    if unknown:
        raise InvalidInputError("include names VMs that are not members of the scale set: %s" % ", ".join(unknown))
    include_keys = {name_key(name) for name in settings.include}
    exclude_keys = {name_key(name) for name in settings.exclude}

    skipped, done_before, refused, eligible = [], [], [], []
    for member in sorted(members, key=lambda m: name_key(m.get("name"))):
        name = member.get("name")
        reason = None
        if name_key(name) in exclude_keys:
            reason = "excluded"
        elif include_keys and name_key(name) not in include_keys:
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
        ordered = sorted(group, key=lambda m: name_key(m.get("name")))
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
