"""Throttling and transient faults: 429 (with and without Retry-After), 5xx, failed, cancelled and stuck
operations, on every kind of call, each scoped to the case's resource group."""

from __future__ import annotations

from harness import case

CAT = "throttling and transient faults"
ACTIONS = ("start", "powerOff", "deallocate", "restart", "redeploy", "reimage")


def _all_running(ctx):
    states = ctx.member_states()
    ctx.expect(all(entry["power_state"] == "running" for entry in states.values()),
               "members not running: %s" % {name: e["power_state"] for name, e in states.items()})


@case(CAT, "429 with Retry-After on member reads (the listing with instance views, one member's instance view): "
           "retried, the wait honoured, the retries reported")
def throttled_reads_are_retried(ctx):
    # All members: one listing with instance views (the bulk read).
    ctx.fault(method="GET", path=ctx.rg_path + "providers/Microsoft.Compute/virtualMachines$", status=429,
              retry_after=1, count=2)
    run = ctx.run("flex_list_instances", member_source="compute", include_network=False)
    ctx.expect(not run.failed, run.msg)
    ctx.expect(len(run["instances"]) == 4, "listed %d of 4" % len(run["instances"]))
    ctx.expect(run["retries"]["throttled_responses"] >= 2, "listing: retries %s" % run["retries"])
    ctx.expect(run.seconds >= 1.0, "Retry-After 1 s not honoured on the listing: %.2f s" % run.seconds)
    # A few named members: the listing and one instance view read for each.
    names = sorted(entry["name"] for entry in run["instances"])[:2]
    ctx.fault(method="GET", path=ctx.vm_path() + "/instanceView$", status=429, retry_after=1, count=2)
    run = ctx.run("flex_list_instances", member_source="compute", include_network=False, instances=names)
    ctx.expect(not run.failed, run.msg)
    ctx.expect(sorted(entry["name"] for entry in run["instances"]) == names, "listed %s" % run["instances"])
    ctx.expect(run["retries"]["throttled_responses"] >= 2, "instance views: retries %s" % run["retries"])
    ctx.expect(run.seconds >= 1.0, "Retry-After 1 s not honoured on the instance views: %.2f s" % run.seconds)


@case(CAT, "429 without Retry-After on the restart POST: retried with backoff (POST included), all restarted")
def throttled_post_without_retry_after(ctx):
    ctx.fault(method="POST", path=ctx.vm_path() + "/restart$", status=429, count=3)
    run = ctx.run("flex_instance_action", action="restart", instances=["all"])
    ctx.expect(not run.failed, run.msg)
    ctx.expect(run["counts"]["changed"] == 4, "counts %s" % run["counts"])
    ctx.expect(run["retries"]["throttled_responses"] >= 3, "retries %s" % run["retries"])
    posts = [e for e in ctx.requests() if e["method"] == "POST" and e["path"].endswith("/restart")]
    ctx.expect(len([e for e in posts if e["status"] == 202]) == 4, "each member restarted once: %s" % posts)
    ctx.expect_settled()


@case(CAT, "Compute's 429 OperationNotAllowed/TooManyRequests with Retry-After on a restart: retried, done once")
def compute_throttling_body(ctx):
    ctx.fault(method="POST", path=ctx.vm_path() + "/restart$", status=429, retry_after=1, count=2,
              code="OperationNotAllowed", message="The server rejected the request because too many requests have"
                                                  " been received for this subscription.")
    run = ctx.run("flex_instance_action", action="restart", instances=["all"])
    ctx.expect(not run.failed and run["counts"]["changed"] == 4, run.msg or run["counts"])
    ctx.expect(run["retries"]["throttled_responses"] == 2, "retries %s" % run["retries"])


@case(CAT, "503 on the restart POST (not processed) is retried; the member is restarted exactly once")
def service_unavailable_on_post(ctx):
    ctx.fault(method="POST", path=ctx.vm_path() + "/restart$", status=503, count=2)
    run = ctx.run("flex_instance_action", action="restart", instances=["all"])
    ctx.expect(not run.failed and run["counts"]["changed"] == 4, run.msg or run["counts"])
    accepted = [e for e in ctx.requests() if e["path"].endswith("/restart") and e["status"] == 202]
    ctx.expect(len(accepted) == 4, "%d restarts accepted for 4 members" % len(accepted))
    ctx.expect(run["retries"]["retries"] >= 2, "retries %s" % run["retries"])


@case(CAT, "500 and 502 on member reads are retried")
def server_errors_on_reads(ctx):
    ctx.fault(method="GET", path=ctx.vm_path() + "$", status=500, count=2)
    ctx.fault(method="GET", path=ctx.vm_path() + "$", status=502, count=2)
    run = ctx.run("flex_instance_tags", instances=["all"], set_tags={"checked": "yes"})
    ctx.expect(not run.failed and run["counts"]["changed"] == 4, run.msg or run["counts"])
    ctx.expect(run["retries"]["retries"] >= 4, "retries %s" % run["retries"])


@case(CAT, "504 and 429 on the operation status polls: the wait goes on, the action is reported done",
      exclusive=True)  # the status URLs are per subscription, not per resource group
def faults_on_polls(ctx):
    ctx.fault(method="GET", path="/providers/Microsoft.Compute/locations/[^/]+/operations/", status=504, count=2)
    ctx.fault(method="GET", path="/providers/Microsoft.Compute/locations/[^/]+/operations/", status=429,
              retry_after=1, count=2)
    run = ctx.run("flex_instance_action", action="restart", instances=[ctx.members()[0]], polling_interval=1)
    ctx.expect(not run.failed and run["counts"]["changed"] == 1, run.msg or run["counts"])
    ctx.expect(run["instances"][0]["after"] == "running", "after %s" % run["instances"][0]["after"])
    ctx.expect(run["retries"]["retries"] >= 1, "retries %s" % run["retries"])
    ctx.expect_settled()


@case(CAT, "429 storm on one member's restart: that member fails with the ARM code, the others are done")
def throttling_beyond_the_retries_fails_one_member(ctx):
    members = ctx.members()
    ctx.fault(method="POST", path=ctx.vm_path(members[1]) + "/restart$", status=429, probability=1)
    run = ctx.run("flex_instance_action", action="restart", instances=["all"], timeout=120)
    ctx.expect_error(run)
    by_name = run.by_name()
    ctx.expect(by_name[members[1]]["status"] == "failed", "entry %s" % by_name[members[1]])
    error = by_name[members[1]]["error"]
    ctx.expect(error.get("code") == "SubscriptionRequestsThrottled" and error.get("status") == 429,
               "error %s" % error)
    ctx.expect(bool(error.get("request_id")), "no request id: %s" % error)
    ctx.expect(sorted(n for n, e in by_name.items() if e["status"] == "changed") == sorted(set(members) - {members[1]}),
               "the others were not all done: %s" % {n: e["status"] for n, e in by_name.items()})
    ctx.expect(run.seconds < 60, "the retries took %.0f s" % run.seconds)
    ctx.expect_settled()


@case(CAT, "Retry-After longer than the time left: no sleeping past the timeout, the task says why")
def retry_after_beyond_the_deadline(ctx):
    ctx.fault(method="POST", path=ctx.vm_path() + "/restart$", status=429, retry_after=60, probability=1)
    run = ctx.run("flex_instance_action", action="restart", instances=[ctx.members()[0]], timeout=8)
    ctx.expect_error(run)
    ctx.expect(run.seconds < 8 + 6, "ran %.1f s with timeout 8" % run.seconds)
    entry = run["instances"][0]
    ctx.expect(entry["error"].get("status") == 429, "error %s" % entry["error"])


@case(CAT, "An operation that ends Failed: the member fails with the operation's code, its state is restored")
def lro_failed(ctx):
    member = ctx.members()[2]
    ctx.fault(method="POST", path=ctx.vm_path(member) + "/restart$", lro="Failed", code="InternalExecutionError",
              message="An internal execution error occurred.")
    run = ctx.run("flex_instance_action", action="restart", instances=["all"])
    ctx.expect_error(run)
    entry = run.by_name()[member]
    ctx.expect(entry["status"] == "failed" and entry["error"].get("code") == "InternalExecutionError",
               "entry %s" % entry)
    ctx.expect(run["counts"] == {"selected": 4, "changed": 3, "skipped": 0, "failed": 1, "filtered_out": 0},
               "counts %s" % run["counts"])
    ctx.expect_settled()


@case(CAT, "An operation preempted (Canceled, OperationPreempted): reported with that code, nothing left half-done")
def lro_canceled(ctx):
    member = ctx.members()[0]
    ctx.fault(method="POST", path=ctx.vm_path(member) + "/deallocate$", lro="Canceled")
    run = ctx.run("flex_instance_action", action="deallocate", instances=[member])
    ctx.expect_error(run)
    ctx.expect(run["instances"][0]["error"].get("code") == "OperationPreempted", "entry %s" % run["instances"][0])
    ctx.expect_settled()


@case(CAT, "An operation that never ends: the task stops at its timeout and says the operation may still finish")
def lro_stuck_timeout_honoured(ctx):
    member = ctx.members()[0]
    ctx.fault(method="POST", path=ctx.vm_path(member) + "/restart$", stuck=True)
    run = ctx.run("flex_instance_action", action="restart", instances=[member], timeout=5, polling_interval=1)
    ctx.expect_error(run)
    error = run["instances"][0]["error"]
    ctx.expect(error.get("code") == "AzureFlexTimeout", "error %s" % error)
    ctx.expect("may still complete" in error.get("msg", ""), "message %r" % error.get("msg"))
    ctx.expect(run.seconds < 5 + 6, "ran %.1f s with timeout 5" % run.seconds)


@case(CAT, "Stuck operations on every member and max_parallel 2: the whole task still ends at its timeout")
def many_stuck_operations_bounded(ctx):
    ctx.fault(method="POST", path=ctx.vm_path() + "/restart$", stuck=True, count=4)
    run = ctx.run("flex_instance_action", action="restart", instances=["all"], timeout=6, max_parallel=2,
                  polling_interval=1)
    ctx.expect_error(run)
    ctx.expect(run.seconds < 6 + 8, "ran %.1f s with timeout 6" % run.seconds)
    codes = {entry["error"].get("code") for entry in run["instances"]}
    ctx.expect(codes == {"AzureFlexTimeout"}, "codes %s" % codes)


@case(CAT, "wait=false: the restarts are started, not waited for, and reported as started")
def no_wait(ctx):
    member = ctx.members()[0]
    ctx.fault(method="POST", path=ctx.vm_path(member) + "/restart$", stuck=True)
    run = ctx.run("flex_instance_action", action="restart", instances=["all"], wait=False, timeout=30)
    ctx.expect(not run.failed, run.msg)
    ctx.expect({entry["status"] for entry in run["instances"]} == {"started"}, "statuses %s" % run.entries())
    ctx.expect({entry["after"] for entry in run["instances"]} == {None}, "after %s" % run.entries())
    # One operation never ends: not waiting means the task returns anyway, well before its timeout.
    ctx.expect(run.seconds < 10, "the task took %.1f s" % run.seconds)


@case(CAT, "429 on the Tags API: the tag write is retried and the tags are set")
def throttled_tag_writes(ctx):
    ctx.fault(method="PATCH", path=ctx.vm_path() + "/providers/Microsoft.Resources/tags/default$", status=429,
              retry_after=1, count=3)
    run = ctx.run("flex_instance_tags", instances=["all"], set_tags={"owner": "ops"})
    ctx.expect(not run.failed and run["counts"]["changed"] == 4, run.msg or run["counts"])
    ctx.expect(run["retries"]["throttled_responses"] == 3, "retries %s" % run["retries"])
    ctx.expect(all(e["tags"].get("owner") == "ops" for e in ctx.member_states().values()), "tags missing")


@case(CAT, "429 and 503 on lock writes: retried, every member locked once")
def throttled_lock_writes(ctx):
    ctx.fault(method="PUT", path=ctx.rg_path + ".*/providers/Microsoft.Authorization/locks/", status=429, retry_after=1, count=2)
    ctx.fault(method="PUT", path=ctx.rg_path + ".*/providers/Microsoft.Authorization/locks/", status=503, count=1)
    run = ctx.run("flex_instance_lock", instances=["all"], protection="scale_in")
    ctx.expect(not run.failed and run["counts"]["changed"] == 4, run.msg or run.get("counts"))
    ctx.expect(run["retries"]["retries"] >= 3, "retries %s" % run["retries"])


@case(CAT, "429 on extension writes and 500 on extension reads: retried, installed on every member")
def throttled_extension_writes(ctx):
    ctx.fault(method="PUT", path=ctx.vm_path() + "/extensions/", status=429, retry_after=1, count=2)
    ctx.fault(method="GET", path=ctx.vm_path() + "/extensions/", status=500, count=2)
    run = ctx.run("flex_instance_extension", instances=["all"], name="CustomScript",
                  publisher="Microsoft.Azure.Extensions", type="CustomScript", type_handler_version="2.1",
                  settings={"commandToExecute": "true"}, polling_interval=1)
    ctx.expect(not run.failed and run["counts"]["changed"] == 4, run.msg or run.get("counts"))


@case(CAT, "429 on the scale set read and 500 on the member list: the selection is retried")
def throttled_selection(ctx):
    ctx.fault(method="GET", path=ctx.rg_path + "providers/Microsoft.Compute/virtualMachineScaleSets/web$", status=429,
              retry_after=1, count=1)
    ctx.fault(method="GET", path=ctx.rg_path + "providers/Microsoft.Compute/virtualMachines$", status=500, count=1)
    run = ctx.run("flex_list_instances", member_source="compute", include_network=False)
    ctx.expect(not run.failed and run["counts"]["total"] == 4, run.msg or run.get("counts"))
    ctx.expect(run["retries"] == {"retries": 2, "throttled_responses": 1}, "retries %s" % run["retries"])


@case(CAT, "503 on the batch delete POST: retried, the named members deleted once")
def transient_fault_on_batch_delete(ctx):
    members = ctx.members()
    ctx.fault(method="POST", path=ctx.rg_path + "providers/Microsoft.Compute/virtualMachineScaleSets/web/delete$",
              status=503, count=1)
    run = ctx.run("flex_instance_action", action="delete", instances=members[:2])
    ctx.expect(not run.failed and run["counts"]["changed"] == 2, run.msg or run.get("counts"))
    ctx.expect(sorted(ctx.members()) == sorted(members[2:]), "members now %s" % ctx.members())


@case(CAT, "429 at probability 0.3 on every call of 12 members' restart: all done, retries bounded", members=12)
def random_throttling_on_everything(ctx):
    ctx.fault(path=ctx.rg_path, status=429, retry_after=1, probability=0.3)
    run = ctx.run("flex_instance_action", action="restart", instances=["all"], max_parallel=12)
    ctx.expect(not run.failed and run["counts"]["changed"] == 12, run.msg or run.get("counts"))
    ctx.expect(run["retries"]["throttled_responses"] > 0, "no throttling met: %s" % run["retries"])
    ctx.expect_settled()


@case(CAT, "A transient 500 on the tag write's answer after the change was made: retried safely (a Merge twice"
           " changes nothing more)")
def tag_write_retried_is_idempotent(ctx):
    ctx.fault(method="PATCH", path=ctx.vm_path() + "/providers/Microsoft.Resources/tags/default$", status=500,
              count=2)
    run = ctx.run("flex_instance_tags", instances=["all"], set_tags={"a": "1"})
    ctx.expect(not run.failed, run.msg)
    again = ctx.run("flex_instance_tags", instances=["all"], set_tags={"a": "1"})
    ctx.expect(not again.failed and again["changed"] is False, "rerun changed: %s" % again.get("counts"))


@case(CAT, "Every kind of VM action survives one 429 on its POST and one 503 on its first poll", members=6)
def every_action_under_faults(ctx):
    members = ctx.members()
    ctx.fault(method="POST", path=ctx.vm_path() + "/(%s)$" % "|".join(ACTIONS), status=429, retry_after=1, count=6)
    sequence = [("power_off", "stopped"), ("start", "running"), ("deallocate", "deallocated"), ("start", "running"),
                ("redeploy", "running"), ("reimage", "running")]
    for action, expected in sequence:
        run = ctx.run("flex_instance_action", action=action, instances=members[:2], polling_interval=1)
        ctx.expect(not run.failed, "%s failed: %s" % (action, run.msg))
        ctx.expect({entry["after"] for entry in run["instances"]} == {expected},
                   "%s left %s" % (action, [entry["after"] for entry in run["instances"]]))
    ctx.expect_settled()
