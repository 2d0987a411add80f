"""Tests for armemu.kql, the emulator's Azure Resource Graph KQL evaluator."""

from __future__ import annotations

import copy
import os
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from armemu import kql  # noqa: E402
from armemu.kql import KqlError, compile_query, run_query  # noqa: E402

SUB = "00000000-0000-0000-0000-000000000001"
RG = "rg"
VMSS_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/web"
OTHER_VMSS_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/api"


def vm(name, *, vmss=VMSS_ID, power="PowerState/running", fd=0, zones=("1",), tags=None,
       location="eastus", rg=RG, os_type="Linux", nics=1):
    vm_id = f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"
    props = {
        "platformFaultDomain": fd,
        "storageProfile": {"osDisk": {"osType": os_type}},
        "networkProfile": {"networkInterfaces": [{"id": f"{vm_id}-nic{i}"} for i in range(nics)]},
        "extended": {"instanceView": {"powerState": {"code": power}}},
    }
    if vmss is not None:
        props["virtualMachineScaleSet"] = {"id": vmss}
    return {
        "id": vm_id, "name": name, "type": "microsoft.compute/virtualmachines",
        "tenantId": "t", "kind": "", "location": location, "resourceGroup": rg,
        "subscriptionId": SUB, "managedBy": "", "sku": None, "plan": None,
        "properties": props, "tags": tags, "identity": None,
        "zones": list(zones) if zones is not None else None, "extendedLocation": None,
    }


def vmss_row(name):
    return {
        "id": f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}",
        "name": name, "type": "microsoft.compute/virtualmachinescalesets", "tenantId": "t",
        "kind": "", "location": "eastus", "resourceGroup": RG, "subscriptionId": SUB,
        "managedBy": "", "sku": {"name": "Standard_D2s_v3", "capacity": 2}, "plan": None,
        "properties": {"orchestrationMode": "Flexible", "platformFaultDomainCount": 1},
        "tags": {"env": "prod"}, "identity": None, "zones": None, "extendedLocation": None,
    }


def rg_row(name, location="eastus"):
    return {
        "id": f"/subscriptions/{SUB}/resourceGroups/{name}", "name": name,
        "type": "microsoft.resources/subscriptions/resourcegroups", "tenantId": "t", "kind": "",
        "location": location, "resourceGroup": name, "subscriptionId": SUB, "managedBy": "",
        "sku": None, "plan": None, "properties": {"provisioningState": "Succeeded"},
        "tags": {"owner": "ops"}, "identity": None, "zones": None, "extendedLocation": None,
    }


@pytest.fixture()
def rows():
    return [
        vm("web_2", fd=1, power="PowerState/deallocated", zones=("2",), tags={"env": "Prod", "tier": "web"}),
        vm("web_0", fd=0, tags={"env": "prod"}),
        vm("web_1", fd=2, zones=None, os_type="Windows", nics=2),
        vm("api_0", vmss=OTHER_VMSS_ID, tags={"env": "dev"}, location="westus"),
        vm("solo", vmss=None, power="PowerState/stopped", zones=(), location="WestUS"),
        vmss_row("web"),
        vmss_row("api"),
    ]


@pytest.fixture()
def tables(rows):
    return {"resources": rows, "resourcecontainers": [rg_row("rg"), rg_row("other", "westus")]}


def names(result):
    return [r["name"] for r in result]


def where(tables, predicate):
    """Names of VM rows matching ``predicate``, in input order."""
    q = f"Resources | where type == 'microsoft.compute/virtualmachines' | where {predicate} | project name"
    return names(run_query(q, tables))


ONE_ROW = {"resources": [{"id": "/x", "name": "One", "type": "t", "properties": {
    "a": {"b": [10, 20, {"c": "deep"}]}, "n": 5, "s": "Hello World", "nul": None, "list": [1, 2, 3],
    "bag": {"k1": "v1", "k2": 2}, "num_str": "42", "flag": True, "empty": "", "json": '{"x": [1, 2]}',
}, "tags": {"env": "prod", "my-key": "v"}, "zones": ["1", "3"]}]}


def scalar(expr, tables=ONE_ROW):
    """Evaluate a scalar expression against the single row of ONE_ROW."""
    result = run_query(f"Resources | project v = {expr}", tables)
    assert len(result) == 1
    return result[0]["v"]


def kql_string(value):
    """How the emulator's callers embed user-supplied names in queries."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def assert_invalid(query, fragment=None):
    with pytest.raises(KqlError) as info:
        compile_query(query)
    err = info.value
    assert err.message == kql.INVALID_QUERY_MESSAGE
    assert [d["code"] for d in err.details] == ["InvalidQuery", "ParserFailure"]
    assert err.details[0]["message"] == kql.INVALID_QUERY_MESSAGE
    if fragment:
        assert fragment in err.details[1]["message"], err.details[1]["message"]
    return err


# --------------------------------------------------------------------------- realistic queries


def test_realistic_vmss_instances_query(tables):
    q = (
        "Resources | where type =~ 'microsoft.compute/virtualmachines' "
        f"| where properties.virtualMachineScaleSet.id =~ '{VMSS_ID}' "
        "| extend powerState = tostring(properties.extended.instanceView.powerState.code) "
        "| project id, name, resourceGroup, location, zones, fd = properties.platformFaultDomain, powerState "
        "| order by name asc"
    )
    result = run_query(q, tables)
    assert names(result) == ["web_0", "web_1", "web_2"]
    assert list(result[0]) == ["id", "name", "resourceGroup", "location", "zones", "fd", "powerState"]
    assert result[0]["powerState"] == "PowerState/running"
    assert result[2] == {
        "id": tables["resources"][0]["id"], "name": "web_2", "resourceGroup": RG, "location": "eastus",
        "zones": ["2"], "fd": 1, "powerState": "PowerState/deallocated",
    }
    assert result[1]["zones"] is None
    compiled = compile_query(q)
    assert compiled.table == "resources"
    assert compiled.projects_id is True
    assert compiled.has_row_limit is False


def test_realistic_vmss_id_match_is_case_insensitive(tables):
    q = (f"Resources | where properties.virtualMachineScaleSet.id =~ '{VMSS_ID.upper()}' "
         "| project name | order by name asc")
    assert names(run_query(q, tables)) == ["web_0", "web_1", "web_2"]


def test_realistic_power_state_summary(tables):
    q = ("Resources | where type =~ 'microsoft.compute/virtualmachines' "
         "| summarize count() by tostring(properties.extended.instanceView.powerState.code)")
    result = run_query(q, tables)
    assert result == [
        {"properties_extended_instanceView_powerState_code": "PowerState/deallocated", "count_": 1},
        {"properties_extended_instanceView_powerState_code": "PowerState/running", "count_": 3},
        {"properties_extended_instanceView_powerState_code": "PowerState/stopped", "count_": 1},
    ]
    compiled = compile_query(q)
    assert compiled.projects_id is False
    assert compiled.columns == ["properties_extended_instanceView_powerState_code", "count_"]


def test_multiline_query_with_comments(tables):
    q = """
    // all VMs of the web scale set
    Resources
    | where type =~ 'microsoft.compute/virtualmachines'   // by type
    | where properties.virtualMachineScaleSet.id =~ "%s"
    | project name
    | order by name desc ;
    """ % VMSS_ID
    assert names(run_query(q, tables)) == ["web_2", "web_1", "web_0"]


# --------------------------------------------------------------------------- tables and api


def test_table_names_are_case_insensitive(tables):
    for table in ("Resources", "resources", "RESOURCES"):
        assert len(run_query(f"{table} | project name", tables)) == 7
    assert names(run_query("ResourceContainers | project name", tables)) == ["rg", "other"]
    assert compile_query("ResourceContainers").table == "resourcecontainers"


def test_unknown_table_is_an_error():
    assert_invalid("NoSuchTable | take 1", "NoSuchTable")


def test_known_table_missing_from_mapping_is_empty():
    assert run_query("AdvisorResources | project id", {"resources": []}) == []


def test_tables_may_be_generators(rows):
    tables = {"resources": (r for r in rows)}
    q = "Resources | join kind=inner (Resources | project id, n2 = name) on id | project name, n2"
    assert len(run_query(q, tables)) == 7


def test_bare_table_returns_copies(tables):
    result = run_query("Resources", tables)
    assert result == tables["resources"]
    assert all(a is not b for a, b in zip(result, tables["resources"]))


def test_input_rows_are_never_mutated(tables):
    before = copy.deepcopy(tables)
    queries = [
        "Resources | extend name = toupper(name), x = 1",
        "Resources | project-rename n = name",
        "Resources | project-away properties",
        "Resources | mv-expand zones",
        "Resources | mv-expand properties.networkProfile.networkInterfaces",
        "Resources | join kind=leftouter (ResourceContainers | project resourceGroup, rgName = name) on resourceGroup",
        "Resources | order by name asc | take 2",
        "Resources | summarize make_list(name) by type",
    ]
    for q in queries:
        run_query(q, tables)
    assert tables == before


def test_compile_is_cached_and_reusable(tables):
    q = "Resources | where name startswith 'web' | project name"
    compiled = compile_query(q)
    assert compile_query(q) is compiled
    assert compiled.run(tables) == compiled.run(tables)
    assert "CompiledQuery" in repr(compiled)


def test_has_row_limit_and_projects_id():
    assert compile_query("Resources | take 5").has_row_limit
    assert compile_query("Resources | limit 5").has_row_limit
    assert compile_query("Resources | top 5 by name").has_row_limit
    assert not compile_query("Resources | where name == 'x'").has_row_limit
    # a take inside a join sub-query does not limit the outer result
    assert not compile_query("Resources | join (Resources | take 1) on id").has_row_limit
    assert compile_query("Resources").projects_id
    assert compile_query("Resources | project id, name").projects_id
    assert not compile_query("Resources | project name").projects_id
    assert not compile_query("Resources | project-away id").projects_id
    assert compile_query("Resources | project-rename id = name").projects_id
    assert not compile_query("Resources | count").projects_id
    assert compile_query("Resources | summarize by id").projects_id


# --------------------------------------------------------------------------- comparison operators

COMPARISONS = [
    # equality is case-sensitive, =~ is not
    ("name == 'web_0'", ["web_0"]),
    ("name == 'WEB_0'", []),
    ("name != 'web_0'", ["web_2", "web_1", "api_0", "solo"]),
    ("name =~ 'WEB_0'", ["web_0"]),
    ("name !~ 'WEB_0'", ["web_2", "web_1", "api_0", "solo"]),
    ("name <> 'web_0'", ["web_2", "web_1", "api_0", "solo"]),
    ("location == 'westus'", ["api_0"]),
    ("location =~ 'westus'", ["api_0", "solo"]),
    # contains / contains_cs
    ("name contains 'WEB'", ["web_2", "web_0", "web_1"]),
    ("name !contains 'WEB'", ["api_0", "solo"]),
    ("name contains_cs 'WEB'", []),
    ("name contains_cs 'web'", ["web_2", "web_0", "web_1"]),
    ("name !contains_cs 'WEB'", ["web_2", "web_0", "web_1", "api_0", "solo"]),
    # startswith / endswith (case-insensitive) and _cs
    ("name startswith 'WEB_'", ["web_2", "web_0", "web_1"]),
    ("name !startswith 'web_'", ["api_0", "solo"]),
    ("name startswith_cs 'WEB_'", []),
    ("name !startswith_cs 'WEB_'", ["web_2", "web_0", "web_1", "api_0", "solo"]),
    ("name endswith '_0'", ["web_0", "api_0"]),
    ("name !endswith '_0'", ["web_2", "web_1", "solo"]),
    ("name endswith_cs 'LO'", []),
    ("name !endswith_cs 'lo'", ["web_2", "web_0", "web_1", "api_0"]),
    # has: whole terms only, case-insensitive
    ("id has 'virtualMachines'", ["web_2", "web_0", "web_1", "api_0", "solo"]),
    ("id has 'VIRTUALMACHINES'", ["web_2", "web_0", "web_1", "api_0", "solo"]),
    ("id has 'virtual'", []),
    ("id !has 'virtual'", ["web_2", "web_0", "web_1", "api_0", "solo"]),
    ("id has 'Microsoft.Compute'", ["web_2", "web_0", "web_1", "api_0", "solo"]),
    ("properties.virtualMachineScaleSet.id has 'web'", ["web_2", "web_0", "web_1"]),
    ("properties.virtualMachineScaleSet.id has 'we'", []),
    ("id has_cs 'virtualmachines'", []),
    ("id !has_cs 'virtualmachines'", ["web_2", "web_0", "web_1", "api_0", "solo"]),
    ("id hasprefix 'virt'", ["web_2", "web_0", "web_1", "api_0", "solo"]),
    ("id hasprefix 'irtual'", []),
    ("id !hasprefix 'virt'", []),
    ("id hassuffix 'Machines'", ["web_2", "web_0", "web_1", "api_0", "solo"]),
    ("id hasprefix_cs 'Virt'", []),
    # in / !in are case-sensitive, in~ / !in~ are not
    ("name in ('web_0', 'solo')", ["web_0", "solo"]),
    ("name in ('WEB_0', 'SOLO')", []),
    ("name !in ('web_0', 'solo')", ["web_2", "web_1", "api_0"]),
    ("name in~ ('WEB_0', 'SOLO')", ["web_0", "solo"]),
    ("name !in~ ('WEB_0', 'SOLO')", ["web_2", "web_1", "api_0"]),
    ("name in (dynamic(['web_1', 'api_0']))", ["web_1", "api_0"]),
    ("name in (dynamic(['web_1']), 'api_0')", ["web_1", "api_0"]),
    ("name in~ (dynamic(['WEB_1']))", ["web_1"]),
    ("name in (resourceGroup, 'solo')", ["solo"]),
    ("properties.platformFaultDomain in (1, 2)", ["web_2", "web_1"]),
    ("tags.env has_any ('dev', 'nothing')", ["api_0"]),
    ("id has_all ('nothere', 'virtualMachines')", []),
    ("id has_all ('api', 'virtualMachines')", ["api_0"]),
    ("properties.virtualMachineScaleSet.id has_all ('web', 'virtualMachineScaleSets')", ["web_2", "web_0", "web_1"]),
    # ordering
    ("properties.platformFaultDomain > 0", ["web_2", "web_1"]),
    ("properties.platformFaultDomain >= 1", ["web_2", "web_1"]),
    ("properties.platformFaultDomain < 1", ["web_0", "api_0", "solo"]),
    ("properties.platformFaultDomain <= 0", ["web_0", "api_0", "solo"]),
    ("name > 'web_0'", ["web_2", "web_1"]),
    ("name < 'b'", ["api_0"]),
    ("properties.platformFaultDomain between (1 .. 2)", ["web_2", "web_1"]),
    ("properties.platformFaultDomain !between (1 .. 2)", ["web_0", "api_0", "solo"]),
    ("name matches regex '^web_[01]$'", ["web_0", "web_1"]),
    # numbers and strings
    ("properties.platformFaultDomain == 2", ["web_1"]),
    ("properties.platformFaultDomain == 2.0", ["web_1"]),
    ("properties.platformFaultDomain == '2'", ["web_1"]),
    ("array_length(zones) == 1", ["web_2", "web_0", "api_0"]),
]


@pytest.mark.parametrize("predicate,expected", COMPARISONS)
def test_comparison_operators(tables, predicate, expected):
    assert where(tables, predicate) == expected


NULL_CASES = [
    # a missing path is null; == on null is false, != is its exact negation
    ("properties.virtualMachineScaleSet.id == 'x'", []),
    ("properties.virtualMachineScaleSet.id != 'x'", ["web_2", "web_0", "web_1", "api_0", "solo"]),
    ("properties.virtualMachineScaleSet.id =~ ''", []),
    ("properties.virtualMachineScaleSet.id !~ 'x'", ["web_2", "web_0", "web_1", "api_0", "solo"]),
    ("isnull(properties.virtualMachineScaleSet)", ["solo"]),
    ("isnotnull(properties.virtualMachineScaleSet)", ["web_2", "web_0", "web_1", "api_0"]),
    ("isempty(properties.virtualMachineScaleSet.id)", ["solo"]),
    ("isnotempty(properties.virtualMachineScaleSet.id)", ["web_2", "web_0", "web_1", "api_0"]),
    ("tostring(properties.virtualMachineScaleSet.id) == ''", ["solo"]),
    ("properties.nope.deeper > 1", []),
    ("properties.nope.deeper < 1", []),
    ("tags.env in ('prod', 'dev')", ["web_0", "api_0"]),
    ("tags.env !in ('prod', 'dev')", ["web_2", "web_1", "solo"]),
    ("tags.env in~ ('prod')", ["web_2", "web_0"]),
    ("tags['env'] contains 'o'", ["web_2", "web_0"]),
    ("tags['env'] !contains 'o'", ["web_1", "api_0", "solo"]),
    ("tags.env startswith ''", ["web_2", "web_0", "web_1", "api_0", "solo"]),
    ("zones[0] == '1'", ["web_0", "api_0"]),
    ("isnull(zones[0])", ["web_1", "solo"]),
    ("not(isnull(zones[0]))", ["web_2", "web_0", "api_0"]),
    ("not(tags.env == 'prod')", ["web_2", "web_1", "api_0", "solo"]),
    ("properties.virtualMachineScaleSet.id between ('a' .. 'z')", []),
]


@pytest.mark.parametrize("predicate,expected", NULL_CASES)
def test_null_semantics(tables, predicate, expected):
    assert where(tables, predicate) == expected


def test_has_term_boundaries():
    def has(hay, needle, op="has"):
        return scalar(f"{kql_string(hay)} {op} {kql_string(needle)}")
    assert has("my-vm-01", "vm")
    assert has("my-vm-01", "VM")
    assert has("my-vm-01", "01")
    assert not has("my-vm-01", "v")
    assert not has("myvm", "vm")
    assert has("a/b/c", "b/c")
    assert has("anything", "")
    assert has("web_0", "web_0")  # underscore is not a term character here
    assert has("eastus2", "eastus2") and not has("eastus2", "eastus")
    assert has("Standard_D2s_v3", "d2s", "hasprefix")
    assert has("Standard_D2s_v3", "D2", "hasprefix") and not has("Standard_D2s_v3", "2s", "hasprefix")
    assert has("Standard_D2s_v3", "2s", "hassuffix") and not has("Standard_D2s_v3", "D2", "hassuffix")
    assert not has("Standard_D2s_v3", "d2s", "hasprefix_cs")


# --------------------------------------------------------------------------- logic, precedence, arithmetic


def test_and_or_precedence(tables):
    # and binds tighter than or
    assert where(tables, "name == 'solo' or name == 'web_0' and location == 'westus'") == ["solo"]
    assert where(tables, "(name == 'solo' or name == 'web_0') and location == 'eastus'") == ["web_0"]
    assert where(tables, "name == 'api_0' or name == 'solo' and location == 'WestUS'") == ["api_0", "solo"]


def test_comparison_binds_tighter_than_and(tables):
    assert where(tables, "properties.platformFaultDomain + 1 == 2 and name startswith 'web'") == ["web_2"]


def test_not_function(tables):
    assert where(tables, "not(name startswith 'web') and not(name == 'solo')") == ["api_0"]
    assert where(tables, "not(name == 'solo' or name startswith 'web')") == ["api_0"]


@pytest.mark.parametrize("expr,expected", [
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("10 - 2 - 3", 5),
    ("7 / 2", 3),
    ("-7 / 2", -3),
    ("7.0 / 2", 3.5),
    ("7 % 3", 1),
    ("-7 % 3", -1),
    ("1 / 0", None),
    ("properties.n * 2", 10),
    ("-properties.n", -5),
    ("properties.n + properties.nul", None),
    ("properties.s + 1", None),
    ("2 * -3", -6),
    ("1.5 + 1", 2.5),
])
def test_arithmetic(expr, expected):
    assert scalar(expr) == expected


# --------------------------------------------------------------------------- literals and escaping


@pytest.mark.parametrize("literal,expected", [
    ("'single'", "single"),
    ('"double"', "double"),
    (r"'it\'s'", "it's"),
    (r'"a\"b"', 'a"b'),
    (r"'back\\slash'", "back\\slash"),
    (r"'tab\there'", "tab\there"),
    (r"'nl\n'", "nl\n"),
    (r"'\u0041'", "A"),
    ("@'C:\\temp\\x'", "C:\\temp\\x"),
    ("@'it''s'", "it's"),
    ('@"say ""hi"""', 'say "hi"'),
    ("h'secret'", "secret"),
    ("'a // not a comment'", "a // not a comment"),
    ("'pipe | inside'", "pipe | inside"),
    ("42", 42),
    ("-3", -3),
    ("2.5", 2.5),
    ("1e3", 1000.0),
    ("true", True),
    ("false", False),
    ("null", None),
    ("dynamic(null)", None),
    ("dynamic([1, 'a', \"b\", true, null, -2])", [1, "a", "b", True, None, -2]),
    ("dynamic({\"a\": {'b': [1]}, c: 2})", {"a": {"b": [1]}, "c": 2}),
    ("dynamic([])", []),
    ("int(5)", 5),
    ("long(-3)", -3),
    ("real(2)", 2.0),
    ("bool(true)", True),
    ("int(null)", None),
    ("datetime(2024-01-02T03:04:05Z)", datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
    ("datetime(2024-01-02)", datetime(2024, 1, 2, tzinfo=timezone.utc)),
    ("datetime(null)", None),
    ("1d", timedelta(days=1)),
    ("90m", timedelta(minutes=90)),
    ("1.5h", timedelta(hours=1.5)),
    ("250ms", timedelta(milliseconds=250)),
    ("timespan(01:30:00)", timedelta(hours=1, minutes=30)),
    ("timespan(2d)", timedelta(days=2)),
])
def test_literals(literal, expected):
    assert scalar(literal) == expected


@pytest.mark.parametrize("value", [
    "it's", 'say "hi"', "back\\slash", "trailing\\", "x' or name != 'y",
    "x\\' or name != \\'y", "' | take 1 //", "\"; drop", "'", "\\", "multi\nline",
])
def test_escaped_user_values_cannot_break_out(tables, value):
    rows = [dict(tables["resources"][0], name=value), dict(tables["resources"][1], name="other")]
    result = run_query(f"Resources | where name == {kql_string(value)} | project name", {"resources": rows})
    assert result == [{"name": value}]
    result = run_query(f"Resources | where name =~ {kql_string(value)} | project name", {"resources": rows})
    assert result == [{"name": value}]


def test_unescaped_injection_attempts_are_rejected_or_harmless(tables):
    # a raw quote ends the literal early: the rest is a syntax error, not extra query
    assert_invalid("Resources | where name == 'x' or '1'=='1' | project name' | project name")
    assert_invalid("Resources | where name == 'x'' | take 1")
    assert_invalid("Resources | where name == 'x\\'")
    # double-quoted strings do not end at single quotes
    assert run_query("Resources | where name == \"x' or '1'=='1\" | project name", tables) == []


# --------------------------------------------------------------------------- scalar functions


@pytest.mark.parametrize("expr,expected", [
    ("tostring(properties.n)", "5"),
    ("tostring(properties.flag)", "true"),
    ("tostring(false)", "false"),
    ("tostring(properties.nul)", ""),
    ("tostring(properties.missing)", ""),
    ("tostring(properties.bag)", '{"k1":"v1","k2":2}'),
    ("tostring(properties.list)", "[1,2,3]"),
    ("tostring(2.5)", "2.5"),
    ("tostring(datetime(2024-01-02T03:04:05Z))", "2024-01-02T03:04:05Z"),
    ("tolower(properties.s)", "hello world"),
    ("toupper(properties.s)", "HELLO WORLD"),
    ("tolower(properties.missing)", ""),
    ("toint(properties.num_str)", 42),
    ("toint('abc')", None),
    ("toint(2.9)", 2),
    ("tolong('7')", 7),
    ("tolong(properties.missing)", None),
    ("todouble('2.5')", 2.5),
    ("todouble(properties.n)", 5.0),
    ("toreal('x')", None),
    ("tobool('true')", True),
    ("tobool('FALSE')", False),
    ("tobool(1)", True),
    ("tobool('maybe')", None),
    ("toboolean(properties.flag)", True),
    ("isempty('')", True),
    ("isempty(properties.empty)", True),
    ("isempty(properties.nul)", True),
    ("isempty(properties.missing)", True),
    ("isempty('x')", False),
    ("isnotempty('x')", True),
    ("isnotempty('')", False),
    ("isnull(properties.nul)", True),
    ("isnull('')", False),
    ("isnotnull(properties.n)", True),
    ("iff(properties.n > 3, 'big', 'small')", "big"),
    ("iif(properties.n > 30, 'big', 'small')", "small"),
    ("iff(properties.missing == 1, 'a', 'b')", "b"),
    ("case(properties.n < 3, 'low', properties.n < 10, 'mid', 'high')", "mid"),
    ("case(properties.n < 3, 'low', 'high')", "high"),
    ("strcat('a', 1, properties.flag, properties.missing, 'z')", "a1truez"),
    ("strcat_delim('/', 'a', 'b', 3)", "a/b/3"),
    ("strcat_array(properties.list, '-')", "1-2-3"),
    ("split(id, '/')", ["", "x"]),
    ("split('a/b/c', '/')", ["a", "b", "c"]),
    ("split('a/b/c', '/', 1)", ["b"]),
    ("split('a/b/c', '/', 5)", []),
    ("split('a/b/c', '/')[2]", "c"),
    ("array_length(properties.list)", 3),
    ("array_length(properties.s)", None),
    ("array_length(properties.missing)", None),
    ("coalesce(properties.missing, properties.empty, 'fallback')", "fallback"),
    ("coalesce(properties.n, 1)", 5),
    ("coalesce(properties.missing, properties.nul)", None),
    ("strlen(properties.s)", 11),
    ("strlen(properties.missing)", 0),
    ("substring(properties.s, 6)", "World"),
    ("substring(properties.s, 0, 5)", "Hello"),
    ("substring('abc', 1, 100)", "bc"),
    ("indexof(properties.s, 'World')", 6),
    ("indexof(properties.s, 'nope')", -1),
    ("replace_string(properties.s, 'World', 'There')", "Hello There"),
    ("extract('vm([0-9]+)', 1, 'myvm42x')", "42"),
    ("extract('zz', 0, 'abc')", None),
    ("trim(' ', '  padded  ')", "padded"),
    ("trim('[/]+', '//a/b//')", "a/b"),
    ("trim_start('x', 'xxabcxx')", "abcxx"),
    ("trim_end('x', 'xxabcxx')", "xxabc"),
    ("bag_keys(properties.bag)", ["k1", "k2"]),
    ("bag_keys(properties.s)", None),
    ("bag_pack('a', 1, 'b', properties.s)", {"a": 1, "b": "Hello World"}),
    ("pack_array(1, 'x')", [1, "x"]),
    ("set_has_element(zones, '3')", True),
    ("set_has_element(zones, '2')", False),
    ("parse_json(properties.json).x[1]", 2),
    ("todynamic('[1]')", [1]),
    ("parse_json('not json')", "not json"),
    ("todatetime('2024-05-06T07:08:09Z')", datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)),
    ("todatetime('nope')", None),
    ("bin(17, 5)", 15),
    ("bin(2.5, 1)", 2.0),
    ("floor(-1, 2)", -2),
    ("datetime(2024-01-01) + 1d", datetime(2024, 1, 2, tzinfo=timezone.utc)),
    ("datetime(2024-01-02) - datetime(2024-01-01)", timedelta(days=1)),
    ("now() > datetime(2020-01-01)", True),
    ("ago(1h) < now()", True),
    ("ago(1h) > ago(2h)", True),
    ("todatetime('2024-05-06T07:08:09Z') > datetime(2024-05-06)", True),
])
def test_scalar_functions(expr, expected):
    assert scalar(expr) == expected


@pytest.mark.parametrize("expr,expected", [
    ("dynamic([1]) + dynamic([2])", None),
    ("'a' + 'b'", None),
    ("true + 1", None),
    ("extract('(a)', -1, 'a')", None),
    ("extract('(a)', 2, 'a')", None),
    ("trim('', 'xx')", "xx"),
    ("properties.list[0] + properties.n", 6),
])
def test_operations_on_unsupported_types_yield_null(expr, expected):
    assert scalar(expr) == expected


def test_invalid_regex_is_kqlerror(tables):
    assert_invalid("Resources | where name matches regex '('", "Invalid regular expression")
    with pytest.raises(KqlError):
        run_query("Resources | where name matches regex strcat('(', name)", tables)


def test_filter_alias_and_non_constant_in_lists(tables):
    assert where(tables, "name in (zones)") == []
    rows = [{"name": "a", "properties": {"allowed": ["a", "b"]}}, {"name": "c", "properties": {"allowed": ["a"]}}]
    q = "Resources | filter name in (properties.allowed) | project name"
    assert names(run_query(q, {"resources": rows})) == ["a"]
    q = "Resources | filter name !in~ (properties.allowed, 'X') | project name"
    assert names(run_query(q, {"resources": rows})) == ["c"]


def test_duplicate_aggregate_names_are_uniquified(tables):
    q = "Resources | summarize count(), count(), max(name), max(name), c = count() by type | take 1"
    assert list(run_query(q, tables)[0]) == ["type", "count_", "count_1", "max_name", "max_name1", "c"]


def test_path_and_bracket_access():
    assert scalar("properties.a.b[2].c") == "deep"
    assert scalar("properties['a']['b'][0]") == 10
    assert scalar('properties["a"].b[-1].c') == "deep"
    assert scalar("properties.a.b[3]") is None
    assert scalar("properties.a.b['x']") is None
    assert scalar("properties.s.x") is None
    assert scalar("properties.missing.deeper.still") is None
    assert scalar("tags['my-key']") == "v"
    assert scalar("zones[0]") == "1"
    assert scalar("properties.list[properties.n - 4]") == 2
    assert scalar("properties.bag[strcat('k', 2)]") == 2


def test_string_comparison_vs_datetime_strings(tables):
    rows = [{"name": "a", "properties": {"t": "2024-01-01T00:00:00Z"}},
            {"name": "b", "properties": {"t": "2023-01-01T00:00:00Z"}}]
    q = "Resources | where todatetime(properties.t) > datetime(2023-06-01) | project name"
    assert names(run_query(q, {"resources": rows})) == ["a"]
    q = "Resources | where properties.t > datetime(2023-06-01) | project name"
    assert names(run_query(q, {"resources": rows})) == ["a"]


# --------------------------------------------------------------------------- naming rules


def test_unnamed_projection_naming(tables):
    q = ("Resources | where name == 'web_2' | project name, properties.platformFaultDomain, "
         "tostring(properties.storageProfile.osDisk.osType), tags['env'], tags.tier, zones[0], "
         "strcat(name, '!'), toupper(name), 1 + 1")
    [row] = run_query(q, tables)
    assert row == {
        "name": "web_2",
        "properties_platformFaultDomain": 1,
        "properties_storageProfile_osDisk_osType": "Linux",
        "tags_env": "Prod",
        "tags_tier": "web",
        "zones_0": "2",
        "Column1": "web_2!",
        "name1": "WEB_2",
        "Column2": 2,
    }


def test_nested_function_wrappers_keep_path_name(tables):
    q = "Resources | where name == 'web_0' | project tolower(tostring(properties.extended.instanceView.powerState.code))"
    assert run_query(q, tables) == [{"properties_extended_instanceView_powerState_code": "powerstate/running"}]


def test_extend_naming_and_semantics(tables):
    q = ("Resources | where name == 'web_1' "
         "| extend fd = properties.platformFaultDomain, fd2 = fd * 2, tostring(properties.storageProfile.osDisk.osType), "
         "name = toupper(name) | project-away properties, tags, identity, sku, plan, zones, extendedLocation, "
         "tenantId, kind, managedBy")
    [row] = run_query(q, tables)
    assert row["fd"] == 2 and row["fd2"] == 4
    assert row["properties_storageProfile_osDisk_osType"] == "Windows"
    assert row["name"] == "WEB_1"
    # an existing column keeps its position when overwritten; new columns are appended
    assert list(row) == ["id", "name", "type", "location", "resourceGroup", "subscriptionId",
                         "fd", "fd2", "properties_storageProfile_osDisk_osType"]


def test_project_duplicate_explicit_name_is_error():
    assert_invalid("Resources | project a = name, a = id", "Duplicate column name 'a'")


def test_project_bracketed_column_names(tables):
    q = "Resources | where name == 'solo' | project ['my name'] = name | project x = ['my name']"
    assert run_query(q, tables) == [{"x": "solo"}]


# --------------------------------------------------------------------------- project variants


def test_project_away_keep_rename(tables):
    row = run_query("Resources | where name == 'solo' | project-away properties, tags, sku", tables)[0]
    assert "properties" not in row and "tags" not in row and "sku" not in row and row["name"] == "solo"
    row = run_query("Resources | where name == 'solo' | project-keep name, id", tables)[0]
    assert row == {"id": tables["resources"][4]["id"], "name": "solo"}
    row = run_query("Resources | where name == 'solo' | project name, id | project-rename vmName = name, vmId = id",
                    tables)[0]
    assert row == {"vmName": "solo", "vmId": tables["resources"][4]["id"]}
    compiled = compile_query("Resources | project name, id | project-rename vmName = name")
    assert compiled.columns == ["vmName", "id"]
    # the old name is gone from the schema
    assert_invalid("Resources | project name, x = 1 | project-rename y = x | project x",
                   "Failed to resolve scalar expression named 'x'")


def test_project_away_unknown_column_is_error():
    assert_invalid("Resources | project-away nosuch", "nosuch")


# --------------------------------------------------------------------------- sorting, take, top


def test_order_by_default_is_descending(tables):
    q = "Resources | where type =~ 'microsoft.compute/virtualmachines' | order by name | project name"
    assert names(run_query(q, tables)) == ["web_2", "web_1", "web_0", "solo", "api_0"]
    q = "Resources | where type =~ 'microsoft.compute/virtualmachines' | sort by name | project name"
    assert names(run_query(q, tables)) == ["web_2", "web_1", "web_0", "solo", "api_0"]


def test_sort_nulls_and_multiple_keys(tables):
    base = "Resources | where type =~ 'microsoft.compute/virtualmachines' | extend z = tostring(zones[0]), t = tags.env "
    assert names(run_query(base + "| sort by t asc, name asc | project name", tables)) == \
        ["solo", "web_1", "web_2", "api_0", "web_0"]  # nulls first in asc; 'Prod' < 'dev' < 'prod' (ordinal)
    assert names(run_query(base + "| sort by t desc, name asc | project name", tables)) == \
        ["web_0", "api_0", "web_2", "solo", "web_1"]  # nulls last in desc
    assert names(run_query(base + "| sort by t asc nulls last, name desc | project name", tables)) == \
        ["web_2", "api_0", "web_0", "web_1", "solo"]
    assert names(run_query(base + "| order by properties.platformFaultDomain desc, name asc | project name",
                           tables)) == ["web_1", "web_2", "api_0", "solo", "web_0"]


def test_sort_mixed_types_is_deterministic():
    rows = [{"name": str(i), "properties": {"v": v}} for i, v in enumerate(["b", 2, None, "a", 1.5, True, {"x": 1}])]
    result = run_query("Resources | order by properties.v asc | project name", {"resources": rows})
    assert names(result) == ["2", "5", "4", "1", "3", "0", "6"]


def test_sort_by_expression(tables):
    q = ("Resources | where type =~ 'microsoft.compute/virtualmachines' "
         "| order by strlen(name) asc, name desc | project name")
    assert names(run_query(q, tables)) == ["solo", "web_2", "web_1", "web_0", "api_0"]


def test_take_limit_top(tables):
    q = "Resources | where type =~ 'microsoft.compute/virtualmachines' | order by name asc"
    assert names(run_query(q + " | take 2", tables)) == ["api_0", "solo"]
    assert names(run_query(q + " | limit 1", tables)) == ["api_0"]
    assert run_query(q + " | take 0", tables) == []
    assert len(run_query(q + " | take 100", tables)) == 5
    assert names(run_query("Resources | top 2 by properties.platformFaultDomain", tables)) == ["web_1", "web_2"]
    assert names(run_query("Resources | top 2 by name asc", tables)) == ["api", "api_0"]


# --------------------------------------------------------------------------- summarize, count, distinct


def test_summarize_aggregates(tables):
    q = ("Resources | where type =~ 'microsoft.compute/virtualmachines' "
         "| summarize n = count(), running = countif(properties.extended.instanceView.powerState.code == 'PowerState/running'), "
         "dcount(location), make_list(name), make_set(resourceGroup), min(properties.platformFaultDomain), "
         "max(name), sum(properties.platformFaultDomain), avg(properties.platformFaultDomain), "
         "take_any(name), countif(true) by type")
    [row] = run_query(q, tables)
    assert row == {
        "type": "microsoft.compute/virtualmachines",
        "n": 5,
        "running": 3,
        "dcount_location": 3,
        "list_name": ["web_2", "web_0", "web_1", "api_0", "solo"],
        "set_resourceGroup": ["rg"],
        "min_properties_platformFaultDomain": 0,
        "max_name": "web_2",
        "sum_properties_platformFaultDomain": 3,
        "avg_properties_platformFaultDomain": 0.6,
        "any_name": "web_2",
        "countif_": 5,
    }


def test_summarize_group_keys(tables):
    q = ("Resources | where type =~ 'microsoft.compute/virtualmachines' "
         "| summarize count() by vmss = tolower(tostring(properties.virtualMachineScaleSet.id)), location "
         "| order by count_ desc, location asc")
    assert run_query(q, tables) == [
        {"vmss": VMSS_ID.lower(), "location": "eastus", "count_": 3},
        {"vmss": "", "location": "WestUS", "count_": 1},
        {"vmss": OTHER_VMSS_ID.lower(), "location": "westus", "count_": 1},
    ]


def test_summarize_by_dynamic_values_and_without_aggregates(tables):
    q = "Resources | where type =~ 'microsoft.compute/virtualmachines' | summarize by zones | order by tostring(zones) asc"
    assert run_query(q, tables) == [{"zones": None}, {"zones": ["1"]}, {"zones": ["2"]}, {"zones": []}]


def test_summarize_empty_input():
    assert run_query("Resources | summarize count()", {"resources": []}) == [{"count_": 0}]
    assert run_query("Resources | summarize count() by type", {"resources": []}) == []
    assert run_query("Resources | summarize max(name), make_list(name)", {"resources": []}) == \
        [{"max_name": None, "list_name": []}]


def test_summarize_then_filter(tables):
    q = "Resources | summarize n = count() by type | where n > 2 | project type"
    assert run_query(q, tables) == [{"type": "microsoft.compute/virtualmachines"}]


def test_summarize_requires_aggregates(tables):
    assert_invalid("Resources | summarize name", "aggregate")
    assert_invalid("Resources | summarize count() * 2", "aggregate")
    assert_invalid("Resources | summarize", "aggregate")


def test_count_operator(tables):
    assert run_query("Resources | count", tables) == [{"Count": 7}]
    assert run_query("Resources | where name == 'nope' | count", tables) == [{"Count": 0}]
    assert compile_query("Resources | count").columns == ["Count"]


def test_distinct(tables):
    q = "Resources | distinct type, location | order by type asc, location asc"
    assert run_query(q, tables) == [
        {"type": "microsoft.compute/virtualmachines", "location": "WestUS"},
        {"type": "microsoft.compute/virtualmachines", "location": "eastus"},
        {"type": "microsoft.compute/virtualmachines", "location": "westus"},
        {"type": "microsoft.compute/virtualmachinescalesets", "location": "eastus"},
    ]
    assert run_query("Resources | distinct tolower(location) | order by location asc", tables) == \
        [{"location": "eastus"}, {"location": "westus"}]
    assert len(run_query("Resources | project type | distinct *", tables)) == 2


# --------------------------------------------------------------------------- mv-expand


def test_mv_expand_array_column(tables):
    q = "Resources | where name in ('web_0', 'web_1', 'solo') | mv-expand zones | project name, zones"
    # null yields one row with null; an empty array yields no rows
    assert run_query(q, tables) == [{"name": "web_0", "zones": "1"}, {"name": "web_1", "zones": None}]


def test_mv_expand_named_path(tables):
    q = ("Resources | where name == 'web_1' | mv-expand nic = properties.networkProfile.networkInterfaces "
         "| project name, nicId = tostring(nic.id)")
    assert run_query(q, tables) == [
        {"name": "web_1", "nicId": tables["resources"][2]["id"] + "-nic0"},
        {"name": "web_1", "nicId": tables["resources"][2]["id"] + "-nic1"},
    ]
    q = "Resources | where name == 'web_1' | mv-expand properties.networkProfile.networkInterfaces | project properties_networkProfile_networkInterfaces"
    assert len(run_query(q, tables)) == 2


def test_mv_expand_options():
    rows = [{"name": "a", "properties": {"list": list(range(200)), "bag": {"x": 1, "y": 2}, "mixed": [1, "2", 3]}}]
    t = {"resources": rows}
    assert len(run_query("Resources | mv-expand properties.list", t)) == 128
    assert len(run_query("Resources | mv-expand v = properties.list limit 5", t)) == 5
    assert run_query("Resources | mv-expand b = properties.bag | project b", t) == [{"b": {"x": 1}}, {"b": {"y": 2}}]
    assert run_query("Resources | mv-expand kind=array b = properties.bag | project b", t) == \
        [{"b": ["x", 1]}, {"b": ["y", 2]}]
    assert run_query("Resources | mv-expand with_itemindex=i m = properties.mixed to typeof(long) | project i, m", t) == \
        [{"i": 0, "m": 1}, {"i": 1, "m": None}, {"i": 2, "m": 3}]
    assert run_query("Resources | mv-expand a = dynamic([1, 2, 3]), b = dynamic(['x']) | project a, b", t) == \
        [{"a": 1, "b": "x"}, {"a": 2, "b": None}, {"a": 3, "b": None}]
    assert_invalid("Resources | mv-expand strcat('a', 'b')", "needs a column name")


def test_mv_expand_limit_of_three():
    q = "Resources" + " | mv-expand zones" * 3
    compile_query(q)
    assert_invalid(q + " | mv-expand zones", "at most 3 mv-expand")


# --------------------------------------------------------------------------- join


def test_join_leftouter_with_suffixes(tables):
    q = ("Resources | where type =~ 'microsoft.compute/virtualmachines' | project id, name, resourceGroup "
         "| join kind=leftouter (ResourceContainers | project name, resourceGroup, location) on resourceGroup "
         "| order by name asc")
    result = run_query(q, tables)
    assert list(result[0]) == ["id", "name", "resourceGroup", "name1", "resourceGroup1", "location"]
    assert [(r["name"], r["name1"], r["location"]) for r in result] == [
        ("api_0", "rg", "eastus"), ("solo", "rg", "eastus"), ("web_0", "rg", "eastus"),
        ("web_1", "rg", "eastus"), ("web_2", "rg", "eastus")]
    assert compile_query(q).columns == ["id", "name", "resourceGroup", "name1", "resourceGroup1", "location"]


def test_join_left_right_keys_and_unmatched(tables):
    q = ("Resources | where type =~ 'microsoft.compute/virtualmachines' "
         "| extend vmssId = tolower(tostring(properties.virtualMachineScaleSet.id)) "
         "| project name, vmssId "
         "| join kind=leftouter (Resources | where type =~ 'microsoft.compute/virtualmachinescalesets' "
         "   | project id = tolower(id), vmssName = name, sku) on $left.vmssId == $right.id "
         "| project name, vmssName, capacity = sku.capacity | order by name asc")
    assert run_query(q, tables) == [
        {"name": "api_0", "vmssName": "api", "capacity": 2},
        {"name": "solo", "vmssName": None, "capacity": None},
        {"name": "web_0", "vmssName": "web", "capacity": 2},
        {"name": "web_1", "vmssName": "web", "capacity": 2},
        {"name": "web_2", "vmssName": "web", "capacity": 2},
    ]
    # $right/$left may appear in either order
    q2 = q.replace("$left.vmssId == $right.id", "$right.id == $left.vmssId")
    assert run_query(q2, tables) == run_query(q, tables)


def test_join_kinds():
    left = [{"name": "a", "id": "1"}, {"name": "b", "id": "1"}, {"name": "c", "id": "2"}, {"name": "d", "id": None}]
    right = [{"id": "1", "name": "x"}, {"id": "1", "name": "y"}, {"id": "3", "name": "z"}]
    t = {"resources": left, "resourcecontainers": right}

    def join(kind):
        return run_query(f"Resources | project name, id | join {kind} (ResourceContainers | project id, name) on id", t)

    inner = join("kind=inner")
    assert [(r["name"], r["name1"]) for r in inner] == [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")]
    assert list(inner[0]) == ["name", "id", "id1", "name1"]
    unique = join("kind=innerunique")
    assert [(r["name"], r["name1"]) for r in unique] == [("a", "x"), ("a", "y")]
    assert join("") == unique  # innerunique is the default
    outer = join("kind=leftouter")
    assert [(r["name"], r["name1"]) for r in outer] == \
        [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"), ("c", None), ("d", None)]
    assert names(join("kind=leftsemi")) == ["a", "b"]
    assert names(join("kind=leftanti")) == ["c", "d"]
    assert names(join("kind=rightsemi")) == ["x", "y"]
    assert names(join("kind=rightanti")) == ["z"]
    full = join("kind=fullouter")
    assert [(r["name"], r["name1"]) for r in full][-1] == (None, "z")
    assert len(full) == 7
    assert [(r["name"], r["name1"]) for r in join("kind=rightouter")] == \
        [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"), (None, "z")]
    assert len(join("hint.strategy=broadcast kind=inner")) == 4


def test_join_on_bare_table_and_multiple_keys(tables):
    q = "Resources | where name == 'web_0' | join kind=inner ResourceContainers on subscriptionId, resourceGroup | project name, name1"
    assert run_query(q, tables) == [{"name": "web_0", "name1": "rg"}]


def test_join_limits_and_errors():
    three = "Resources" + " | join (Resources | project id) on id" * 3
    compile_query(three)
    assert_invalid(three + " | join (Resources | project id) on id", "at most 3 join")
    nested = "Resources | join (Resources | join (Resources | join (Resources | join (Resources) on id) on id) on id) on id"
    assert_invalid(nested, "at most 3 join")
    assert_invalid("Resources | join kind=sideways (Resources) on id", "Unsupported join kind")
    assert_invalid("Resources | join (Resources | project id) on nosuch", "nosuch")
    assert_invalid("Resources | join (Resources | project id) on $left.id == $left.id")
    assert_invalid("Resources | join (Resources) id")


# --------------------------------------------------------------------------- name resolution


def test_unknown_plain_identifier_is_error():
    err = assert_invalid("Resources | where foo == 1", "Failed to resolve scalar expression named 'foo'")
    assert "line 1, column 19" in err.details[1]["message"]
    assert_invalid("Resources | project bar", "named 'bar'")
    assert_invalid("Resources | extend x = nosuch.path", "named 'nosuch'")
    assert_invalid("Resources | order by nothere", "named 'nothere'")
    assert_invalid("Resources | summarize count() by nothere", "named 'nothere'")


def test_standard_columns_and_paths_are_lenient(tables):
    # missing dynamic paths read as null; standard Resources columns resolve even after project
    assert run_query("Resources | where name == 'solo' | project name | extend t = type, p = properties.x.y",
                     tables) == [{"name": "solo", "t": None, "p": None}]
    assert run_query("Resources | where properties.does.not.exist == 'x'", tables) == []


def test_columns_from_extend_and_summarize_resolve(tables):
    q = "Resources | extend a = 1 | extend b = a + 1 | summarize total = sum(b) by type | where total > 0 | project total"
    assert run_query(q, tables) == [{"total": 10}, {"total": 4}]
    assert_invalid("Resources | summarize total = count() | project count_", "named 'count_'")


# --------------------------------------------------------------------------- syntax and support errors


@pytest.mark.parametrize("query,fragment", [
    ("Resources | frobnicate", "Unknown or unsupported query operator 'frobnicate'"),
    ("Resources | union Resources", "'union'"),
    ("Resources | Where name == 'x'", "'Where'"),
    ("Resources | where (name == 'x'", "expected ')'"),
    ("Resources | where name == 'x')", "Unexpected ')'"),
    ("Resources | where tostring(name", "expected ')'"),
    ("Resources | where nosuchfn(name) == 1", "Unknown function: 'nosuchfn'"),
    ("Resources | where ToString(name) == 'x'", "Unknown function: 'ToString'"),
    ("Resources | where count() > 1", "Aggregate function 'count'"),
    ("Resources | where tostring(name, id) == 'x'", "expects 1 argument"),
    ("Resources | where iff(true, 1) == 1", "expects 3 arguments"),
    ("Resources | where case(true, 1, false, 2) == 1", "case"),
    ("Resources | where name == 'unterminated", "Unterminated string literal"),
    ("Resources | where name == 'bad \\q escape'", "Invalid escape sequence"),
    ("Resources | where name == 'x' and", "Unexpected end of query"),
    ("Resources | where", "Unexpected end of query"),
    ("Resources |", "expected a query operator"),
    ("Resources | take", "integer row count"),
    ("Resources | take 'x'", "integer row count"),
    ("Resources where name == 'x'", "Unexpected 'where'"),
    ("Resources | where name ==", "Unexpected end of query"),
    ("Resources | where name !foo 'x'", "Unknown operator '!foo'"),
    ("Resources | where name == 'x' # comment", "Unexpected character '#'"),
    ("Resources | order name", "expected 'by'"),
    ("Resources | project", "Unexpected end of query"),
    ("Resources | project a = ", "Unexpected end of query"),
    ("Resources | where x == 1x", "Invalid numeric literal"),
    ("Resources | where $left.id == 1", "expected an expression"),
    ("Resources | where datetime(not a date) > now()", "Invalid datetime literal"),
    ("Resources | where properties.", "expected a property name"),
    ("| where name == 'x'", "expected a table name"),
    ("", "Query is empty"),
    ("   // just a comment", "Query is empty"),
])
def test_invalid_queries(query, fragment):
    assert_invalid(query, fragment)


def test_error_positions_are_reported_per_line():
    err = assert_invalid("Resources\n| where name == 'x'\n| frob")
    assert "line 3, column 3" in err.details[1]["message"]


def test_kqlerror_interface():
    err = KqlError("boom")
    assert err.message == "boom" and err.details == []
    err = KqlError("boom", [{"code": "A", "message": "b"}])
    assert err.details == [{"code": "A", "message": "b"}]
    assert "b" in str(err)
    with pytest.raises(KqlError):
        compile_query(None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- performance


def synthetic_vms(count):
    out = []
    for i in range(count):
        vmss = VMSS_ID if i % 2 == 0 else OTHER_VMSS_ID
        out.append(vm(f"vm{i:05d}", vmss=vmss, fd=i % 3, zones=(str(i % 3 + 1),),
                      power="PowerState/running" if i % 5 else "PowerState/deallocated",
                      tags={"env": "prod", "idx": str(i)}))
    return out


def test_performance_2000_rows():
    tables = {"resources": synthetic_vms(2000)}
    q = (
        "Resources | where type =~ 'microsoft.compute/virtualmachines' "
        f"and properties.virtualMachineScaleSet.id =~ '{VMSS_ID}' "
        "| extend powerState = tostring(properties.extended.instanceView.powerState.code) "
        "| project id, name, resourceGroup, location, zones, fd = properties.platformFaultDomain, powerState, "
        "osType = tostring(properties.storageProfile.osDisk.osType) "
        "| order by name asc"
    )
    compiled = compile_query(q)
    compiled.run(tables)  # warm-up
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        result = compiled.run(tables)
        timings.append(time.perf_counter() - start)
    best = min(timings)
    print(f"\nKQL 2,000 VM rows: best {best * 1000:.1f} ms, worst {max(timings) * 1000:.1f} ms "
          f"(compile+run once: ", end="")
    start = time.perf_counter()
    run_query(q + " ", tables)  # different text -> not cached
    print(f"{(time.perf_counter() - start) * 1000:.1f} ms)")
    assert len(result) == 1000
    assert result[0]["name"] == "vm00000" and len(result[0]) == 8
    assert best < 0.150
