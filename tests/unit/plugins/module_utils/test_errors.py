# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from azure.core import PipelineClient
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.rest import HttpRequest
from azure.identity import CredentialUnavailableError
from azure.mgmt.core.exceptions import ARMErrorFormat

from ansible_collections.azure_flex.vmss.plugins.module_utils import _errors
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    AzureFlexError,
    OperationTimeoutError,
    arm_error_code,
    azure_errors,
    is_not_found,
    to_flex_error,
)
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import BASE_URL, arm_error, reply, scripted_transport


def http_response(status, body=None, headers=None):
    """A real azure-core response, produced by sending a request through a scripted transport."""
    transport, _adapter = scripted_transport([reply(status, body, headers)])
    client = PipelineClient(BASE_URL, transport=transport, policies=[])
    return client.send_request(HttpRequest("GET", BASE_URL + "/subscriptions/x"))


def sdk_error(error_class, status, body=None, headers=None):
    """Raise and catch ``error_class`` the way generated SDK operations build it."""
    return error_class(response=http_response(status, body, headers), error_format=ARMErrorFormat)


def test_http_error_reports_arm_code_status_and_ids():
    error = sdk_error(ResourceNotFoundError, 404,
                      arm_error("ResourceGroupNotFound", "Resource group 'rg1' could not be found."),
                      {"x-ms-request-id": "req-1", "x-ms-correlation-request-id": "corr-1"})

    result = to_flex_error(error).to_dict()

    assert result == {
        "msg": "Resource group 'rg1' could not be found.",
        "code": "ResourceGroupNotFound",
        "status": 404,
        "request_id": "req-1",
        "correlation_id": "corr-1",
    }


def test_every_409_is_told_apart_by_code_not_class():
    locked = sdk_error(ResourceExistsError, 409, arm_error("ScopeLocked", "The scope is locked."))
    wrong_state = sdk_error(ResourceExistsError, 409, arm_error("OperationNotAllowed", "Operation not allowed."))

    assert type(locked) is type(wrong_state)
    assert arm_error_code(locked) == "ScopeLocked"
    assert arm_error_code(wrong_state) == "OperationNotAllowed"
    assert to_flex_error(locked).code == "ScopeLocked"


def test_error_details_are_kept():
    body = arm_error("OperationNotAllowed", "Too many requests.",
                     details=[{"code": "TooManyRequests", "target": "HighCostGet30Min", "message": "{}"}])

    result = to_flex_error(sdk_error(HttpResponseError, 429, body)).to_dict()

    assert result["details"] == [{"code": "TooManyRequests", "message": "{}", "target": "HighCostGet30Min"}]


def test_error_without_arm_body_still_reports_status():
    result = to_flex_error(sdk_error(HttpResponseError, 502, b"<html>bad gateway</html>")).to_dict()

    assert result["status"] == 502
    assert result["code"] is None
    assert result["msg"]


def test_failed_long_running_operation_reports_its_code_without_the_poll_status():
    body = {"status": "Failed", "error": {"code": "OperationPreempted", "message": "preempted"}}
    error = sdk_error(HttpResponseError, 200, body, {"x-ms-request-id": "poll-1"})

    result = to_flex_error(error).to_dict()

    assert (result["status"], result["request_id"]) == (None, "poll-1")


def test_action_prefixes_the_message():
    error = sdk_error(ResourceNotFoundError, 404, arm_error("ResourceNotFound", "VM gone."))

    assert to_flex_error(error, "Failed to restart vm1").msg == "Failed to restart vm1: VM gone."


def test_authentication_error_without_code_is_labelled():
    result = to_flex_error(ClientAuthenticationError("token rejected")).to_dict()

    assert result["code"] == _errors.CODE_AUTHENTICATION_FAILED
    assert result["msg"] == "token rejected"


def test_a_token_endpoint_that_fails_is_reported_with_its_status_not_as_a_rejected_credential():
    """F8: a 503 storm on the token endpoint used to read AuthenticationFailed with status null."""
    error = ClientAuthenticationError(message="Authentication failed: HTTP Error: 503")
    # What MSAL raises (MsalServiceError) for a 503 answer is the cause azure-identity chains.
    error.__cause__ = RuntimeError("HTTP Error: 503")
    error.message = "Authentication failed"
    result = to_flex_error(error).to_dict()

    assert result["code"] == _errors.CODE_TOKEN_ENDPOINT_UNAVAILABLE
    assert result["status"] == 503
    assert "token endpoint answered HTTP 503 after retries" in result["msg"]
    assert "the credential was not rejected" in result["msg"]


def test_a_token_endpoint_refusal_keeps_authentication_failed_with_its_status():
    error = ClientAuthenticationError(message="Authentication failed: HTTP Error: 400")

    assert (to_flex_error(error).code, to_flex_error(error).status) == (_errors.CODE_AUTHENTICATION_FAILED, 400)


def test_credential_unavailable_is_labelled():
    result = to_flex_error(CredentialUnavailableError("Azure CLI not found on path")).to_dict()

    assert result["code"] == _errors.CODE_CREDENTIAL_UNAVAILABLE
    assert "Azure CLI not found" in result["msg"]


@pytest.mark.parametrize("error, code", [
    (ServiceRequestError("connection refused"), _errors.CODE_CONNECTION_FAILED),
    (ServiceResponseError("connection reset"), _errors.CODE_RESPONSE_FAILED),
])
def test_transport_errors_are_labelled(error, code):
    assert to_flex_error(error).code == code


def test_non_azure_exception_is_not_disguised():
    assert to_flex_error(KeyError("bug")) is None


def test_flex_error_passes_through_with_context():
    original = OperationTimeoutError("too slow")

    converted = to_flex_error(original, "Failed to start vm1")

    assert isinstance(converted, OperationTimeoutError)
    assert converted.msg == "Failed to start vm1: too slow"
    assert converted.code == _errors.CODE_TIMEOUT
    assert original.msg == "too slow"


def test_azure_errors_converts_sdk_exceptions():
    with pytest.raises(AzureFlexError) as caught:
        with azure_errors("Failed to read scale set ss"):
            raise sdk_error(ResourceNotFoundError, 404, arm_error("ResourceNotFound", "not there"))

    assert caught.value.code == "ResourceNotFound"
    assert caught.value.msg == "Failed to read scale set ss: not there"
    assert is_not_found(caught.value)


def test_azure_errors_lets_bugs_through():
    with pytest.raises(ZeroDivisionError):
        with azure_errors("doing sums"):
            raise ZeroDivisionError()


def test_with_message_keeps_the_facts():
    error = AzureFlexError("x", code="ResourceNotFound", status=404, request_id="r")

    renamed = error.with_message("Scale set ss was not found")

    assert renamed.to_dict() == {"msg": "Scale set ss was not found", "code": "ResourceNotFound", "status": 404,
                                 "request_id": "r", "correlation_id": None}
    assert str(renamed) == "Scale set ss was not found"
