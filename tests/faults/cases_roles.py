"""The rolling roles under faults, through their public interface only: the role variables in, the summary
fact ``rolling_restart_summary`` (and the emulator's logs) out. Nothing here depends on the role's task
names or internal variables."""

from __future__ import annotations

import threading

from harness import case

CAT = "role under faults"


def _restarts(ctx):
    """Accepted restart POSTs per member, from the request log."""
    counts = {}
    for entry in ctx.requests():
        if entry["method"] == "POST" and entry["path"].endswith("/restart") and entry["status"] == 202:
            name = entry["path"].rsplit("/", 2)[-2]
            counts[name] = counts.get(name, 0) + 1
    return counts


def _expect_complete(ctx, run, members):
    summary = run.summary
    ctx.expect(run.returncode == 0, "the role failed (rc %s): %s" % (run.returncode, run.output[-2500:]))
    ctx.expect(sorted(summary.get("done") or []) == sorted(members), "done %s" % summary.get("done"))
    ctx.expect(summary.get("aborted") in (False, "False"), "aborted: %s" % summary.get("abort_reason"))
    ctx.expect(summary.get("failed") == [], "failed %s" % summary.get("failed"))
    ctx.expect_settled()


@case(CAT, "429 at probability 0.2 on every call of the set: the whole run completes, every member once")
def role_under_random_throttling(ctx):
    members = ctx.members()
    ctx.mark()
    ctx.fault(path=ctx.rg_path, status=429, retry_after=1, probability=0.2)
    run = ctx.role(batch_size=2, run_id="throttled")
    _expect_complete(ctx, run, members)
    ctx.expect(_restarts(ctx) == {name: 1 for name in members}, "restarts %s" % _restarts(ctx))


@case(CAT, "503 and 500 at probability 0.1 on every call, 504 on polls: the run completes",
      exclusive=True)  # the operation status URLs are per subscription, not per resource group
def role_under_transient_errors(ctx):
    members = ctx.members()
    ctx.fault(path=ctx.rg_path, status=503, probability=0.1)
    ctx.fault(path=ctx.rg_path, status=500, probability=0.05)
    ctx.fault(method="GET", path="/providers/Microsoft.Compute/locations/[^/]+/operations/", status=504, count=3)
    run = ctx.role(batch_size=2, run_id="transient")
    _expect_complete(ctx, run, members)


@case(CAT, "One member's restart ends Failed: recorded as failed with its code, the run stops, nothing half-done")
def role_with_a_failed_restart(ctx):
    members = ctx.members()
    ctx.fault(method="POST", path=ctx.vm_path(members[0]) + "/restart$", lro="Failed", code="InternalExecutionError")
    run = ctx.role(batch_size=2, run_id="failed-member")
    summary = run.summary
    ctx.expect(run.returncode != 0, "the role succeeded although a member failed")
    failed = {entry["name"]: entry for entry in summary.get("failed") or []}
    ctx.expect(members[0] in failed and "InternalExecutionError" in str(failed[members[0]].get("reason")),
               "failed %s" % summary.get("failed"))
    ctx.expect(members[0] not in (summary.get("done") or []), "the failed member is marked done")
    ctx.expect_settled()


@case(CAT, "A member unhealthy after its restart: the run stops at the threshold and says which member")
def role_stops_at_the_threshold(ctx):
    members = ctx.members()
    ordered = sorted(members)
    ctx.set_health(ordered[0], "unhealthy", after_restart=True)
    run = ctx.role(batch_size=2, run_id="unhealthy", health_timeout=4, max_unhealthy_processed_percent=20)
    summary = run.summary
    ctx.expect(run.returncode != 0, "the role went on")
    ctx.expect(summary.get("aborted") in (True, "True"), "not aborted: %s" % summary)
    ctx.expect(ordered[0] in [entry["name"] for entry in summary.get("unhealthy") or []],
               "unhealthy %s" % summary.get("unhealthy"))
    ctx.expect(len(summary.get("not_processed") or []) == 2, "not processed %s" % summary.get("not_processed"))
    ctx.expect_settled()


@case(CAT, "Relaunched with the same run id after a stop: members done before are not restarted again")
def role_resumes(ctx):
    members = sorted(ctx.members())
    ctx.set_health(members[0], "unhealthy", after_restart=True)
    ctx.mark()
    first = ctx.role(batch_size=2, run_id="resume-me", health_timeout=4)
    ctx.expect(first.returncode != 0 and first.summary.get("aborted") in (True, "True"), "the first run did not stop")
    done_first = set(first.summary.get("done") or [])
    ctx.set_health(members[0], "healthy")
    second = ctx.role(batch_size=2, run_id="resume-me")
    ctx.expect(second.returncode == 0, "the relaunch failed: %s" % second.output[-2000:])
    ctx.expect(set(second.summary.get("done_before") or []) == done_first, "done_before %s, done first %s"
               % (second.summary.get("done_before"), done_first))
    restarts = _restarts(ctx)
    ctx.expect(all(restarts.get(name) == 1 for name in done_first), "members done in run 1 restarted again: %s"
               % restarts)
    ctx.expect(set(restarts) == set(members), "not every member was restarted: %s" % restarts)


@case(CAT, "A member locked ReadOnly with protected=skip: skipped and listed with the lock; the others done")
def role_skips_a_locked_member(ctx):
    members = ctx.members()
    ctx.lock(members[2])
    run = ctx.role(batch_size=2, run_id="locked", protected="skip")
    ctx.expect(run.returncode == 0, "the role failed: %s" % run.output[-2000:])
    skipped = {entry["name"]: entry for entry in run.summary.get("skipped") or []}
    ctx.expect(members[2] in skipped and "fault-lock" in str(skipped[members[2]].get("reason")),
               "skipped %s" % run.summary.get("skipped"))
    ctx.expect(sorted(run.summary.get("done") or []) == sorted(set(members) - {members[2]}), "done %s"
               % run.summary.get("done"))
    ctx.expect(members[2] not in _restarts(ctx), "the locked member was restarted")


@case(CAT, "429 on the Tags API (the run's marks): retried, every member marked, its other tags kept")
def role_marks_under_throttling(ctx):
    members = ctx.members()
    ctx.fault(method="PATCH", path=ctx.vm_path() + "/providers/Microsoft.Resources/tags/default$", status=429,
              retry_after=1, count=3)
    run = ctx.role(batch_size=2, run_id="marks")
    _expect_complete(ctx, run, members)
    for name, entry in ctx.member_states().items():
        ctx.expect(entry["tags"].get("azure-flex-rolling-run") == "restart:marks" and entry["tags"].get("app") == "web",
                   "%s has tags %s" % (name, entry["tags"]))


@case(CAT, "Another writer tags the members while the role runs: the role's marks never wipe its tags (F1)")
def role_marks_keep_other_writers_tags(ctx):
    members = ctx.members()
    stop = threading.Event()
    written = []

    def other_writer():
        index = 0
        while not stop.is_set() and index < 40:
            run = ctx.module("flex_instance_tags", **ctx.of_set(instances=["all"], set_tags={"w%d" % index: "x"}))
            if not run.failed:
                written.append("w%d" % index)
            index += 1

    writer = threading.Thread(target=other_writer, daemon=True)
    writer.start()
    run = ctx.role(batch_size=1, run_id="with-writer")
    stop.set()
    writer.join(120)
    _expect_complete(ctx, run, members)
    ctx.expect(len(written) >= 3, "the other writer hardly ran: %s" % written)
    for name, entry in ctx.member_states().items():
        missing = [tag for tag in written if tag not in entry["tags"]]
        ctx.expect(not missing and entry["tags"].get("azure-flex-rolling-run") == "restart:with-writer",
                   "%s lost %s (tags %s)" % (name, missing, entry["tags"]))


@case(CAT, "Issue 12's inconclusive case, its cause: seven 429s in a row (with Retry-After) on one member's restart"
           " no longer fail that member; the run completes")
def role_rides_out_a_throttling_streak(ctx):
    members = ctx.members()
    ctx.fault(method="POST", path=ctx.vm_path(sorted(members)[0]) + "/restart$", status=429, retry_after=1, count=7)
    run = ctx.role(batch_size=1, run_id="streak")
    _expect_complete(ctx, run, members)


@case(CAT, "A member throttled beyond every retry: the summary lists it as failed with the ARM code; below the"
           " threshold the run goes on, no abort, and the task fails naming it")
def role_records_a_member_throttled_beyond_retries(ctx):
    members = ctx.members()
    victim = sorted(members)[0]
    ctx.fault(method="POST", path=ctx.vm_path(victim) + "/restart$", status=429, probability=1)
    run = ctx.role(batch_size=1, run_id="beyond", max_unhealthy_processed_percent=100)
    summary = run.summary
    ctx.expect(run.returncode != 0, "the role succeeded although a member failed")
    ctx.expect(summary.get("aborted") in (False, "False"), "aborted: %s" % summary.get("abort_reason"))
    failed = {entry["name"]: entry for entry in summary.get("failed") or []}
    ctx.expect(list(failed) == [victim] and "SubscriptionRequestsThrottled" in str(failed[victim].get("reason")),
               "failed %s" % summary.get("failed"))
    ctx.expect(sorted(summary.get("done") or []) == sorted(set(members) - {victim}), "done %s" % summary.get("done"))
    ctx.expect("finished with failed members" in run.output and victim in run.output, "the failure was not named")
    ctx.expect_settled()
