"""Azure's request limits: ARM's token buckets and Compute's throttling policies.

Sources (azure-facts.md §3 and §6):

* ARM, since 2024, keeps a regional token bucket per subscription and principal for each kind of
  request: reads 250 then 25 a second, writes 200 then 10 a second, deletes 200 then 10 a second.
  Every response names what is left in ``x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}``;
  a request finding the bucket empty gets 429 ``SubscriptionRequestsThrottled`` with ``Retry-After``
  (seconds until the next token) and is not passed to the resource provider.
* Compute adds per-resource (per VM) and per-subscription token buckets per operation group, refilled
  per minute, reported in ``x-ms-ratelimit-remaining-resource: Microsoft.Compute/<policy>;<count>,...``;
  a request over one gets 429 ``OperationNotAllowed`` with a ``TooManyRequests`` detail naming the
  policy. Azure's own policy names for the 2024 token-bucket policies are not published; the emulator
  names them ``<Group>Resource`` / ``<Group>Subscription`` (the numbers are the documented ones).

With the setting ``rate_limits`` false (the default, for the fast test suites) nothing is refused and
the headers report full buckets (a subscription far from its limits); with it true every bucket is
kept and enforced. Buckets live as long as the state's generation: a reset starts them full.
"""

from __future__ import annotations

import json
import math
import re
import time

from .errors import ArmError

# kind -> (burst, refill per second)
ARM_BUCKETS = {"reads": (250.0, 25.0), "writes": (200.0, 10.0), "deletes": (200.0, 10.0)}

# Compute operation groups: (per-VM refill per minute, burst) and (per-subscription refill per minute, burst).
COMPUTE_POLICIES = {
    "UpdateVM": ((4.0, 12.0), (500.0, 1500.0)),
    "DeleteVM": ((4.0, 12.0), (500.0, 1500.0)),
    "LowCostGetVM": ((12.0, 36.0), (8000.0, 24000.0)),
    "ListVM": (None, (300.0, 900.0)),
    "GetOperation": ((15.0, 45.0), (5000.0, 15000.0)),
    "VMScaleSetBatch": ((4.0, 12.0), (175.0, 525.0)),
}

_VM = r"(?P<resource>/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.compute/virtualmachines/[^/]+)"
_VMSS = r"(?P<resource>/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.compute/virtualmachinescalesets/[^/]+)"
# (method, regex on the lower-cased path, operation group); the first match wins. Group ``None``: no
# Compute policy applies (only ARM's bucket).
_COMPUTE_RULES = [
    ("POST", re.compile("^%s/(deallocate|simulateeviction)$" % _VM), "DeleteVM"),
    ("POST", re.compile("^%s/[a-z]+$" % _VM), "UpdateVM"),
    ("DELETE", re.compile("^%s$" % _VM), "DeleteVM"),
    ("PUT", re.compile("^%s(/extensions/[^/]+)?$" % _VM), "UpdateVM"),
    ("PATCH", re.compile("^%s(/extensions/[^/]+)?$" % _VM), "UpdateVM"),
    ("DELETE", re.compile("^%s/extensions/[^/]+$" % _VM), "UpdateVM"),
    ("GET", re.compile("^%s(/instanceview|/extensions(/[^/]+)?)?$" % _VM), "LowCostGetVM"),
    ("GET", re.compile(r"^/subscriptions/[^/]+(/resourcegroups/[^/]+)?/providers/microsoft\.compute/virtualmachines$"),
     "ListVM"),
    ("GET", re.compile(r"^/subscriptions/[^/]+/providers/microsoft\.compute/locations/[^/]+/operations/[^/]+$"),
     "GetOperation"),
    ("POST", re.compile("^%s/(delete|poweroff|deallocate)$" % _VMSS), "VMScaleSetBatch"),
    ("DELETE", re.compile("^%s$" % _VMSS), "VMScaleSetBatch"),
]


def arm_kind(method):
    return "reads" if method in ("GET", "HEAD") else "deletes" if method == "DELETE" else "writes"


class TokenBucket:
    """``burst`` tokens, refilled at ``per_second``; a request takes one."""

    __slots__ = ("burst", "per_second", "tokens", "stamp")

    def __init__(self, burst, per_second, clock):
        self.burst = float(burst)
        self.per_second = float(per_second)
        self.tokens = float(burst)
        self.stamp = clock

    def _refill(self, clock):
        self.tokens = min(self.burst, self.tokens + max(0.0, clock - self.stamp) * self.per_second)
        self.stamp = clock

    def take(self, clock):
        """True (and one token less) when a token is there; False when the bucket is empty."""
        self._refill(clock)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def remaining(self, clock):
        self._refill(clock)
        return int(self.tokens)

    def seconds_to_token(self, clock):
        self._refill(clock)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.per_second


def compute_group(method, path):
    """``(operation group, VM or scale-set id or None)`` of a Compute request, or ``(None, None)``."""
    lowered = path.lower()
    for rule_method, regex, group in _COMPUTE_RULES:
        if rule_method != method:
            continue
        match = regex.match(lowered)
        if match:
            return group, match.groupdict().get("resource")
    return None, None


class Throttle:
    """Every bucket of one emulated cloud; ``admit`` decides a request and names the headers to send."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._generation = None
        self._arm = {}
        self._compute = {}

    def _reset_if_new(self, generation):
        if generation != self._generation:
            self._generation = generation
            self._arm = {}
            self._compute = {}

    def admit(self, state, method, path, claims, operation_target=None):
        """Headers for the response; raises ArmError 429 (with those headers) when a limit is reached.

        ``claims``: the caller's token claims (the principal is part of ARM's bucket key).
        ``operation_target``: for an operation poll, the id of the VM the operation acts on.
        """
        parts = path.split("/")
        if len(parts) < 3 or parts[1].lower() != "subscriptions" or not parts[2]:
            return {}
        subscription = parts[2].lower()
        enforce = bool(state.settings["rate_limits"])
        self._reset_if_new(state.generation)
        clock = self._clock()
        kind = arm_kind(method)
        header = "x-ms-ratelimit-remaining-subscription-%s" % kind
        if not enforce:
            headers = {header: str(int(ARM_BUCKETS[kind][0]) - 1)}
            group, _resource = compute_group(method, path)
            if group is not None:
                headers["x-ms-ratelimit-remaining-resource"] = ",".join(
                    "Microsoft.Compute/%s%s;%d" % (group, scope, int(limits[1]) - 1)
                    for scope, limits in zip(("Resource", "Subscription"), COMPUTE_POLICIES[group]) if limits)
                headers["x-ms-request-charge"] = "1"
            return headers
        principal = str((claims or {}).get("oid") or (claims or {}).get("appid") or "anonymous").lower()
        burst, per_second = ARM_BUCKETS[kind]
        bucket = self._arm.get((subscription, principal, kind))
        if bucket is None:
            bucket = self._arm[(subscription, principal, kind)] = TokenBucket(burst, per_second, clock)
        if not bucket.take(clock):
            wait = bucket.seconds_to_token(clock)
            raise ArmError(
                429, "SubscriptionRequestsThrottled",
                "Number of '%s' requests for subscription '%s' actor '%s' exceeded. Please try again after '%d' "
                "seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling for "
                "additional information." % (kind[:-1], parts[2], principal, _whole_seconds(wait)),
                headers={header: "0", "Retry-After": str(_whole_seconds(wait))})
        headers = {header: str(bucket.remaining(clock))}
        compute_headers = self._admit_compute(subscription, method, path, operation_target, clock)
        headers.update(compute_headers)
        return headers

    def _admit_compute(self, subscription, method, path, operation_target, clock):
        group, resource = compute_group(method, path)
        if group is None:
            return {}
        if group == "GetOperation":
            resource = operation_target.lower() if operation_target else None
        per_resource, per_subscription = COMPUTE_POLICIES[group]
        scopes = []
        if per_resource is not None and resource is not None:
            scopes.append(("%sResource" % group, ("r", resource.lower(), group), per_resource))
        scopes.append(("%sSubscription" % group, ("s", subscription, group), per_subscription))
        buckets = []
        for name, key, (per_minute, burst) in scopes:
            bucket = self._compute.get(key)
            if bucket is None:
                bucket = self._compute[key] = TokenBucket(burst, per_minute / 60.0, clock)
            buckets.append((name, bucket, per_minute, burst))
        # A request over any policy is refused whole: no bucket gives a token for it.
        for name, bucket, _per_minute, burst in buckets:
            if bucket.remaining(clock) < 1:
                wait = _whole_seconds(bucket.seconds_to_token(clock))
                report = ",".join("Microsoft.Compute/%s;%d" % (n, b.remaining(clock)) for n, b, _m, _b in buckets)
                detail = json.dumps({"operationGroup": name, "startTime": _iso(time.time() - 60),
                                     "endTime": _iso(time.time()), "allowedRequestCount": int(burst),
                                     "measuredRequestCount": int(burst) + 1})
                raise ArmError(
                    429, "OperationNotAllowed",
                    "The server rejected the request because too many requests have been received for this %s."
                    % ("subscription" if name.endswith("Subscription") else "resource"),
                    details=[{"code": "TooManyRequests", "target": name, "message": detail}],
                    headers={"x-ms-ratelimit-remaining-resource": report, "Retry-After": str(wait)})
        for _name, bucket, _per_minute, _burst in buckets:
            bucket.take(clock)
        return {"x-ms-ratelimit-remaining-resource": ",".join(
                    "Microsoft.Compute/%s;%d" % (name, bucket.remaining(clock)) for name, bucket, _m, _b in buckets),
                "x-ms-request-charge": "1"}


def _whole_seconds(seconds):
    return max(1, int(math.ceil(seconds)))


def _iso(timestamp):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + "+00:00"
