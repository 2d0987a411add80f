"""Bad input: refused with a clear message before any call to Azure (or at least before any write), never a
traceback; and no natural spelling silently does nothing (the tags trap, named members left out by a filter,
an empty instances list)."""

from __future__ import annotations

from harness import case

CAT = "bad input"


def _refused(ctx, run, text, code="AzureFlexInvalidInput", any_request=False):
    """Refused with ``text``; with ``any_request`` false, before any request about the case's resources."""
    ctx.expect_error(run, code=code, text=text)
    # Only this case's resource group can be told apart: the other cases run at the same time.
    arm = ctx.requests()
    if not any_request:
        ctx.expect(arm == [], "requests were sent: %s" % [(e["method"], e["path"]) for e in arm][:4])
    ctx.expect_no_writes()


def _with_lb(group):
    group["public_ips"] = [{"name": "lb-pip", "sku": "Standard"}]
    group["load_balancers"] = [{"name": "lb", "sku": "Standard", "frontends": [{"name": "fe", "public_ip": "lb-pip"}],
                                "backend_pools": ["pool"]}]
    group["scale_sets"][0]["backend_pools"] = ["lb/pool"]


@case(CAT, "F6: timeout=9999999999 is refused with its bounds, not an OverflowError traceback")
def huge_timeout(ctx):
    ctx.mark()
    run = ctx.run("flex_instance_action", action="restart", instances=["all"], timeout=9999999999)
    _refused(ctx, run, "timeout must be between 1 and 86400, got 9999999999")


@case(CAT, "timeout 0, max_parallel 0 or 1000, polling_interval 100000: each refused with its bounds")
def other_limits(ctx):
    for option, value in (("timeout", 0), ("max_parallel", 0), ("max_parallel", 1000), ("polling_interval", 100000)):
        run = ctx.run("flex_instance_tags", instances=["all"], set_tags={"a": "1"}, **{option: value})
        _refused(ctx, run, "%s must be between" % option)


@case(CAT, "F8: instances: [] is an error, not a silent no-op, in every module that selects")
def empty_instances(ctx):
    for module, extra in (("flex_instance_action", {"action": "restart"}), ("flex_instance_tags", {"set_tags": {"a": "1"}}),
                          ("flex_instance_lock", {"protection": "scale_in"}), ("flex_list_instances", {}),
                          ("flex_instance_extension_info", {})):
        run = ctx.run(module, instances=[], **extra)
        _refused(ctx, run, "instances is an empty list", any_request=True)


@case(CAT, "'all' mixed with names, a name with a quote (KQL injection), a control character: refused")
def malformed_names(ctx):
    for instances, text in ((["all", "web_1"], "either the word 'all' or a list"),
                            (["web' or name != '"], "is not valid"),
                            (["web_1\n| project"], "is not valid")):
        run = ctx.run("flex_instance_action", action="restart", instances=instances)
        _refused(ctx, run, text)


@case(CAT, "A resource group name with a quote, a malformed scale_set_id, one of another subscription: refused")
def malformed_scope(ctx):
    run = ctx.module("flex_list_instances", resource_group="rg' or 1==1 //", scale_set="web")
    _refused(ctx, run, "Resource group name .* is not valid")
    run = ctx.module("flex_list_instances", scale_set_id="/subscriptions/x/resourceGroups")
    _refused(ctx, run, "is not a scale set resource id")
    other = "/subscriptions/0f0f0f0f-0000-0000-0000-000000000001/resourceGroups/%s/providers/Microsoft.Compute/" \
            "virtualMachineScaleSets/web" % ctx.rg
    run = ctx.module("flex_instance_action", scale_set_id=other, action="restart", instances=["all"])
    _refused(ctx, run, "but the task authenticates to subscription")


@case(CAT, "Unknown power_states, a zone list of dicts, an option of another action: refused before any call")
def wrong_option_values(ctx):
    run = ctx.run("flex_instance_action", action="restart", instances=["all"], power_states=["sleeping"])
    ctx.expect_error(run, text="sleeping")
    run = ctx.run("flex_instance_action", action="restart", instances=["all"], hibernate=True)
    _refused(ctx, run, "hibernate applies only to action=deallocate")
    run = ctx.run("flex_instance_action", action="restart", instances=["all"], validate_certs=False)
    ctx.expect_error(run, code=None, text="Unsupported parameters.*validate_certs")
    ctx.expect_no_writes()


@case(CAT, "The tags trap: flex_instance_tags instances=<member> tags={env: prod} is refused, pointing at set_tags")
def tags_trap(ctx):
    run = ctx.run("flex_instance_tags", instances=[ctx.members()[0]], tags={"env": "prod"})
    _refused(ctx, run, "the option tags only selects members .* use set_tags", any_request=True)
    run = ctx.run("flex_instance_tags", instances=["all"], tags={"env": "prod"}, set_tags={"env": "prod"})
    _refused(ctx, run, "selects only members that already have every tag in set_tags", any_request=True)
    run = ctx.run("flex_instance_tags", instances=["all"])
    _refused(ctx, run, "Nothing to change", any_request=True)


@case(CAT, "Tag names and values Azure refuses, too many tags, purge with remove_tags: refused before any call")
def bad_tags(ctx):
    for args, text in (({"set_tags": {"a<b": "1"}}, "does not allow in tag names"),
                       ({"set_tags": {"a": "x" * 257}}, "at most 256"),
                       ({"set_tags": {"t%d" % i: "v" for i in range(51)}}, "at most 50"),
                       ({"set_tags": {"a": "1"}, "remove_tags": ["b"], "purge": True}, "cannot be combined"),
                       ({"set_tags": {"a": "1", "A": "2"}}, "twice")):
        run = ctx.run("flex_instance_tags", instances=["all"], **args)
        _refused(ctx, run, text)


@case(CAT, "Lock names and notes Azure refuses, an extension name with a slash: refused before any call")
def bad_lock_and_extension_input(ctx):
    run = ctx.run("flex_instance_lock", instances=["all"], protection="scale_in", name="a:b")
    _refused(ctx, run, "lock name")
    run = ctx.run("flex_instance_lock", instances=["all"], protection="scale_in", notes="n" * 513)
    _refused(ctx, run, "notes")
    run = ctx.run("flex_instance_extension", instances=["all"], name="../x", state="absent")
    _refused(ctx, run, "Extension name")


@case(CAT, "A subscription id that is not a GUID, an http:// cloud, a ca_bundle that does not exist: refused")
def bad_authentication_input(ctx):
    run = ctx.run("flex_list_instances", subscription_id="my-subscription")
    _refused(ctx, run, "subscription_id must be a GUID")
    run = ctx.run("flex_list_instances", cloud_environment="http://management.example.invalid")
    _refused(ctx, run, "neither a known cloud")
    run = ctx.run("flex_list_instances", ca_bundle="/nonexistent/ca.pem")
    _refused(ctx, run, "does not exist")


def _named_and_filtered(ctx):
    """Two named members, one of them deallocated, and the filter power_states=[running]."""
    members = ctx.members()
    ctx.run("flex_instance_action", action="deallocate", instances=[members[1]])
    ctx.mark()
    return members[0], members[1]


def _expect_reported(ctx, run, dropped, in_instances=True):
    ctx.expect(not run.failed, "%s failed: %s" % (run.name, run.msg))
    entries = run["instances"] if in_instances else run["filtered_out"]
    entry = {e["name"]: e for e in entries}.get(dropped)
    ctx.expect(entry is not None and entry["status"] == "skipped" and "power state deallocated is not in power_states"
               in entry.get("reason", ""), "%s: the dropped member is not reported: %s" % (run.name, entries))
    ctx.expect(any(dropped in warning and "left out by the filters" in warning for warning in run.warnings),
               "%s did not warn: %s" % (run.name, run.warnings))
    if "counts" in run.result and "filtered_out" in run["counts"]:
        ctx.expect(run["counts"]["filtered_out"] == 1, "%s counts %s" % (run.name, run["counts"]))


@case(CAT, "F8: a named member a filter leaves out is reported by flex_instance_action (entry, reason, warning)")
def filtered_named_member_action(ctx):
    kept, dropped = _named_and_filtered(ctx)
    run = ctx.run("flex_instance_action", action="restart", instances=[kept, dropped], power_states=["running"])
    _expect_reported(ctx, run, dropped)
    ctx.expect([e["name"] for e in run["instances"] if e["changed"]] == [kept], "acted on %s" % run.entries())


@case(CAT, "F8: ... by flex_instance_tags")
def filtered_named_member_tags(ctx):
    kept, dropped = _named_and_filtered(ctx)
    run = ctx.run("flex_instance_tags", instances=[kept, dropped], power_states=["running"], set_tags={"a": "1"})
    _expect_reported(ctx, run, dropped)


@case(CAT, "F8: ... by flex_instance_lock")
def filtered_named_member_lock(ctx):
    kept, dropped = _named_and_filtered(ctx)
    run = ctx.run("flex_instance_lock", instances=[kept, dropped], power_states=["running"], protection="scale_in")
    _expect_reported(ctx, run, dropped)


@case(CAT, "F8: ... by flex_instance_extension")
def filtered_named_member_extension(ctx):
    kept, dropped = _named_and_filtered(ctx)
    run = ctx.run("flex_instance_extension", instances=[kept, dropped], power_states=["running"], name="CustomScript",
                  publisher="Microsoft.Azure.Extensions", type="CustomScript", type_handler_version="2.1")
    _expect_reported(ctx, run, dropped)


@case(CAT, "F8: ... by flex_list_instances and flex_instance_extension_info (in filtered_out)")
def filtered_named_member_info(ctx):
    kept, dropped = _named_and_filtered(ctx)
    for module in ("flex_list_instances", "flex_instance_extension_info"):
        run = ctx.run(module, instances=[kept, dropped], power_states=["running"], member_source="compute")
        _expect_reported(ctx, run, dropped, in_instances=False)
        ctx.expect([e["name"] for e in run["instances"]] == [kept], "%s listed %s" % (module, run.entries()))


@case(CAT, "F8: ... by flex_nat_rule", scenario=_with_lb)
def filtered_named_member_nat(ctx):
    kept, dropped = _named_and_filtered(ctx)
    run = ctx.run("flex_nat_rule", instances=[kept, dropped], power_states=["running"], load_balancer="lb", name="ssh",
                  frontend_port_start=50000, frontend_port_end=50099, backend_port=22)
    _expect_reported(ctx, run, dropped)


@case(CAT, "A filter that selects none of the members (tags= as azure.azcollection users write it): a warning")
def filter_selecting_nothing(ctx):
    run = ctx.run("flex_instance_action", action="restart", instances=["all"], tags={"env": "prod"})
    ctx.expect(not run.failed and run["counts"]["selected"] == 0, run.msg or run.get("counts"))
    ctx.expect(any("selected none of the 4 member(s)" in w and "tags selects members" in w for w in run.warnings),
               "no warning: %s" % run.warnings)
    ctx.expect_no_writes()
