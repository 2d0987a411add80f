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
