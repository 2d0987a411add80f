# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""Azure Resource Graph: the queries the collection sends, and reading every row of a query.

The selector, flex_list_instances and the inventory plugin all read Resource Graph through this file:
the query builders (the member VMs of one or of many scale sets, the scale sets in scope, the
members' network addresses), ``query_resource_graph`` (one query over one or more subscriptions,
every ``$skipToken`` page, a result Resource Graph truncated refused rather than returned in part)
and ``read_resource_graph`` (the same, its Azure errors saying what was being read).

Every id and name that goes into a query is validated and quoted first (``_ids``); the queries stick
to a small, common KQL subset. Resource Graph is a cache that can lag by a minute or more behind
Azure: what needs to be current is read again from the compute API (see ``_selection``).
"""

from __future__ import annotations

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    AzureFlexError,
    InvalidInputError,
    MissingDependencyError,
    azure_errors,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import ScaleSetRef, kql_quote
from ansible_collections.azure_flex.vmss.plugins.module_utils._members import enum_text


CODE_GRAPH_TRUNCATED = "AzureFlexResourceGraphTruncated"

RESOURCE_GRAPH_PAGE_SIZE = 1000
# A Flexible scale set holds at most 1,000 VMs; the cap only stops a service that keeps returning
# continuation tokens from looping forever.
RESOURCE_GRAPH_MAX_PAGES = 100

# Scale set ids per member query: keeps the KQL text well under Resource Graph's query size limit.
SCALE_SETS_PER_MEMBER_QUERY = 50
# Network interface ids per query: Azure recommends at most 300 ids in one "in" list.
NIC_IDS_PER_QUERY = 300

# The member columns ``member_from_graph_row`` reads besides id, name, resourceGroup, location, zones and tags.
_MEMBER_COLUMNS = (
    "platformFaultDomain = properties.platformFaultDomain",
    "powerState = properties.extended.instanceView.powerState.code",
    "provisioningState = properties.provisioningState",
    "vmSize = properties.hardwareProfile.vmSize",
    "priority = properties.priority",
    "diffDiskSettings = properties.storageProfile.osDisk.diffDiskSettings",
    "networkInterfaces = properties.networkProfile.networkInterfaces",
)


# --------------------------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------------------------


def _project_members(leading, extra=()):
    """The ``project`` lines of a member query: ``leading`` columns, then the member columns and ``extra``."""
    columns = list(_MEMBER_COLUMNS) + list(extra)
    return ["| project %s," % leading] + ["    %s," % column for column in columns[:-1]] + ["    %s" % columns[-1]]


def member_query(scale_set_id):
    """Return the Resource Graph query listing the member VMs of a scale set."""
    ref = ScaleSetRef.parse(scale_set_id)
    return "\n".join([
        "Resources",
        "| where type =~ 'microsoft.compute/virtualmachines'",
        "| where properties.virtualMachineScaleSet.id =~ %s" % kql_quote(ref.id),
    ] + _project_members("id, name, resourceGroup, location, zones, tags") + [
        "| order by name asc",
    ])


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
    ] + _project_members("id, name, resourceGroup, subscriptionId, location, zones, tags, scaleSetId", (
        "computerName = coalesce(tostring(properties.osProfile.computerName),\n"
        "        tostring(properties.extended.instanceView.computerName))",
        "osType = tostring(properties.storageProfile.osDisk.osType)",
    )) + [
        "| order by id asc",
    ])


def scale_set_query(named_ids, resource_groups, scope_subscriptions):
    """The scale sets named, plus every Flexible one in scope, ordered by id.

    ``named_ids`` are validated ids; ``resource_groups`` (validated names) narrow the "in scope" part,
    which is empty when ``named_ids`` are given without ``resource_groups``. Rows carry ``id``, ``name``,
    ``resourceGroup``, ``subscriptionId``, ``location``, ``zones``, ``orchestrationMode`` and
    ``platformFaultDomainCount``.
    """
    conditions = []
    if named_ids:
        conditions.append("tolower(id) in (%s)" % ", ".join(kql_quote(scale_set_id.lower()) for scale_set_id in named_ids))
    if resource_groups or not named_ids:
        in_scope = ["properties.orchestrationMode =~ 'Flexible'",
                    "subscriptionId in~ (%s)" % ", ".join(kql_quote(sub) for sub in scope_subscriptions)]
        if resource_groups:
            in_scope.append("resourceGroup in~ (%s)" % ", ".join(kql_quote(group) for group in resource_groups))
        conditions.append("(%s)" % " and ".join(in_scope))
    return "\n".join([
        "Resources",
        "| where type =~ 'microsoft.compute/virtualmachinescalesets'",
        "| where %s" % " or ".join(conditions),
        "| project id, name, resourceGroup, subscriptionId, location, zones,",
        "    orchestrationMode = tostring(properties.orchestrationMode),",
        "    platformFaultDomainCount = properties.platformFaultDomainCount",
        "| order by id asc",
    ])


def network_query(scale_set_ids):
    """Private and public IP addresses of the members of the given scale sets, one row per ip configuration.

    The VM -> NIC -> public IP joins follow Microsoft's published Resource Graph sample; ids are
    compared lower-cased because ARM does not guarantee one casing across resources.
    """
    return "\n".join([
        "Resources",
        "| where type =~ 'microsoft.compute/virtualmachines'",
        "| where tolower(tostring(properties.virtualMachineScaleSet.id)) in (%s)"
        % ", ".join(kql_quote(scale_set_id.lower()) for scale_set_id in scale_set_ids),
        "| mv-expand nic = properties.networkProfile.networkInterfaces",
        "| project vmId = tolower(id), nicId = tolower(tostring(nic.id)), nicPrimary = tostring(nic.properties.primary)",
        "| join kind=inner (",
        "    Resources",
        "    | where type =~ 'microsoft.network/networkinterfaces'",
        "    | mv-expand ipconfig = properties.ipConfigurations",
        "    | project id, nicId = tolower(id), ipconfigPrimary = tostring(ipconfig.properties.primary),",
        "        privateIp = tostring(ipconfig.properties.privateIPAddress),",
        "        publicIpId = tolower(tostring(ipconfig.properties.publicIPAddress.id))",
        "  ) on nicId",
        "| join kind=leftouter (",
        "    Resources",
        "    | where type =~ 'microsoft.network/publicipaddresses'",
        "    | project publicIpId = tolower(id), publicIp = tostring(properties.ipAddress),",
        "        publicFqdn = tostring(properties.dnsSettings.fqdn)",
        "  ) on publicIpId",
        "| project id, vmId, nicPrimary, ipconfigPrimary, privateIp, publicIp, publicFqdn",
        "| order by id asc",
    ])


def nic_private_ip_query(nic_ids):
    """The private IP address of each ip configuration of the given network interfaces (lower-cased ids)."""
    return "\n".join([
        "Resources",
        "| where type =~ 'microsoft.network/networkinterfaces'",
        "| where tolower(id) in (%s)" % ", ".join(kql_quote(nic_id) for nic_id in nic_ids),
        "| mv-expand ipconfig = properties.ipConfigurations",
        "| project id, ip = tostring(ipconfig.properties.privateIPAddress)",
    ])


def batches(items, size):
    """``items`` in consecutive slices of at most ``size``: one query each."""
    return [items[start:start + size] for start in range(0, len(items), size)]


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


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


def read_resource_graph(graph_client, subscription_id, query, doing):
    """``query_resource_graph``; an SDK error fails as "Failed to <doing> with Resource Graph: ..." with its
    ARM code and request id."""
    with azure_errors("Failed to %s with Resource Graph" % doing):
        return query_resource_graph(graph_client, subscription_id, query)


def _is_true(value):
    return str(value).strip().lower() == "true"


def addresses_by_vm(network_rows):
    """Per lower-cased VM id (rows of ``network_query``): private IPs, public IPs and public FQDNs, primary
    ones first."""
    by_vm = {}
    for row in network_rows:
        # Primary NIC before the others, and within a NIC the primary ip configuration first.
        rank = (0 if _is_true(row.get("nicPrimary")) else 1, 0 if _is_true(row.get("ipconfigPrimary")) else 1)
        by_vm.setdefault(row.get("vmId"), []).append((rank, str(row.get("id") or "").lower(), row))
    addresses = {}
    for vm_id, entries in by_vm.items():
        entries.sort(key=lambda entry: (entry[0], entry[1]))
        found = {"private_ips": [], "public_ips": [], "public_fqdns": []}
        for _rank, _nic, row in entries:
            for key, column in (("private_ips", "privateIp"), ("public_ips", "publicIp"), ("public_fqdns", "publicFqdn")):
                value = row.get(column)
                if value and value not in found[key]:
                    found[key].append(value)
        addresses[vm_id] = found
    return addresses


def private_ips_by_nic(graph_client, subscription_id, nic_ids):
    """The private IPs of the given network interfaces, by lower-cased NIC id, ``NIC_IDS_PER_QUERY`` a query."""
    by_nic = {}
    for batch in batches(sorted({nic_id.lower() for nic_id in nic_ids}), NIC_IDS_PER_QUERY):
        for row in read_resource_graph(graph_client, subscription_id, nic_private_ip_query(batch),
                                       "read network interfaces"):
            if row.get("ip"):
                by_nic.setdefault(row["id"].lower(), []).append(row["ip"])
    return by_nic
