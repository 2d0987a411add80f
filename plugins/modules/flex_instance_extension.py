#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: flex_instance_extension
short_description: Install, update or remove a VM extension on members of a Flexible scale set
version_added: 0.1.0
description:
  - Ensures that one VM extension is present with the given handler, version and settings, or absent, on one,
    several or all member VMs of an Azure Virtual Machine Scale Set in Flexible orchestration mode, concurrently,
    in one task.
  - Flexible scale sets have no scale-set VM extension API, so each member's extension is managed through the
    single-VM extension API.
  - Each member's extension is read first; a member whose extension already has the requested publisher, type,
    version, settings (and O(auto_upgrade_minor_version) and O(force_update_tag), when given) is left alone.
    An existing extension is updated with a PATCH, which changes only the fields that differ and keeps
    protected settings given earlier.
  - Azure never returns protected settings, so they cannot be compared. To apply new O(protected_settings) to
    members that already have the extension, change O(force_update_tag) (for example to a date or a version);
    members whose extension has another tag are updated, and a rerun with the same tag changes nothing.
  - Azure accepts extension changes only on running VMs. Members selected by V(all) or by a filter that are not
    running (deallocated, stopped, or on their way there or back) and need a change are skipped, with the reason,
    in check mode and in a real run alike. A member named in O(instances) is always attempted, so Azure's refusal
    (C(OperationNotAllowed)) fails that member; check mode predicts it (status C(would_fail)) and fails the task as
    the real run would.
  - Each member's power state is read from the compute API before deciding (Resource Graph can lag by a minute).
author:
  - azure_flex.vmss maintainers (@azure-flex)
options:
  name:
    description:
      - Name of the extension resource on each VM (for example V(HealthExtension)).
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the extension; V(absent) removes it.
    type: str
    default: present
    choices: [present, absent]
  publisher:
    description:
      - Publisher of the extension handler, such as V(Microsoft.ManagedServices). Required with O(state=present).
    type: str
  type:
    description:
      - Type of the extension handler, such as V(ApplicationHealthLinux). Required with O(state=present).
      - Azure does not allow changing the type of an existing extension; remove it first.
    type: str
  type_handler_version:
    description:
      - Version of the handler, such as V(2.0). Required with O(state=present).
    type: str
  settings:
    description:
      - Public settings of the extension. Compared with the settings Azure reports; when not given, the
        extension's settings are not managed.
    type: dict
  protected_settings:
    description:
      - Settings Azure stores encrypted and never returns (secrets). Sent on every create and update, but
        never compared; see O(force_update_tag).
    type: dict
  auto_upgrade_minor_version:
    description:
      - Let Azure use newer minor versions of the handler when the VM is redeployed. Not managed when not given.
    type: bool
  force_update_tag:
    description:
      - Any string; when it differs from the tag of a member's extension, the extension is updated (and re-run
        with the O(protected_settings) given), even if nothing else changed.
    type: str
  instances:
    description:
      - Names of the member VMs, or V(all). Required, so that changing every member is always explicit.
    required: true
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
      - Reads each member's extension, predicts the outcome, and makes no write call.
  diff_mode:
    support: full
    details:
      - The diff shows each changed member's extension before and after (null when absent), without protected
        settings.
  idempotent:
    support: full
    details:
      - Protected settings are not compared; change O(force_update_tag) to apply new ones.
seealso:
  - module: azure_flex.vmss.flex_instance_extension_info
  - module: azure_flex.vmss.flex_instance_action
notes:
  - With O(wait=false) the changes are only started; members then show as C(started) with no C(after).
"""

EXAMPLES = r"""
- name: Install the Application Health extension on every member before a rolling restart
  azure_flex.vmss.flex_instance_extension:
    resource_group: web-rg
    scale_set: web
    instances: all
    name: HealthExtension
    publisher: Microsoft.ManagedServices
    type: ApplicationHealthLinux
    type_handler_version: "2.0"
    auto_upgrade_minor_version: true
    settings:
      protocol: http
      port: 80
      requestPath: /health
      intervalInSeconds: 5
      numberOfProbes: 1

- name: Wait until every member reports healthy (application health is what a rolling restart gates on)
  azure_flex.vmss.flex_list_instances:
    resource_group: web-rg
    scale_set: web
    member_source: compute
    include_network: false
  register: web_health
  until: web_health.instances | rejectattr('health', 'equalto', 'healthy') | list | length == 0
  retries: 30
  delay: 10

# Then restart the members in batches, each batch waiting for health, with the collection's rolling_restart
# role, or batch by batch with azure_flex.vmss.flex_instance_action (action=restart, fault_domains=[0], ...).

- name: Rotate a secret held in protected settings (a new tag makes every member take it)
  azure_flex.vmss.flex_instance_extension:
    resource_group: web-rg
    scale_set: web
    instances: all
    name: CustomScript
    publisher: Microsoft.Azure.Extensions
    type: CustomScript
    type_handler_version: "2.1"
    protected_settings:
      commandToExecute: "/opt/app/configure --token {{ app_token }}"
    force_update_tag: "token-2024-06"

- name: Remove the extension from two members
  azure_flex.vmss.flex_instance_extension:
    resource_group: web-rg
    scale_set: web
    instances: [web_1a2b3c4d, web_5e6f7a8b]
    name: CustomScript
    state: absent
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
      description: Power state of the member when it was selected (C(running), C(deallocated), ...).
      type: str
      sample: running
    operation:
      description: C(create), C(update), C(delete), or C(none) when nothing needs to change.
      type: str
      sample: create
    differences:
      description: For C(update), the options whose values differ from the member's extension.
      type: list
      elements: str
      sample: [settings]
    status:
      description:
        - C(changed) (done), C(started) (not waited for), C(would_change) (check mode), C(skipped) (nothing to
          do, or not running, see RV(instances[].reason)), C(failed) (see RV(instances[].error)) or, in check
          mode, C(would_fail) (a named member that is not running, which Azure would refuse; see
          RV(instances[].error)).
      type: str
      sample: changed
    changed:
      description: Whether the extension was (or would be, in check mode) changed on this member.
      type: bool
    reason:
      description: Why a member was skipped.
      type: str
      sample: already present with the requested settings
    before:
      description: The member's extension before the task (null when absent).
      type: dict
      contains:
        name:
          description: Name of the extension resource.
          type: str
        id:
          description: Resource ID of the extension.
          type: str
        publisher:
          description: Handler publisher.
          type: str
        type:
          description: Handler type.
          type: str
        type_handler_version:
          description: Handler version.
          type: str
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
          description: Provisioning state, such as C(Succeeded).
          type: str
    after:
      description:
        - The member's extension after the task, as Azure reported it (predicted in check mode); null when absent,
          or when not waited for. Same keys as RV(instances[].before).
      type: dict
    error:
      description: For a failed member, the Azure error.
      type: dict
      returned: when the member failed
      contains:
        msg:
          description: Message.
          type: str
        code:
          description: ARM error code, such as C(OperationNotAllowed) for a member that is not running.
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
    - A one-line summary of the task (what was done and the members changed, skipped, failed and filtered out).
    - When the task fails, what failed.
  returned: always
  type: str
  sample: "apply extension HealthExtension: 12 of 12 member(s) changed, 0 skipped"
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

from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import as_rest_dict
from ansible_collections.azure_flex.vmss.plugins.module_utils._criteria import (
    SelectionCriteria,
    selection_argument_spec,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import member_error
from ansible_collections.azure_flex.vmss.plugins.module_utils._extensions import (
    create_body,
    differences,
    extension_from_rest,
    read_extension,
    update_body,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import validate_vm_name
from ansible_collections.azure_flex.vmss.plugins.module_utils._members import ABSENT
from ansible_collections.azure_flex.vmss.plugins.module_utils._module import WAIT_ARGUMENT_SPEC, AzureFlexModule

DESIRED_OPTIONS = ("publisher", "type", "type_handler_version", "settings", "protected_settings",
                   "auto_upgrade_minor_version", "force_update_tag")


def argument_spec():
    spec = selection_argument_spec(instances_required=True)
    spec.update(WAIT_ARGUMENT_SPEC)
    spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        publisher=dict(type="str"),
        type=dict(type="str"),
        type_handler_version=dict(type="str"),
        settings=dict(type="dict"),
        protected_settings=dict(type="dict", no_log=True),
        auto_upgrade_minor_version=dict(type="bool"),
        force_update_tag=dict(type="str"),
    )
    return spec


# -- decide --------------------------------------------------------------------------------------

NOT_RUNNING_REFUSAL = "Cannot modify extensions of a VM that is not running (power state %s); Azure refuses it"


def plan_member(member, current, state, desired, named=False, check_mode=False):
    """The result entry for one member (``current``: ``extension_from_rest`` dict or None), before acting.

    The same decision in check mode and in a real run: a member that needs a change but is not running is
    skipped when selected implicitly; named, it is attempted (check mode predicts Azure's refusal).
    """
    entry = _planned_change(member, current, state, desired)
    power_state = member.get("power_state")
    if entry["status"] != "act" or power_state == "running":
        return entry
    if power_state == ABSENT:
        entry.update(status="skipped", changed=False, after=current, reason="no longer exists")
    elif not named:
        entry.update(status="skipped", changed=False, after=current,
                     reason="not running (power state %s): Azure changes extensions of running VMs only" % power_state)
    elif check_mode:
        entry.update(status="would_fail", changed=False, after=current,
                     error={"msg": NOT_RUNNING_REFUSAL % power_state, "code": "OperationNotAllowed"})
    return entry


def _planned_change(member, current, state, desired):
    entry = {"name": member["name"], "id": member["id"], "power_state": member["power_state"],
             "before": current, "after": current, "differences": [], "changed": False, "status": "skipped",
             "operation": "none"}
    if state == "absent":
        if current is None:
            entry["reason"] = "already absent"
        else:
            entry.update(operation="delete", after=None)
    elif current is None:
        entry.update(operation="create", after=predicted(None, desired))
    else:
        changed = differences(current, desired)
        if changed:
            entry.update(operation="update", differences=changed, after=predicted(current, desired))
        else:
            entry["reason"] = "already present with the requested settings"
    if entry["operation"] != "none":
        entry.update(changed=True, status="act")
    return entry


def predicted(current, desired):
    """The extension as it should look once created or updated (for check mode and diff)."""
    after = dict(current or {"name": desired["name"], "id": None, "publisher": None, "type": None,
                             "type_handler_version": None, "auto_upgrade_minor_version": None,
                             "enable_automatic_upgrade": None, "force_update_tag": None, "settings": {}})
    for option in DESIRED_OPTIONS:
        if option != "protected_settings" and desired.get(option) is not None:
            after[option] = desired[option]
    after["provisioning_state"] = "Succeeded"
    after.pop("statuses", None)
    after.pop("substatuses", None)
    return after


# -- read, act -----------------------------------------------------------------------------------

def read_current(module, members, extension_name):
    """Per member: ``(member, current extension or None)``, or the member's read error."""
    compute = module.clients.compute()

    def read(member):
        raw = read_extension(compute, member["resource_group"], member["name"], extension_name)
        return None if raw is None else extension_from_rest(raw)

    return module.fan_out(read, members)


def act(module, pairs, desired):
    """Create, update or delete on each member concurrently; per member ``(finished, after)`` or an error."""
    compute = module.clients.compute()
    extensions = compute.virtual_machine_extensions
    name = desired["name"]

    def change(pair):
        entry, member = pair
        rg, vm = member["resource_group"], member["name"]
        operation = entry["operation"]

        def begin():
            if operation == "create":
                return extensions.begin_create_or_update(rg, vm, name, create_body(desired, member["location"]))
            if operation == "update":
                return extensions.begin_update(rg, vm, name, update_body(desired, entry["differences"]))
            return extensions.begin_delete(rg, vm, name)

        finished, result = module.run_operation(begin, "%s extension %s on VM %s" % (operation, name, vm))
        if not finished or operation == "delete":
            return finished, None
        return finished, extension_from_rest(as_rest_dict(result)) if result is not None else None

    return module.fan_out(change, pairs)


# -- the task ------------------------------------------------------------------------------------

def desired_from(params):
    desired = {option: params.get(option) for option in DESIRED_OPTIONS}
    desired["name"] = validate_vm_name(params["name"], what="Extension name")
    return desired


def run(module):
    params = module.params
    desired = desired_from(params)
    criteria = SelectionCriteria.from_params(params)
    named = criteria.instances is not None
    # Power states decide what is attempted: read them now, Resource Graph can lag by a minute.
    selection = module.selector().select_current(criteria)
    members = sorted(selection.members, key=lambda member: (member["name"] or "").lower())

    planned = []
    for outcome in read_current(module, members, desired["name"]):
        member = outcome.item
        if outcome.ok:
            planned.append((plan_member(member, outcome.result, params["state"], desired, named=named,
                                        check_mode=module.check_mode), member))
        elif member.get("power_state") == ABSENT:
            planned.append((dict(_planned_change(member, None, "absent", desired), reason="no longer exists"),
                            member))
        else:
            entry = {"name": member["name"], "id": member["id"], "power_state": member["power_state"],
                     "before": None, "after": None, "differences": [], "changed": False, "operation": "none"}
            entry.update(status="failed", error=member_error(outcome.error))
            planned.append((entry, member))
    todo = [(entry, member) for entry, member in planned if entry["status"] == "act"]

    for outcome in module.mark_or_act(todo, lambda todo: act(module, todo, desired)):
        entry = outcome.item[0]
        if not outcome.ok:
            entry.update(status="failed", changed=False, after=entry["before"], error=member_error(outcome.error))
            continue
        finished, after = outcome.result
        entry["status"] = "changed" if finished else "started"
        entry["after"] = after if finished else None
    failed_to = "%s extension %s" % ("remove" if params["state"] == "absent" else "apply", desired["name"])
    return module.report_members(selection.scale_set, [entry for entry, _member in planned], "extensions", failed_to)


def main():
    module = AzureFlexModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        selects_members=True,
        required_if=[("state", "present", ("publisher", "type", "type_handler_version"))],
    )
    module.run(run)


if __name__ == "__main__":
    main()
