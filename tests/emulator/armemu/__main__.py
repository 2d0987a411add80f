"""Run the emulator: ``python -m armemu [--port 0] [--scenario FILE] [--state-dir .emulator]``.

It generates a private CA at start, serves HTTPS on 127.0.0.1, and once it
answers writes ``<state-dir>/env.sh`` (and ``env.json``) with the variables a
client needs: AZURE_CLOUD_ENVIRONMENT (the metadata base URL),
AZURE_SUBSCRIPTION_ID, AZURE_TENANT, AZURE_CLIENT_ID, AZURE_SECRET,
REQUESTS_CA_BUNDLE and AZURE_EMULATOR_URL. Ctrl-C (or SIGTERM) stops it
cleanly and removes the env files, so a stale env.sh never points at a dead
server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import signal
import ssl
import sys
import tempfile

import trustme
from aiohttp import web

from . import scenario
from .app import create_app
from .state import State


def build_tls(state_dir, extra_names=()):
    """A private CA (written to ca.pem) and a server certificate for the loopback names plus ``extra_names``
    (for example management.azure.com and login.microsoftonline.com, to serve as public Azure inside a
    private network namespace: see tests/bench/README.md)."""
    ca = trustme.CA(organization_name="azure_flex.vmss ARM emulator")
    server_cert = ca.issue_cert("127.0.0.1", "localhost", "::1", *extra_names)
    ca_path = os.path.join(state_dir, "ca.pem")
    ca.cert_pem.write_to_path(ca_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    return context, ca_path


def client_env(state, url, ca_path):
    client_id, client = next(iter(state.clients.items()))
    return {
        "AZURE_CLOUD_ENVIRONMENT": url,
        "AZURE_SUBSCRIPTION_ID": next(iter(state.subscriptions.values()))["subscriptionId"],
        "AZURE_TENANT": state.tenant_id,
        "AZURE_CLIENT_ID": client_id,
        "AZURE_SECRET": client.get("secret") or "",
        "REQUESTS_CA_BUNDLE": ca_path,
        "AZURE_EMULATOR_URL": url,
    }


def write_env(state_dir, env):
    sh_path = os.path.join(state_dir, "env.sh")
    json_path = os.path.join(state_dir, "env.json")
    for path, text in ((sh_path, "".join("export %s=%s\n" % (k, shlex.quote(v)) for k, v in env.items())),
                       (json_path, json.dumps(env, indent=2) + "\n")):
        fd, tmp = tempfile.mkstemp(dir=state_dir)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    return sh_path


async def serve(args):
    os.makedirs(args.state_dir, exist_ok=True)
    state_dir = os.path.abspath(args.state_dir)
    state = State()
    scenario_path = args.scenario or scenario.default_scenario_path()
    with open(scenario_path, encoding="utf-8") as handle:
        spec = scenario.parse(handle.read())
    state.startup_scenario = spec
    scenario.load(state, spec)
    context, ca_path = build_tls(state_dir, args.cert_names)
    runner = web.AppRunner(create_app(state), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, ssl_context=context, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    url = "https://%s%s" % (args.host, "" if port == 443 else ":%d" % port)
    env_path = write_env(state_dir, client_env(state, url, ca_path))
    with open(os.path.join(state_dir, "pid"), "w") as handle:
        handle.write("%d\n" % os.getpid())
    print("ARM emulator listening on %s (scenario %s)" % (url, scenario_path), flush=True)
    print("  source %s" % env_path, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for name in ("env.sh", "env.json", "pid"):
            try:
                os.remove(os.path.join(state_dir, name))
            except FileNotFoundError:
                pass
        await runner.cleanup()
        print("ARM emulator stopped.", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="armemu", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("EMULATOR_PORT", "0")),
                        help="0 picks a free port (default)")
    parser.add_argument("--scenario", default=os.environ.get("SCENARIO") or None,
                        help="YAML or JSON scenario file (default: scenarios/demo.yml)")
    parser.add_argument("--state-dir", default=".emulator", help="where env.sh, env.json and ca.pem go")
    parser.add_argument("--cert-name", dest="cert_names", action="append",
                        default=[n for n in os.environ.get("ARMEMU_CERT_NAMES", "").split(",") if n],
                        help="another DNS name for the server certificate (repeatable; or ARMEMU_CERT_NAMES=a,b)")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        asyncio.run(serve(args))
    except (scenario.ScenarioError, OSError) as exc:
        print("armemu: %s" % exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
