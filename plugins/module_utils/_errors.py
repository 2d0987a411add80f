# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module util is PRIVATE to the azure_flex.vmss collection. It can change or
# disappear in any release, including bugfix releases. Do not import it from other
# collections or from playbooks.

"""One exception type for everything the collection reports, and one converter from SDK errors.

Azure SDK exceptions carry the useful facts in different places (the ARM error body, the HTTP
status, response headers). Modules should never have to dig for them: every SDK call runs inside
``azure_errors()`` (or the fan-out / LRO helpers that use it), which turns the SDK exception into an
``AzureFlexError`` whose ``to_dict()`` is exactly what the module reports.

Decisions are made on the ARM error *code* (``error.code``), never on the exception class: the
SDKs raise ``ResourceExistsError`` for every 409, whether the cause is a lock (``ScopeLocked``) or a
wrong power state (``OperationNotAllowed``).

Nothing from ``azure`` is imported at module import time, so this file can be imported (and is
sanity-tested) where the SDKs are not installed.
"""

from __future__ import annotations

import contextlib
import re


# Codes for conditions the collection detects itself (there is no ARM error code for them). They
# are deliberately distinct from ARM codes, which are PascalCase words such as ResourceNotFound.
CODE_TIMEOUT = "AzureFlexTimeout"
CODE_INVALID_INPUT = "AzureFlexInvalidInput"
CODE_MISSING_DEPENDENCY = "AzureFlexMissingDependency"
CODE_CREDENTIAL_UNAVAILABLE = "CredentialUnavailable"
CODE_AUTHENTICATION_FAILED = "AuthenticationFailed"
# The token endpoint itself failed (5xx, 429), after azure-identity's retries: not a credential problem.
CODE_TOKEN_ENDPOINT_UNAVAILABLE = "AzureFlexTokenEndpointUnavailable"
CODE_CONNECTION_FAILED = "ServiceRequestFailed"
CODE_RESPONSE_FAILED = "ServiceResponseFailed"

REQUEST_ID_HEADER = "x-ms-request-id"
CORRELATION_ID_HEADER = "x-ms-correlation-request-id"


class AzureFlexError(Exception):
    """A failure to report to the user, with what Azure said about it.

    ``code`` is the ARM error code when Azure sent one (for example ``ResourceNotFound``), else one
    of the ``CODE_*`` constants of this module, else None. ``status`` is the HTTP status, if any.
    """

    def __init__(self, msg, code=None, status=None, request_id=None, correlation_id=None, details=None):
        super().__init__(msg)
        self.msg = msg
        self.code = code
        self.status = status
        self.request_id = request_id
        self.correlation_id = correlation_id
        self.details = list(details or [])

    def to_dict(self):
        """Return the facts as a plain dict, suitable for ``fail_json`` or a per-item result."""
        result = {
            "msg": self.msg,
            "code": self.code,
            "status": self.status,
            "request_id": self.request_id,
            "correlation_id": self.correlation_id,
        }
        if self.details:
            result["details"] = list(self.details)
        return result

    def with_context(self, action):
        """Return a copy whose message starts with ``action`` (for example "Failed to restart vm1")."""
        if not action:
            return self
        return self.with_message("%s: %s" % (action, self.msg))

    def with_message(self, msg):
        """Return a copy with ``msg`` as its message, keeping code, status and request ids."""
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.msg = msg
        clone.args = (msg,)
        return clone

    def __str__(self):
        return self.msg


class OperationTimeoutError(AzureFlexError):
    """The module's deadline passed before an operation finished (it may still finish in Azure)."""

    def __init__(self, msg, **kwargs):
        kwargs.setdefault("code", CODE_TIMEOUT)
        super().__init__(msg, **kwargs)


class InvalidInputError(AzureFlexError):
    """A task argument is unusable; raised before anything is sent to Azure."""

    def __init__(self, msg, **kwargs):
        kwargs.setdefault("code", CODE_INVALID_INPUT)
        super().__init__(msg, **kwargs)


class MissingDependencyError(AzureFlexError):
    """A Python package needed for the requested Azure service is not installed."""

    def __init__(self, library, import_error):
        super().__init__(
            "The Python package %s is required for this task but could not be imported: %s" % (library, import_error),
            code=CODE_MISSING_DEPENDENCY,
        )
        self.library = library
        self.import_error = import_error


def azure_error_types():
    """Return the tuple of exception classes that mean "the Azure SDK reported a failure".

    Returns an empty tuple when azure-core is not installed: then no such exception can exist, and
    ``except ()`` catches nothing.
    """
    try:
        from azure.core.exceptions import AzureError  # pylint: disable=import-outside-toplevel
    except ImportError:
        return ()
    return (AzureError,)


def arm_error_code(exc):
    """Return the ARM error code carried by ``exc`` (``exc.error.code``), or None."""
    if isinstance(exc, AzureFlexError):
        return exc.code
    error = getattr(exc, "error", None)
    return getattr(error, "code", None) or None


def http_status(exc):
    """Return the HTTP status carried by ``exc``, or None."""
    if isinstance(exc, AzureFlexError):
        return exc.status
    return getattr(exc, "status_code", None)


def is_not_found(exc):
    """Return True when ``exc`` says the addressed resource (or its group) does not exist."""
    return http_status(exc) == 404


def to_flex_error(exc, action=None):
    """Convert an Azure SDK exception into an ``AzureFlexError``.

    Returns None when ``exc`` is not an SDK failure (a programming error must not be disguised as an
    Azure error); callers re-raise it in that case.
    """
    if isinstance(exc, AzureFlexError):
        return exc.with_context(action)
    if not isinstance(exc, azure_error_types()):
        return None
    return _convert_sdk_error(exc).with_context(action)


def member_error(error):
    """The error of one member's result: msg, and the ARM code, HTTP status and request id when known.

    Per-member results of fan-out modules carry this; a failure that is not an Azure error (it should
    not happen) is still reported with its message rather than lost.
    """
    flex_error = to_flex_error(error) or AzureFlexError(str(error))
    details = flex_error.to_dict()
    return {key: details[key] for key in ("msg", "code", "status", "request_id") if details.get(key) is not None}


@contextlib.contextmanager
def azure_errors(action=None):
    """Run the block, turning SDK exceptions into ``AzureFlexError`` prefixed with ``action``."""
    try:
        yield
    except azure_error_types() as exc:
        raise to_flex_error(exc, action) from exc


def _convert_sdk_error(exc):
    # Imported here, not at the top: see the module docstring.
    from azure.core import exceptions as core_errors  # pylint: disable=import-outside-toplevel

    if _is_credential_unavailable(exc):
        return AzureFlexError(_first_line(exc.message), code=CODE_CREDENTIAL_UNAVAILABLE)
    if isinstance(exc, core_errors.HttpResponseError):
        return _convert_http_error(exc, core_errors.ClientAuthenticationError)
    if isinstance(exc, core_errors.ServiceRequestError):
        return AzureFlexError("Could not send the request to Azure: %s" % _first_line(exc.message), code=CODE_CONNECTION_FAILED)
    if isinstance(exc, core_errors.ServiceResponseError):
        return AzureFlexError("The request was sent but no usable response came back: %s" % _first_line(exc.message),
                              code=CODE_RESPONSE_FAILED)
    return AzureFlexError(_first_line(exc.message))


def _is_credential_unavailable(exc):
    try:
        from azure.identity import CredentialUnavailableError  # pylint: disable=import-outside-toplevel
    except ImportError:
        return False
    return isinstance(exc, CredentialUnavailableError)


def _convert_http_error(exc, authentication_error_class):
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) or None
    message = getattr(error, "message", None) or _first_line(exc.message)
    headers = _response_headers(exc)
    # A long-running operation that ends Failed/Canceled surfaces with the (successful) status of
    # its last poll; reporting "status: 200" for a failure would mislead, so keep only HTTP errors.
    status = exc.status_code if exc.status_code is not None and exc.status_code >= 400 else None
    if code is None and isinstance(exc, authentication_error_class):
        code, status, message = _authentication_failure(exc, status, message)
    return AzureFlexError(
        message,
        code=code,
        status=status,
        request_id=headers.get(REQUEST_ID_HEADER),
        correlation_id=headers.get(CORRELATION_ID_HEADER),
        details=_error_details(error),
    )


_TOKEN_HTTP_STATUS = re.compile(r"HTTP Error: (\d{3})")


def _authentication_failure(exc, status, message):
    """Code, status and message of a failure to get a token.

    azure-identity raises ``ClientAuthenticationError`` without a response for every failure of the token
    endpoint; MSAL's error (the cause) says "HTTP Error: 503". A 5xx or 429 there means the identity provider
    is unavailable or throttling, not that the credential is wrong, and is reported so, with its status.
    """
    if status is None:
        texts = [str(getattr(exc, "message", "") or "")]
        cause = exc.__cause__ or exc.__context__
        while cause is not None and len(texts) < 5:
            texts.append(str(cause))
            cause = cause.__cause__ or cause.__context__
        for text in texts:
            match = _TOKEN_HTTP_STATUS.search(text)
            if match:
                status = int(match.group(1))
                break
    if status is not None and (status >= 500 or status == 429):
        return CODE_TOKEN_ENDPOINT_UNAVAILABLE, status, (
            "Could not get an access token: the identity provider's token endpoint answered HTTP %d after retries"
            " (it is unavailable or throttling; the credential was not rejected). Try again later. (%s)"
            % (status, message))
    return CODE_AUTHENTICATION_FAILED, status, message


def _response_headers(exc):
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return {}
    # azure-core exposes a case-insensitive mapping; normalise so lookups do not depend on it.
    return {str(name).lower(): value for name, value in headers.items()}


def _error_details(error):
    details = []
    for detail in getattr(error, "details", None) or []:
        details.append({
            "code": getattr(detail, "code", None),
            "message": getattr(detail, "message", None),
            "target": getattr(detail, "target", None),
        })
    return details


def _first_line(text):
    text = str(text or "").strip()
    return text.splitlines()[0] if text else "Unknown Azure error"
