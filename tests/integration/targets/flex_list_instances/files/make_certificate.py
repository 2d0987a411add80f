# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write a self-signed certificate with its key (PEM) to DIRECTORY/NAME.pem; print the certificate and its
SHA-1 thumbprint as JSON. For the certificate service principal tests."""

from __future__ import annotations

import datetime
import json
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def main(directory, name):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    public = certificate.public_bytes(serialization.Encoding.PEM)
    path = os.path.join(directory, name + ".pem")
    with open(path, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()) + public)
    print(json.dumps({"path": path, "certificate": public.decode("ascii"),
                      "thumbprint": certificate.fingerprint(hashes.SHA1()).hex().upper()}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
