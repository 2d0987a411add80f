"""Run a command; write its wall time, exit status and peak memory (largest process of its tree) as JSON.

    python measure.py OUT.json -- COMMAND ARGS...

Peak memory is ``ru_maxrss`` of the waited-for children, which covers grandchildren that their parents
waited for (ansible-playbook's module processes), measured in a process of its own so that earlier runs
do not count.
"""

import json
import resource
import subprocess
import sys
import time


def main(argv):
    out, separator, command = argv[0], argv[1], argv[2:]
    if separator != "--" or not command:
        raise SystemExit("usage: measure.py OUT.json -- COMMAND ...")
    started = time.monotonic()
    completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    elapsed = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "w", encoding="utf-8") as handle:
        json.dump({"seconds": elapsed, "rc": completed.returncode, "maxrss_kb": usage.ru_maxrss,
                   "output": completed.stdout.decode("utf-8", "replace")[-20000:]}, handle)


if __name__ == "__main__":
    main(sys.argv[1:])
