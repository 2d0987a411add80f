# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import email.utils
import time

import pytest

from azure.core import PipelineClient
from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.core.rest import HttpRequest

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import AzureFlexError, OperationTimeoutError
from ansible_collections.azure_flex.vmss.plugins.module_utils._resilience import (
    Deadline,
    OperationTimer,
    RateBudget,
    operation_kind,
    RetryRules,
    request_kind,
    build_retry_policy,
    retry_after_seconds,
    run_operation,
    wait_for_poller,
)
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import (
    BASE_URL,
    FakeClock,
    arm_error,
    reply,
    scripted_transport,
)


def no_jitter():
    return 1.0  # the top of the backoff range, so delays are predictable


# -- Deadline ---------------------------------------------------------------------------------

def test_deadline_counts_down_and_never_goes_negative():
    clock = FakeClock()
    deadline = Deadline(10, clock=clock)
    clock.advance(4)
    assert deadline.remaining() == 6
    assert deadline.elapsed() == 4
    assert deadline.allows_wait(5.9)
    assert not deadline.allows_wait(6)
    clock.advance(100)
    assert deadline.remaining() == 0
    assert deadline.expired()


@pytest.mark.parametrize("seconds", [0, -1, None])
def test_deadline_needs_positive_seconds(seconds):
    with pytest.raises(ValueError):
        Deadline(seconds)


# -- Retry-After parsing ----------------------------------------------------------------------

@pytest.mark.parametrize("headers, expected", [
    ({}, None),
    ({"Retry-After": "7"}, 7.0),
    ({"retry-after": "0"}, 0.0),
    ({"Retry-After": "2.5"}, 2.5),
    ({"retry-after-ms": "1500"}, 1.5),
    ({"x-ms-retry-after-ms": "250", "Retry-After": "9"}, 0.25),
    ({"Retry-After": "soon"}, None),
    ({"Retry-After": "-3"}, None),
])
def test_retry_after_seconds(headers, expected):
    assert retry_after_seconds(headers) == expected


def test_retry_after_accepts_http_dates():
    in_thirty_seconds = email.utils.formatdate(time.time() + 30, usegmt=True)

    assert 25 <= retry_after_seconds({"Retry-After": in_thirty_seconds}) <= 30


# -- RetryRules decisions ---------------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "POST", "PATCH"])
@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_throttling_and_transient_statuses_are_retried_for_every_method(method, status):
    rules = RetryRules(jitter=no_jitter)

    assert rules.delay_after_response(1, method, status, {}) == 1.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 412, 501])
def test_answers_are_not_retried(status):
    assert RetryRules().delay_after_response(1, "GET", status, {"Retry-After": "1"}) is None


def test_retry_after_header_wins_over_backoff():
    assert RetryRules(jitter=no_jitter).delay_after_response(1, "POST", 429, {"Retry-After": "17"}) == 17.0


def test_backoff_grows_and_is_capped():
    rules = RetryRules(backoff_base=1.0, backoff_cap=5.0, jitter=no_jitter, max_attempts=10)

    assert [rules.backoff(attempt) for attempt in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_backoff_jitter_stays_in_the_upper_half():
    rules = RetryRules(backoff_base=4.0, jitter=lambda: 0.0)

    assert rules.backoff(1) == 2.0


def test_attempts_are_bounded():
    rules = RetryRules(max_attempts=3, jitter=no_jitter)

    assert rules.delay_after_response(2, "GET", 503, {}) is not None
    assert rules.delay_after_response(3, "GET", 503, {}) is None


def test_never_waits_past_the_deadline():
    clock = FakeClock()
    rules = RetryRules(deadline=Deadline(10, clock=clock), jitter=no_jitter)

    assert rules.delay_after_response(1, "POST", 429, {"Retry-After": "9"}) == 9.0
    clock.advance(2)
    assert rules.delay_after_response(1, "POST", 429, {"Retry-After": "9"}) is None


def test_connection_failures_retry_only_when_safe():
    rules = RetryRules(jitter=no_jitter)

    assert rules.delay_after_transport_error(1, "POST", request_was_sent=False) == 1.0
    assert rules.delay_after_transport_error(1, "GET", request_was_sent=True) == 1.0
    assert rules.delay_after_transport_error(1, "POST", request_was_sent=True) is None


# -- the policy inside a real azure-core pipeline ---------------------------------------------

class PipelineUnderTest:
    """A PipelineClient with only our retry policy, over a scripted transport; sleeps are recorded."""

    def __init__(self, script, rules):
        self.transport, self.adapter = scripted_transport(script)
        self.sleeps = []
        self.transport.sleep = self.sleeps.append
        self.client = PipelineClient(BASE_URL, transport=self.transport, policies=[build_retry_policy(rules)])

    def send(self, method):
        return self.client.send_request(HttpRequest(method, BASE_URL + "/subscriptions/s/providers/x/action"))


def test_pipeline_retries_429_on_post_without_retry_after():
    pipeline = PipelineUnderTest([reply(429, arm_error("SubscriptionRequestsThrottled", "slow down")), reply(200, {})],
                                 RetryRules(jitter=no_jitter))

    response = pipeline.send("POST")

    assert response.status_code == 200
    assert len(pipeline.adapter.requests) == 2
    assert pipeline.sleeps == [1.0]


def test_pipeline_honours_retry_after_on_post():
    rules = RetryRules(jitter=no_jitter)
    pipeline = PipelineUnderTest([reply(429, None, {"Retry-After": "3"}), reply(429, None, {"retry-after-ms": "500"}),
                                  reply(202, None)], rules)

    assert pipeline.send("POST").status_code == 202
    assert pipeline.sleeps == [3.0, 0.5]
    assert rules.summary() == {"retries": 2, "throttled_responses": 2}


def test_pipeline_retries_503_on_patch():
    pipeline = PipelineUnderTest([reply(503), reply(200, {})], RetryRules(jitter=no_jitter))

    assert pipeline.send("PATCH").status_code == 200


def test_pipeline_returns_400_at_once():
    pipeline = PipelineUnderTest([reply(400, arm_error("InvalidParameter", "bad"))], RetryRules())

    assert pipeline.send("GET").status_code == 400
    assert pipeline.sleeps == []


def test_pipeline_gives_up_after_max_attempts_with_the_last_response():
    pipeline = PipelineUnderTest([reply(503)] * 3, RetryRules(max_attempts=3, jitter=no_jitter))

    assert pipeline.send("GET").status_code == 503
    assert len(pipeline.adapter.requests) == 3
    assert pipeline.sleeps == [1.0, 2.0]


def test_pipeline_does_not_sleep_past_the_deadline():
    deadline = Deadline(5)
    pipeline = PipelineUnderTest([reply(429, None, {"Retry-After": "60"})], RetryRules(deadline=deadline))

    assert pipeline.send("POST").status_code == 429
    assert pipeline.sleeps == []


def test_pipeline_caps_transport_timeouts_at_the_time_left():
    pipeline = PipelineUnderTest([reply(200, {})], RetryRules(deadline=Deadline(7)))

    pipeline.send("GET")

    connect_timeout, read_timeout = pipeline.adapter.requests[0].send_kwargs["timeout"]
    assert 6 < connect_timeout <= 7
    assert 6 < read_timeout <= 7


def test_pipeline_retries_unsent_post_but_not_a_post_that_may_have_run():
    unsent = PipelineUnderTest([ServiceRequestError("refused"), reply(200, {})], RetryRules(jitter=no_jitter))
    assert unsent.send("POST").status_code == 200

    maybe_ran = PipelineUnderTest([ServiceResponseError("reset")], RetryRules(jitter=no_jitter))
    with pytest.raises(ServiceResponseError):
        maybe_ran.send("POST")
    assert len(maybe_ran.adapter.requests) == 1


# -- the shared request budget (ARM's rate-limit headers) -------------------------------------

def reads_left(count):
    return {"x-ms-ratelimit-remaining-subscription-reads": str(count)}


@pytest.mark.parametrize("method, kind", [("GET", "reads"), ("head", "reads"), ("PUT", "writes"), ("POST", "writes"),
                                          ("PATCH", "writes"), ("DELETE", "deletes")])
def test_request_kinds_are_arms_buckets(method, kind):
    assert request_kind(method) == kind


def test_budget_never_paces_before_the_server_reported():
    budget = RateBudget(clock=FakeClock())

    assert [budget.reserve("GET") for _request in range(1000)] == [0.0] * 1000
    budget.observe("GET", {})  # a response without the header changes nothing
    assert budget.reserve("GET") == 0.0


def test_budget_follows_the_servers_count_and_queues_when_empty():
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    budget.reserve("GET")
    budget.observe("GET", reads_left(2))

    # Two tokens left: two requests go at once; the next ones wait one refill interval (1/25 s) each,
    # in turn, instead of all at the same moment.
    waits = [budget.reserve("GET") for _request in range(5)]

    assert waits[:2] == [0.0, 0.0]
    assert waits[2:] == pytest.approx([0.04, 0.08, 0.12])
    assert budget.summary() == {"paced_requests": 3, "paced_seconds": 0.24}


def test_budget_refills_at_the_documented_rate_up_to_the_bucket_seen():
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    budget.reserve("PUT")
    budget.observe("PUT", {"x-ms-ratelimit-remaining-subscription-writes": "199"})
    # A minute later the bucket is full again (200), not 199 + 600.
    clock.advance(60)
    assert [budget.reserve("PUT") for _request in range(200)] == [0.0] * 200
    assert budget.reserve("PUT") == pytest.approx(0.1)


def test_budget_counts_requests_in_flight_against_what_the_server_reported():
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    for _round in range(4):
        budget.reserve("GET")
    # The first answer says 3 left, but three more requests are on their way: nothing is left for a fifth.
    budget.observe("GET", reads_left(3))

    assert budget.reserve("GET") == pytest.approx(0.04)


def test_budget_kinds_are_separate_and_a_throttled_response_empties_its_kind():
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    budget.reserve("POST")
    budget.observe("POST", {"x-ms-ratelimit-remaining-subscription-writes": "0", "Retry-After": "1"})
    budget.reserve("GET")
    budget.observe("GET", reads_left(100))

    assert budget.reserve("POST") == pytest.approx(0.1)
    assert budget.reserve("GET") == 0.0
    assert budget.reserve("DELETE") == 0.0


def test_abandoned_requests_no_longer_count_as_in_flight():
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    budget.reserve("GET")
    budget.reserve("GET")
    budget.abandon("GET")
    budget.observe("GET", reads_left(1))

    assert budget.reserve("GET") == 0.0


def test_pipeline_paces_requests_by_the_shared_budget():
    clock = FakeClock()
    budget = RateBudget(clock=clock)
    transport, adapter = scripted_transport([reply(200, {}, reads_left(0)), reply(200, {}, reads_left(0))])
    sleeps = []
    transport.sleep = sleeps.append
    client = PipelineClient(BASE_URL, transport=transport, policies=[build_retry_policy(RetryRules(), budget)])

    for _round in range(2):
        client.send_request(HttpRequest("GET", BASE_URL + "/subscriptions/s/resourceGroups/rg"))

    # The first went at once and reported an empty bucket; the second waited for its token.
    assert sleeps == [pytest.approx(0.04)]
    assert len(adapter.requests) == 2


def test_pipeline_paces_no_longer_than_the_deadline():
    clock = FakeClock()
    budget = RateBudget(refill_per_second={"reads": 0.001}, clock=clock)
    budget.reserve("GET")
    budget.observe("GET", reads_left(0))
    transport, _adapter = scripted_transport([reply(200, {})])
    sleeps = []
    transport.sleep = sleeps.append
    rules = RetryRules(deadline=Deadline(7))
    client = PipelineClient(BASE_URL, transport=transport, policies=[build_retry_policy(rules, budget)])

    client.send_request(HttpRequest("GET", BASE_URL + "/subscriptions/s"))

    assert len(sleeps) == 1 and 6 < sleeps[0] <= 7


# -- when to poll an operation ------------------------------------------------------------------

STATUS = "https://arm.test.invalid/subscriptions/s/providers/Microsoft.Compute/locations/l/operations/%d?p=x"


def test_operations_are_grouped_by_what_they_do():
    vm = "https://arm.test.invalid/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
    assert operation_kind("POST", vm + "/restart?api-version=2024-07-01") == "restart"
    assert operation_kind("DELETE", vm) == "DELETE virtualmachines"


def test_timer_puts_off_first_polls_once_operations_of_the_kind_have_finished():
    clock = FakeClock()
    timer = OperationTimer(clock=clock)
    for index in range(3):
        timer.started(STATUS % index, "restart")
    # Nothing finished yet: poll when the SDK wants to.
    assert timer.delay_before_poll(STATUS % 0) == 0.0
    clock.advance(1)
    for index in range(3):
        timer.polled(STATUS % index, {"status": "InProgress"})
    clock.advance(3)
    for index in range(3):
        timer.polled(STATUS % index, {"status": "Succeeded"})
    # Restarts take about 4 s here: a new one is first checked 4 s after it started ...
    timer.started(STATUS % 9, "restart")
    assert timer.delay_before_poll(STATUS % 9) == pytest.approx(4.0)
    clock.advance(1)
    assert timer.delay_before_poll(STATUS % 9) == pytest.approx(3.0)
    # ... another kind, a finished operation or an unknown URL is never held back.
    timer.started(STATUS % 10, "deallocate")
    assert timer.delay_before_poll(STATUS % 10) == 0.0
    assert timer.delay_before_poll(STATUS % 0) == 0.0
    assert timer.delay_before_poll("https://arm.test.invalid/subscriptions/s/resourceGroups/rg") == 0.0
    assert timer.last_status(STATUS % 0) == {"status": "Succeeded"}


def test_pipeline_learns_operation_times_from_the_status_urls():
    clock = FakeClock()
    timer = OperationTimer(clock=clock)
    accepted = {"Azure-AsyncOperation": STATUS % 1, "Retry-After": "1"}
    script = []
    for _round in range(3):
        script += [reply(202, None, accepted), reply(200, {"status": "Succeeded"})]
    script += [reply(202, None, accepted), reply(200, {"status": "InProgress"})]
    transport, _adapter = scripted_transport(script)
    sleeps = []
    transport.sleep = lambda seconds: (sleeps.append(seconds), clock.advance(seconds))
    client = PipelineClient(BASE_URL, transport=transport, policies=[build_retry_policy(RetryRules(), None, timer)])
    action = BASE_URL + "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm/restart"
    for _round in range(3):
        client.send_request(HttpRequest("POST", action))
        clock.advance(5)
        client.send_request(HttpRequest("GET", STATUS % 1))
    assert sleeps == []
    client.send_request(HttpRequest("POST", action))
    clock.advance(1)
    client.send_request(HttpRequest("GET", STATUS % 1))
    # Restarts took 5 s: the first poll of the fourth one waits the other 4 s.
    assert sleeps == [pytest.approx(4.0)]


# -- long-running operation waits -------------------------------------------------------------

class FakePoller:
    def __init__(self, finishes=True, result="done", error=None):
        self._finishes = finishes
        self._result = result
        self._error = error
        self.wait_timeouts = []

    def wait(self, timeout=None):
        self.wait_timeouts.append(timeout)
        if self._error is not None:
            raise self._error

    def done(self):
        return self._finishes

    def result(self, timeout=None):
        return self._result


def test_wait_returns_the_result_of_a_finished_operation():
    poller = FakePoller()

    assert wait_for_poller(poller, Deadline(30), "restart vm1") == "done"
    assert 29 < poller.wait_timeouts[0] <= 30


def test_wait_raises_a_timeout_when_the_operation_is_still_running():
    with pytest.raises(OperationTimeoutError) as caught:
        wait_for_poller(FakePoller(finishes=False), Deadline(30), "restart vm1")

    assert "restart vm1" in caught.value.msg
    assert "may still complete" in caught.value.msg


def test_wait_converts_operation_failures():
    from azure.core.exceptions import HttpResponseError

    failure = HttpResponseError(message="(OperationPreempted) preempted")

    with pytest.raises(AzureFlexError) as caught:
        wait_for_poller(FakePoller(error=failure), Deadline(30), "restart vm1")

    assert caught.value.msg.startswith("Failed to restart vm1: ")


def test_run_operation_without_wait_only_starts():
    started = []

    finished, result = run_operation(lambda: started.append(True) or FakePoller(), Deadline(30), "restart vm1", wait=False)

    assert (finished, result, started) == (False, None, [True])


def test_run_operation_waits_by_default():
    assert run_operation(FakePoller, Deadline(30), "restart vm1") == (True, "done")


def test_a_429_with_retry_after_gets_more_attempts_than_other_failures():
    """Issue 12's inconclusive case: at 20 % random 429s, six attempts in a row all throttled failed a member."""
    rules = RetryRules(jitter=no_jitter)
    throttled = {"Retry-After": "1"}

    assert rules.delay_after_response(6, "POST", 429, throttled) == 1.0
    assert rules.delay_after_response(11, "POST", 429, throttled) == 1.0
    assert rules.delay_after_response(12, "POST", 429, throttled) is None
    # Without Retry-After (backoff grows) and for 5xx the budget stays at six attempts.
    assert rules.delay_after_response(6, "GET", 429, {}) is None
    assert rules.delay_after_response(6, "GET", 503, throttled) is None
    assert RetryRules(max_attempts=3, max_throttled_attempts=4).delay_after_response(4, "GET", 429, throttled) is None


def test_pipeline_rides_out_eight_throttled_answers_in_a_row():
    pipeline = PipelineUnderTest([reply(429, None, {"Retry-After": "1"})] * 8 + [reply(202, None)],
                                 RetryRules(jitter=no_jitter))

    assert pipeline.send("POST").status_code == 202
    assert pipeline.sleeps == [1.0] * 8
