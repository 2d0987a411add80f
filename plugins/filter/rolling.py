# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters of the rolling roles: thin calls of the rolling engine's run state (plugins/module_utils/_rolling_run.py).

The engine decides in Python (module flex_rolling_batch); the roles only need to pick the state of their
run from the steps' results and to turn it into the summary:

* ``rolling_latest_run``: of the registered results of a run's steps, the latest state of that run;
* ``rolling_summary``: the run's summary (the fact ``rolling_restart_summary`` / ``rolling_reimage_summary``);
* ``rolling_summary_lines``: the summary in words, for the job output;
* ``rolling_failure_message``: why the role fails (the run stopped or members failed), or ''.

Documentation: the YAML files next to this one.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import InvalidInputError
from ansible_collections.azure_flex.vmss.plugins.module_utils import _rolling_run


def _engine(call, *args):
    try:
        return call(*args)
    except (InvalidInputError, KeyError, TypeError) as error:
        raise AnsibleFilterError(str(error)) from error


def rolling_latest_run(results, token):
    """The ``run`` of the most recent step result (registered variables) of the run named by ``token``."""
    if not isinstance(results, (list, tuple)):
        raise AnsibleFilterError("rolling_latest_run expects the list of the steps' registered results")
    return _engine(_rolling_run.latest_run, list(results), token)


def rolling_summary(run, failure=None):
    """The summary of ``run``; ``failure`` (``{task, msg, batch}``) when a task of the role failed."""
    return _engine(lambda checked, failure: _rolling_run.summarize(_rolling_run.check_run(checked), failure), run, failure or None)


def rolling_summary_lines(summary):
    return _engine(_rolling_run.summary_lines, summary)


def rolling_failure_message(summary):
    return _engine(_rolling_run.failure_message, summary)


class FilterModule:
    """The rolling roles' filters."""

    def filters(self):
        return {
            "rolling_latest_run": rolling_latest_run,
            "rolling_summary": rolling_summary,
            "rolling_summary_lines": rolling_summary_lines,
            "rolling_failure_message": rolling_failure_message,
        }
