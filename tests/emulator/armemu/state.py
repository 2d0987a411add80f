"""In-memory state of the emulated cloud.

One ``State`` holds everything a scenario describes (tenants, subscriptions,
resources, locks) plus what the control API exposes (settings, faults, the
request log, the VM event log) and the long-running operations in flight.

The server runs on one asyncio event loop and no handler awaits in the middle
of a mutation, so the state needs no locks: each request's changes are atomic
with respect to every other request.
"""

from __future__ import annotations

import copy
import random
import re
import time
import uuid

from .errors import ArmError, group_not_found, not_found, subscription_not_found
from . import graph_rows

DEFAULT_SETTINGS = {
    # Multiplies every duration below; tests use a small value, demos 1.0.
    "time_scale": 1.0,
    # Seconds each long-running operation takes before time_scale.
    "durations": {
        "start": 3.0,
        "power_off": 2.0,
        "deallocate": 3.0,
        "restart": 3.0,
        "redeploy": 5.0,
        "reimage": 5.0,
        "perform_maintenance": 5.0,
        "delete": 3.0,
        "create": 3.0,
        "update": 1.0,
        "extension": 2.0,
        "network": 1.0,
        "eviction": 2.0,
        # Bringing a member to the scale set's latest model (manual, automatic or rolling upgrade):
        # a reimage-like transition, the member is down meanwhile.
        "upgrade": 5.0,
        # How long the Application Health extension reports "initializing"
        # after the VM boots, before it reports the application's state.
        "health_initializing": 2.0,
    },
    # Retry-After (seconds) sent on LRO responses and status polls.
    "retry_after": 1,
    # Resource Graph shows the state as it was this many seconds ago.
    "graph_lag": 0.0,
    # A ReadOnly lock blocks POST actions (start, restart, ...) as documented.
    "readonly_blocks_post": True,
    # Flex sets accept the scale-set level power actions with VM names as
    # instance ids (the sources conflict; see azure-facts.md §8).
    "flex_batch_actions": True,
    # Reject api-versions the real service does not publish.
    "strict_api_versions": True,
    # Page size of list operations that page with nextLink.
    "page_size": 100,
    # Lifetime of issued access tokens (seconds).
    "token_lifetime": 3600,
    # When true, listing locks at a scope also returns the locks inherited
    # from the scopes above it (as `az lock list --resource` shows them).
    "lock_list_includes_inherited": True,
    # Resource Graph per-user quota: queries per 5 second window (0 = off).
    "graph_quota": 0,
    # Deleting a V1 NAT rule still bound to a NIC: False removes the binding
    # (uncertain what Azure does), True refuses with 400 InboundNatRuleInUse.
    "refuse_delete_of_bound_nat_rule": False,
    # A member removed from a V2 NAT rule's pool keeps its port reserved.
    "nat_v2_keep_removed_mappings": False,
    # The V2 port-mapping query answers 202 + Location (True) or 200 with the result.
    "port_mapping_query_async": True,
    # In which order a V2 NAT rule hands out the ports of its range to the pool's members when it is created or
    # its range changes (Azure documents only "by backend order" [?]): "pool", the order the pool lists its
    # members (backendIPConfigurations), or "name", by ip configuration id.
    "nat_v2_port_order": "pool",
    # The VMSS-VM list of a Flexible set reports each member's properties.latestModelApplied (the spec's
    # 2025-04-01 Flex example shows no properties at all [?]). False: the field is absent.
    "flex_vm_list_latest_model": True,
    # Instance protection (protectionPolicy) through the VMSS-VM API with a VM name on a Flexible set: True,
    # accepted from api-version 2023-09-01 as the instance-protection page says, and enforced (scale-in and
    # scale-set actions skip protected members); False, refused as observed with 400 InvalidParameter
    # "instanceId must be a number" [?].
    "flex_native_protection": False,
    # Tags API Delete: an entry with a non-empty value removes the tag only when the value matches
    # (the REST reference says "based on given names or name/value pairs"; which one applies is uncertain).
    "tags_delete_requires_value": True,
    # Tags API PATCH answers 202 + Location (True) or 200 with the tags (both are in the SDKs' accepted list).
    "tags_update_async": False,
    # Azure's request limits (throttle.py): ARM's token buckets per subscription and principal and
    # Compute's per-VM and per-subscription policies, each refusal a 429 with Retry-After. Off, the
    # headers report full buckets and nothing is refused (the fast suites); on in the scale scenarios.
    "rate_limits": False,
    # ARM (and the token endpoint) also accept the audience https://management.core.windows.net/, as
    # public ARM does (the Azure CLI asks for it); off, only the cloud's own audience is accepted, as on
    # Azure Stack Hub.
    "accept_management_core_audience": False,
    # Flexible members in the scale set's virtualMachines list carry properties.provisioningState. The
    # spec example (VirtualMachineScaleSetVM_List_WithVirtualMachineResourceId.json) shows none, and
    # azure.azcollection (PR #1529) tells Flex members apart by its absence: off by default.
    "flex_vmss_vm_list_provisioning_state": False,
}

# Settings whose value is one of a few words.
SETTING_CHOICES = {"nat_v2_port_order": ("pool", "name")}

SUBSCRIPTION_ID_RE = re.compile(r"^[0-9a-fA-F-]{36}$")


def now():
    return time.time()


def iso(ts=None):
    ts = now() if ts is None else ts
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".%06d+00:00" % int((ts % 1) * 1e6)


def merge_settings(base, update):
    merged = copy.deepcopy(base)
    for key, value in (update or {}).items():
        if key not in DEFAULT_SETTINGS:
            raise ValueError("unknown setting %r" % key)
        default = DEFAULT_SETTINGS[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ValueError("setting %s must be a mapping" % key)
            for sub_key, sub_value in value.items():
                if sub_key not in default:
                    raise ValueError("unknown setting %s.%s" % (key, sub_key))
                merged[key][sub_key] = _number(key + "." + sub_key, sub_value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError("setting %s must be true or false" % key)
            merged[key] = value
        elif isinstance(default, str):
            if value not in SETTING_CHOICES[key]:
                raise ValueError("setting %s must be one of %s" % (key, ", ".join(SETTING_CHOICES[key])))
            merged[key] = value
        else:
            # A wrongly typed value would only fail later, inside an operation.
            merged[key] = _number(key, value)
            if key == "page_size" and (value < 1 or value != int(value)):
                raise ValueError("setting page_size must be a positive integer")
    return merged


def _number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError("setting %s must be a non-negative number" % name)
    return value


class Resource:
    """One ARM resource: its wire body plus the emulator's private state."""

    __slots__ = ("id", "type", "body", "emu")

    def __init__(self, resource_id, resource_type, body, emu=None):
        self.id = resource_id
        self.type = resource_type
        self.body = body
        self.emu = emu if emu is not None else {}

    @property
    def key(self):
        return self.id.lower()

    @property
    def name(self):
        return self.body["name"]

    @property
    def props(self):
        return self.body.setdefault("properties", {})

    @property
    def subscription_id(self):
        return self.id.split("/")[2]

    @property
    def resource_group(self):
        parts = self.id.split("/")
        return parts[4] if len(parts) > 4 and parts[3].lower() == "resourcegroups" else None


class Operation:
    """A long-running operation, polled through Azure-AsyncOperation / Location."""

    def __init__(self, provider, location, subscription_id, kind, target=None):
        self.id = str(uuid.uuid4())
        self.provider = provider
        self.location = location
        self.subscription_id = subscription_id
        self.kind = kind
        self.target = target
        self.status = "InProgress"
        self.start_time = now()
        self.end_time = None
        self.error = None
        self.error_status = None
        self.result = None  # body returned by the Location URL when done
        self.task = None
        self.on_cancel = None  # undoes transitional state when preempted

    @property
    def done(self):
        return self.status != "InProgress"

    def finish(self, status="Succeeded", error=None, error_status=500):
        if self.done:
            return False
        self.status = status
        self.end_time = now()
        self.error = error
        self.error_status = error_status if error else None
        return True

    def status_body(self):
        body = {"startTime": iso(self.start_time), "status": self.status, "name": self.id}
        if self.end_time is not None:
            body["endTime"] = iso(self.end_time)
        if self.error:
            body["error"] = self.error
        return body


class FaultRule:
    """A rule of POST /_emulator/faults: answer matching requests with an error."""

    FIELDS = {"method", "path", "status", "code", "message", "retry_after", "count", "probability", "lro", "stuck",
              "delay"}

    def __init__(self, spec):
        unknown = set(spec) - self.FIELDS
        if unknown:
            raise ValueError("unknown fault fields: %s" % ", ".join(sorted(unknown)))
        self.spec = dict(spec)
        self.id = str(uuid.uuid4())
        self.method = spec.get("method", "").upper() or None
        try:
            self.path = re.compile(spec["path"], re.IGNORECASE) if spec.get("path") else None
        except re.error as exc:
            raise ValueError("path is not a valid regular expression: %s" % exc)
        self.status = spec.get("status")
        self.lro = spec.get("lro")
        self.stuck = bool(spec.get("stuck"))
        # Seconds the answer is held after the request was handled (a slow network path, not an error).
        self.delay = spec.get("delay")
        if self.delay is not None and (isinstance(self.delay, bool) or not isinstance(self.delay, (int, float))
                                       or not 0 < self.delay <= 120):
            raise ValueError("delay must be a number of seconds between 0 and 120")
        if self.lro not in (None, "Failed", "Canceled"):
            raise ValueError("lro must be 'Failed' or 'Canceled'")
        if sum(bool(x) for x in (self.status, self.lro, self.stuck, self.delay)) != 1:
            raise ValueError("a fault needs exactly one of status, lro, stuck or delay")
        if self.status is not None and not (400 <= int(self.status) <= 599):
            raise ValueError("status must be an HTTP error status (400-599)")
        self.code = spec.get("code") or _default_fault_code(self.status, self.lro)
        self.message = spec.get("message") or "Injected fault."
        self.retry_after = spec.get("retry_after")
        self.remaining = spec.get("count")
        self.probability = spec.get("probability")
        if self.remaining is None and self.probability is None:
            self.remaining = 1
        self.hits = 0

    @property
    def active(self):
        return self.remaining is None or self.remaining > 0

    def matches(self, method, path, starts_operation, arm=True):
        if not self.active:
            return False
        # The identity and metadata endpoints are faulted only by a rule that names their path,
        # so a catch-all rule meant for ARM is not consumed by a token request.
        if not arm and self.path is None:
            return False
        if self.method and self.method != method:
            return False
        if self.path and not self.path.search(path):
            return False
        # LRO outcomes only make sense on requests that start an operation.
        if (self.lro or self.stuck) and not starts_operation:
            return False
        if self.probability is not None and random.random() >= float(self.probability):
            return False
        return True

    def consume(self):
        self.hits += 1
        if self.remaining is not None:
            self.remaining -= 1

    def describe(self):
        out = dict(self.spec)
        out.update(id=self.id, hits=self.hits, remaining=self.remaining)
        return out


def _default_fault_code(status, lro):
    if lro == "Canceled":
        return "OperationPreempted"
    if lro == "Failed":
        return "InternalExecutionError"
    return {429: "SubscriptionRequestsThrottled", 500: "InternalServerError", 502: "BadGateway",
            503: "ServiceUnavailable", 504: "GatewayTimeout", 409: "Conflict", 404: "NotFound"}.get(status, "BadRequest")


class GraphIndex:
    """What Resource Graph can see: per resource a short history of its row.

    Resource Graph is an eventually consistent cache; with ``graph_lag`` > 0 a
    query sees each resource as it was ``graph_lag`` seconds ago (a resource
    created more recently is not there yet, a deleted one is still there).
    """

    def __init__(self):
        self.history = {}  # resource key -> [(time, row or None)]

    def record(self, key, row):
        entries = self.history.setdefault(key, [])
        entries.append((now(), row))

    def rows(self, lag):
        cutoff = now() - max(0.0, float(lag))
        out = []
        for key in list(self.history):
            entries = self.history[key]
            visible = None
            keep_from = 0
            for idx, (ts, row) in enumerate(entries):
                if ts <= cutoff:
                    visible = row
                    keep_from = idx
                else:
                    break
            if keep_from:
                del entries[:keep_from]
            if len(entries) == 1 and entries[0][1] is None and entries[0][0] <= cutoff:
                del self.history[key]
            if visible is not None:
                out.append(visible)
        return out


class State:
    def __init__(self):
        self.settings = copy.deepcopy(DEFAULT_SETTINGS)
        self.tenant_id = None
        self.subscriptions = {}  # lower id -> {"subscriptionId", "displayName", "tenantId", "state"}
        self.clients = {}  # client_id -> {"secret", "federated"}
        self.resources = {}  # lower id -> Resource
        self.locks = {}  # lower lock id -> lock body (with "scope")
        self.operations = {}
        self.faults = []
        self.requests = []
        self.events = []
        self.graph = GraphIndex()
        self.scenario = None
        self.startup_scenario = {}
        # The token audience of this cloud's resource manager (its metadata names it).
        self.audience = "https://management.emulator.invalid/"
        # The cloud's name in its metadata (a scenario serving as public Azure names itself AzureCloud).
        self.cloud_name = "AzureFlexEmulator"
        self.generation = 0
        self._last_vm_status = {}
        # lower type -> {key: resource}; rebuilt when a reset (a new generation) replaced the resources.
        self._by_type = {}
        # parent key -> {key: resource} for every resource with a parent resource (extensions, ...).
        self._by_parent = {}
        self._by_type_generation = None

    # -- settings and time --------------------------------------------------

    def duration(self, name):
        return float(self.settings["durations"][name]) * float(self.settings["time_scale"])

    # -- subscriptions and resource groups ------------------------------------

    def require_subscription(self, subscription_id):
        sub = self.subscriptions.get(subscription_id.lower())
        if sub is None:
            raise subscription_not_found(subscription_id)
        return sub

    def group_id(self, subscription_id, resource_group):
        return "/subscriptions/%s/resourceGroups/%s" % (subscription_id, resource_group)

    def require_group(self, subscription_id, resource_group):
        self.require_subscription(subscription_id)
        group = self.resources.get(self.group_id(subscription_id, resource_group).lower())
        if group is None:
            raise group_not_found(resource_group)
        return group

    # -- resources ------------------------------------------------------------

    def get(self, resource_id):
        return self.resources.get(resource_id.lower())

    def require(self, resource_id, resource_type=None):
        """The resource, or ARM's 404 (naming the group when the group is missing)."""
        parts = resource_id.split("/")
        subscription_id, resource_group = parts[2], parts[4] if len(parts) > 4 else None
        if resource_group is not None:
            self.require_group(subscription_id, resource_group)
        else:
            self.require_subscription(subscription_id)
        res = self.get(resource_id)
        if res is None or (resource_type and res.type.lower() != resource_type.lower()):
            raise not_found(resource_id, resource_group)
        return res

    def _type_index(self):
        if self._by_type_generation != self.generation:
            self._by_type = {}
            self._by_parent = {}
            for res in self.resources.values():
                self._index(res)
            self._by_type_generation = self.generation
        return self._by_type

    def _index(self, res):
        self._by_type.setdefault(res.type.lower(), {})[res.key] = res
        self._by_parent.setdefault(res.key.rsplit("/", 2)[0], {})[res.key] = res

    def add(self, resource):
        if resource.key in self.resources:
            raise ArmError(409, "Conflict", "Resource '%s' already exists." % resource.id)
        self._type_index()
        self.resources[resource.key] = resource
        self._index(resource)
        self.save(resource)
        return resource

    def save(self, resource):
        """Record a change: Resource Graph history and the VM event log."""
        if resource.key not in self.resources:
            return
        self.graph.record(resource.key, graph_rows.build_row(resource, self.tenant_id))
        if resource.type == "Microsoft.Compute/virtualMachines":
            self._record_vm_event(resource)

    def remove(self, resource):
        if self.resources.pop(resource.key, None) is None:
            return
        self._type_index().get(resource.type.lower(), {}).pop(resource.key, None)
        self._by_parent.get(resource.key.rsplit("/", 2)[0], {}).pop(resource.key, None)
        self.graph.record(resource.key, None)
        if resource.type == "Microsoft.Compute/virtualMachines":
            self._record_vm_event(resource, deleted=True)
        for key in [k for k in self.locks if self.locks[k]["scope"].lower() == resource.key]:
            del self.locks[key]

    def children(self, parent_id, child_type=None):
        """Everything below ``parent_id``; with ``child_type``, its children of that type (a child
        resource type is always one level below its parent, so only direct children are looked at)."""
        prefix = parent_id.lower() + "/"
        if child_type is None:
            return [res for key, res in self.resources.items() if key.startswith(prefix)]
        self._type_index()
        child_type = child_type.lower()
        return [res for res in self._by_parent.get(parent_id.lower(), {}).values() if res.type.lower() == child_type]

    def of_type(self, resource_type, subscription_id=None, resource_group=None, sort=True):
        out = []
        for res in self._type_index().get(resource_type.lower(), {}).values():
            if subscription_id and res.subscription_id.lower() != subscription_id.lower():
                continue
            if resource_group and (res.resource_group or "").lower() != resource_group.lower():
                continue
            out.append(res)
        if sort:
            out.sort(key=lambda r: r.key)
        return out

    # -- events ---------------------------------------------------------------

    def _record_vm_event(self, vm, deleted=False):
        emu = vm.emu
        status = (
            ("deleted", "Deleted", None)
            if deleted
            else (emu.get("power"), vm.props.get("provisioningState"), emu.get("health_visible"))
        )
        if self._last_vm_status.get(vm.key) == status:
            return
        self._last_vm_status[vm.key] = status
        if deleted:
            self._last_vm_status.pop(vm.key, None)
        self.events.append({
            "time": now(),
            "vm": vm.name,
            "id": vm.id,
            "power_state": status[0],
            "provisioning_state": status[1],
            "health": status[2],
        })

    # -- requests -------------------------------------------------------------

    def log_request(self, method, path, query, status, started):
        entry = {"method": method, "path": path, "status": status, "time": started,
                 "duration_ms": round((now() - started) * 1000.0, 3)}
        if query:
            entry["query"] = query
        self.requests.append(entry)
        if len(self.requests) > 500000:
            del self.requests[:100000]

    # -- faults ---------------------------------------------------------------

    def match_fault(self, method, path, starts_operation, arm=True):
        """The first rule matching the request. A status rule is used up here; an ``lro`` or
        ``stuck`` rule only when an operation really starts (``lro.start``), so a request
        refused before that (409, 400, a lock) does not use it up."""
        for rule in self.faults:
            if rule.matches(method, path, starts_operation, arm):
                if rule.status:
                    rule.consume()
                return rule
        return None


def check_subscription_id(value):
    if not SUBSCRIPTION_ID_RE.match(value or ""):
        raise ValueError("subscription id %r is not a GUID" % value)
    return value
