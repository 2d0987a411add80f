# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""Writes that change a load balancer, made one at a time, and network resource ids.

The Network resource provider takes one change at a time per load balancer: while a write to the
load balancer, to one of its inbound NAT rules, or to a NIC that joins or leaves one of its pools or
NAT rules is running, another such write is refused with HTTP 409 ``AnotherOperationInProgress``,
without a ``Retry-After`` header (so neither the SDK's retry policy nor ``RetryRules`` retries it).

The collection does both things that make this safe:

* **serialize**: every write that changes a load balancer goes through ``LoadBalancerWriter.run()``,
  which holds a lock per load balancer, so the writes of one task never collide with each other, even
  when a module fans out;
* **retry**: a write still refused with 409 ``AnotherOperationInProgress`` (another task, the portal,
  or the platform itself is changing the load balancer) is sent again after an exponential backoff
  with jitter, for as long as the task's deadline allows. Only the refused *initial* request is
  repeated: a PUT or DELETE is idempotent, and a refused request changed nothing.
"""

from __future__ import annotations

import re
import threading
import time

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import AzureFlexError, InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils._resilience import RetryRules, run_operation


CONFLICT_CODE = "AnotherOperationInProgress"
# At most this many attempts per write; the deadline usually ends the retries first.
CONFLICT_MAX_ATTEMPTS = 20
CONFLICT_BACKOFF_BASE = 1.0
CONFLICT_BACKOFF_CAP = 10.0

_NETWORK_ID = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<resource_group>[^/]+)"
    r"/providers/Microsoft\.Network/(?P<type>[^/]+)/(?P<name>[^/]+)(?P<rest>/.*)?\Z",
    re.IGNORECASE,
)


class NetworkId:
    """The parts of a Microsoft.Network resource id (``rest`` is the child path, if any)."""

    def __init__(self, subscription_id, resource_group, resource_type, name, rest=""):
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.resource_type = resource_type
        self.name = name
        self.rest = rest or ""

    @classmethod
    def parse(cls, resource_id, resource_type=None):
        """Parse ``resource_id``; with ``resource_type`` (e.g. ``loadBalancers``), insist on that type."""
        match = _NETWORK_ID.match(str(resource_id or "").rstrip("/"))
        if not match or (resource_type and match.group("type").lower() != resource_type.lower()):
            raise InvalidInputError("%r is not a %s resource id (/subscriptions/<id>/resourceGroups/<group>/providers/"
                                    "Microsoft.Network/%s/<name>)" % (resource_id, resource_type or "network",
                                                                      resource_type or "<type>"))
        return cls(match.group("subscription"), match.group("resource_group"), match.group("type"),
                   match.group("name"), match.group("rest"))


class LoadBalancerWriter:
    """Runs writes that change a load balancer one at a time, retrying ``AnotherOperationInProgress``.

    ``run(lb_id, begin, description)`` takes the load balancer's lock, starts ``begin()`` (a
    ``begin_*`` SDK call) and waits for it (when ``wait``) within the deadline, as ``run_operation``
    does. ``conflicts`` counts the refused attempts, for the task's report.
    """

    def __init__(self, deadline, wait=True, max_attempts=CONFLICT_MAX_ATTEMPTS, backoff=None, sleep=time.sleep):
        self.deadline = deadline
        self.wait = wait
        self.max_attempts = max_attempts
        self._backoff = backoff or RetryRules(deadline=deadline, backoff_base=CONFLICT_BACKOFF_BASE,
                                              backoff_cap=CONFLICT_BACKOFF_CAP).backoff
        self._sleep = sleep
        self._guard = threading.Lock()
        self._locks = {}
        self._conflicts = 0

    @property
    def conflicts(self):
        with self._guard:
            return self._conflicts

    def run(self, lb_id, begin, description):
        """Return ``(finished, result)`` like ``run_operation``; raise ``AzureFlexError`` on failure."""
        with self._lock_for(lb_id):
            attempts = 0
            while True:
                attempts += 1
                try:
                    return run_operation(begin, self.deadline, description, wait=self.wait)
                except AzureFlexError as exc:
                    if not is_conflict(exc):
                        raise
                    delay = self._backoff(attempts)
                    if attempts >= self.max_attempts or not self.deadline.allows_wait(delay):
                        raise exc.with_message(
                            "%s (the load balancer was still busy with another operation after %d attempt(s) in %.0f s;"
                            " writes to one load balancer are made one at a time)"
                            % (exc.msg, attempts, self.deadline.elapsed()))
                    with self._guard:
                        self._conflicts += 1
                    self._sleep(delay)

    def _lock_for(self, lb_id):
        key = str(lb_id).lower()
        with self._guard:
            if key not in self._locks:
                self._locks[key] = threading.Lock()
            return self._locks[key]


def is_conflict(error):
    """True for the refused initial request of a write (409 AnotherOperationInProgress).

    A long-running operation that *ended* Failed has no HTTP status here and is not repeated.
    """
    return getattr(error, "code", None) == CONFLICT_CODE and getattr(error, "status", None) == 409
