# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Members of a scale set web in rg (web_00..web_11 over three fault domains by default), settings, and a run
planned over them; shared by the tests of _rolling_plan and _rolling_run."""

from __future__ import annotations

import calendar

from ansible_collections.azure_flex.vmss.plugins.module_utils import _rolling_plan, _rolling_run

NOW = calendar.timegm((2024, 6, 1, 12, 0, 0))


def member(name, fault_domain=0, power_state="running", health="healthy", provisioning_state="Succeeded",
           zones=None, tags=None, protection=None):
    result = {"name": name, "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/"
              + name, "resource_group": "rg", "fault_domain": fault_domain, "power_state": power_state,
              "health": health, "provisioning_state": provisioning_state, "zones": zones or [], "tags": tags or {}}
    if protection is not None:
        result["protection"] = protection
    return result


def web(count=12, domains=3):
    """Like the demo set: web_00..web_11 spread round-robin over the fault domains."""
    return [member("web_%02d" % index, fault_domain=index % domains) for index in range(count)]


def settings(**options):
    return _rolling_plan.RollingSettings(**options)


SCALE_SET = {"id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
                   "Microsoft.Compute/virtualMachineScaleSets/web", "name": "web", "resource_group": "rg",
             "zones": [], "automatic_repairs": None}


def new_run(members, **options):
    chosen = settings(**options)
    the_plan = _rolling_plan.plan_batches(members, chosen, "r1", SCALE_SET)
    return the_plan, _rolling_run.new_run(the_plan, chosen, "r1", False, [], SCALE_SET, members, NOW)
