"""A small evaluator for the subset of KQL that Azure Resource Graph queries use.

The emulator's ``POST /providers/Microsoft.ResourceGraph/resources`` endpoint runs
queries through this module.  A query is tokenized, parsed by a recursive-descent
parser into small node objects, checked against the column set that flows through
the pipeline, and compiled into Python closures.  Running a compiled query never
re-parses or walks the syntax tree again.

Public API
----------
``compile_query(text) -> CompiledQuery``  (raises ``KqlError``; results are cached)
``CompiledQuery.run(tables) -> list[dict]``  (``tables`` maps lower-case table
names to iterables of row dicts; input rows are never mutated)
``CompiledQuery.table`` / ``.columns`` / ``.has_row_limit`` / ``.projects_id``
``run_query(text, tables) -> list[dict]``
``KqlError(message, details)``

Supported subset
----------------
Pipeline: ``Table | op | op ...``; table names are case-insensitive; ``//``
comments; an optional trailing ``;``.

Tabular operators:
  ``where``/``filter``; ``extend [name =] expr, ...``; ``project [name =] expr, ...``;
  ``project-away``/``project-keep`` names; ``project-rename new = old, ...``;
  ``order by``/``sort by expr [asc|desc] [nulls first|last], ...`` (default desc;
  nulls first for asc and last for desc); ``take N``/``limit N``;
  ``top N by expr [asc|desc]``; ``summarize [name =] agg(...), ... [by [name =] expr, ...]``
  with count, countif, dcount, make_list, make_set, min, max, sum, avg, take_any/any;
  ``count``; ``distinct cols | *``;
  ``mv-expand [kind=bag|array] [with_itemindex=I] [name =] expr [to typeof(T)], ... [limit N]``
  (default limit 128 rows per input row);
  ``join [kind=innerunique|inner|leftouter|rightouter|fullouter|leftsemi|leftanti|rightsemi|rightanti]
  (subquery) on col, $left.a == $right.b`` (at most 3 joins and 3 mv-expands per
  query, like Resource Graph).

Scalar expressions:
  column references, dotted paths, ``x['key']``/``x["key"]``/``x[0]``/``x[expr]`` (a
  missing path yields null), ``['column name']``; literals: '...' and "..." strings
  with backslash escapes (``\\\\ \\' \\" \\n \\t \\r \\0 \\uXXXX``), verbatim
  ``@'...'`` (quote doubled inside), obfuscated ``h'...'``, ints, reals,
  ``true``/``false``/``null``, ``dynamic(json-ish)``, ``datetime(...)``,
  ``timespan(...)`` and ``1d``/``2h``/``30m``/``10s``/``5ms`` timespans, and
  ``int(..)``/``long(..)``/``real(..)``/``double(..)``/``bool(..)``;
  ``== != <> =~ !~ < <= > >=``; ``contains has hasprefix hassuffix startswith
  endswith`` (case-insensitive) and their ``_cs`` forms, each with a ``!`` negation;
  ``in !in in~ !in~ has_any has_all`` with literal, expression or ``dynamic([...])``
  items; ``between (a .. b)``/``!between``; ``matches regex``; ``and``/``or``;
  ``not(...)``; ``+ - * / %`` and unary minus.

Scalar functions: tostring tolower toupper toint tolong todouble toreal tobool
toboolean todatetime parse_json todynamic isempty isnotempty isnull isnotnull
iff iif case not strcat strcat_delim strcat_array split array_length coalesce
strlen substring indexof replace_string extract trim trim_start trim_end
bag_keys bag_pack pack pack_array set_has_element bin floor now ago.

Semantics and deliberate choices
--------------------------------
* Null: ``==``, ``=~``, ordering comparisons, ``in`` and ``between`` are false
  when an operand is null.  Every negated operator is the exact negation of its
  positive form, so ``null != 'x'`` and ``null !in ('x')`` are *true*.
  String operators (contains, has, startswith, ...) see null as "" (like
  ``tostring(null)``).  ``where`` keeps a row only when the predicate is ``true``.
* ``==``/``in`` are case-sensitive; numbers compare numerically; a string compared
  with a number or bool compares with its ``tostring`` form.
* ``has`` matches whole terms; term characters are ASCII letters and digits.
* ``tostring``: null -> "", bools -> "true"/"false", dict/list -> compact JSON.
* Column naming: an unnamed ``a.b['c']`` becomes ``a_b_c``; a one-argument
  function around it (``tostring(a.b)``) takes the same name (``bin``/``floor`` use
  their first argument); other unnamed expressions become ``Column1``, ``Column2``...
  Auto-derived names that collide are suffixed 1, 2, ...; join right-side columns
  that collide with left-side ones are renamed ``id1``, ``name1``...
* Aggregate default names: ``count_``, ``countif_``, ``dcount_x``, ``list_x``,
  ``set_x``, ``min_x``, ``max_x``, ``sum_x``, ``avg_x``, ``any_x``.
* Name resolution: a plain identifier must be a column of the pipeline at that
  point, or one of the standard Resources columns (a projected-away standard
  column just reads as null, as do missing dynamic paths).  Anything else is a
  ``KqlError`` ("Failed to resolve scalar expression named 'x'").
* Rows: output rows are new dicts, but nested values (``properties``, ``tags``...)
  are shared with the input rows, so treat results as read-only.  Keys of input
  rows that are not standard columns pass through until a ``project``.
* ``has_row_limit`` looks at the outer pipeline only (a ``take`` inside a join
  sub-query does not limit the result).
* Regular expressions use Python ``re``; an invalid pattern is a ``KqlError`` (at
  run time when the pattern is not a constant).
* Every error has ``.message`` = the Resource Graph "Query is invalid..." text and
  ``.details`` = ``[{"code": "InvalidQuery", ...}, {"code": "ParserFailure",
  "message": "<reason> (line L, column C)"}]`` (semantic errors use the same shape).

Known gaps: ``let``, ``union``, ``parse``, ``make-series``, ``mv-apply``, tabular
sub-queries inside ``in``, wildcards in ``project-away``, aggregate expressions
other than a single aggregate call, and most of the scalar function library.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from collections.abc import Callable, Iterable, Mapping

__all__ = [
    "INVALID_QUERY_MESSAGE",
    "KNOWN_TABLES",
    "RESOURCE_COLUMNS",
    "CompiledQuery",
    "KqlError",
    "compile_query",
    "run_query",
]

INVALID_QUERY_MESSAGE = (
    "Query is invalid. Please refer to the documentation for the Azure Resource Graph "
    "service and fix the error before retrying."
)

#: Columns of the Resources / ResourceContainers tables (every table starts with these).
RESOURCE_COLUMNS = (
    "id", "name", "type", "tenantId", "kind", "location", "resourceGroup",
    "subscriptionId", "managedBy", "sku", "plan", "properties", "tags", "identity",
    "zones", "extendedLocation",
)
_RESOURCE_COLUMN_SET = frozenset(RESOURCE_COLUMNS)

#: Resource Graph tables a query may name (lower-case).  A known table that is
#: absent from the mapping passed to ``run`` is treated as empty.
KNOWN_TABLES = frozenset({
    "resources", "resourcecontainers", "advisorresources", "alertsmanagementresources",
    "appserviceresources", "authorizationresources", "computeresources",
    "desktopvirtualizationresources", "extendedlocationresources",
    "extensibilityresources", "guestconfigurationresources", "healthresources",
    "healthresourcechanges", "insightsresources", "iotsecurityresources",
    "kubernetesconfigurationresources", "maintenanceresources",
    "managedservicesresources", "networkresources", "patchassessmentresources",
    "patchinstallationresources", "policyresources", "recoveryservicesresources",
    "resourcechanges", "resourcecontainerchanges", "securityresources",
    "servicehealthresources", "spotresources", "supportresources",
})

MAX_JOINS = 3
MAX_MV_EXPANDS = 3
MV_EXPAND_DEFAULT_LIMIT = 128

Row = dict
RowFn = Callable[[Row], Any]


# --------------------------------------------------------------------------- errors


class KqlError(Exception):
    """Query invalid or unsupported.

    ``.message`` is human text; ``.details`` is a list of ``{"code", "message"}``
    dicts in the shape Resource Graph returns (``InvalidQuery`` then ``ParserFailure``).
    """

    def __init__(self, message, details=None):
        super().__init__(message)
        self.message = message
        self.details = list(details) if details else []

    def __str__(self):
        specific = [d.get("message") for d in self.details if d.get("message") != self.message]
        return self.message + ("" if not specific else " " + "; ".join(map(str, specific)))


def _line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def _error(reason: str, text: str | None = None, pos: int | None = None) -> KqlError:
    """Build (not raise) the standard Resource Graph invalid-query error."""
    if text is not None and pos is not None:
        line, col = _line_col(text, pos)
        reason = f"{reason} (line {line}, column {col})"
    return KqlError(
        INVALID_QUERY_MESSAGE,
        [
            {"code": "InvalidQuery", "message": INVALID_QUERY_MESSAGE},
            {"code": "ParserFailure", "message": reason},
        ],
    )


# --------------------------------------------------------------------------- values


def _tostring(v: Any) -> str:
    """KQL ``tostring``: null -> "", bool -> true/false, dynamic -> compact JSON."""
    t = type(v)
    if t is str:
        return v
    if v is None:
        return ""
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return str(v)
    if t is float:
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return repr(v)
    if t is datetime:
        return _format_datetime(v)
    if t is timedelta:
        return _format_timespan(v)
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, separators=(",", ":"), default=_json_default)
    return str(v)


def _json_default(v: Any) -> Any:
    if isinstance(v, (datetime, timedelta)):
        return _tostring(v)
    return str(v)


def _format_datetime(d: datetime) -> str:
    if d.tzinfo is not None:
        d = d.astimezone(timezone.utc)
    base = d.strftime("%Y-%m-%dT%H:%M:%S")
    if d.microsecond:
        base += ".%07d" % (d.microsecond * 10)
    return base + "Z"


def _format_timespan(td: timedelta) -> str:
    ticks = (td.days * 86400 + td.seconds) * 10_000_000 + td.microseconds * 10
    sign = "-" if ticks < 0 else ""
    ticks = abs(ticks)
    total_seconds, frac = divmod(ticks, 10_000_000)
    days, rem = divmod(total_seconds, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, seconds = divmod(rem, 60)
    out = sign + (f"{days}." if days else "") + f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return out + (f".{frac:07d}" if frac else "")


_FRACTION_RE = re.compile(r"(\.\d{6})\d+")


def _parse_datetime(s: Any) -> datetime | None:
    if isinstance(s, datetime):
        return s
    if not isinstance(s, str):
        return None
    s = s.strip()
    if not s:
        return None
    if s[-1] in "zZ":
        s = s[:-1] + "+00:00"
    s = _FRACTION_RE.sub(r"\1", s)
    try:
        d = datetime.fromisoformat(s)
    except ValueError:
        return None
    return d.replace(tzinfo=timezone.utc) if d.tzinfo is None else d.astimezone(timezone.utc)


_TIMESPAN_UNITS = {
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "ms": 1e-3, "milli": 1e-3, "millis": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3,
    "microsecond": 1e-6, "microseconds": 1e-6, "tick": 1e-7, "ticks": 1e-7,
}
_TIMESPAN_UNIT_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$")
_TIMESPAN_CLOCK_RE = re.compile(r"^\s*(-)?(?:(\d+)\.)?(\d+):(\d+)(?::(\d+(?:\.\d+)?))?\s*$")


def _parse_timespan(s: str) -> timedelta | None:
    m = _TIMESPAN_UNIT_RE.match(s)
    if m and m.group(2) in _TIMESPAN_UNITS:
        return timedelta(seconds=float(m.group(1)) * _TIMESPAN_UNITS[m.group(2)])
    m = _TIMESPAN_CLOCK_RE.match(s)
    if m:
        td = timedelta(days=int(m.group(2) or 0), hours=int(m.group(3)),
                       minutes=int(m.group(4)), seconds=float(m.group(5) or 0))
        return -td if m.group(1) else td
    return None


def _hashable(v: Any) -> Any:
    """A hashable stand-in for a value, for grouping, distinct and join keys."""
    t = type(v)
    if t is dict or t is list or isinstance(v, (dict, list)):
        return ("\0json", json.dumps(v, sort_keys=True, default=_json_default))
    if t is bool:
        return ("\0bool", v)
    return v


def _order_value(v: Any) -> tuple:
    """Total-order key for a non-null value of any type (numbers < strings < ...)."""
    t = type(v)
    if t is str:
        return (2, v)
    if t is int or t is float:
        return (1, v)
    if t is bool:
        return (0, int(v))
    if t is datetime:
        return (3, v.timestamp())
    if t is timedelta:
        return (4, v.total_seconds())
    return (5, json.dumps(v, sort_keys=True, default=_json_default))


def _is_number(v: Any) -> bool:
    t = type(v)
    return t is int or t is float


def _eq(a: Any, b: Any) -> bool:
    """Case-sensitive ``==``; false when either side is null."""
    if a is None or b is None:
        return False
    ta, tb = type(a), type(b)
    if ta is tb:
        return a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if ta is str or tb is str:
        s, other = (a, b) if ta is str else (b, a)
        if isinstance(other, datetime):
            return _parse_datetime(s) == other
        if isinstance(other, (dict, list)):
            return False
        return s == _tostring(other)
    if ta is bool or tb is bool:
        return False
    try:
        return bool(a == b)
    except Exception:  # pragma: no cover - exotic types
        return False


def _ieq(a: Any, b: Any) -> bool:
    """Case-insensitive ``=~``; false when either side is null."""
    if a is None or b is None:
        return False
    return _tostring(a).lower() == _tostring(b).lower()


def _compare(a: Any, b: Any) -> int | None:
    """-1/0/1 for comparable values, None when null or incomparable."""
    if a is None or b is None:
        return None
    if _is_number(a) and _is_number(b) or type(a) is str and type(b) is str:
        pass
    elif isinstance(a, datetime) or isinstance(b, datetime):
        a, b = _parse_datetime(a), _parse_datetime(b)
        if a is None or b is None:
            return None
    elif isinstance(a, timedelta) and isinstance(b, timedelta) or type(a) is bool and type(b) is bool:
        pass
    elif (_is_number(a) and type(b) is str) or (type(a) is str and _is_number(b)):
        try:
            a, b = (a, float(b)) if type(b) is str else (float(a), b)
        except ValueError:
            return None
    else:
        return None
    return (a > b) - (a < b)


def _is_term_char(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _term_match(hay: str, needle: str, left: bool, right: bool) -> bool:
    """Find ``needle`` in ``hay`` with term boundaries on the requested sides."""
    if not needle:
        return True
    left = left and _is_term_char(needle[0])
    right = right and _is_term_char(needle[-1])
    n, size = len(needle), len(hay)
    start = hay.find(needle)
    while start >= 0:
        end = start + n
        if (not left or start == 0 or not _is_term_char(hay[start - 1])) and (
            not right or end == size or not _is_term_char(hay[end])
        ):
            return True
        start = hay.find(needle, start + 1)
    return False


# name -> (case_sensitive, predicate(haystack, needle))
_STRING_OPS: dict[str, tuple[bool, Callable[[str, str], bool]]] = {
    "contains": (False, lambda h, n: n in h),
    "contains_cs": (True, lambda h, n: n in h),
    "has": (False, lambda h, n: _term_match(h, n, True, True)),
    "has_cs": (True, lambda h, n: _term_match(h, n, True, True)),
    "hasprefix": (False, lambda h, n: _term_match(h, n, True, False)),
    "hasprefix_cs": (True, lambda h, n: _term_match(h, n, True, False)),
    "hassuffix": (False, lambda h, n: _term_match(h, n, False, True)),
    "hassuffix_cs": (True, lambda h, n: _term_match(h, n, False, True)),
    "startswith": (False, lambda h, n: h.startswith(n)),
    "startswith_cs": (True, lambda h, n: h.startswith(n)),
    "endswith": (False, lambda h, n: h.endswith(n)),
    "endswith_cs": (True, lambda h, n: h.endswith(n)),
}
_CMP_SYMBOLS = frozenset({"==", "!=", "<>", "=~", "!~", "<", "<=", ">", ">="})
_LIST_OPS = frozenset({"in", "!in", "in~", "!in~", "has_any", "has_all"})


# --------------------------------------------------------------------------- tokenizer

_IDENT, _STRING, _NUMBER, _TIMESPAN, _DATETIME, _OP, _EOF = (
    "identifier", "string", "number", "timespan", "datetime", "operator", "end")


@dataclass(slots=True)
class _Token:
    kind: str
    value: Any
    pos: int
    end: int


_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_TWO_CHAR_OPS = frozenset({"..", "==", "!=", "<>", "=~", "!~", "<=", ">="})
_ONE_CHAR_OPS = frozenset("|()[]{},.=<>+-*/%:;")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def _read_string(text: str, i: int) -> tuple[str, int]:
    """Read a quoted string with backslash escapes starting at ``text[i]``."""
    quote, j, n, buf = text[i], i + 1, len(text), []
    while True:
        if j >= n:
            raise _error("Unterminated string literal", text, i)
        c = text[j]
        if c == quote:
            return "".join(buf), j + 1
        if c == "\\":
            if j + 1 >= n:
                raise _error("Unterminated string literal", text, i)
            e = text[j + 1]
            if e in _ESCAPES:
                buf.append(_ESCAPES[e])
                j += 2
            elif e == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", text[j + 2:j + 6]):
                buf.append(chr(int(text[j + 2:j + 6], 16)))
                j += 6
            else:
                raise _error(f"Invalid escape sequence '\\{e}' in string literal", text, j)
            continue
        buf.append(c)
        j += 1


def _read_verbatim(text: str, i: int) -> tuple[str, int]:
    """Read ``'...'`` without escapes (a doubled quote stands for one quote)."""
    quote, j, buf = text[i], i + 1, []
    while True:
        k = text.find(quote, j)
        if k < 0:
            raise _error("Unterminated string literal", text, i)
        buf.append(text[j:k])
        if text.startswith(quote * 2, k):
            buf.append(quote)
            j = k + 2
            continue
        return "".join(buf), k + 1


def _tokenize(text: str) -> list[_Token]:
    toks: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        start = i
        nxt = text[i + 1] if i + 1 < n else ""
        if c in "'\"":
            value, i = _read_string(text, i)
            toks.append(_Token(_STRING, value, start, i))
        elif c == "@" and nxt in ("'", '"'):
            value, i = _read_verbatim(text, i + 1)
            toks.append(_Token(_STRING, value, start, i))
        elif c in "hH" and nxt in ("'", '"'):  # obfuscated string literal
            value, i = _read_string(text, i + 1)
            toks.append(_Token(_STRING, value, start, i))
        elif c.isdigit():
            m = _NUMBER_RE.match(text, i)
            raw, i = m.group(), m.end()
            value: Any = float(raw) if ("." in raw or "e" in raw or "E" in raw) else int(raw)
            unit = _IDENT_RE.match(text, i)
            if unit:
                if unit.group() not in _TIMESPAN_UNITS:
                    raise _error(f"Invalid numeric literal '{raw}{unit.group()}'", text, start)
                i = unit.end()
                toks.append(_Token(_TIMESPAN, timedelta(
                    seconds=value * _TIMESPAN_UNITS[unit.group()]), start, i))
            else:
                toks.append(_Token(_NUMBER, value, start, i))
        elif c == "$" and _IDENT_RE.match(text, i + 1):
            m = _IDENT_RE.match(text, i + 1)
            i = m.end()
            toks.append(_Token(_IDENT, "$" + m.group(), start, i))
        elif text[i:i + 2] in _TWO_CHAR_OPS:
            i += 2
            toks.append(_Token(_OP, text[start:i], start, i))
        elif c == "!" and _IDENT_RE.match(text, i + 1):  # !contains, !in~, ...
            m = _IDENT_RE.match(text, i + 1)
            i = m.end()
            word = "!" + m.group()
            if word == "!in" and text.startswith("~", i):
                word, i = "!in~", i + 1
            toks.append(_Token(_OP, word, start, i))
        elif _IDENT_RE.match(text, i):
            m = _IDENT_RE.match(text, i)
            word, i = m.group(), m.end()
            if word == "in" and text.startswith("~", i):
                toks.append(_Token(_IDENT, "in~", start, i + 1))
                i += 1
                continue
            if word in ("datetime", "timespan"):
                k = i
                while k < n and text[k].isspace():
                    k += 1
                if text.startswith("(", k):
                    close = text.find(")", k)
                    if close < 0:
                        raise _error(f"Unterminated {word} literal", text, start)
                    raw = text[k + 1:close].strip()
                    i = close + 1
                    if word == "timespan":
                        td = None if raw == "null" else _parse_timespan(raw)
                        if td is None and raw != "null":
                            raise _error(f"Invalid timespan literal '{raw}'", text, start)
                        toks.append(_Token(_TIMESPAN, td, start, i))
                    else:
                        toks.append(_Token(_DATETIME, raw, start, i))
                    continue
            toks.append(_Token(_IDENT, word, start, i))
        elif c in _ONE_CHAR_OPS:
            i += 1
            toks.append(_Token(_OP, c, start, i))
        else:
            raise _error(f"Unexpected character '{c}'", text, i)
    toks.append(_Token(_EOF, None, n, n))
    return toks


# --------------------------------------------------------------------------- syntax tree


@dataclass(slots=True)
class Lit:
    value: Any
    pos: int


@dataclass(slots=True)
class Col:
    name: str
    pos: int


@dataclass(slots=True)
class Member:
    """``target.key`` / ``target[key]``; ``key`` is a node (usually a ``Lit``)."""
    target: Any
    key: Any
    pos: int


@dataclass(slots=True)
class Call:
    name: str
    args: list
    pos: int


@dataclass(slots=True)
class Unary:
    op: str
    operand: Any
    pos: int


@dataclass(slots=True)
class Binary:
    op: str
    left: Any
    right: Any
    pos: int


@dataclass(slots=True)
class InList:
    op: str
    left: Any
    items: list
    pos: int


@dataclass(slots=True)
class Between:
    negated: bool
    left: Any
    low: Any
    high: Any
    pos: int


@dataclass(slots=True)
class Assign:
    """``[name =] expr``; ``name`` is None when the column name must be derived."""
    name: str | None
    expr: Any
    pos: int


@dataclass(slots=True)
class SortKey:
    expr: Any
    desc: bool
    nulls_first: bool


@dataclass(slots=True)
class Operator:
    """A tabular operator: ``kind`` is its KQL name, ``args`` its parsed pieces."""
    kind: str
    pos: int
    args: dict = field(default_factory=dict)


@dataclass(slots=True)
class Pipeline:
    table: str
    pos: int
    ops: list


# --------------------------------------------------------------------------- parser

_TYPED_LITERALS = {
    "int": int, "long": int, "real": float, "double": float, "decimal": float,
    "bool": bool, "boolean": bool,
}
_JOIN_KINDS = {
    "innerunique": "innerunique", "inner": "inner", "leftouter": "leftouter",
    "rightouter": "rightouter", "fullouter": "fullouter", "leftsemi": "leftsemi",
    "rightsemi": "rightsemi", "leftanti": "leftanti", "anti": "leftanti",
    "leftantisemi": "leftanti", "rightanti": "rightanti", "rightantisemi": "rightanti",
}


class _Parser:
    """Recursive-descent parser producing ``Pipeline``/``Operator``/expression nodes."""

    def __init__(self, text: str):
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    # -- token helpers
    def peek(self, k: int = 0) -> _Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def advance(self) -> _Token:
        tok = self.toks[self.i]
        if tok.kind != _EOF:
            self.i += 1
        return tok

    def at_op(self, value: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t.kind == _OP and t.value == value

    def at_word(self, *words: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t.kind == _IDENT and t.value in words

    def error(self, reason: str, tok: _Token | None = None) -> KqlError:
        tok = tok or self.peek()
        return _error(reason, self.text, tok.pos)

    def unexpected(self, expected: str | None = None, tok: _Token | None = None) -> KqlError:
        tok = tok or self.peek()
        found = "end of query" if tok.kind == _EOF else f"'{self.text[tok.pos:tok.end]}'"
        return self.error(f"Unexpected {found}" + (f", expected {expected}" if expected else ""), tok)

    def expect_op(self, value: str) -> _Token:
        if not self.at_op(value):
            raise self.unexpected(f"'{value}'")
        return self.advance()

    def expect_word(self, word: str) -> _Token:
        if not self.at_word(word):
            raise self.unexpected(f"'{word}'")
        return self.advance()

    def expect_int(self, what: str) -> int:
        tok = self.peek()
        if tok.kind != _NUMBER or not isinstance(tok.value, int):
            raise self.unexpected(f"an integer {what}")
        self.advance()
        return tok.value

    def name_token(self) -> tuple[str, int] | None:
        """A column name at the cursor: ``ident`` or ``['quoted name']``; not consumed."""
        t = self.peek()
        if t.kind == _IDENT and not t.value.startswith("$"):
            return t.value, 1
        if t.kind == _OP and t.value == "[" and self.peek(1).kind == _STRING and self.at_op("]", 2):
            return self.peek(1).value, 3
        return None

    def expect_name(self, what: str = "a column name") -> tuple[str, int]:
        found = self.name_token()
        if found is None:
            raise self.unexpected(what)
        pos = self.peek().pos
        for _ in range(found[1]):
            self.advance()
        return found[0], pos

    # -- query structure
    def parse_query(self) -> Pipeline:
        if self.peek().kind == _EOF:
            raise self.error("Query is empty")
        pipe = self.parse_pipeline()
        while self.at_op(";"):
            self.advance()
        if self.peek().kind != _EOF:
            raise self.unexpected("'|'")
        return pipe

    def parse_pipeline(self) -> Pipeline:
        tok = self.peek()
        if tok.kind != _IDENT or tok.value.startswith("$"):
            raise self.unexpected("a table name")
        self.advance()
        ops = []
        while self.at_op("|"):
            self.advance()
            ops.append(self.parse_operator())
        return Pipeline(tok.value, tok.pos, ops)

    def parse_operator(self) -> Operator:
        tok = self.peek()
        if tok.kind != _IDENT:
            raise self.unexpected("a query operator")
        self.advance()
        name, end = tok.value, tok.end
        # hyphenated operator names: project-away, mv-expand, ...
        while (self.at_op("-") and self.peek().pos == end and self.peek(1).kind == _IDENT
               and self.peek(1).pos == self.peek().end):
            self.advance()
            part = self.advance()
            name, end = f"{name}-{part.value}", part.end
        handler = getattr(self, "op_" + name.replace("-", "_"), None)
        if handler is None:
            raise self.error(f"Unknown or unsupported query operator '{name}'", tok)
        return handler(Operator(name, tok.pos))

    # -- operators
    def op_where(self, op: Operator) -> Operator:
        op.kind = "where"
        op.args["predicate"] = self.parse_expr()
        return op

    op_filter = op_where

    def op_extend(self, op: Operator) -> Operator:
        op.args["items"] = self.parse_assignments()
        return op

    def op_project(self, op: Operator) -> Operator:
        op.args["items"] = self.parse_assignments()
        return op

    def op_project_away(self, op: Operator) -> Operator:
        op.args["names"] = self.parse_name_list()
        return op

    def op_project_keep(self, op: Operator) -> Operator:
        op.args["names"] = self.parse_name_list()
        return op

    def op_project_rename(self, op: Operator) -> Operator:
        pairs = []
        while True:
            new, pos = self.expect_name("a new column name")
            self.expect_op("=")
            old, old_pos = self.expect_name("an existing column name")
            pairs.append((new, old, old_pos))
            if not self.at_op(","):
                break
            self.advance()
        op.args["pairs"] = pairs
        return op

    def op_order(self, op: Operator) -> Operator:
        op.kind = "order"
        self.expect_word("by")
        op.args["keys"] = self.parse_sort_keys()
        return op

    op_sort = op_order

    def op_take(self, op: Operator) -> Operator:
        op.kind = "take"
        op.args["count"] = self.expect_int("row count")
        return op

    op_limit = op_take

    def op_top(self, op: Operator) -> Operator:
        op.args["count"] = self.expect_int("row count")
        self.expect_word("by")
        op.args["keys"] = self.parse_sort_keys()
        return op

    def op_summarize(self, op: Operator) -> Operator:
        aggs, keys = [], []
        if self.peek().kind == _EOF or self.at_op("|") or self.at_op(")"):
            raise self.unexpected("an aggregate function or 'by'")
        if not self.at_word("by"):
            aggs = self.parse_assignments()
        if self.at_word("by"):
            self.advance()
            keys = self.parse_assignments()
        if not aggs and not keys:
            raise self.unexpected("an aggregate function or 'by'")
        op.args.update(aggs=aggs, keys=keys)
        return op

    def op_count(self, op: Operator) -> Operator:
        return op

    def op_distinct(self, op: Operator) -> Operator:
        if self.at_op("*"):
            self.advance()
            op.args["items"] = None
        else:
            op.args["items"] = self.parse_assignments()
        return op

    def op_mv_expand(self, op: Operator) -> Operator:
        kind, index_name = "bag", None
        while self.at_word("kind", "bagexpansion", "with_itemindex") and self.at_op("=", 1):
            param = self.advance().value
            self.advance()
            if param == "with_itemindex":
                index_name, _ = self.expect_name()
            else:
                value = self.advance()
                if value.kind != _IDENT or value.value not in ("bag", "array"):
                    raise self.unexpected("'bag' or 'array'", value)
                kind = value.value
        items = []
        while True:
            item = self.parse_assignment()
            cast = None
            if self.at_word("to"):
                self.advance()
                self.expect_word("typeof")
                self.expect_op("(")
                cast_tok = self.advance()
                if cast_tok.kind != _IDENT or cast_tok.value not in _CASTS:
                    raise self.unexpected("a scalar type name", cast_tok)
                cast = cast_tok.value
                self.expect_op(")")
            items.append((item, cast))
            if not self.at_op(","):
                break
            self.advance()
        limit = MV_EXPAND_DEFAULT_LIMIT
        if self.at_word("limit"):
            self.advance()
            limit = self.expect_int("row limit")
        op.args.update(kind=kind, index_name=index_name, items=items, limit=limit)
        return op

    def op_join(self, op: Operator) -> Operator:
        kind = "innerunique"
        while True:
            if self.at_word("kind") and self.at_op("=", 1):
                self.advance()
                self.advance()
                tok = self.advance()
                if tok.kind != _IDENT or tok.value not in _JOIN_KINDS:
                    raise self.error(f"Unsupported join kind '{self.text[tok.pos:tok.end]}'", tok)
                kind = _JOIN_KINDS[tok.value]
            elif self.at_word("hint") and self.at_op(".", 1):  # hint.strategy=..., ignored
                self.advance()
                self.advance()
                self.advance()
                self.expect_op("=")
                self.advance()
            else:
                break
        if self.at_op("("):
            self.advance()
            right = self.parse_pipeline()
            self.expect_op(")")
        else:
            tok = self.peek()
            if tok.kind != _IDENT or tok.value.startswith("$"):
                raise self.unexpected("'(' or a table name")
            self.advance()
            right = Pipeline(tok.value, tok.pos, [])
        self.expect_word("on")
        keys = []
        while True:
            keys.append(self.parse_join_key())
            if not self.at_op(","):
                break
            self.advance()
        op.args.update(kind=kind, right=right, keys=keys)
        return op

    def parse_join_key(self) -> tuple[str, str, int]:
        """``col`` or ``$left.a == $right.b`` (either order) -> (left, right, pos)."""
        pos = self.peek().pos
        if not self.at_word("$left", "$right"):
            name, pos = self.expect_name()
            return name, name, pos
        sides = {}
        for i in range(2):
            side = self.advance()
            if side.kind != _IDENT or side.value not in ("$left", "$right") or side.value in sides:
                raise self.unexpected("'$left' or '$right'", side)
            self.expect_op(".")
            sides[side.value], _ = self.expect_name()
            if i == 0:
                self.expect_op("==")
        return sides["$left"], sides["$right"], pos

    # -- operator pieces
    def parse_name_list(self) -> list[tuple[str, int]]:
        names = [self.expect_name()]
        while self.at_op(","):
            self.advance()
            names.append(self.expect_name())
        return names

    def parse_assignment(self) -> Assign:
        pos = self.peek().pos
        found = self.name_token()
        if found is not None and self.at_op("=", found[1]):
            for _ in range(found[1] + 1):
                self.advance()
            return Assign(found[0], self.parse_expr(), pos)
        return Assign(None, self.parse_expr(), pos)

    def parse_assignments(self) -> list[Assign]:
        items = [self.parse_assignment()]
        while self.at_op(","):
            self.advance()
            items.append(self.parse_assignment())
        return items

    def parse_sort_keys(self) -> list[SortKey]:
        keys = []
        while True:
            expr = self.parse_expr()
            desc = True
            if self.at_word("asc", "desc"):
                desc = self.advance().value == "desc"
            nulls_first = not desc
            if self.at_word("nulls"):
                self.advance()
                if not self.at_word("first", "last"):
                    raise self.unexpected("'first' or 'last'")
                nulls_first = self.advance().value == "first"
            keys.append(SortKey(expr, desc, nulls_first))
            if not self.at_op(","):
                return keys
            self.advance()

    # -- expressions (lowest to highest precedence)
    def parse_expr(self):
        return self.parse_or()

    def parse_or(self):
        left = self.parse_and()
        while self.at_word("or"):
            tok = self.advance()
            left = Binary("or", left, self.parse_and(), tok.pos)
        return left

    def parse_and(self):
        left = self.parse_comparison()
        while self.at_word("and"):
            tok = self.advance()
            left = Binary("and", left, self.parse_comparison(), tok.pos)
        return left

    def parse_comparison(self):
        left = self.parse_additive()
        tok = self.peek()
        if tok.kind not in (_OP, _IDENT):
            return left
        word = tok.value
        if tok.kind == _OP and word in _CMP_SYMBOLS:
            self.advance()
            return Binary("!=" if word == "<>" else word, left, self.parse_additive(), tok.pos)
        if word.lstrip("!") in _STRING_OPS:
            self.advance()
            return Binary(word, left, self.parse_additive(), tok.pos)
        if word in _LIST_OPS:
            self.advance()
            return InList(word, left, self.parse_paren_list(), tok.pos)
        if word == "matches" and tok.kind == _IDENT:
            self.advance()
            self.expect_word("regex")
            return Binary("matches regex", left, self.parse_additive(), tok.pos)
        if word in ("between", "!between"):
            self.advance()
            self.expect_op("(")
            low = self.parse_additive()
            self.expect_op("..")
            high = self.parse_additive()
            self.expect_op(")")
            return Between(word == "!between", left, low, high, tok.pos)
        if tok.kind == _OP and word.startswith("!") and len(word) > 1:
            raise self.error(f"Unknown operator '{word}'", tok)
        return left

    def parse_paren_list(self) -> list:
        self.expect_op("(")
        items = [self.parse_expr()]
        while self.at_op(","):
            self.advance()
            items.append(self.parse_expr())
        self.expect_op(")")
        return items

    def parse_additive(self):
        left = self.parse_multiplicative()
        while self.at_op("+") or self.at_op("-"):
            tok = self.advance()
            left = Binary(tok.value, left, self.parse_multiplicative(), tok.pos)
        return left

    def parse_multiplicative(self):
        left = self.parse_unary()
        while self.at_op("*") or self.at_op("/") or self.at_op("%"):
            tok = self.advance()
            left = Binary(tok.value, left, self.parse_unary(), tok.pos)
        return left

    def parse_unary(self):
        if self.at_op("-") or self.at_op("+"):
            tok = self.advance()
            operand = self.parse_unary()
            if tok.value == "+":
                return operand
            if isinstance(operand, Lit) and _is_number(operand.value):
                return Lit(-operand.value, tok.pos)
            return Unary("-", operand, tok.pos)
        return self.parse_postfix()

    def parse_postfix(self):
        node = self.parse_primary()
        while True:
            if self.at_op("."):
                dot = self.advance()
                tok = self.peek()
                if tok.kind != _IDENT or tok.value.startswith("$"):
                    raise self.unexpected("a property name")
                self.advance()
                node = Member(node, Lit(tok.value, tok.pos), dot.pos)
            elif self.at_op("["):
                br = self.advance()
                key = self.parse_expr()
                self.expect_op("]")
                node = Member(node, key, br.pos)
            else:
                return node

    def parse_primary(self):
        tok = self.peek()
        if tok.kind in (_STRING, _NUMBER, _TIMESPAN):
            self.advance()
            return Lit(tok.value, tok.pos)
        if tok.kind == _DATETIME:
            self.advance()
            if tok.value == "null":
                return Lit(None, tok.pos)
            value = _parse_datetime(tok.value)
            if value is None:
                raise self.error(f"Invalid datetime literal '{tok.value}'", tok)
            return Lit(value, tok.pos)
        if tok.kind == _OP and tok.value == "(":
            self.advance()
            expr = self.parse_expr()
            self.expect_op(")")
            return expr
        if tok.kind == _OP and tok.value == "[":
            name, pos = self.expect_name()
            return Col(name, pos)
        if tok.kind != _IDENT or tok.value.startswith("$") or tok.value == "in~":
            raise self.unexpected("an expression")
        word = tok.value
        self.advance()
        if word in ("true", "false", "True", "False", "TRUE", "FALSE"):
            return Lit(word.lower() == "true", tok.pos)
        if word == "null":
            return Lit(None, tok.pos)
        if self.at_op("("):
            if word == "dynamic":
                self.advance()
                value = self.parse_dynamic_value()
                self.expect_op(")")
                return Lit(value, tok.pos)
            if word in _TYPED_LITERALS:
                return Lit(self.parse_typed_literal(word), tok.pos)
            self.advance()
            args = []
            if not self.at_op(")"):
                args = [self.parse_expr()]
                while self.at_op(","):
                    self.advance()
                    args.append(self.parse_expr())
            self.expect_op(")")
            return Call(word, args, tok.pos)
        return Col(word, tok.pos)

    def parse_typed_literal(self, word: str) -> Any:
        self.expect_op("(")
        negative = False
        if self.at_op("-"):
            self.advance()
            negative = True
        tok = self.advance()
        if tok.kind == _IDENT and tok.value == "null":
            value = None
        elif tok.kind == _IDENT and tok.value.lower() in ("true", "false") and _TYPED_LITERALS[word] is bool:
            value = tok.value.lower() == "true"
        elif tok.kind == _NUMBER and _TYPED_LITERALS[word] is not bool:
            value = _TYPED_LITERALS[word](-tok.value if negative else tok.value)
        else:
            raise self.error(f"Invalid {word} literal", tok)
        self.expect_op(")")
        return value

    def parse_dynamic_value(self) -> Any:
        """JSON-like content of ``dynamic(...)`` (single or double quoted strings)."""
        tok = self.peek()
        if tok.kind == _OP and tok.value == "[":
            self.advance()
            items = []
            if not self.at_op("]"):
                items.append(self.parse_dynamic_value())
                while self.at_op(","):
                    self.advance()
                    items.append(self.parse_dynamic_value())
            self.expect_op("]")
            return items
        if tok.kind == _OP and tok.value == "{":
            self.advance()
            bag = {}
            if not self.at_op("}"):
                while True:
                    key = self.advance()
                    if key.kind not in (_STRING, _IDENT):
                        raise self.unexpected("a property name", key)
                    self.expect_op(":")
                    bag[key.value] = self.parse_dynamic_value()
                    if not self.at_op(","):
                        break
                    self.advance()
            self.expect_op("}")
            return bag
        if tok.kind == _OP and tok.value == "-" and self.peek(1).kind == _NUMBER:
            self.advance()
            return -self.advance().value
        if tok.kind in (_STRING, _NUMBER):
            self.advance()
            return tok.value
        if tok.kind == _DATETIME:
            self.advance()
            return _tostring(_parse_datetime(tok.value))
        if tok.kind == _IDENT and tok.value in ("true", "false", "null"):
            self.advance()
            return {"true": True, "false": False, "null": None}[tok.value]
        raise self.unexpected("a dynamic value")


# --------------------------------------------------------------------------- scalar functions


def _constant(value: Any) -> RowFn:
    def const(row):
        return value
    const.const = (value,)  # type: ignore[attr-defined]
    return const


def _const_of(fn: RowFn) -> tuple | None:
    """``(value,)`` when ``fn`` is a compile-time constant, else None."""
    return getattr(fn, "const", None)


def _to_long(v: Any) -> int | None:
    t = type(v)
    if t is int:
        return v
    if t is bool:
        return int(v)
    if t is float:
        return int(v) if math.isfinite(v) else None
    if t is str:
        s = v.strip()
        try:
            return int(s)
        except ValueError:
            try:
                f = float(s)
            except ValueError:
                return None
            return int(f) if math.isfinite(f) else None
    return None


def _to_double(v: Any) -> float | None:
    t = type(v)
    if t is float:
        return v
    if t is int or t is bool:
        return float(v)
    if t is str:
        try:
            return float(v.strip())
        except ValueError:
            return None
    return None


def _to_bool(v: Any) -> bool | None:
    t = type(v)
    if t is bool:
        return v
    if t is int or t is float:
        return v != 0
    if t is str:
        s = v.strip().lower()
        if s in ("true", "1"):
            return True
        if s in ("false", "0"):
            return False
    return None


def _isempty(v: Any) -> bool:
    return v is None or v == ""


def _split(s: Any, delim: Any, index: Any = None) -> list | None:
    parts = _tostring(s).split(_tostring(delim)) if _tostring(delim) else [_tostring(s)]
    if index is None:
        return parts
    i = _to_long(index)
    return [parts[i]] if i is not None and 0 <= i < len(parts) else []


def _coalesce(*values: Any) -> Any:
    for v in values:
        if v is not None and v != "":
            return v
    return None


def _substring(s: Any, start: Any, length: Any = None) -> str | None:
    text, start_i = _tostring(s), _to_long(start)
    if start_i is None:
        return None
    start_i = max(start_i, 0)
    if length is None:
        return text[start_i:]
    n = _to_long(length)
    return None if n is None else text[start_i:start_i + max(n, 0)]


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern:
    """Compile a query-supplied regular expression (Python ``re`` syntax, close to RE2)."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise _error(f"Invalid regular expression '{pattern}': {exc}") from None


def _trim(pattern: Any, s: Any, start: bool = True, end: bool = True) -> str:
    p, text = _tostring(pattern), _tostring(s)
    if not p:
        return text
    if start:
        text = _regex(f"^(?:{p})+").sub("", text, count=1)
    if end:
        text = _regex(f"(?:{p})+$").sub("", text, count=1)
    return text


def _extract(pattern: Any, group: Any, s: Any) -> str | None:
    m = _regex(_tostring(pattern)).search(_tostring(s))
    g = _to_long(group)
    if m is None or g is None or not 0 <= g <= m.re.groups:
        return None
    return m.group(g)


def _parse_json(v: Any) -> Any:
    if type(v) is not str:
        return v
    try:
        return json.loads(v)
    except ValueError:
        return v


def _bag_pack(*args: Any) -> dict:
    return {_tostring(args[i]): args[i + 1] for i in range(0, len(args) - 1, 2)}


def _bin(v: Any, size: Any) -> Any:
    if v is None or size is None:
        return None
    if isinstance(v, datetime) and isinstance(size, timedelta) and size.total_seconds() > 0:
        step = size.total_seconds()
        return datetime.fromtimestamp(math.floor(v.timestamp() / step) * step, timezone.utc)
    if _is_number(v) and _is_number(size) and size > 0:
        result = math.floor(v / size) * size
        return int(result) if type(v) is int and type(size) is int else float(result)
    return None


def _indexof(s: Any, lookup: Any, start: Any = 0) -> int | None:
    i = _to_long(start)
    return None if i is None else _tostring(s).find(_tostring(lookup), max(i, 0))


def _ago(ts: Any) -> datetime | None:
    return datetime.now(timezone.utc) - ts if isinstance(ts, timedelta) else None


# name -> (min args, max args or None for unlimited, implementation, pure)
_FUNCTIONS: dict[str, tuple[int, int | None, Callable[..., Any], bool]] = {
    "tostring": (1, 1, _tostring, True),
    "tolower": (1, 1, lambda v: _tostring(v).lower(), True),
    "toupper": (1, 1, lambda v: _tostring(v).upper(), True),
    "toint": (1, 1, _to_long, True),
    "tolong": (1, 1, _to_long, True),
    "todouble": (1, 1, _to_double, True),
    "toreal": (1, 1, _to_double, True),
    "tobool": (1, 1, _to_bool, True),
    "toboolean": (1, 1, _to_bool, True),
    "todatetime": (1, 1, _parse_datetime, True),
    "parse_json": (1, 1, _parse_json, True),
    "todynamic": (1, 1, _parse_json, True),
    "isempty": (1, 1, _isempty, True),
    "isnotempty": (1, 1, lambda v: not _isempty(v), True),
    "isnull": (1, 1, lambda v: v is None, True),
    "isnotnull": (1, 1, lambda v: v is not None, True),
    "strcat": (1, 64, lambda *a: "".join(map(_tostring, a)), True),
    "strcat_delim": (3, 65, lambda d, *a: _tostring(d).join(map(_tostring, a)), True),
    "strcat_array": (2, 2, lambda a, d: _tostring(d).join(map(_tostring, a))
                     if isinstance(a, list) else None, True),
    "split": (2, 3, _split, True),
    "array_length": (1, 1, lambda v: len(v) if isinstance(v, list) else None, True),
    "coalesce": (2, 64, _coalesce, True),
    "strlen": (1, 1, lambda v: len(_tostring(v)), True),
    "substring": (2, 3, _substring, True),
    "indexof": (2, 3, _indexof, True),
    "replace_string": (3, 3, lambda s, a, b: _tostring(s).replace(_tostring(a), _tostring(b))
                       if _tostring(a) else _tostring(s), True),
    "extract": (3, 3, _extract, True),
    "trim": (2, 2, _trim, True),
    "trim_start": (2, 2, lambda p, s: _trim(p, s, end=False), True),
    "trim_end": (2, 2, lambda p, s: _trim(p, s, start=False), True),
    "bag_keys": (1, 1, lambda v: list(v) if isinstance(v, dict) else None, True),
    "bag_pack": (2, 64, _bag_pack, True),
    "pack": (2, 64, _bag_pack, True),
    "pack_array": (1, 64, lambda *a: list(a), True),
    "set_has_element": (2, 2, lambda a, v: any(_eq(x, v) for x in a)
                        if isinstance(a, list) else None, True),
    "bin": (2, 2, _bin, True),
    "floor": (2, 2, _bin, True),
    "now": (0, 0, lambda: datetime.now(timezone.utc), False),
    "ago": (1, 1, _ago, False),
}
_SPECIAL_FUNCTIONS = {"iff": (3, 3), "iif": (3, 3), "case": (3, None), "not": (1, 1)}


def _agg_min_max(pick: Callable) -> Callable:
    def agg(values: list) -> Any:
        present = [v for v in values if v is not None]
        return pick(present, key=_order_value) if present else None
    return agg


def _agg_sum(values: list) -> Any:
    nums = [v for v in values if _is_number(v)]
    return sum(nums) if nums else None


def _agg_avg(values: list) -> Any:
    nums = [v for v in values if _is_number(v)]
    return sum(nums) / len(nums) if nums else None


def _agg_make_set(values: list) -> list:
    seen, out = set(), []
    for v in values:
        if v is not None:
            k = _hashable(v)
            if k not in seen:
                seen.add(k)
                out.append(v)
    return out


# name -> (min args, max args, default-name prefix, reducer over the argument's values)
_AGGREGATES: dict[str, tuple[int, int, str, Callable[[list], Any] | None]] = {
    "count": (0, 0, "count_", None),
    "countif": (1, 1, "countif_", lambda vs: sum(1 for v in vs if v is True)),
    "dcount": (1, 2, "dcount_", lambda vs: len({_hashable(v) for v in vs if v is not None})),
    "make_list": (1, 2, "list_", lambda vs: [v for v in vs if v is not None]),
    "make_set": (1, 2, "set_", _agg_make_set),
    "min": (1, 1, "min_", _agg_min_max(min)),
    "max": (1, 1, "max_", _agg_min_max(max)),
    "sum": (1, 1, "sum_", _agg_sum),
    "avg": (1, 1, "avg_", _agg_avg),
    "take_any": (1, 1, "any_", lambda vs: next((v for v in vs if v is not None), None)),
    "any": (1, 1, "any_", lambda vs: next((v for v in vs if v is not None), None)),
}

_CASTS: dict[str, Callable[[Any], Any]] = {
    "string": lambda v: v if type(v) is str else None,
    "long": lambda v: v if type(v) is int else None,
    "int": lambda v: v if type(v) is int else None,
    "real": lambda v: float(v) if _is_number(v) else None,
    "double": lambda v: float(v) if _is_number(v) else None,
    "bool": lambda v: v if type(v) is bool else None,
    "boolean": lambda v: v if type(v) is bool else None,
    "datetime": _parse_datetime,
    "dynamic": lambda v: v,
}


# --------------------------------------------------------------------------- naming


_NAME_UNSAFE_RE = re.compile(r"[^0-9A-Za-z_]")


def _derived_name(node: Any) -> str | None:
    """Column name Kusto gives an unnamed expression, or None (-> ColumnN)."""
    if isinstance(node, Col):
        return node.name
    if isinstance(node, Member):
        base = _derived_name(node.target)
        if base is None or not isinstance(node.key, Lit) or not isinstance(node.key.value, (str, int)):
            return None
        return f"{base}_{_NAME_UNSAFE_RE.sub('_', str(node.key.value))}"
    if isinstance(node, Call) and node.name not in _AGGREGATES:
        if len(node.args) == 1 or (node.name in ("bin", "floor") and node.args):
            return _derived_name(node.args[0])
    return None


class _Names:
    """Allocates output column names for one operator (uniquifying derived names)."""

    def __init__(self, taken: Iterable[str] = ()):
        self.taken = set(taken)
        self.counter = 0

    def unique(self, base: str) -> str:
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}{k}"
        self.taken.add(name)
        return name

    def column(self) -> str:
        while True:
            self.counter += 1
            name = f"Column{self.counter}"
            if name not in self.taken:
                self.taken.add(name)
                return name


# --------------------------------------------------------------------------- compiler

_EMPTY_ROW: dict = {}


class _Context:
    """Per-run state: the table mapping, materialised lazily."""

    def __init__(self, tables: Mapping[str, Iterable[dict]]):
        self.tables = tables
        self.cache: dict[str, list] = {}

    def table(self, name: str) -> list:
        rows = self.cache.get(name)
        if rows is None:
            source = self.tables.get(name)
            if source is None:
                for key, value in self.tables.items():
                    if key.lower() == name:
                        source = value
                        break
            rows = self.cache[name] = list(source) if source is not None else []
        return list(rows)


Step = Callable[[list, _Context], list]


class _Compiler:
    """Turns parsed pipelines into closures while tracking the column schema."""

    def __init__(self, text: str):
        self.text = text
        self.joins = 0
        self.mv_expands = 0

    def error(self, reason: str, pos: int) -> KqlError:
        return _error(reason, self.text, pos)

    # -- pipelines
    def pipeline(self, pipe: Pipeline) -> tuple[Callable[[_Context], list], list[str], bool, bool]:
        """Returns (run(ctx) -> rows, output columns, rows_are_fresh, has_row_limit)."""
        table = pipe.table.lower()
        if table not in KNOWN_TABLES:
            raise self.error(f"Failed to resolve table expression named '{pipe.table}'", pipe.pos)
        schema = list(RESOURCE_COLUMNS)
        steps: list[Step] = []
        fresh = has_limit = False
        for op in pipe.ops:
            step, schema, produces = getattr(self, "op_" + op.kind.replace("-", "_"))(op, schema)
            steps.append(step)
            fresh = fresh or produces
            has_limit = has_limit or op.kind in ("take", "top")

        def run(ctx: _Context) -> list:
            rows = ctx.table(table)
            for step in steps:
                rows = step(rows, ctx)
            return rows

        return run, schema, fresh, has_limit

    # -- tabular operators: each returns (step, new schema, produces fresh row dicts)
    def op_where(self, op: Operator, schema: list[str]):
        pred = self.expr(op.args["predicate"], schema)
        const = _const_of(pred)
        if const is not None:
            keep = const[0] is True
            return (lambda rows, ctx: rows if keep else []), schema, False
        return (lambda rows, ctx: [r for r in rows if pred(r) is True]), schema, False

    def op_extend(self, op: Operator, schema: list[str]):
        schema = list(schema)
        names = _Names(schema)
        items = []
        for item in op.args["items"]:
            fn = self.expr(item.expr, schema)
            name = item.name or self.auto_name(item.expr, names)
            if name not in schema:
                schema.append(name)
            names.taken.add(name)
            items.append((name, fn))

        def step(rows, ctx):
            out = []
            for r in rows:
                new = dict(r)
                for name, fn in items:
                    new[name] = fn(new)
                out.append(new)
            return out
        return step, schema, True

    def op_project(self, op: Operator, schema: list[str]):
        names = _Names()
        items = []
        explicit = [item.name for item in op.args["items"] if item.name]
        names.taken.update(explicit)
        seen = set()
        for item in op.args["items"]:
            fn = self.expr(item.expr, schema)
            if item.name:
                if item.name in seen:
                    raise self.error(f"Duplicate column name '{item.name}' in project", item.pos)
                name = item.name
            else:
                name = self.auto_name(item.expr, names)
            seen.add(name)
            items.append((name, fn))
        return self._projection_step(items), [n for n, _ in items], True

    @staticmethod
    def _projection_step(items: list[tuple[str, RowFn]]) -> Step:
        if all(hasattr(fn, "column") for _, fn in items):
            pairs = [(name, fn.column) for name, fn in items]
            return lambda rows, ctx: [{n: r.get(c) for n, c in pairs} for r in rows]
        return lambda rows, ctx: [{n: fn(r) for n, fn in items} for r in rows]

    def op_project_away(self, op: Operator, schema: list[str]):
        drop = {name for name, pos in op.args["names"] if self.check_column(name, schema, pos)}
        return ((lambda rows, ctx: [{k: v for k, v in r.items() if k not in drop} for r in rows]),
                [c for c in schema if c not in drop], True)

    def op_project_keep(self, op: Operator, schema: list[str]):
        keep = {name for name, pos in op.args["names"] if self.check_column(name, schema, pos)}
        return ((lambda rows, ctx: [{k: v for k, v in r.items() if k in keep} for r in rows]),
                [c for c in schema if c in keep], True)

    def op_project_rename(self, op: Operator, schema: list[str]):
        renames: dict[str, str] = {}
        for new, old, pos in op.args["pairs"]:
            self.check_column(old, schema, pos)
            renames[old] = new
        new_schema = [renames.get(c, c) for c in schema]
        new_schema += [n for o, n in renames.items() if o not in schema and n not in new_schema]

        def step(rows, ctx):
            out = []
            for r in rows:
                new = {renames.get(k, k): v for k, v in r.items()}
                for old, name in renames.items():
                    if old not in r:
                        new.setdefault(name, None)
                out.append(new)
            return out
        return step, new_schema, True

    def op_order(self, op: Operator, schema: list[str]):
        keys = [self.sort_key(k, schema) for k in op.args["keys"]]

        def step(rows, ctx):
            rows = list(rows)
            for key, desc in reversed(keys):
                rows.sort(key=key, reverse=desc)
            return rows
        return step, schema, False

    def op_take(self, op: Operator, schema: list[str]):
        n = op.args["count"]
        return (lambda rows, ctx: rows[:n]), schema, False

    def op_top(self, op: Operator, schema: list[str]):
        order, _, _ = self.op_order(op, schema)
        n = op.args["count"]
        return (lambda rows, ctx: order(rows, ctx)[:n]), schema, False

    def op_count(self, op: Operator, schema: list[str]):
        return (lambda rows, ctx: [{"Count": len(rows)}]), ["Count"], True

    def op_distinct(self, op: Operator, schema: list[str]):
        items = op.args["items"]
        if items is None:
            columns = list(schema)
            getters = [(c, _column_getter(c)) for c in columns]
        else:
            names = _Names()
            getters = []
            for item in items:
                fn = self.expr(item.expr, schema)
                getters.append((item.name or self.auto_name(item.expr, names), fn))
            columns = [n for n, _ in getters]

        def step(rows, ctx):
            seen, out = set(), []
            for r in rows:
                values = [fn(r) for _, fn in getters]
                key = tuple(map(_hashable, values))
                if key not in seen:
                    seen.add(key)
                    out.append(dict(zip(columns, values)))
            return out
        return step, columns, True

    def op_summarize(self, op: Operator, schema: list[str]):
        names = _Names()
        keys: list[tuple[str, RowFn]] = []
        for item in op.args["keys"]:
            fn = self.expr(item.expr, schema)
            name = names.unique(item.name) if item.name else self.auto_name(item.expr, names)
            keys.append((name, fn))
        aggs = []
        for item in op.args["aggs"]:
            call = item.expr
            if not isinstance(call, Call) or call.name not in _AGGREGATES:
                raise self.error("summarize expects aggregate function calls such as count()",
                                 getattr(call, "pos", item.pos))
            lo, hi, prefix, reducer = _AGGREGATES[call.name]
            self.check_arity(call, lo, hi)
            arg = self.expr(call.args[0], schema) if call.args else None
            if item.name:
                name = names.unique(item.name)
            else:
                base = _derived_name(call.args[0]) if call.args and prefix != "countif_" else None
                name = names.unique(prefix + (base or ""))
            aggs.append((name, arg, reducer))
        key_names = [n for n, _ in keys]
        key_fns = [fn for _, fn in keys]

        def step(rows, ctx):
            groups: dict[tuple, tuple[list, list]] = {}
            for r in rows:
                values = [fn(r) for fn in key_fns]
                k = tuple(map(_hashable, values))
                group = groups.get(k)
                if group is None:
                    group = groups[k] = (values, [])
                group[1].append(r)
            if not key_fns and not groups:
                groups[()] = ([], [])
            out = []
            for values, members in groups.values():
                new = dict(zip(key_names, values))
                for name, arg, reducer in aggs:
                    new[name] = len(members) if reducer is None else reducer([arg(m) for m in members])
                out.append(new)
            return out
        return step, key_names + [n for n, _, _ in aggs], True

    def op_mv_expand(self, op: Operator, schema: list[str]):
        self.mv_expands += 1
        if self.mv_expands > MAX_MV_EXPANDS:
            raise self.error(f"A query may contain at most {MAX_MV_EXPANDS} mv-expand operators", op.pos)
        schema = list(schema)
        items = []
        for item, cast in op.args["items"]:
            fn = self.expr(item.expr, schema)
            name = item.name or _derived_name(item.expr)
            if name is None:
                raise self.error("mv-expand of an expression needs a column name (name = expr)", item.pos)
            if name not in schema:
                schema.append(name)
            items.append((name, fn, _CASTS[cast] if cast else None))
        index_name = op.args["index_name"]
        if index_name and index_name not in schema:
            schema.append(index_name)
        limit, as_bag = op.args["limit"], op.args["kind"] == "bag"

        def values_of(v):
            if v is None:
                return [None]
            if isinstance(v, list):
                return v
            if isinstance(v, dict):
                return [{k: x} for k, x in v.items()] if as_bag else [[k, x] for k, x in v.items()]
            return [v]

        def step(rows, ctx):
            out = []
            for r in rows:
                expanded = [values_of(fn(r)) for _, fn, _ in items]
                count = min(max(len(e) for e in expanded), limit)
                for i in range(count):
                    new = dict(r)
                    for (name, _, cast), values in zip(items, expanded):
                        v = values[i] if i < len(values) else None
                        new[name] = cast(v) if cast and v is not None else v
                    if index_name:
                        new[index_name] = i
                    out.append(new)
            return out
        return step, schema, True

    def op_join(self, op: Operator, schema: list[str]):
        self.joins += 1
        if self.joins > MAX_JOINS:
            raise self.error(f"A query may contain at most {MAX_JOINS} join operators", op.pos)
        kind = op.args["kind"]
        right_run, right_schema, _, _ = self.pipeline(op.args["right"])
        left_cols, right_cols = [], []
        for left, right, pos in op.args["keys"]:
            self.check_column(left, schema, pos)
            self.check_column(right, right_schema, pos)
            left_cols.append(left)
            right_cols.append(right)

        taken = set(schema)
        rename: dict[str, str] = {}
        for c in right_schema:
            name, k = c, 0
            while name in taken:
                k += 1
                name = f"{c}{k}"
            taken.add(name)
            rename[c] = name
        left_set = set(schema)
        right_out = list(rename.values())

        def key_of(row, cols):
            values = tuple(_hashable(row.get(c)) for c in cols)
            return None if any(v is None for v in values) else values

        def merge(left_row, right_row):
            out = dict(left_row) if left_row is not None else dict.fromkeys(schema)
            if right_row is None:
                for name in right_out:
                    out[name] = None
            else:
                for k, v in right_row.items():
                    out[rename.get(k) or (k + "1" if k in left_set else k)] = v
            return out

        def step(rows, ctx):
            index: dict[tuple, list] = {}
            right_rows = right_run(ctx)
            for rr in right_rows:
                k = key_of(rr, right_cols)
                if k is not None:
                    index.setdefault(k, []).append(rr)
            if kind in ("rightsemi", "rightanti"):
                left_keys = {key_of(r, left_cols) for r in rows} - {None}
                want = kind == "rightsemi"
                return [dict(rr) for rr in right_rows if (key_of(rr, right_cols) in left_keys) == want]
            if kind == "innerunique":
                unique, seen = [], set()
                for r in rows:
                    k = key_of(r, left_cols)
                    if k not in seen:
                        seen.add(k)
                        unique.append(r)
                rows = unique
            out, matched = [], set()
            for r in rows:
                k = key_of(r, left_cols)
                hits = index.get(k, ()) if k is not None else ()
                if kind == "leftsemi":
                    if hits:
                        out.append(r)
                elif kind == "leftanti":
                    if not hits:
                        out.append(r)
                elif hits:
                    for rr in hits:
                        matched.add(id(rr))
                        out.append(merge(r, rr))
                elif kind in ("leftouter", "fullouter"):
                    out.append(merge(r, None))
            if kind in ("rightouter", "fullouter"):
                out.extend(merge(None, rr) for rr in right_rows if id(rr) not in matched)
            return out

        if kind in ("leftsemi", "leftanti"):
            return step, list(schema), False
        if kind in ("rightsemi", "rightanti"):
            return step, list(right_schema), True
        return step, list(schema) + right_out, True

    # -- helpers
    def check_column(self, name: str, schema: list[str], pos: int) -> bool:
        if name in schema or name in _RESOURCE_COLUMN_SET:
            return True
        raise self.error(f"Failed to resolve column or scalar expression named '{name}'", pos)

    def check_arity(self, call: Call, lo: int, hi: int | None) -> None:
        n = len(call.args)
        if n < lo or (hi is not None and n > hi):
            if lo == hi:
                expected = f"{lo} argument{'s' if lo != 1 else ''}"
            elif hi is None:
                expected = f"at least {lo} arguments"
            else:
                expected = f"between {lo} and {hi} arguments"
            raise self.error(f"Function '{call.name}' expects {expected}, got {n}", call.pos)

    def auto_name(self, node: Any, names: _Names) -> str:
        base = _derived_name(node)
        return names.unique(base) if base else names.column()

    def sort_key(self, key: SortKey, schema: list[str]):
        fn = self.expr(key.expr, schema)
        null_key = (0,) if key.nulls_first != key.desc else (2,)

        def sort_value(row):
            v = fn(row)
            return null_key if v is None else (1,) + _order_value(v)
        return sort_value, key.desc

    # -- scalar expressions
    def expr(self, node: Any, schema: list[str]) -> RowFn:
        method = getattr(self, "expr_" + type(node).__name__.lower())
        return method(node, schema)

    def expr_lit(self, node: Lit, schema):
        return _constant(node.value)

    def expr_col(self, node: Col, schema):
        if node.name not in schema and node.name not in _RESOURCE_COLUMN_SET:
            raise self.error(f"Failed to resolve scalar expression named '{node.name}'", node.pos)
        return _column_getter(node.name)

    def expr_member(self, node: Member, schema):
        keys = []
        root = node
        while isinstance(root, Member) and isinstance(root.key, Lit):
            keys.append(root.key.value)
            root = root.target
        if isinstance(root, Col) and keys:
            self.expr_col(root, schema)
            return _path_getter(root.name, tuple(reversed(keys)))
        target = self.expr(node.target, schema)
        key = self.expr(node.key, schema)

        def member(row):
            return _index(target(row), key(row))
        return self.fold(member, target, key)

    def expr_unary(self, node: Unary, schema):
        operand = self.expr(node.operand, schema)

        def negate(row):
            v = operand(row)
            return -v if _is_number(v) or isinstance(v, timedelta) else None
        return self.fold(negate, operand)

    def expr_binary(self, node: Binary, schema):
        left = self.expr(node.left, schema)
        right = self.expr(node.right, schema)
        op = node.op
        if op == "and":
            return self.fold(lambda row: left(row) is True and right(row) is True, left, right)
        if op == "or":
            return self.fold(lambda row: left(row) is True or right(row) is True, left, right)
        if op in ("+", "-", "*", "/", "%"):
            arith = _ARITHMETIC[op]
            return self.fold(lambda row: arith(left(row), right(row)), left, right)
        if op == "matches regex":
            return self.fold(self.regex_match(left, right), left, right)
        return self.fold(self.comparison(op, left, right), left, right)

    @staticmethod
    def regex_match(left: RowFn, right: RowFn) -> RowFn:
        const = _const_of(right)
        if const is not None:
            pattern = _regex(_tostring(const[0]))

            def match_const(row):
                v = left(row)
                return v is not None and pattern.search(_tostring(v)) is not None
            return match_const

        def match(row):
            v, p = left(row), right(row)
            return v is not None and p is not None and _regex(_tostring(p)).search(_tostring(v)) is not None
        return match

    def comparison(self, op: str, left: RowFn, right: RowFn) -> RowFn:
        const = _const_of(right)
        c = const[0] if const is not None else None
        if op in ("==", "!="):
            if const is not None and type(c) is str:
                def eq(row):
                    v = left(row)
                    return v == c if type(v) is str else _eq(v, c)
            else:
                def eq(row):
                    return _eq(left(row), right(row))
            return eq if op == "==" else (lambda row: not eq(row))
        if op in ("=~", "!~"):
            if const is not None and c is not None:
                lowered = _tostring(c).lower()

                def ieq(row):
                    v = left(row)
                    if v is None:
                        return False
                    return (v if type(v) is str else _tostring(v)).lower() == lowered
            else:
                def ieq(row):
                    return _ieq(left(row), right(row))
            return ieq if op == "=~" else (lambda row: not ieq(row))
        if op in ("<", "<=", ">", ">="):
            test = _ORDER_TESTS[op]

            def ordered(row):
                r = _compare(left(row), right(row))
                return r is not None and test(r)
            return ordered
        negated = op.startswith("!")
        case_sensitive, pred = _STRING_OPS[op.lstrip("!")]
        if const is not None:
            needle = _tostring(c) if case_sensitive else _tostring(c).lower()
            if case_sensitive:
                def string_op(row):
                    v = left(row)
                    return pred(v if type(v) is str else _tostring(v), needle)
            else:
                def string_op(row):
                    v = left(row)
                    return pred((v if type(v) is str else _tostring(v)).lower(), needle)
        else:
            def string_op(row):
                hay, needle_ = _tostring(left(row)), _tostring(right(row))
                return pred(hay, needle_) if case_sensitive else pred(hay.lower(), needle_.lower())
        return (lambda row: not string_op(row)) if negated else string_op

    def expr_inlist(self, node: InList, schema):
        left = self.expr(node.left, schema)
        items = [self.expr(item, schema) for item in node.items]
        op = node.op
        base = op.lstrip("!")
        consts = [_const_of(fn) for fn in items]
        if all(c is not None for c in consts):
            test = self.constant_list_test(base, _flatten([c[0] for c in consts]))

            def in_list(row):
                return test(left(row))
        else:
            list_test = _LIST_TESTS[base]

            def in_list(row):
                return list_test(left(row), _flatten([fn(row) for fn in items]))
        if op.startswith("!"):
            return self.fold(lambda row: not in_list(row), left, *items)
        return self.fold(in_list, left, *items)

    @staticmethod
    def constant_list_test(op: str, values: list) -> Callable[[Any], bool]:
        if op == "in":
            strings = frozenset(v for v in values if type(v) is str)
            others = [v for v in values if type(v) is not str]

            def contains(v):
                if v is None:
                    return False
                if type(v) is str and v in strings:
                    return True
                return any(_eq(v, x) for x in (others if type(v) is str else values))
            return contains
        if op == "in~":
            lowered = frozenset(_tostring(v).lower() for v in values if v is not None)
            return lambda v: v is not None and _tostring(v).lower() in lowered
        return lambda v: _LIST_TESTS[op](v, values)

    def expr_between(self, node: Between, schema):
        left, low, high = (self.expr(n, schema) for n in (node.left, node.low, node.high))

        def between(row):
            v = left(row)
            a, b = _compare(v, low(row)), _compare(v, high(row))
            return a is not None and b is not None and a >= 0 and b <= 0
        if node.negated:
            return self.fold(lambda row: not between(row), left, low, high)
        return self.fold(between, left, low, high)

    def expr_call(self, node: Call, schema):
        name = node.name
        if name in _AGGREGATES and name not in _FUNCTIONS:
            raise self.error(f"Aggregate function '{name}' can only be used in summarize", node.pos)
        if name in _SPECIAL_FUNCTIONS:
            self.check_arity(node, *_SPECIAL_FUNCTIONS[name])
            args = [self.expr(a, schema) for a in node.args]
            return self.fold(self.special_function(node, args), *args)
        spec = _FUNCTIONS.get(name)
        if spec is None:
            raise self.error(f"Unknown function: '{name}'", node.pos)
        lo, hi, impl, pure = spec
        self.check_arity(node, lo, hi)
        args = [self.expr(a, schema) for a in node.args]
        if len(args) == 0:
            fn = lambda row: impl()  # noqa: E731
        elif len(args) == 1:
            a0 = args[0]
            fn = lambda row: impl(a0(row))  # noqa: E731
        elif len(args) == 2:
            a0, a1 = args
            fn = lambda row: impl(a0(row), a1(row))  # noqa: E731
        else:
            fn = lambda row: impl(*[a(row) for a in args])  # noqa: E731
        return self.fold(fn, *args) if pure else fn

    def special_function(self, node: Call, args: list[RowFn]) -> RowFn:
        if node.name == "not":
            (operand,) = args

            def not_(row):
                v = operand(row)
                return None if type(v) is not bool else not v
            return not_
        if node.name in ("iff", "iif"):
            cond, then, other = args
            return lambda row: then(row) if cond(row) is True else other(row)
        if len(args) % 2 == 0:
            raise self.error("Function 'case' expects condition/value pairs and an else value", node.pos)
        pairs = [(args[i], args[i + 1]) for i in range(0, len(args) - 1, 2)]
        otherwise = args[-1]

        def case(row):
            for cond, value in pairs:
                if cond(row) is True:
                    return value(row)
            return otherwise(row)
        return case

    @staticmethod
    def fold(fn: RowFn, *children: RowFn) -> RowFn:
        """Evaluate ``fn`` once at compile time when every child is a constant."""
        if all(_const_of(c) is not None for c in children):
            return _constant(fn(_EMPTY_ROW))
        return fn


def _column_getter(column: str) -> RowFn:
    """``row.get(column)``, tagged so projections can take a faster path."""
    def get(row):
        return row.get(column)
    get.column = column  # type: ignore[attr-defined]
    return get


def _path_getter(root: str, keys: tuple) -> RowFn:
    """Fast closure for ``root.k1.k2[0]...``; any miss yields None."""
    if len(keys) == 1 and type(keys[0]) is str:
        k0 = keys[0]

        def get1(row):
            v = row.get(root)
            return v.get(k0) if type(v) is dict else _index(v, k0)
        return get1

    def get(row):
        v = row.get(root)
        for k in keys:
            if type(v) is dict and type(k) is str:
                v = v.get(k)
            else:
                v = _index(v, k)
            if v is None:
                return None
        return v
    return get


def _index(v: Any, k: Any) -> Any:
    if v is None or k is None:
        return None
    if isinstance(v, dict):
        return v.get(k) if isinstance(k, str) else None
    if isinstance(v, list) and type(k) is int:
        return v[k] if -len(v) <= k < len(v) else None
    return None


def _flatten(values: list) -> list:
    out = []
    for v in values:
        if isinstance(v, list):
            out.extend(v)
        else:
            out.append(v)
    return out


def _divide(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int:
        if b == 0:
            return None
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b >= 0) else -q
    if isinstance(a, timedelta) and isinstance(b, timedelta):
        return a / b if b else None
    return a / b if b else None


def _modulo(a: Any, b: Any) -> Any:
    if not b:
        return None
    if type(a) is int and type(b) is int:
        return a - b * _divide(a, b)
    return math.fmod(a, b)


_ARITHMETIC_TYPES = frozenset({int, float, datetime, timedelta})


def _arith_op(impl: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Arithmetic on numbers, datetimes and timespans; anything else gives null."""
    def apply(a, b):
        if type(a) not in _ARITHMETIC_TYPES or type(b) not in _ARITHMETIC_TYPES:
            return None
        try:
            return impl(a, b)
        except (TypeError, ValueError, OverflowError):
            return None
    return apply


_ARITHMETIC = {
    "+": _arith_op(lambda a, b: a + b),
    "-": _arith_op(lambda a, b: a - b),
    "*": _arith_op(lambda a, b: a * b),
    "/": _arith_op(_divide),
    "%": _arith_op(_modulo),
}
_ORDER_TESTS = {
    "<": lambda r: r < 0, "<=": lambda r: r <= 0, ">": lambda r: r > 0, ">=": lambda r: r >= 0,
}
_LIST_TESTS: dict[str, Callable[[Any, list], bool]] = {
    "in": lambda v, xs: any(_eq(v, x) for x in xs),
    "in~": lambda v, xs: any(_ieq(v, x) for x in xs),
    "has_any": lambda v, xs: any(_term_match(_tostring(v).lower(), _tostring(x).lower(), True, True)
                                 for x in xs),
    "has_all": lambda v, xs: all(_term_match(_tostring(v).lower(), _tostring(x).lower(), True, True)
                                 for x in xs),
}


# --------------------------------------------------------------------------- public API


class CompiledQuery:
    """A parsed, checked and compiled query; ``run`` may be called many times."""

    __slots__ = ("text", "table", "columns", "has_row_limit", "projects_id", "_run", "_fresh")

    def __init__(self, text: str, table: str, columns: list[str], has_row_limit: bool,
                 run: Callable[[_Context], list], fresh: bool):
        self.text = text
        #: lower-cased source table of the outer pipeline, e.g. "resources"
        self.table = table
        #: output column names as far as they are known statically
        self.columns = columns
        #: True when the outer pipeline contains take/limit/top (no $skip paging)
        self.has_row_limit = has_row_limit
        #: True when output rows still carry an "id" column (needed for $skipToken)
        self.projects_id = "id" in columns
        self._run = run
        self._fresh = fresh

    def run(self, tables: Mapping[str, Iterable[dict]]) -> list[dict]:
        """Evaluate against ``tables`` (keyed by lower-case table name)."""
        rows = self._run(_Context(tables))
        return rows if self._fresh else [dict(r) for r in rows]

    def __repr__(self) -> str:
        return f"CompiledQuery({self.text!r})"


def compile_query(query: str) -> CompiledQuery:
    """Parse and compile ``query``; raises ``KqlError`` when invalid or unsupported.

    Results are cached by query text (compiled queries are immutable).
    """
    if not isinstance(query, str):
        raise _error("Query must be a string")
    return _compile_cached(query)


@functools.lru_cache(maxsize=512)
def _compile_cached(query: str) -> CompiledQuery:
    pipeline = _Parser(query).parse_query()
    run, columns, fresh, has_limit = _Compiler(query).pipeline(pipeline)
    return CompiledQuery(query, pipeline.table.lower(), columns, has_limit, run, fresh)


def run_query(query: str, tables: Mapping[str, Iterable[dict]]) -> list[dict]:
    """Convenience: ``compile_query(query).run(tables)``."""
    return compile_query(query).run(tables)
