#!/usr/bin/env bash
# The checkout holds only sources, and what Ansible runs is this checkout's code:
#   1. no tracked symbolic links (a committed link once made every clone run another checkout's code);
#   2. no tracked build outputs, virtual environments or emulator state;
#   3. build/collections/ansible_collections/azure_flex/vmss (made by `make collection`) resolves to this checkout,
#      and Ansible, with the ANSIBLE_COLLECTIONS_PATH the Makefile sets, imports the collection from here.
# Usage: tests/utils/check-tree.sh PYTHON   (the venv whose ansible-core to ask)
set -euo pipefail
checkout=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
python=$1
status=0
links=$(git -C "$checkout" ls-files -s | awk '$1 == "120000" {print $4}')
if [ -n "$links" ]; then
    echo "check-tree: tracked symbolic links: $links" >&2
    status=1
fi
outputs=$(git -C "$checkout" ls-files | grep -E '^(build|dist|\.cache|\.emulator|tests/output|\.venv[^/]*)/|(^|/)__pycache__/|\.py[co]$' || true)
if [ -n "$outputs" ]; then
    echo "check-tree: tracked build outputs: $outputs" >&2
    status=1
fi
link="$checkout/build/collections/ansible_collections/azure_flex/vmss"
if [ "$(cd "$link" 2>/dev/null && pwd -P)" != "$checkout" ]; then
    echo "check-tree: $link does not resolve to this checkout ($checkout); run make collection" >&2
    status=1
fi
imported=$(cd / && ANSIBLE_COLLECTIONS_PATH="$checkout/build/collections" "$python" -c '
import os
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
_AnsibleCollectionFinder(paths=[os.environ["ANSIBLE_COLLECTIONS_PATH"]])._install()
import ansible_collections.azure_flex.vmss.plugins.module_utils._clients as clients
print(os.path.realpath(clients.__file__))')
case "$imported" in
    "$checkout"/plugins/module_utils/_clients.py) ;;
    *) echo "check-tree: Ansible imports the collection from $imported, not from this checkout" >&2; status=1 ;;
esac
[ "$status" -eq 0 ] && echo "check-tree: sources only; Ansible runs this checkout ($checkout)"
exit "$status"
