"""Start and stop an emulator process, and drive its control API.

Used by the pytest fixtures, the Makefile and molecule scenarios:

    python -m armemu.launcher run [--scenario FILE] [--state-dir DIR] -- COMMAND ARGS...

starts an emulator, runs COMMAND with the emulator's environment
(AZURE_CLOUD_ENVIRONMENT, credentials, REQUESTS_CA_BUNDLE, ...), stops the
emulator and exits with COMMAND's status.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import requests

import yaml

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class EmulatorError(RuntimeError):
    pass


class Emulator:
    """One emulator process and a small client for /_emulator/."""

    def __init__(self, scenario=None, state_dir=None, python=None, log_path=None, port=None, cert_names=()):
        self.scenario = scenario
        self.port = port
        self.cert_names = list(cert_names)
        self.state_dir = os.path.abspath(state_dir or tempfile.mkdtemp(prefix="armemu-"))
        self.python = python or sys.executable
        self.log_path = log_path or os.path.join(self.state_dir, "emulator.log")
        self.process = None
        self.env = None
        self.session = None

    # -- lifecycle --------------------------------------------------------------

    def start(self, timeout=30.0):
        os.makedirs(self.state_dir, exist_ok=True)
        env_json = os.path.join(self.state_dir, "env.json")
        if os.path.exists(env_json):
            os.remove(env_json)
        cmd = [self.python, "-m", "armemu", "--state-dir", self.state_dir]
        if self.scenario:
            cmd += ["--scenario", os.path.abspath(self.scenario)]
        if self.port is not None:
            cmd += ["--port", str(self.port)]
        for name in self.cert_names:
            cmd += ["--cert-name", name]
        env = dict(os.environ)
        env["PYTHONPATH"] = PACKAGE_PARENT + os.pathsep + env.get("PYTHONPATH", "")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(cmd, cwd=PACKAGE_PARENT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmulatorError("the emulator exited with %s; see %s" % (self.process.returncode, self.log_path))
            if os.path.exists(env_json):
                with open(env_json, encoding="utf-8") as handle:
                    self.env = json.load(handle)
                self.session = requests.Session()
                self.session.verify = self.env["REQUESTS_CA_BUNDLE"]
                self.control("GET", "health")
                return self
            time.sleep(0.05)
        self.stop()
        raise EmulatorError("the emulator did not start within %.0f s; see %s" % (timeout, self.log_path))

    def stop(self, timeout=10.0):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return self.env["AZURE_EMULATOR_URL"]

    # -- control API ------------------------------------------------------------

    def control(self, method, path, body=None, raw=None, params=None):
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        # verify= per request: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the
        # environment override a session's verify, which would reject the private CA.
        response = self.session.request(method, "%s/_emulator/%s" % (self.url, path), data=data, params=params,
                                        timeout=60, verify=self.env["REQUESTS_CA_BUNDLE"])
        if response.status_code >= 400:
            raise EmulatorError("%s /_emulator/%s: %s %s" % (method, path, response.status_code, response.text))
        return response.json() if response.content else None

    def reset(self, scenario=None):
        """Reset to a scenario (dict, YAML text or file path); None = the startup scenario."""
        if scenario is None:
            return self.control("POST", "reset", raw="")
        if isinstance(scenario, dict):
            return self.control("POST", "reset", raw=yaml.safe_dump(scenario))
        if os.path.exists(str(scenario)):
            with open(scenario, encoding="utf-8") as handle:
                return self.control("POST", "reset", raw=handle.read())
        return self.control("POST", "reset", raw=scenario)

    def settings(self, **changes):
        return self.control("PUT", "settings", changes) if changes else self.control("GET", "settings")

    def add_fault(self, **rule):
        return self.control("POST", "faults", rule)

    def clear_faults(self):
        return self.control("DELETE", "faults")

    def requests(self, since=0):
        return self.control("GET", "requests", params={"since": since})["requests"]

    def request_count(self):
        return self.control("GET", "requests", params={"since": 10 ** 9})["total"]

    def events(self, since=0):
        return self.control("GET", "events", params={"since": since})["events"]

    def set_health(self, vm, state, after_restart=False):
        return self.control("PUT", "vms/%s/health" % vm, {"state": state, "after_restart": after_restart})

    def set_maintenance(self, vm, pending=True):
        return self.control("PUT", "vms/%s/maintenance" % vm, {"pending": pending})


def main(argv=None):
    parser = argparse.ArgumentParser(prog="armemu.launcher")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start an emulator, run a command in its environment, stop it")
    run.add_argument("--scenario")
    run.add_argument("--state-dir")
    run.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        parser.error("give a command after --")
    with Emulator(scenario=args.scenario, state_dir=args.state_dir) as emulator:
        env = dict(os.environ, **emulator.env)
        print("armemu.launcher: emulator at %s" % emulator.url, flush=True)
        return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main())
