# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The action plugin of flex_rolling_batch: batch lines as they come, a heartbeat while nothing comes."""

from __future__ import annotations

import json
import os
import time
from unittest import mock

from ansible_collections.azure_flex.vmss.plugins.action import flex_rolling_batch as plugin


def make_action(args, module):
    """The plugin with its module replaced by ``module(module_args)``, over a local connection."""
    task = mock.MagicMock()
    task.args = args
    task.async_val = 0
    task.check_mode = False
    connection = mock.MagicMock()
    connection.transport = "local"
    action = plugin.ActionModule(task, connection, mock.MagicMock(), mock.MagicMock(), mock.MagicMock(),
                                 mock.MagicMock())
    action._execute_module = lambda module_name, module_args, task_vars: module(module_args)  # pylint: disable=protected-access
    return action


def run_with_display(action, monkeypatch):
    shown = []
    monkeypatch.setattr(plugin.display, "display", lambda text, **kwargs: shown.append((time.monotonic(), text)))
    monkeypatch.setattr(plugin.ActionBase, "run", lambda self, tmp=None, task_vars=None: {})
    return action.run(task_vars={}), shown


def test_batch_lines_are_printed_as_they_come_and_a_heartbeat_in_the_silence(monkeypatch):
    monkeypatch.setattr(plugin, "HEARTBEAT_SECONDS", 0.3)
    monkeypatch.setattr(plugin, "POLL_SECONDS", 0.02)
    written = {}

    def module(args):
        with open(args["progress_file"], "a", encoding="utf-8") as progress:
            progress.write(json.dumps({"current": "batch 1/2: restart of 2 member(s)"}) + "\n")
            progress.flush()
            time.sleep(0.7)  # a long batch: heartbeats
            progress.write(json.dumps({"line": "batch 1/2: done"}) + "\n")
            progress.write(json.dumps({"current": "batch 2/2: restart of 2 member(s)"}) + "\n")
            progress.flush()
            written["first"] = time.monotonic()
            time.sleep(0.2)
            progress.write(json.dumps({"line": "batch 2/2: done"}) + "\n")
        written["path"] = args["progress_file"]
        return {"changed": True, "lines": ["batch 1/2: done", "batch 2/2: done"]}

    started = time.monotonic()
    result, shown = run_with_display(make_action({"step": "batches", "action": "restart"}, module), monkeypatch)
    texts = [text for _at, text in shown]

    assert result["lines"] == ["batch 1/2: done", "batch 2/2: done"]
    assert texts.count("batch 1/2: done") == 1 and texts.count("batch 2/2: done") == 1  # not printed twice
    heartbeats = [(at, text) for at, text in shown if "still running" in text]
    assert heartbeats and all(text.startswith("batch 1/2: restart of 2 member(s): still running after")
                              for _at, text in heartbeats)
    gaps = [later - earlier for (earlier, _a), (later, _b) in zip([(started, "")] + shown, shown)]
    assert max(gaps) < 0.3 + 0.15  # something every HEARTBEAT_SECONDS, and the line as soon as it came
    first_line_at = [at for at, text in shown if text == "batch 1/2: done"][0]
    assert first_line_at - written["first"] < 0.1
    assert not os.path.exists(written["path"])  # the progress file is removed


def test_the_lines_of_a_module_running_elsewhere_come_at_the_end(monkeypatch):
    monkeypatch.setattr(plugin, "HEARTBEAT_SECONDS", 10)

    def module(args):
        assert "progress_file" not in args
        return {"lines": ["run r1: restart 2 of 2 member(s)", "batch 1/1: a, b"]}

    action = make_action({"step": "plan"}, module)
    action._connection.transport = "ssh"  # pylint: disable=protected-access
    result, shown = run_with_display(action, monkeypatch)
    assert [text for _at, text in shown] == result["lines"]


def test_a_module_error_is_raised_in_the_plugin(monkeypatch):
    def module(args):
        raise RuntimeError("boom")

    action = make_action({"step": "plan"}, module)
    monkeypatch.setattr(plugin.ActionBase, "run", lambda self, tmp=None, task_vars=None: {})
    try:
        action.run(task_vars={})
    except RuntimeError as error:
        assert str(error) == "boom"
    else:
        raise AssertionError("the module's error was swallowed")
