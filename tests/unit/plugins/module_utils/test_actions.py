# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The actions shared by flex_instance_action and flex_rolling_batch: what to skip, act on, predict, read after."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils import _actions as module
from ansible_collections.azure_flex.vmss.plugins.modules import flex_instance_action
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import clients_over
from ansible_collections.azure_flex.vmss.tests.unit.utils.module_runner import module_over
from ansible_collections.azure_flex.vmss.tests.unit.utils.scripted_arm import Member, ScriptedArm


def member(name, power_state="running", **extra):
    base = {"name": name, "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/" + name,
            "resource_group": "rg", "power_state": power_state, "fault_domain": 0, "zones": [], "tags": {},
            "priority": "Regular"}
    base.update(extra)
    return base


def decisions(action, members, named):
    return [(entry["name"], entry["status"], entry.get("reason"), entry["after"])
            for entry, _member in module.plan_members(module.ACTIONS[action], members, named)]


@pytest.mark.parametrize("action, power_state, expected_reason", [
    ("start", "running", "already running"),
    ("start", "starting", "already starting"),
    ("deallocate", "deallocated", "already deallocated"),
    ("deallocate", "deallocating", "already deallocating"),
    ("power_off", "stopped", "already stopped"),
    ("power_off", "deallocated", "already deallocated"),
])
def test_state_actions_skip_members_already_there(action, power_state, expected_reason):
    assert decisions(action, [member("a", power_state)], named=True) == [("a", "skipped", expected_reason, power_state)]


@pytest.mark.parametrize("action, power_state, predicted", [
    ("start", "deallocated", "running"),
    ("start", "stopped", "running"),
    ("power_off", "running", "stopped"),
    ("deallocate", "running", "deallocated"),
    ("deallocate", "stopped", "deallocated"),
    ("delete", "running", "absent"),
    ("restart", "running", "running"),
    ("redeploy", "deallocated", "running"),
    ("reimage", "stopped", "running"),
])
def test_acting_predicts_the_state_after(action, power_state, predicted):
    assert decisions(action, [member("a", power_state)], named=True) == [("a", "act", None, predicted)]


def test_delete_of_an_absent_member_is_already_done():
    assert decisions("delete", [member("gone", "absent")], named=True) == [("gone", "skipped", "already absent", "absent")]


def test_a_vanished_member_is_skipped_for_other_actions():
    assert decisions("restart", [member("gone", "absent")], named=True)[0][1:3] == ("skipped", "no longer exists")


def test_restart_skips_stopped_members_selected_implicitly_but_attempts_named_ones():
    members = [member("a", "running"), member("b", "deallocated")]
    assert decisions("restart", members, named=False) == [
        ("a", "act", None, "running"), ("b", "skipped", "not running (power state deallocated)", "deallocated")]
    assert [d[1] for d in decisions("restart", members, named=True)] == ["act", "act"]


def test_simulate_eviction_only_targets_spot_members_unless_named():
    members = [member("spot", priority="Spot"), member("regular")]
    assert [d[1:3] for d in decisions("simulate_eviction", members, named=False)] == [
        ("act", None), ("skipped", "not a Spot VM")]
    assert [d[1] for d in decisions("simulate_eviction", members, named=True)] == ["act", "act"]


def test_perform_maintenance_needs_pending_maintenance_unless_named():
    members = [member("due", maintenance_pending=True), member("not_due")]
    assert [d[1:3] for d in decisions("perform_maintenance", members, named=False)] == [
        ("act", None), ("skipped", "no maintenance pending")]
    assert [d[1] for d in decisions("perform_maintenance", members, named=True)] == ["act", "act"]


@pytest.mark.parametrize("option, value, action", [
    ("skip_shutdown", True, "restart"),
    ("hibernate", True, "start"),
    ("temp_disk", False, "restart"),
    ("exact_version", "1.2.3", "deallocate"),
    ("force_deletion", True, "power_off"),
])
def test_options_of_another_action_are_refused(option, value, action):
    params = {"action": action, "skip_shutdown": False, "hibernate": False, "temp_disk": None,
              "exact_version": None, "force_deletion": False}
    params[option] = value
    with pytest.raises(InvalidInputError, match="%s applies only to action=" % option):
        module.check_action_options(params)


def test_options_of_the_action_itself_are_accepted():
    module.check_action_options({"action": "reimage", "skip_shutdown": False, "hibernate": False, "temp_disk": True,
                                 "exact_version": "1.2.3", "force_deletion": False})


def test_every_documented_action_has_an_implementation():
    assert sorted(module.ACTIONS) == sorted(flex_instance_action.argument_spec()["action"]["choices"])


class RecordingCompute:
    """Records the SDK calls an action makes, so each action is known to call the single-VM API."""

    def __init__(self):
        self.calls = []
        recorder = self

        class VirtualMachines:
            def __getattr__(self, name):
                def call(*args, **kwargs):
                    recorder.calls.append((name, args, kwargs))
                return call

        self.virtual_machines = VirtualMachines()


@pytest.mark.parametrize("action, params, expected", [
    ("start", {}, ("begin_start", ("rg", "a"), {})),
    ("power_off", {"skip_shutdown": True}, ("begin_power_off", ("rg", "a"), {"skip_shutdown": True})),
    ("deallocate", {"hibernate": True}, ("begin_deallocate", ("rg", "a"), {"hibernate": True})),
    ("deallocate", {"hibernate": False}, ("begin_deallocate", ("rg", "a"), {})),
    ("restart", {}, ("begin_restart", ("rg", "a"), {})),
    ("redeploy", {}, ("begin_redeploy", ("rg", "a"), {})),
    ("reimage", {"temp_disk": None, "exact_version": None}, ("begin_reimage", ("rg", "a"), {})),
    ("reimage", {"temp_disk": True, "exact_version": "1.2.3"},
     ("begin_reimage", ("rg", "a", {"tempDisk": True, "exactVersion": "1.2.3"}), {})),
    ("perform_maintenance", {}, ("begin_perform_maintenance", ("rg", "a"), {})),
])
def test_each_action_calls_the_single_vm_api(action, params, expected):
    compute = RecordingCompute()
    defaults = {"skip_shutdown": False, "hibernate": False, "temp_disk": None, "exact_version": None}
    module.ACTIONS[action].begin(compute, member("a"), dict(defaults, **params))
    assert compute.calls == [expected]


SCALE_SET = {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web",
             "name": "web", "resource_group": "rg"}


def scripted_module(*members):
    """A real module over a scripted ARM serving ``members``: (module, adapter, arm, the set, member dicts)."""
    arm = ScriptedArm(members, resource_group="rg")
    flex_module, adapter = module_over(arm)
    scale_set = dict(SCALE_SET, id=arm.scale_set_id)
    return flex_module, adapter, arm, scale_set, {name: member(name, id=arm.vm_id(name)) for name in arm.members}


@pytest.mark.parametrize("action, level, skipped", [
    ("restart", "ReadOnly", True),
    ("restart", "CanNotDelete", False),
    ("deallocate", "ReadOnly", True),
    ("delete", "CanNotDelete", True),
    ("delete", "ReadOnly", True),
])
def test_implicitly_selected_members_protected_from_the_action_are_skipped(action, level, skipped):
    fake, _adapter, _arm, scale_set, members = scripted_module(
        Member("web_1", locks=[{"name": "keep", "level": level}]), Member("web_2"))
    planned = module.plan_members(module.ACTIONS[action], [members["web_1"], members["web_2"]], named=False)
    module.respect_protection(fake, module.ACTIONS[action], planned, named=False, scale_set=scale_set)
    statuses = {entry["name"]: (entry["status"], entry.get("reason")) for entry, _member in planned}
    expected = ("skipped", "protected by lock 'keep' (%s, on the VM)" % level) if skipped else ("act", None)
    assert statuses == {"web_1": expected, "web_2": ("act", None)}


def test_a_named_protected_member_fails_the_task_before_anything_is_done():
    fake, adapter, _arm, scale_set, members = scripted_module(
        Member("web_1", locks=[{"name": "keep", "level": "ReadOnly"}]), Member("web_2"))
    planned = module.plan_members(module.ACTIONS["restart"], [members["web_1"], members["web_2"]], named=True)
    with pytest.raises(module.AzureFlexError) as raised:
        module.respect_protection(fake, module.ACTIONS["restart"], planned, named=True, scale_set=scale_set)
    assert [request.method for request in adapter.requests if request.method != "GET"] == []
    assert raised.value.code == "AzureFlexProtectedByLock"
    assert "web_1 ('keep' (ReadOnly, on the VM))" in raised.value.msg


def test_no_lock_is_read_when_nothing_is_to_be_done():
    fake, adapter, _arm, scale_set, members = scripted_module(Member("web_1"))
    planned = module.plan_members(module.ACTIONS["start"], [members["web_1"]], named=False)
    module.respect_protection(fake, module.ACTIONS["start"], planned, named=False, scale_set=scale_set)
    # Neither the locks nor the scale set VM view (native protection) were read: no request at all.
    assert [request for request in adapter.requests if "/locks" in request.url] == []
    assert [request for request in adapter.requests if "/virtualMachineScaleSets/" in request.url] == []


@pytest.mark.parametrize("policy, action, skipped", [
    ({"protectFromScaleSetActions": True}, "restart", True),
    ({"protectFromScaleIn": True}, "restart", False),
    ({"protectFromScaleIn": True}, "delete", True),
])
def test_native_instance_protection_is_honoured_like_a_lock(policy, action, skipped):
    fake, _adapter, _arm, scale_set, members = scripted_module(Member("web_1", protection=policy), Member("web_2"))
    planned = module.plan_members(module.ACTIONS[action], [members["web_1"], members["web_2"]], named=False)
    module.respect_protection(fake, module.ACTIONS[action], planned, named=False, scale_set=scale_set)
    statuses = {entry["name"]: entry["status"] for entry, _member in planned}
    assert statuses == {"web_1": "skipped" if skipped else "act", "web_2": "act"}


def flaky_reads(misses):
    """A real module whose reads of web_1's instance view answer 404 ``misses`` times, then the running VM.

    Returns (module, web_1, a function counting the instance view reads made, the warnings given).
    """
    fake, adapter, arm, _scale_set, members = scripted_module(Member("web_1"))
    arm.refuse("GET", r"/virtualMachines/web_1/instanceView$", 404, "ResourceNotFound", "VM not found", times=misses)
    warnings = []
    fake.warn = warnings.append

    def reads():
        return len([request for request in adapter.requests if request.url.split("?")[0].endswith("/instanceView")])

    return fake, members["web_1"], reads, warnings


def test_one_404_right_after_a_restart_is_read_again_not_reported_absent():
    fake, web_1, reads, warnings = flaky_reads(misses=1)
    state = module.power_state_after(fake, module.ACTIONS["restart"], web_1, sleep=lambda seconds: None)
    assert (state, reads(), warnings) == ("running", 2, [])


def test_a_vm_that_keeps_answering_404_after_a_restart_is_unknown_with_a_warning():
    fake, web_1, reads, warnings = flaky_reads(misses=99)
    state = module.power_state_after(fake, module.ACTIONS["restart"], web_1, sleep=lambda seconds: None)
    assert (state, reads()) == ("unknown", module.AFTER_READ_ATTEMPTS)
    assert warnings and "web_1 answered 404" in warnings[0]


def test_a_404_after_a_delete_means_absent_at_once():
    fake, web_1, reads, warnings = flaky_reads(misses=99)
    state = module.power_state_after(fake, module.ACTIONS["delete"], web_1, sleep=lambda seconds: None)
    assert (state, reads(), warnings) == ("absent", 1, [])


def test_upgrade_skips_members_on_the_latest_model_named_or_not_and_upgrades_the_others():
    upgrade = module.ACTIONS["upgrade"]
    current, behind, unknown = (dict(member(name), latest_model=value)
                                for name, value in (("web_1", True), ("web_2", False), ("web_3", None)))
    for named in (False, True):
        planned = module.plan_members(upgrade, [current, behind, unknown], named=named)
        assert [(entry["status"], entry.get("reason")) for entry, _member in planned] == [
            ("skipped", "already on the latest model"), ("act", None), ("act", None)]
        assert [entry["after"] for entry, _member in planned] == ["running"] * 3


def test_upgrade_is_the_scale_sets_manual_upgrade_with_the_vm_name():
    arm = ScriptedArm([Member("web_2")], resource_group="set-rg")
    clients, adapter, _sleeps = clients_over(arm)
    scale_set = {"id": arm.scale_set_id, "name": "web", "resource_group": "set-rg"}

    module.ACTIONS["upgrade"].begin(clients.compute(), member("web_2"), {"scale_set": scale_set})

    # The write only: the poller it returns polls the operation on its own thread.
    assert [(request.method, urlsplit(request.url).path, request.json()) for request in adapter.requests
            if request.method != "GET"] == [("POST", arm.scale_set_id + "/manualupgrade", {"instanceIds": ["web_2"]})]
