#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: flex_instance_extension_info
short_description: List the VM extensions of members of a Flexible scale set, with their status
version_added: 0.1.0
description:
  - Lists the VM extensions installed on one, several or all member VMs of an Azure Virtual Machine Scale Set
    in Flexible orchestration mode, with each extension's provisioning state and the statuses its handler
    reports (the extension instance view).
  - One request per member, made in parallel (see O(max_parallel)). Protected settings are never returned by
    Azure, so they never appear.
author:
  - azure_flex.vmss maintainers (@azure-flex)
options:
  name:
    description:
      - Only the extension of this name. By default every extension of each member is listed.
    type: str
  instances:
    description:
      - Names of the member VMs, or V(all) (the default).
extends_documentation_fragment:
  - azure_flex.vmss._azure_auth
  - azure_flex.vmss._selection
  - azure_flex.vmss._wait.READ
  - azure_flex.vmss._attributes
  - azure_flex.vmss._attributes.ACTIONGROUP_ALL
  - azure_flex.vmss._attributes.INFO_MODULE
seealso:
  - module: azure_flex.vmss.flex_instance_extension
"""

EXAMPLES = r"""
- name: List the extensions of every member
  azure_flex.vmss.flex_instance_extension_info:
    resource_group: web-rg
    scale_set: web
  register: web_extensions

- name: Only the Application Health extension, on the running members
  azure_flex.vmss.flex_instance_extension_info:
    resource_group: web-rg
    scale_set: web
    name: HealthExtension
    power_states: [running]
  register: health_extension

- name: Names of the running members that lack it
  ansible.builtin.debug:
    msg: "{{ health_extension.instances | selectattr('extensions', 'equalto', []) | map(attribute='name') | list }}"
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
    power_state:
      description: Power state of the member when it was selected.
      type: str
      sample: running
    status:
      description: C(failed) when the member's extensions could not be read (the task then fails, after reading the
        others); absent otherwise.
      type: str
    error:
      description: Why the member's extensions could not be read (C(msg), ARM C(code), C(status), C(request_id)).
      type: dict
    extensions:
      description: The member's extensions (only O(name) when given), sorted by name; V(null) when they could not be
        read.
      type: list
      elements: dict
      contains:
        name:
          description: Name of the extension resource.
          type: str
          sample: HealthExtension
        id:
          description: Resource ID of the extension.
          type: str
        publisher:
          description: Handler publisher.
          type: str
          sample: Microsoft.ManagedServices
        type:
          description: Handler type.
          type: str
          sample: ApplicationHealthLinux
        type_handler_version:
          description: Handler version.
          type: str
          sample: "2.0"
        auto_upgrade_minor_version:
          description: Whether minor versions are upgraded automatically.
          type: bool
        enable_automatic_upgrade:
          description: Whether Azure upgrades the extension automatically when a new version is published.
          type: bool
        force_update_tag:
          description: The force update tag.
          type: str
        settings:
          description: Public settings.
          type: dict
        provisioning_state:
          description: Provisioning state, such as C(Succeeded), C(Creating) or C(Failed).
          type: str
        statuses:
          description: Statuses the extension handler reports (instance view).
          type: list
          elements: dict
          contains:
            code:
              description: Status code, such as C(ProvisioningState/succeeded).
              type: str
            level:
              description: C(Info), C(Warning) or C(Error).
              type: str
            display_status:
              description: Short text.
              type: str
            message:
              description: Detailed message, if any.
              type: str
            time:
              description: When the status was reported, if known.
              type: str
        substatuses:
          description: Sub-statuses the handler reports (same keys as RV(instances[].extensions[].statuses)).
          type: list
          elements: dict
counts:
  description:
    - Members listed (C(instances)), and how many members have each extension (by extension name, C(extensions)).
    - As in every module that lists or acts on members, C(selected) (the members listed), C(changed) and C(failed)
      (always 0), C(skipped) (every member listed, as nothing is changed) and C(filtered_out) (members named in
      O(instances) a filter left out).
  returned: always
  type: dict
  sample: {"instances": 12, "extensions": {"HealthExtension": 12}, "selected": 12, "changed": 0, "skipped": 12,
           "failed": 0, "filtered_out": 0}
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
filtered_out:
  description:
    - The members named in O(instances) that a filter left out, each with the reason (C(name), C(id),
      C(status=skipped), C(changed=false), C(reason)); the task also warns about them.
  returned: always
  type: list
  elements: dict
msg:
  description:
    - A one-line summary of the task (the members listed and filtered out).
    - When the task fails, what failed.
  returned: always
  type: str
  sample: "read extensions: 12 member(s) listed"
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

from ansible_collections.azure_flex.vmss.plugins.module_utils._criteria import (
    SelectionCriteria,
    selection_argument_spec,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import member_error
from ansible_collections.azure_flex.vmss.plugins.module_utils._extensions import extension_from_rest, list_extensions
from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import validate_vm_name
from ansible_collections.azure_flex.vmss.plugins.module_utils._module import (
    READ_ARGUMENT_SPEC,
    AzureFlexModule,
    listing_line,
    member_counts,
    raise_member_failures,
)


def argument_spec():
    spec = selection_argument_spec()
    spec.update(READ_ARGUMENT_SPEC)
    spec.update(name=dict(type="str"))
    return spec


def member_extensions(raw_extensions, name=None):
    """The member's extensions as result dicts, sorted by name, only ``name`` when given (case-insensitive)."""
    extensions = [extension_from_rest(raw) for raw in raw_extensions]
    if name is not None:
        extensions = [extension for extension in extensions if str(extension["name"] or "").lower() == name.lower()]
    return sorted(extensions, key=lambda extension: str(extension["name"] or "").lower())


def run(module):
    params = module.params
    name = validate_vm_name(params["name"], what="Extension name") if params.get("name") else None
    selection = module.selector().select(SelectionCriteria.from_params(params))
    members = sorted(selection.members, key=lambda member: (member["name"] or "").lower())
    compute = module.clients.compute()

    def read(member):
        return member_extensions(list_extensions(compute, member["resource_group"], member["name"]), name)

    instances = []
    per_extension = {}
    for outcome in module.fan_out(read, members):
        member = outcome.item
        entry = {"name": member["name"], "id": member["id"], "power_state": member["power_state"],
                 "extensions": outcome.result if outcome.ok else None}
        if not outcome.ok:
            # One member's refused read does not hide the others': it is reported with its error, and fails the task.
            entry.update(status="failed", error=member_error(outcome.error))
        instances.append(entry)
        for extension in outcome.result if outcome.ok else ():
            per_extension[extension["name"]] = per_extension.get(extension["name"], 0) + 1
    filtered_out = module.selection_outcome()
    counts = member_counts(instances, filtered_out)
    counts.update(instances=len(instances), extensions=per_extension)
    result = module.common_result(listing_line("read extensions", counts), selection.scale_set, instances=instances,
                                  counts=counts, filtered_out=filtered_out)
    raise_member_failures(result, instances, "read their extensions")
    return result


def main():
    AzureFlexModule(argument_spec=argument_spec(), supports_check_mode=True, selects_members=True).run(run)


if __name__ == "__main__":
    main()
