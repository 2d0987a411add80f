# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Load balancer writes: one at a time, AnotherOperationInProgress retried within the deadline."""

from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import AzureFlexError, InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils._network import LoadBalancerWriter, NetworkId, is_conflict
from ansible_collections.azure_flex.vmss.plugins.module_utils._resilience import Deadline
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import FakeClock

LB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb"


class DonePoller:
    def __init__(self, result="done"):
        self._result = result

    def wait(self, timeout=None):
        """Already finished."""

    def done(self):
        return True

    def result(self):
        return self._result


def busy():
    return AzureFlexError("Another operation on this or dependent resource is in progress.",
                          code="AnotherOperationInProgress", status=409, request_id="req-1")


class Script:
    """A begin() that raises the scripted errors in turn, then returns a finished poller."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return DonePoller()


def writer(seconds=100, clock=None, sleeps=None, **kwargs):
    clock = clock or FakeClock()
    sleeps = [] if sleeps is None else sleeps

    def sleep(delay):
        sleeps.append(delay)
        clock.advance(delay)

    return LoadBalancerWriter(Deadline(seconds, clock=clock), backoff=lambda attempts: 2.0 * attempts, sleep=sleep,
                              **kwargs)


def test_a_busy_load_balancer_is_retried_with_backoff_until_the_write_is_accepted():
    sleeps = []
    serial = writer(sleeps=sleeps)
    begin = Script(busy(), busy())
    assert serial.run(LB, begin, "create rule") == (True, "done")
    assert begin.calls == 3
    assert sleeps == [2.0, 4.0]
    assert serial.conflicts == 2


def test_other_errors_are_not_retried():
    serial = writer()
    refused = AzureFlexError("bad", code="InvalidParameter", status=400)
    with pytest.raises(AzureFlexError, match="bad"):
        serial.run(LB, Script(refused), "create rule")
    assert serial.conflicts == 0


def test_an_operation_that_ended_with_the_code_is_not_repeated():
    # A failed long-running operation has no HTTP status: it was accepted, so it is not sent again.
    ended = AzureFlexError("busy later", code="AnotherOperationInProgress", status=None)
    assert not is_conflict(ended)
    with pytest.raises(AzureFlexError, match="busy later"):
        writer().run(LB, Script(ended), "create rule")


def test_retries_stop_at_the_deadline_with_the_last_error_and_an_explanation():
    sleeps = []
    serial = writer(seconds=7, sleeps=sleeps)
    with pytest.raises(AzureFlexError) as gave_up:
        serial.run(LB, Script(*[busy() for _attempt in range(10)]), "create rule")
    assert sleeps == [2.0, 4.0]  # a third wait (6 s) would pass the deadline
    assert gave_up.value.code == "AnotherOperationInProgress"
    assert gave_up.value.status == 409
    assert gave_up.value.request_id == "req-1"
    assert "still busy with another operation after 3 attempt(s)" in gave_up.value.msg


def test_retries_stop_after_max_attempts():
    begin = Script(*[busy() for _attempt in range(10)])
    with pytest.raises(AzureFlexError, match="after 4 attempt"):
        writer(seconds=10000, max_attempts=4).run(LB, begin, "create rule")
    assert begin.calls == 4


def test_writes_to_one_load_balancer_never_overlap():
    serial = LoadBalancerWriter(Deadline(60))
    active = []
    overlaps = []
    lock = threading.Lock()

    def begin():
        with lock:
            active.append(1)
            if len(active) > 1:
                overlaps.append(len(active))
        time.sleep(0.01)
        with lock:
            active.pop()
        return DonePoller()

    threads = [threading.Thread(target=serial.run, args=(LB.upper() if index % 2 else LB, begin, "write"))
               for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []


def test_network_ids_are_parsed_and_checked():
    ref = NetworkId.parse(LB + "/inboundNatRules/ssh", "loadBalancers")
    assert (ref.subscription_id, ref.resource_group, ref.name, ref.rest) == ("s", "rg", "lb", "/inboundNatRules/ssh")
    with pytest.raises(InvalidInputError, match="is not a loadBalancers resource id"):
        NetworkId.parse(LB.replace("loadBalancers", "publicIPAddresses"), "loadBalancers")
    with pytest.raises(InvalidInputError):
        NetworkId.parse("lb")
