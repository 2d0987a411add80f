"""The aiohttp application: one catch-all handler doing what ARM's front door does.

Order of work for every request (as in ARM): percent-decode and normalise the
path, route it (case-insensitively), authenticate the bearer token, apply
injected faults, validate the api-version, enforce management locks, then call
the provider. Every response carries ARM's headers; every error is an ARM
error body, never a traceback or an HTML page.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from urllib.parse import parse_qsl, unquote

from aiohttp import web

from . import control, extensions, graph, identity, locks, lro, network, resources, scalesets, tags, upgrades, vms  # noqa: F401  (routes)
from .errors import ArmError
from .http import API_VERSIONS, API_VERSION_RE, Ctx, Reply, find_route
from .state import State, now
from .throttle import Throttle

log = logging.getLogger("armemu")

_OPERATION_PATH = re.compile(r"^/subscriptions/[^/]+/providers/[^/]+/locations/[^/]+/operations/([^/]+)$", re.IGNORECASE)


def normalise_path(raw_path):
    path = unquote(raw_path)
    path = re.sub(r"/{2,}", "/", path)
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return path


class Front:
    def __init__(self, state):
        self.state = state
        self.throttle = Throttle()

    async def handle(self, request):
        started = now()
        raw_path = request.rel_url.raw_path
        path = normalise_path(raw_path)
        query = {}
        for key, value in parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True):
            query[key.lower()] = value
        method = request.method.upper()
        base_url = "%s://%s" % (request.scheme, request.host)
        body = await request.read()

        if path.lower().startswith("/_emulator"):
            reply = control.dispatch(self.state, method, path, query, body, request.headers)
            return self._respond(reply, request, log_it=False, started=started, method=method, path=path, query=query)

        hold = []
        limit_headers = {}
        try:
            reply = self.dispatch(method, path, query, request.headers, body, base_url, limit_headers, hold)
        except ArmError as exc:
            reply = Reply(exc.status, exc.body(), exc.headers)
        except Exception:
            log.exception("unhandled error for %s %s", method, path)
            reply = Reply(500, {"error": {"code": "InternalServerError",
                                          "message": "Encountered internal server error."}})
        for name, value in limit_headers.items():
            reply.headers.setdefault(name, value)
        if hold:
            # A "delay" fault: the request was handled (state read or changed) and its answer is slow to arrive.
            await asyncio.sleep(hold[0])
        return self._respond(reply, request, log_it=True, started=started, method=method, path=path, query=query)

    def dispatch(self, method, path, query, headers, body, base_url, limit_headers, hold=None):
        state = self.state
        found, params = find_route(method, path)
        if found is None:
            # ARM authenticates before it routes: without a valid token nothing is revealed.
            limit_headers.update(self._admit(method, path, identity.authenticate(state, headers.get("Authorization"))))
            if params:
                raise ArmError(405, "MethodNotAllowed",
                               "The requested method '%s' is not allowed for '%s'. Allowed: %s."
                               % (method, path, ", ".join(sorted(params))))
            raise ArmError(404, "NotFound", "The requested path '%s' does not match any route." % path)
        ctx = Ctx(state, method, path, query, headers, body, base_url, params, found)
        if found.auth:
            # ARM's front door counts (and may refuse) the request once the caller is known.
            limit_headers.update(self._admit(method, path, identity.authenticate(state, headers.get("Authorization"))))
        fault = state.match_fault(method, path, found.starts_operation, arm=found.auth)
        if fault is not None and fault.delay:
            fault.consume()
            if hold is not None:
                hold.append(float(fault.delay))
            fault = None
        if fault is not None:
            if fault.status:
                headers_out = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                raise ArmError(int(fault.status), fault.code, fault.message, headers=headers_out)
            ctx.lro_fault = fault
        self._check_api_version(found.family, ctx)
        if found.lock_op:
            target = path.rsplit("/", 1)[0] if found.lock_op == "action" else path
            locks.enforce(state, target, found.lock_op)
        return found.handler(ctx)

    def _check_api_version(self, family, ctx):
        version = ctx.api_version
        if family is None:
            return
        if not version:
            raise ArmError(400, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all requests.")
        if not API_VERSION_RE.match(version):
            raise ArmError(400, "InvalidApiVersionParameter",
                           "The api-version '%s' is invalid. The supported versions are '%s'."
                           % (version, "','".join(sorted(API_VERSIONS[family], reverse=True))))
        if self.state.settings["strict_api_versions"] and version not in API_VERSIONS[family]:
            raise ArmError(400, "NoRegisteredProviderFound",
                           "No registered resource provider found for location 'global' and API version '%s' "
                           "for type '%s'. The supported api-versions are '%s'."
                           % (version, family, ", ".join(sorted(API_VERSIONS[family], reverse=True))))

    def _admit(self, method, path, claims):
        """The rate-limit headers of this request (429 ArmError when over a limit; see throttle.py)."""
        target = None
        match = _OPERATION_PATH.match(path)
        if match:
            operation = self.state.operations.get(match.group(1))
            target = operation.target if operation is not None else None
        try:
            return self.throttle.admit(self.state, method, path, claims, operation_target=target)
        except ArmError as exc:
            exc.headers.setdefault("x-ms-ratelimit-remaining-subscription-%s" % (
                "reads" if method in ("GET", "HEAD") else "deletes" if method == "DELETE" else "writes"), "0")
            raise

    def _respond(self, reply, request, log_it, started, method, path, query):
        request_id = str(uuid.uuid4())
        correlation = request.headers.get("x-ms-correlation-request-id") or request.headers.get(
            "x-ms-client-request-id") or str(uuid.uuid4())
        headers = {
            "x-ms-request-id": request_id,
            "x-ms-correlation-request-id": correlation,
            "x-ms-routing-request-id": "LOCALEMULATOR:%s:%s" % (
                time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), correlation),
            "Cache-Control": "no-cache",
            "Pragma": "no-cache",
            "Expires": "-1",
            "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("x-ms-client-request-id"):
            headers["x-ms-client-request-id"] = request.headers["x-ms-client-request-id"]
        headers.update(reply.headers)
        payload = reply.payload()
        if log_it:
            self.state.log_request(method, path, {k: v for k, v in query.items()}, reply.status, started)
        response = web.Response(status=reply.status, body=payload if reply.status != 204 else None, headers=headers)
        if payload and reply.status != 204:
            response.headers["Content-Type"] = reply.content_type
        return response


def create_app(state=None):
    state = state or State()
    front = Front(state)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app["state"] = state
    app.router.add_route("*", "/{tail:.*}", front.handle)
    return app
