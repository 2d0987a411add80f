# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import random
import threading
import time

import pytest

from azure.core.exceptions import ResourceNotFoundError

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import CODE_TIMEOUT, AzureFlexError
from ansible_collections.azure_flex.vmss.plugins.module_utils._fanout import run_bounded
from ansible_collections.azure_flex.vmss.plugins.module_utils._resilience import Deadline


class ConcurrencyMeter:
    """Counts how many calls run at the same time."""

    def __init__(self):
        self._lock = threading.Lock()
        self.current = 0
        self.peak = 0

    def __enter__(self):
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)

    def __exit__(self, *exc_info):
        with self._lock:
            self.current -= 1


def test_results_come_back_in_input_order():
    def slow_square(number):
        time.sleep(random.uniform(0, 0.01))
        return number * number

    outcomes = run_bounded(slow_square, range(20), max_parallel=5)

    assert [outcome.result for outcome in outcomes] == [number * number for number in range(20)]
    assert [outcome.item for outcome in outcomes] == list(range(20))
    assert all(outcome.ok for outcome in outcomes)


@pytest.mark.parametrize("max_parallel", [1, 3, 8])
def test_concurrency_never_exceeds_the_bound(max_parallel):
    meter = ConcurrencyMeter()

    def work(item):
        with meter:
            time.sleep(0.01)
        return item

    run_bounded(work, range(24), max_parallel=max_parallel)

    assert meter.peak == max_parallel


def test_azure_failures_become_per_item_errors():
    def work(name):
        if name == "vm2":
            raise AzureFlexError("vm2 is locked", code="ScopeLocked", status=409)
        if name == "vm3":
            raise ResourceNotFoundError("vm3 is gone")
        return name.upper()

    outcomes = run_bounded(work, ["vm1", "vm2", "vm3", "vm4"], max_parallel=2)

    assert [outcome.ok for outcome in outcomes] == [True, False, False, True]
    assert outcomes[1].error.code == "ScopeLocked"
    assert isinstance(outcomes[2].error, AzureFlexError)
    assert outcomes[3].result == "VM4"


def test_a_bug_in_the_function_is_raised_not_hidden():
    def work(item):
        if item == 3:
            raise KeyError("missing field")
        return item

    with pytest.raises(KeyError):
        run_bounded(work, range(10), max_parallel=2)


def test_items_not_started_before_the_deadline_are_reported_as_timed_out():
    deadline = Deadline(0.2)

    def work(item):
        time.sleep(0.15)
        return item

    outcomes = run_bounded(work, range(6), max_parallel=1, deadline=deadline, grace_seconds=1)

    assert outcomes[0].ok
    assert not outcomes[-1].ok
    assert outcomes[-1].error.code == CODE_TIMEOUT
    assert "Not started" in outcomes[-1].error.msg


def test_items_still_running_after_the_grace_period_are_abandoned():
    release = threading.Event()

    def work(item):
        if item == "stuck":
            release.wait(5)
        return item

    started = time.monotonic()
    outcomes = run_bounded(work, ["quick", "stuck"], max_parallel=2, deadline=Deadline(0.1), grace_seconds=0.1)
    release.set()

    assert time.monotonic() - started < 2
    assert outcomes[0].ok
    assert outcomes[1].error.code == CODE_TIMEOUT
    assert "result is unknown" in outcomes[1].error.msg


def test_no_items_is_no_work():
    assert run_bounded(lambda item: item, [], max_parallel=4) == []


def test_max_parallel_must_be_positive():
    with pytest.raises(ValueError):
        run_bounded(lambda item: item, [1], max_parallel=0)
