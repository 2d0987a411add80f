"""Long-running operations: start, complete on a timer, and the status URLs the SDK polls.

Compute answers an action with 202 + Azure-AsyncOperation + Location(monitor=true)
+ Retry-After; the Azure-AsyncOperation URL always answers 200 with
``{"status": "InProgress|Succeeded|Failed|Canceled", ...}``; the Location URL
answers 202 while running and 200 when done. Network uses its own
``operations`` / ``operationResults`` URLs. (azure-facts.md §2.)
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from .errors import ArmError
from .http import Reply, ok, route
from .state import Operation

log = logging.getLogger(__name__)

PREEMPTED = {"code": "OperationPreempted", "message": "The operation has been preempted by a more recent operation."}


def start(ctx, provider, location, kind, duration, complete, on_fail=None, target=None):
    """Start an operation that ends after ``duration`` seconds.

    ``complete(op)`` applies the final state (it may raise ArmError, which
    fails the operation). ``on_fail(op)`` restores the state when the
    operation fails or is cancelled (by a fault rule or a preemption).
    A ``stuck`` fault leaves the operation in progress for ever.
    """
    state = ctx.state
    op = Operation(provider, location, ctx.params.get("sub") or ctx.path.split("/")[2], kind, target)
    op.on_cancel = on_fail
    state.operations[op.id] = op
    fault = ctx.lro_fault
    if fault is not None:
        if fault.active:
            fault.consume()  # an operation starts: the rule applies to it
        else:
            fault = None  # used up by an earlier operation of the same request (a batch)
    generation = state.generation

    async def run():
        try:
            if fault is not None and fault.stuck:
                return
            await asyncio.sleep(max(0.0, duration))
            if op.done or state.generation != generation:
                return
            if fault is not None and fault.lro:
                op.finish(fault.lro, {"code": fault.code, "message": fault.message})
                if on_fail:
                    on_fail(op)
                return
            try:
                complete(op)
            except ArmError as exc:
                op.finish("Failed", exc.body()["error"], exc.status)
                if on_fail:
                    on_fail(op)
                return
            op.finish("Succeeded")
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in a provider must not kill the loop silently
            log.exception("operation %s (%s) crashed", op.id, kind)
            op.finish("Failed", {"code": "InternalExecutionError", "message": "An internal execution error occurred."})

    op.task = asyncio.get_event_loop().create_task(run())
    return op


def follow(ctx, provider, location, kind, ops, target=None):
    """An operation that ends when all of ``ops`` have ended (Failed/Canceled if any did)."""
    state = ctx.state
    op = Operation(provider, location, ctx.params.get("sub") or ctx.path.split("/")[2], kind, target)
    state.operations[op.id] = op

    async def run():
        while not all(child.done for child in ops):
            await asyncio.sleep(0.05)
        failed = [child for child in ops if child.status != "Succeeded"]
        if failed:
            op.finish(failed[0].status, failed[0].error, failed[0].error_status or 500)
        else:
            op.finish("Succeeded")

    op.task = asyncio.get_event_loop().create_task(run())
    return op


def preempt(state, op_id):
    """Cancel an operation still running because a newer one supersedes it."""
    op = state.operations.get(op_id) if op_id else None
    if op is None or op.done:
        return
    op.finish("Canceled", dict(PREEMPTED), 409)
    if op.task is not None:
        op.task.cancel()


def headers_for(ctx, op):
    retry_after = str(int(ctx.state.settings["retry_after"]))
    api_version = ctx.api_version or ""
    sub = op.subscription_id
    if op.provider == "Microsoft.Compute":
        base = "/subscriptions/%s/providers/Microsoft.Compute/locations/%s/operations/%s" % (sub, op.location, op.id)
        token = str(uuid.uuid4())
        async_url = ctx.url(base, p=token, **{"api-version": api_version})
        location_url = ctx.url(base, p=token, monitor="true", **{"api-version": api_version})
    else:
        base = "/subscriptions/%s/providers/%s/locations/%s" % (sub, op.provider, op.location)
        async_url = ctx.url(base + "/operations/" + op.id, **{"api-version": api_version})
        location_url = ctx.url(base + "/operationResults/" + op.id, **{"api-version": api_version})
    return {"Azure-AsyncOperation": async_url, "Location": location_url, "Retry-After": retry_after}


def accepted(ctx, op, status=202, body=None, location=True):
    headers = headers_for(ctx, op)
    if not location:
        headers.pop("Location")
    return Reply(status, body, headers)


def _require_op(ctx):
    op = ctx.state.operations.get(ctx.param("op"))
    if op is None:
        raise ArmError(404, "NotFound", "The operation '%s' was not found." % ctx.param("op"))
    return op


def _status_reply(ctx, op):
    headers = {} if op.done else {"Retry-After": str(int(ctx.state.settings["retry_after"]))}
    return ok(op.status_body(), headers=headers)


def _result_reply(ctx, op):
    """The Location (monitor) view: 202 while running, the result or error when done."""
    if not op.done:
        return Reply(202, None, {"Location": ctx.url(ctx.path, **ctx.query),
                                 "Retry-After": str(int(ctx.state.settings["retry_after"]))})
    if op.status == "Succeeded":
        return Reply(200, op.result) if op.result is not None else Reply(200, None)
    error = op.error or {"code": "InternalExecutionError", "message": "The operation failed."}
    raise ArmError(op.error_status or 500, error["code"], error["message"])


@route("GET", "/subscriptions/{sub}/providers/{ns}/locations/{loc}/operations/{op}", family=None)
def operation_status(ctx):
    """Azure-AsyncOperation URL; with monitor=true (Compute's Location URL) the result view."""
    op = _require_op(ctx)
    if ctx.flag("monitor"):
        return _result_reply(ctx, op)
    return _status_reply(ctx, op)


@route("GET", "/subscriptions/{sub}/providers/{ns}/locations/{loc}/operationResults/{op}", family=None)
def operation_result(ctx):
    """Location URL of Network and Resources operations: 202 while running, then 200/204."""
    op = _require_op(ctx)
    reply = _result_reply(ctx, op)
    if op.done and reply.status == 200 and op.result is None:
        return Reply(204, None)
    return reply
