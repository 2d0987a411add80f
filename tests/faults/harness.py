"""The fault suite's machinery: cases, the world they run in, and what a case can do and check.

A case is a function registered with ``@case(category, title)``. It gets a ``Ctx``: its own resource group
(with a Flexible scale set ``web``) in a world shared with the other cases of its group, the emulator's
control API (faults, settings, request and event logs), and two ways to run the collection's real code:

* ``ctx.module(name, **args)`` runs one module as Ansible runs it on the target (the module file with its
  arguments as JSON, the collection on the Python path, credentials in the environment): the real code,
  through the real SDKs, over TLS to the emulator. Fast enough to run a few hundred cases in minutes.
* ``ctx.playbook(tasks)`` runs ``ansible-playbook`` (roles, module_defaults, ``-vvvv`` output).

Each case states what it expects with ``ctx.expect(...)``; a case holds when every expectation held.
Faults a case adds are scoped to its own resource group by its path regex, so cases of a group run
concurrently; a case that changes something global (settings, faults on Resource Graph or the token
endpoint) is ``exclusive`` and runs alone after a reset.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKOUT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(CHECKOUT, "tests", "emulator"))

from armemu.launcher import Emulator  # noqa: E402

CATEGORIES = (
    "throttling and transient faults",
    "Azure refusals",
    "lag",
    "role under faults",
    "bad input",
    "secrets and TLS",
    "check mode",
    "concurrency",
)

# Fast operations with honest margins: a restart takes 0.4 s, Retry-After 1 s on operations.
FAST_SETTINGS = {"time_scale": 0.1, "retry_after": 1}
CASES = []


class CaseFailed(AssertionError):
    """An expectation of a case did not hold."""


class Case:
    def __init__(self, func, category, title, members=4, exclusive=False, scenario=None, timeout=240, settings=None,
                 group=None):
        if category not in CATEGORIES:
            raise ValueError("unknown category %r" % category)
        if settings and not exclusive:
            raise ValueError("case %s has settings, so it must be exclusive" % func.__name__)
        self.settings = settings
        # Exclusive cases of one group share a world (reset with their settings) and run concurrently.
        self.group = group or func.__name__
        self.func = func
        self.id = func.__name__
        self.category = category
        self.title = title
        self.members = members
        self.exclusive = exclusive
        self.scenario = scenario  # callable(group dict) -> None, to add resources to the case's group
        self.timeout = timeout


def case(category, title, members=4, exclusive=False, scenario=None, timeout=240, settings=None, group=None):
    """Register a case: ``category`` (one of CATEGORIES), what it shows, how many members its set has.

    ``scenario(group)`` adds resources to the case's resource group; ``settings`` (emulator settings, for the
    whole world) make the case exclusive: it runs alone, after a reset with those settings, or with the other
    cases of its ``group`` (same settings), concurrently.
    """
    def register(func):
        if any(existing.id == func.__name__ for existing in CASES):
            raise ValueError("two cases are called %s" % func.__name__)
        CASES.append(Case(func, category, title, members=members, exclusive=exclusive or bool(settings),
                          scenario=scenario, timeout=timeout, settings=settings, group=group))
        return func
    return register


class Outcome:
    def __init__(self, case, held, seconds, detail="", checks=0):
        self.case = case
        self.held = held
        self.seconds = seconds
        self.detail = detail
        self.checks = checks


# -- results of running the collection ----------------------------------------------------------------

class ModuleRun:
    """One module run: exit status, the result it returned, its raw output, and how long it took."""

    def __init__(self, name, args, returncode, stdout, stderr, seconds):
        self.name = name
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds
        self.result = _last_json_object(stdout)

    @property
    def failed(self):
        return bool(self.result.get("failed")) or self.returncode != 0

    @property
    def traceback(self):
        return "Traceback (most recent call last)" in self.stdout + self.stderr or "_unparsed" in self.result

    def __getitem__(self, key):
        return self.result[key]

    def get(self, key, default=None):
        return self.result.get(key, default)

    @property
    def warnings(self):
        """The task's warnings as text (ansible-core 2.19 returns them as objects with a message)."""
        texts = []
        for warning in self.result.get("warnings") or []:
            texts.append(str(warning.get("msg") or warning.get("message") or warning) if isinstance(warning, dict)
                         else str(warning))
        return texts

    @property
    def msg(self):
        return str(self.result.get("msg") or "")

    def entries(self, status=None):
        return [entry for entry in self.result.get("instances") or [] if status is None or entry.get("status") == status]

    def by_name(self):
        return {entry["name"]: entry for entry in self.result.get("instances") or []}

    def __repr__(self):
        return "ModuleRun(%s rc=%s msg=%r)" % (self.name, self.returncode, self.msg[:300])


class PlaybookRun:
    def __init__(self, returncode, stdout, stderr, seconds, facts):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds
        self.facts = facts  # what the playbook saved with the save_facts helper task

    @property
    def output(self):
        return self.stdout + self.stderr


def _last_json_object(text):
    for line in reversed([line for line in text.splitlines() if line.strip()]):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                break
    return {"_unparsed": text[-3000:]}


# -- the world -----------------------------------------------------------------------------------------

class World:
    """One emulator and the interpreter and collection the cases run."""

    def __init__(self, python, collection_root, state_dir):
        self.python = python
        self.collection_root = collection_root
        self.emulator = Emulator(state_dir=state_dir, python=python)
        self.env = None
        self._lock = threading.Lock()

    def start(self):
        self.emulator.start()
        self.env = dict(self.emulator.env)
        return self

    def stop(self):
        self.emulator.stop()

    @property
    def subscription_id(self):
        return self.env["AZURE_SUBSCRIPTION_ID"]

    def base_env(self):
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("AZURE_", "ANSIBLE_")) and key not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
        env.update(self.env)
        env["PYTHONPATH"] = self.collection_root
        env["HOME"] = os.environ.get("HOME", "/tmp")
        return env

    def sdk(self):
        """SDK clients of the runner's own interpreter, to shape the world (scale out, lock) as another user would."""
        return Sdk(self.env)

    def reset(self, resource_groups, settings=None):
        scenario = {"settings": dict(FAST_SETTINGS, **(settings or {})), "resource_groups": resource_groups}
        self.emulator.clear_faults()
        self.emulator.reset(scenario)


class Sdk:
    """Management clients against the emulator, built the way a sovereign-cloud user builds them."""

    def __init__(self, env):
        from azure.identity import ClientSecretCredential

        self.env = env
        self.subscription_id = env["AZURE_SUBSCRIPTION_ID"]
        self.credential = ClientSecretCredential(
            env["AZURE_TENANT"], env["AZURE_CLIENT_ID"], env["AZURE_SECRET"], authority=env["AZURE_EMULATOR_URL"],
            disable_instance_discovery=True, connection_verify=env["REQUESTS_CA_BUNDLE"])
        self.kwargs = dict(base_url=env["AZURE_EMULATOR_URL"], credential_scopes=["https://management.emulator.invalid//.default"],
                           polling_interval=0.2, connection_verify=env["REQUESTS_CA_BUNDLE"])

    def compute(self):
        from azure.mgmt.compute import ComputeManagementClient
        return ComputeManagementClient(self.credential, self.subscription_id, **self.kwargs)

    def locks(self):
        from azure.mgmt.resource.locks import ManagementLockClient
        return ManagementLockClient(self.credential, self.subscription_id, **self.kwargs)

    def vm_id(self, resource_group, name):
        return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachines/%s" % (
            self.subscription_id, resource_group, name)


def scale_set_group(name, members, fault_domains=2, health=True, extra=None):
    """A resource group holding a Flexible scale set ``web`` of ``members`` VMs (healthy) and a vnet."""
    group = {
        "name": name,
        "location": "eastus",
        "virtual_networks": [{"name": "vnet", "subnets": [{"name": "default", "address_prefix": "10.0.0.0/20"}]}],
        "scale_sets": [{"name": "web", "orchestration_mode": "Flexible", "platform_fault_domain_count": fault_domains,
                        "instances": members, "subnet": "vnet/default", "application_health": health,
                        "tags": {"app": "web"}}],
    }
    if extra:
        extra(group)
    return group


# -- what a case can do --------------------------------------------------------------------------------

class Ctx:
    """What one case sees: its resource group, the emulator, and the collection."""

    def __init__(self, world, case, group):
        self.world = world
        self.case = case
        self.rg = group
        self.emulator = world.emulator
        self.checks = 0
        self.notes = []
        self._request_mark = self.emulator.request_count()
        self._event_mark = len(self.emulator.events())
        self._tmp = tempfile.mkdtemp(prefix="fault-%s-" % re.sub(r"[^A-Za-z0-9_]", "_", case.id))
        self._sdk = None

    # paths and names

    @property
    def subscription_id(self):
        return self.world.subscription_id

    @property
    def rg_path(self):
        """A regex matching every ARM path of this case's resource group."""
        return "/resourceGroups/%s/" % re.escape(self.rg)

    def of_set(self, **args):
        """Module arguments addressing this case's scale set, plus ``args``."""
        return dict(resource_group=self.rg, scale_set="web", **args)

    def run(self, module_name, /, check=False, diff=False, env=None, **args):
        """``module(module_name, ...)`` on this case's scale set."""
        return self.module(module_name, check=check, diff=diff, env=env, **self.of_set(**args))

    def vm_path(self, name=r"[^/]+"):
        return self.rg_path + "providers/Microsoft.Compute/virtualMachines/%s" % name

    def members(self):
        """The member names of this case's scale set, from the compute API (through the emulator's log-free view)."""
        run = self.module("flex_list_instances", resource_group=self.rg, scale_set="web", member_source="compute",
                          include_network=False)
        self.expect(not run.failed, "listing the members failed: %s" % run.msg)
        return [entry["name"] for entry in run["instances"]]

    def member_states(self):
        run = self.module("flex_list_instances", resource_group=self.rg, scale_set="web", member_source="compute",
                          include_network=False)
        self.expect(not run.failed, "listing the members failed: %s" % run.msg)
        return {entry["name"]: entry for entry in run["instances"]}

    # the emulator

    def fault(self, **rule):
        return self.emulator.add_fault(**rule)

    @property
    def sdk(self):
        if self._sdk is None:
            self._sdk = self.world.sdk()
        return self._sdk

    def scale_to(self, capacity):
        """Scale the case's set to ``capacity`` members through the compute API (as another tool would)."""
        self.sdk.compute().virtual_machine_scale_sets.begin_update(self.rg, "web", {"sku": {"capacity": capacity}}).result()

    def lock(self, member, level="ReadOnly", name="fault-lock"):
        self.sdk.locks().management_locks.create_or_update_by_scope(
            self.sdk.vm_id(self.rg, member), name, {"properties": {"level": level}})

    def set_health(self, member, state, after_restart=False):
        # Every case's set is called web, so member names repeat across resource groups: name the group.
        self.emulator.control("PUT", "vms/%s/health" % member, {"state": state, "after_restart": after_restart},
                              params={"resource_group": self.rg})

    def set_maintenance(self, member, pending=True):
        self.emulator.control("PUT", "vms/%s/maintenance" % member, {"pending": pending},
                              params={"resource_group": self.rg})

    def role(self, action="restart", check=False, extra_tasks=(), verbosity=0, **variables):
        """Run the rolling role through its public interface: role variables in, the summary fact out."""
        prefix = "rolling_%s_" % action
        role_vars = {prefix + "resource_group": self.rg, prefix + "scale_set": "web",
                     prefix + "health_poll_seconds": 1, prefix + "health_timeout": 30}
        role_vars.update({prefix + key: value for key, value in variables.items()})
        tasks = [{"name": "The role", "block": [{"name": "Run the role", "ansible.builtin.include_role": {
                      "name": "azure_flex.vmss.rolling_%s" % action}, "vars": role_vars}],
                  "always": [{"save_facts": [prefix + "summary"]}]}]
        run = self.playbook(list(extra_tasks) + tasks, check=check, verbosity=verbosity)
        run.summary = run.facts.get(prefix + "summary") or {}
        return run

    def settings(self, **changes):
        if not self.case.exclusive:
            raise RuntimeError("case %s changes settings but is not exclusive" % self.case.id)
        return self.emulator.settings(**changes)

    def mark(self):
        """Start counting requests and events from now (returns the marks)."""
        self._request_mark = self.emulator.request_count()
        self._event_mark = len(self.emulator.events())

    def requests(self, mine=True):
        entries = self.emulator.requests(self._request_mark)
        if mine:
            entries = [entry for entry in entries if ("/resourcegroups/%s/" % self.rg.lower()) in entry["path"].lower()]
        return entries

    def writes(self, mine=True):
        """ARM write calls (anything but GET/HEAD), identity calls excluded, answered or refused."""
        return [entry for entry in self.requests(mine) if entry["method"] not in ("GET", "HEAD")
                and entry["path"].lower().startswith(("/subscriptions", "/providers"))
                and "/providers/microsoft.resourcegraph/" not in entry["path"].lower()]

    def accepted_writes(self, mine=True):
        return [entry for entry in self.writes(mine) if entry["status"] < 400]

    def events(self):
        """VM state transitions of this case's resource group since the mark."""
        prefix = "/subscriptions/%s/resourcegroups/%s/" % (self.subscription_id.lower(), self.rg.lower())
        return [entry for entry in self.emulator.events(self._event_mark) if entry["id"].lower().startswith(prefix)]

    def transitional(self):
        """Members whose power or provisioning state is still transitional (read from the compute API)."""
        return sorted(name for name, entry in self.member_states().items()
                      if entry["power_state"] in ("starting", "stopping", "deallocating")
                      or entry["provisioning_state"] not in ("Succeeded", None))

    # the collection

    def module(self, name, /, check=False, diff=False, env=None, process_timeout=180, unset=(), **args):
        """Run module ``name`` with ``args`` (credentials from the environment); returns a ``ModuleRun``."""
        payload = dict(args)
        payload["_ansible_check_mode"] = bool(check)
        payload["_ansible_diff"] = bool(diff)
        path = os.path.join(self._tmp, "args-%d.json" % (time.monotonic_ns()))
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": payload}, handle)
        process_env = self.world.base_env()
        for key in unset:
            process_env.pop(key, None)
        process_env.update(env or {})
        started = time.monotonic()
        completed = subprocess.run(
            [self.world.python, "-m", "ansible_collections.azure_flex.vmss.plugins.modules.%s" % name, path],
            capture_output=True, text=True, env=process_env, timeout=process_timeout, cwd=self._tmp)
        return ModuleRun(name, args, completed.returncode, completed.stdout, completed.stderr,
                         time.monotonic() - started)

    def start_module(self, name, /, check=False, env=None, **args):
        """Start a module run in a thread; ``.join()`` on the returned object gives the ``ModuleRun``."""
        holder = _Background(lambda: self.module(name, check=check, env=env, **args))
        holder.start()
        return holder

    def playbook(self, tasks, extra_vars=None, verbosity=0, env=None, timeout=600, check=False, play_vars=None,
                 auth="options"):
        """Run a play on localhost with ``tasks`` (a list of task dicts).

        ``auth``: ``options`` passes the credentials as module_defaults (task options), ``environment`` as the
        AZURE_* variables an AWX credential injects, ``none`` not at all (``env`` then says).

        A task ``{"save_facts": [names]}`` is turned into a task that saves those variables, read back as
        ``PlaybookRun.facts``.
        """
        facts_path = os.path.join(self._tmp, "facts-%d.json" % time.monotonic_ns())
        play = {
            "name": "fault case %s" % self.case.id,
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "module_defaults": {"group/azure_flex.vmss.all": {
                "cloud_environment": self.world.env["AZURE_CLOUD_ENVIRONMENT"],
                "subscription_id": self.world.env["AZURE_SUBSCRIPTION_ID"],
                "tenant": self.world.env["AZURE_TENANT"],
                "client_id": self.world.env["AZURE_CLIENT_ID"],
                "secret": self.world.env["AZURE_SECRET"],
                "ca_bundle": self.world.env["REQUESTS_CA_BUNDLE"],
            }} if auth == "options" else {},
            "vars": dict(play_vars or {}),
            "tasks": [_expand_save(task, facts_path) for task in tasks],
        }
        path = os.path.join(self._tmp, "play-%d.yml" % time.monotonic_ns())
        with open(path, "w", encoding="utf-8") as handle:
            json.dump([play], handle)
        command = [os.path.join(os.path.dirname(self.world.python), "ansible-playbook"), "-i", "localhost,", path,
                   "-e", "ansible_python_interpreter=%s" % self.world.python]
        if extra_vars:
            command += ["-e", json.dumps(extra_vars)]
        if verbosity:
            command.append("-" + "v" * verbosity)
        if check:
            command.append("--check")
        process_env = {key: value for key, value in self.world.base_env().items()
                       if auth == "environment" or (not key.startswith("AZURE_") and key != "REQUESTS_CA_BUNDLE")}
        process_env.update({"ANSIBLE_COLLECTIONS_PATH": self.world.collection_root, "ANSIBLE_FORCE_COLOR": "0",
                            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_RETRY_FILES_ENABLED": "0",
                            "ANSIBLE_LOCAL_TEMP": os.path.join(self._tmp, "ansible-local"),
                            "ANSIBLE_REMOTE_TEMP": os.path.join(self._tmp, "ansible-remote")})
        process_env.pop("PYTHONPATH", None)
        process_env.update(env or {})
        started = time.monotonic()
        completed = subprocess.run(command, capture_output=True, text=True, env=process_env, timeout=timeout,
                                   cwd=self._tmp)
        facts = {}
        if os.path.exists(facts_path):
            with open(facts_path, encoding="utf-8") as handle:
                facts = json.load(handle)
        return PlaybookRun(completed.returncode, completed.stdout, completed.stderr, time.monotonic() - started, facts)

    # expectations

    def expect(self, condition, message):
        self.checks += 1
        if not condition:
            raise CaseFailed(message)

    def expect_no_writes(self, what="the task"):
        writes = self.writes()
        self.expect(not writes, "%s made write calls: %s" % (what, ["%s %s %s" % (e["method"], e["path"], e["status"])
                                                                     for e in writes][:5]))

    def expect_settled(self):
        stuck = self.transitional()
        self.expect(not stuck, "members left in a transitional state: %s" % stuck)

    def expect_error(self, run, code=None, status=None, text=None, request_id=True):
        """A failed task that reports its cause: no traceback, the ARM code (and status/request id when HTTP)."""
        self.expect(run.failed, "%s should have failed: %r" % (run.name, run.result))
        self.expect(not run.traceback, "%s printed a traceback: %s" % (run.name, (run.stdout + run.stderr)[-1500:]))
        if code is not None:
            self.expect(run.get("code") == code, "error code %r, expected %r (msg %r)" % (run.get("code"), code, run.msg))
        if status is not None:
            self.expect(run.get("status") == status, "status %r, expected %r" % (run.get("status"), status))
            if request_id:
                self.expect(bool(run.get("request_id")), "no request_id in %r" % run.result)
        if text is not None:
            self.expect(re.search(text, run.msg, re.IGNORECASE | re.DOTALL) is not None,
                        "message %r does not match %r" % (run.msg, text))

    def note(self, text):
        self.notes.append(text)


class _Background(threading.Thread):
    def __init__(self, func):
        super().__init__(daemon=True)
        self._func = func
        self._result = None
        self._error = None

    def run(self):
        try:
            self._result = self._func()
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self._error = exc

    def join(self, timeout=None):
        super().join(timeout)
        if self._error is not None:
            raise self._error
        return self._result


def _expand_save(task, facts_path):
    if "save_facts" not in task:
        nested = {key: [_expand_save(inner, facts_path) for inner in task[key]]
                  for key in ("block", "rescue", "always") if key in task}
        return dict(task, **nested)
    names = task["save_facts"]
    content = "{{ {%s} | to_json }}" % ", ".join("'%s': (%s | default(none))" % (name, name) for name in names)
    return {"name": "Save facts for the fault suite", "ansible.builtin.copy": {"content": content, "dest": facts_path,
                                                                              "mode": "0600"},
            "check_mode": False}


# -- running the cases -----------------------------------------------------------------------------------

def run_case(world, case, group):
    ctx = Ctx(world, case, group)
    started = time.monotonic()
    try:
        case.func(ctx)
    except CaseFailed as exc:
        return Outcome(case, False, time.monotonic() - started, str(exc), ctx.checks)
    except Exception:  # noqa: BLE001 - a broken case is reported as not held, with its traceback
        return Outcome(case, False, time.monotonic() - started, traceback.format_exc(limit=6), ctx.checks)
    return Outcome(case, True, time.monotonic() - started, "; ".join(ctx.notes), ctx.checks)
