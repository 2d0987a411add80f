# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""The thin wrapper every module of the collection is built on.

``AzureFlexModule`` wraps (does not subclass) ``AnsibleModule``: it adds the authentication options
to the module's own, owns the task deadline, builds clients only when first used, and reports
failures with the ARM error code, HTTP status and request id. Unknown attributes are passed through
to the wrapped ``AnsibleModule`` (``params``, ``check_mode``, ``exit_json``, ``warn``...).

Construction only parses arguments; nothing talks to Azure until ``clients`` is used, so a unit
test can build the module, replace ``clients`` with a fake, and call the module's logic directly.

A module then reads as: ``module = AzureFlexModule(spec, ...)`` then ``module.run(work)``, where
``work(module)`` reads, decides, acts and returns the result dict.

Every result, success or failure, has one shape (``common_result``): ``changed``, ``msg`` (a one-line summary),
``scale_set`` (``id``, ``name``, ``resource_group``), ``elapsed_seconds`` and ``retries``. A module that acts on
or lists members adds ``instances`` and ``counts`` (``member_result``, ``report_members``); each member's
``status`` is one of ``MEMBER_STATUSES``.
"""

from __future__ import annotations

import os
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.azure_flex.vmss.plugins.module_utils._auth import (
    AUTH_ARGUMENT_SPEC,
    AUTH_MUTUALLY_EXCLUSIVE,
    resolve_auth_settings,
    resolve_cloud,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import (
    DEFAULT_POLLING_INTERVAL,
    clients_for_settings,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._criteria import (
    SELECTION_MUTUALLY_EXCLUSIVE,
    SELECTION_REQUIRED_ONE_OF,
    SELECTION_REQUIRED_TOGETHER,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    CODE_INVALID_INPUT,
    AzureFlexError,
    InvalidInputError,
    MissingDependencyError,
    azure_error_types,
    to_flex_error,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._fanout import DEFAULT_MAX_PARALLEL, run_bounded
from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import ScaleSetRef
from ansible_collections.azure_flex.vmss.plugins.module_utils._resilience import Deadline, run_operation
from ansible_collections.azure_flex.vmss.plugins.module_utils._selection import ScaleSetSelector

DEFAULT_TIMEOUT = 900
MAX_PARALLEL_LIMIT = 100
# One day: longer than any Azure operation the modules wait for, and far below what the socket and thread
# timeouts of the platform accept (a larger value made sock.settimeout() raise OverflowError).
MAX_TIMEOUT = 86400
MAX_POLLING_INTERVAL = 3600
# Ansible masks a no_log value wherever it occurs in the result; a toy secret of a few letters would mangle
# every word containing them. Entra ID client secrets are 40 characters.
MIN_MASKED_SECRET_LENGTH = 8

# Options of modules that start long-running operations (documented by the ``wait`` doc fragment).
WAIT_ARGUMENT_SPEC = dict(
    wait=dict(type="bool", default=True),
    timeout=dict(type="int", default=DEFAULT_TIMEOUT),
    max_parallel=dict(type="int", default=DEFAULT_MAX_PARALLEL),
    polling_interval=dict(type="int", default=DEFAULT_POLLING_INTERVAL),
)

# Options of modules that only read (documented by the ``wait.READ`` doc fragment).
READ_ARGUMENT_SPEC = dict(
    timeout=dict(type="int", default=DEFAULT_TIMEOUT),
    max_parallel=dict(type="int", default=DEFAULT_MAX_PARALLEL),
)


# The one vocabulary of member (and NAT rule) statuses in every module's result.
MEMBER_STATUSES = ("changed", "skipped", "would_change", "started", "failed", "would_fail")
# Member statuses that fail the task: a failure, or in check mode one predicted (Azure would refuse).
FAILED_STATUSES = ("failed", "would_fail")
SCALE_SET_KEYS = ("id", "name", "resource_group")


def scale_set_summary(scale_set):
    """The ``scale_set`` of a result: ``id``, ``name`` and ``resource_group`` (None when there is none)."""
    if scale_set is None:
        return None
    return {key: scale_set.get(key) for key in SCALE_SET_KEYS}


def member_counts(entries, filtered_out=()):
    """``selected``, ``changed``, ``skipped``, ``failed`` and ``filtered_out`` of per-member entries.

    An entry counts as failed by its ``status`` (``FAILED_STATUSES``), as changed by its ``changed`` flag (a change
    made, predicted in check mode or started), and as skipped otherwise; a listed member (no status) is skipped.
    """
    counts = {"selected": len(entries), "changed": 0, "skipped": 0, "failed": 0}
    for entry in entries:
        counts["failed" if entry.get("status") in FAILED_STATUSES else "changed" if entry.get("changed")
               else "skipped"] += 1
    counts["filtered_out"] = len(filtered_out)
    return counts


def raise_member_failures(result, entries, failed_to):
    """Raise ``MemberFailures`` with ``result`` when an entry of ``entries`` failed (or would fail in check mode):
    ``msg`` says how many of the selected members failed to do ``failed_to``, and each one's ARM code."""
    failing = [entry for entry in entries if entry.get("status") in FAILED_STATUSES]
    if not failing:
        return
    failures = ["%s: %s" % (entry["name"], entry["error"].get("code") or entry["error"].get("msg")) for entry in failing]
    predicted = all(entry["status"] == "would_fail" for entry in failing)
    raise MemberFailures("%d of %d member(s) %s to %s: %s" % (
        len(failing), result["counts"]["selected"], "would fail" if predicted else "failed", failed_to,
        "; ".join(failures)), result)


def summary_line(what, counts, check_mode=False):
    """The one-line ``msg`` of a member result, e.g. ``restart: 3 of 12 member(s) changed, 9 skipped``."""
    parts = ["%d of %d member(s) %s" % (counts["changed"], counts["selected"],
                                        "would change" if check_mode else "changed"),
             "%d skipped" % counts["skipped"]]
    if counts["failed"]:
        parts.append("%d failed" % counts["failed"])
    if counts["filtered_out"]:
        parts.append("%d filtered out" % counts["filtered_out"])
    return "%s: %s" % (what, ", ".join(parts))


def listing_line(what, counts):
    """The one-line ``msg`` of a task that only reads members, e.g. ``list instances: 12 member(s) listed``."""
    filtered = ", %d filtered out" % counts["filtered_out"] if counts["filtered_out"] else ""
    return "%s: %d member(s) listed%s" % (what, counts["selected"], filtered)


class _ReportingSelector(ScaleSetSelector):
    """A ``ScaleSetSelector`` that hands each scale set it reads to ``on_scale_set``, so that a later failure can
    name the scale set the task was working on."""

    def __init__(self, on_scale_set, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._on_scale_set = on_scale_set

    def get_scale_set(self, ref):
        scale_set = super().get_scale_set(ref)
        self._on_scale_set(scale_set)
        return scale_set


class MemberFailures(Exception):
    """Some members failed: ``AzureFlexModule.run`` fails the task with ``msg`` and the whole ``result``.

    Raised by a module's work once every member has been dealt with, so the failed task still reports
    what happened to each member (those that succeeded included).
    """

    def __init__(self, msg, result):
        super().__init__(msg)
        self.msg = msg
        self.result = result


class AzureFlexModule:
    """An ``AnsibleModule`` plus Azure authentication, clients, deadline and error reporting."""

    def __init__(self, argument_spec=None, supports_check_mode=False, mutually_exclusive=None, required_together=None,
                 required_one_of=None, required_if=None, required_by=None, environ=None, selects_members=False):
        """``selects_members``: the module takes ``selection_argument_spec``'s options, so their constraints apply
        (added to ``mutually_exclusive``, ``required_one_of`` and ``required_together``)."""
        argument_spec = dict(argument_spec or {})
        if selects_members:
            mutually_exclusive = list(SELECTION_MUTUALLY_EXCLUSIVE) + list(mutually_exclusive or [])
            required_one_of = list(SELECTION_REQUIRED_ONE_OF) + list(required_one_of or [])
            required_together = list(SELECTION_REQUIRED_TOGETHER) + list(required_together or [])
        clashes = sorted(set(argument_spec) & set(AUTH_ARGUMENT_SPEC))
        if clashes:
            raise ValueError("module options clash with the authentication options: %s" % ", ".join(clashes))
        spec = dict(AUTH_ARGUMENT_SPEC)
        spec.update(argument_spec)
        constraints = dict(required_together=required_together, required_one_of=required_one_of,
                           required_if=required_if, required_by=required_by)
        self.module = AnsibleModule(
            argument_spec=spec,
            supports_check_mode=supports_check_mode,
            mutually_exclusive=list(AUTH_MUTUALLY_EXCLUSIVE) + list(mutually_exclusive or []),
            # Only pass what was given: validate-modules rejects explicit None values.
            **{name: value for name, value in constraints.items() if value is not None}
        )
        self._environ = os.environ if environ is None else environ
        # The scale set the task works on, once a result names it; a failure reports it too.
        self.scale_set = None
        self._auth_settings = None
        self._cloud = None
        self._clients = None
        self._selectors = []
        self._selection_warned = False
        self.deadline = None
        self._check_limits()
        self.deadline = Deadline(self.module.params.get("timeout") or DEFAULT_TIMEOUT)

    def __getattr__(self, name):
        # Only called for attributes not found on this object: delegate to the AnsibleModule.
        if name == "module":
            raise AttributeError(name)
        return getattr(self.module, name)

    # -- settings --------------------------------------------------------------------------

    @property
    def max_parallel(self):
        return self.module.params.get("max_parallel") or DEFAULT_MAX_PARALLEL

    @property
    def wait(self):
        return self.module.params.get("wait", True)

    @property
    def auth_settings(self):
        """The resolved authentication settings (resolved on first use)."""
        if self._auth_settings is None:
            self._auth_settings = resolve_auth_settings(self.module.params, self._environ)
            secret = self._auth_settings.secret
            if secret and len(secret) >= MIN_MASKED_SECRET_LENGTH:
                # A secret from the environment or a credential file is no task option, so no_log does not
                # know it: registered here, Ansible masks it wherever it would appear in the result.
                self.module.no_log_values.add(secret)
        return self._auth_settings

    @property
    def subscription_id(self):
        return self.auth_settings.subscription_id

    @property
    def cloud(self):
        """The ``CloudEndpoints`` in use (may read the cloud's metadata URL on first use)."""
        if self._cloud is None:
            settings = self.auth_settings
            self._cloud = resolve_cloud(settings.cloud_environment, settings.ca_bundle)
        return self._cloud

    # -- clients ---------------------------------------------------------------------------

    @property
    def clients(self):
        """The ``AzureClients`` factory, created on first use. Tests may assign a fake."""
        if self._clients is None:
            self._clients = clients_for_settings(
                self.auth_settings, self.deadline, cloud=self.cloud,
                polling_interval=self.module.params.get("polling_interval") or DEFAULT_POLLING_INTERVAL,
            )()
        return self._clients

    @clients.setter
    def clients(self, value):
        self._clients = value

    def selector(self):
        """A ``ScaleSetSelector`` bound to this task's clients, deadline and parallelism.

        The task's result reports what its selectors found worth saying (``selection_outcome``); a failure names
        the scale set they read last.
        """
        def remember(scale_set):
            self.scale_set = scale_set_summary(scale_set)

        selector = _ReportingSelector(remember, self.clients, self.subscription_id, self.deadline, self.max_parallel)
        self._selectors.append(selector)
        return selector

    def selection_outcome(self):
        """Entries for the members named in ``instances`` that a filter left out, after warning about them.

        Each entry is ``{"name", "id", "status": "skipped", "changed": False, "reason"}``; the selectors'
        warnings (named members left out, a filter that selected nothing, Resource Graph lag) are issued once.
        """
        entries, seen = [], set()
        warnings = []
        for selector in self._selectors:
            warnings.extend(warning for warning in selector.warnings if warning not in warnings)
            for item in selector.filtered_out:
                member = item["member"]
                key = str(member.get("id") or member.get("name")).lower()
                if key in seen:
                    continue
                seen.add(key)
                entries.append({"name": member.get("name"), "id": member.get("id"), "status": "skipped",
                                "changed": False, "reason": item["reason"]})
        if not self._selection_warned:
            self._selection_warned = True
            for warning in warnings:
                self.module.warn(warning)
        return sorted(entries, key=lambda entry: str(entry["name"] or "").lower())

    # -- execution helpers -----------------------------------------------------------------

    def fan_out(self, func, items):
        """``run_bounded`` with this task's ``max_parallel`` and deadline."""
        return run_bounded(func, items, self.max_parallel, self.deadline)

    def run_operation(self, begin, description):
        """Start a long-running operation; wait for it within the deadline when ``wait`` is true."""
        return run_operation(begin, self.deadline, description, wait=self.wait)

    def run(self, work):
        """Run ``work(self)``: exit with the dict it returns, or fail with the Azure error it raised, or with the
        result of ``MemberFailures``."""
        try:
            result = work(self)
        except (MemberFailures, AzureFlexError) + azure_error_types() as exc:
            failure = exc
        else:
            self.module.exit_json(**result)
            return
        # Failing outside the except block: ansible-core 2.19 would otherwise attach the traceback of an
        # expected, fully described failure (bad input, an ARM error, members that failed) to the result.
        if isinstance(failure, MemberFailures):
            self.module.fail_json(**dict(failure.result, msg=failure.msg))
        self.fail_azure(failure)

    def fail_azure(self, error, **extra):
        """Fail the task reporting msg, ARM error code, HTTP status and request/correlation ids."""
        flex_error = to_flex_error(error)
        if flex_error is None:
            raise error
        result = self.common_result(flex_error.msg)
        result.update(flex_error.to_dict())
        if isinstance(flex_error, MissingDependencyError):
            result["msg"] = missing_required_lib(flex_error.library)
            result["exception"] = "".join(traceback.format_exception(
                type(flex_error.import_error), flex_error.import_error, flex_error.import_error.__traceback__))
        result.update(extra)
        self.module.fail_json(**result)

    def mark_or_act(self, todo, act):
        """Check mode: mark each entry of ``todo`` ``would_change`` and act on none. Otherwise: ``act(todo)``'s
        outcomes (none when there is nothing to do).

        ``todo`` holds tuples whose first item is the member's result entry; the caller records the outcomes.
        """
        if self.check_mode:
            for item in todo:
                item[0]["status"] = "would_change"
            return []
        return act(todo) if todo else []

    def common_result(self, msg, scale_set=None, changed=False, **values):
        """A result of the shape every module returns: ``changed``, ``msg``, ``scale_set``, ``elapsed_seconds``,
        ``retries``, then ``values``. ``scale_set`` (a scale set dict) is remembered for a later failure."""
        if scale_set is not None:
            self.scale_set = scale_set_summary(scale_set)
        result = {
            "changed": changed,
            "msg": msg,
            "scale_set": self.scale_set if self.scale_set is not None else self._scale_set_of_params(),
            # No deadline yet while the limits are checked: nothing has run.
            "elapsed_seconds": round(self.deadline.elapsed(), 3) if self.deadline is not None else 0.0,
            "retries": self.retry_summary(),
        }
        result.update(values)
        return result

    def member_result(self, scale_set, entries, what, counts=None, changed=None, filtered_fields=None, **values):
        """The result of a task on members: the common keys, ``instances`` (``entries`` and the members named in
        ``instances`` a filter left out, by name) and ``counts`` (``member_counts`` updated with ``counts``).

        ``what`` starts the ``msg`` (``summary_line``); ``changed`` defaults to "some member changed";
        ``filtered_fields`` are set on the filtered-out entries (the keys of this module's entries they lack).
        """
        filtered_out = [dict(entry, **(filtered_fields or {})) for entry in self.selection_outcome()]
        all_counts = member_counts(entries, filtered_out)
        all_counts.update(counts or {})
        return self.common_result(
            summary_line(what, all_counts, self.check_mode), scale_set,
            changed=all_counts["changed"] > 0 if changed is None else changed,
            instances=sorted(entries + filtered_out, key=lambda entry: str(entry["name"] or "").lower()),
            counts=all_counts, **values)

    def report_members(self, scale_set, entries, diff_key, failed_to, what=None, diff=None, **values):
        """The result of a task that acted on members: ``member_result``, the diff, and a failure when any failed.

        Each entry has ``name``, ``status`` (``MEMBER_STATUSES``), ``changed``, ``before`` and ``after`` (shown in the
        diff under ``diff_key`` for members changed or failed, unless the module gives its own ``diff``) and, when
        failed, ``error``. ``what`` starts the ``msg`` (default: ``failed_to``).
        When any member failed, raises ``MemberFailures`` saying what they ``failed_to`` do.
        """
        result = self.member_result(scale_set, entries, what or failed_to, **values)
        if self._diff:
            if diff is None:
                touched = [entry for entry in entries if entry["changed"] or entry["status"] in FAILED_STATUSES]
                diff = {"before": {diff_key: {entry["name"]: entry["before"] for entry in touched}},
                        "after": {diff_key: {entry["name"]: entry["after"] for entry in touched}}}
            result["diff"] = diff
        raise_member_failures(result, entries, failed_to)
        return result

    def _scale_set_of_params(self):
        """The scale set the options name, for a failure before it was read (``id`` only when given as one)."""
        params = self.module.params
        scale_set_id = params.get("scale_set_id")
        if scale_set_id:
            try:
                ref = ScaleSetRef.parse(scale_set_id)
                return {"id": scale_set_id, "name": ref.name, "resource_group": ref.resource_group}
            except InvalidInputError:
                return {"id": scale_set_id, "name": None, "resource_group": None}
        name = params.get("scale_set")
        return {"id": None, "name": name if isinstance(name, str) else None,
                "resource_group": params.get("resource_group")}

    def retry_summary(self):
        """How many retries (and throttled responses) the task met, once clients exist."""
        rules = getattr(self._clients, "retry_rules", None)
        return rules.summary() if rules is not None else {"retries": 0, "throttled_responses": 0}

    def _check_limits(self):
        params = self.module.params
        for name, low, high in (("timeout", 1, MAX_TIMEOUT), ("max_parallel", 1, MAX_PARALLEL_LIMIT),
                                ("polling_interval", 1, MAX_POLLING_INTERVAL)):
            value = params.get(name)
            if value is None:
                continue
            if value < low or value > high:
                self.module.fail_json(**self.common_result("%s must be between %d and %d, got %d"
                                                           % (name, low, high, value), code=CODE_INVALID_INPUT))
