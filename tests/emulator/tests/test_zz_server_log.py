"""Runs last (files are collected in name order): whatever the tests above did, the emulator process
never logged a traceback, never crashed an operation and never answered 5xx unless a fault asked it to."""

from __future__ import annotations


def test_the_server_log_is_clean(emulator):
    with open(emulator.log_path, encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    assert "Traceback" not in text, text[-4000:]
    assert "crashed" not in text and "unhandled error" not in text, text[-4000:]
    assert emulator.control("GET", "health")["status"] == "ok"
