"""Secrets and TLS: no secret, token or value of a credentials file ever appears in output (at -vvvv too),
and TLS verification cannot be turned off."""

from __future__ import annotations

import os
import tempfile

from harness import case

CAT = "secrets and TLS"
FILE_SECRET = "F1le-S3cr3t-7a9c2e41"


def _home_with_credentials(ctx, text):
    home = tempfile.mkdtemp(prefix="fault-home-", dir=ctx._tmp)
    os.makedirs(os.path.join(home, ".azure"))
    with open(os.path.join(home, ".azure", "credentials"), "w", encoding="utf-8") as handle:
        handle.write(text)
    return home


def _profile(ctx, secret_line):
    env = ctx.world.env
    return ("[default]\nsubscription_id = %s\nclient_id = %s\ntenant = %s\ncloud_environment = %s\n%s\n"
            % (env["AZURE_SUBSCRIPTION_ID"], env["AZURE_CLIENT_ID"], env["AZURE_TENANT"],
               env["AZURE_CLOUD_ENVIRONMENT"], secret_line))


def _list_task(ctx, **extra):
    return {"name": "List the members", "azure_flex.vmss.flex_list_instances": dict(ctx.of_set(include_network=False),
                                                                                     **extra),
            "register": "listed", "ignore_errors": True}


def _file_case(ctx, text, expect_ok):
    home = _home_with_credentials(ctx, text)
    run = ctx.playbook([_list_task(ctx, auth_source="credential_file"), {"save_facts": ["listed"]}], verbosity=4,
                       auth="none", env={"HOME": home, "REQUESTS_CA_BUNDLE": ctx.world.env["REQUESTS_CA_BUNDLE"]})
    listed = run.facts.get("listed") or {}
    ctx.expect(bool(listed), "the play did not run: %s" % run.output[-1500:])
    ctx.expect(bool(listed.get("failed")) != expect_ok, "outcome %s" % {k: listed.get(k) for k in ("failed", "msg")})
    real_secret = ctx.world.env["AZURE_SECRET"]
    for secret in (FILE_SECRET, real_secret):
        ctx.expect(secret not in run.output, "a secret from the credentials file is in the -vvvv output")
    return listed


@case(CAT, "F2: a credentials file whose secret line lacks '=': the error names the line number, never the secret"
           " (-vvvv)")
def credential_file_line_without_equals(ctx):
    listed = _file_case(ctx, _profile(ctx, "secret %s" % FILE_SECRET), expect_ok=False)
    ctx.expect("line 6 is not 'key = value'" in listed.get("msg", ""), "msg %r" % listed.get("msg"))


@case(CAT, "F2: the secret before any section header, or a key repeated: no value in the output (-vvvv)")
def credential_file_other_shapes(ctx):
    _file_case(ctx, "secret = %s\n" % FILE_SECRET + _profile(ctx, "secret = x"), expect_ok=False)
    _file_case(ctx, _profile(ctx, "secret = %s\nsecret = %s" % (FILE_SECRET, FILE_SECRET)), expect_ok=False)
    _file_case(ctx, _profile(ctx, "secret = x").replace("subscription_id = ", "subscription_id = %s" % FILE_SECRET),
               expect_ok=False)


@case(CAT, "A valid credentials file works; its secret appears nowhere in the -vvvv output")
def credential_file_valid(ctx):
    listed = _file_case(ctx, _profile(ctx, "secret = %s" % ctx.world.env["AZURE_SECRET"]), expect_ok=True)
    ctx.expect(listed.get("counts", {}).get("total") == 4, "listed %s" % listed.get("counts"))


@case(CAT, "The secret as a task option (module_defaults): masked at -vvvv, as are protected_settings")
def secret_option_masked(ctx):
    protected = "Pr0tected-Setting-5e6f"
    run = ctx.playbook([_list_task(ctx), {
        "name": "An extension with a secret in protected_settings", "azure_flex.vmss.flex_instance_extension": dict(
            ctx.of_set(instances=["all"], name="CustomScript", publisher="Microsoft.Azure.Extensions",
                       type="CustomScript", type_handler_version="2.1", protected_settings={"token": protected}))}],
        verbosity=4)
    ctx.expect(run.returncode == 0, "the play failed: %s" % run.output[-1500:])
    ctx.expect(ctx.world.env["AZURE_SECRET"] not in run.output, "the client secret is in the -vvvv output")
    ctx.expect(protected not in run.output, "a protected setting is in the -vvvv output")
    ctx.expect("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in run.output or "********" in run.output, "nothing was masked?")


@case(CAT, "The secret in the environment (an AWX credential): never in the output, -vvvv and ANSIBLE_DEBUG=1")
def secret_from_environment(ctx):
    run = ctx.playbook([_list_task(ctx)], verbosity=4, auth="environment", env={"ANSIBLE_DEBUG": "1"})
    ctx.expect(run.returncode == 0, "the play failed: %s" % run.output[-1500:])
    ctx.expect(ctx.world.env["AZURE_SECRET"] not in run.output, "the secret from the environment is in the output")


@case(CAT, "No bearer token (a JWT) appears in the output at -vvvv")
def no_token_in_output(ctx):
    run = ctx.playbook([_list_task(ctx, member_source="compute")], verbosity=4)
    ctx.expect(run.returncode == 0, "the play failed: %s" % run.output[-1500:])
    ctx.expect("eyJ" not in run.output and "Bearer " not in run.output, "a token is in the -vvvv output")


def _other_ca(ctx):
    import trustme

    path = os.path.join(ctx._tmp, "other-ca.pem")
    trustme.CA().cert_pem.write_to_path(path)
    return path


@case(CAT, "A CA bundle that does not trust the server: TLS fails, nothing reaches ARM, the error says why")
def wrong_ca(ctx):
    ctx.mark()
    run = ctx.run("flex_list_instances", ca_bundle=_other_ca(ctx), env={"REQUESTS_CA_BUNDLE": _other_ca(ctx)})
    ctx.expect_error(run, text="certificate|SSL|verify")
    ctx.expect(ctx.requests() == [], "requests reached ARM: %s" % ctx.requests())


@case(CAT, "No way to turn TLS verification off: environment switches other tools honour change nothing")
def tls_cannot_be_turned_off(ctx):
    run = ctx.run("flex_list_instances", env={"REQUESTS_CA_BUNDLE": _other_ca(ctx), "CURL_CA_BUNDLE": "",
                                              "PYTHONHTTPSVERIFY": "0", "AZURE_CLI_DISABLE_CONNECTION_VERIFICATION": "1"})
    ctx.expect_error(run, text="certificate|SSL|verify")
    run = ctx.run("flex_list_instances", validate_certs=False)
    ctx.expect_error(run, text="Unsupported parameters")


@case(CAT, "Without any CA for the emulator (system CAs only): refused, never an unverified connection")
def system_cas_only(ctx):
    run = ctx.module("flex_list_instances", unset=("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"), **ctx.of_set())
    ctx.expect_error(run, text="certificate|SSL|verify")


@case(CAT, "F8: a 503 storm on the token endpoint: its status and a code that says so, not AuthenticationFailed",
      exclusive=True)
def token_endpoint_storm(ctx):
    ctx.fault(path="/oauth2/v2.0/token$", status=503, probability=1, message="The service is busy.")
    run = ctx.run("flex_list_instances", timeout=60)
    ctx.expect_error(run, code="AzureFlexTokenEndpointUnavailable", status=503, request_id=False,
                     text="token endpoint answered HTTP 503")
    ctx.expect(run.seconds < 30, "took %.1f s" % run.seconds)
    ctx.expect(ctx.requests() == [], "ARM was called without a token")


@case(CAT, "The token endpoint throttling briefly (429 + Retry-After): azure-identity retries, the task succeeds",
      exclusive=True)
def token_endpoint_throttled_briefly(ctx):
    ctx.fault(path="/oauth2/v2.0/token$", status=429, retry_after=1, count=1)
    run = ctx.run("flex_list_instances", include_network=False)
    ctx.expect(not run.failed and run["counts"]["total"] == 4, run.msg or run.get("counts"))
