"""The job output of `make demo`, read as a new user reads it: a test.

    .venv/bin/python tests/bench/demo_output.py        (make demo-output; part of make test)

Runs `make demo` twice and checks what it prints:

1. the demo as it is (12 members, restart 4 s, health initializing 2 s): it succeeds, prints one line per batch
   and at most MAX_LINES lines in all, and none of FORBIDDEN;
2. the demo on tests/bench/demo_stop.yml, where one member reports unhealthy (health_timeout 3 s): the run stops
   after that member's batch, the stop's reason is printed with that batch's line at once, no later batch prints
   anything, the role fails naming the unhealthy member, and none of FORBIDDEN appears either.

Prints the line counts; exits 1 when a check fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORBIDDEN = ("FAILED - RETRYING", "Unknown error", "...ignoring")
MAX_LINES = 100
BATCH_LINE = re.compile(r"^batch (\d+)/(\d+) \(fault domain \d\): (restart |not run)")


def demo(*make_arguments):
    process = subprocess.run(["make", "--no-print-directory", "demo"] + list(make_arguments), cwd=CHECKOUT,
                             capture_output=True, text=True, check=False)
    return process.returncode, process.stdout + process.stderr


def check_common(name, output, failures):
    for word in FORBIDDEN:
        if word in output:
            failures.append("%s: the output contains %r" % (name, word))


def main():
    failures = []
    code, output = demo()
    lines = output.splitlines()
    batch_lines = [line for line in lines if BATCH_LINE.match(line)]
    check_common("demo", output, failures)
    if code != 0:
        failures.append("demo: make demo failed (rc %d)" % code)
    if len(lines) > MAX_LINES:
        failures.append("demo: %d lines, more than %d" % (len(lines), MAX_LINES))
    if [int(BATCH_LINE.match(line).group(1)) for line in batch_lines] != [1, 2, 3, 4, 5, 6]:
        failures.append("demo: not one line per batch: %s" % batch_lines)
    print("make demo: rc %d, %d lines, %d batch lines, forbidden strings: %s" % (
        code, len(lines), len(batch_lines), [word for word in FORBIDDEN if word in output] or "none"))

    stop_code, stop_output = demo("SCENARIO=tests/bench/demo_stop.yml", "DEMO_ARGS=-e rolling_restart_health_timeout=3")
    stop_lines = stop_output.splitlines()
    check_common("stop", stop_output, failures)
    stop_batches = [index for index, line in enumerate(stop_lines) if BATCH_LINE.match(line)]
    stopping = [index for index in stop_batches if "; STOP: after batch" in stop_lines[index]]
    if stop_code == 0:
        failures.append("stop: the role did not fail")
    if len(stopping) != 1:
        failures.append("stop: no single batch line says STOP: %s" % [stop_lines[i] for i in stop_batches])
    elif stop_batches[-1] != stopping[0]:
        failures.append("stop: a batch printed after the stop")
    elif "unhealthy: " not in stop_lines[stopping[0]]:
        failures.append("stop: the stopping batch's line does not name the unhealthy member")
    if not any("The rolling restart of web (run " in line and " stopped after batch " in line for line in stop_lines):
        failures.append("stop: the role's failure does not say why it stopped")
    print("make demo with one member unhealthy: rc %d, %d lines, stopped at: %s, forbidden strings: %s" % (
        stop_code, len(stop_lines), stop_lines[stopping[0]][:60] + "..." if stopping else "-",
        [word for word in FORBIDDEN if word in stop_output] or "none"))

    for failure in failures:
        print("FAIL " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
