"""Routing and response helpers shared by the providers.

A provider registers handlers with ``@route(methods, pattern, family=...)``.
Patterns are ARM paths with ``{name}`` placeholders; matching is
case-insensitive on the percent-decoded path, as ARM's is. Handlers are plain
(synchronous) functions taking a ``Ctx`` and returning a ``Reply``: they never
await, so each request's state changes are atomic.
"""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import quote, urlencode

from .errors import ArmError

ROUTES = []

# api-versions the real services publish, per family of routes. An unknown one
# is refused as ARM refuses it (unless strict_api_versions is off).
API_VERSIONS = {
    "compute": {
        "2020-06-01", "2020-12-01", "2021-03-01", "2021-04-01", "2021-07-01", "2021-11-01",
        "2022-03-01", "2022-08-01", "2022-11-01", "2023-03-01", "2023-07-01", "2023-09-01",
        "2024-03-01", "2024-07-01", "2024-11-01", "2025-04-01", "2025-11-01", "2026-04-01",
    },
    "network": {
        "2018-10-01", "2020-11-01", "2021-02-01", "2021-05-01", "2021-08-01", "2022-01-01",
        "2022-05-01", "2022-07-01", "2022-09-01", "2022-11-01", "2023-02-01", "2023-04-01",
        "2023-05-01", "2023-06-01", "2023-09-01", "2023-11-01", "2024-01-01", "2024-03-01",
        "2024-05-01", "2024-07-01", "2024-10-01", "2025-01-01", "2025-03-01", "2025-05-01",
        "2025-07-01", "2025-09-01", "2026-01-01", "2026-03-01",
    },
    "resources": {
        "2019-10-01", "2020-06-01", "2020-10-01", "2021-01-01", "2021-04-01", "2022-09-01",
        "2023-07-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-03-01", "2025-04-01",
    },
    "subscriptions": {"2016-06-01", "2019-11-01", "2020-01-01", "2021-01-01", "2022-12-01"},
    "locks": {"2015-01-01", "2016-09-01", "2017-04-01", "2020-05-01"},
    "graph": {
        "2018-09-01-preview", "2019-04-01", "2020-04-01-preview", "2020-09-01-preview",
        "2021-03-01", "2021-06-01-preview", "2022-10-01", "2024-04-01",
    },
    "metadata": {"2015-01-01", "2018-01-01", "2019-05-01", "2020-06-01", "2022-09-01"},
}

API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview|-beta|-alpha)?$")

# The JSON type of well-known ARM body fields, wherever they appear (names whose type differs
# between providers, such as "priority", are left out). ARM deserialises a
# body into the API's model before the resource provider sees it, so a field of the wrong
# type is a 400 InvalidRequestContent, never a failure inside the provider.
_OBJECT_FIELDS = {
    "properties", "tags", "options", "hardwareprofile",
    "storageprofile", "osprofile", "networkprofile", "osdisk", "imagereference", "diffdisksettings",
    "virtualmachinescaleset", "availabilityset", "billingprofile", "additionalcapabilities",
    "virtualmachineprofile", "upgradepolicy", "rollingupgradepolicy", "extensionprofile", "manageddisk",
    "linuxconfiguration", "windowsconfiguration", "frontendipconfiguration", "backendaddresspool", "subnet",
    "publicipaddress", "flexprofile", "securityprofile", "diagnosticsprofile",
}
# Objects only at the top of a resource body ("sku" is a string inside imageReference).
_TOP_OBJECT_FIELDS = {"sku", "identity", "plan", "extendedlocation"}
_LIST_OF_OBJECTS = {
    "networkinterfaces", "datadisks", "networkinterfaceconfigurations", "ipconfigurations", "extensions",
    "owners", "facets", "loadbalancerbackendaddresspools", "loadbalancerinboundnatrules",
}
_LIST_OF_STRINGS = {"zones", "instanceids", "subscriptions", "managementgroups"}
_STRING_FIELDS = {
    "location", "query", "id", "level", "notes", "evictionpolicy", "orchestrationmode", "publisher",
    "type", "typehandlerversion", "exactversion", "customdata", "computername", "$skiptoken", "resultformat",
    "vmsize", "name", "deleteoption", "mode",
}
_INT_FIELDS = {"capacity", "platformfaultdomaincount", "platformfaultdomain", "$top", "$skip"}
_BOOL_FIELDS = {"tempdisk", "singleplacementgroup", "overprovision", "hibernationenabled"}
# Free-form objects (extension settings) are not looked into.
_OPAQUE_FIELDS = {"settings", "protectedsettings", "protectedsettingsfromkeyvault"}
_TYPE_NAMES = {dict: "Object", list: "Array", str: "String", int: "Integer", bool: "Boolean"}


def _shape_error(value, expected, path):
    return ArmError(400, "InvalidRequestContent",
                    "The request content was invalid and could not be deserialized: 'Error converting value %s "
                    "to type '%s'. Path '%s'.'" % (json.dumps(value)[:100], _TYPE_NAMES[expected], path))


def check_shape(value, path=""):
    """Raise 400 InvalidRequestContent when a well-known field has the wrong JSON type."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_shape(item, "%s[%d]" % (path, index))
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        name = str(key).lower()
        where = "%s.%s" % (path, key) if path else str(key)
        if item is None or name in _OPAQUE_FIELDS:
            continue
        top_object = not path and name in _TOP_OBJECT_FIELDS
        expected = (dict if name in _OBJECT_FIELDS or top_object else list if name in _LIST_OF_OBJECTS | _LIST_OF_STRINGS
                    else str if name in _STRING_FIELDS else int if name in _INT_FIELDS
                    else bool if name in _BOOL_FIELDS else None)
        if expected is int and (isinstance(item, bool) or not isinstance(item, int)):
            raise _shape_error(item, int, where)
        if expected is not None and expected is not int and not isinstance(item, expected):
            raise _shape_error(item, expected, where)
        if name == "tags":
            for tag, tag_value in item.items():
                if tag_value is not None and not isinstance(tag_value, str):
                    raise _shape_error(tag_value, str, "%s.%s" % (where, tag))
            continue
        if name in _LIST_OF_STRINGS or name in _LIST_OF_OBJECTS:
            element = str if name in _LIST_OF_STRINGS else dict
            for index, entry in enumerate(item):
                if not isinstance(entry, element):
                    raise _shape_error(entry, element, "%s[%d]" % (where, index))
        check_shape(item, where)


class Route:
    def __init__(self, methods, pattern, handler, family, lock_op, starts_operation, auth):
        self.methods = {m.upper() for m in methods}
        self.pattern = pattern
        self.regex = _compile(pattern)
        self.handler = handler
        self.family = family
        self.lock_op = lock_op
        self.starts_operation = starts_operation
        self.auth = auth


def _compile(pattern):
    out = []
    for piece in re.split(r"(\{[a-z_]+\*?\})", pattern):
        if piece.startswith("{") and piece.endswith("*}"):
            out.append("(?P<%s>.*)" % piece[1:-2])
        elif piece.startswith("{"):
            out.append("(?P<%s>[^/]+)" % piece[1:-1])
        else:
            out.append(re.escape(piece))
    return re.compile("^" + "".join(out) + "/?$", re.IGNORECASE)


def route(methods, pattern, family, lock_op=None, starts_operation=False, auth=True):
    """Register a handler.

    lock_op: how management locks apply ('write', 'delete' or 'action'), or None.
    starts_operation: the handler may start a long-running operation, so the
    fault rules with ``lro`` / ``stuck`` can apply to it.
    """
    if isinstance(methods, str):
        methods = [methods]

    def register(handler):
        ROUTES.append(Route(methods, pattern, handler, family, lock_op, starts_operation, auth))
        return handler

    return register


def find_route(method, path):
    """(route, params) for the first pattern matching; None when no pattern matches.

    When the path matches but the method does not, returns (None, allowed methods).
    """
    allowed = set()
    for candidate in ROUTES:
        match = candidate.regex.match(path)
        if not match:
            continue
        if method in candidate.methods:
            return candidate, match.groupdict()
        allowed |= candidate.methods
    if allowed:
        return None, allowed
    return None, None


class Reply:
    def __init__(self, status=200, body=None, headers=None, raw=None, content_type="application/json; charset=utf-8"):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.raw = raw
        self.content_type = content_type

    def payload(self):
        if self.raw is not None:
            return self.raw
        if self.body is None:
            return b""
        return json.dumps(self.body).encode("utf-8")


class Ctx:
    """One request, as a handler sees it."""

    def __init__(self, state, method, path, query, headers, raw_body, base_url, params=None, route=None):
        self.state = state
        self.method = method
        self.path = path
        self.query = query  # lower-cased names -> value
        self.headers = headers
        self.raw_body = raw_body
        self.base_url = base_url
        self.params = params or {}
        self.route = route
        self.lro_fault = None
        self._body = None
        self._parsed = False

    @property
    def api_version(self):
        return self.query.get("api-version")

    def param(self, name):
        return self.params[name]

    def flag(self, name):
        return str(self.query.get(name.lower(), "")).lower() == "true"

    def json(self, required=True):
        if not self._parsed:
            self._parsed = True
            text = self.raw_body.decode("utf-8", errors="replace").strip() if self.raw_body else ""
            if not text:
                self._body = None
            else:
                try:
                    self._body = json.loads(text)
                except ValueError as exc:
                    raise ArmError(
                        400,
                        "InvalidRequestContent",
                        "The request content was invalid and could not be deserialized: '%s'." % exc,
                    )
        if self._body is None and required:
            raise ArmError(400, "InvalidRequestContent", "The request content is empty; a JSON body is required.")
        if self._body is not None and not isinstance(self._body, dict):
            raise ArmError(400, "InvalidRequestContent",
                           "The request content was invalid and could not be deserialized: expected a JSON object.")
        if self._body is not None:
            check_shape(self._body)
        return self._body

    def url(self, path, **query):
        """An absolute URL on this server (for nextLink and LRO headers)."""
        text = self.base_url + quote(path, safe="/:@!$&'()*+,;=-._~")
        if query:
            text += "?" + urlencode(query)
        return text


def ok(body, status=200, headers=None):
    return Reply(status, body, headers)


def no_content():
    return Reply(204, None)


def page(ctx, items, render):
    """A paged list reply ({"value": [...], "nextLink"}) with $skiptoken offsets."""
    size = int(ctx.state.settings["page_size"])
    try:
        offset = int(ctx.query.get("$skiptoken", "0") or 0)
        if offset < 0:
            raise ValueError(offset)
    except ValueError:
        raise ArmError(400, "InvalidSkipToken", "The $skiptoken is invalid.")
    chunk = items[offset:offset + size]
    body = {"value": [render(item) for item in chunk]}
    if offset + size < len(items):
        query = {k: v for k, v in ctx.query.items() if k != "$skiptoken"}
        query["$skiptoken"] = str(offset + size)
        body["nextLink"] = ctx.url(ctx.path, **query)
    return Reply(200, body)


def new_request_id():
    return str(uuid.uuid4())
