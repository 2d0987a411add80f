# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""Upgrade policies, Azure's rolling upgrades and the latest model of Flexible members.

Since November 2024 Flexible scale sets take an upgrade policy (Manual, Automatic, Rolling) and a rolling
upgrade policy; Rolling needs the Application Health extension in the scale set's model (Flexible sets have
no load-balancer probes), and rollback of failed instances is Uniform only. Azure's rolling upgrade rolls
*model* changes only. Its status is ``GET .../rollingUpgrades/latest`` and it is stopped with
``POST .../rollingUpgrades/cancel``; members are brought to the latest model by VM name with
``POST .../manualupgrade``.

Here: the validation of a wanted policy (before any write), its merge with the current one and the
comparison (idempotence), the REST <-> option layouts, reading, waiting for and cancelling the latest
rolling upgrade, and which members run the latest model. Whether the VMSS-VM list of a Flexible set says
(``properties.latestModelApplied``) is not documented: a member it does not describe has ``None``.
"""

from __future__ import annotations

import re
import time

from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import as_rest_dict
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    AzureFlexError,
    InvalidInputError,
    OperationTimeoutError,
    azure_errors,
    is_not_found,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._selection import uniform_scale_set_error

UPGRADE_MODES = ("Automatic", "Manual", "Rolling")
# Option name -> (REST name, lowest, highest); the ranges Azure documents.
PERCENT_FIELDS = {
    "max_batch_instance_percent": ("maxBatchInstancePercent", 5, 100),
    "max_unhealthy_instance_percent": ("maxUnhealthyInstancePercent", 5, 100),
    "max_unhealthy_upgraded_instance_percent": ("maxUnhealthyUpgradedInstancePercent", 0, 100),
}
FLAG_FIELDS = {
    "enable_cross_zone_upgrade": "enableCrossZoneUpgrade",
    "prioritize_unhealthy_instances": "prioritizeUnhealthyInstances",
    "rollback_failed_instances_on_policy_breach": "rollbackFailedInstancesOnPolicyBreach",
    "max_surge": "maxSurge",
}
PAUSE_FIELD = ("pause_time_between_batches", "pauseTimeBetweenBatches")
# What Azure applies when a field is not set.
ROLLING_DEFAULTS = {"maxBatchInstancePercent": 20, "maxUnhealthyInstancePercent": 20,
                    "maxUnhealthyUpgradedInstancePercent": 20, "pauseTimeBetweenBatches": "PT0S"}
APP_HEALTH_TYPES = ("applicationhealthlinux", "applicationhealthwindows")

RUNNING = "RollingForward"
# The latest rolling upgrade has ended (RollingUpgradeStatusCode; note Azure's spelling "Cancelled").
ENDED = ("Cancelled", "Completed", "Faulted")
CODE_ROLLING_FAULTED = "AzureFlexRollingUpgradeFaulted"

_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?\Z", re.IGNORECASE)


def rolling_policy_argument_spec():
    """Suboptions of ``rolling_upgrade_policy`` (documented in flex_upgrade_policy)."""
    spec = {name: dict(type="int") for name in PERCENT_FIELDS}
    spec.update({name: dict(type="bool") for name in FLAG_FIELDS})
    spec[PAUSE_FIELD[0]] = dict(type="str")
    return spec


def duration_seconds(text):
    """Seconds of an ISO 8601 duration (``PT0S``, ``PT2M30S``, ``P1DT2H``); None when it is not one."""
    match = _DURATION.match(str(text or "").strip())
    if not match or str(text).strip().upper() in ("P", "PT"):
        return None
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


# --------------------------------------------------------------------------------------------
# The wanted policy
# --------------------------------------------------------------------------------------------

class WantedPolicy:
    """The upgrade policy a task asks for: a mode (or None: keep) and the rolling policy fields it names."""

    def __init__(self, mode=None, rolling=None):
        self.mode = mode
        self.rolling = rolling or {}  # REST names -> values, only the fields given

    @property
    def empty(self):
        return self.mode is None and not self.rolling

    @classmethod
    def from_params(cls, mode, rolling_options):
        """Validate the options; raise ``InvalidInputError`` naming the option."""
        if mode is not None:
            canonical = {m.lower(): m for m in UPGRADE_MODES}.get(str(mode).lower())
            if canonical is None:
                raise InvalidInputError("mode must be one of %s, got %r" % (", ".join(UPGRADE_MODES), mode))
            mode = canonical
        rolling = {}
        for option, value in (rolling_options or {}).items():
            if value is None:
                continue
            if option in PERCENT_FIELDS:
                rest, low, high = PERCENT_FIELDS[option]
                if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                    raise InvalidInputError("rolling_upgrade_policy.%s must be between %d and %d, got %r"
                                            % (option, low, high, value))
                rolling[rest] = value
            elif option in FLAG_FIELDS:
                rolling[FLAG_FIELDS[option]] = bool(value)
            elif option == PAUSE_FIELD[0]:
                if duration_seconds(value) is None:
                    raise InvalidInputError("rolling_upgrade_policy.pause_time_between_batches must be an ISO 8601 "
                                            "duration such as PT0S, PT30S or PT2M, got %r" % (value,))
                rolling[PAUSE_FIELD[1]] = str(value).strip().upper()
            else:
                raise InvalidInputError("rolling_upgrade_policy has no option %s" % option)
        return cls(mode, rolling)


def merged_policy(current, wanted):
    """The REST ``upgradePolicy`` once ``wanted`` is applied to ``current`` (fields not named are kept)."""
    current = dict(current or {})
    merged = {"mode": wanted.mode or enum_value(current.get("mode")) or "Manual"}
    rolling = current.get("rollingUpgradePolicy")
    if rolling is not None or wanted.rolling or merged["mode"] == "Rolling":
        rolling = dict(ROLLING_DEFAULTS, **{k: v for k, v in (rolling or {}).items() if v is not None})
        rolling.update(wanted.rolling)
        merged["rollingUpgradePolicy"] = rolling
    for key, value in current.items():
        if key not in ("mode", "rollingUpgradePolicy") and value is not None:
            merged[key] = value  # automaticOSUpgradePolicy and the like travel unchanged
    return merged


def policy_differs(current, merged):
    """Whether writing ``merged`` would change the scale set's current ``upgradePolicy``."""
    return comparable(merged) != comparable(merged_policy(current, WantedPolicy()))


def comparable(policy):
    out = {"mode": (enum_value((policy or {}).get("mode")) or "Manual").lower()}
    rolling = (policy or {}).get("rollingUpgradePolicy")
    if rolling is not None:
        filled = dict(ROLLING_DEFAULTS, **{k: v for k, v in rolling.items() if v is not None})
        pause = duration_seconds(filled.get("pauseTimeBetweenBatches"))
        filled["pauseTimeBetweenBatches"] = pause if pause is not None else filled.get("pauseTimeBetweenBatches")
        for flag in FLAG_FIELDS.values():
            filled[flag] = bool(filled.get(flag))
        out["rolling"] = filled
    return out


def check_for_scale_set(scale_set, policy):
    """Refuse, before any write, a policy Azure would refuse on this (Flexible) scale set."""
    properties = scale_set.get("properties") or {}
    rolling = policy.get("rollingUpgradePolicy") or {}
    if rolling.get("rollbackFailedInstancesOnPolicyBreach"):
        raise InvalidInputError("rolling_upgrade_policy.rollback_failed_instances_on_policy_breach is supported on "
                                "Uniform scale sets only; %s is Flexible" % scale_set.get("name"))
    if policy.get("mode") == "Rolling" and not has_health_extension(properties.get("virtualMachineProfile")):
        raise InvalidInputError(
            "Scale set %s cannot use the Rolling upgrade mode: a Flexible scale set needs the Application Health "
            "extension (ApplicationHealthLinux or ApplicationHealthWindows) in its model "
            "(virtualMachineProfile.extensionProfile) to report the health of the instances; load-balancer health "
            "probes are not used on Flexible scale sets. Add the extension to the model first." % scale_set.get("name"))


def has_health_extension(profile):
    extensions = (((profile or {}).get("extensionProfile") or {}).get("extensions")) or []
    return any(str((ext.get("properties") or {}).get("type") or "").lower() in APP_HEALTH_TYPES for ext in extensions)


# --------------------------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------------------------

def enum_value(value):
    value = getattr(value, "value", value)
    return None if value in (None, "") else str(value)


def policy_view(policy):
    """A REST ``upgradePolicy`` in the module's option names."""
    policy = policy or {}
    rolling = policy.get("rollingUpgradePolicy")
    view = {"mode": enum_value(policy.get("mode")) or "Manual", "rolling_upgrade_policy": None}
    if rolling is not None:
        filled = dict(ROLLING_DEFAULTS, **{k: v for k, v in rolling.items() if v is not None})
        entry = {option: filled.get(rest) for option, (rest, _low, _high) in PERCENT_FIELDS.items()}
        entry.update({option: bool(filled.get(rest)) for option, rest in FLAG_FIELDS.items()})
        entry[PAUSE_FIELD[0]] = filled.get(PAUSE_FIELD[1])
        view["rolling_upgrade_policy"] = entry
    return view


def repairs_view(policy):
    """A REST ``automaticRepairsPolicy`` in snake case (None when the scale set has none)."""
    if not policy:
        return None
    return {"enabled": bool(policy.get("enabled")), "grace_period": policy.get("gracePeriod"),
            "repair_action": enum_value(policy.get("repairAction"))}


def status_view(status):
    """A REST rolling upgrade status (``RollingUpgradeStatusInfo``) in snake case; None stays None."""
    if status is None:
        return None
    props = status.get("properties") or status
    running = props.get("runningStatus") or {}
    progress = props.get("progress") or {}
    error = props.get("error") or None
    return {
        "code": enum_value(running.get("code")),
        "start_time": _text(running.get("startTime")),
        "last_action": enum_value(running.get("lastAction")),
        "last_action_time": _text(running.get("lastActionTime")),
        "progress": {"successful": progress.get("successfulInstanceCount") or 0,
                     "failed": progress.get("failedInstanceCount") or 0,
                     "in_progress": progress.get("inProgressInstanceCount") or 0,
                     "pending": progress.get("pendingInstanceCount") or 0},
        "error": {"code": error.get("code"), "message": error.get("message")} if error else None,
        "policy": policy_view({"mode": "Rolling", "rollingUpgradePolicy": props.get("policy") or {}})[
            "rolling_upgrade_policy"] if props.get("policy") else None,
    }


def _text(value):
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# --------------------------------------------------------------------------------------------
# Reading and acting
# --------------------------------------------------------------------------------------------

class UpgradeClient:
    """The compute calls about one scale set's upgrades, with the collection's error reporting."""

    def __init__(self, compute, ref):
        self.compute = compute
        self.ref = ref

    def read_scale_set(self):
        """The scale set in REST layout; refuse a Uniform one, name a missing one."""
        try:
            with azure_errors("Failed to read scale set %s" % self.ref.name):
                raw = as_rest_dict(self.compute.virtual_machine_scale_sets.get(self.ref.resource_group, self.ref.name))
        except AzureFlexError as exc:
            if is_not_found(exc):
                raise exc.with_message("Scale set %s was not found in resource group %s (%s)"
                                       % (self.ref.name, self.ref.resource_group, exc.msg)) from exc
            raise
        mode = enum_value((raw.get("properties") or {}).get("orchestrationMode"))
        if (mode or "Uniform").lower() != "flexible":
            raise uniform_scale_set_error(self.ref, mode)
        return raw

    def begin_policy_update(self, policy):
        """PATCH the scale set's ``upgradePolicy`` (the whole object, so Azure's merge rules do not matter)."""
        return self.compute.virtual_machine_scale_sets.begin_update(
            self.ref.resource_group, self.ref.name, {"properties": {"upgradePolicy": policy}})

    def latest_rolling_upgrade(self):
        """The latest rolling upgrade's status (REST layout), or None when the scale set never had one."""
        try:
            with azure_errors("Failed to read the latest rolling upgrade of scale set %s" % self.ref.name):
                return as_rest_dict(self.compute.virtual_machine_scale_set_rolling_upgrades.get_latest(
                    self.ref.resource_group, self.ref.name))
        except AzureFlexError as exc:
            if is_not_found(exc):
                return None
            raise

    def begin_cancel(self):
        return self.compute.virtual_machine_scale_set_rolling_upgrades.begin_cancel(
            self.ref.resource_group, self.ref.name)

    def begin_manual_upgrade(self, names):
        """Bring the members ``names`` (VM names: Flexible instance ids) to the scale set's latest model."""
        return self.compute.virtual_machine_scale_sets.begin_update_instances(
            self.ref.resource_group, self.ref.name, {"instanceIds": list(names)})

    def latest_model_by_member(self):
        """``{member name (lower case): True, False or None}`` from the VMSS-VM list (100 members a page).

        None when the list does not say (``properties.latestModelApplied`` absent).
        """
        with azure_errors("Failed to list the instances of scale set %s" % self.ref.name):
            listed = [as_rest_dict(vm) for vm in self.compute.virtual_machine_scale_set_vms.list(
                self.ref.resource_group, self.ref.name)]
        out = {}
        for vm in listed:
            name = vm.get("instanceId") or vm.get("name")
            if name:
                value = (vm.get("properties") or {}).get("latestModelApplied")
                out[str(name).lower()] = None if value is None else bool(value)
        return out

    def wait_until_ended(self, deadline, interval, sleep=time.sleep):
        """Poll the latest rolling upgrade until it is no longer RollingForward, within ``deadline``.

        Returns the last status read (None when there is none). Each poll is one ARM read.
        """
        while True:
            status = self.latest_rolling_upgrade()
            code = enum_value(((status or {}).get("properties") or {}).get("runningStatus", {}).get("code"))
            if status is None or code != RUNNING:
                return status
            if not deadline.allows_wait(interval):
                progress = status_view(status)["progress"]
                raise OperationTimeoutError(
                    "Timed out after %.0f seconds waiting for the rolling upgrade of scale set %s (still %s: %d "
                    "upgraded, %d in progress, %d pending); it goes on in Azure"
                    % (deadline.elapsed(), self.ref.name, code, progress["successful"], progress["in_progress"],
                       progress["pending"]))
            sleep(interval)


def model_counts(latest_by_member):
    """How many members run the latest model, are behind, or are not described."""
    counts = {"latest": 0, "behind": 0, "unknown": 0}
    for value in latest_by_member.values():
        counts["unknown" if value is None else "latest" if value else "behind"] += 1
    return counts


def faulted_error(scale_set_name, status):
    """The failure of a wait that saw the rolling upgrade end Faulted, with Azure's error code and message."""
    view = status_view(status)
    error = view["error"] or {}
    return AzureFlexError("The rolling upgrade of scale set %s ended Faulted: %s (%d upgraded, %d failed, %d pending)"
                          % (scale_set_name, error.get("message") or "no error given", view["progress"]["successful"],
                             view["progress"]["failed"], view["progress"]["pending"]),
                          code=error.get("code") or CODE_ROLLING_FAULTED)
