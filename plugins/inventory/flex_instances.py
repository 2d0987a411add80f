# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: flex_instances
short_description: Inventory of the member VMs of Azure Flexible scale sets
version_added: 0.1.0
description:
  - Makes the member VMs of Azure Virtual Machine Scale Sets in Flexible orchestration mode inventory hosts,
    with their scale set, zone, fault domain, power state, tags and IP addresses as host variables.
  - Hosts are the members of the scale sets named in O(scale_sets), plus the members of every Flexible scale
    set in O(resource_groups). With neither, hosts are the members of every Flexible scale set in
    O(subscriptions).
  - Everything is read from Azure Resource Graph, a page of up to 1,000 rows per request. A whole inventory
    costs one request for the scale sets, then per 50 scale sets one request per 1,000 members and one per
    1,000 network interfaces (private and public IP addresses are joined in the same query), so 2,000 members
    take 5 requests.
  - Resource Graph is a cache that usually lags by seconds and can lag by a minute or more behind Azure; a VM
    created or started moments ago may be missing or show its previous power state.
  - Any failure (authentication, a named scale set that does not exist or is not Flexible, throttling that
    outlasts the retries, a truncated result) fails the whole source with the ARM error code and request
    ID; the plugin never returns part of the hosts. Set C(ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED=true)
    to make Ansible stop on such a failure instead of continuing without the source.
  - Configuration files must end in C(flex_instances.yml) or C(flex_instances.yaml).
author:
  - azure_flex.vmss maintainers (@azure-flex)
options:
  plugin:
    description: The name of this plugin; makes Ansible use it for the file.
    required: true
    type: str
    choices: [azure_flex.vmss.flex_instances]
  scale_sets:
    description:
      - Flexible scale sets whose members become hosts.
      - Each entry is a scale set resource ID (C(/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Compute/virtualMachineScaleSets/<name>)),
        or a mapping with C(resource_group), C(name) and optionally C(subscription_id) (default O(subscription_id)).
      - A named scale set that does not exist, or uses Uniform orchestration, fails the source.
    type: list
    elements: raw
    default: []
  resource_groups:
    description:
      - Every Flexible scale set in these resource groups (of each subscription in O(subscriptions)) adds its
        members as hosts.
    type: list
    elements: str
    default: []
  subscriptions:
    description:
      - Subscriptions searched for O(resource_groups), or for every Flexible scale set when neither
        O(scale_sets) nor O(resource_groups) is given.
      - Defaults to the subscription of the credentials (O(subscription_id)).
    type: list
    elements: str
    default: []
  hostnames:
    description:
      - How inventory host names are made, in order of preference; the first that a member has is used.
      - V(name) is the VM name, V(computer_name) the guest's computer name, V(private_ip) and V(public_ip) the
        primary addresses, V(public_fqdn) the DNS name of the public IP address, V(id) the VM resource ID.
      - A member with none of them is left out, with a warning naming it. Two members with the same host name
        fail the source (use V(id), unique across subscriptions).
    type: list
    elements: str
    default: [name]
  ansible_host_source:
    description:
      - Which address of a member becomes C(ansible_host), in order of preference; the first that the member
        has is used. When it has none, C(ansible_host) is not set (Ansible then connects to the host name).
      - V(private_ip) is the primary private IP address (of the primary network interface), V(public_ip) the
        public IP address attached to the primary network interface (or else to any), V(public_fqdn) its DNS
        name.
      - C(compose) can still set C(ansible_host) from any host variable.
    type: list
    elements: str
    default: [private_ip]
  power_states:
    description:
      - Keep only members in one of these power states (for example V(running)). By default every member is
        a host.
    type: list
    elements: str
  default_groups:
    description:
      - Create the built-in groups C(scale_set_<name>), C(zone_<zone>), C(fault_domain_<number>),
        C(power_state_<state>) and C(tag_<name>_<value>). Characters other than letters, digits and C(_)
        become C(_).
      - C(groups) and C(keyed_groups) work either way.
    type: bool
    default: true
  timeout:
    description:
      - Time limit, in seconds, for reading the inventory, including retries after throttling.
    type: int
    default: 300
extends_documentation_fragment:
  - constructed
  - inventory_cache
  - azure_flex.vmss._azure_auth
notes:
  - The authentication options and environment variables are those of the modules of this collection, so a
    "Microsoft Azure Resource Manager" credential attached to an AWX or Automation Platform inventory source
    works unchanged.
  - Host variables are C(azure_vm_name), C(azure_vm_id), C(azure_subscription_id), C(azure_resource_group),
    C(azure_location), C(azure_scale_set), C(azure_scale_set_id), C(azure_zones), C(azure_fault_domain),
    C(azure_power_state), C(azure_provisioning_state), C(azure_vm_size), C(azure_priority),
    C(azure_ephemeral_os_disk), C(azure_computer_name), C(azure_os_type), C(azure_tags),
    C(azure_private_ip), C(azure_private_ips), C(azure_public_ip), C(azure_public_ips), C(azure_public_fqdn)
    and C(azure_network_interface_ids).
  - The collection's C(docs/inventory.md) has more examples.
seealso:
  - module: azure_flex.vmss.flex_list_instances
"""

EXAMPLES = r"""
# web.flex_instances.yml: the members of one scale set, reached on their private addresses.
plugin: azure_flex.vmss.flex_instances
scale_sets:
  - resource_group: web-rg
    name: web

# all.flex_instances.yml: every Flexible member of two subscriptions, public address first, running only,
# grouped also by VM size, with a variable composed from the tags, cached for an hour.
plugin: azure_flex.vmss.flex_instances
subscriptions:
  - 00000000-0000-0000-0000-000000000000
  - 11111111-1111-1111-1111-111111111111
ansible_host_source: [public_ip, private_ip]
power_states: [running]
keyed_groups:
  - prefix: size
    key: azure_vm_size
compose:
  environment_name: azure_tags.env | default('none')
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/ansible-inventory
cache_timeout: 3600

# ansible-inventory -i web.flex_instances.yml --graph
"""

import os

from ansible.errors import AnsibleParserError
from ansible.inventory.group import to_safe_group_name
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible_collections.azure_flex.vmss.plugins.module_utils._auth import AUTH_ARGUMENT_SPEC, resolve_auth_settings
from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import clients_for_settings
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    AzureFlexError,
    InvalidInputError,
    azure_error_types,
    to_flex_error,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._graph import (
    SCALE_SETS_PER_MEMBER_QUERY,
    addresses_by_vm,
    batches,
    member_query_for_scale_sets,
    network_query,
    read_resource_graph,
    scale_set_query,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import (
    ScaleSetRef,
    is_guid,
    resource_group_from_id,
    validate_resource_group_name,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._members import POWER_STATES, member_from_graph_row
from ansible_collections.azure_flex.vmss.plugins.module_utils._resilience import Deadline
from ansible_collections.azure_flex.vmss.plugins.module_utils._selection import (
    ScaleSetSelector,
    uniform_scale_set_error,
)

HOSTNAME_SOURCES = ("name", "computer_name", "private_ip", "public_ip", "public_fqdn", "id")
ADDRESS_SOURCES = ("private_ip", "public_ip", "public_fqdn")
CONFIG_SUFFIXES = ("flex_instances.yml", "flex_instances.yaml")


# --------------------------------------------------------------------------------------------
# Reading the inventory
# --------------------------------------------------------------------------------------------

def parse_scale_set_entry(entry, default_subscription):
    """A ``scale_sets`` entry (resource id, or mapping) as a validated ``ScaleSetRef``."""
    if isinstance(entry, str):
        return ScaleSetRef.parse(entry.strip())
    if isinstance(entry, dict):
        unknown = sorted(set(entry) - {"resource_group", "name", "subscription_id"})
        if unknown or not entry.get("resource_group") or not entry.get("name"):
            raise InvalidInputError(
                "scale_sets entry %r must have resource_group and name (and optionally subscription_id), and no"
                " other key" % (entry,))
        return ScaleSetRef(str(entry.get("subscription_id") or default_subscription), str(entry["resource_group"]),
                           str(entry["name"]))
    raise InvalidInputError("scale_sets entry %r is neither a scale set resource ID nor a mapping" % (entry,))


class FlexInventoryReader:
    """Reads the scale sets and members an inventory configuration asks for.

    ``clients_for(subscription_id)`` returns the ``AzureClients`` of a subscription (Resource Graph
    queries go through the auth subscription's clients; the compute API is only used to explain a
    named scale set that Resource Graph does not show).
    """

    def __init__(self, clients_for, auth_subscription, scope_subscriptions, deadline=None):
        self.clients_for = clients_for
        self.auth_subscription = auth_subscription
        self.scope_subscriptions = list(scope_subscriptions or [auth_subscription])
        self.deadline = deadline

    def graph(self, subscriptions, query, what):
        return read_resource_graph(self.clients_for(self.auth_subscription).resource_graph(),
                                   sorted(set(subscriptions)), query, "read %s" % what)

    def read(self, named_refs, resource_groups):
        """Return the host records, sorted by scale set and VM name."""
        scale_sets = self.scale_sets(named_refs, resource_groups)
        if not scale_sets:
            return []
        members, addresses = [], {}
        for batch in batches(sorted(scale_sets), SCALE_SETS_PER_MEMBER_QUERY):
            subscriptions = [scale_sets[key]["subscription_id"] for key in batch]
            ids = [scale_sets[key]["id"] for key in batch]
            members.extend(self.graph(subscriptions, member_query_for_scale_sets(ids), "scale set members"))
            addresses.update(addresses_by_vm(self.graph(subscriptions, network_query(ids), "network interfaces")))
        records = []
        for row in members:
            scale_set = scale_sets.get(str(row.get("scaleSetId") or "").lower())
            if scale_set is not None:
                records.append(host_record(row, scale_set, addresses.get(str(row.get("id") or "").lower())))
        records.sort(key=lambda record: (record["azure_scale_set"].lower(), record["azure_vm_name"].lower(),
                                         record["azure_vm_id"].lower()))
        return records

    def scale_sets(self, named_refs, resource_groups):
        """The Flexible scale sets to inventory, by lower-cased id; a named one that is unusable raises."""
        named = {ref.id.lower(): ref for ref in named_refs}
        if named_refs and not resource_groups:
            subscriptions = [ref.subscription_id for ref in named_refs]
        else:
            subscriptions = self.scope_subscriptions + [ref.subscription_id for ref in named_refs]
        query = scale_set_query([ref.id for ref in named_refs], resource_groups, self.scope_subscriptions)
        found = {}
        for row in self.graph(subscriptions, query, "scale sets"):
            key = str(row.get("id") or "").lower()
            if key in named and str(row.get("orchestrationMode") or "Uniform").lower() != "flexible":
                raise uniform_scale_set_error(named[key], row.get("orchestrationMode"))
            found[key] = {"id": row.get("id"), "name": row.get("name"), "subscription_id": row.get("subscriptionId"),
                          "resource_group": resource_group_from_id(row.get("id")) or row.get("resourceGroup")}
        for key, ref in named.items():
            if key not in found:
                found[key] = self.confirm_scale_set(ref)
        return found

    def confirm_scale_set(self, ref):
        """A named scale set Resource Graph does not show: missing (raise), or too new for the cache."""
        selector = ScaleSetSelector(self.clients_for(ref.subscription_id), ref.subscription_id, self.deadline)
        scale_set = selector.get_scale_set(ref)  # raises naming the missing group or set, or a Uniform set
        return {"id": scale_set["id"], "name": scale_set["name"], "subscription_id": ref.subscription_id,
                "resource_group": scale_set["resource_group"]}


def host_record(row, scale_set, addresses):
    """The host variables of one member (plain data: it is what the inventory cache stores)."""
    member = member_from_graph_row(row)
    addresses = addresses or {"private_ips": [], "public_ips": [], "public_fqdns": []}
    return {
        "azure_vm_name": member["name"],
        "azure_vm_id": member["id"],
        "azure_subscription_id": row.get("subscriptionId") or scale_set["subscription_id"],
        "azure_resource_group": member["resource_group"],
        "azure_location": member["location"],
        "azure_scale_set": scale_set["name"],
        "azure_scale_set_id": scale_set["id"],
        "azure_zones": member["zones"],
        "azure_fault_domain": member["fault_domain"],
        "azure_power_state": member["power_state"],
        "azure_provisioning_state": member["provisioning_state"],
        "azure_vm_size": member["vm_size"],
        "azure_priority": member["priority"],
        "azure_ephemeral_os_disk": member["ephemeral_os_disk"],
        "azure_computer_name": row.get("computerName") or None,
        "azure_os_type": row.get("osType") or None,
        "azure_tags": member["tags"],
        "azure_network_interface_ids": member["network_interface_ids"],
        "azure_private_ip": (addresses["private_ips"] or [None])[0],
        "azure_private_ips": addresses["private_ips"],
        "azure_public_ip": (addresses["public_ips"] or [None])[0],
        "azure_public_ips": addresses["public_ips"],
        "azure_public_fqdn": (addresses["public_fqdns"] or [None])[0],
    }


RECORD_FIELD = {"name": "azure_vm_name", "computer_name": "azure_computer_name", "private_ip": "azure_private_ip",
                "public_ip": "azure_public_ip", "public_fqdn": "azure_public_fqdn", "id": "azure_vm_id"}


def first_available(record, sources):
    for source in sources:
        value = record.get(RECORD_FIELD[source])
        if value:
            return value
    return None


def safe_group_name(*parts):
    """A group name from its parts; anything but letters, digits and '_' becomes '_'."""
    return to_safe_group_name("_".join(str(part) for part in parts), replacer="_", force=True, silent=True)


def default_group_names(record):
    names = [safe_group_name("scale_set", record["azure_scale_set"])]
    names.extend(safe_group_name("zone", zone) for zone in record["azure_zones"])
    if record["azure_fault_domain"] is not None:
        names.append(safe_group_name("fault_domain", record["azure_fault_domain"]))
    names.append(safe_group_name("power_state", record["azure_power_state"]))
    names.extend(safe_group_name("tag", key, value) for key, value in sorted(record["azure_tags"].items()))
    return names


# --------------------------------------------------------------------------------------------
# The plugin
# --------------------------------------------------------------------------------------------

class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "azure_flex.vmss.flex_instances"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(CONFIG_SUFFIXES)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        self._check_choices()
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        update_cache = self.get_option("cache") and not cache
        records = None
        if use_cache:
            try:
                records = self._cache[cache_key]
            except KeyError:
                update_cache = True
        if records is None:
            records = self.fetch_records()
        if update_cache:
            self._cache[cache_key] = records
        self.populate(records)

    def _check_choices(self):
        for option, allowed in (("hostnames", HOSTNAME_SOURCES), ("ansible_host_source", ADDRESS_SOURCES),
                                ("power_states", POWER_STATES)):
            values = self.get_option(option) or []
            unknown = [value for value in values if value not in allowed]
            if unknown:
                raise AnsibleParserError("%s: unknown value(s) %s; use %s" % (
                    option, ", ".join(str(value) for value in unknown), ", ".join(allowed)))
        if self.get_option("timeout") < 1:
            raise AnsibleParserError("timeout must be at least 1, got %d" % self.get_option("timeout"))

    def build_clients(self):
        """Return ``(clients_for, auth_subscription, deadline)``; tests replace this method."""
        settings = resolve_auth_settings({name: self.get_option(name) for name in AUTH_ARGUMENT_SPEC}, os.environ)
        deadline = Deadline(self.get_option("timeout"))
        return clients_for_settings(settings, deadline), settings.subscription_id, deadline

    def fetch_records(self):
        """Read every host record from Azure, or raise ``AnsibleParserError`` (never a partial list)."""
        try:
            clients_for, auth_subscription, deadline = self.build_clients()
            scope = [str(sub).strip() for sub in self.get_option("subscriptions") or []]
            for sub in scope:
                if not is_guid(sub):
                    raise InvalidInputError("subscriptions: %r is not a subscription ID (a GUID)" % sub)
            named = [parse_scale_set_entry(entry, auth_subscription) for entry in self.get_option("scale_sets") or []]
            groups = [validate_resource_group_name(str(group)) for group in self.get_option("resource_groups") or []]
            reader = FlexInventoryReader(clients_for, auth_subscription, scope, deadline)
            records = reader.read(named, groups)
        except (AzureFlexError,) + azure_error_types() as exc:
            error = to_flex_error(exc)
            if error is None:
                raise
            # The message already carries the ARM code and request id; the SDK's chained text would repeat it.
            raise AnsibleParserError("%s inventory: %s" % (self.NAME, describe_error(error))) from None
        wanted = self.get_option("power_states")
        if wanted:
            records = [record for record in records if record["azure_power_state"] in wanted]
        return records

    def populate(self, records):
        hostnames = self.get_option("hostnames") or ["name"]
        address_sources = self.get_option("ansible_host_source") or []
        strict = self.get_option("strict")
        seen, nameless = {}, []
        for record in records:
            host = first_available(record, hostnames)
            if not host:
                nameless.append(record["azure_vm_name"])
                continue
            if host in seen:
                raise AnsibleParserError(
                    "%s inventory: members %s and %s would both be host %s; change hostnames (V(id) is unique)"
                    % (self.NAME, seen[host], record["azure_vm_id"], host))
            seen[host] = record["azure_vm_id"]
            self.inventory.add_host(host)
            for name, value in record.items():
                self.inventory.set_variable(host, name, value)
            address = first_available(record, address_sources)
            if address:
                self.inventory.set_variable(host, "ansible_host", address)
            if self.get_option("default_groups"):
                for group in default_group_names(record):
                    self.inventory.add_group(group)
                    self.inventory.add_host(host, group=group)
            self._set_composite_vars(self.get_option("compose"), record, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), record, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), record, host, strict=strict)
        if nameless:
            self.display.warning("%s inventory: left out %d member(s) that have none of %s: %s" % (
                self.NAME, len(nameless), ", ".join(hostnames), ", ".join(nameless)))


def describe_error(error):
    """The message, then the ARM facts support needs: code, HTTP status, request id."""
    facts = []
    if error.code:
        facts.append("code %s" % error.code)
    if error.status:
        facts.append("HTTP status %s" % error.status)
    if error.request_id:
        facts.append("request id %s" % error.request_id)
    if error.correlation_id:
        facts.append("correlation id %s" % error.correlation_id)
    return "%s (%s)" % (error.msg, ", ".join(facts)) if facts else error.msg
