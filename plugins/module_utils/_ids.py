# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""Azure names and resource ids: validating them, taking ids apart, and quoting them for queries.

Anything that goes into a KQL query or an OData filter is validated against Azure's naming rules
first and then quoted as a string literal, so no input can change what a query means.
"""

from __future__ import annotations

import re

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import InvalidInputError


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
# VM and scale set names: 1-64 letters, digits, "_", "." or "-", not starting or ending with "." or
# "-". (Windows computer names are stricter, but the resource name is what is addressed here, and
# VMs created by a Flexible scale set are named "<set>_<8 hex digits>".)
_VM_NAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9_])?\Z")
# Resource groups: 1-90 Unicode letters or digits, "_", "-", ".", "(" or ")", not ending with ".".
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{0,89}[-\w()]\Z")
_SCALE_SET_ID = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<resource_group>[^/]+)"
    r"/providers/Microsoft\.Compute/virtualMachineScaleSets/(?P<name>[^/]+)/?\Z",
    re.IGNORECASE,
)
_RESOURCE_GROUP_IN_ID = re.compile(r"/resourceGroups/([^/]+)/", re.IGNORECASE)


def is_guid(value):
    """Return True for a GUID such as a subscription or tenant id."""
    return isinstance(value, str) and _GUID.match(value) is not None


def validate_vm_name(name, what="VM name"):
    """Return ``name`` if it is a valid VM (or scale set) resource name, else raise ``InvalidInputError``."""
    if not isinstance(name, str) or not _VM_NAME.match(name):
        raise InvalidInputError(
            "%s %r is not valid: use 1-64 letters, digits, '_', '.' or '-', not starting or ending with '.' or '-'"
            % (what, name))
    return name


def validate_resource_group_name(name):
    """Return ``name`` if it is a valid resource group name, else raise ``InvalidInputError``."""
    if not isinstance(name, str) or not _RESOURCE_GROUP.match(name):
        raise InvalidInputError(
            "Resource group name %r is not valid: use 1-90 letters, digits, '_', '-', '.', '(' or ')',"
            " not ending with '.'" % (name,))
    return name


def kql_quote(value):
    """Return ``value`` as a KQL single-quoted string literal.

    Backslash and quote are escaped, common whitespace escapes are spelled out, and any other
    control character is refused: none can occur in a valid Azure name or id, so one in the input
    means something is wrong.
    """
    if not isinstance(value, str):
        raise InvalidInputError("Only strings can be quoted for a Resource Graph query, got %r" % type(value).__name__)
    escaped = []
    for char in value:
        if char == "\\":
            escaped.append("\\\\")
        elif char == "'":
            escaped.append("\\'")
        elif char == "\n":
            escaped.append("\\n")
        elif char == "\r":
            escaped.append("\\r")
        elif char == "\t":
            escaped.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            raise InvalidInputError("Control character U+%04X cannot be used in a Resource Graph query" % ord(char))
        else:
            escaped.append(char)
    return "'%s'" % "".join(escaped)


def odata_quote(value):
    """Return ``value`` as an OData string literal (single quotes, embedded quotes doubled)."""
    return "'%s'" % str(value).replace("'", "''")


class ScaleSetRef:
    """A scale set address: subscription, resource group and name, all validated."""

    def __init__(self, subscription_id, resource_group, name):
        if not is_guid(subscription_id):
            raise InvalidInputError("The subscription in a scale set id must be a GUID, got %r" % (subscription_id,))
        self.subscription_id = subscription_id
        self.resource_group = validate_resource_group_name(resource_group)
        self.name = validate_vm_name(name, what="Scale set name")

    @property
    def id(self):
        return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachineScaleSets/%s" % (
            self.subscription_id, self.resource_group, self.name)

    @classmethod
    def parse(cls, scale_set_id):
        """Parse and validate a scale set resource id."""
        match = _SCALE_SET_ID.match(scale_set_id or "")
        if not match:
            raise InvalidInputError(
                "scale_set_id %r is not a scale set resource id (/subscriptions/<id>/resourceGroups/<group>"
                "/providers/Microsoft.Compute/virtualMachineScaleSets/<name>)" % (scale_set_id,))
        return cls(match.group("subscription"), match.group("resource_group"), match.group("name"))

    def __repr__(self):
        return "ScaleSetRef(%r)" % self.id


def resource_group_from_id(resource_id):
    """Return the resource group named in an ARM resource id, or None."""
    match = _RESOURCE_GROUP_IN_ID.search(resource_id or "")
    return match.group(1) if match else None
