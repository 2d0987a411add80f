"""Check mode: zero write calls (from the emulator's request log), under faults too, and a prediction that
the real run then matches (same members, same outcome)."""

from __future__ import annotations

from harness import case

CAT = "check mode"
CUSTOM_SCRIPT = dict(name="CustomScript", publisher="Microsoft.Azure.Extensions", type="CustomScript",
                     type_handler_version="2.1", settings={"commandToExecute": "true"})


def _predicted_then_real(ctx, module, **args):
    """Run ``module`` in check mode (no write allowed), then for real; return both runs."""
    ctx.mark()
    predicted = ctx.run(module, check=True, diff=True, **args)
    ctx.expect(not predicted.traceback, predicted.stdout[-1500:])
    ctx.expect_no_writes("%s in check mode" % module)
    ctx.expect(ctx.events() == [], "%s in check mode changed a state: %s" % (module, ctx.events()))
    real = ctx.run(module, diff=True, **args)
    return predicted, real


def _same_decisions(ctx, predicted, real):
    def decisions(run):
        return [(e["name"], e["changed"], e["status"].replace("would_change", "changed")) for e in run["instances"]]
    ctx.expect(decisions(predicted) == decisions(real), "check mode predicted %s, the real run did %s"
               % (decisions(predicted), decisions(real)))


@case(CAT, "flex_instance_action restart/deallocate/start/delete: no write in check mode, then the same decisions")
def action_check_mode(ctx):
    members = ctx.members()
    for action, instances in (("restart", ["all"]), ("deallocate", members[:2]), ("start", ["all"]),
                              ("delete", [members[3]])):
        predicted, real = _predicted_then_real(ctx, "flex_instance_action", action=action, instances=instances)
        ctx.expect(not real.failed, "%s failed: %s" % (action, real.msg))
        _same_decisions(ctx, predicted, real)
        ctx.expect([e["after"] for e in predicted["instances"] if e["changed"]]
                   == [e["after"] for e in real["instances"] if e["changed"]], "%s: predicted after differs" % action)


@case(CAT, "flex_instance_tags set, remove and purge: no write in check mode; the predicted tags are the real ones")
def tags_check_mode(ctx):
    for args in ({"set_tags": {"a": "1", "App": "api"}}, {"remove_tags": ["a"]}, {"set_tags": {"only": "x"}, "purge": True}):
        predicted, real = _predicted_then_real(ctx, "flex_instance_tags", instances=["all"], **args)
        ctx.expect(not real.failed, real.msg)
        _same_decisions(ctx, predicted, real)
        ctx.expect(predicted["diff"] == real["diff"], "diff: predicted %s, real %s" % (predicted["diff"], real["diff"]))


@case(CAT, "flex_instance_lock present and absent: no write in check mode, the predicted lock is the real one")
def lock_check_mode(ctx):
    for state in ("present", "absent"):
        predicted, real = _predicted_then_real(ctx, "flex_instance_lock", instances=["all"], protection="scale_in",
                                               state=state, notes="CHG-1")
        ctx.expect(not real.failed, real.msg)
        ctx.expect([e["lock"] for e in predicted["instances"]] == [e["lock"] for e in real["instances"]],
                   "lock: predicted %s, real %s" % (predicted["instances"], real["instances"]))


@case(CAT, "flex_instance_extension present, update and absent: no write in check mode, the same decisions")
def extension_check_mode(ctx):
    for args in (CUSTOM_SCRIPT, dict(CUSTOM_SCRIPT, settings={"commandToExecute": "false"}),
                 {"name": "CustomScript", "state": "absent"}):
        predicted, real = _predicted_then_real(ctx, "flex_instance_extension", instances=["all"], **args)
        ctx.expect(not real.failed, real.msg)
        _same_decisions(ctx, predicted, real)


@case(CAT, "F7: extension on a deallocated member in 'all': skipped with the same reason in check mode and for real")
def extension_deallocated_implicit_same_decision(ctx):
    members = ctx.members()
    ctx.run("flex_instance_action", action="deallocate", instances=[members[0]])
    predicted, real = _predicted_then_real(ctx, "flex_instance_extension", instances=["all"], **CUSTOM_SCRIPT)
    ctx.expect(not predicted.failed and not real.failed, "predicted %s / real %s" % (predicted.msg, real.msg))
    _same_decisions(ctx, predicted, real)
    ctx.expect(predicted.by_name()[members[0]]["reason"] == real.by_name()[members[0]]["reason"]
               and "not running" in real.by_name()[members[0]]["reason"], "reasons differ")


@case(CAT, "F7: extension on a named deallocated member: check mode predicts the refusal (would_fail) and fails"
           " like the real run")
def extension_deallocated_named_predicted(ctx):
    members = ctx.members()
    ctx.run("flex_instance_action", action="deallocate", instances=[members[0]])
    predicted, real = _predicted_then_real(ctx, "flex_instance_extension", instances=members[:2], **CUSTOM_SCRIPT)
    ctx.expect(predicted.failed and real.failed, "check mode %s, real run %s" % (predicted.failed, real.failed))
    ctx.expect(predicted.by_name()[members[0]]["status"] == "would_fail", "entry %s" % predicted.by_name()[members[0]])
    ctx.expect(predicted.by_name()[members[0]]["error"]["code"] == real.by_name()[members[0]]["error"]["code"]
               == "OperationNotAllowed", "codes differ")
    ctx.expect(predicted.by_name()[members[1]]["status"] == "would_change", "the running member: %s"
               % predicted.by_name()[members[1]])


@case(CAT, "Check mode under throttling: still not one write, and the prediction completes")
def check_mode_under_throttling(ctx):
    ctx.fault(path=ctx.rg_path, status=429, retry_after=1, probability=0.3)
    for module, args in (("flex_instance_action", {"action": "restart"}), ("flex_instance_tags", {"set_tags": {"a": "1"}}),
                         ("flex_instance_lock", {"protection": "scale_set_actions"})):
        ctx.mark()
        run = ctx.run(module, check=True, instances=["all"], **args)
        ctx.expect(not run.failed, "%s: %s" % (module, run.msg))
        ctx.expect_no_writes("%s in check mode" % module)


@case(CAT, "The rolling role in check mode: the plan, and not one write")
def role_check_mode(ctx):
    ctx.mark()
    run = ctx.role(check=True, batch_size=2)
    ctx.expect(run.returncode == 0, "the play failed: %s" % run.output[-2000:])
    ctx.expect("check mode: nothing will be changed" in run.output and "in 2 batch(es)" in run.output,
               "no plan printed: %s" % run.output[-2000:])
    ctx.expect_no_writes("the role in check mode")
    ctx.expect(ctx.events() == [], "states changed: %s" % ctx.events())
