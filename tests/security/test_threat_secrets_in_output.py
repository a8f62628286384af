"""Threat: secrets in output (issue 13, defect 4).

A SAS signature in the state connection string, a client secret, a PFX or a PEM private key that reaches
an error message must not reach stdout, stderr, ``##vso[task.complete]``, a report or the journal. One
function redacts all of them (``migrate.safe_output.redact``); these tests feed it each form an attacker
(or an unlucky log reader) would find, and run the blob-store failure that used to print the SAS.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from migrate.azure_devops import AzureDevOps, finish_apply
from migrate.errors import OperationalError
from migrate.journal.guard import find_secret, redact as journal_redact
from migrate.safe_output import redact, remember_secret

SIGNATURE = "Zm9vYmFyYmF6cXV4K3NlY3JldC9zaWduYXR1cmU9"  # what a SAS 'sig' looks like (base64)
CLIENT_SECRET = "Xq8~Q.secret-Value_0123456789abcdefghij"


@pytest.fixture(scope="module")
def key_material() -> tuple[str, str]:
    """A PEM private key and the base64 PFX holding it with its certificate (as a Key Vault secret holds it)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "secret.example")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(7)
            .not_valid_before(dt.datetime(2026, 1, 1)).not_valid_after(dt.datetime(2027, 1, 1)).sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    pfx = base64.b64encode(pkcs12.serialize_key_and_certificates(b"c", key, cert, None, serialization.NoEncryption())).decode()
    return pem, pfx


def _key_body(pem: str) -> str:
    return "".join(pem.strip().splitlines()[1:-1])


def test_sas_signature_plain_url_encoded_and_json_escaped_is_redacted() -> None:
    url = f"https://acct.blob.core.windows.net/state?sv=2022-11-02&sp=rwl&sig={quote(SIGNATURE, safe='')}"
    forms = [url, quote(url, safe=""), quote(quote(url, safe=""), safe=""), json.dumps({"u": url}).replace("=", "\\u003d")]
    for text in forms:
        out = redact(f"cannot reach {text}: refused")
        assert quote(SIGNATURE, safe="") not in out and SIGNATURE not in out, out
        assert "sv" in out  # the rest of the message survives


def test_client_secret_by_name_and_by_value_is_redacted() -> None:
    assert CLIENT_SECRET not in redact(f"grant_type=client_credentials&client_secret={quote(CLIENT_SECRET)}&scope=x")
    assert CLIENT_SECRET not in redact(json.dumps({"clientSecret": CLIENT_SECRET}))
    remember_secret(CLIENT_SECRET)  # what install() does with AZURE_CLIENT_SECRET
    assert CLIENT_SECRET not in redact(f"AADSTS7000215: Invalid client secret provided: {CLIENT_SECRET}")
    assert quote(CLIENT_SECRET, safe="") not in redact(f"body: {quote(CLIENT_SECRET, safe='')}")


def test_whole_pem_private_key_block_is_redacted_not_only_its_begin_line(key_material: tuple[str, str]) -> None:
    pem, _ = key_material
    body = _key_body(pem)
    for text in (pem, json.dumps({"value": pem}), " ".join(pem.split()), pem[: len(pem) // 2]):
        out = redact(f"secret value: {text} end")
        assert body[40:80] not in out and "PRIVATE KEY-----" not in out.replace("[private key ***]", ""), out
    assert find_secret(journal_redact({"last_error": f"boom {pem}"})) is None  # the journal takes the redacted text


def test_base64_pfx_blob_is_redacted_and_a_public_certificate_kept(key_material: tuple[str, str]) -> None:
    _, pfx = key_material
    out = redact(f"the secret's value was {pfx} (truncated: {pfx[:200]})")
    assert pfx[:64] not in out and pfx[100:160] not in out
    public = base64.b64encode(x509.load_der_x509_certificate(
        pkcs12.load_pkcs12(base64.b64decode(pfx), None).cert.certificate.public_bytes(serialization.Encoding.DER)).public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.DER)).decode()
    assert redact(public) == public  # public certificate material is not a secret


def test_task_complete_carries_the_redacted_line_not_str_exc(key_material: tuple[str, str]) -> None:
    pem, pfx = key_material
    stream = io.StringIO()
    error = OperationalError(f"cannot use container https://a.blob.core.windows.net/s?sv=1&sig={SIGNATURE}: key {pem} pfx {pfx}")
    finish_apply(AzureDevOps(stream), error=error)
    out = stream.getvalue()
    assert "##vso[task.complete result=Failed]" in out
    assert SIGNATURE not in out and _key_body(pem)[40:80] not in out and pfx[:64] not in out


def test_blob_state_with_sas_connection_string_that_fails_prints_no_signature(twin_factory: Any, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    env.update(twin.env)
    env["SFMIGRATE_STATE_CONNECTION_STRING"] = (  # a port nobody listens on: the store cannot be reached
        f"BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;SharedAccessSignature=sv=2022-11-02&ss=b&srt=co&sp=rwdlac&sig={quote(SIGNATURE, safe='')}")
    done = subprocess.run([sys.executable, "-m", "migrate", "apply", str(twin.plan_file), "--yes", "--ci", "azure-devops",
                           "--state", "blob:sfmigrate/state"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "##vso[task.complete result=Failed]" in done.stdout
    for text in (done.stdout, done.stderr):
        assert SIGNATURE not in text and quote(SIGNATURE, safe="") not in text, text
    assert "Traceback" not in done.stderr
