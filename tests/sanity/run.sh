#!/usr/bin/env bash
# Run ansible-test sanity on this checkout (no Docker, no ignore files). Extra arguments are passed to
# ansible-test, for example: tests/sanity/run.sh --test pep8 plugins/
# See tests/utils/ansible-test.sh for how the checkout is staged and how pip is bootstrapped offline.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../utils/ansible-test.sh" sanity "$@"
