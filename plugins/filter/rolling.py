# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters of the rolling roles (rolling_restart, rolling_reimage): batch planning, health, thresholds.

The roles chain the collection's modules in visible tasks; the decisions between those tasks are made
here, in plain functions that unit tests cover:

* ``rolling_plan``: which members a rolling run processes, in which batches, and why the others are
  skipped (excluded, not included, already done in this run, not running, protected by a lock).
* ``rolling_health``: which members are serving (running, provisioned, application healthy) and why the
  others are not.
* ``rolling_outcome``: one member's outcome (name, status, reason) for the summary.
* ``rolling_threshold``: whether an unhealthy share crosses a percentage threshold (Azure's rolling
  upgrade policy semantics: abort when the share is above the threshold).

Documentation: the YAML files next to this one (rolling_plan.yml, rolling_health.yml,
rolling_threshold.yml, rolling_outcome.yml).
"""

from __future__ import annotations

import math

from ansible.errors import AnsibleFilterError

BATCH_BY = ("none", "fault_domain", "zone")
PROTECTED_HANDLING = ("skip", "fail", "attempt")
# Power states from which a restart or reimage makes sense: the member is (about to be) serving.
ACTIONABLE_POWER_STATES = ("running", "starting")
# The tag the roles write on each member once it passed the health gate: "<action>:<run id>".
DONE_TAG = "azure-flex-rolling-run"


def _name_key(name):
    return str(name or "").lower()


def _as_int(value, option, low=None, high=None, allow_none=False):
    if value is None or value == "":
        if allow_none:
            return None
        raise AnsibleFilterError("%s is required" % option)
    if isinstance(value, bool):
        raise AnsibleFilterError("%s must be an integer, got %r" % (option, value))
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError("%s must be an integer, got %r" % (option, value))
    if (low is not None and number < low) or (high is not None and number > high):
        bounds = "at least %d" % low if high is None else "between %d and %d" % (low, high)
        raise AnsibleFilterError("%s must be %s, got %d" % (option, bounds, number))
    return number


def _names(value, option):
    if value is None:
        return []
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)):
        raise AnsibleFilterError("%s must be a list of VM names" % option)
    return [str(name) for name in value]


# -- health ----------------------------------------------------------------------------------------

def unhealthy_reason(member):
    """Why a member is not serving, or None when it is.

    Serving means: power state running, provisioning succeeded, and application health healthy when
    the Application Health extension reports one (``health`` null means no extension). ``initializing``
    is not serving yet; ``unknown`` counts as unhealthy, as in Azure's rolling upgrades.
    """
    power = member.get("power_state")
    if power != "running":
        return "power state %s" % (power or "unknown")
    provisioning = member.get("provisioning_state")
    if provisioning != "Succeeded":
        return "provisioning state %s" % (provisioning or "unknown")
    health = member.get("health")
    if health not in (None, "healthy"):
        return "application health %s" % health
    return None


def rolling_health(members, names=None):
    """Classify ``members`` (flex_list_instances results); only those in ``names`` when given.

    Returns ``{"total", "healthy": [names], "unhealthy": [{"name", "reason"}], "unhealthy_names",
    "settling": [names still initializing or in a transitional state]}``.
    """
    if not isinstance(members, (list, tuple)):
        raise AnsibleFilterError("rolling_health expects the list of members (flex_list_instances instances)")
    wanted = None if names is None else {_name_key(name) for name in _names(names, "names")}
    result = {"total": 0, "healthy": [], "unhealthy": [], "unhealthy_names": [], "settling": []}
    for member in members:
        if wanted is not None and _name_key(member.get("name")) not in wanted:
            continue
        result["total"] += 1
        reason = unhealthy_reason(member)
        if reason is None:
            result["healthy"].append(member.get("name"))
            continue
        result["unhealthy"].append({"name": member.get("name"), "reason": reason})
        result["unhealthy_names"].append(member.get("name"))
        if member.get("health") == "initializing" or member.get("power_state") in ("starting", "stopping") \
                or member.get("provisioning_state") in ("Updating", "Creating"):
            result["settling"].append(member.get("name"))
    return result


# -- thresholds --------------------------------------------------------------------------------------

def rolling_threshold(unhealthy, total, max_percent):
    """Whether ``unhealthy`` of ``total`` is above ``max_percent`` percent, with the numbers to report.

    Returns ``{"breached", "unhealthy", "total", "percent", "max_percent", "allowed"}``; ``allowed`` is the
    largest count that does not breach. A total of 0 never breaches.
    """
    unhealthy = _as_int(unhealthy, "unhealthy", low=0)
    total = _as_int(total, "total", low=0)
    max_percent = _as_int(max_percent, "max_percent", low=0, high=100)
    percent = round(100.0 * unhealthy / total, 1) if total else 0.0
    return {
        "breached": total > 0 and unhealthy * 100 > max_percent * total,
        "unhealthy": unhealthy,
        "total": total,
        "percent": percent,
        "max_percent": max_percent,
        "allowed": (max_percent * total) // 100,
    }


# -- the plan ----------------------------------------------------------------------------------------

def batch_size_for(total, batch_size=None, batch_percent=20):
    """Members per batch: ``batch_size`` when given, else ``batch_percent`` of ``total`` rounded down, at least 1."""
    size = _as_int(batch_size, "batch_size", low=1, allow_none=True)
    if size is not None:
        return size
    percent = _as_int(batch_percent, "batch_percent", low=1, high=100)
    return max(1, int(math.floor(total * percent / 100.0)))


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


def done_marker(action, run_id):
    """The value of the done tag for one run: ``<action>:<run id>``."""
    return "%s:%s" % (action, run_id)


def blocking_locks(member):
    """The ARM locks that make Azure refuse a restart or reimage of the member (ReadOnly ones).

    ``member["protection"]`` comes from flex_list_instances with include_protection; without it the member
    is treated as unprotected.
    """
    protection = member.get("protection") or {}
    locks = [lock for lock in protection.get("locks") or [] if (lock or {}).get("level") == "ReadOnly"]
    if not locks and protection.get("protected_from_scale_set_actions"):
        locks = [{"name": "(unnamed)", "level": "ReadOnly", "inherited": False}]
    return locks


def _describe_locks(locks):
    return ", ".join("'%s' (%s%s)" % (lock.get("name"), lock.get("level"), ", inherited" if lock.get("inherited") else "")
                     for lock in locks)


def rolling_plan(members, action="restart", run_id=None, batch_size=None, batch_percent=20, batch_by="none",
                 unhealthy_first=False, include=None, exclude=None, protected="skip", done_tag=DONE_TAG):
    """Plan a rolling run over ``members`` (flex_list_instances results, every member of the scale set).

    Returns a dict:

    * ``batches``: ``[{"number", "domain", "members": [names], "unhealthy": [names]}]`` in order; a batch
      never holds members of two failure domains when ``batch_by`` is fault_domain or zone;
    * ``to_process``: every name in the batches, in order;
    * ``skipped``: ``[{"name", "reason"}]`` for every member not processed;
    * ``done_before``: members already marked done for this run id (a resumed run);
    * ``protected_refused``: with ``protected=fail``, the protected members and their locks;
    * ``lines``: the plan in words, one line per batch and per skipped member (for the job output);
    * ``total``, ``batch_size``, ``batch_by``, ``marker`` (the done tag value) and ``counts``.
    """
    if not isinstance(members, (list, tuple)):
        raise AnsibleFilterError("rolling_plan expects the list of members (flex_list_instances instances)")
    if batch_by not in BATCH_BY:
        raise AnsibleFilterError("batch_by must be one of %s, got %r" % (", ".join(BATCH_BY), batch_by))
    if protected not in PROTECTED_HANDLING:
        raise AnsibleFilterError("protected must be one of %s, got %r" % (", ".join(PROTECTED_HANDLING), protected))
    if not run_id:
        raise AnsibleFilterError("run_id is required: it names the run in the done tag")
    total = len(members)
    size = batch_size_for(total, batch_size, batch_percent)
    marker = done_marker(action, run_id)
    include_names = _names(include, "include")
    exclude_keys = {_name_key(name) for name in _names(exclude, "exclude")}
    known = {_name_key(member.get("name")) for member in members}
    unknown = [name for name in include_names if _name_key(name) not in known]
    if unknown:
        raise AnsibleFilterError("include names VMs that are not members of the scale set: %s" % ", ".join(unknown))
    include_keys = {_name_key(name) for name in include_names}

    skipped, done_before, refused, eligible = [], [], [], []
    for member in sorted(members, key=lambda m: _name_key(m.get("name"))):
        name = member.get("name")
        key = _name_key(name)
        tags = {str(tag).lower(): value for tag, value in (member.get("tags") or {}).items()}
        reason = None
        if key in exclude_keys:
            reason = "excluded"
        elif include_keys and key not in include_keys:
            reason = "not in the include list"
        elif tags.get(done_tag.lower()) == marker:
            reason = "already done in run %s" % run_id
            done_before.append(name)
        elif member.get("power_state") not in ACTIONABLE_POWER_STATES:
            reason = "not running (power state %s)" % (member.get("power_state") or "unknown")
        else:
            locks = blocking_locks(member)
            if locks and protected == "skip":
                reason = "protected by lock %s" % _describe_locks(locks)
            elif locks and protected == "fail":
                refused.append({"name": name, "reason": "protected by lock %s" % _describe_locks(locks)})
                reason = "protected by lock %s (the run refuses to start)" % _describe_locks(locks)
        if reason is not None:
            skipped.append({"name": name, "reason": reason})
        else:
            eligible.append(member)

    batches = _form_batches(eligible, size, batch_by, bool(unhealthy_first))
    to_process = [name for batch in batches for name in batch["members"]]
    lines = []
    for batch in batches:
        domain = " (%s)" % batch["domain"] if batch["domain"] else ""
        unhealthy = " [unhealthy: %s]" % ", ".join(batch["unhealthy"]) if batch["unhealthy"] else ""
        lines.append("batch %d/%d%s: %s%s" % (batch["number"], len(batches), domain, ", ".join(batch["members"]), unhealthy))
    lines.extend("skip %s: %s" % (entry["name"], entry["reason"]) for entry in skipped)
    return {
        "total": total,
        "batch_size": size,
        "batch_by": batch_by,
        "marker": marker,
        "done_tag": done_tag,
        "batches": batches,
        "to_process": to_process,
        "skipped": skipped,
        "done_before": done_before,
        "protected_refused": refused,
        "lines": lines,
        "counts": {"members": total, "to_process": len(to_process), "batches": len(batches),
                   "skipped": len(skipped), "done_before": len(done_before)},
    }


def _form_batches(eligible, size, batch_by, unhealthy_first):
    """Chunk the eligible members into batches of at most ``size``, one failure domain per batch."""
    def unhealthy(member):
        return unhealthy_reason(member) is not None

    def order(group):
        # Stable: name order, unhealthy members first when asked.
        ordered = sorted(group, key=lambda m: _name_key(m.get("name")))
        return sorted(ordered, key=lambda m: not unhealthy(m)) if unhealthy_first else ordered

    if batch_by == "none":
        groups = [(None, order(eligible))]
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
        for start in range(0, len(group), size):
            chunk = group[start:start + size]
            batches.append({
                "number": len(batches) + 1,
                "domain": domain,
                "members": [member.get("name") for member in chunk],
                "unhealthy": [member.get("name") for member in chunk if unhealthy(member)],
            })
    return batches


# -- outcomes ----------------------------------------------------------------------------------------

def rolling_outcome(entry, status=None, reason=None):
    """One member's outcome as ``{"name", "status", "reason"}`` for the run's summary.

    ``entry`` is an ``instances[]`` entry of flex_instance_action (its status, and its skip reason or the ARM
    error code and message), or a bare VM name with ``status`` and ``reason`` given.
    """
    if isinstance(entry, dict):
        error = entry.get("error") or {}
        detail = entry.get("reason") or " ".join(
            part for part in (error.get("code"), error.get("msg")) if part) or None
        return {"name": entry.get("name"), "status": status or entry.get("status"), "reason": reason or detail}
    if isinstance(entry, str):
        return {"name": entry, "status": status, "reason": reason}
    raise AnsibleFilterError("rolling_outcome expects a flex_instance_action instances[] entry or a VM name")


class FilterModule:
    """The rolling roles' filters."""

    def filters(self):
        return {
            "rolling_plan": rolling_plan,
            "rolling_health": rolling_health,
            "rolling_threshold": rolling_threshold,
            "rolling_outcome": rolling_outcome,
        }
