"""A reduced but real run of bench/capacity.py: a big Flex set, concurrent LROs, Resource Graph latency."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))

import capacity  # noqa: E402


@pytest.mark.capacity
def test_capacity_reduced(emulator):
    lines = []
    rows, failures = capacity.run(vms=1100, concurrent=50, duration=0.5, queries=10, emulator=emulator,
                                  out=lines.append)
    print("\n".join(lines))
    assert failures == [], "\n".join(lines)
    measures = [row[0] for row in rows]
    assert measures[0] == "reset to 1100 VMs"
    assert "50 concurrent restarts" in measures
    # Leave the shared emulator as the other tests expect it.
    emulator.reset()
