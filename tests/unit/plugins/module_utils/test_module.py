# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import contextlib
import json

import pytest
from ansible_collections.azure_flex.vmss.plugins.module_utils._criteria import selection_argument_spec
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import (
    AzureFlexError,
    InvalidInputError,
    MissingDependencyError,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._module import (
    MEMBER_STATUSES,
    READ_ARGUMENT_SPEC,
    WAIT_ARGUMENT_SPEC,
    AzureFlexModule,
    MemberFailures,
    listing_line,
    member_counts,
    summary_line,
)
from ansible_collections.azure_flex.vmss.plugins.module_utils._selection import ScaleSetSelector
from ansible_collections.azure_flex.vmss.tests.unit.utils.module_args import patch_module_args
from azure.core.exceptions import ResourceExistsError

SUB = "11111111-2222-3333-4444-555555555555"
AWX_ENV = {"AZURE_SUBSCRIPTION_ID": SUB, "AZURE_CLIENT_ID": "app", "AZURE_SECRET": "s", "AZURE_TENANT": "t"}


def module_spec():
    spec = selection_argument_spec()
    spec.update(WAIT_ARGUMENT_SPEC)
    return spec


@pytest.fixture
def build():
    """Build an AzureFlexModule; its arguments stay patched in until the test ends (exit_json needs them)."""
    with contextlib.ExitStack() as stack:
        def factory(args, environ=None):
            stack.enter_context(patch_module_args(args))
            return AzureFlexModule(module_spec(), supports_check_mode=True,
                                   environ=AWX_ENV if environ is None else environ)
        yield factory


def run_and_capture(capsys, action):
    """Run ``action`` (which ends with exit_json or fail_json); return (exit code, result dict)."""
    with pytest.raises(SystemExit) as exited:
        action()
    return exited.value.code, json.loads(capsys.readouterr().out)


def test_construction_only_parses_arguments(build):
    module = build({"resource_group": "rg1", "scale_set": "web", "_ansible_check_mode": True})

    assert module.params["scale_set"] == "web"
    assert module.params["auth_source"] == "auto"
    assert module.check_mode is True
    assert module.deadline.seconds == 900
    assert module._clients is None  # pylint: disable=protected-access


def test_deadline_comes_from_the_timeout_option(build):
    assert build({"scale_set_id": "/x", "timeout": 42}).deadline.seconds == 42


def test_module_options_cannot_redefine_authentication_options():
    with patch_module_args({}):
        with pytest.raises(ValueError):
            AzureFlexModule({"secret": dict(type="str")})


@pytest.mark.parametrize("option, value", [("max_parallel", 0), ("max_parallel", 101), ("timeout", 0),
                                           ("polling_interval", 0), ("timeout", 9999999999), ("timeout", 86401),
                                           ("polling_interval", 3601)])
def test_limits_are_checked(capsys, option, value, build):
    """F6: a huge timeout used to crash in sock.settimeout() (OverflowError); it is refused with its bounds."""
    code, result = run_and_capture(capsys, lambda: build({"scale_set_id": "/x", option: value}))

    assert code == 1
    assert result["msg"].startswith(option + " must be between")
    assert result["msg"].endswith("got %d" % value)
    assert result["code"] == "AzureFlexInvalidInput"


def test_the_largest_timeout_is_accepted(build):
    assert build({"scale_set_id": "/x", "timeout": 86400}).deadline.seconds == 86400


def test_profile_and_secret_are_mutually_exclusive(capsys, build):
    code, result = run_and_capture(capsys, lambda: build({"scale_set_id": "/x", "profile": "p", "secret": "a-long-secret-value"}))

    assert code == 1
    assert "mutually exclusive" in result["msg"]


def test_run_exits_with_the_result(capsys, build):
    module = build({"scale_set_id": "/x"})

    code, result = run_and_capture(capsys, lambda: module.run(lambda m: {"changed": False, "members": []}))

    assert code == 0
    assert result["members"] == []


def test_run_reports_azure_errors_with_code_status_and_request_id(capsys, build):
    module = build({"scale_set_id": "/x"})

    def work(_module):
        raise AzureFlexError("Failed to restart vm1: locked", code="ScopeLocked", status=409, request_id="r1",
                             correlation_id="c1")

    code, result = run_and_capture(capsys, lambda: module.run(work))

    assert code == 1
    assert (result["failed"], result["msg"], result["code"], result["status"], result["request_id"],
            result["correlation_id"]) == (True, "Failed to restart vm1: locked", "ScopeLocked", 409, "r1", "c1")


def test_run_converts_raw_sdk_errors(capsys, build):
    module = build({"scale_set_id": "/x"})

    def work(_module):
        raise ResourceExistsError("conflict")

    code, result = run_and_capture(capsys, lambda: module.run(work))

    assert code == 1
    assert result["msg"] == "conflict"


def test_run_lets_bugs_surface(build):
    module = build({"scale_set_id": "/x"})

    with pytest.raises(KeyError):
        module.run(lambda m: {}["missing"])


def test_fail_azure_reports_missing_libraries_the_ansible_way(capsys, build):
    module = build({"scale_set_id": "/x"})
    error = MissingDependencyError("azure-mgmt-compute", ImportError("No module named 'azure.mgmt.compute'"))

    code, result = run_and_capture(capsys, lambda: module.fail_azure(error, members=[]))

    assert code == 1
    assert "azure-mgmt-compute" in result["msg"]
    assert "Failed to import the required Python library" in result["msg"]
    assert result["members"] == []


def test_clients_are_built_lazily_from_the_environment(build):
    module = build({"scale_set_id": "/x", "polling_interval": 2})

    clients = module.clients

    assert clients.subscription_id == SUB
    assert clients.client_options()["base_url"] == "https://management.azure.com"
    assert clients.client_options()["polling_interval"] == 2
    assert clients.retry_rules.deadline is module.deadline
    assert module.clients is clients
    assert module.auth_settings.source == "service_principal"


def test_bad_authentication_input_surfaces_as_an_azure_flex_error(build):
    module = build({"scale_set_id": "/x"}, environ={})

    with pytest.raises(AzureFlexError) as caught:
        module.clients  # pylint: disable=pointless-statement

    assert "No subscription ID" in caught.value.msg


def test_a_fake_client_factory_can_be_injected(build):
    module = build({"scale_set_id": "/x", "max_parallel": 3})
    module.clients = fake = object()

    selector = module.selector()

    assert selector.clients is fake
    assert (selector.subscription_id, selector.max_parallel, selector.deadline) == (SUB, 3, module.deadline)


def test_fan_out_uses_the_task_limits(build):
    module = build({"scale_set_id": "/x", "max_parallel": 2})

    outcomes = module.fan_out(lambda name: name.upper(), ["a", "b", "c"])

    assert [outcome.result for outcome in outcomes] == ["A", "B", "C"]


def test_run_operation_honours_wait(build):
    class Poller:
        def wait(self, timeout=None):
            pass

        def done(self):
            return True

        def result(self):
            return "ok"

    assert build({"scale_set_id": "/x"}).run_operation(Poller, "restart vm1") == (True, "ok")
    assert build({"scale_set_id": "/x", "wait": False}).run_operation(Poller, "restart vm1") == (False, None)


def test_retry_summary(build):
    module = build({"scale_set_id": "/x"})
    assert module.retry_summary() == {"retries": 0, "throttled_responses": 0}

    module.clients.retry_rules.record_retry(429)

    assert module.retry_summary() == {"retries": 1, "throttled_responses": 1}


def test_read_only_spec_has_no_wait_options():
    assert set(READ_ARGUMENT_SPEC) == {"timeout", "max_parallel"}


def test_report_members_lists_named_members_a_filter_left_out_and_warns_once(build, monkeypatch):
    """F8: a member named in instances and dropped by a filter is reported, with the reason, and warned about."""
    module = build({"scale_set_id": "/x"})
    module.clients = object()
    warned = []
    monkeypatch.setattr(module.module, "warn", warned.append)
    selector = module.selector()
    selector.filtered_out.append({"member": {"name": "web_0", "id": "/vm/web_0"}, "reason": "left out: power state"})
    selector.warnings.append("1 member(s) named in instances were left out")
    scale_set = {"id": "/set", "name": "web", "resource_group": "rg"}
    acted = {"name": "web_1", "id": "/vm/web_1", "status": "changed", "changed": True, "before": "a", "after": "b"}

    result = module.report_members(scale_set, [acted], "instances", "act")

    assert result["instances"] == [
        {"name": "web_0", "id": "/vm/web_0", "status": "skipped", "changed": False, "reason": "left out: power state"},
        acted]
    assert result["counts"] == {"selected": 1, "changed": 1, "skipped": 0, "failed": 0, "filtered_out": 1}
    assert warned == ["1 member(s) named in instances were left out"]
    module.selection_outcome()
    assert len(warned) == 1


def test_a_secret_from_the_environment_is_masked_in_the_result(build):
    module = build({"scale_set_id": "/x"}, environ=dict(AWX_ENV, AZURE_SECRET="env-secret-value-123"))

    assert module.auth_settings.secret == "env-secret-value-123"
    assert "env-secret-value-123" in module.module.no_log_values


# -- the one result path ---------------------------------------------------------------------------------

COMMON_KEYS = {"changed", "msg", "scale_set", "elapsed_seconds", "retries"}
SCALE_SET = {"id": "/subscriptions/%s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web" % SUB,
             "name": "web", "resource_group": "rg", "location": "eastus"}


def entry(name, status, changed=None):
    return {"name": name, "id": "/vm/" + name, "status": status,
            "changed": status in ("changed", "would_change", "started") if changed is None else changed,
            "before": "a", "after": "b" if status != "skipped" else "a"}


def test_the_status_vocabulary_is_the_documented_one():
    assert MEMBER_STATUSES == ("changed", "skipped", "would_change", "started", "failed", "would_fail")


def test_member_counts_count_failures_by_status_changes_by_flag_and_the_rest_as_skipped():
    entries = [entry("a", "changed"), entry("b", "started"), entry("c", "skipped"), entry("d", "failed"),
               entry("e", "would_fail"), {"name": "listed", "id": "/vm/listed"}]

    assert member_counts(entries, [{"name": "gone"}]) == {"selected": 6, "changed": 2, "skipped": 2, "failed": 2,
                                                          "filtered_out": 1}


def test_the_summary_line_says_what_was_done_to_how_many_members():
    counts = {"selected": 12, "changed": 3, "skipped": 9, "failed": 0, "filtered_out": 0}

    assert summary_line("restart", counts) == "restart: 3 of 12 member(s) changed, 9 skipped"
    assert summary_line("restart", counts, check_mode=True) == "restart: 3 of 12 member(s) would change, 9 skipped"
    assert summary_line("restart", dict(counts, changed=1, failed=2, filtered_out=1)) == \
        "restart: 1 of 12 member(s) changed, 9 skipped, 2 failed, 1 filtered out"
    assert listing_line("list instances", dict(counts, filtered_out=2)) == \
        "list instances: 12 member(s) listed, 2 filtered out"


def test_mark_or_act_marks_would_change_in_check_mode_and_acts_on_nothing(build):
    module = build({"scale_set_id": "/x", "_ansible_check_mode": True})
    todo = [(entry("a", "act"), "member a")]
    acted = []

    assert module.mark_or_act(todo, acted.append) == []
    assert (todo[0][0]["status"], acted) == ("would_change", [])


def test_mark_or_act_acts_outside_check_mode_and_not_at_all_without_work(build):
    module = build({"scale_set_id": "/x"})
    todo = [(entry("a", "act"), "member a")]
    calls = []

    def act(items):
        calls.append(items)
        return ["outcome of a"]

    assert module.mark_or_act(todo, act) == ["outcome of a"]
    assert calls == [todo] and todo[0][0]["status"] == "act"
    assert module.mark_or_act([], act) == [] and len(calls) == 1


def test_a_member_result_has_the_common_keys_instances_and_counts(build):
    module = build({"scale_set_id": "/x"})
    module.clients = object()

    result = module.member_result(SCALE_SET, [entry("b", "changed"), entry("a", "skipped")], "restart",
                                  counts={"rules_deleted": 0}, extra="kept")

    assert COMMON_KEYS | {"instances", "counts", "extra"} == set(result)
    assert (result["changed"], result["msg"]) == (True, "restart: 1 of 2 member(s) changed, 1 skipped")
    assert result["scale_set"] == {key: SCALE_SET[key] for key in ("id", "name", "resource_group")}
    assert [item["name"] for item in result["instances"]] == ["a", "b"]
    assert result["counts"] == {"selected": 2, "changed": 1, "skipped": 1, "failed": 0, "filtered_out": 0,
                                "rules_deleted": 0}
    assert isinstance(result["elapsed_seconds"], float)
    assert result["retries"] == {"retries": 0, "throttled_responses": 0}


def test_report_members_takes_the_modules_own_diff(build):
    module = build({"scale_set_id": "/x", "_ansible_diff": True})
    module.clients = object()
    own = {"before": {"locks": {}}, "after": {"locks": {}}}

    assert module.report_members(SCALE_SET, [entry("a", "changed")], None, "act", diff=own)["diff"] is own
    assert module.report_members(SCALE_SET, [entry("a", "changed")], "instances", "act")["diff"] == {
        "before": {"instances": {"a": "a"}}, "after": {"instances": {"a": "b"}}}


def test_members_that_failed_fail_the_task_with_the_common_shape(capsys, build):
    module = build({"scale_set_id": "/x"})
    module.clients = object()
    failed = dict(entry("b", "failed"), error={"msg": "locked", "code": "ScopeLocked"})

    def work(module):
        return module.report_members(SCALE_SET, [entry("a", "changed"), failed], "instances", "restart")

    with pytest.raises(MemberFailures):
        work(module)
    code, result = run_and_capture(capsys, lambda: module.run(work))

    assert code == 1
    assert COMMON_KEYS | {"instances", "counts", "failed"} <= set(result)
    assert result["msg"] == "1 of 2 member(s) failed to restart: b: ScopeLocked"
    assert result["changed"] is True and result["counts"]["failed"] == 1
    assert result["scale_set"]["name"] == "web"


def test_an_azure_error_fails_with_the_common_keys_and_the_scale_set_the_options_name(capsys, build):
    module = build({"resource_group": "rg", "scale_set": "web"})

    def work(_module):
        raise AzureFlexError("Failed to read scale set web: gone", code="ResourceNotFound", status=404)

    code, result = run_and_capture(capsys, lambda: module.run(work))

    assert code == 1
    assert COMMON_KEYS <= set(result)
    assert (result["changed"], result["msg"], result["code"]) == (False, "Failed to read scale set web: gone",
                                                                  "ResourceNotFound")
    assert result["scale_set"] == {"id": None, "name": "web", "resource_group": "rg"}
    assert result["retries"] == {"retries": 0, "throttled_responses": 0}


def test_a_failure_after_the_scale_set_was_read_reports_it(capsys, build):
    module = build({"scale_set_id": SCALE_SET["id"]})
    module.clients = object()

    def work(module):
        module.common_result("read", SCALE_SET)
        raise AzureFlexError("later", code="Conflict", status=409)

    _code, result = run_and_capture(capsys, lambda: module.run(work))

    assert result["scale_set"] == {"id": SCALE_SET["id"], "name": "web", "resource_group": "rg"}


def test_a_failure_after_a_selector_read_the_scale_set_names_it(capsys, build, monkeypatch):
    module = build({"resource_group": "rg", "scale_set": "web"})
    module.clients = object()
    monkeypatch.setattr(ScaleSetSelector, "get_scale_set", lambda self, ref: dict(SCALE_SET))

    def work(module):
        module.selector().get_scale_set("ref")
        raise InvalidInputError("refused after the read")

    _code, result = run_and_capture(capsys, lambda: module.run(work))

    assert result["scale_set"] == {"id": SCALE_SET["id"], "name": "web", "resource_group": "rg"}
    assert result["code"] == "AzureFlexInvalidInput"


def test_a_limit_refused_at_construction_carries_the_common_keys(capsys, build):
    _code, result = run_and_capture(capsys, lambda: build({"scale_set_id": SCALE_SET["id"], "max_parallel": 0}))

    assert COMMON_KEYS <= set(result)
    assert (result["code"], result["elapsed_seconds"], result["changed"]) == ("AzureFlexInvalidInput", 0.0, False)
    assert result["scale_set"] == {"id": SCALE_SET["id"], "name": "web", "resource_group": "rg"}


@pytest.mark.parametrize("args, message", [
    ({"resource_group": "rg", "scale_set": "web", "scale_set_id": "/x"}, "mutually exclusive"),
    ({}, "one of the following is required"),
    ({"scale_set": "web"}, "parameters are required together"),
])
def test_selects_members_applies_the_selection_constraints(capsys, args, message):
    with patch_module_args(args):
        code, result = run_and_capture(capsys, lambda: AzureFlexModule(module_spec(), environ=AWX_ENV,
                                                                       selects_members=True))

    assert code == 1
    assert message in result["msg"]


def test_selects_members_keeps_the_modules_own_constraints(capsys):
    spec = dict(module_spec(), protection=dict(type="str"), level=dict(type="str"))
    with patch_module_args({"scale_set_id": "/x", "protection": "p", "level": "l"}):
        code, result = run_and_capture(capsys, lambda: AzureFlexModule(
            spec, environ=AWX_ENV, selects_members=True, mutually_exclusive=[("protection", "level")]))

    assert code == 1
    assert "protection|level" in result["msg"]
