"""Key Vault certificate writes through Microsoft's certificate SDK (docs/twin.md, "Key Vault certificate
writes"): import with the private key, create by policy issuer (Self at once, Unknown pending with a CSR, merge),
attribute updates; new versions reach the nodes as renewals do. Outcomes read from ``/_emulator/world`` and the
vault's own answers.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.certificates import CertificateContentType, CertificatePolicy, CertificateClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import NoEncryption, pkcs12

from sfsteps import Step
from twinkit import Clients, world_json

CN = "sfcluster.contoso.com"
VAULT = "kv-sf-basic"
ALL = ["get", "list", "update", "create", "import", "delete"]


def _client(twin: Any, permissions: list[str] | None = None, vault: str = VAULT) -> CertificateClient:
    """The operator's certificate client, after the vault grants it ``permissions`` on certificates."""
    from azure.mgmt.keyvault.models import AccessPolicyEntry, Permissions, VaultAccessPolicyParameters, VaultAccessPolicyProperties

    clients = Clients(twin)
    operator = world_json(twin)["principals"][0]
    entry = AccessPolicyEntry(tenant_id=operator["tenantId"], object_id=operator["objectId"], permissions=Permissions(certificates=permissions or ALL))
    clients.keyvault.vaults.update_access_policy("rg-sf", vault, "replace", VaultAccessPolicyParameters(properties=VaultAccessPolicyProperties(access_policies=[entry])))
    client: CertificateClient = clients.certificates(clients.keyvault.vaults.get("rg-sf", vault).properties.vault_uri)
    return client


def _versions(twin: Any, name: str) -> list[dict[str, Any]]:
    vault = next(v for v in world_json(twin)["vaults"] if v["name"] == VAULT)
    versions: list[dict[str, Any]] = next(c for c in vault["certificates"] if c["name"] == name)["versions"]
    return versions


def _pfx(twin: Any, issuer: str | None = "contoso-issuing-1", with_key: bool = True, password: bytes | None = None) -> tuple[bytes, str]:
    now = twin.world.now()
    issued = twin.world.pki.issue_leaf("operator", CN, now - dt.timedelta(hours=1), now + dt.timedelta(days=365), issuer=issuer, sans=[CN])
    encryption = serialization.BestAvailableEncryption(password) if password else NoEncryption()
    blob = pkcs12.serialize_key_and_certificates(b"goal", issued.key if with_key else None, issued.cert, None, encryption)
    return blob, issued.thumbprint


def test_an_imported_pfx_is_a_new_version_the_nodes_then_install(twin: Any) -> None:
    step = Step(Clients(twin), VAULT)
    identity = step.create_identity()
    step.grant_secrets(identity)
    step.install_kv_extension(identity, ["cluster-cert"], CN)
    client = _client(twin)
    blob, thumbprint = _pfx(twin, password=b"pw")
    imported = client.import_certificate("cluster-cert", blob, password="pw")
    assert imported.properties.x509_thumbprint.hex().upper() == thumbprint
    versions = _versions(twin, "cluster-cert")
    assert len(versions) == 2 and versions[-1]["thumbprint"] == thumbprint and versions[-1]["issuer"] == "contoso-issuing-1"
    twin.control().advance_clock(7200)  # the extension's next poll
    nodes = world_json(twin)["scale_sets"][0]["instances"]
    assert all(any(c["thumbprint"] == thumbprint and c["source"] == "kv-extension" for c in n["certificates"]) for n in nodes)


def test_an_import_without_its_private_key_or_with_a_wrong_password_is_refused(twin: Any) -> None:
    client = _client(twin)
    blob, _ = _pfx(twin, with_key=False)
    with pytest.raises(HttpResponseError) as keyless:
        client.import_certificate("cluster-cert", blob)
    locked, _ = _pfx(twin, password=b"right")
    with pytest.raises(HttpResponseError) as wrong:
        client.import_certificate("cluster-cert", locked, password="wrong")
    assert keyless.value.status_code == wrong.value.status_code == 400
    assert "private key" in str(keyless.value) and "PKCS#12" in str(wrong.value)
    assert len(_versions(twin, "cluster-cert")) == 1


def test_writes_need_their_own_permission(twin: Any) -> None:
    client = _client(twin, ["get", "list"])
    blob, _ = _pfx(twin)
    with pytest.raises(HttpResponseError) as refused:
        client.import_certificate("cluster-cert", blob)
    assert refused.value.status_code == 403 and "certificates import permission" in str(refused.value)


def test_create_with_issuer_self_issues_a_self_signed_version_at_once(twin: Any) -> None:
    client = _client(twin)
    policy = CertificatePolicy(issuer_name="Self", subject="CN=selfmade.contoso.com", san_dns_names=["selfmade.contoso.com"], validity_in_months=6)
    created = client.begin_create_certificate("selfmade", policy).result()
    versions = _versions(twin, "selfmade")
    assert len(versions) == 1 and versions[0]["issuer"] == "self" and versions[0]["subject"] == "CN=selfmade.contoso.com"
    assert created.properties.x509_thumbprint.hex().upper() == versions[0]["thumbprint"]
    assert client.get_certificate_operation("selfmade").status == "completed"


def test_create_with_issuer_unknown_leaves_a_csr_to_merge_and_keeps_the_key_in_the_vault(twin: Any) -> None:
    client = _client(twin)
    policy = client.get_certificate_policy("cluster-cert")
    assert policy.issuer_name == "Unknown"
    client.begin_create_certificate("cluster-cert", policy)
    operation = client.get_certificate_operation("cluster-cert")
    assert operation.status == "inProgress" and operation.csr and len(_versions(twin, "cluster-cert")) == 1
    with pytest.raises(HttpResponseError) as again:
        client.begin_create_certificate("cluster-cert", policy)
    assert again.value.status_code == 409
    csr = x509.load_der_x509_csr(operation.csr)
    assert csr.subject.rfc4514_string() == f"CN={CN}" and csr.is_signature_valid
    ca = twin.world.pki.authority("contoso-issuing-1")  # the external CA signs the request
    now = twin.world.now()
    signed = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca.cert.subject).public_key(csr.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=90))
              .sign(ca.key, hashes.SHA256()))
    merged = client.merge_certificate("cluster-cert", [signed.public_bytes(serialization.Encoding.DER)])
    assert merged.properties.x509_thumbprint == signed.fingerprint(hashes.SHA1())
    assert _versions(twin, "cluster-cert")[-1]["issuer"] == "contoso-issuing-1"
    assert client.get_certificate_operation("cluster-cert").status == "completed"


def test_a_named_ca_issuer_stays_pending(twin: Any) -> None:
    client = _client(twin)
    policy = CertificatePolicy(issuer_name="DigiCert", subject=f"CN={CN}")
    client.begin_create_certificate("from-digicert", policy)
    assert client.get_certificate_operation("from-digicert").status == "inProgress"
    assert "from-digicert" not in {c["name"] for v in world_json(twin)["vaults"] for c in v["certificates"]}


def test_making_keys_exportable_never_exposes_an_older_versions_key(twin_factory: Any) -> None:
    twin = twin_factory("not-exportable")
    goal = world_json(twin)["goal"]
    vault, name = goal["vault"].split("/")[-1], goal["certificate"]
    client = _client(twin, vault=vault)
    old = client.get_certificate(name)
    assert client.get_certificate_policy(name).exportable is False
    blob, _ = _pfx(twin)
    policy = CertificatePolicy(issuer_name="Unknown", subject=f"CN={CN}", exportable=True, content_type=CertificateContentType.pkcs12)
    client.import_certificate(name, blob, policy=policy)
    assert client.get_certificate_policy(name).exportable is True
    certificate = twin.world.keyvault.named(vault).certificate(name)
    old_version = certificate.version(old.properties.version)
    assert certificate.key_exportable(certificate.versions[-1]) and not certificate.key_exportable(old_version)
    secret = base64.b64decode(twin.world.keyvault.secret_value(certificate, old_version))
    assert x509.load_der_x509_certificate(secret)  # the old version's secret is still its public part only


def test_set_attributes_disables_and_enables_a_version(twin: Any) -> None:
    client = _client(twin)
    version = client.get_certificate("cluster-cert").properties.version
    client.update_certificate_properties("cluster-cert", version, enabled=False)
    assert _versions(twin, "cluster-cert")[0]["enabled"] is False
    updated = client.update_certificate_properties("cluster-cert", version, enabled=True, tags={"owner": "ops"})
    assert updated.properties.enabled is True and updated.properties.tags == {"owner": "ops"}
    assert _versions(twin, "cluster-cert")[0]["enabled"] is True
