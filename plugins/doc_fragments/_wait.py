# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This doc fragment is PRIVATE to the azure_flex.vmss collection. It can change or disappear in
# any release; do not use it from other collections.

from __future__ import annotations


class ModuleDocFragment:
    """Waiting, time limit and parallelism options (argument spec: module_utils/_module.py)."""

    # For modules that start long-running operations.
    DOCUMENTATION = r"""
options:
  wait:
    description:
      - Wait for the operations to finish before returning.
      - With V(false), the operations are only started; their outcome is not known when the task returns.
    type: bool
    default: true
  timeout:
    description:
      - Time limit for the whole task, in seconds, including reading the scale set, retries after
        throttling, and waiting.
      - Operations still running when it is reached are reported as timed out; they may still complete in
        Azure.
      - Between 1 and 86400 (one day).
    type: int
    default: 900
  max_parallel:
    description:
      - How many VMs are worked on at the same time (between 1 and 100).
      - "The default acts on up to 100 members at once, so restarting 100 members takes about as long as
        restarting one. Azure's request limits are kept by pacing, not by this number: every request of
        the task waits for its share of the subscription's budget, which Azure reports in the
        C(x-ms-ratelimit-remaining-subscription-*) headers of every response (reads 250 then 25 a second,
        writes 200 then 10 a second). A larger set is therefore worked through at the rate Azure allows,
        with status checks of running operations no more frequent than the read budget allows, instead of
        meeting throttling (HTTP 429) errors."
      - Set a lower value to leave budget to other tools using the same subscription and credentials at
        the same time.
    type: int
    default: 100
  polling_interval:
    description:
      - Seconds between two status checks of a running operation, when Azure does not say how long to wait.
      - Between 1 and 3600.
    type: int
    default: 5
"""

    # For modules that only read.
    READ = r"""
options:
  timeout:
    description:
      - Time limit for the whole task, in seconds, including retries after throttling.
      - Between 1 and 86400 (one day).
    type: int
    default: 900
  max_parallel:
    description:
      - How many requests are made at the same time when one is needed per VM (between 1 and 100).
      - Requests are paced by the subscription's request budget that Azure reports (reads 250 then 25 a
        second), whatever this number.
    type: int
    default: 100
"""
