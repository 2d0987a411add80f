"""Lag: Resource Graph shows the world as it was seconds ago (the emulator's graph_lag). 'all' never means
fewer members than exist (F5), and no decision is made from a stale state."""

from __future__ import annotations

import time

from harness import case

CAT = "lag"
LAG = 6.0
LAGGED = dict(settings={"graph_lag": LAG}, group="lag")


def _after_the_lag(ctx):
    """Wait until the world as it was at the reset is visible to Resource Graph."""
    time.sleep(LAG + 0.5)


def _warnings(run):
    return " ".join(run.warnings)


@case(CAT, "F5: right after the set was created Resource Graph shows no member; 'all' still lists all 4", **LAGGED)
def all_right_after_creation(ctx):
    run = ctx.run("flex_list_instances", include_network=False)
    ctx.expect(not run.failed, run.msg)
    ctx.expect(run["counts"]["total"] == 4, "'all' listed %d of 4 members" % run["counts"]["total"])
    ctx.expect("Resource Graph is behind" in _warnings(run) and "listed 0 member(s), the compute API 4" in _warnings(run),
               "no warning with both counts: %s" % run.warnings)


@case(CAT, "F5: right after a scale-out to 5, restart 'all' restarts 5 and warns with both counts", **LAGGED)
def all_after_a_scale_out(ctx):
    _after_the_lag(ctx)
    ctx.scale_to(5)
    run = ctx.run("flex_instance_action", action="restart", instances=["all"])
    ctx.expect(not run.failed, run.msg)
    ctx.expect(run["counts"]["selected"] == 5 and run["counts"]["changed"] == 5, "counts %s" % run["counts"])
    ctx.expect("listed 4 member(s), the compute API 5 (capacity 5)" in _warnings(run), "warnings %s" % run.warnings)


@case(CAT, "F5: after a scale-out, locking 'all' locks the new member too", **LAGGED)
def lock_all_after_a_scale_out(ctx):
    _after_the_lag(ctx)
    ctx.scale_to(6)
    run = ctx.run("flex_instance_lock", instances=["all"], protection="scale_in")
    ctx.expect(not run.failed and run["counts"]["changed"] == 6, run.msg or run.get("counts"))


@case(CAT, "F5: after a scale-out, extension_info 'all' reads the new member", **LAGGED)
def extension_info_after_a_scale_out(ctx):
    _after_the_lag(ctx)
    ctx.scale_to(5)
    run = ctx.run("flex_instance_extension_info")
    ctx.expect(not run.failed and run["counts"]["instances"] == 5, run.msg or run.get("counts"))


@case(CAT, "A member deleted seconds ago but still in Resource Graph: dropped from 'all', not failed", **LAGGED)
def all_after_a_delete(ctx):
    _after_the_lag(ctx)
    members = ctx.members()
    run = ctx.run("flex_instance_action", action="delete", instances=[members[0]])
    ctx.expect(not run.failed, run.msg)
    run = ctx.run("flex_instance_tags", instances=["all"], set_tags={"after": "delete"})
    ctx.expect(not run.failed, run.msg)
    ctx.expect(sorted(e["name"] for e in run["instances"]) == sorted(members[1:]), "tagged %s" % run.entries())
    ctx.expect("deleted, still in Resource Graph: %s" % members[0] in _warnings(run), "warnings %s" % run.warnings)


@case(CAT, "A member created seconds ago and named: found through the compute API", **LAGGED)
def named_new_member(ctx):
    _after_the_lag(ctx)
    before = set(ctx.members())
    ctx.scale_to(5)
    (new,) = set(ctx.members()) - before
    run = ctx.run("flex_instance_action", action="power_off", instances=[new])
    ctx.expect(not run.failed and run["counts"]["changed"] == 1, run.msg or run.get("counts"))


@case(CAT, "A member deallocated seconds ago (Resource Graph still says running): start 'all' starts it", **LAGGED)
def state_decided_from_the_compute_api(ctx):
    _after_the_lag(ctx)
    member = ctx.members()[1]
    ctx.run("flex_instance_action", action="deallocate", instances=[member])
    listed = ctx.run("flex_list_instances", include_network=False)
    ctx.expect(listed.by_name()[member]["power_state"] == "running", "Resource Graph did not lag; the case shows nothing")
    run = ctx.run("flex_instance_action", action="start", instances=["all"])
    ctx.expect(not run.failed, run.msg)
    ctx.expect([e["name"] for e in run["instances"] if e["changed"]] == [member], "started %s" % run.entries())


@case(CAT, "Tags set seconds ago (not in Resource Graph yet): tagging again writes nothing", **LAGGED)
def tags_decided_from_the_compute_api(ctx):
    _after_the_lag(ctx)
    ctx.run("flex_instance_tags", instances=["all"], set_tags={"run": "r1"})
    ctx.mark()
    run = ctx.run("flex_instance_tags", instances=["all"], set_tags={"run": "r1"})
    ctx.expect(not run.failed and run["changed"] is False, run.msg or run.get("counts"))
    ctx.expect_no_writes("the rerun")


@case(CAT, "The compute member source is current while Resource Graph lags", **LAGGED)
def compute_source_is_current(ctx):
    _after_the_lag(ctx)
    member = ctx.members()[0]
    ctx.run("flex_instance_action", action="power_off", instances=[member])
    run = ctx.run("flex_list_instances", member_source="compute", include_network=False)
    ctx.expect(run.by_name()[member]["power_state"] == "stopped", "compute says %s" % run.by_name()[member])
