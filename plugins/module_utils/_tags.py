# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""Tag writes: the one place every change to a resource's tags goes through.

Every write is one request to the ARM Tags API at the resource's scope
(``PATCH {resource id}/providers/Microsoft.Resources/tags/default``), which applies a ``Merge``, ``Delete``
or ``Replace`` to the tags the resource has *at that moment*. Nothing is ever read, changed locally and
written back whole, so a tag another writer (another task, the rolling roles, other automation, a policy)
set in the meantime is never lost.

Why the Tags API and not a VM ``PATCH`` with ``If-Match``: both exist in Azure, but the Tags API is one
shape in every API version (the collection sends it itself, ``_arm_rest.ResourceTagsClient``, so it needs
no azure-mgmt-resource package), works for any resource type,
needs only ``Microsoft.Resources/tags/write`` (the Tag Contributor role), and makes a merge a single call
instead of a read, a conditional write and retries on 412. The compute SDKs spell ``If-Match`` differently
(``if_match=`` in azure-mgmt-compute 33, ``etag=``/``match_condition=`` in 39), and VMs of older API
versions return no etag at all.

Contract of the public functions (``clients`` is an ``AzureClients``, ``deadline`` a ``Deadline``):

* ``merge_tags(clients, resource_id, tags, deadline, wait=True)``: give the resource the tags in ``tags``
  (names case-insensitive, values strings), keeping every other tag. Returns the resource's tags afterwards
  as Azure reported them, or None when not waited for.
* ``delete_tags(clients, resource_id, names, deadline, current=None, wait=True)``: remove the tags named in
  ``names`` (case-insensitive), keeping every other tag. ``current`` (the tags read earlier) saves a read; a
  tag whose value another writer changed since then is still removed (the Delete is repeated with the value
  Azure reports, at most ``DELETE_ATTEMPTS`` times). Returns the tags afterwards, or None when not waited for.
* ``replace_tags(clients, resource_id, tags, deadline, wait=True)``: make the resource's tags exactly
  ``tags`` in one atomic request (the ``purge`` of flex_instance_tags).
* ``read_tags(clients, resource_id)``: the resource's tags now.

Errors are ``AzureFlexError`` with the ARM code, status and request id (a lock: ``ScopeLocked``; a
resource that no longer exists: 404). Throttling and transient failures are retried by the clients'
retry policy (``_resilience``), within the deadline.
"""

from __future__ import annotations

from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import as_rest_dict
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import AzureFlexError, azure_errors
from ansible_collections.azure_flex.vmss.plugins.module_utils._resilience import start_operation, wait_for_poller

MERGE = "Merge"
DELETE = "Delete"
REPLACE = "Replace"

CODE_TAGS_KEPT_CHANGING = "AzureFlexTagsKeptChanging"

# A Delete names each tag with the value it was last seen with, because Azure may delete "by name/value
# pair": a tag whose value changed in between survives, and is deleted again with its new value.
DELETE_ATTEMPTS = 3


def _tags_of(tags_resource):
    body = as_rest_dict(tags_resource) or {}
    return dict((body.get("properties") or {}).get("tags") or {})


def _patch(clients, resource_id, operation, tags, deadline, wait):
    description = "%s tags on %s" % (operation.lower(), resource_id.rsplit("/", 1)[-1])
    body = {"operation": operation, "properties": {"tags": dict(tags)}}
    poller = start_operation(lambda: clients.tags().tags.begin_update_at_scope(resource_id, body),
                             description)
    if wait:
        return _tags_of(wait_for_poller(poller, deadline, description))
    # Usually answered at once (200): then the result is there without waiting.
    with azure_errors("Failed to %s" % description):
        return _tags_of(poller.result(0)) if poller.done() else None


def read_tags(clients, resource_id):
    """The resource's tags now."""
    with azure_errors("Failed to read the tags of %s" % resource_id.rsplit("/", 1)[-1]):
        return _tags_of(clients.tags().tags.get_at_scope(resource_id))


def merge_tags(clients, resource_id, tags, deadline, wait=True):
    """Set ``tags`` on the resource in one Merge, keeping every other tag (see the module docstring)."""
    if not tags:
        return read_tags(clients, resource_id) if wait else None
    return _patch(clients, resource_id, MERGE, tags, deadline, wait)


def replace_tags(clients, resource_id, tags, deadline, wait=True):
    """Make the resource's tags exactly ``tags``, in one atomic Replace."""
    return _patch(clients, resource_id, REPLACE, tags, deadline, wait)


def delete_tags(clients, resource_id, names, deadline, current=None, wait=True):
    """Remove the tags called ``names`` (case-insensitively), keeping every other tag (see the module docstring)."""
    wanted = {str(name).lower() for name in names}
    tags = dict(current) if current is not None else read_tags(clients, resource_id)
    for _attempt in range(DELETE_ATTEMPTS):
        present = {name: value for name, value in tags.items() if name.lower() in wanted}
        if not present:
            return tags
        tags = _patch(clients, resource_id, DELETE, present, deadline, wait)
        if tags is None:  # not waited for: the Delete was sent once
            return None
    left = sorted(name for name in tags if name.lower() in wanted)
    if left:
        raise AzureFlexError("Tags %s of %s were still there after %d deletes: another writer keeps changing them"
                             % (", ".join(left), resource_id.rsplit("/", 1)[-1], DELETE_ATTEMPTS),
                             code=CODE_TAGS_KEPT_CHANGING)
    return tags
