#!/usr/bin/env bash
# Copy the checkout's sources (tracked and untracked-but-not-ignored files) to DEST and write the docsite there.
# Usage: tests/publish/stage.sh DEST   (DEST is .../ansible_collections/azure_flex/vmss; the docsite needs pandoc,
# from the publish venv on PATH)
set -euo pipefail
checkout=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dest=$1
mkdir -p "$dest"
git -C "$checkout" ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' path; do if [ -e "$checkout/$path" ]; then printf '%s\0' "$path"; fi; done \
    | tar -C "$checkout" --null -T - -cf - | tar -C "$dest" -xf -
python "$checkout/tests/publish/docsite.py" "$dest"
