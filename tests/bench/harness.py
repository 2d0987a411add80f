"""The pure parts of `make bench`: scenarios, counting the emulator's request log, statistics, the report.

Nothing here starts a process or talks to a server, so ``test_harness.py`` checks all of it in a
second (``make bench-selftest``, part of ``make test``).
"""

from __future__ import annotations

import platform
import statistics

TENANT = "3e2b7a10-5c4d-4e8f-9a1b-7c6d5e4f3a2b"
SUBSCRIPTION = "6f1c1e4c-0b1e-4a55-9c4f-2d6a1b2c3d4e"
CLIENT_ID = "1b7e2c3d-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
SECRET = "emulator-client-secret"
RESOURCE_GROUP = "bench-rg"
# Served as public Azure: the audience public ARM names first in its metadata is the classic one, and it
# also accepts https://management.azure.com/ (what azure-mgmt-* clients ask for by default).
PUBLIC_AUDIENCE = "https://management.azure.com/"
PUBLIC_HOSTS = ("management.azure.com", "login.microsoftonline.com")

# The timings of the measurements: restart 4 s, Retry-After 1 s, health initializing 2 s.
TIMINGS = {"time_scale": 1.0, "retry_after": 1,
           "durations": {"restart": 4.0, "start": 3.0, "health_initializing": 2.0}}


def world(set_name, members, rate_limits=False, application_health=True):
    """An emulator scenario served as public Azure: one resource group with one Flexible set."""
    settings = dict(TIMINGS, rate_limits=bool(rate_limits), accept_management_core_audience=True,
                    # azure.azcollection and the Azure CLI pin their own SDKs; their api-versions are published
                    # ones, but not all are in the emulator's list.
                    strict_api_versions=False)
    return {
        "tenant_id": TENANT,
        "subscription_id": SUBSCRIPTION,
        "clients": [{"client_id": CLIENT_ID, "secret": SECRET}],
        "audience": PUBLIC_AUDIENCE,
        "cloud_name": "AzureCloud",
        "settings": settings,
        "resource_groups": [{
            "name": RESOURCE_GROUP,
            "location": "eastus",
            "virtual_networks": [{"name": "bench-vnet", "address_prefix": "10.0.0.0/8",
                                  "subnets": [{"name": "default", "address_prefix": "10.0.0.0/16"}]}],
            "scale_sets": [{"name": set_name, "orchestration_mode": "Flexible", "platform_fault_domain_count": 3,
                            "instances": members, "vm_size": "Standard_D2s_v5", "subnet": "bench-vnet/default",
                            "application_health": application_health}],
        }],
    }


def client_environment(ca_path):
    """What both collections and the Azure CLI read: a service principal and the emulator's CA (public cloud)."""
    return {
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "AZURE_CLIENT_ID": CLIENT_ID,
        "AZURE_SECRET": SECRET,
        "AZURE_TENANT": TENANT,
        "REQUESTS_CA_BUNDLE": ca_path,
        "SSL_CERT_FILE": ca_path,
    }


def hosts_file(names=PUBLIC_HOSTS):
    return "127.0.0.1 localhost %s\n::1 localhost\n" % " ".join(names)


# -- the request log -------------------------------------------------------------------------------

def is_token_fetch(entry):
    path = entry["path"].lower()
    return entry["method"] == "POST" and (path.endswith("/oauth2/v2.0/token") or path.endswith("/oauth2/token"))


def is_arm(entry):
    return entry["path"].lower().startswith(("/subscriptions", "/providers", "/tenants"))


def count_requests(entries):
    """Counts of one run's slice of ``GET /_emulator/requests``."""
    arm = [e for e in entries if is_arm(e)]
    return {
        "arm": len(arm),
        "tokens": sum(1 for e in entries if is_token_fetch(e)),
        "identity_other": sum(1 for e in entries if not is_arm(e) and not is_token_fetch(e)),
        "throttled": sum(1 for e in arm if e["status"] == 429),
        "reads": sum(1 for e in arm if e["method"] in ("GET", "HEAD")),
        "writes": sum(1 for e in arm if e["method"] in ("POST", "PUT", "PATCH")),
        "deletes": sum(1 for e in arm if e["method"] == "DELETE"),
        "errors": sum(1 for e in arm if e["status"] >= 400 and e["status"] != 429),
    }


def restarted_members(entries, names):
    """Names of ``names`` whose restart POST was accepted (202) in this slice of the request log."""
    wanted = {name.lower(): name for name in names}
    done = set()
    for entry in entries:
        path = entry["path"].lower()
        if entry["method"] == "POST" and path.endswith("/restart") and entry["status"] == 202:
            name = path.rsplit("/", 2)[-2]
            if name in wanted:
                done.add(wanted[name])
    return done


# -- statistics ------------------------------------------------------------------------------------

def summarize(values):
    """Median and range of the repetitions (None when a run failed)."""
    good = [v for v in values if v is not None]
    if not good:
        return None
    return {"median": statistics.median(good), "low": min(good), "high": max(good), "runs": len(values),
            "failed_runs": len(values) - len(good)}


def seconds(summary):
    if summary is None:
        return "failed"
    text = "%.1f s" % summary["median"]
    if summary["runs"] - summary["failed_runs"] > 1:
        text += " (%.1f–%.1f)" % (summary["low"], summary["high"])
    if summary["failed_runs"]:
        text += ", %d of %d runs failed" % (summary["failed_runs"], summary["runs"])
    return text


def megabytes(kilobytes):
    return "%.0f MB" % (kilobytes / 1024.0) if kilobytes else "n/a"


def ratio(peer, ours):
    if not peer or not ours or ours["median"] <= 0:
        return ""
    return "%.1f ×" % (peer["median"] / ours["median"])


def describe_counts(counts, members=None):
    if not counts:
        return ""
    text = "%d ARM requests" % counts["arm"]
    if members:
        text += " (%.1f a member)" % (counts["arm"] / float(members))
    text += ", %d token fetches" % counts["tokens"]
    if counts["throttled"]:
        text += ", %d × 429" % counts["throttled"]
    return text


# -- timeline --------------------------------------------------------------------------------------

def timeline_segments(events, start=None):
    """Per VM, ``[(t0, t1, state)]`` from the emulator's event log, ``state`` being the power state, or
    ``running/<health>`` while running. Times are seconds from ``start`` (default: the first event)."""
    if not events:
        return {}
    origin = events[0]["time"] if start is None else start
    last = max(e["time"] for e in events)
    current = {}
    segments = {}
    for event in events:
        state = event["power_state"] or "unknown"
        if state == "running" and event.get("health"):
            state = "running/%s" % event["health"]
        name = event["vm"]
        if name in current:
            begun, previous = current[name]
            if previous != state:
                segments.setdefault(name, []).append((begun - origin, event["time"] - origin, previous))
                current[name] = (event["time"], state)
        else:
            current[name] = (event["time"], state)
    for name, (begun, state) in current.items():
        segments.setdefault(name, []).append((begun - origin, last - origin, state))
    return segments


def max_down(segments):
    """The most members not running-and-healthy at the same moment."""
    changes = []
    for pieces in segments.values():
        for begun, ended, state in pieces:
            if state != "running/healthy":
                changes.append((begun, 1))
                changes.append((ended, -1))
    worst = current = 0
    for _moment, delta in sorted(changes, key=lambda change: (change[0], change[1])):
        current += delta
        worst = max(worst, current)
    return worst


# -- the report ------------------------------------------------------------------------------------

def machine_description(cpu_count, memory_kb, python_version=None):
    return "%s, %d cores, %.0f GiB memory, Python %s" % (
        platform.machine() or "unknown", cpu_count, memory_kb / 1024.0 / 1024.0,
        python_version or platform.python_version())


def markdown_table(rows):
    """``rows``: dicts with work, ours, peer, cli, ratio (strings)."""
    lines = ["| Work | This collection | Peer (azure.azcollection) | Azure CLI | Ratio (peer / ours) |",
             "| --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append("| %s | %s | %s | %s | %s |" % tuple(
            str(row.get(key, "")).replace("|", "\\|").replace("\n", "<br>")
            for key in ("work", "ours", "peer", "cli", "ratio")))
    return "\n".join(lines)


def phases(entries):
    """Where a fan-out's requests and time went: reads before the first action, the actions, the operation
    polls, the reads after the last action (seconds from the first request)."""
    if not entries:
        return {}
    origin = entries[0]["time"]
    posts = [e for e in entries if e["method"] == "POST" and is_arm(e) and "/microsoft.resourcegraph/" not in e["path"].lower()]
    polls = [e for e in entries if e["method"] == "GET" and "/operations/" in e["path"].lower()]
    first = posts[0]["time"] if posts else None
    last = posts[-1]["time"] if posts else None
    reads = [e for e in entries if is_arm(e) and e["method"] == "GET" and "/operations/" not in e["path"].lower()]
    return {
        "first_action_at": None if first is None else round(first - origin, 1),
        "last_action_at": None if last is None else round(last - origin, 1),
        "ended_at": round(entries[-1]["time"] - origin, 1),
        "actions": len(posts),
        "polls": len(polls),
        "reads_before": sum(1 for e in reads if first is None or e["time"] < first),
        "reads_after": sum(1 for e in reads if last is not None and e["time"] > last),
        "reads_between": sum(1 for e in reads if first is not None and first <= e["time"] <= last),
    }


def batches(segments, gap=1.0):
    """Members whose first outage began within ``gap`` seconds of each other, as batches in time order:
    ``[{"start", "end", "members"}]`` (end: when the last of them was running and healthy again)."""
    first_down = sorted((min(b for b, _e, s in pieces if s != "running/healthy"), name)
                        for name, pieces in segments.items() if any(s != "running/healthy" for _b, _e, s in pieces))
    groups = []
    for moment, name in first_down:
        if groups and moment - groups[-1]["last"] < gap:
            groups[-1]["members"].append(name)
            groups[-1]["last"] = moment
        else:
            groups.append({"start": moment, "last": moment, "members": [name]})
    for group in groups:
        group["end"] = max(e for name in group["members"] for _b, e, s in segments[name] if s != "running/healthy")
        del group["last"]
    return groups
