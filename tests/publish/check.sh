#!/usr/bin/env bash
# What publishing needs, checked on the built collection (the `publish-check` make target):
#   1. stage the checkout's files as ansible_collections/azure_flex/vmss and write its docsite from docs/*.md;
#   2. antsibull-changelog lint; antsibull-docs lint-collection-docs (plugin docs and the guides);
#   3. antsibull-docs renders the collection, the guides included;
#   4. ansible-galaxy collection build, then galaxy-importer on the tarball (its container and ansible-test
#      steps off, everything else on) must pass without an error or a warning;
#   5. ansible-builder create on the shipped v3 execution-environment definition.
# Usage: tests/publish/check.sh PUBLISH_VENV_BIN [OUTPUT_DIR]   (OUTPUT_DIR keeps the tarball; default: temporary)
set -euo pipefail
checkout=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=$1
output=${2:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/azure_flex_vmss_publish.XXXXXX")
trap 'rm -rf "$work"' EXIT
export PATH="$bin:$PATH"
collection="$work/ansible_collections/azure_flex/vmss"

echo "publish: staging the collection"
"$checkout/tests/publish/stage.sh" "$collection"

echo "publish: antsibull-changelog lint"
(cd "$collection" && antsibull-changelog lint)

echo "publish: antsibull-docs lint-collection-docs"
(cd "$collection" && ANSIBLE_COLLECTIONS_PATH="$work" antsibull-docs lint-collection-docs --plugin-docs .)

echo "publish: antsibull-docs renders the collection"
mkdir -m 0755 "$work/rendered"
ANSIBLE_COLLECTIONS_PATH="$work" antsibull-docs collection --use-current --dest-dir "$work/rendered" azure_flex.vmss \
    >"$work/antsibull-docs.log" 2>&1 || { cat "$work/antsibull-docs.log"; exit 1; }
rendered="$work/rendered/collections/azure_flex/vmss"
for guide in "$collection"/docs/docsite/rst/*.rst; do
    name=$(basename "$guide")
    test -s "$rendered/docsite/$name" || { echo "publish: guide $name was not rendered" >&2; exit 1; }
done
grep -q "docsite/rolling" "$rendered/index.rst" || { echo "publish: the collection index does not list the guides" >&2; exit 1; }
echo "publish: rendered $(find "$rendered/docsite" -maxdepth 1 -name '*.rst' | wc -l) guide(s) and $(find "$rendered" -maxdepth 1 -name '*_module.rst' | wc -l) module page(s)"

echo "publish: ansible-galaxy collection build"
mkdir -p "$work/dist"
(cd "$collection" && ansible-galaxy collection build --output-path "$work/dist" . >"$work/build.log" 2>&1) \
    || { cat "$work/build.log"; exit 1; }
if grep -qi "warning" "$work/build.log"; then cat "$work/build.log"; echo "publish: the build warned" >&2; exit 1; fi
tarball=$(ls "$work"/dist/*.tar.gz)
if tar -tzf "$tarball" | grep -E '(^|/)(\.venv|\.venv-[^/]*|build|\.emulator|tests/emulator|\.cache)/' | head -n 1 | grep -q .; then
    echo "publish: the tarball holds development files:" >&2
    tar -tzf "$tarball" | grep -E '(^|/)(\.venv|\.venv-[^/]*|build|\.emulator|tests/emulator|\.cache)/' | head >&2
    exit 1
fi

echo "publish: galaxy-importer"
(cd "$work" && GALAXY_IMPORTER_CONFIG="$checkout/tests/publish/galaxy-importer.cfg" \
    python -m galaxy_importer.main "$tarball" >"$work/importer.log" 2>&1) || { cat "$work/importer.log"; exit 1; }
# galaxy-importer runs flake8 over plugins/, YAML files included: the documentation files of filter plugins
# (plugins/filter/*.yml, the only place ansible-doc reads filter docs from) are not Python. That one false
# finding is allowed, and so is W503 (line break before a binary operator), which PEP 8 recommends since 2016
# and flake8 itself ignores by default (galaxy-importer's own flake8 settings turn it on). Any other error or
# warning fails the check.
if grep -E "^(ERROR|WARNING)" "$work/importer.log" \
        | grep -vE "^WARNING: plugins/filter/[a-z_]+\.yml:[0-9]+:[0-9]+: E999 " \
        | grep -vE "^WARNING: [^ ]+\.py:[0-9]+:[0-9]+: W503 line break before binary operator$"; then
    echo "publish: galaxy-importer reported the lines above" >&2
    exit 1
fi
grep -q "Importer processing completed successfully" "$work/importer.log"

echo "publish: ansible-builder create"
ansible-builder create -f "$collection/meta/ee/execution-environment.yml" --context "$work/ee-context" >"$work/builder.log" 2>&1 \
    || { cat "$work/builder.log"; exit 1; }
grep -q "azure_flex.vmss" "$work/ee-context/_build/requirements.yml"

if [ -n "$output" ]; then
    mkdir -p "$output"
    cp "$tarball" "$output/"
    echo "publish: $(basename "$tarball") written to $output"
fi
echo "publish: all checks passed"
