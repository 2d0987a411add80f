"""Draw the rolling restart's timeline from the emulator's event log (a PNG).

    python timeline.py EVENTS.json OUT.png [TITLE]

One row per member, time across; colour by power state and health; a band behind each batch (members
that went down together). Needs matplotlib (the bench installs it into .bench/venv-plot).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

COLOURS = {
    "running/healthy": "#4caf50",
    "running/initializing": "#ffc107",
    "running/unhealthy": "#e53935",
    "running/unknown": "#9e9e9e",
    "running": "#81c784",
    "stopping": "#ff7043",
    "stopped": "#b71c1c",
    "starting": "#42a5f5",
}
LABELS = {
    "running/healthy": "running, healthy",
    "running/initializing": "running, health initializing",
    "running/unhealthy": "running, unhealthy",
    "running": "running (no health report yet)",
    "stopping": "restarting: stopping",
    "stopped": "stopped",
    "starting": "restarting: starting",
}


def draw(events, out, title):
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    from matplotlib.patches import Patch  # pylint: disable=import-outside-toplevel

    segments = harness.timeline_segments(events)
    groups = harness.batches(segments)
    order = [name for group in groups for name in sorted(group["members"])]
    order += sorted(name for name in segments if name not in order)
    row = {name: index for index, name in enumerate(reversed(order))}
    figure, axis = plt.subplots(figsize=(13, 7.5), dpi=110)
    for number, group in enumerate(groups, 1):
        axis.axvspan(group["start"], group["end"], color="#e3f2fd" if number % 2 else "#ede7f6", zorder=0)
        axis.text((group["start"] + group["end"]) / 2.0, len(order) + 0.5, "batch %d\n%d members\n%.0f s" % (
            number, len(group["members"]), group["end"] - group["start"]), ha="center", va="bottom", fontsize=9)
    used = set()
    for name, pieces in segments.items():
        for begun, ended, state in pieces:
            if ended <= begun:
                continue
            used.add(state)
            axis.barh(row[name], ended - begun, left=begun, height=1.0, color=COLOURS.get(state, "#607d8b"),
                      linewidth=0, zorder=2)
    down = harness.max_down(segments)
    axis.set_ylim(-1, len(order) + 9)
    axis.set_yticks([])
    axis.set_ylabel("%d members, in batch order (top: first batch)" % len(order))
    axis.set_xlabel("seconds since the first state change")
    axis.set_title("%s: %d batches, at most %d members not running and healthy at once" % (title, len(groups), down))
    handles = [Patch(color=COLOURS[state], label=LABELS.get(state, state)) for state in COLOURS if state in used]
    axis.legend(handles=handles, loc="lower left", fontsize=9, framealpha=0.95)
    axis.grid(axis="x", color="#cccccc", linewidth=0.5, zorder=1)
    figure.tight_layout()
    figure.savefig(out)
    return {"batches": len(groups), "max_down": down, "members": len(order),
            "batch_seconds": [round(g["end"] - g["start"], 1) for g in groups]}


def main(argv):
    with open(argv[0], encoding="utf-8") as handle:
        events = json.load(handle)
    print(json.dumps(draw(events, argv[1], argv[2] if len(argv) > 2 else "Rolling restart")))


if __name__ == "__main__":
    main(sys.argv[1:])
