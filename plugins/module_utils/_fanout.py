# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""Run one function over many items with bounded concurrency and an overall deadline.

Used for per-VM work (instance views, actions, locks). Results come back in input order. A failure
of one item that Azure reported (or that the collection raised as ``AzureFlexError``) becomes that
item's error and does not stop the others; any other exception is a bug and is re-raised in the
caller once the workers have stopped.

Workers are daemon threads rather than a ``ThreadPoolExecutor``: the executor's threads are joined
at interpreter exit, so one request hanging past the deadline would keep the module from exiting.
"""

from __future__ import annotations

import threading
from collections import deque

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    OperationTimeoutError,
    to_flex_error,
    azure_error_types,
    AzureFlexError,
)


# As many members at once as a task may take (module_utils/_module.py MAX_PARALLEL_LIMIT). Azure's limits do
# not need a smaller default: every request of the task waits for its token of the shared budget
# (_resilience.RateBudget), which ARM's own rate-limit headers keep in step. With 100, a 100-member restart
# takes about one operation's time instead of ten waves of it.
DEFAULT_MAX_PARALLEL = 100

# After the deadline, how long to let in-flight items finish their own timeout handling (their
# waits are bounded by the same deadline, so they normally return within moments).
DEFAULT_GRACE_SECONDS = 5.0


class ItemOutcome:
    """What happened to one item: a result, or an ``AzureFlexError``."""

    def __init__(self, item, result=None, error=None):
        self.item = item
        self.result = result
        self.error = error

    @property
    def ok(self):
        return self.error is None

    def __repr__(self):
        return "ItemOutcome(item=%r, ok=%r)" % (self.item, self.ok)


def run_bounded(func, items, max_parallel=DEFAULT_MAX_PARALLEL, deadline=None, grace_seconds=DEFAULT_GRACE_SECONDS):
    """Call ``func(item)`` for every item, at most ``max_parallel`` at a time.

    Returns a list of ``ItemOutcome`` in the order of ``items``. Items not started before
    ``deadline`` (a ``Deadline`` or None) are reported with an ``OperationTimeoutError``, as are items
    still running ``grace_seconds`` after it.
    """
    if max_parallel < 1:
        raise ValueError("max_parallel must be at least 1, got %r" % (max_parallel,))
    items = list(items)
    run = _FanOutRun(func, items, deadline)
    workers = [threading.Thread(target=run.work, name="azure-flex-fanout-%d" % index, daemon=True)
               for index in range(min(max_parallel, len(items)))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(None if deadline is None else deadline.remaining() + grace_seconds)
    return run.finish()


class _FanOutRun:
    """Shared state of one ``run_bounded`` call: the queue of pending items and their outcomes."""

    def __init__(self, func, items, deadline):
        self._func = func
        self._items = items
        self._deadline = deadline
        self._pending = deque(range(len(items)))
        self._outcomes = [None] * len(items)
        self._lock = threading.Lock()
        self._unexpected = None

    def work(self):
        while True:
            index = self._next_index()
            if index is None:
                return
            self._outcomes[index] = self._run_one(self._items[index])

    def finish(self):
        """Return outcomes in input order, after re-raising any bug seen in a worker."""
        with self._lock:
            self._pending.clear()  # stop workers that are still alive from taking more items
            unexpected = self._unexpected
        if unexpected is not None:
            raise unexpected
        return [outcome if outcome is not None else ItemOutcome(item, error=_abandoned_error())
                for item, outcome in zip(self._items, self._outcomes)]

    def _next_index(self):
        """Return the index of the next item to run, or None when there is nothing left to start."""
        while True:
            with self._lock:
                if not self._pending or self._unexpected is not None:
                    return None
                index = self._pending.popleft()
            if self._deadline is None or not self._deadline.expired():
                return index
            self._outcomes[index] = ItemOutcome(self._items[index], error=OperationTimeoutError(
                "Not started: the task timeout was reached before this item's turn"))

    def _run_one(self, item):
        try:
            return ItemOutcome(item, result=self._func(item))
        except (AzureFlexError,) + azure_error_types() as exc:
            return ItemOutcome(item, error=to_flex_error(exc))
        except Exception as exc:  # pylint: disable=broad-exception-caught
            # Not an Azure failure: a bug. Keep the first one and stop handing out work; finish()
            # re-raises it in the calling thread (an exception cannot cross threads by itself).
            with self._lock:
                if self._unexpected is None:
                    self._unexpected = exc
            return None


def _abandoned_error():
    return OperationTimeoutError("Still running when the task timeout was reached; the result is unknown")
