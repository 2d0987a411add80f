"""Certificate service principals: azure-identity's CertificateCredential against the emulator's authority,
which checks the client assertion as Entra ID does (registered certificate, signature, claims, time range)."""

from __future__ import annotations

import base64
import datetime
import json
import time
import uuid

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from _support import RG

CLIENT_ID = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"


def make_certificate(common_name="azure-flex-test"):
    """A self-signed certificate and its key, as PEM: (public certificate, key + certificate)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert_pem.decode("ascii"), (key_pem + cert_pem), key, certificate


def credential(emu, tmp_path, key_and_cert):
    from azure.identity import CertificateCredential

    path = tmp_path / ("cert-%s.pem" % uuid.uuid4().hex)
    path.write_bytes(key_and_cert)
    return CertificateCredential(emu.env["AZURE_TENANT"], CLIENT_ID, str(path), authority=emu.url,
                                 disable_instance_discovery=True, connection_verify=emu.env["REQUESTS_CA_BUNDLE"])


def scope(emu):
    return "https://management.emulator.invalid//.default"


def test_a_registered_certificate_gets_a_token_that_arm_accepts(emu, sdk, tmp_path):
    public, key_and_cert, _key, _certificate = make_certificate()
    emu.control("PUT", "clients/%s" % CLIENT_ID, {"certificate": public})
    cred = credential(emu, tmp_path, key_and_cert)

    token = cred.get_token(scope(emu))

    from azure.mgmt.compute import ComputeManagementClient
    client = ComputeManagementClient(cred, sdk.subscription_id, **sdk.kwargs)
    assert token.token
    assert [vmss.name for vmss in client.virtual_machine_scale_sets.list(RG)]


def test_an_unregistered_certificate_is_refused_with_entras_code(emu, tmp_path):
    registered, _key_and_cert, _key, _certificate = make_certificate("registered")
    _other_public, other_key_and_cert, _other_key, _other = make_certificate("other")
    emu.control("PUT", "clients/%s" % CLIENT_ID, {"certificate": registered})

    with pytest.raises(ClientAuthenticationError) as caught:
        credential(emu, tmp_path, other_key_and_cert).get_token(scope(emu))

    assert "AADSTS700027" in str(caught.value)


def _assertion(key, certificate, claims, alg="RS256"):
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    header = {"alg": alg, "typ": "JWT", "x5t": b64(certificate.fingerprint(hashes.SHA1()))}  # nosec - Entra's x5t
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    scheme = padding.PKCS1v15() if alg == "RS256" else padding.PSS(padding.MGF1(hashes.SHA256()),
                                                                   padding.PSS.DIGEST_LENGTH)
    return signing_input + "." + b64(key.sign(signing_input.encode("ascii"), scheme, hashes.SHA256()))


def _post_assertion(emu, assertion):
    url = "%s/%s/oauth2/v2.0/token" % (emu.url, emu.env["AZURE_TENANT"])
    return requests.post(url, data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "scope": scope(emu),
                                    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                                    "client_assertion": assertion},
                         verify=emu.env["REQUESTS_CA_BUNDLE"], timeout=30)


@pytest.mark.parametrize("change, code", [
    ({}, None),
    ({"exp": -3600}, 700024),
    ({"iss": "someone-else"}, 700021),
    ({"aud": "https://login.example.invalid/other/oauth2/v2.0/token"}, 700212),
])
def test_the_assertion_claims_are_checked(emu, change, code):
    public, _key_and_cert, key, certificate = make_certificate()
    emu.control("PUT", "clients/%s" % CLIENT_ID, {"certificate": public})
    now = int(time.time())
    claims = {"iss": CLIENT_ID, "sub": CLIENT_ID, "jti": str(uuid.uuid4()), "nbf": now, "exp": now + 600,
              "aud": "%s/%s/oauth2/v2.0/token" % (emu.url, emu.env["AZURE_TENANT"])}
    for name, value in change.items():
        claims[name] = now + value if name == "exp" else value

    response = _post_assertion(emu, _assertion(key, certificate, claims))

    if code is None:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 401
        assert response.json()["error_codes"] == [code]


def test_a_signature_by_another_key_under_a_registered_thumbprint_is_refused(emu):
    public, _key_and_cert, _key, certificate = make_certificate()
    _other_public, _other_pair, other_key, _other_certificate = make_certificate("forger")
    emu.control("PUT", "clients/%s" % CLIENT_ID, {"certificate": public})
    now = int(time.time())
    claims = {"iss": CLIENT_ID, "sub": CLIENT_ID, "nbf": now, "exp": now + 600,
              "aud": "%s/%s/oauth2/v2.0/token" % (emu.url, emu.env["AZURE_TENANT"])}

    response = _post_assertion(emu, _assertion(other_key, certificate, claims))

    assert response.status_code == 401
    assert response.json()["error_codes"] == [700027]
