"""Azure refusals: locks, wrong power states, missing or foreign resources, Uniform sets, denied access.
Each is reported with Azure's code (and status and request id when Azure answered), and a refusal the
collection can foresee is made before any write."""

from __future__ import annotations

from harness import case

CAT = "Azure refusals"
CUSTOM_SCRIPT = dict(name="CustomScript", publisher="Microsoft.Azure.Extensions", type="CustomScript",
                     type_handler_version="2.1", settings={"commandToExecute": "true"})


def _uniform(group):
    group["scale_sets"].append({"name": "legacy", "orchestration_mode": "Uniform", "instances": 2})


def _standalone(group):
    group["vms"] = [{"name": "loner", "subnet": "vnet/default"}]


@case(CAT, "A named member locked ReadOnly: the restart is refused before any write, naming the lock")
def named_locked_member_refused_before_writing(ctx):
    members = ctx.members()
    ctx.lock(members[0])
    ctx.mark()
    run = ctx.run("flex_instance_action", action="restart", instances=members[:2])
    ctx.expect_error(run, code="AzureFlexProtectedByLock", text="fault-lock")
    ctx.expect_no_writes()
    ctx.expect(ctx.events() == [], "state changed: %s" % ctx.events())


@case(CAT, "A locked member among 'all': skipped with the lock as reason, the others restarted")
def locked_member_skipped_in_all(ctx):
    members = ctx.members()
    ctx.lock(members[1])
    run = ctx.run("flex_instance_action", action="restart", instances=["all"])
    ctx.expect(not run.failed, run.msg)
    entry = run.by_name()[members[1]]
    ctx.expect(entry["status"] == "skipped" and "fault-lock" in entry["reason"], "entry %s" % entry)
    ctx.expect(run["counts"]["changed"] == 3, "counts %s" % run["counts"])


@case(CAT, "attempt_protected: Azure's 409 ScopeLocked is reported for the member, with status and request id")
def scope_locked_reported(ctx):
    members = ctx.members()
    ctx.lock(members[0])
    run = ctx.run("flex_instance_action", action="restart", instances=[members[0]], attempt_protected=True)
    ctx.expect_error(run)
    error = run["instances"][0]["error"]
    ctx.expect((error.get("code"), error.get("status")) == ("ScopeLocked", 409) and error.get("request_id"),
               "error %s" % error)
    ctx.expect_settled()


@case(CAT, "Tags on a ReadOnly-locked member: ScopeLocked for it (the Tags API respects locks), the others tagged")
def tags_on_a_locked_member(ctx):
    members = ctx.members()
    ctx.lock(members[3])
    run = ctx.run("flex_instance_tags", instances=["all"], set_tags={"owner": "ops"})
    ctx.expect_error(run, text="1 of 4 member")
    entry = run.by_name()[members[3]]
    ctx.expect(entry["error"].get("code") == "ScopeLocked" and entry["after"] == entry["before"], "entry %s" % entry)
    ctx.expect(ctx.member_states()[members[3]]["tags"].get("owner") is None, "the locked member was tagged")


@case(CAT, "A named deallocated member restarted: Azure's 409 OperationNotAllowed reported, state unchanged")
def restart_of_deallocated_named_member(ctx):
    member = ctx.members()[0]
    ctx.run("flex_instance_action", action="deallocate", instances=[member])
    run = ctx.run("flex_instance_action", action="restart", instances=[member])
    ctx.expect_error(run)
    error = run["instances"][0]["error"]
    ctx.expect((error.get("code"), error.get("status")) == ("OperationNotAllowed", 409), "error %s" % error)
    ctx.expect(ctx.member_states()[member]["power_state"] == "deallocated", "state changed")


@case(CAT, "perform_maintenance on a named member with nothing pending: 409 from Azure, reported")
def maintenance_not_pending(ctx):
    member = ctx.members()[0]
    run = ctx.run("flex_instance_action", action="perform_maintenance", instances=[member])
    ctx.expect_error(run)
    ctx.expect(run["instances"][0]["error"].get("code") == "OperationNotAllowed", "entry %s" % run["instances"][0])
    ctx.expect_settled()


@case(CAT, "perform_maintenance on 'all': only the member with pending maintenance is acted on")
def maintenance_where_pending(ctx):
    members = ctx.members()
    ctx.set_maintenance(members[2])
    run = ctx.run("flex_instance_action", action="perform_maintenance", instances=["all"], member_source="compute")
    ctx.expect(not run.failed, run.msg)
    ctx.expect([e["name"] for e in run["instances"] if e["changed"]] == [members[2]], "acted on %s" % run.entries())


@case(CAT, "simulate_eviction of a named regular VM: Azure's refusal is reported, nothing evicted")
def eviction_of_regular_vm(ctx):
    member = ctx.members()[0]
    run = ctx.run("flex_instance_action", action="simulate_eviction", instances=[member])
    ctx.expect_error(run)
    ctx.expect(run["instances"][0]["error"].get("status") == 409, "entry %s" % run["instances"][0])
    ctx.expect(ctx.member_states()[member]["power_state"] == "running", "evicted")


@case(CAT, "A Uniform scale set: refused naming azure.azcollection's module, no write", scenario=_uniform)
def uniform_set_refused(ctx):
    for module, extra in (("flex_instance_action", {"action": "restart"}), ("flex_instance_tags", {"set_tags": {"a": "1"}}),
                          ("flex_instance_lock", {"protection": "scale_in"})):
        run = ctx.module(module, resource_group=ctx.rg, scale_set="legacy", instances=["all"], **extra)
        ctx.expect_error(run, code="AzureFlexUniformScaleSet", text="azure_rm_virtualmachinescalesetinstance")
    ctx.expect_no_writes()


@case(CAT, "A scale set or resource group that does not exist: ARM's code and status, named in the message")
def missing_scale_set_and_group(ctx):
    run = ctx.module("flex_instance_action", resource_group=ctx.rg, scale_set="nope", action="restart", instances=["all"])
    ctx.expect_error(run, code="ResourceNotFound", status=404, text="Scale set nope was not found")
    run = ctx.module("flex_list_instances", resource_group="no-such-rg", scale_set="web")
    ctx.expect_error(run, code="ResourceGroupNotFound", status=404, text="Resource group no-such-rg was not found")
    ctx.expect_no_writes()


@case(CAT, "Named VMs that do not exist or are not members: refused before any write", scenario=_standalone)
def foreign_and_missing_members(ctx):
    member = ctx.members()[0]
    run = ctx.run("flex_instance_action", action="deallocate", instances=[member, "ghost"])
    ctx.expect_error(run, code="ResourceNotFound", text="not found in resource group .*: ghost")
    run = ctx.run("flex_instance_tags", instances=[member, "loner"], set_tags={"a": "1"})
    ctx.expect_error(run, code="AzureFlexNotAScaleSetMember", text="loner \\(not in any scale set\\)")
    ctx.expect_no_writes()


@case(CAT, "Delete of a member locked CanNotDelete: refused before any write; with attempt_protected, Azure's 409")
def delete_of_protected_member(ctx):
    members = ctx.members()
    run = ctx.run("flex_instance_lock", instances=[members[0]], protection="scale_in")
    ctx.expect(not run.failed, run.msg)
    ctx.mark()
    run = ctx.run("flex_instance_action", action="delete", instances=[members[0]])
    ctx.expect_error(run, code="AzureFlexProtectedByLock")
    ctx.expect_no_writes()
    run = ctx.run("flex_instance_action", action="delete", instances=[members[0]], attempt_protected=True)
    ctx.expect_error(run)
    ctx.expect(run["instances"][0]["error"].get("code") == "ScopeLocked", "entry %s" % run["instances"][0])
    ctx.expect(members[0] in ctx.members(), "the protected member was deleted")


@case(CAT, "403 AuthorizationFailed on lock writes: each member reports it; the hint about the role is in the message")
def lock_write_forbidden(ctx):
    ctx.fault(method="PUT", path=ctx.rg_path + ".*/providers/Microsoft.Authorization/locks/", status=403, code="AuthorizationFailed",
              message="The client does not have authorization to perform action"
                      " 'Microsoft.Authorization/locks/write'.", count=4)
    run = ctx.run("flex_instance_lock", instances=["all"], protection="scale_in")
    ctx.expect_error(run, text="4 of 4 member")
    codes = {(e["error"].get("code"), e["error"].get("status")) for e in run["instances"]}
    ctx.expect(codes == {("AuthorizationFailed", 403)}, "errors %s" % codes)


@case(CAT, "400 InvalidParameter on a reimage: the member fails with Azure's code, the others are done")
def bad_request_on_one_member(ctx):
    members = ctx.members()
    ctx.fault(method="POST", path=ctx.vm_path(members[0]) + "/reimage$", status=400, code="InvalidParameter",
              message="Reimage is not supported for this VM.")
    run = ctx.run("flex_instance_action", action="reimage", instances=["all"])
    ctx.expect_error(run)
    ctx.expect(run.by_name()[members[0]]["error"].get("code") == "InvalidParameter", "entry %s" % run.by_name()[members[0]])
    ctx.expect(run["counts"]["changed"] == 3, "counts %s" % run["counts"])
    ctx.expect_settled()


@case(CAT, "An extension on a named deallocated member: attempted, Azure's 409 reported for it (F7)")
def extension_on_deallocated_named_member(ctx):
    members = ctx.members()
    ctx.run("flex_instance_action", action="deallocate", instances=[members[0]])
    run = ctx.run("flex_instance_extension", instances=members[:2], **CUSTOM_SCRIPT)
    ctx.expect_error(run, text="1 of 2 member")
    entry = run.by_name()[members[0]]
    ctx.expect((entry["status"], entry["error"].get("code")) == ("failed", "OperationNotAllowed"), "entry %s" % entry)


@case(CAT, "A wrong client secret: refused by the identity provider, reported without ARM calls or the secret")
def wrong_secret(ctx):
    run = ctx.run("flex_list_instances", env={"AZURE_SECRET": "definitely-the-wrong-secret"})
    ctx.expect_error(run, text="AADSTS7000215")
    ctx.expect("definitely-the-wrong-secret" not in run.stdout + run.stderr, "the secret was printed")
    ctx.expect(ctx.requests() == [], "ARM was called")


@case(CAT, "An unknown client id: the identity provider's AADSTS700016 is reported")
def unknown_client(ctx):
    run = ctx.run("flex_list_instances", env={"AZURE_CLIENT_ID": "00000000-0000-0000-0000-0000000000aa"})
    ctx.expect_error(run, text="AADSTS700016")


@case(CAT, "A subscription the principal cannot see: SubscriptionNotFound, with status and request id")
def unknown_subscription(ctx):
    run = ctx.run("flex_list_instances", subscription_id="0f0f0f0f-0000-0000-0000-000000000001")
    ctx.expect_error(run, status=404)
    ctx.expect(run.get("code") in ("SubscriptionNotFound", "ResourceGroupNotFound"), "code %s" % run.get("code"))
