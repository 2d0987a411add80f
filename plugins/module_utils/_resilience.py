# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""Deadlines, throttling/transient retries and long-running-operation waits: the one place for them.

Why not azure-core's default ``RetryPolicy``: it does not retry a 429 on POST or PATCH unless the
response carries ``Retry-After`` (Compute and Resource Graph throttle exactly those calls), and it
knows nothing about how long the task may still run, so it can sleep far past the user's timeout.
``RetryRules`` below decides every retry; ``build_retry_policy()`` plugs it into the SDK pipeline of
every client, so polls of long-running operations get the same treatment.

``RateBudget`` paces the requests of a whole task (every worker and client) by ARM's own account of its
per-subscription token buckets, the ``x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}``
headers, so a fan-out over 1,000 members spends the budget at the rate Azure refills it instead of
finding the limit through a storm of 429s; polls of long-running operations are reads like any other,
so they come no more often than the read budget allows.

Everything that needs azure-core is built lazily so that importing this file never imports ``azure``.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    OperationTimeoutError,
    azure_errors,
)


DEFAULT_MAX_ATTEMPTS = 6
# A 429 that says when to come back (Retry-After) was not processed and costs exactly the wait it asks
# for, so it gets more attempts: at 20 % random throttling, six attempts in a row are all throttled once in
# 15,600 requests, which a whole rolling run (hundreds of requests) meets within a few runs and which then
# fails a member; twelve make it once in 244 million. The deadline bounds these waits as all others.
DEFAULT_MAX_THROTTLED_ATTEMPTS = 12
DEFAULT_BACKOFF_BASE = 1.0
DEFAULT_BACKOFF_CAP = 30.0

# 408/429 mean "try later"; 500/502/503/504 are the transient server-side failures ARM documents.
# Other statuses (400, 401, 403, 404, 409, 412, ...) are answers, not hiccups, and go to the caller.
RETRYABLE_STATUS_CODES = frozenset([408, 429, 500, 502, 503, 504])

# A request that failed *after* it was sent may have been acted on; repeating it is only safe when
# the method is idempotent. A POST such as restart must not run twice.
IDEMPOTENT_METHODS = frozenset(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"])

# Never let one attempt wait on the socket for less than this, even right before the deadline;
# a zero timeout would make the transport fail instantly with a confusing error.
MINIMUM_TRANSPORT_TIMEOUT = 1.0

# ARM's token buckets (per subscription and principal, per region): what a bucket regains per second, as
# documented (Azure Resource Manager "request limits and throttling", token bucket algorithm, 2024). The
# headers say how many tokens are left; how fast they come back is not in any header.
RATE_LIMIT_KINDS = ("reads", "writes", "deletes")
DOCUMENTED_REFILL_PER_SECOND = {"reads": 25.0, "writes": 10.0, "deletes": 10.0}
RATE_LIMIT_HEADER = "x-ms-ratelimit-remaining-subscription-%s"


class Deadline:
    """A point in time (monotonic clock) by which the task must be finished."""

    def __init__(self, seconds, clock=time.monotonic):
        if seconds is None or seconds <= 0:
            raise ValueError("a deadline needs a positive number of seconds, got %r" % (seconds,))
        self.seconds = float(seconds)
        self._clock = clock
        self._started_at = clock()
        self._expires_at = self._started_at + self.seconds

    def remaining(self):
        """Seconds left, never negative."""
        return max(0.0, self._expires_at - self._clock())

    def elapsed(self):
        """Seconds since the deadline was created."""
        return self._clock() - self._started_at

    def expired(self):
        return self.remaining() <= 0.0

    def allows_wait(self, seconds):
        """Return True if waiting ``seconds`` still leaves time before the deadline."""
        return seconds < self.remaining()


def retry_after_seconds(headers):
    """Return the server-requested delay in seconds from response headers, or None.

    ARM uses ``Retry-After`` (integer seconds, or an HTTP date); some services send millisecond
    variants, which are more precise and therefore preferred.
    """
    lowered = {str(name).lower(): value for name, value in (headers or {}).items()}
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = _to_float(lowered.get(name))
        if value is not None and value >= 0:
            return value / 1000.0
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    value = _to_float(raw)
    if value is not None:
        return value if value >= 0 else None
    return _seconds_until_http_date(raw)


def _to_float(value):
    if value is None:
        return None
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _seconds_until_http_date(value):
    try:
        moment = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - time.time())


class RetryRules:
    """Decide whether, and after how long, a failed HTTP exchange is tried again.

    Pure logic (no I/O, no sleeping, no azure imports) so it can be unit-tested directly. Bounded two
    ways: at most ``max_attempts`` attempts in total (``max_throttled_attempts`` for a 429 with
    Retry-After), and never a wait that would end at or after ``deadline``. Thread-safe: clients are
    shared by the fan-out workers.
    """

    def __init__(self, deadline=None, max_attempts=DEFAULT_MAX_ATTEMPTS, backoff_base=DEFAULT_BACKOFF_BASE,
                 backoff_cap=DEFAULT_BACKOFF_CAP, jitter=random.random, max_throttled_attempts=None):
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.deadline = deadline
        self.max_attempts = max_attempts
        self.max_throttled_attempts = max(max_attempts, DEFAULT_MAX_THROTTLED_ATTEMPTS
                                          if max_throttled_attempts is None else max_throttled_attempts)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._jitter = jitter
        self._lock = threading.Lock()
        self._retries = 0
        self._throttled = 0

    def delay_after_response(self, attempts_made, method, status, headers):
        """Seconds to wait before retrying after an HTTP response, or None to hand it to the caller."""
        if status not in RETRYABLE_STATUS_CODES:
            return None
        server_delay = retry_after_seconds(headers)
        delay = server_delay if server_delay is not None else self.backoff(attempts_made)
        limit = self.max_throttled_attempts if status == 429 and server_delay is not None else self.max_attempts
        return self._within_bounds(attempts_made, delay, limit)

    def delay_after_transport_error(self, attempts_made, method, request_was_sent):
        """Seconds to wait before retrying after a connection-level failure, or None to re-raise."""
        if request_was_sent and str(method).upper() not in IDEMPOTENT_METHODS:
            return None
        return self._within_bounds(attempts_made, self.backoff(attempts_made))

    def backoff(self, attempts_made):
        """Exponential backoff with jitter: about base, 2*base, 4*base, ... capped at ``backoff_cap``."""
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** max(0, attempts_made - 1)))
        # "Equal jitter": at least half the ceiling, so retries from parallel workers spread out
        # without ever retrying immediately.
        return ceiling / 2.0 + self._jitter() * ceiling / 2.0

    def record_retry(self, status):
        with self._lock:
            self._retries += 1
            if status == 429:
                self._throttled += 1

    def summary(self):
        """Counters worth reporting to the user (how much throttling the task met)."""
        with self._lock:
            return {"retries": self._retries, "throttled_responses": self._throttled}

    def _within_bounds(self, attempts_made, delay, max_attempts=None):
        if attempts_made >= (self.max_attempts if max_attempts is None else max_attempts):
            return None
        if self.deadline is not None and not self.deadline.allows_wait(delay):
            return None
        return delay


def request_kind(method):
    """Which of ARM's buckets a request of ``method`` draws from."""
    method = str(method).upper()
    return "reads" if method in ("GET", "HEAD") else "deletes" if method == "DELETE" else "writes"


class RateBudget:
    """What this task may still send before ARM throttles it, shared by every worker and client of the task.

    A token bucket per kind of request, mirrored from the server's own count: each response's
    ``x-ms-ratelimit-remaining-subscription-<kind>`` header resets the estimate (less the requests still in
    flight, which the server may not have counted yet), and between responses the estimate refills at the
    documented rate. ``reserve()`` takes a token before a request is sent and says how long to wait first:
    when the bucket is empty, waiting requests are spaced one refill interval apart (the token each waits
    for is reserved, so they queue instead of all waking at once). A kind is not paced until the server has
    reported on it, so a cloud without these headers (or far from its limits) is never slowed down.

    Pure logic with an injectable clock; thread-safe.
    """

    def __init__(self, refill_per_second=None, clock=time.monotonic):
        self._refill = dict(DOCUMENTED_REFILL_PER_SECOND, **(refill_per_second or {}))
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = {}     # kind -> estimated tokens left (negative: reserved by waiting requests)
        self._stamp = {}      # kind -> when the estimate was last brought up to date
        self._capacity = {}   # kind -> largest bucket the server has shown, plus one
        self._in_flight = dict.fromkeys(RATE_LIMIT_KINDS, 0)
        self._waits = 0
        self._waited = 0.0

    def reserve(self, method):
        """Take a token for a request about to be sent; return the seconds to wait before sending it."""
        kind = request_kind(method)
        with self._lock:
            self._in_flight[kind] += 1
            if kind not in self._tokens:
                return 0.0
            now = self._clock()
            tokens = self._level(kind, now)
            self._tokens[kind] = tokens - 1.0
            if tokens >= 1.0:
                return 0.0
            wait = (1.0 - tokens) / self._refill[kind]
            self._waits += 1
            self._waited += wait
            return wait

    def observe(self, method, headers):
        """Account for the response to a request sent after ``reserve(method)``."""
        kind = request_kind(method)
        remaining = _to_float(_header(headers, RATE_LIMIT_HEADER % kind))
        with self._lock:
            self._in_flight[kind] = max(0, self._in_flight[kind] - 1)
            if remaining is None or remaining < 0:
                return
            now = self._clock()
            self._capacity[kind] = max(self._capacity.get(kind, 0.0), remaining + 1.0)
            self._tokens[kind] = remaining - self._in_flight[kind]
            self._stamp[kind] = now

    def abandon(self, method):
        """The request reserved for was never answered (a transport error): it no longer counts as in flight."""
        kind = request_kind(method)
        with self._lock:
            self._in_flight[kind] = max(0, self._in_flight[kind] - 1)

    def summary(self):
        """How much pacing the task needed: requests that waited and the seconds they waited in total."""
        with self._lock:
            return {"paced_requests": self._waits, "paced_seconds": round(self._waited, 3)}

    def _level(self, kind, now):
        tokens = self._tokens[kind] + max(0.0, now - self._stamp[kind]) * self._refill[kind]
        self._stamp[kind] = now
        return min(self._capacity[kind], tokens)


def _header(headers, name):
    for key, value in (headers or {}).items():
        if str(key).lower() == name:
            return value
    return None


class OperationTimer:
    """When to check on a long-running operation, learnt from the operations of the same task.

    The SDK polls an operation at its ``Retry-After`` from the start; over hundreds of members that is
    several reads per member that learn nothing but "in progress", and reads are the budget that runs out
    first (25 a second). Operations of one kind (``restart``, ``deallocate``...) in one task take about as
    long as each other, so once some have finished, the first check of the next one is put off until an
    operation of its kind has usually finished (the median of those seen, so most finish by their first or
    second check); it is then polled as the SDK polls it. Before anything has finished nothing is put off.

    It also keeps the last status each operation reported (``last_status``), so a caller can take an
    operation's outcome from its final poll instead of reading the resource again.

    Pure logic with an injectable clock; thread-safe.
    """

    QUANTILE = 0.5
    MINIMUM_SAMPLES = 3

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._operations = {}   # status URL path -> [kind, started, finished or None, last status body]
        self._durations = {}    # kind -> sorted durations seen

    def started(self, status_url, kind):
        with self._lock:
            self._operations[_url_key(status_url)] = [kind, self._clock(), None, None]

    def delay_before_poll(self, status_url):
        """Seconds to put off a poll of ``status_url`` (0 for anything not a tracked, unfinished operation)."""
        with self._lock:
            entry = self._operations.get(_url_key(status_url))
            if entry is None or entry[2] is not None:
                return 0.0
            durations = self._durations.get(entry[0]) or []
            if len(durations) < self.MINIMUM_SAMPLES:
                return 0.0
            expected = durations[int(len(durations) * self.QUANTILE)]
            return max(0.0, entry[1] + expected - self._clock())

    def polled(self, status_url, body):
        """Record a poll's answer (the operation status body, a dict)."""
        status = str((body or {}).get("status") or "")
        with self._lock:
            entry = self._operations.get(_url_key(status_url))
            if entry is None:
                return
            entry[3] = body
            if status.lower() in ("succeeded", "failed", "canceled") and entry[2] is None:
                entry[2] = self._clock()
                durations = self._durations.setdefault(entry[0], [])
                durations.append(entry[2] - entry[1])
                durations.sort()

    def last_status(self, status_url):
        """The status body the operation's last poll returned, or None."""
        with self._lock:
            entry = self._operations.get(_url_key(status_url))
            return None if entry is None else entry[3]

    def tracks(self, status_url):
        with self._lock:
            return _url_key(status_url) in self._operations


def _url_key(url):
    text = str(url)
    if "://" in text:
        text = text.split("://", 1)[1]
        text = text[text.find("/"):] if "/" in text else "/"
    return text.split("?", 1)[0].lower()


def operation_kind(method, url):
    """What an operation-starting request does, as a name to group timings by (``restart``, ``delete``...)."""
    path = _url_key(url).rstrip("/")
    last = path.rsplit("/", 1)[-1]
    if str(method).upper() == "POST":
        return last
    return "%s %s" % (str(method).upper(), path.rsplit("/", 2)[-2] if path.count("/") >= 2 else last)


_POLICY_CLASS_CACHE = {}


def build_retry_policy(rules, budget=None, timer=None):
    """Return an azure-core pipeline policy that applies ``rules`` (and paces by ``budget``, a ``RateBudget``,
    and times operation polls by ``timer``, an ``OperationTimer``, both shared by all clients of a task) to
    every request of a client.

    Pass it as ``retry_policy=`` to a management client: it replaces the SDK's retry policy.
    """
    policy_class = _POLICY_CLASS_CACHE.get("class")
    if policy_class is None:
        policy_class = _define_retry_policy_class()
        _POLICY_CLASS_CACHE["class"] = policy_class
    return policy_class(rules, budget, timer)


def _define_retry_policy_class():
    # azure-core is imported only when a client is actually built (see the module docstring).
    # pylint: disable=import-outside-toplevel
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError
    from azure.core.pipeline.policies import HTTPPolicy

    class DeadlineBoundRetryPolicy(HTTPPolicy):
        """azure-core policy: resend on throttling/transient failures as ``RetryRules`` decides."""

        def __init__(self, rules, budget=None, timer=None):
            super().__init__()
            self.rules = rules
            self.budget = budget
            self.timer = timer

        def send(self, request):
            method = request.http_request.method
            self._time_poll(request, method)
            attempts_made = 0
            while True:
                attempts_made += 1
                self._pace(request, method)
                self._bound_transport_timeouts(request)
                try:
                    response = self.next.send(request)
                except (ServiceRequestError, ServiceResponseError) as error:
                    self._abandon(method)
                    # A response error means the request went out: only what is safe to repeat is tried again.
                    delay = self.rules.delay_after_transport_error(
                        attempts_made, method, request_was_sent=isinstance(error, ServiceResponseError))
                    if delay is None:
                        raise
                    status = None
                else:
                    http_response = response.http_response
                    status = http_response.status_code
                    if self.budget is not None:
                        self.budget.observe(method, http_response.headers)
                    delay = self.rules.delay_after_response(attempts_made, method, status, http_response.headers)
                    if delay is None:
                        self._follow_operation(request, method, http_response)
                        return response
                self.rules.record_retry(status)
                request.context.transport.sleep(delay)

        def _pace(self, request, method):
            # Wait for this request's token of the shared budget; never past the deadline (a request sent
            # then fails or is refused, and the rules decide about it as about any other).
            if self.budget is None:
                return
            wait = self.budget.reserve(method)
            deadline = self.rules.deadline
            if deadline is not None:
                wait = min(wait, deadline.remaining())
            if wait > 0:
                request.context.transport.sleep(wait)

        def _time_poll(self, request, method):
            if self.timer is None or str(method).upper() != "GET":
                return
            wait = self.timer.delay_before_poll(request.http_request.url)
            deadline = self.rules.deadline
            if deadline is not None:
                wait = min(wait, deadline.remaining())
            if wait > 0:
                request.context.transport.sleep(wait)

        def _follow_operation(self, request, method, http_response):
            # An accepted operation names its status URL; a poll of it carries the operation's status.
            if self.timer is None or http_response.status_code >= 300 and http_response.status_code != 202:
                return
            url = request.http_request.url
            if str(method).upper() == "GET":
                if self.timer.tracks(url):
                    try:
                        body = json.loads(http_response.text() or "null")
                    except ValueError:
                        body = None
                    self.timer.polled(url, body if isinstance(body, dict) else None)
                return
            status_url = http_response.headers.get("Azure-AsyncOperation")
            if status_url:
                self.timer.started(status_url, operation_kind(method, url))

        def _abandon(self, method):
            if self.budget is not None:
                self.budget.abandon(method)

        def _bound_transport_timeouts(self, request):
            # A single slow socket must not outlive the task: cap the transport's connect/read
            # timeouts (azure-core reads them from the request context options) at the time left.
            deadline = self.rules.deadline
            if deadline is None:
                return
            limit = max(MINIMUM_TRANSPORT_TIMEOUT, deadline.remaining())
            options = request.context.options
            for name in ("connection_timeout", "read_timeout"):
                current = options.get(name)
                options[name] = limit if current is None else min(current, limit)

    return DeadlineBoundRetryPolicy


def wait_for_poller(poller, deadline, description):
    """Wait for a long-running operation to finish within ``deadline`` and return its result.

    ``poller.result(timeout)`` alone is not enough: it returns whatever it has when the timeout
    passes, finished or not. So wait, then check ``done()`` and raise ``OperationTimeoutError`` when
    the operation is still running (it keeps running in Azure; only our waiting stops).
    """
    with azure_errors("Failed to %s" % description):
        poller.wait(timeout=deadline.remaining())
        if not poller.done():
            raise OperationTimeoutError(
                "Timed out after %.0f seconds waiting to %s; the operation may still complete in Azure"
                % (deadline.elapsed(), description)
            )
        return poller.result()


def start_operation(begin, description):
    """Call ``begin()`` (a ``begin_*`` SDK call) and return its poller, converting SDK errors."""
    with azure_errors("Failed to %s" % description):
        return begin()


def run_operation(begin, deadline, description, wait=True):
    """Start a long-running operation and, when ``wait``, wait for it within ``deadline``.

    Returns ``(finished, result)``: ``(True, result)`` after waiting, ``(False, None)`` when the
    operation was only started.
    """
    poller = start_operation(begin, description)
    if not wait:
        return False, None
    return True, wait_for_poller(poller, deadline, description)
