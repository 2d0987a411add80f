"""Azure Resource Graph: POST /providers/Microsoft.ResourceGraph/resources.

The query runs through a real KQL evaluator (``kql.py``) over every emulated
resource, as Resource Graph saw it ``graph_lag`` seconds ago. Paging follows
the service: ``$top`` (at most 1,000, default 100), ``$skip``, and a
``$skipToken`` produced only when the query keeps the ``id`` column; a query
with ``take``/``limit`` ignores ``$skip``. (azure-facts.md §11.)
"""

from __future__ import annotations

import base64
import hashlib
import json
import time

from . import identity, kql
from .errors import ArmError
from .graph_rows import table_of
from .http import ok, route

MAX_TOP = 1000
DEFAULT_TOP = 100
QUOTA_WINDOW = 5.0


def _token(offset, query):
    raw = json.dumps({"o": offset, "q": hashlib.sha1(query.encode()).hexdigest()[:12]}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_token(token, query):
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["q"] != hashlib.sha1(query.encode()).hexdigest()[:12]:
            raise ValueError("token is for another query")
        return int(data["o"])
    except (ValueError, KeyError, TypeError):
        raise ArmError(400, "BadRequest", "The $skipToken is invalid for this query.",
                       details=[{"code": "InvalidSkipToken", "message": "The skip token could not be decoded."}])


def _column_type(value):
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "real"
    if isinstance(value, (dict, list)):
        return "object"
    return "string"


def _as_table(rows):
    columns = []
    seen = set()
    for row in rows:
        for key in row:
            if key not in seen:
                seen.add(key)
                columns.append(key)
    types = {}
    for column in columns:
        sample = next((row[column] for row in rows if row.get(column) is not None), None)
        types[column] = _column_type(sample)
    return {"columns": [{"name": c, "type": types[c]} for c in columns],
            "rows": [[row.get(c) for c in columns] for row in rows]}


class Quota:
    """Per-principal query quota, reported in x-ms-user-quota-* headers (enforced when graph_quota > 0)."""

    def __init__(self):
        self.windows = {}
        self.generation = None

    def take(self, principal, limit, generation):
        if generation != self.generation:  # a reset starts with fresh quotas
            self.windows.clear()
            self.generation = generation
        current = time.monotonic()
        start, used = self.windows.get(principal, (current, 0))
        if current - start >= QUOTA_WINDOW:
            start, used = current, 0
        used += 1
        self.windows[principal] = (start, used)
        resets = max(0.0, QUOTA_WINDOW - (current - start))
        allowance = limit if limit else 15
        return allowance - used, resets


QUOTA = Quota()


@route("POST", "/providers/Microsoft.ResourceGraph/resources", family="graph")
def query_resources(ctx):
    state = ctx.state
    body = ctx.json()
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ArmError(400, "BadRequest", "The 'query' property is required.")
    # The quota is per principal (the token's object id), not per token.
    claims = identity.read_token(ctx.headers.get("Authorization", "").partition(" ")[2].strip()) or {}
    principal = claims.get("oid", "")
    remaining, resets = QUOTA.take(principal, int(state.settings["graph_quota"]), state.generation)
    quota_headers = {"x-ms-user-quota-remaining": str(max(remaining, 0)),
                     "x-ms-user-quota-resets-after": "00:00:%02d" % int(resets + 0.999)}
    if state.settings["graph_quota"] and remaining < 0:
        raise ArmError(429, "RateLimiting",
                       "Please provide below info when asking for support: timestamp = %s, correlationId = %s."
                       % (time.strftime("%Y-%m-%dT%H:%M:%SZ"), ctx.headers.get("x-ms-client-request-id", "")),
                       details=[{"code": "RateLimiting", "message": "Client application has been throttled and "
                                 "should not attempt to repeat the request until an amount of time has elapsed. "
                                 "Please see https://aka.ms/resourcegraph-throttling for help."}],
                       headers=dict(quota_headers, **{"Retry-After": str(int(resets + 0.999))}))
    if body.get("facets"):
        # Refuse what is not emulated rather than answer as if there were no facets.
        raise ArmError(400, "BadRequest", "Query is invalid. Please refer to the documentation for the Azure "
                       "Resource Graph service and fix the error before retrying.",
                       details=[{"code": "InvalidQuery", "message": "Query is invalid. Please refer to the "
                                 "documentation for the Azure Resource Graph service and fix the error before "
                                 "retrying."},
                                {"code": "UnsupportedFeature", "message": "Facets are not supported by the "
                                 "emulator."}])
    subscriptions = body.get("subscriptions")
    if subscriptions is None:
        wanted = set(state.subscriptions)
    else:
        if not isinstance(subscriptions, list):
            raise ArmError(400, "BadRequest", "The 'subscriptions' property must be a list.")
        wanted = {s.lower() for s in subscriptions}
    options = body.get("options") or {}
    top = options.get("$top")
    if top is not None and not (isinstance(top, int) and 1 <= top <= MAX_TOP):
        raise ArmError(400, "BadRequest", "The $top option must be between 1 and %d." % MAX_TOP,
                       details=[{"code": "InvalidQueryOptions", "message": "$top out of range"}])
    skip = options.get("$skip")
    if skip is not None and not (isinstance(skip, int) and skip >= 0):
        raise ArmError(400, "BadRequest", "The $skip option must be a non-negative integer.")
    fmt = str(options.get("resultFormat") or "table").lower()
    if fmt not in ("table", "objectarray"):
        raise ArmError(400, "BadRequest", "The resultFormat '%s' is invalid; use 'table' or 'objectArray'."
                       % options.get("resultFormat"),
                       details=[{"code": "InvalidQueryOptions", "message": "resultFormat"}])
    try:
        compiled = kql.compile_query(query)
        tables = {"resources": [], "resourcecontainers": [], "computeresources": []}
        for row in state.graph.rows(state.settings["graph_lag"]):
            table = table_of(row)
            if table is not None and row["subscriptionId"].lower() in wanted:
                tables[table].append(row)
        result = compiled.run(tables)
    except kql.KqlError as exc:
        raise ArmError(400, "BadRequest", exc.message, details=exc.details)
    offset = 0
    if options.get("$skipToken"):
        offset = _read_token(options["$skipToken"], query)
    if skip is not None and not compiled.has_row_limit:
        offset = skip if not options.get("$skipToken") else offset
    size = top or DEFAULT_TOP
    data = result[offset:offset + size]
    more = offset + size < len(result)
    reply = {"totalRecords": len(result), "count": len(data), "resultTruncated": "false", "facets": []}
    if more:
        if compiled.projects_id:
            reply["$skipToken"] = _token(offset + size, query)
        else:
            reply["resultTruncated"] = "true"
    reply["data"] = data if fmt == "objectarray" else _as_table(data)
    return ok(reply, headers=quota_headers)
