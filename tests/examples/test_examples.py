# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The documented examples and the example playbooks work, run as users run them, against the emulator.

Run inside `python -m armemu.launcher run` (make examples), which sets the AZURE_* variables of the
emulator's demo scenario (resource group demo-rg, Flexible scale set web with 12 members). Module
examples are taken from the modules' EXAMPLES text itself, with the example names (web-rg) mapped to
the scenario's, so a wrong example fails here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import requests
import yaml

CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
EXAMPLE_NAMES = {"web-rg": "demo-rg"}


def ansible_env():
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(CHECKOUT, "build", "collections"),
                ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="False",
                ANSIBLE_INVENTORY_UNPARSED_WARNING="False", PATH=BIN + os.pathsep + os.environ["PATH"])


def run_playbook(path, *args):
    completed = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-e", "ansible_python_interpreter=" + sys.executable,
                                path] + list(args), env=ansible_env(), capture_output=True, text=True, check=False)
    return completed.returncode, completed.stdout + completed.stderr


def run_tasks(tmp_path, tasks, name="tasks"):
    playbook = [{"name": "Example", "hosts": "localhost", "connection": "local", "gather_facts": False,
                 "tasks": tasks}]
    path = tmp_path / ("%s.yml" % name)
    path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    return run_playbook(str(path))


def module_example(module, name):
    """The EXAMPLES task of ``module`` named ``name``, preceded by the example tasks that register what it reads,
    with the example names mapped to the scenario's."""
    path = os.path.join(CHECKOUT, "plugins", "modules", module + ".py")
    with open(path, encoding="utf-8") as handle:
        source = handle.read()
    examples = re.search(r'^EXAMPLES = r"""\n(.*?)^"""', source, re.S | re.M).group(1)
    for example, scenario in EXAMPLE_NAMES.items():
        examples = examples.replace(example, scenario)
    tasks = yaml.safe_load(examples)
    task = next(task for task in tasks if task["name"] == name)
    reads = set(re.findall(r"\{\{\s*([a-z_]+)\.", json.dumps(task)))
    return [other for other in tasks if other.get("register") in reads] + [task]


def emulator(method, path, body=None):
    response = requests.request(method, os.environ["AZURE_EMULATOR_URL"] + "/_emulator/" + path, json=body,
                                verify=os.environ["REQUESTS_CA_BUNDLE"], timeout=60)
    response.raise_for_status()
    return response.json() if response.content else None


@pytest.fixture()
def members(tmp_path):
    """The names of the demo set's members, as the collection lists them."""
    emulator("POST", "reset")
    output = tmp_path / "members.json"
    rc, log = run_tasks(tmp_path, [
        {"name": "List", "azure_flex.vmss.flex_list_instances": {"resource_group": "demo-rg", "scale_set": "web"},
         "register": "listed"},
        {"name": "Save", "ansible.builtin.copy": {"content": "{{ listed.instances | map(attribute='name') | list | to_json }}",
                                                  "dest": str(output)}},
    ], name="members")
    assert rc == 0, log
    return json.loads(output.read_text())


def test_the_unhealthy_members_example_names_the_unhealthy_member(tmp_path, members):
    sick = members[3]
    emulator("PUT", "vms/%s/health" % sick, {"state": "unhealthy"})
    tasks = module_example("flex_list_instances", "Names of the unhealthy members")

    rc, log = run_tasks(tmp_path, tasks)

    assert rc == 0, log
    shown = re.search(r'"msg": \[(.*?)\]', log, re.S)
    assert shown is not None, log
    assert re.findall(r'"([^"]+)"', shown.group(1)) == [sick], log


def test_list_members_playbook_shows_each_members_protection(members):
    locked = members[0]
    rc, log = run_playbook(os.path.join(CHECKOUT, "playbooks", "protect_members.yml"),
                           "-e", json.dumps({"members": [locked]}))
    assert rc == 0, log
    assert "%s: changed, protection CanNotDelete (azure-flex-protect-from-scale-in)" % locked in log, log

    rc, log = run_playbook(os.path.join(CHECKOUT, "playbooks", "list_members.yml"))

    assert rc == 0, log
    lines = {name: next((line for line in log.splitlines() if '"msg": "%s:' % name in line), None) for name in members}
    assert "protection CanNotDelete" in lines[locked], log
    for name in members[1:]:
        assert lines[name] is not None and "protection none," in lines[name], log


def test_protect_members_playbook_again_reports_skipped_with_the_protection(members):
    locked = members[1]
    for _attempt in range(2):
        rc, log = run_playbook(os.path.join(CHECKOUT, "playbooks", "protect_members.yml"),
                               "-e", json.dumps({"members": [locked], "protection": "scale_set_actions"}))
        assert rc == 0, log

    assert "%s: skipped, protection ReadOnly (azure-flex-protect-from-scale-set-actions)" % locked in log, log


def test_make_demo_prints_no_inventory_warnings():
    """`make demo` (check mode: the plan only) starts without the no-inventory and empty-hosts warnings."""
    completed = subprocess.run(["make", "--no-print-directory", "-C", CHECKOUT, "demo", "DEMO_ARGS=--check"],
                               capture_output=True, text=True, check=False,
                               env={key: value for key, value in os.environ.items()
                                    if not key.startswith(("AZURE_", "ANSIBLE_", "REQUESTS_CA_BUNDLE"))})
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "No inventory was parsed" not in output, output
    assert "provided hosts list is empty" not in output, output
