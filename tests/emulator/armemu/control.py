"""The test-control API under /_emulator/ (not ARM: no token, not logged, not faulted).

    GET    /_emulator/health                 readiness
    POST   /_emulator/reset                  body: a scenario (JSON or YAML); empty = the startup scenario
    GET    /_emulator/scenario               the scenario now loaded
    PUT    /_emulator/clients/{client_id}    add an application: {"secret": ...} or {"certificate": PEM}
    GET|PUT /_emulator/settings              PUT merges (durations are merged key by key)
    GET|POST|DELETE /_emulator/faults        list / add one rule (status, lro, stuck or delay) / clear all
    PUT    /_emulator/vms/{name}/health      {"state": "unhealthy", "after_restart": false}
    PUT    /_emulator/vms/{name}/maintenance {"pending": true}
    GET|DELETE /_emulator/requests           ?since=N returns entries from index N
    GET|DELETE /_emulator/events             ?since=N likewise
    GET    /_emulator/operations             counts of operations by status
"""

from __future__ import annotations

import json

from . import scenario, vmmodel
from .http import Reply
from .state import FaultRule, merge_settings, now


def _error(status, code, message):
    return Reply(status, {"error": {"code": code, "message": message}})


def _json_body(body):
    text = body.decode("utf-8", errors="replace").strip() if body else ""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError("the body is not valid JSON: %s" % exc)
    if not isinstance(value, dict):
        raise ValueError("the body must be a JSON object")
    return value


def _since(query, items):
    try:
        start = int(query.get("since", 0))
    except ValueError:
        start = 0
    return items[max(0, start):]


def _find_vm(state, name, query):
    group = query.get("resource_group")
    found = [vm for vm in state.of_type(vmmodel.VM_TYPE)
             if vm.name.lower() == name.lower()
             and (not group or (vm.resource_group or "").lower() == group.lower())]
    if not found:
        return None, _error(404, "NotFound", "No VM named '%s'." % name)
    if len(found) > 1:
        return None, _error(409, "Ambiguous", "Several VMs are named '%s'; add ?resource_group=." % name)
    return found[0], None


def dispatch(state, method, path, query, body, headers):
    parts = [p for p in path.split("/") if p][1:]  # drop "_emulator"
    try:
        return _dispatch(state, method, parts, query, body)
    except (ValueError, scenario.ScenarioError) as exc:
        return _error(400, "InvalidRequest", str(exc))


def _dispatch(state, method, parts, query, body):
    head = parts[0].lower() if parts else ""
    if head == "health" and method == "GET":
        return Reply(200, {"status": "ok", "generation": state.generation, "time": now()})
    if head == "reset" and method == "POST":
        text = body.decode("utf-8", errors="replace") if body else ""
        if text.strip():
            spec = scenario.parse(text)
        else:
            spec = state.startup_scenario
        scenario.load(state, spec)
        return Reply(200, {"status": "reset", "generation": state.generation,
                           "resources": len(state.resources)})
    if head == "clients" and len(parts) == 2 and method == "PUT":
        spec = dict(_json_body(body), client_id=parts[1])
        scenario.register_client(state, spec)
        return Reply(200, {"client_id": parts[1], "certificates": len(state.clients[parts[1].lower()]["certificates"])})
    if head == "scenario" and method == "GET":
        return Reply(200, state.scenario)
    if head == "settings":
        if method == "GET":
            return Reply(200, state.settings)
        if method == "PUT":
            state.settings = merge_settings(state.settings, _json_body(body))
            return Reply(200, state.settings)
    if head == "faults":
        if method == "GET":
            return Reply(200, {"faults": [rule.describe() for rule in state.faults]})
        if method == "POST":
            rule = FaultRule(_json_body(body))
            state.faults.append(rule)
            return Reply(201, rule.describe())
        if method == "DELETE":
            state.faults.clear()
            return Reply(200, {"faults": []})
    if head == "vms" and len(parts) == 3 and method == "PUT":
        vm, error = _find_vm(state, parts[1], query)
        if error:
            return error
        spec = _json_body(body)
        if parts[2].lower() == "health":
            vmmodel.set_health(state, vm, str(spec.get("state", "")).lower(), bool(spec.get("after_restart")))
            return Reply(200, {"vm": vm.name, "health": vm.emu.get("health"),
                               "pending_health": vm.emu.get("pending_health"),
                               "reported": vm.emu.get("health_visible")})
        if parts[2].lower() == "maintenance":
            if spec.get("pending", True):
                vm.emu["maintenance"] = now()
            else:
                vm.emu.pop("maintenance", None)
            state.save(vm)
            return Reply(200, {"vm": vm.name, "maintenance_pending": bool(vm.emu.get("maintenance"))})
    if head == "requests":
        if method == "GET":
            return Reply(200, {"requests": _since(query, state.requests), "total": len(state.requests)})
        if method == "DELETE":
            state.requests.clear()
            return Reply(200, {"requests": []})
    if head == "events":
        if method == "GET":
            return Reply(200, {"events": _since(query, state.events), "total": len(state.events)})
        if method == "DELETE":
            state.events.clear()
            return Reply(200, {"events": []})
    if head == "operations" and method == "GET":
        counts = {}
        for op in state.operations.values():
            counts[op.status] = counts.get(op.status, 0) + 1
        return Reply(200, {"operations": counts})
    return _error(404, "NotFound", "No control endpoint %s /_emulator/%s." % (method, "/".join(parts)))
