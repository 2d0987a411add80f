"""Concurrency: writers racing on the same members lose nothing, and parallel tasks stay within their bounds."""

from __future__ import annotations

from harness import case

# Held answers to the members' reads: every writer has read before any has written, the widest race window.
SLOW_READS = dict(method="GET", delay=1.5)


def _tags_now(ctx):
    return {name: entry["tags"] for name, entry in ctx.member_states().items()}


@case("concurrency", "F1: two flex_instance_tags writers at once on 12 members: every member keeps both tags", members=12)
def two_tag_writers_on_twelve_members(ctx):
    ctx.fault(path=ctx.vm_path() + "$", count=24, **SLOW_READS)
    first = ctx.start_module("flex_instance_tags", resource_group=ctx.rg, scale_set="web", instances=["all"],
                             set_tags={"team": "a"})
    second = ctx.start_module("flex_instance_tags", resource_group=ctx.rg, scale_set="web", instances=["all"],
                              set_tags={"owner": "b"})
    runs = [first.join(), second.join()]
    for run in runs:
        ctx.expect(not run.failed, "a writer failed: %s" % run.msg)
        ctx.expect(run["counts"]["changed"] == 12, "a writer changed %s of 12" % run["counts"])
    tags = _tags_now(ctx)
    lost = sorted(name for name, value in tags.items()
                  if value.get("team") != "a" or value.get("owner") != "b" or value.get("app") != "web")
    ctx.expect(not lost, "%d of 12 members lost a tag: %s" % (len(lost), {name: tags[name] for name in lost[:3]}))


@case("concurrency", "set_tags and remove_tags at once: the removed tag stays removed, the set one stays set", members=6)
def set_and_remove_at_once(ctx):
    ctx.module("flex_instance_tags", resource_group=ctx.rg, scale_set="web", instances=["all"], set_tags={"old": "1"})
    ctx.fault(path=ctx.vm_path() + "$", count=12, **SLOW_READS)
    adder = ctx.start_module("flex_instance_tags", resource_group=ctx.rg, scale_set="web", instances=["all"],
                             set_tags={"new": "1"})
    remover = ctx.start_module("flex_instance_tags", resource_group=ctx.rg, scale_set="web", instances=["all"],
                               remove_tags=["old"])
    for run in (adder.join(), remover.join()):
        ctx.expect(not run.failed, "a writer failed: %s" % run.msg)
    for name, value in _tags_now(ctx).items():
        ctx.expect(value.get("new") == "1" and "old" not in value and value.get("app") == "web",
                   "%s ended with %s" % (name, value))


@case("concurrency", "purge at the same time as a merge: the outcome is one of the two orders, never a mix", members=6)
def purge_and_merge_at_once(ctx):
    ctx.fault(path=ctx.vm_path() + "$", count=12, **SLOW_READS)
    purge = ctx.start_module("flex_instance_tags", resource_group=ctx.rg, scale_set="web", instances=["all"],
                             set_tags={"only": "this"}, purge=True)
    merge = ctx.start_module("flex_instance_tags", resource_group=ctx.rg, scale_set="web", instances=["all"],
                             set_tags={"owner": "b"})
    for run in (purge.join(), merge.join()):
        ctx.expect(not run.failed, "a writer failed: %s" % run.msg)
    allowed = ({"only": "this"}, {"only": "this", "owner": "b"})
    for name, value in _tags_now(ctx).items():
        ctx.expect(value in allowed, "%s ended with %s (a stale copy was written back)" % (name, value))


def _max_down_at_once(events, names):
    current, worst = {}, 0
    for event in events:
        if event["vm"] in names:
            current[event["vm"]] = event["power_state"] != "running"
            worst = max(worst, sum(current.values()))
    return worst


@case("concurrency", "max_parallel 3 over 12 members: never more than 3 restarting at once (event log)", members=12)
def max_parallel_is_a_bound(ctx):
    members = set(ctx.members())
    ctx.mark()
    run = ctx.run("flex_instance_action", action="restart", instances=["all"], max_parallel=3)
    ctx.expect(not run.failed and run["counts"]["changed"] == 12, run.msg or run.get("counts"))
    worst = _max_down_at_once(ctx.events(), members)
    ctx.expect(1 <= worst <= 3, "%d members were down at once" % worst)


@case("concurrency", "Two restarts of the same members at once: each member ends running, a preemption is named",
      members=4)
def two_restarts_at_once(ctx):
    first = ctx.start_module("flex_instance_action", **ctx.of_set(action="restart", instances=["all"]))
    second = ctx.start_module("flex_instance_action", **ctx.of_set(action="restart", instances=["all"]))
    runs = [first.join(), second.join()]
    for run in runs:
        ctx.expect(not run.traceback, run.stdout[-1500:])
        for entry in run["instances"]:
            ctx.expect(entry["status"] == "changed" or (entry.get("error") or {}).get("code") in (
                "OperationPreempted", "OperationNotAllowed", "Conflict"), "unexplained outcome %s" % entry)
    ctx.expect_settled()
    ctx.expect(all(e["power_state"] == "running" for e in ctx.member_states().values()), "a member is not running")


@case("concurrency", "Locking every member while a restart runs: each member restarted or refused ScopeLocked,"
                     " none left half-done", members=6)
def lock_during_restart(ctx):
    restart = ctx.start_module("flex_instance_action", **ctx.of_set(action="restart", instances=["all"],
                                                                   attempt_protected=True, max_parallel=2))
    lock = ctx.start_module("flex_instance_lock", **ctx.of_set(instances=["all"], protection="scale_set_actions"))
    restarted, locked = restart.join(), lock.join()
    ctx.expect(not locked.failed, "locking failed: %s" % locked.msg)
    for entry in restarted["instances"]:
        ctx.expect(entry["status"] == "changed" or (entry.get("error") or {}).get("code") == "ScopeLocked",
                   "unexplained outcome %s" % entry)
    ctx.expect_settled()


@case("concurrency", "Tagging while a restart runs: both succeed, the tags are all there", members=6)
def tags_during_restart(ctx):
    restart = ctx.start_module("flex_instance_action", **ctx.of_set(action="restart", instances=["all"]))
    tags = ctx.start_module("flex_instance_tags", **ctx.of_set(instances=["all"], set_tags={"during": "restart"}))
    for run in (restart.join(), tags.join()):
        ctx.expect(not run.failed, "%s failed: %s" % (run.name, run.msg))
    ctx.expect(all(e["tags"].get("during") == "restart" for e in ctx.member_states().values()), "a tag is missing")
    ctx.expect_settled()


@case("concurrency", "The same lock written by two tasks at once: both succeed, each member holds one lock",
      members=4)
def same_lock_twice_at_once(ctx):
    first = ctx.start_module("flex_instance_lock", **ctx.of_set(instances=["all"], protection="scale_in"))
    second = ctx.start_module("flex_instance_lock", **ctx.of_set(instances=["all"], protection="scale_in"))
    for run in (first.join(), second.join()):
        ctx.expect(not run.failed, run.msg)
    again = ctx.run("flex_instance_lock", instances=["all"], protection="scale_in")
    ctx.expect(again["changed"] is False, "not idempotent afterwards: %s" % again.get("counts"))
    for entry in again["instances"]:
        ctx.expect(len(entry["protection"]["locks"]) == 1, "%s has locks %s" % (entry["name"], entry["protection"]))


@case("concurrency", "Four writers at once, each its own tag, on 8 members: every member has all four", members=8)
def four_tag_writers(ctx):
    ctx.fault(path=ctx.vm_path() + "$", method="GET", delay=1.0, count=32)
    writers = [ctx.start_module("flex_instance_tags", **ctx.of_set(instances=["all"], set_tags={"w%d" % i: str(i)}))
               for i in range(4)]
    for writer in writers:
        run = writer.join()
        ctx.expect(not run.failed, run.msg)
    for name, entry in ctx.member_states().items():
        ctx.expect(all(entry["tags"].get("w%d" % i) == str(i) for i in range(4)), "%s has %s" % (name, entry["tags"]))
