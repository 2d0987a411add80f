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
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    CODE_INVALID_INPUT,
    AzureFlexError,
    MissingDependencyError,
    azure_error_types,
    to_flex_error,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._fanout import DEFAULT_MAX_PARALLEL, run_bounded
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


# Member statuses that fail the task: a failure, or in check mode one predicted (Azure would refuse).
FAILED_STATUSES = ("failed", "would_fail")


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
                 required_one_of=None, required_if=None, required_by=None, environ=None):
        argument_spec = dict(argument_spec or {})
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
        self._check_limits()
        self.deadline = Deadline(self.module.params.get("timeout") or DEFAULT_TIMEOUT)
        self._auth_settings = None
        self._cloud = None
        self._clients = None
        self._selectors = []
        self._selection_warned = False

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

        The task's result reports what its selectors found worth saying (``selection_outcome``).
        """
        selector = ScaleSetSelector(self.clients, self.subscription_id, self.deadline, self.max_parallel)
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
            self.module.fail_json(msg=failure.msg, **failure.result)
        self.fail_azure(failure)

    def fail_azure(self, error, **extra):
        """Fail the task reporting msg, ARM error code, HTTP status and request/correlation ids."""
        flex_error = to_flex_error(error)
        if flex_error is None:
            raise error
        result = flex_error.to_dict()
        if isinstance(flex_error, MissingDependencyError):
            result["msg"] = missing_required_lib(flex_error.library)
            result["exception"] = "".join(traceback.format_exception(
                type(flex_error.import_error), flex_error.import_error, flex_error.import_error.__traceback__))
        result.update(extra)
        self.module.fail_json(**result)

    def report_members(self, scale_set, entries, diff_key, failed_to):
        """The result of a task that acted on members: counts, per-member entries, diff, timing, retries.

        Each entry has ``name``, ``status`` (``failed``, ``would_fail`` in check mode, or another), ``changed``,
        ``before`` and ``after`` (shown in the diff under ``diff_key`` for members changed or failed) and, when
        failed, ``error``.
        When any member failed, raises ``MemberFailures`` saying what they ``failed_to`` do.
        """
        counts = {"selected": len(entries), "changed": 0, "skipped": 0, "failed": 0}
        for entry in entries:
            counts["failed" if entry["status"] in FAILED_STATUSES else "changed" if entry["changed"] else "skipped"] += 1
        filtered_out = self.selection_outcome()
        counts["filtered_out"] = len(filtered_out)
        result = {
            "changed": counts["changed"] > 0,
            "instances": sorted(entries + filtered_out, key=lambda entry: str(entry["name"] or "").lower()),
            "counts": counts,
            "scale_set": {key: scale_set[key] for key in ("id", "name", "resource_group")},
            "elapsed_seconds": round(self.deadline.elapsed(), 3),
            "retries": self.retry_summary(),
        }
        if self._diff:
            touched = [entry for entry in entries if entry["changed"] or entry["status"] in FAILED_STATUSES]
            result["diff"] = {"before": {diff_key: {entry["name"]: entry["before"] for entry in touched}},
                              "after": {diff_key: {entry["name"]: entry["after"] for entry in touched}}}
        if counts["failed"]:
            failing = [entry for entry in entries if entry["status"] in FAILED_STATUSES]
            failures = ["%s: %s" % (entry["name"], entry["error"].get("code") or entry["error"].get("msg"))
                        for entry in failing]
            predicted = all(entry["status"] == "would_fail" for entry in failing)
            raise MemberFailures("%d of %d member(s) %s to %s: %s" % (
                counts["failed"], counts["selected"], "would fail" if predicted else "failed", failed_to,
                "; ".join(failures)), result)
        return result

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
                self.module.fail_json(msg="%s must be between %d and %d, got %d" % (name, low, high, value),
                                      code=CODE_INVALID_INPUT)
