# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A small scripted Azure Resource Manager for whole-run unit tests of the modules.

``ScriptedArm`` answers the requests of the real SDK clients (through ``azure_fakes.scripted_transport``) as
Azure does, from a Flexible scale set and its members (``Member``): the scale set, Resource Graph, VM reads and
listings with instance views, VM actions as long-running operations, the scale set's VM view (protection policy,
latest model), extensions, locks, tags, NICs and a load balancer. Bodies, status codes and LRO headers follow
tests/emulator/armemu (Compute's 202 + Azure-AsyncOperation for actions, 201/200 + Azure-AsyncOperation for
PUT/PATCH). Operations finish at once: their status URL answers ``Succeeded`` at the first poll, with a
``Retry-After`` of 0 so no test waits. A request no route knows gets 404 ``NoRoute``, so a test sees it.

``refuse(method, path_pattern, status, code)`` makes matching requests fail as Azure refuses them.
"""

from __future__ import annotations

import copy
import itertools
import re
import threading
from urllib.parse import parse_qs, urlsplit

from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import (
    BASE_URL,
    SUBSCRIPTION_ID,
    arm_error,
    reply,
)

LOCATION = "westeurope"
LOCK_PROVIDER = "/providers/Microsoft.Authorization/locks/"
HEALTH_EXTENSION = {"name": "HealthExtension", "properties": {
    "publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux", "typeHandlerVersion": "1.0",
    "settings": {"protocol": "tcp", "port": 22}}}

# The power state each VM action leaves a member in (actions missing here leave it as it was).
POWER_STATE_AFTER = {"start": "running", "restart": "running", "powerOff": "stopped", "deallocate": "deallocated",
                     "redeploy": "running", "reimage": "running", "performMaintenance": "running"}


class Member:
    """One member VM of the scale set, as the test wants it to be."""

    def __init__(self, name, power_state="running", tags=None, fault_domain=0, zone=None, extensions=None,
                 locks=None, protection=None, latest_model=True, health=None):
        self.name = name
        self.power_state = power_state
        self.tags = dict(tags or {})
        self.fault_domain = fault_domain
        self.zone = zone
        # {extension name: REST body}, as Azure returns it (never with protectedSettings).
        self.extensions = {name_.lower(): dict(copy.deepcopy(body), name=name_)
                           for name_, body in (extensions or {}).items()}
        # [{"name", "level", "notes"}]: locks on the VM itself.
        self.locks = [dict(lock) for lock in locks or []]
        # The REST protectionPolicy of the scale set VM view, or None.
        self.protection = protection
        self.latest_model = latest_model
        self.health = health


class ScriptedArm:
    """A Flexible scale set ``scale_set`` in ``resource_group`` with ``members``, served as ARM serves it."""

    def __init__(self, members=(), resource_group="rg1", scale_set="web", orchestration_mode="Flexible",
                 graph_lag=False, upgrade_policy=None, health_extension=False, rolling_upgrade=None,
                 group_locks=None, load_balancer=None, native_protection=True):
        self.members = {}
        for member in members:
            member = member if isinstance(member, Member) else Member(member)
            self.members[member.name.lower()] = member
        self.resource_group = resource_group
        self.scale_set = scale_set
        self.orchestration_mode = orchestration_mode
        # Resource Graph behind (lists nobody): named members are then confirmed with the compute API.
        self.graph_lag = graph_lag
        self.upgrade_policy = copy.deepcopy(upgrade_policy or {"mode": "Manual"})
        self.health_extension = health_extension
        # The latest rolling upgrade (REST properties), or None: the scale set never had one (404).
        self.rolling_upgrade = copy.deepcopy(rolling_upgrade)
        self.group_locks = [dict(lock) for lock in group_locks or []]
        self.load_balancer = copy.deepcopy(load_balancer)
        # Whether Azure accepts the scale set VM API with a VM name (native instance protection).
        self.native_protection = native_protection
        # The Tags API PATCHes received, in order: (member name, body).
        self.tag_patches = []
        self.refusals = []
        self._operations = itertools.count(1)
        self._lock = threading.Lock()
        self._routes = [(method, re.compile(pattern + r"$", re.IGNORECASE), handler) for method, pattern, handler in (
            ("POST", r"/providers/Microsoft\.ResourceGraph/resources", self._graph),
            ("GET", r"/providers/(?P<ns>[^/]+)/locations/[^/]+/operations/(?P<op>[^/]+)", self._operation),
            ("GET", r"/subscriptions/[^/]+/providers/Microsoft\.Authorization/locks", self._subscription_locks),
            ("GET", r"/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Authorization/locks", self._group_locks),
            ("*", r"/virtualMachines/(?P<vm>[^/]+)/providers/Microsoft\.Authorization/locks/(?P<lock>[^/]+)",
             self._member_lock),
            ("*", r"/virtualMachines/(?P<vm>[^/]+)/providers/Microsoft\.Resources/tags/default", self._tags),
            ("GET", r"/virtualMachineScaleSets/(?P<set>[^/]+)", self._get_scale_set),
            ("PATCH", r"/virtualMachineScaleSets/(?P<set>[^/]+)", self._patch_scale_set),
            ("GET", r"/virtualMachineScaleSets/(?P<set>[^/]+)/rollingUpgrades/latest", self._latest_rolling_upgrade),
            ("POST", r"/virtualMachineScaleSets/(?P<set>[^/]+)/manualupgrade", self._manual_upgrade),
            ("POST", r"/virtualMachineScaleSets/(?P<set>[^/]+)/delete", self._delete_instances),
            ("GET", r"/virtualMachineScaleSets/(?P<set>[^/]+)/virtualMachines", self._scale_set_vms),
            ("GET", r"/virtualMachineScaleSets/(?P<set>[^/]+)/virtualMachines/(?P<vm>[^/]+)", self._scale_set_vm),
            ("PATCH", r"/virtualMachineScaleSets/(?P<set>[^/]+)/virtualMachines/(?P<vm>[^/]+)",
             self._patch_scale_set_vm),
            ("GET", r"/virtualMachines", self._list_vms),
            ("GET", r"/virtualMachines/(?P<vm>[^/]+)", self._get_vm),
            ("GET", r"/virtualMachines/(?P<vm>[^/]+)/instanceView", self._instance_view),
            ("POST", r"/virtualMachines/(?P<vm>[^/]+)/(?P<action>start|powerOff|deallocate|restart|redeploy|reimage"
                     r"|performMaintenance)", self._vm_action),
            ("POST", r"/virtualMachines/(?P<vm>[^/]+)/simulateEviction", self._simulate_eviction),
            ("GET", r"/virtualMachines/(?P<vm>[^/]+)/extensions", self._list_extensions),
            ("*", r"/virtualMachines/(?P<vm>[^/]+)/extensions/(?P<ext>[^/]+)", self._extension),
            ("GET", r"/loadBalancers/(?P<lb>[^/]+)", self._get_load_balancer),
            ("GET", r"/loadBalancers/(?P<lb>[^/]+)/inboundNatRules/(?P<rule>[^/]+)", self._get_nat_rule),
            ("PUT", r"/loadBalancers/(?P<lb>[^/]+)/inboundNatRules/(?P<rule>[^/]+)", self._put_nat_rule),
            ("DELETE", r"/loadBalancers/(?P<lb>[^/]+)/inboundNatRules/(?P<rule>[^/]+)", self._delete_nat_rule),
            ("GET", r"/networkInterfaces/(?P<nic>[^/]+)", self._get_nic),
            ("PUT", r"/networkInterfaces/(?P<nic>[^/]+)", self._put_nic),
        )]
        self.nics = {("%s-nic" % member.name).lower(): self._new_nic(member, index)
                     for index, member in enumerate(self.members.values())}

    # -- what tests ask ---------------------------------------------------------------------------

    def refuse(self, method, path_pattern, status, code, message=None, request_id="req-1", times=None, headers=None):
        """Answer requests of ``method`` whose path matches ``path_pattern`` (a regex) with an ARM error: every
        such request, or only the first ``times`` of them (a transient failure); ``headers`` are added."""
        self.refusals.append({"method": method, "pattern": re.compile(path_pattern, re.IGNORECASE),
                              "status": status, "body": arm_error(code, message or "refused: %s" % code),
                              "headers": dict(headers or {}, **{"x-ms-request-id": request_id}), "times": times})

    def member(self, name):
        return self.members[name.lower()]

    @property
    def tags(self):
        """Every member's tags, by member name."""
        return {member.name: member.tags for member in self.members.values()}

    @property
    def scale_set_id(self):
        return "%s/providers/Microsoft.Compute/virtualMachineScaleSets/%s" % (self.group_id, self.scale_set)

    @property
    def group_id(self):
        return "/subscriptions/%s/resourceGroups/%s" % (SUBSCRIPTION_ID, self.resource_group)

    def vm_id(self, name):
        return "%s/providers/Microsoft.Compute/virtualMachines/%s" % (self.group_id, name)

    def nic_id(self, nic_name):
        return "%s/providers/Microsoft.Network/networkInterfaces/%s" % (self.group_id, nic_name)

    # -- the transport's entry point ---------------------------------------------------------------

    def __call__(self, request):
        parts = urlsplit(request.url)
        path = parts.path
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        with self._lock:
            for refusal in self.refusals:
                if refusal["method"] == request.method and refusal["pattern"].search(path) and refusal["times"] != 0:
                    if refusal["times"] is not None:
                        refusal["times"] -= 1
                    return reply(refusal["status"], refusal["body"], refusal["headers"])
        for method, pattern, handler in self._routes:
            match = pattern.search(path)
            if match and method in (request.method, "*"):
                with self._lock:
                    return handler(request, query, **match.groupdict())
        return reply(404, arm_error("NoRoute", "no scripted route for %s %s" % (request.method, path)))

    # -- helpers ----------------------------------------------------------------------------------

    def _lro(self, status, body=None, location=False, provider="Microsoft.Compute"):
        """An accepted long-running operation, already finished when first polled."""
        url = "%s/subscriptions/%s/providers/%s/locations/%s/operations/op-%d?api-version=2024-07-01" % (
            BASE_URL, SUBSCRIPTION_ID, provider, LOCATION, next(self._operations))
        headers = {"Azure-AsyncOperation": url, "Retry-After": "0"}
        if location:
            headers["Location"] = url + "&monitor=true"
        return reply(status, body, headers)

    def _missing(self, kind, name):
        return reply(404, arm_error("ResourceNotFound", "The Resource '%s/%s' under resource group '%s' was not found."
                                    % (kind, name, self.resource_group)))

    def _vm(self, member, instance_view=False):
        properties = {
            "virtualMachineScaleSet": {"id": self.scale_set_id},
            "platformFaultDomain": member.fault_domain,
            "provisioningState": "Succeeded",
            "hardwareProfile": {"vmSize": "Standard_D2s_v3"},
            "networkProfile": {"networkInterfaces": [{"id": self.nic_id("%s-nic" % member.name)}]},
        }
        if instance_view:
            properties["instanceView"] = self._view(member)
        body = {"id": self.vm_id(member.name), "name": member.name, "type": "Microsoft.Compute/virtualMachines",
                "location": LOCATION, "tags": dict(member.tags), "properties": properties}
        if member.zone is not None:
            body["zones"] = [str(member.zone)]
        return body

    @staticmethod
    def _view(member):
        view = {"platformFaultDomain": member.fault_domain,
                "statuses": [{"code": "ProvisioningState/succeeded", "level": "Info"},
                             {"code": "PowerState/%s" % member.power_state, "level": "Info"}]}
        if member.health is not None:
            view["vmHealth"] = {"status": {"code": "HealthState/%s" % member.health}}
        return view

    def _graph_row(self, member):
        return {"id": self.vm_id(member.name), "name": member.name, "resourceGroup": self.resource_group,
                "location": LOCATION, "zones": [str(member.zone)] if member.zone is not None else None,
                "tags": dict(member.tags), "platformFaultDomain": member.fault_domain,
                "powerState": "PowerState/%s" % member.power_state, "provisioningState": "Succeeded",
                "vmSize": "Standard_D2s_v3", "priority": None, "diffDiskSettings": None,
                "networkInterfaces": [{"id": self.nic_id("%s-nic" % member.name)}]}

    def _found(self, vm):
        return self.members.get(vm.lower())

    def _lock_body(self, scope, lock):
        properties = {"level": lock["level"]}
        if lock.get("notes") is not None:
            properties["notes"] = lock["notes"]
        return {"id": scope + LOCK_PROVIDER + lock["name"], "name": lock["name"],
                "type": "Microsoft.Authorization/locks", "properties": properties}

    def _new_nic(self, member, index):
        name = "%s-nic" % member.name
        nic_id = self.nic_id(name)
        return {"id": nic_id, "name": name, "location": LOCATION, "properties": {
            "virtualMachine": {"id": self.vm_id(member.name)},
            "ipConfigurations": [{"id": nic_id + "/ipConfigurations/ipconfig1", "name": "ipconfig1", "properties": {
                "primary": True, "privateIPAddress": "10.0.0.%d" % (10 + index),
                "privateIPAllocationMethod": "Dynamic"}}]}}

    # -- routes -----------------------------------------------------------------------------------

    def _graph(self, request, query):
        if "microsoft.network/networkinterfaces" in request.json()["query"].lower():
            # The private IPs of NICs (flex_list_instances include_network): one row per IP configuration.
            rows = [{"id": nic["id"], "ip": ipconfig["properties"]["privateIPAddress"]} for nic in self.nics.values()
                    for ipconfig in nic["properties"]["ipConfigurations"]]
        elif self.graph_lag:
            rows = []
        else:
            rows = [self._graph_row(member) for member in self.members.values()]
        return reply(200, {"totalRecords": len(rows), "count": len(rows), "resultTruncated": "false", "data": rows})

    def _operation(self, request, query, ns, op):
        return reply(200, {"name": op, "status": "Succeeded", "startTime": "2026-01-01T00:00:00Z",
                           "endTime": "2026-01-01T00:00:01Z"})

    def _subscription_locks(self, request, query):
        return reply(200, {"value": []})

    def _group_locks(self, request, query, rg):
        if rg.lower() != self.resource_group.lower():
            return reply(200, {"value": []})
        locks = [self._lock_body(self.group_id, lock) for lock in self.group_locks]
        for member in self.members.values():
            locks.extend(self._lock_body(self.vm_id(member.name), lock) for lock in member.locks)
        return reply(200, {"value": locks})

    def _member_lock(self, request, query, vm, lock):
        member = self._found(vm)
        if member is None:
            return self._missing("Microsoft.Compute/virtualMachines", vm)
        existing = [held for held in member.locks if held["name"].lower() == lock.lower()]
        if request.method == "PUT":
            properties = request.json()["properties"]
            wanted = {"name": existing[0]["name"] if existing else lock, "level": properties["level"],
                      "notes": properties.get("notes")}
            member.locks = [held for held in member.locks if held not in existing] + [wanted]
            return reply(200 if existing else 201, self._lock_body(self.vm_id(member.name), wanted))
        if request.method == "DELETE":
            member.locks = [held for held in member.locks if held not in existing]
            return reply(200 if existing else 204)
        if not existing:
            return reply(404, arm_error("LockNotFound", "The lock '%s' could not be found." % lock))
        return reply(200, self._lock_body(self.vm_id(member.name), existing[0]))

    def _tags(self, request, query, vm):
        member = self._found(vm)
        if member is None:
            return self._missing("Microsoft.Compute/virtualMachines", vm)
        if request.method == "GET":
            return reply(200, {"properties": {"tags": dict(member.tags)}})
        body = request.json()
        self.tag_patches.append((member.name, body))
        changes = body["properties"]["tags"]
        if body["operation"] == "Replace":
            member.tags = dict(changes)
        elif body["operation"] == "Merge":
            member.tags.update(changes)
        else:
            member.tags = {key: value for key, value in member.tags.items() if changes.get(key) != value}
        return reply(200, {"id": self.vm_id(member.name) + "/providers/Microsoft.Resources/tags/default",
                           "properties": {"tags": dict(member.tags)}})

    def _scale_set_body(self):
        profile = {"storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                                                         "sku": "server", "version": "latest"}}}
        if self.health_extension:
            profile["extensionProfile"] = {"extensions": [copy.deepcopy(HEALTH_EXTENSION)]}
        return {"id": self.scale_set_id, "name": self.scale_set, "type": "Microsoft.Compute/virtualMachineScaleSets",
                "location": LOCATION, "sku": {"name": "Standard_D2s_v3", "tier": "Standard",
                                              "capacity": len(self.members)},
                "properties": {"orchestrationMode": self.orchestration_mode, "platformFaultDomainCount": 1,
                               "provisioningState": "Succeeded", "upgradePolicy": copy.deepcopy(self.upgrade_policy),
                               "virtualMachineProfile": profile}}

    def _get_scale_set(self, request, query, set):  # pylint: disable=redefined-builtin
        if set.lower() != self.scale_set.lower():
            return self._missing("Microsoft.Compute/virtualMachineScaleSets", set)
        return reply(200, self._scale_set_body())

    def _patch_scale_set(self, request, query, set):  # pylint: disable=redefined-builtin
        policy = (request.json().get("properties") or {}).get("upgradePolicy")
        if policy is not None:
            self.upgrade_policy = copy.deepcopy(policy)
        return self._lro(200, self._scale_set_body())

    def _latest_rolling_upgrade(self, request, query, set):  # pylint: disable=redefined-builtin
        if self.rolling_upgrade is None:
            return reply(404, arm_error("NotFound", "The entity was not found in this Azure location."))
        return reply(200, {"location": LOCATION, "properties": copy.deepcopy(self.rolling_upgrade)})

    def _manual_upgrade(self, request, query, set):  # pylint: disable=redefined-builtin
        for name in request.json().get("instanceIds") or []:
            if self._found(name) is not None:
                self._found(name).latest_model = True
        return self._lro(202)

    def _delete_instances(self, request, query, set):  # pylint: disable=redefined-builtin
        for name in request.json().get("instanceIds") or []:
            self.members.pop(name.lower(), None)
        return self._lro(202)

    def _scale_set_vm_body(self, member):
        properties = {"latestModelApplied": member.latest_model}
        if member.protection is not None:
            properties["protectionPolicy"] = dict(member.protection)
        return {"id": "%s/virtualMachines/%s" % (self.scale_set_id, member.name), "name": member.name,
                "instanceId": member.name, "location": LOCATION, "properties": properties}

    def _scale_set_vms(self, request, query, set):  # pylint: disable=redefined-builtin
        return reply(200, {"value": [self._scale_set_vm_body(member) for member in self.members.values()]})

    def _scale_set_vm(self, request, query, set, vm):  # pylint: disable=redefined-builtin
        if not self.native_protection:
            return reply(400, arm_error("InvalidParameter", "The instance id '%s' is not valid." % vm))
        member = self._found(vm)
        if member is None:
            return self._missing("Microsoft.Compute/virtualMachineScaleSets/virtualMachines", vm)
        return reply(200, self._scale_set_vm_body(member))

    def _patch_scale_set_vm(self, request, query, set, vm):  # pylint: disable=redefined-builtin
        member = self._found(vm)
        if member is None:
            return self._missing("Microsoft.Compute/virtualMachineScaleSets/virtualMachines", vm)
        member.protection = dict((request.json().get("properties") or {}).get("protectionPolicy") or {})
        return self._lro(200, self._scale_set_vm_body(member))

    def _list_vms(self, request, query):
        expand = query.get("$expand") == "instanceView"
        return reply(200, {"value": [self._vm(member, expand) for member in self.members.values()]})

    def _get_vm(self, request, query, vm):
        member = self._found(vm)
        if member is None:
            return self._missing("Microsoft.Compute/virtualMachines", vm)
        return reply(200, self._vm(member, query.get("$expand") == "instanceView"))

    def _instance_view(self, request, query, vm):
        member = self._found(vm)
        if member is None:
            return self._missing("Microsoft.Compute/virtualMachines", vm)
        return reply(200, self._view(member))

    def _vm_action(self, request, query, vm, action):
        member = self._found(vm)
        if member is None:
            return self._missing("Microsoft.Compute/virtualMachines", vm)
        member.power_state = POWER_STATE_AFTER.get(action, member.power_state)
        return self._lro(202, location=True)

    def _simulate_eviction(self, request, query, vm):
        member = self._found(vm)
        if member is None:
            return self._missing("Microsoft.Compute/virtualMachines", vm)
        member.power_state = "deallocated"
        return reply(204)

    def _extension_body(self, member, name):
        body = copy.deepcopy(member.extensions[name.lower()])
        body.setdefault("name", name)
        body["id"] = "%s/extensions/%s" % (self.vm_id(member.name), body["name"])
        body.setdefault("properties", {}).setdefault("provisioningState", "Succeeded")
        return body

    def _list_extensions(self, request, query, vm):
        member = self._found(vm)
        if member is None:
            return self._missing("Microsoft.Compute/virtualMachines", vm)
        return reply(200, {"value": [self._extension_body(member, name) for name in member.extensions]})

    def _extension(self, request, query, vm, ext):
        member = self._found(vm)
        if member is None:
            return self._missing("Microsoft.Compute/virtualMachines", vm)
        present = ext.lower() in member.extensions
        if request.method == "GET":
            if not present:
                return reply(404, arm_error("NotFound", "The entity was not found in this Azure location."))
            return reply(200, self._extension_body(member, ext))
        if request.method == "DELETE":
            member.extensions.pop(ext.lower(), None)
            return self._lro(202 if present else 204, location=True)
        properties = dict(request.json().get("properties") or {})
        properties.pop("protectedSettings", None)
        if request.method == "PUT" or not present:
            member.extensions[ext.lower()] = {"name": ext, "properties": properties}
        else:
            member.extensions[ext.lower()]["properties"].update(properties)
        return self._lro(200 if present else 201, self._extension_body(member, ext))

    def _get_load_balancer(self, request, query, lb):
        if self.load_balancer is None or lb.lower() != self.load_balancer["name"].lower():
            return self._missing("Microsoft.Network/loadBalancers", lb)
        return reply(200, copy.deepcopy(self.load_balancer))

    def _get_nat_rule(self, request, query, lb, rule):
        for held in self.load_balancer["properties"].get("inboundNatRules") or []:
            if held["name"].lower() == rule.lower():
                return reply(200, copy.deepcopy(held))
        return self._missing("Microsoft.Network/loadBalancers/inboundNatRules", rule)

    def _put_nat_rule(self, request, query, lb, rule):
        body = dict(request.json(), name=rule)
        body["id"] = "%s/inboundNatRules/%s" % (self.load_balancer["id"], rule)
        body.setdefault("properties", {})["provisioningState"] = "Succeeded"
        rules = self.load_balancer["properties"].setdefault("inboundNatRules", [])
        rules[:] = [held for held in rules if held["name"].lower() != rule.lower()] + [body]
        return self._lro(201, body, provider="Microsoft.Network")

    def _delete_nat_rule(self, request, query, lb, rule):
        rules = self.load_balancer["properties"].setdefault("inboundNatRules", [])
        rules[:] = [held for held in rules if held["name"].lower() != rule.lower()]
        return self._lro(202, location=True, provider="Microsoft.Network")

    def _get_nic(self, request, query, nic):
        if nic.lower() not in self.nics:
            return self._missing("Microsoft.Network/networkInterfaces", nic)
        return reply(200, copy.deepcopy(self.nics[nic.lower()]))

    def _put_nic(self, request, query, nic):
        if nic.lower() not in self.nics:
            return self._missing("Microsoft.Network/networkInterfaces", nic)
        self.nics[nic.lower()] = dict(request.json(), name=self.nics[nic.lower()]["name"])
        if self.load_balancer is not None:
            self._reflect_nat_bindings()
        return self._lro(200, copy.deepcopy(self.nics[nic.lower()]), provider="Microsoft.Network")

    def _reflect_nat_bindings(self):
        """As Azure does, a NAT rule names the IP configuration bound to it (backendIPConfiguration)."""
        bound = {}
        for held in self.nics.values():
            for ipconfig in held["properties"]["ipConfigurations"]:
                for rule in (ipconfig.get("properties") or {}).get("loadBalancerInboundNatRules") or []:
                    bound[rule["id"].lower()] = ipconfig["id"]
        for rule in self.load_balancer["properties"].get("inboundNatRules") or []:
            properties = rule.setdefault("properties", {})
            if rule["id"].lower() in bound:
                properties["backendIPConfiguration"] = {"id": bound[rule["id"].lower()]}
            else:
                properties.pop("backendIPConfiguration", None)


def load_balancer(name="web-lb", resource_group="rg1", private_ip="10.0.0.4"):
    """An internal Standard load balancer with one frontend (``fe``) and one backend pool (``pool``)."""
    lb_id = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/loadBalancers/%s" % (
        SUBSCRIPTION_ID, resource_group, name)
    return {"id": lb_id, "name": name, "location": LOCATION, "sku": {"name": "Standard"}, "properties": {
        "provisioningState": "Succeeded",
        "frontendIPConfigurations": [{"id": lb_id + "/frontendIPConfigurations/fe", "name": "fe", "properties": {
            "privateIPAddress": private_ip, "privateIPAllocationMethod": "Static"}}],
        "backendAddressPools": [{"id": lb_id + "/backendAddressPools/pool", "name": "pool", "properties": {}}],
        "inboundNatRules": [], "loadBalancingRules": [], "probes": []}}


def rest_extension(name="CustomScript", publisher="Microsoft.Azure.Extensions", type_="CustomScript",
                   version="2.1", settings=None, tag=None, auto_upgrade=None, vm_id=None):
    """A VM extension as Azure returns it (REST layout), on the VM ``vm_id`` (a placeholder VM when not given)."""
    properties = {"publisher": publisher, "type": type_, "typeHandlerVersion": version,
                  "provisioningState": "Succeeded"}
    if settings is not None:
        properties["settings"] = settings
    if tag is not None:
        properties["forceUpdateTag"] = tag
    if auto_upgrade is not None:
        properties["autoUpgradeMinorVersion"] = auto_upgrade
    vm_id = vm_id or "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
    return {"name": name, "id": vm_id + "/extensions/" + name, "properties": properties}
