#!/usr/bin/env bash
# Run the integration targets (tests/integration/targets/) against a fresh ARM emulator.
#
# Usage: tests/integration/run.sh PYTHON [ansible-test integration options and targets...]
#   PYTHON is the interpreter of the virtual environment to test with (.venv/bin/python for the newest
#   Azure SDKs, .venv-oldsdk/bin/python for the older set); its ansible-test runs the targets with
#   --local, so the modules import that environment's SDKs.
#   examples: tests/integration/run.sh .venv/bin/python
#             tests/integration/run.sh .venv/bin/python flex_list_instances
#             tests/integration/run.sh .venv-oldsdk/bin/python -vvv flex_instance_action
#
# What it does:
# 1. starts an emulator with that PYTHON (python -m armemu.launcher run, from tests/emulator), which runs
#    this script again (the inner step) in the emulator's environment and stops the emulator after it;
# 2. the inner step writes the integration config (extra vars) from that environment into the run's own
#    state directory, so that concurrent runs never share one: ansible-test passes the file to every
#    target as extra vars, and filters the environment, so the targets never see the AZURE_* variables;
# 3. runs ansible-test integration --local on a staged copy of the checkout (tests/utils/ansible-test.sh
#    with ANSIBLE_TEST_ENVIRONMENT=local and INTEGRATION_CONFIG_FILE pointing at that config).
# Exits non-zero when any target fails, and prints how long the run took.
set -euo pipefail

if [ "$#" -lt 1 ]; then
    sed -n '2,9p' "$0" >&2
    exit 2
fi

checkout=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
script="$checkout/tests/integration/run.sh"
python=$1
shift
case "$python" in
    /*) ;;
    *) python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")" ;;
esac
if [ ! -x "$python" ]; then
    echo "run.sh: $python is not an executable Python interpreter" >&2
    exit 2
fi

# -- inner step: runs inside the launcher, with the emulator's environment -------------------------
if [ "${AZURE_FLEX_INTEGRATION_INNER:-0}" = 1 ]; then
    config="$AZURE_FLEX_STATE_DIR/integration_config.yml"
    "$python" - "$config" <<'PYTHON'
"""Write the ansible-test integration config (extra vars) from the emulator's environment."""
import json
import os
import sys

VARIABLES = {
    "azure_cloud_environment": "AZURE_CLOUD_ENVIRONMENT",
    "azure_subscription_id": "AZURE_SUBSCRIPTION_ID",
    "azure_tenant": "AZURE_TENANT",
    "azure_client_id": "AZURE_CLIENT_ID",
    "azure_secret": "AZURE_SECRET",
    "azure_ca_bundle": "REQUESTS_CA_BUNDLE",
    "emulator_url": "AZURE_EMULATOR_URL",
}
with open(sys.argv[1], "w", encoding="utf-8") as handle:
    handle.write("# Written by tests/integration/run.sh for one emulator run; do not commit.\n")
    for name, variable in VARIABLES.items():
        handle.write("%s: %s\n" % (name, json.dumps(os.environ[variable])))
PYTHON
    python_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    ANSIBLE_TEST="$(dirname "$python")/ansible-test" \
        ANSIBLE_TEST_ENVIRONMENT=local \
        PYTHON_VERSION="$python_version" \
        INTEGRATION_CONFIG_FILE="$config" \
        exec "$checkout/tests/utils/ansible-test.sh" integration "$@"
fi

# -- outer step: start an emulator and run the inner step inside it ---------------------------------
started=$(date +%s)
sdk_versions=$("$python" -c '
from importlib.metadata import version
print(", ".join("%s %s" % (name, version(name)) for name in ("ansible-core", "azure-mgmt-compute", "azure-identity")))')
echo "run.sh: integration tests with $python ($sdk_versions)"

state_dir=$(mktemp -d "${TMPDIR:-/tmp}/azure_flex_vmss_emulator.XXXXXX")
# The config is written into the state directory: it points at this run's emulator only.
trap 'rm -rf "$state_dir"' EXIT

status=0
(cd "$checkout/tests/emulator" &&
    AZURE_FLEX_INTEGRATION_INNER=1 AZURE_FLEX_STATE_DIR="$state_dir" "$python" -m armemu.launcher run --state-dir "$state_dir" -- \
        "$script" "$python" "$@") || status=$?
if [ "$status" -ne 0 ] && [ -f "$state_dir/emulator.log" ]; then
    echo "run.sh: last lines of the emulator log:" >&2
    tail -n 20 "$state_dir/emulator.log" >&2
fi

elapsed=$(( $(date +%s) - started ))
if [ "$status" -eq 0 ]; then
    echo "run.sh: integration tests passed in ${elapsed} s ($python)"
else
    echo "run.sh: integration tests FAILED (exit $status) after ${elapsed} s ($python)" >&2
fi
exit "$status"
