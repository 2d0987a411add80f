# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""What a task selects: the selection options, validated, and the filters they make.

Every module takes the same options (documented by the ``selection`` doc fragment): a Flexible
scale set (by resource group and name, or by id), optionally a list of VM names, and filters on
power state, zone, fault domain and tags. ``SelectionCriteria`` holds them validated; the filters
decide which member dicts (see ``_members``) pass, and say in words why one does not.
"""

from __future__ import annotations

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import ScaleSetRef, validate_vm_name
from ansible_collections.azure_flex.vmss.plugins.module_utils._members import ABSENT, POWER_STATES


MEMBER_SOURCES = ("resource_graph", "compute")
ALL_INSTANCES = "all"

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
