# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fetch azure.azcollection, unmodified, as users get it: inside the `ansible` package from PyPI.

Galaxy is not reachable from these machines, PyPI is; the `ansible` package ships azure.azcollection
with its own requirements file. Used by the shared execution environment matrix entry
(tests/shared_env) and by the benchmark's peer.

  azcollection.py requirements OUT     write azure.azcollection's requirements.txt to OUT
  azcollection.py collection DEST      extract the collection to DEST/ansible_collections/azure/azcollection
  azcollection.py version              print the azure.azcollection version

The wheel is downloaded once into AZCOLLECTION_CACHE (default: .cache/azcollection of the checkout).
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import zipfile

# The newest `ansible` major release that installs on Python 3.11 (13 needs ansible-core 2.20, Python 3.12).
ANSIBLE_PACKAGE = os.environ.get("AZCOLLECTION_ANSIBLE_PACKAGE", "ansible>=12,<13")
PREFIX = "ansible_collections/azure/azcollection/"
CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def wheel_path():
    cache = os.environ.get("AZCOLLECTION_CACHE") or os.path.join(CHECKOUT, ".cache", "azcollection")
    found = sorted(glob.glob(os.path.join(cache, "ansible-*.whl")))
    if found:
        return found[-1]
    os.makedirs(cache, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                    "--dest", cache, ANSIBLE_PACKAGE], check=True)
    found = sorted(glob.glob(os.path.join(cache, "ansible-*.whl")))
    if not found:
        raise SystemExit("pip download of %s left no wheel in %s" % (ANSIBLE_PACKAGE, cache))
    return found[-1]


def main(argv):
    if len(argv) < 1 or argv[0] not in ("requirements", "collection", "version"):
        print(__doc__, file=sys.stderr)
        return 2
    with zipfile.ZipFile(wheel_path()) as wheel:
        if argv[0] == "version":
            print(json.loads(wheel.read(PREFIX + "MANIFEST.json"))["collection_info"]["version"])
        elif argv[0] == "requirements":
            with open(argv[1], "wb") as handle:
                handle.write(wheel.read(PREFIX + "requirements.txt"))
        else:
            members = [name for name in wheel.namelist() if name.startswith(PREFIX)]
            wheel.extractall(argv[1], members)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
