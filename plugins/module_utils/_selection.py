# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""Which scale set, and which of its member VMs, a task is about.

Every module selects members the same way: a Flexible scale set (by resource group and name, or by
id), optionally a list of VM names, then filters on power state, zone, fault domain and tags.

Members of a Flexible scale set are ordinary ``Microsoft.Compute/virtualMachines`` resources whose
``properties.virtualMachineScaleSet.id`` names the set. They are listed either

* from Azure Resource Graph (the default): one query per 1,000 members, power state included, but
  the data can lag by up to about a minute and has no application health; or
* from the compute API: a filtered VM list plus one instance view per VM (run in parallel), which is
  authoritative and includes application health (``vmHealth``).

Names requested explicitly but missing from the listing are double-checked with a compute GET, so a
VM created seconds ago (not yet in Resource Graph) is still found, and the error can say whether a
name does not exist or exists outside the scale set. When the Resource Graph listing and the scale
set's own count (``sku.capacity``) disagree, the listing is checked against the compute API's list
(authoritative): members Resource Graph does not show yet are added, members it still shows after
their deletion are dropped, and the task warns with both counts. ``instances: all`` never silently
means fewer members than exist.

Named members that a filter leaves out are recorded (``ScaleSetSelector.filtered_out``) with the
reason, so every module reports them instead of dropping them silently; a filter that selects none of
the members is recorded as a warning (``ScaleSetSelector.warnings``).

Anything that goes into a KQL query or an OData filter is validated against Azure's naming rules
first and then quoted as a string literal.
"""

from __future__ import annotations

import re

from ansible_collections.azure_flex.vmss.plugins.module_utils._auth import is_guid
from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import as_rest_dict
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    AzureFlexError,
    InvalidInputError,
    MissingDependencyError,
    azure_errors,
    is_not_found,
    arm_error_code,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._fanout import DEFAULT_MAX_PARALLEL, run_bounded


MEMBER_SOURCES = ("resource_graph", "compute")
POWER_STATES = ("running", "stopped", "deallocated", "starting", "stopping", "deallocating", "unknown")
HEALTH_STATES = ("healthy", "unhealthy", "unknown", "initializing")
ALL_INSTANCES = "all"
# The power state of a member deleted since it was listed.
ABSENT = "absent"

CODE_UNIFORM_SCALE_SET = "AzureFlexUniformScaleSet"
CODE_NOT_A_MEMBER = "AzureFlexNotAScaleSetMember"
CODE_GRAPH_TRUNCATED = "AzureFlexResourceGraphTruncated"

UNIFORM_ALTERNATIVE = "azure.azcollection.azure_rm_virtualmachinescalesetinstance"

RESOURCE_GRAPH_PAGE_SIZE = 1000
# A Flexible scale set holds at most 1,000 VMs; the cap only stops a service that keeps returning
# continuation tokens from looping forever.
RESOURCE_GRAPH_MAX_PAGES = 100

SELECTION_MUTUALLY_EXCLUSIVE = [("scale_set_id", "scale_set"), ("scale_set_id", "resource_group")]
SELECTION_REQUIRED_ONE_OF = [("scale_set", "scale_set_id")]
SELECTION_REQUIRED_TOGETHER = [("resource_group", "scale_set")]


def selection_argument_spec(instances_required=False):
    """Argument spec of the selection options (documented by the ``selection`` doc fragment)."""
    return dict(
        resource_group=dict(type="str"),
        scale_set=dict(type="str"),
        scale_set_id=dict(type="str"),
        instances=dict(type="list", elements="str", required=instances_required),
        power_states=dict(type="list", elements="str", choices=list(POWER_STATES)),
        zones=dict(type="list", elements="str"),
        fault_domains=dict(type="list", elements="int"),
        tags=dict(type="dict"),
        member_source=dict(type="str", default="resource_graph", choices=list(MEMBER_SOURCES)),
    )


# --------------------------------------------------------------------------------------------
# Names, ids and quoting
# --------------------------------------------------------------------------------------------

# VM and scale set names: 1-64 letters, digits, "_", "." or "-", not starting or ending with "." or
# "-". (Windows computer names are stricter, but the resource name is what is addressed here, and
# VMs created by a Flexible scale set are named "<set>_<8 hex digits>".)
_VM_NAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9_])?\Z")
# Resource groups: 1-90 Unicode letters or digits, "_", "-", ".", "(" or ")", not ending with ".".
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{0,89}[-\w()]\Z")
_SCALE_SET_ID = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<resource_group>[^/]+)"
    r"/providers/Microsoft\.Compute/virtualMachineScaleSets/(?P<name>[^/]+)/?\Z",
    re.IGNORECASE,
)
_RESOURCE_GROUP_IN_ID = re.compile(r"/resourceGroups/([^/]+)/", re.IGNORECASE)


def validate_vm_name(name, what="VM name"):
    """Return ``name`` if it is a valid VM (or scale set) resource name, else raise ``InvalidInputError``."""
    if not isinstance(name, str) or not _VM_NAME.match(name):
        raise InvalidInputError(
            "%s %r is not valid: use 1-64 letters, digits, '_', '.' or '-', not starting or ending with '.' or '-'"
            % (what, name))
    return name


def validate_resource_group_name(name):
    """Return ``name`` if it is a valid resource group name, else raise ``InvalidInputError``."""
    if not isinstance(name, str) or not _RESOURCE_GROUP.match(name):
        raise InvalidInputError(
            "Resource group name %r is not valid: use 1-90 letters, digits, '_', '-', '.', '(' or ')',"
            " not ending with '.'" % (name,))
    return name


def kql_quote(value):
    """Return ``value`` as a KQL single-quoted string literal.

    Backslash and quote are escaped, common whitespace escapes are spelled out, and any other
    control character is refused: none can occur in a valid Azure name or id, so one in the input
    means something is wrong.
    """
    if not isinstance(value, str):
        raise InvalidInputError("Only strings can be quoted for a Resource Graph query, got %r" % type(value).__name__)
    escaped = []
    for char in value:
        if char == "\\":
            escaped.append("\\\\")
        elif char == "'":
            escaped.append("\\'")
        elif char == "\n":
            escaped.append("\\n")
        elif char == "\r":
            escaped.append("\\r")
        elif char == "\t":
            escaped.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            raise InvalidInputError("Control character U+%04X cannot be used in a Resource Graph query" % ord(char))
        else:
            escaped.append(char)
    return "'%s'" % "".join(escaped)


def odata_quote(value):
    """Return ``value`` as an OData string literal (single quotes, embedded quotes doubled)."""
    return "'%s'" % str(value).replace("'", "''")


class ScaleSetRef:
    """A scale set address: subscription, resource group and name, all validated."""

    def __init__(self, subscription_id, resource_group, name):
        if not is_guid(subscription_id):
            raise InvalidInputError("The subscription in a scale set id must be a GUID, got %r" % (subscription_id,))
        self.subscription_id = subscription_id
        self.resource_group = validate_resource_group_name(resource_group)
        self.name = validate_vm_name(name, what="Scale set name")

    @property
    def id(self):
        return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachineScaleSets/%s" % (
            self.subscription_id, self.resource_group, self.name)

    @classmethod
    def parse(cls, scale_set_id):
        """Parse and validate a scale set resource id."""
        match = _SCALE_SET_ID.match(scale_set_id or "")
        if not match:
            raise InvalidInputError(
                "scale_set_id %r is not a scale set resource id (/subscriptions/<id>/resourceGroups/<group>"
                "/providers/Microsoft.Compute/virtualMachineScaleSets/<name>)" % (scale_set_id,))
        return cls(match.group("subscription"), match.group("resource_group"), match.group("name"))

    def __repr__(self):
        return "ScaleSetRef(%r)" % self.id


def resource_group_from_id(resource_id):
    """Return the resource group named in an ARM resource id, or None."""
    match = _RESOURCE_GROUP_IN_ID.search(resource_id or "")
    return match.group(1) if match else None


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------

_POWER_WORDS = frozenset(POWER_STATES) - {"unknown"}
_HEALTH_WORDS = frozenset(HEALTH_STATES)


def normalize_power_state(code):
    """Turn ``PowerState/running`` (or ``VM running``, or ``running``) into ``running``.

    Anything unrecognised, or nothing at all, is ``unknown``.
    """
    word = str(code or "").strip().lower()
    for prefix in ("powerstate/", "vm "):
        if word.startswith(prefix):
            word = word[len(prefix):]
    return word if word in _POWER_WORDS else "unknown"


def power_state_from_statuses(statuses):
    """Return the normalised power state found in an instance view's ``statuses`` list."""
    for status in statuses or []:
        code = str((status or {}).get("code") or "")
        if code.lower().startswith("powerstate/"):
            return normalize_power_state(code)
    return "unknown"


def normalize_health(code):
    """Turn ``HealthState/healthy`` into ``healthy``; None when no health is reported at all.

    None (no Application Health extension, or a source without health data) is kept distinct from
    ``unknown``, which is a state the extension itself reports.
    """
    if not code:
        return None
    word = str(code).strip().lower()
    if word.startswith("healthstate/"):
        word = word[len("healthstate/"):]
    return word if word in _HEALTH_WORDS else "unknown"


def enum_text(value):
    """A field as text, or None when empty; enum members of the newer SDK models print as ``Class.MEMBER``,
    so their value is used."""
    value = getattr(value, "value", value)
    return None if value in (None, "") else str(value)


def _fault_domain(value):
    try:
        return None if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return None


def _nic_ids(network_interfaces):
    return [nic["id"] for nic in network_interfaces or [] if isinstance(nic, dict) and nic.get("id")]


def member_from_graph_row(row):
    """Build a member dict from a row of ``member_query()``."""
    return {
        "name": row.get("name"),
        "id": row.get("id"),
        # The id keeps the group's real casing; the resourceGroup column is often lower-cased.
        "resource_group": resource_group_from_id(row.get("id")) or row.get("resourceGroup"),
        "location": row.get("location"),
        "zones": [str(zone) for zone in row.get("zones") or []],
        "fault_domain": _fault_domain(row.get("platformFaultDomain")),
        "power_state": normalize_power_state(row.get("powerState")),
        "health": None,
        "provisioning_state": enum_text(row.get("provisioningState")),
        "vm_size": enum_text(row.get("vmSize")),
        "priority": enum_text(row.get("priority")),
        "ephemeral_os_disk": bool(row.get("diffDiskSettings")),
        "tags": dict(row.get("tags") or {}),
        "network_interface_ids": _nic_ids(row.get("networkInterfaces")),
        "maintenance_pending": None,  # Resource Graph does not carry it
        "source": "resource_graph",
    }


def member_from_vm(vm, instance_view=None):
    """Build a member dict from a VM and its instance view, both in REST layout (see ``as_rest_dict``).

    Without ``instance_view``, the VM's own ``properties.instanceView`` (``$expand=instanceView``) is used.
    """
    properties = vm.get("properties") or {}
    view = instance_view if instance_view is not None else properties.get("instanceView") or {}
    vm_health = ((view.get("vmHealth") or {}).get("status") or {}).get("code")
    fault_domain = properties.get("platformFaultDomain")
    if fault_domain is None:
        fault_domain = view.get("platformFaultDomain")
    os_disk = (properties.get("storageProfile") or {}).get("osDisk") or {}
    return {
        "name": vm.get("name"),
        "id": vm.get("id"),
        "resource_group": resource_group_from_id(vm.get("id")),
        "location": vm.get("location"),
        "zones": [str(zone) for zone in vm.get("zones") or []],
        "fault_domain": _fault_domain(fault_domain),
        "power_state": power_state_from_statuses(view.get("statuses")),
        "health": normalize_health(vm_health),
        "provisioning_state": enum_text(properties.get("provisioningState")),
        "vm_size": enum_text((properties.get("hardwareProfile") or {}).get("vmSize")),
        "priority": enum_text(properties.get("priority")),
        "ephemeral_os_disk": bool(os_disk.get("diffDiskSettings")),
        "tags": dict(vm.get("tags") or {}),
        "network_interface_ids": _nic_ids((properties.get("networkProfile") or {}).get("networkInterfaces")),
        # Platform maintenance the customer may start now (perform maintenance is refused otherwise).
        "maintenance_pending": bool((view.get("maintenanceRedeployStatus") or {}).get(
            "isCustomerInitiatedMaintenanceAllowed")),
        "source": "compute",
    }


def scale_set_from_rest(scale_set):
    """Build the scale set summary dict from the REST layout of a scale set."""
    properties = scale_set.get("properties") or {}
    sku = scale_set.get("sku") or None
    return {
        "id": scale_set.get("id"),
        "name": scale_set.get("name"),
        "resource_group": resource_group_from_id(scale_set.get("id")),
        "location": scale_set.get("location"),
        "orchestration_mode": enum_text(properties.get("orchestrationMode")),
        "platform_fault_domain_count": properties.get("platformFaultDomainCount"),
        "zones": [str(zone) for zone in scale_set.get("zones") or []],
        "provisioning_state": enum_text(properties.get("provisioningState")),
        "upgrade_mode": enum_text((properties.get("upgradePolicy") or {}).get("mode")),
        "sku": {"name": sku.get("name"), "capacity": sku.get("capacity")} if sku else None,
        "automatic_repairs": automatic_repairs_from_rest(properties.get("automaticRepairsPolicy")),
    }


def automatic_repairs_from_rest(policy):
    """The scale set's ``automaticRepairsPolicy`` (None when not set): enabled, grace period, repair action."""
    if not policy:
        return None
    return {"enabled": bool(policy.get("enabled")), "grace_period": policy.get("gracePeriod"),
            "repair_action": enum_text(policy.get("repairAction"))}


# --------------------------------------------------------------------------------------------
# Criteria and filters
# --------------------------------------------------------------------------------------------

class SelectionCriteria:
    """The validated selection options of a task."""

    def __init__(self, resource_group=None, scale_set=None, scale_set_id=None, instances=None, power_states=None,
                 zones=None, fault_domains=None, tags=None, member_source="resource_graph"):
        self.resource_group = resource_group
        self.scale_set = scale_set
        self.scale_set_id = scale_set_id
        self.instances = _requested_names(instances)
        self.power_states = _checked_choices(power_states, POWER_STATES, "power_states")
        self.zones = None if zones is None else [str(zone) for zone in zones]
        self.fault_domains = None if fault_domains is None else [int(domain) for domain in fault_domains]
        self.tags = None if tags is None else {str(key): _tag_value(value) for key, value in tags.items()}
        if member_source not in MEMBER_SOURCES:
            raise InvalidInputError("member_source must be one of %s" % ", ".join(MEMBER_SOURCES))
        self.member_source = member_source
        if scale_set_id is None and (resource_group is None or scale_set is None):
            raise InvalidInputError("Give either scale_set_id, or resource_group and scale_set")
        if scale_set_id is not None and (resource_group is not None or scale_set is not None):
            raise InvalidInputError("scale_set_id cannot be combined with resource_group or scale_set")

    @classmethod
    def from_params(cls, params):
        return cls(**{name: params.get(name) for name in selection_argument_spec()})

    @property
    def has_filters(self):
        """Whether any state filter (power states, zones, fault domains, tags) is set."""
        return any(value is not None for value in (self.power_states, self.zones, self.fault_domains, self.tags))

    def describe_filters(self):
        """The state filters in words, for messages."""
        parts = []
        if self.power_states is not None:
            parts.append("power_states %s" % ", ".join(self.power_states))
        if self.zones is not None:
            parts.append("zones %s" % ", ".join(self.zones))
        if self.fault_domains is not None:
            parts.append("fault_domains %s" % ", ".join(str(domain) for domain in self.fault_domains))
        if self.tags is not None:
            parts.append("tags %s" % ", ".join("%s=%s" % item for item in sorted(self.tags.items())))
        return "; ".join(parts)

    def scope_only(self):
        """These criteria without the state filters (power states, zones, fault domains, tags)."""
        return SelectionCriteria(resource_group=self.resource_group, scale_set=self.scale_set,
                                 scale_set_id=self.scale_set_id, instances=self.instances,
                                 member_source=self.member_source)

    def scale_set_ref(self, subscription_id):
        """Return the ``ScaleSetRef``; a scale_set_id must be in the subscription the task uses."""
        if self.scale_set_id is None:
            return ScaleSetRef(subscription_id, self.resource_group, self.scale_set)
        ref = ScaleSetRef.parse(self.scale_set_id)
        if ref.subscription_id.lower() != subscription_id.lower():
            raise InvalidInputError(
                "scale_set_id is in subscription %s but the task authenticates to subscription %s"
                % (ref.subscription_id, subscription_id))
        return ref


def _requested_names(instances):
    """None means every member; otherwise the validated, de-duplicated list of names."""
    if instances is None:
        return None
    names = [str(name).strip() for name in instances]
    if not names:
        # An empty list is nearly always a list computed in the playbook that came out empty: doing nothing
        # silently, or everything, would both surprise.
        raise InvalidInputError(
            "instances is an empty list: name at least one member, or use instances: all. When the list is computed,"
            " skip the task while it is empty (when: <list> | length > 0)")
    if ALL_INSTANCES in (name.lower() for name in names):
        if len(names) != 1:
            raise InvalidInputError("instances: use either the word 'all' or a list of VM names, not both")
        return None
    unique = []
    seen = set()
    for name in names:
        validate_vm_name(name)
        if name.lower() not in seen:
            seen.add(name.lower())
            unique.append(name)
    return unique


def _checked_choices(values, allowed, option):
    if values is None:
        return None
    words = [str(value).strip().lower() for value in values]
    unknown = sorted(set(words) - set(allowed))
    if unknown:
        raise InvalidInputError("%s: unknown value(s) %s; use %s" % (option, ", ".join(unknown), ", ".join(allowed)))
    return words


def _tag_value(value):
    # YAML turns "true" or "42" into bool/int; Azure tag values are always strings.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def member_matches(member, criteria):
    """Return True if ``member`` passes every filter of ``criteria`` (an unset filter passes)."""
    if criteria.power_states is not None and member["power_state"] not in criteria.power_states:
        return False
    if criteria.zones is not None and not set(member["zones"]) & set(criteria.zones):
        return False
    if criteria.fault_domains is not None and member["fault_domain"] not in criteria.fault_domains:
        return False
    if criteria.tags is not None and not _tags_match(member["tags"], criteria.tags):
        return False
    return True


def _tags_match(member_tags, wanted):
    # Azure tag names are case-insensitive; values are case-sensitive.
    lowered = {str(key).lower(): str(value) for key, value in (member_tags or {}).items()}
    return all(lowered.get(key.lower()) == value for key, value in wanted.items())


def filter_members(members, criteria):
    """Return the members that pass every filter, in their original order."""
    return [member for member in members if member_matches(member, criteria)]


def filter_reason(member, criteria):
    """Why ``member`` does not pass the filters of ``criteria``, in words (None when it passes)."""
    if member_matches(member, criteria):
        return None
    if member.get("power_state") == ABSENT:
        return "no longer exists"
    reasons = []
    if criteria.power_states is not None and member["power_state"] not in criteria.power_states:
        reasons.append("power state %s is not in power_states (%s)"
                       % (member["power_state"], ", ".join(criteria.power_states)))
    if criteria.zones is not None and not set(member["zones"]) & set(criteria.zones):
        reasons.append("zones (%s) are not in zones (%s)" % (", ".join(member["zones"]) or "none",
                                                             ", ".join(criteria.zones)))
    if criteria.fault_domains is not None and member["fault_domain"] not in criteria.fault_domains:
        reasons.append("fault domain %s is not in fault_domains (%s)" % (
            member["fault_domain"], ", ".join(str(domain) for domain in criteria.fault_domains)))
    if criteria.tags is not None and not _tags_match(member["tags"], criteria.tags):
        reasons.append("its tags do not match tags (%s)" % ", ".join(
            "%s=%s" % item for item in sorted(criteria.tags.items())))
    return "; ".join(reasons)


# --------------------------------------------------------------------------------------------
# Reading from Azure
# --------------------------------------------------------------------------------------------

def member_query(scale_set_id):
    """Return the Resource Graph query listing the member VMs of a scale set.

    The id is validated and quoted here; the query sticks to a small, common KQL subset.
    """
    ref = ScaleSetRef.parse(scale_set_id)
    return "\n".join([
        "Resources",
        "| where type =~ 'microsoft.compute/virtualmachines'",
        "| where properties.virtualMachineScaleSet.id =~ %s" % kql_quote(ref.id),
        "| project id, name, resourceGroup, location, zones, tags,",
        "    platformFaultDomain = properties.platformFaultDomain,",
        "    powerState = properties.extended.instanceView.powerState.code,",
        "    provisioningState = properties.provisioningState,",
        "    vmSize = properties.hardwareProfile.vmSize,",
        "    priority = properties.priority,",
        "    diffDiskSettings = properties.storageProfile.osDisk.diffDiskSettings,",
        "    networkInterfaces = properties.networkProfile.networkInterfaces",
        "| order by name asc",
    ])


# Scale set ids per member query: keeps the KQL text well under Resource Graph's query size limit.
SCALE_SETS_PER_MEMBER_QUERY = 50


def member_query_for_scale_sets(scale_set_ids):
    """Return the Resource Graph query listing the members of several scale sets at once.

    Rows carry the columns of ``member_query()`` (so ``member_from_graph_row`` reads them) plus
    ``scaleSetId`` (lower-cased), ``computerName`` and ``osType``; they are ordered by ``id``, which
    ``$skipToken`` paging needs. Give at most ``SCALE_SETS_PER_MEMBER_QUERY`` ids per query.
    """
    refs = [ScaleSetRef.parse(scale_set_id) for scale_set_id in scale_set_ids]
    if not refs:
        raise InvalidInputError("member_query_for_scale_sets needs at least one scale set id")
    if len(refs) > SCALE_SETS_PER_MEMBER_QUERY:
        raise InvalidInputError("member_query_for_scale_sets takes at most %d scale set ids, got %d"
                                % (SCALE_SETS_PER_MEMBER_QUERY, len(refs)))
    return "\n".join([
        "Resources",
        "| where type =~ 'microsoft.compute/virtualmachines'",
        "| extend scaleSetId = tolower(tostring(properties.virtualMachineScaleSet.id))",
        "| where scaleSetId in (%s)" % ", ".join(kql_quote(ref.id.lower()) for ref in refs),
        "| project id, name, resourceGroup, subscriptionId, location, zones, tags, scaleSetId,",
        "    platformFaultDomain = properties.platformFaultDomain,",
        "    powerState = properties.extended.instanceView.powerState.code,",
        "    provisioningState = properties.provisioningState,",
        "    vmSize = properties.hardwareProfile.vmSize,",
        "    priority = properties.priority,",
        "    diffDiskSettings = properties.storageProfile.osDisk.diffDiskSettings,",
        "    networkInterfaces = properties.networkProfile.networkInterfaces,",
        "    computerName = coalesce(tostring(properties.osProfile.computerName),",
        "        tostring(properties.extended.instanceView.computerName)),",
        "    osType = tostring(properties.storageProfile.osDisk.osType)",
        "| order by id asc",
    ])


def query_resource_graph(graph_client, subscription_id, query):
    """Run a Resource Graph query and return all rows, following ``$skipToken``.

    ``subscription_id`` is one subscription, or a list of them (one query spans them all). A page that
    says its result was truncated without giving a continuation token raises ``AzureFlexError``
    rather than returning part of the rows as if they were all.
    """
    subscriptions = list(subscription_id) if isinstance(subscription_id, (list, tuple)) else [subscription_id]
    try:
        from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        raise MissingDependencyError("azure-mgmt-resourcegraph", exc) from exc

    rows = []
    skip_token = None
    for _page in range(RESOURCE_GRAPH_MAX_PAGES):
        # result_format is explicit: the service default is "table", and some SDK versions send none.
        options = QueryRequestOptions(top=RESOURCE_GRAPH_PAGE_SIZE, skip_token=skip_token, result_format="objectArray")
        response = graph_client.resources(QueryRequest(subscriptions=subscriptions, query=query, options=options))
        rows.extend(_graph_rows(response.data))
        next_token = getattr(response, "skip_token", None)
        if not next_token:
            if (enum_text(getattr(response, "result_truncated", None)) or "").lower() == "true":
                raise AzureFlexError("Resource Graph truncated the result of the query (%d rows read) and gave no"
                                     " continuation token" % len(rows), code=CODE_GRAPH_TRUNCATED)
            return rows
        if next_token == skip_token:
            raise AzureFlexError("Resource Graph returned the same continuation token twice; stopping")
        skip_token = next_token
    raise AzureFlexError("Resource Graph returned more than %d pages; stopping" % RESOURCE_GRAPH_MAX_PAGES)


def _graph_rows(data):
    """Rows as dicts, whether the service answered in objectArray or table format."""
    if isinstance(data, list):
        return [dict(row) for row in data]
    if isinstance(data, dict) and "columns" in data:
        names = [column.get("name") for column in data.get("columns") or []]
        return [dict(zip(names, row)) for row in data.get("rows") or []]
    return []


class Selection:
    """The outcome of selecting: the scale set, the chosen members, and how many members it has."""

    def __init__(self, scale_set, members, total_members):
        self.scale_set = scale_set
        self.members = members
        self.total_members = total_members


# From how many members on, current state is read with one listing of the scale set with instance views rather
# than a read of each member (the listing pages 100 VMs at a time).
BULK_READ_MIN = 10


class ScaleSetSelector:
    """Resolves ``SelectionCriteria`` against Azure."""

    def __init__(self, clients, subscription_id, deadline=None, max_parallel=DEFAULT_MAX_PARALLEL):
        self.clients = clients
        self.subscription_id = subscription_id
        self.deadline = deadline
        self.max_parallel = max_parallel
        # Members named in instances that a filter left out: [{"member": member dict, "reason": text}].
        self.filtered_out = []
        # What the user should know about the selections made (Resource Graph lag found, a filter that
        # selected no member): one sentence each.
        self.warnings = []

    def select(self, criteria):
        """Return a ``Selection``; raise ``AzureFlexError`` naming whatever could not be found."""
        ref = criteria.scale_set_ref(self.subscription_id)
        scale_set = self.get_scale_set(ref)
        members, total = self._listed_members(scale_set, criteria.member_source, criteria.instances)
        if criteria.instances is not None:
            members = self._named_members(members, criteria.instances, scale_set)
        return Selection(scale_set, self._apply_filters(members, criteria, scale_set), total)

    def _apply_filters(self, members, criteria, scale_set=None):
        """``filter_members``, recording the named members it leaves out and a filter that leaves out all."""
        kept = filter_members(members, criteria)
        if not criteria.has_filters or len(kept) == len(members):
            return kept
        set_name = (scale_set or {}).get("name") or criteria.scale_set or "the scale set"
        if criteria.instances is not None:
            kept_ids = {id(member) for member in kept}
            dropped = [member for member in members if id(member) not in kept_ids]
            for member in dropped:
                self.filtered_out.append({"member": member, "reason": "named in instances, but left out by the"
                                          " filters: %s" % filter_reason(member, criteria)})
            self.warnings.append("%d member(s) named in instances were left out by the filters (%s), nothing was done"
                                 " to them: %s" % (len(dropped), criteria.describe_filters(), ", ".join(
                                     "%s (%s)" % (member["name"], filter_reason(member, criteria))
                                     for member in dropped)))
        elif not kept:
            self.warnings.append("The filters (%s) selected none of the %d member(s) of %s. Note that tags selects"
                                 " members by the tags they already have." % (
                                     criteria.describe_filters(), len(members), set_name))
        return kept

    def get_scale_set(self, ref):
        """Read the scale set; refuse a Uniform one; name a missing group or set in the error."""
        try:
            with azure_errors("Failed to read scale set %s" % ref.name):
                raw = self.clients.compute().virtual_machine_scale_sets.get(
                    resource_group_name=ref.resource_group, vm_scale_set_name=ref.name)
        except AzureFlexError as exc:
            raise _explain_missing_scale_set(exc, ref) from exc
        scale_set = scale_set_from_rest(as_rest_dict(raw))
        if (scale_set["orchestration_mode"] or "Uniform").lower() != "flexible":
            raise uniform_scale_set_error(ref, scale_set["orchestration_mode"])
        return scale_set

    def list_members(self, scale_set, member_source="resource_graph"):
        """Return every member of ``scale_set`` (a dict from ``get_scale_set``), sorted by name."""
        return self._listed_members(scale_set, member_source, names=None)[0]

    def _listed_members(self, scale_set, member_source, names):
        """Return ``(members, total)``: the members worth considering, and how many the set has.

        From the compute API only the VMs in ``names`` (when not None) get their instance view read,
        so acting on 3 VMs of a 1,000-VM set costs 4 calls, not 1,001.
        """
        if member_source == "compute":
            members, total = self._members_from_compute(scale_set, names)
        else:
            with azure_errors("Failed to list the members of scale set %s with Resource Graph" % scale_set["name"]):
                rows = query_resource_graph(self.clients.resource_graph(), self.subscription_id,
                                            member_query(scale_set["id"]))
            members, total = self._without_graph_lag(scale_set, [member_from_graph_row(row) for row in rows], names)
        return sorted(members, key=lambda member: (member["name"] or "").lower()), total

    def _without_graph_lag(self, scale_set, members, names):
        """The Resource Graph listing, corrected from the compute API when it disagrees with the set's count.

        Resource Graph can lag by a minute or more: right after a scale-out or a creation it lists fewer
        members than exist, right after a deletion more. The scale set's ``sku.capacity`` costs nothing to
        compare (it was read already); when it differs, one compute list call (100 members a page) says which
        members exist. Members Resource Graph does not show yet are read directly (only those in ``names``,
        when names are given); members it shows but that no longer exist are dropped. A set without a model
        has no count to compare with: its listing is taken as Resource Graph gives it.
        """
        capacity = (scale_set.get("sku") or {}).get("capacity")
        if capacity is None or capacity == len(members):
            return members, len(members)
        listed = self._list_compute_vms(scale_set)
        existing = {str(vm.get("name") or "").lower(): vm for vm in listed}
        shown = {str(member.get("name") or "").lower() for member in members}
        new = [vm for name, vm in existing.items() if name not in shown]
        # The compute list covers the scale set's resource group: only members there can be found gone.
        group = str(scale_set.get("resource_group") or "").lower()
        gone = {str(member.get("name") or "").lower(): member["name"] for member in members
                if str(member.get("name") or "").lower() not in existing
                and str(member.get("resource_group") or "").lower() == group}
        if not new and not gone:
            return members, len(members)
        if names is not None:
            wanted = {name.lower() for name in names}
            new_read = [vm for vm in new if str(vm.get("name") or "").lower() in wanted]
        else:
            new_read = new
        members = [member for member in members if str(member.get("name") or "").lower() not in gone]
        members.extend(self._with_instance_views(new_read))
        self.warnings.append(
            "Resource Graph is behind for scale set %s: it listed %d member(s), the compute API %d (capacity %s)."
            " The compute API's list was used%s%s." % (
                scale_set["name"], len(shown), len(existing), "unknown" if capacity is None else capacity,
                "; not yet in Resource Graph: %s" % ", ".join(sorted(vm.get("name") for vm in new)) if new else "",
                "; deleted, still in Resource Graph: %s" % ", ".join(sorted(gone.values())) if gone else ""))
        return members, len(members) + len(new) - len(new_read)

    def read_member(self, resource_group, name):
        """Read one VM with its instance view straight from the compute API (authoritative, no lag)."""
        return member_from_vm(self._read_vm(resource_group, name))

    def _read_vm(self, resource_group, name):
        with azure_errors("Failed to read VM %s" % name):
            vm = self.clients.compute().virtual_machines.get(
                resource_group_name=resource_group, vm_name=name, expand="instanceView")
        return as_rest_dict(vm)

    def select_current(self, criteria):
        """``select``, deciding the state filters from each member's current state (see ``refresh``)."""
        selection = self.select(criteria.scope_only())
        selection.members = self.refresh(selection.members, criteria, selection.scale_set)
        return selection

    def refresh(self, members, criteria, scale_set=None):
        """``members`` as they are now (``current_members``, unless listed from the compute API already),
        filtered by ``criteria``, in name order."""
        if criteria.member_source != "compute":
            members = self.current_members(members, scale_set)
        return sorted(self._apply_filters(members, criteria), key=lambda member: (member["name"] or "").lower())

    def current_members(self, members, scale_set=None):
        """``members`` as the compute API sees them now.

        Resource Graph can lag by a minute, so modules that decide from a member's state (or tags) read it
        again before deciding. A member deleted in the meantime keeps its listed fields, with power state
        ``absent``. More than ``BULK_READ_MIN`` members of ``scale_set`` are read with one listing of the set
        with instance views (100 VMs a page: 10 requests for 1,000 members instead of 1,000, which matters
        against ARM's read budget of 25 a second); fewer, or without ``scale_set``, each is read on its own.
        """
        if scale_set is not None and len(members) > BULK_READ_MIN:
            listed = {str(vm.get("name") or "").lower(): vm for vm in self._list_compute_vms(scale_set, True)}
            current = []
            for member in members:
                vm = listed.get(str(member.get("name") or "").lower())
                current.append(member_from_vm(vm) if vm is not None else dict(member, power_state=ABSENT))
            return current

        def read(member):
            try:
                return member_from_vm(self._read_vm(member["resource_group"], member["name"]))
            except AzureFlexError as exc:
                if is_not_found(exc):
                    return dict(member, power_state=ABSENT)
                raise

        current = []
        for outcome in run_bounded(read, members, self.max_parallel, self.deadline):
            if not outcome.ok:
                raise outcome.error
            current.append(outcome.result)
        return current

    def _list_compute_vms(self, scale_set, instance_view=False):
        """The member VMs (REST layout) as the compute API lists them; with ``instance_view``, each with its
        instance view (``$expand=instanceView``, which Azure allows with the scale-set filter)."""
        compute = self.clients.compute()
        vm_filter = "'virtualMachineScaleSet/id' eq %s" % odata_quote(ScaleSetRef.parse(scale_set["id"]).id)
        options = {"expand": "instanceView"} if instance_view else {}
        with azure_errors("Failed to list the members of scale set %s" % scale_set["name"]):
            return [as_rest_dict(vm) for vm in compute.virtual_machines.list(
                resource_group_name=scale_set["resource_group"], filter=vm_filter, **options)]

    def _members_from_compute(self, scale_set, names=None):
        """Every member (or those in ``names``) with its instance view: one listing with instance views, or,
        for at most ``BULK_READ_MIN`` names, the listing and one instance view read for each."""
        bulk = names is None or len(names) > BULK_READ_MIN
        vms = self._list_compute_vms(scale_set, instance_view=bulk)
        total = len(vms)
        if names is not None:
            wanted = {name.lower() for name in names}
            vms = [vm for vm in vms if str(vm.get("name") or "").lower() in wanted]
        if bulk:
            return [member_from_vm(vm) for vm in vms], total
        return self._with_instance_views(vms), total

    def _with_instance_views(self, vms):
        """Members built from ``vms`` and their instance views (read concurrently); VMs gone meanwhile are left out."""
        compute = self.clients.compute()

        def read_instance_view(vm):
            with azure_errors("Failed to read the instance view of VM %s" % vm.get("name")):
                view = compute.virtual_machines.instance_view(
                    resource_group_name=resource_group_from_id(vm.get("id")), vm_name=vm.get("name"))
            return member_from_vm(vm, as_rest_dict(view))

        members = []
        for outcome in run_bounded(read_instance_view, vms, self.max_parallel, self.deadline):
            if outcome.ok:
                members.append(outcome.result)
            elif not is_not_found(outcome.error):  # deleted since the list call: no longer a member
                raise outcome.error
        return members

    def _named_members(self, members, names, scale_set):
        by_name = {member["name"].lower(): member for member in members if member.get("name")}
        missing = [name for name in names if name.lower() not in by_name]
        confirmed = self._confirm_missing(missing, scale_set)
        by_name.update({member["name"].lower(): member for member in confirmed})
        return [by_name[name.lower()] for name in names]

    def _confirm_missing(self, names, scale_set):
        """Check names absent from the listing with a direct GET; raise naming those that fail."""
        if not names:
            return []

        def read(name):
            return self._read_vm(scale_set["resource_group"], name)

        found, not_found, outside = [], [], []
        for outcome in run_bounded(read, names, self.max_parallel, self.deadline):
            if not outcome.ok:
                if not is_not_found(outcome.error):
                    raise outcome.error
                not_found.append(outcome.item)
                continue
            owner_id = _scale_set_id_of(outcome.result)
            if (owner_id or "").lower() == scale_set["id"].lower():
                found.append(member_from_vm(outcome.result))
            else:
                outside.append("%s (%s)" % (outcome.item, "member of %s" % owner_id if owner_id else "not in any scale set"))
        if not_found or outside:
            raise _membership_error(scale_set, not_found, outside)
        return found


def uniform_scale_set_error(ref, orchestration_mode):
    """The refusal of a scale set that is not Flexible, pointing Uniform users at azure.azcollection."""
    return InvalidInputError(
        "Scale set %s in resource group %s uses %s orchestration; this collection manages Flexible scale sets only."
        " For Uniform scale sets use %s." % (ref.name, ref.resource_group, orchestration_mode or "Uniform",
                                             UNIFORM_ALTERNATIVE),
        code=CODE_UNIFORM_SCALE_SET)


def _scale_set_id_of(vm):
    return ((vm.get("properties") or {}).get("virtualMachineScaleSet") or {}).get("id")


def _explain_missing_scale_set(error, ref):
    code = arm_error_code(error)
    if code == "ResourceGroupNotFound":
        return error.with_message("Resource group %s was not found (looking for scale set %s)" % (ref.resource_group, ref.name))
    if is_not_found(error):
        return error.with_message("Scale set %s was not found in resource group %s" % (ref.name, ref.resource_group))
    return error


def _membership_error(scale_set, not_found, outside):
    problems = []
    if not_found:
        problems.append("not found in resource group %s: %s" % (scale_set["resource_group"], ", ".join(not_found)))
    if outside:
        problems.append("not members of scale set %s: %s" % (scale_set["name"], ", ".join(outside)))
    return AzureFlexError(
        "Requested instances are unusable; " + "; ".join(problems),
        code="ResourceNotFound" if not_found else CODE_NOT_A_MEMBER,
        status=404 if not_found else None,
    )
