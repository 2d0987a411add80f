"""ARM error bodies, as Azure Resource Manager sends them.

Every refusal the emulator makes is an ``ArmError``; the server turns it into
``{"error": {"code", "message", "target"?, "details"?}}`` with the right status.
"""

from __future__ import annotations


class ArmError(Exception):
    """An error response in ARM's format."""

    def __init__(self, status, code, message, target=None, details=None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.details = details
        self.headers = dict(headers or {})

    def body(self):
        error = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        if self.details:
            error["details"] = self.details
        return {"error": error}


def resource_type_and_name(resource_id):
    """'Microsoft.Compute/virtualMachines/vm1' style text used in ResourceNotFound messages."""
    parts = resource_id.strip("/").split("/")
    if "providers" not in [p.lower() for p in parts]:
        return parts[-1]
    idx = max(i for i, p in enumerate(parts) if p.lower() == "providers")
    tail = parts[idx + 1:]
    return "/".join(tail)


def not_found(resource_id, resource_group):
    return ArmError(
        404,
        "ResourceNotFound",
        "The Resource '%s' under resource group '%s' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        % (resource_type_and_name(resource_id), resource_group),
    )


def group_not_found(resource_group):
    return ArmError(404, "ResourceGroupNotFound", "Resource group '%s' could not be found." % resource_group)


def subscription_not_found(subscription_id):
    return ArmError(404, "SubscriptionNotFound", "The subscription '%s' could not be found." % subscription_id)


def bad_request(message, code="BadRequest", target=None):
    return ArmError(400, code, message, target=target)


def invalid_parameter(message, target=None):
    return ArmError(400, "InvalidParameter", message, target=target)


def operation_not_allowed(message):
    return ArmError(409, "OperationNotAllowed", message)


def conflict(code, message):
    return ArmError(409, code, message)
