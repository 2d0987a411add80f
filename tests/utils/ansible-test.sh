#!/usr/bin/env bash
# Run ansible-test on this checkout, without Docker, reaching no network other than PyPI.
#
# Usage: tests/utils/ansible-test.sh COMMAND [ansible-test options and targets...]
#   COMMAND is an ansible-test command: sanity, units, ...
#   examples: tests/utils/ansible-test.sh sanity
#             tests/utils/ansible-test.sh sanity --test validate-modules plugins/
#             tests/utils/ansible-test.sh units tests/unit/plugins/module_utils/
#
# Environment:
#   ANSIBLE_TEST       ansible-test to run (default: .venv/bin/ansible-test of the checkout, else PATH)
#   PYTHON_VERSION     Python version ansible-test targets (default: 3.11)
#   ANSIBLE_TEST_ENVIRONMENT
#                      venv (default): run with --venv --python $PYTHON_VERSION (ansible-test builds its own
#                      virtual environments); local: run with --local --python $PYTHON_VERSION, in the
#                      environment of the ansible-test given (tests/integration/run.sh uses this, so that the
#                      modules run with that environment's Azure SDKs)
#   INTEGRATION_CONFIG_FILE
#                      integration only: the extra-vars file to use as tests/integration/integration_config.yml
#   KEEP_WORKDIR=1     keep the temporary collection tree for inspection
#
# What it does, and why:
# 1. ansible-test only runs from inside .../ansible_collections/<namespace>/<name>/, so the files of the
#    checkout (tracked and untracked, minus what .gitignore excludes) are copied into such a tree in a
#    temporary directory, and a git index is created there so that untracked files are tested too.
# 2. With --venv, ansible-test bootstraps pip in each virtual environment with a get-pip script it
#    downloads from a host this machine cannot reach. It first looks in its cache,
#    ~/.ansible/test/cache/get_pip_<version with underscores>.py, so a stand-in is put there: it runs
#    ensurepip, then "pip install" with the arguments ansible-test passes (minus --no-setuptools and
#    --no-wheel, which only get-pip understands). Everything else comes from PyPI.
# 3. ansible-test runs with --venv --python $PYTHON_VERSION (or --local, see ANSIBLE_TEST_ENVIRONMENT); its
#    output (junit, reports) is copied back to tests/output/ of the checkout.
# 4. For the integration command, the file named by INTEGRATION_CONFIG_FILE (written by
#    tests/integration/run.sh into its emulator's state directory, as it points at that one run) is copied
#    into the temporary tree as tests/integration/integration_config.yml, where ansible-test looks for it.
set -euo pipefail

COLLECTION_NAMESPACE=azure_flex
COLLECTION_NAME=vmss
PYTHON_VERSION=${PYTHON_VERSION:-3.11}
ANSIBLE_TEST_ENVIRONMENT=${ANSIBLE_TEST_ENVIRONMENT:-venv}
INTEGRATION_CONFIG=tests/integration/integration_config.yml

case "$ANSIBLE_TEST_ENVIRONMENT" in
    venv) environment_options=(--venv --python "$PYTHON_VERSION") ;;
    local) environment_options=(--local --python "$PYTHON_VERSION") ;;
    *) echo "ANSIBLE_TEST_ENVIRONMENT must be venv or local, not $ANSIBLE_TEST_ENVIRONMENT" >&2; exit 2 ;;
esac

if [ "$#" -lt 1 ]; then
    sed -n '2,18p' "$0" >&2
    exit 2
fi
command_name=$1
shift

checkout=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

find_ansible_test() {
    if [ -n "${ANSIBLE_TEST:-}" ]; then
        echo "$ANSIBLE_TEST"
    elif [ -x "$checkout/.venv/bin/ansible-test" ]; then
        echo "$checkout/.venv/bin/ansible-test"
    else
        command -v ansible-test || { echo "ansible-test not found; set ANSIBLE_TEST" >&2; exit 2; }
    fi
}

# The Python interpreter that runs ansible-test (its shebang), used to ask ansible-test which pip
# version it bootstraps, rather than hard-coding a version that changes between releases.
ansible_test_python() {
    local shebang
    shebang=$(head -n 1 "$1")
    shebang=${shebang#\#!}
    if [ -x "$shebang" ]; then echo "$shebang"; else command -v python3; fi
}

install_get_pip_stand_in() {
    local python=$1 pip_version cache_file
    pip_version=$("$python" -c '
import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="'"$PYTHON_VERSION"'"))["pip"])')
    cache_file="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
    if [ -f "$cache_file" ]; then
        return
    fi
    mkdir -p "$(dirname "$cache_file")"
    # Written to a temporary name and moved into place, so a concurrent run never reads half a file.
    cat > "$cache_file.$$" <<'PYTHON'
"""Stand-in for the get-pip.py script ansible-test downloads (that host is unreachable here).

Written by the azure_flex.vmss collection's tests/utils/ansible-test.sh. Installs pip with ensurepip,
then runs "pip install" with the given arguments, dropping the get-pip-only options.
"""
import subprocess
import sys

GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}


def main():
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
    arguments = [argument for argument in sys.argv[1:] if argument not in GET_PIP_ONLY_OPTIONS]
    sys.exit(subprocess.run([sys.executable, "-m", "pip", "install"] + arguments, check=False).returncode)


if __name__ == "__main__":
    main()
PYTHON
    mv -f "$cache_file.$$" "$cache_file"
    echo "Installed the get-pip stand-in for pip $pip_version: $cache_file"
}

# ansible-test creates ~/.ansible/test/id_rsa on first use, and two runs starting at once race for it
# (ssh-keygen asks "Overwrite (y/n)?" and fails). Create it here, once, under a lock, in the format
# ansible-test itself writes (PEM, with the RSA header paramiko expects).
ensure_ssh_key() {
    local directory="$HOME/.ansible/test"
    mkdir -p "$directory"
    (
        flock 9
        if [ ! -f "$directory/id_rsa" ] || [ ! -f "$directory/id_rsa.pub" ]; then
            rm -f "$directory/id_rsa" "$directory/id_rsa.pub"
            ssh-keygen -m PEM -q -t rsa -N '' -f "$directory/id_rsa"
            sed -i -E 's/(BEGIN|END) PRIVATE KEY/\1 RSA PRIVATE KEY/' "$directory/id_rsa"
        fi
    ) 9>"$directory/.id_rsa.lock"
}

# Print, NUL-separated, the checkout files to test: tracked plus untracked-but-not-ignored files.
# Local environments are excluded even if .gitignore does not mention them.
list_collection_files() {
    if git -C "$checkout" rev-parse --git-dir >/dev/null 2>&1; then
        git -C "$checkout" ls-files -z --cached --others --exclude-standard
    else
        (cd "$checkout" && find . -type f -print0 | sed -z 's#^\./##')
    fi | grep -zvE '^(\.git/|\.venv(-oldsdk)?/|\.emulator/|tests/output/|\.pytest_cache/)|(^|/)__pycache__/|\.py[co]$' \
       | while IFS= read -r -d '' path; do
             # skip files deleted from the work tree but still in the index
             if [ -e "$checkout/$path" ] || [ -L "$checkout/$path" ]; then printf '%s\0' "$path"; fi
         done
}

stage_collection() {
    local destination=$1
    mkdir -p "$destination"
    list_collection_files | tar -C "$checkout" --null -T - -cf - | tar -C "$destination" -xf -
    if command -v git >/dev/null 2>&1; then
        git -C "$destination" init -q
        git -C "$destination" add -A
    fi
}

ansible_test=$(find_ansible_test)
ensure_ssh_key
if [ "$ANSIBLE_TEST_ENVIRONMENT" = venv ]; then
    install_get_pip_stand_in "$(ansible_test_python "$ansible_test")"
fi

workdir=$(mktemp -d "${TMPDIR:-/tmp}/azure_flex_vmss_ansible_test.XXXXXX")
if [ "${KEEP_WORKDIR:-0}" = 1 ]; then
    echo "Keeping the temporary collection tree: $workdir"
else
    trap 'rm -rf "$workdir"' EXIT
fi
collection_dir="$workdir/ansible_collections/$COLLECTION_NAMESPACE/$COLLECTION_NAME"
stage_collection "$collection_dir"
if [ "$command_name" = integration ] && [ -n "${INTEGRATION_CONFIG_FILE:-}" ]; then
    cp "$INTEGRATION_CONFIG_FILE" "$collection_dir/$INTEGRATION_CONFIG"
fi

status=0
(cd "$collection_dir" && "$ansible_test" "$command_name" "${environment_options[@]}" --color no "$@") || status=$?

if [ -d "$collection_dir/tests/output" ]; then
    mkdir -p "$checkout/tests/output"
    cp -R "$collection_dir/tests/output/." "$checkout/tests/output/"
fi
exit "$status"
