# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This doc fragment is PRIVATE to the azure_flex.vmss collection. It can change or disappear in
# any release; do not use it from other collections.

from __future__ import annotations


class ModuleDocFragment:
    """Scale set and member selection options (argument spec: module_utils/_criteria.py)."""

    DOCUMENTATION = r"""
options:
  resource_group:
    description:
      - Resource group of the scale set. Use with O(scale_set).
    type: str
  scale_set:
    description:
      - Name of the scale set. Use with O(resource_group), or give O(scale_set_id) instead.
      - The scale set must use Flexible orchestration. For Uniform scale sets use
        M(azure.azcollection.azure_rm_virtualmachinescalesetinstance).
    type: str
  scale_set_id:
    description:
      - Resource ID of the scale set, instead of O(resource_group) and O(scale_set).
      - Must be in the subscription the task authenticates to (see O(subscription_id)).
    type: str
  instances:
    description:
      - Names of the member VMs to act on (in a Flexible scale set the instance ID is the VM name), or the
        single word V(all) for every member.
      - A named VM that does not exist, or is not a member of the scale set, fails the task before anything
        is changed.
      - The filters (O(power_states), O(zones), O(fault_domains), O(tags)) then narrow the selection. A named
        member a filter leaves out is reported (with the reason) and warned about, never dropped silently.
      - An empty list is an error (a list computed in the playbook that came out empty would otherwise do
        nothing silently); skip the task with C(when) instead.
    type: list
    elements: str
  power_states:
    description:
      - Keep only members in one of these power states.
    type: list
    elements: str
    choices: [running, stopped, deallocated, starting, stopping, deallocating, unknown]
  zones:
    description:
      - Keep only members in one of these availability zones (for example V("1")).
    type: list
    elements: str
  fault_domains:
    description:
      - Keep only members in one of these platform fault domains.
    type: list
    elements: int
  tags:
    description:
      - Keep only members carrying all of these tags with these values. This option selects; it does not set
        tags (M(azure_flex.vmss.flex_instance_tags) sets them with its O(azure_flex.vmss.flex_instance_tags#module:set_tags)).
      - Tag names match case-insensitively, values case-sensitively.
      - A filter that selects none of the members makes the task warn.
    type: dict
  member_source:
    description:
      - Where the list of members comes from.
      - V(resource_graph) asks Azure Resource Graph, with one request per 1,000 members. Its data can be about
        a minute old and has no application health. Instances named in O(instances) but missing from it are
        confirmed with the compute API, and when it lists another number of members than the scale set's
        capacity, the listing is corrected from the compute API (with a warning).
      - V(compute) lists the VMs with the compute API and reads the instance view of each VM (in parallel, see
        O(max_parallel)). The data is current and includes application health, at the cost of one request per
        member.
    type: str
    default: resource_graph
    choices: [resource_graph, compute]
"""
