#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: flex_instance_tags
short_description: Set or remove tags on members of a Flexible scale set
version_added: 0.1.0
description:
  - Sets or removes Azure tags on one, several or all member VMs of an Azure Virtual Machine Scale Set in
    Flexible orchestration mode, concurrently, in one task.
  - Each member's current tags are read from the compute API before deciding (Resource Graph can lag by a
    minute), and a member is only written to when its tags change.
  - Every write goes through the Azure Tags API (C(Microsoft.Resources/tags)), which changes the tags a member
    has at that moment, so tags written by anyone else (another task, the rolling roles, other automation, a
    policy) are never lost, even when they are written at the same time as this task's.
  - By default the tags in O(set_tags) are merged into the existing ones (a C(Merge)); O(remove_tags) removes
    tags by name (a C(Delete)); O(purge=true) makes the member's tags exactly O(set_tags) in one atomic
    C(Replace).
  - Tag names match case-insensitively, as in Azure; values are compared case-sensitively. Setting a tag
    whose name differs from an existing one only by case sets its value (Azure keeps the existing spelling
    of the name; RV(instances[].after) shows what Azure reports).
  - The option O(tags) does not set tags, it selects members by the tags they already have (as in every module
    of this collection). A task that could not change anything (no O(set_tags), O(remove_tags) or O(purge),
    or O(set_tags) that only repeats what the O(tags) filter already requires) is refused before any call.
  - The roles C(azure_flex.vmss.rolling_restart) and C(azure_flex.vmss.rolling_reimage) record their progress
    in Azure with this module (the tag C(azure-flex-rolling-run)).
author:
  - azure_flex.vmss maintainers (@azure-flex)
options:
  instances:
    description:
      - Names of the member VMs, or V(all). Required, so that tagging every member is always explicit.
    required: true
  set_tags:
    description:
      - Tags to add or update. Values are turned into strings (YAML V(true) becomes V("true")).
    type: dict
    default: {}
  remove_tags:
    description:
      - Names of tags to remove. Absent names are ignored.
      - Cannot be combined with O(purge=true).
    type: list
    elements: str
    default: []
  purge:
    description:
      - Remove every tag that is not in O(set_tags), so the member's tags become exactly O(set_tags).
      - With an empty O(set_tags) this removes every tag.
    type: bool
    default: false
extends_documentation_fragment:
  - azure_flex.vmss._azure_auth
  - azure_flex.vmss._selection
  - azure_flex.vmss._wait
  - azure_flex.vmss._attributes
  - azure_flex.vmss._attributes.ACTIONGROUP_ALL
attributes:
  check_mode:
    support: full
    details:
      - Reads the members and reports the tags each would get, without any write call.
  diff_mode:
    support: full
    details:
      - The diff shows the tags of each changed member before and after.
  idempotent:
    support: full
seealso:
  - module: azure_flex.vmss.flex_list_instances
  - module: azure_flex.vmss.flex_instance_action
notes:
  - The selection filter O(tags) chooses members by their tags; O(set_tags) and O(remove_tags) say what to
    change. A member named in O(instances) that a filter leaves out is reported with status C(skipped) and the
    reason, and the task warns.
  - Writing tags needs C(Microsoft.Resources/tags/write) on the members (the Tag Contributor role, or
    Contributor); reading them needs C(Microsoft.Compute/virtualMachines/read).
  - Azure allows at most 50 tags on a resource, tag names of at most 512 characters without any of
    C(<>%&\?/), and values of at most 256 characters; the module refuses other input before any call.
"""

EXAMPLES = r"""
- name: Mark every member of a scale set with the patch window it belongs to
  azure_flex.vmss.flex_instance_tags:
    resource_group: web-rg
    scale_set: web
    instances: all
    set_tags:
      patch-window: sunday

- name: Remove the rolling roles' progress mark from every member
  azure_flex.vmss.flex_instance_tags:
    resource_group: web-rg
    scale_set: web
    instances: all
    remove_tags: [azure-flex-rolling-run]

- name: Make the tags of two members exactly these
  azure_flex.vmss.flex_instance_tags:
    resource_group: web-rg
    scale_set: web
    instances: [web_1a2b3c4d, web_5e6f7a8b]
    set_tags:
      app: web
      tier: frontend
    purge: true

- name: Tag the members of fault domain 0 that run the canary build
  azure_flex.vmss.flex_instance_tags:
    resource_group: web-rg
    scale_set: web
    instances: all
    fault_domains: [0]
    tags:
      build: canary
    set_tags:
      canary-checked: "yes"
"""

RETURN = r"""
instances:
  description: One entry per selected member, in name order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: VM name (the instance ID in a Flexible scale set).
      type: str
      sample: web_1a2b3c4d
    id:
      description: Resource ID of the VM.
      type: str
    status:
      description:
        - C(changed) (tags written and the update finished), C(started) (written, not waited for),
          C(would_change) (check mode), C(skipped) (tags already as wanted, or see RV(instances[].reason)) or
          C(failed) (see RV(instances[].error)).
      type: str
      sample: changed
    reason:
      description:
        - Why a member was skipped although its tags differ (a member deleted since it was listed), or why a
          member named in O(instances) was left out by a filter.
      type: str
      returned: when such a member was skipped
      sample: no longer exists
    changed:
      description: Whether the member's tags changed (or would change, in check mode).
      type: bool
    before:
      description: Tags before.
      type: dict
      sample: {"app": "web"}
    after:
      description: Tags after, as Azure reported them once written (predicted in check mode; null when not waited for).
      type: dict
      sample: {"app": "web", "patch-window": "sunday"}
    error:
      description: For a failed member, the Azure error.
      type: dict
      returned: when the member failed
      contains:
        msg:
          description: Message.
          type: str
        code:
          description: ARM error code, such as C(ScopeLocked).
          type: str
        status:
          description: HTTP status, when the failure was an HTTP error.
          type: int
        request_id:
          description: The C(x-ms-request-id) of the failing response, for Azure support.
          type: str
counts:
  description:
    - How many members were selected, changed (or would be, in check mode, or were started), skipped and failed, and how
      many members named in O(instances) a filter left out (C(filtered_out), not counted in C(selected)).
  returned: always
  type: dict
  sample: {"selected": 12, "changed": 12, "skipped": 0, "failed": 0, "filtered_out": 0}
scale_set:
  description: The scale set.
  returned: always
  type: dict
  contains:
    id:
      description: Resource ID.
      type: str
    name:
      description: Name.
      type: str
    resource_group:
      description: Resource group.
      type: str
msg:
  description:
    - A one-line summary of the task (the members changed, skipped, failed and filtered out).
    - When the task fails, what failed.
  returned: always
  type: str
  sample: "update their tags: 12 of 12 member(s) changed, 0 skipped"
elapsed_seconds:
  description: Wall-clock time the task took.
  returned: always
  type: float
retries:
  description: Retries made on throttling (429) and transient errors during the task.
  returned: always
  type: dict
  sample: {"retries": 0, "throttled_responses": 0}
"""

import re

from ansible_collections.azure_flex.vmss.plugins.module_utils._criteria import (
    SelectionCriteria,
    selection_argument_spec,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    CODE_INVALID_INPUT,
    InvalidInputError,
    is_not_found,
    member_error,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._members import ABSENT
from ansible_collections.azure_flex.vmss.plugins.module_utils._module import WAIT_ARGUMENT_SPEC, AzureFlexModule
from ansible_collections.azure_flex.vmss.plugins.module_utils._tags import delete_tags, merge_tags, replace_tags

# Azure's limits for tags on a resource
# (https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources#limitations).
MAX_TAGS = 50
MAX_NAME_LENGTH = 512
MAX_VALUE_LENGTH = 256
_FORBIDDEN_NAME_CHARACTERS = re.compile(r"[<>%&\\?/]")


def argument_spec():
    spec = selection_argument_spec(instances_required=True)
    spec.update(WAIT_ARGUMENT_SPEC)
    spec.update(
        set_tags=dict(type="dict", default={}),
        remove_tags=dict(type="list", elements="str", default=[]),
        purge=dict(type="bool", default=False),
    )
    return spec


# -- decide (pure) ---------------------------------------------------------------------------------

def tag_value(value):
    """Azure tag values are strings; YAML turns "true" into a bool and "42" into an int."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def validate_changes(set_tags, remove_tags, purge, tags_filter=None):
    """Return ``(set_tags, remove_tags)`` normalised, or raise ``InvalidInputError`` before any call.

    ``tags_filter`` is the selection option ``tags``: users of other collections expect it to set tags, so a
    task that can change nothing because of it is refused with a pointer to ``set_tags``.
    """
    if not set_tags and not remove_tags and not purge:
        if tags_filter:
            raise InvalidInputError(
                "Nothing to change: the option tags only selects members by the tags they already have (here %s);"
                " to set tags on the members use set_tags (and remove_tags or purge=true to remove tags)"
                % _describe(tags_filter))
        raise InvalidInputError("Nothing to change: give set_tags (tags to set), remove_tags (tags to remove) or"
                                " purge=true")
    if purge and remove_tags:
        raise InvalidInputError("remove_tags cannot be combined with purge=true (purge keeps exactly set_tags)")
    wanted = {}
    for name, value in (set_tags or {}).items():
        name = str(name)
        _validate_name(name)
        value = tag_value(value)
        if len(value) > MAX_VALUE_LENGTH:
            raise InvalidInputError("The value of tag %r is %d characters long; Azure allows at most %d"
                                    % (name, len(value), MAX_VALUE_LENGTH))
        if any(existing.lower() == name.lower() for existing in wanted):
            raise InvalidInputError("set_tags names tag %r twice (tag names are case-insensitive)" % name)
        wanted[name] = value
    removed = []
    for name in remove_tags or []:
        name = str(name)
        if not name:
            raise InvalidInputError("remove_tags contains an empty tag name")
        if name.lower() in (key.lower() for key in wanted):
            raise InvalidInputError("Tag %r is both in set_tags and in remove_tags" % name)
        removed.append(name)
    if len(wanted) > MAX_TAGS:
        raise InvalidInputError("set_tags has %d tags; Azure allows at most %d on a resource" % (len(wanted), MAX_TAGS))
    if tags_filter and wanted and not removed and not purge and _required_by_filter(wanted, tags_filter):
        raise InvalidInputError(
            "Nothing could change: the option tags (%s) selects only members that already have every tag in set_tags"
            " (%s). The option tags selects members; to set tags on members, leave it out or filter on other tags"
            % (_describe(tags_filter), _describe(wanted)))
    return wanted, removed


def _required_by_filter(wanted, tags_filter):
    required = {str(name).lower(): tag_value(value) for name, value in tags_filter.items()}
    return all(required.get(name.lower()) == value for name, value in wanted.items())


def _describe(tags):
    return ", ".join("%s=%s" % (name, tag_value(value)) for name, value in sorted(tags.items()))


def _validate_name(name):
    if not name:
        raise InvalidInputError("set_tags contains an empty tag name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError("Tag name %r is %d characters long; Azure allows at most %d"
                                % (name[:40] + "...", len(name), MAX_NAME_LENGTH))
    if _FORBIDDEN_NAME_CHARACTERS.search(name):
        raise InvalidInputError("Tag name %r contains a character Azure does not allow in tag names (<>%%&\\?/)"
                                % name)


def desired_tags(current, set_tags, remove_tags, purge):
    """The tags a member should have, given its current tags and the requested changes.

    As the Tags API's Merge does, a name that differs from an existing one only by case keeps the existing
    spelling and takes the new value.
    """
    if purge:
        return dict(set_tags)
    removed = {name.lower() for name in remove_tags}
    result = {name: value for name, value in (current or {}).items() if name.lower() not in removed}
    spelling = {name.lower(): name for name in result}
    for name, value in set_tags.items():
        result[spelling.get(name.lower(), name)] = value
    return result


def tags_equal(left, right):
    """Same tags, comparing names as Azure does (case-insensitively) and values exactly."""
    left = {str(name).lower(): str(value) for name, value in (left or {}).items()}
    right = {str(name).lower(): str(value) for name, value in (right or {}).items()}
    return left == right


def plan(members, set_tags, remove_tags, purge):
    """Per member: the result entry so far (status ``act`` or ``skipped``)."""
    entries = []
    for member in members:
        before = dict(member.get("tags") or {})
        after = desired_tags(before, set_tags, remove_tags, purge)
        if tags_equal(before, after):
            entry = {"status": "skipped", "changed": False, "after": before}
        else:
            entry = {"status": "act", "changed": True, "after": after}
        if member.get("power_state") == ABSENT:
            entry = {"status": "skipped", "changed": False, "after": before, "reason": "no longer exists"}
        elif len(after) > MAX_TAGS:
            entry = {"status": "failed", "changed": False, "after": before,
                     "error": {"msg": "The member would have %d tags; Azure allows at most %d" % (len(after), MAX_TAGS),
                               "code": CODE_INVALID_INPUT}}
        entry.update(name=member["name"], id=member["id"], before=before)
        entries.append((entry, member))
    return entries


# -- read and act ----------------------------------------------------------------------------------

def write_tags(module, todo, set_tags, remove_tags, purge):
    """Per member: the tags Azure reports afterwards (None when not waited for). Each change is one Tags API
    request applied to the member's tags as they are then (``_tags``), never a stale copy written back."""
    clients, deadline, wait = module.clients, module.deadline, module.wait

    def write(pair):
        entry, member = pair
        if purge:
            return replace_tags(clients, member["id"], set_tags, deadline, wait=wait)
        after = entry["before"]
        if not _tags_include(entry["before"], set_tags):
            after = merge_tags(clients, member["id"], set_tags, deadline, wait=wait)
        if any(name.lower() in {key.lower() for key in entry["before"]} for name in remove_tags):
            after = delete_tags(clients, member["id"], remove_tags, deadline, current=after, wait=wait)
        return after

    return module.fan_out(write, todo)


def _tags_include(current, wanted):
    lowered = {str(name).lower(): value for name, value in (current or {}).items()}
    return all(lowered.get(name.lower()) == value for name, value in wanted.items())


def run(module):
    params = module.params
    set_tags, remove_tags = validate_changes(params["set_tags"], params["remove_tags"], params["purge"],
                                             params.get("tags"))
    criteria = SelectionCriteria.from_params(params)
    # Tags written seconds ago must count: Resource Graph can lag, the compute API does not.
    selection = module.selector().select_current(criteria)
    planned = plan(selection.members, set_tags, remove_tags, params["purge"])
    todo = [(entry, member) for entry, member in planned if entry["status"] == "act"]

    def write(todo):
        return write_tags(module, todo, set_tags, remove_tags, params["purge"])

    for outcome in module.mark_or_act(todo, write):
        entry = outcome.item[0]
        if not outcome.ok and is_not_found(outcome.error):
            entry.update(status="skipped", changed=False, after=entry["before"], reason="no longer exists")
        elif not outcome.ok:
            entry.update(status="failed", changed=False, after=entry["before"], error=member_error(outcome.error))
        elif outcome.result is None:
            entry.update(status="started", after=None)
        else:
            changed = not tags_equal(entry["before"], outcome.result)
            entry.update(status="changed" if changed else "skipped", after=outcome.result, changed=changed)

    entries = [entry for entry, _member in planned]
    return module.report_members(selection.scale_set, entries, "instances", "update their tags")


def main():
    AzureFlexModule(argument_spec=argument_spec(), supports_check_mode=True, selects_members=True).run(run)


if __name__ == "__main__":
    main()
