# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of flex_rolling_batch: runs the module, prints its lines as they come, shows it is alive.

A module cannot print while it runs, and ``async`` with ``poll`` would only look every ``poll`` seconds, adding
up to that much to every batch. So the module runs in a thread of this plugin, which meanwhile

* prints each line the module appends to its ``progress_file`` (one batch's outcome, as soon as the batch
  ended), when the module runs on the controller (local connection), where that file can be read; and
* prints, whenever nothing was printed for ``HEARTBEAT_SECONDS``, which step (which batch) is still running
  and for how long, so an AWX job never looks hung.

When the module answers, the lines of its result not printed yet are printed, and its result is the task's.
"""

from __future__ import annotations

import contextvars
import json
import os
import tempfile
import threading
import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

HEARTBEAT_SECONDS = 15
POLL_SECONDS = 0.5
MODULE = "azure_flex.vmss.flex_rolling_batch"
LOCAL_CONNECTIONS = ("local", "ansible.builtin.local", "ansible.legacy.local")


class ActionModule(ActionBase):
    """Run flex_rolling_batch with its progress and a heartbeat printed."""

    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        progress_path = None
        if self._connection.transport in LOCAL_CONNECTIONS and not args.get("progress_file"):
            handle, progress_path = tempfile.mkstemp(prefix="flex-rolling-", suffix=".jsonl")
            os.close(handle)
            args["progress_file"] = progress_path
        try:
            answer = self._run_with_progress(args, task_vars, progress_path)
        finally:
            if progress_path:
                os.unlink(progress_path)
        result.update(answer)
        return result

    def _run_with_progress(self, args, task_vars, progress_path):
        outcome = {}
        context = contextvars.copy_context()
        worker = threading.Thread(target=context.run, args=(self._execute, args, task_vars, outcome),
                                  name="flex-rolling-batch", daemon=True)
        tail = _ProgressTail(progress_path, self._describe(args))
        last_printed = time.monotonic()
        worker.start()
        while worker.is_alive():
            worker.join(POLL_SECONDS)
            if tail.print_new():
                last_printed = time.monotonic()
            elif worker.is_alive() and time.monotonic() - last_printed >= HEARTBEAT_SECONDS:
                display.display("%s: still running after %d s" % (tail.current, time.monotonic() - tail.since))
                last_printed = time.monotonic()
        tail.print_new()
        if "error" in outcome:
            raise outcome["error"]
        answer = outcome["result"]
        for line in (answer.get("lines") or [])[tail.printed:]:
            display.display(str(line))
        return answer

    def _execute(self, args, task_vars, outcome):
        try:
            outcome["result"] = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
        except BaseException as error:  # pylint: disable=broad-exception-caught
            # Re-raised in the plugin's own thread, where Ansible handles it.
            outcome["error"] = error

    @staticmethod
    def _describe(args):
        step = args.get("step") or "batch"
        batch = args.get("batch") if isinstance(args.get("batch"), dict) else {}
        if step in ("batch", "precheck") and batch:
            domain = " (%s)" % batch["domain"] if batch.get("domain") else ""
            what = "%s of %d member(s)" % (args.get("action") or "restart", len(batch.get("members") or [])) \
                if step == "batch" else "check before it"
            return "batch %s%s: %s" % (batch.get("number"), domain, what)
        return "%s step of the rolling %s" % (step, args.get("action") or "restart")


class _ProgressTail:
    """Reads the lines the module appended to its progress file since the last look."""

    def __init__(self, path, current):
        self.path = path
        self.current = current
        self.since = time.monotonic()
        self.printed = 0
        self._offset = 0

    def print_new(self):
        """Print the batch lines that arrived; True when something was printed."""
        if not self.path:
            return False
        with open(self.path, encoding="utf-8") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        complete = chunk[:chunk.rfind("\n") + 1]
        self._offset += len(complete.encode("utf-8"))
        printed = False
        for text in complete.splitlines():
            try:
                record = json.loads(text)
            except ValueError:
                continue
            if "current" in record:
                self.current = str(record["current"])
                self.since = time.monotonic()
            if "line" in record:
                display.display(str(record["line"]))
                self.printed += 1
                printed = True
        return printed
