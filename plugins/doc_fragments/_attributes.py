# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This doc fragment is PRIVATE to the azure_flex.vmss collection. It can change or disappear in
# any release; do not use it from other collections.

from __future__ import annotations


class ModuleDocFragment:
    """Descriptions of the attributes modules declare; each module sets ``support`` (and ``details``)."""

    # For every module: the behaviour attributes.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: In check mode, reports what would change (and returns the predicted result) without changing anything.
  diff_mode:
    description: In diff mode, returns the state before and after the change (predicted, in check mode).
  idempotent:
    description:
      - A second run with the same arguments, outside check mode and with nothing else changing the
        resources in between, reports no change.
"""

    # For every module listed in meta/runtime.yml under action_groups.all.
    ACTIONGROUP_ALL = r"""
options: {}
attributes:
  action_group:
    description: Belongs to the action group C(azure_flex.vmss.all), so C(module_defaults) for C(group/azure_flex.vmss.all) apply to it.
    support: full
    membership:
      - azure_flex.vmss.all
"""

    # For modules that only read.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: This module only reads, so it runs normally in check mode.
  diff_mode:
    support: N/A
    details: This module changes nothing, so there is no diff.
  idempotent:
    support: full
"""
