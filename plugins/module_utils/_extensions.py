# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""VM extensions on the members of a Flexible scale set.

Flexible scale sets have no scale-set VM extension API: each member is an ordinary VM, and its
extensions are ``Microsoft.Compute/virtualMachines/extensions`` resources. This file reads them,
turns them into the plain dicts the modules report (snake_case; never the protected settings, which
Azure does not return), and decides what a desired extension changes on one member.
"""

from __future__ import annotations

from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import as_rest_dict
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import azure_errors
from ansible_collections.azure_flex.vmss.plugins.module_utils._members import enum_text

# Fields the user controls, as (option name, REST property name). Publisher and type identify the
# handler; Azure refuses to change the type of an existing extension.
IDENTITY_FIELDS = (("publisher", "publisher"), ("type", "type"))
UPDATABLE_FIELDS = (
    ("type_handler_version", "typeHandlerVersion"),
    ("settings", "settings"),
    ("auto_upgrade_minor_version", "autoUpgradeMinorVersion"),
    ("force_update_tag", "forceUpdateTag"),
)
CASE_INSENSITIVE_FIELDS = frozenset(["publisher", "type"])


def status_from_rest(status):
    """An ``InstanceViewStatus`` in REST layout as a snake_case dict."""
    status = status or {}
    return {
        "code": status.get("code"),
        "level": enum_text(status.get("level")),
        "display_status": status.get("displayStatus"),
        "message": status.get("message"),
        "time": enum_text(status.get("time")),
    }


def extension_from_rest(extension):
    """Summarise an extension (REST layout) for results and diffs. Protected settings never appear."""
    properties = extension.get("properties") or {}
    view = properties.get("instanceView") or None
    summary = {
        "name": extension.get("name"),
        "id": extension.get("id"),
        "publisher": properties.get("publisher"),
        "type": properties.get("type"),
        "type_handler_version": properties.get("typeHandlerVersion"),
        "auto_upgrade_minor_version": properties.get("autoUpgradeMinorVersion"),
        "enable_automatic_upgrade": properties.get("enableAutomaticUpgrade"),
        "force_update_tag": properties.get("forceUpdateTag"),
        "settings": properties.get("settings") if properties.get("settings") is not None else {},
        "provisioning_state": enum_text(properties.get("provisioningState")),
    }
    if view is not None:
        summary["statuses"] = [status_from_rest(status) for status in view.get("statuses") or []]
        summary["substatuses"] = [status_from_rest(status) for status in view.get("substatuses") or []]
    return summary


def _same(field, current, wanted):
    if field in CASE_INSENSITIVE_FIELDS:
        return str(current or "").lower() == str(wanted or "").lower()
    if field == "settings":
        return (current or {}) == (wanted or {})
    return current == wanted


def differences(current, desired):
    """The option names whose desired value differs from ``current`` (an ``extension_from_rest`` dict).

    ``desired`` maps option names to values; an option set to None is not managed and never differs.
    Protected settings cannot be compared (Azure never returns them): a change to them is applied by
    changing ``force_update_tag``, which is compared like any other field.
    """
    changed = []
    for option, _rest in IDENTITY_FIELDS + UPDATABLE_FIELDS:
        wanted = desired.get(option)
        if wanted is not None and not _same(option, current.get(option), wanted):
            changed.append(option)
    return changed


def create_body(desired, location):
    """The PUT body that creates the extension."""
    properties = {rest: desired[option] for option, rest in IDENTITY_FIELDS + UPDATABLE_FIELDS
                  if desired.get(option) is not None}
    if desired.get("protected_settings") is not None:
        properties["protectedSettings"] = desired["protected_settings"]
    return {"location": location, "properties": properties}


def update_body(desired, changed):
    """The PATCH body that applies ``changed`` fields (and the protected settings, when given).

    PATCH, not PUT, so that what the task does not manage (protected settings set earlier, fields the
    task leaves out) is kept.
    """
    properties = {rest: desired[option] for option, rest in UPDATABLE_FIELDS if option in changed}
    if desired.get("protected_settings") is not None:
        properties["protectedSettings"] = desired["protected_settings"]
    return {"properties": properties}


def read_extension(compute, resource_group, vm_name, extension_name):
    """The extension in REST layout, or None when the VM has no extension of that name.

    Read from the VM's extension list, not with a GET of the extension: Azure answers both a missing VM and a
    missing extension of a GET with 404 ``ResourceNotFound``, while the list answers 404 only for a missing VM (or
    group), which then fails the member instead of reading as "extension absent".
    """
    for extension in list_extensions(compute, resource_group, vm_name, expand=None):
        if str(extension.get("name") or "").lower() == extension_name.lower():
            return extension
    return None


def list_extensions(compute, resource_group, vm_name, expand="instanceView"):
    """Every extension of a VM, with its instance view unless ``expand`` is None, in REST layout (the list API is not
    paged)."""
    with azure_errors("Failed to list the extensions of VM %s" % vm_name):
        result = as_rest_dict(compute.virtual_machine_extensions.list(resource_group, vm_name, expand=expand))
    return list((result or {}).get("value") or [])
