#!/usr/bin/env bash
# The shared execution environment matrix entry: azure.azcollection's requirements and this collection's in
# ONE virtual environment, installed by one pip command as ansible-builder does for an execution environment.
# Checks that azure.azcollection's lock support still works there (its ManagementLockClient.models call and a
# lock round trip at its API version against the emulator) and runs this collection's lock integration
# target in the same environment.
#
# Usage: tests/shared_env/run.sh PYTHON   (the interpreter of that venv; `make integration-shared` builds it)
set -euo pipefail
checkout=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
python=$1
started=$(date +%s)
echo "shared_env: $("$python" -c '
from importlib.metadata import version
print(", ".join("%s %s" % (n, version(n)) for n in ("ansible-core", "azure-mgmt-resource", "azure-mgmt-compute", "azure-core")))')"
(cd "$checkout/tests/emulator" &&
    AZURE_FLEX_COLLECTIONS_PATH="$checkout/build/collections" \
    "$python" -m armemu.launcher run -- "$python" -m pytest -q -p no:cacheprovider "$checkout/tests/shared_env")
"$checkout/tests/integration/run.sh" "$python" flex_instance_lock
echo "shared_env: passed in $(( $(date +%s) - started )) s"
