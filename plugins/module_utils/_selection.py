# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""The selector: which scale set, and which of its member VMs, a task is about, read from Azure.

``ScaleSetSelector`` resolves ``SelectionCriteria`` (``_criteria``) against Azure: it reads the scale set
(refusing a Uniform one), lists its members and applies the filters.

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
"""

from __future__ import annotations

from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import as_rest_dict
from ansible_collections.azure_flex.vmss.plugins.module_utils._criteria import filter_members, filter_reason
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    AzureFlexError,
    InvalidInputError,
    azure_errors,
    is_not_found,
    arm_error_code,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._fanout import DEFAULT_MAX_PARALLEL, run_bounded
from ansible_collections.azure_flex.vmss.plugins.module_utils._graph import member_query, read_resource_graph
from ansible_collections.azure_flex.vmss.plugins.module_utils._ids import ScaleSetRef, odata_quote, resource_group_from_id
from ansible_collections.azure_flex.vmss.plugins.module_utils._members import (
    ABSENT,
    member_from_graph_row,
    member_from_vm,
    scale_set_from_rest,
)


CODE_UNIFORM_SCALE_SET = "AzureFlexUniformScaleSet"
CODE_NOT_A_MEMBER = "AzureFlexNotAScaleSetMember"

UNIFORM_ALTERNATIVE = "azure.azcollection.azure_rm_virtualmachinescalesetinstance"


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
            rows = read_resource_graph(self.clients.resource_graph(), self.subscription_id, member_query(scale_set["id"]),
                                       "list the members of scale set %s" % scale_set["name"])
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
