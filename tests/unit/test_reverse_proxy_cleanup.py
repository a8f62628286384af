"""The cleanup keeps every certificate the reverse proxy declares by thumbprint (pure planner, issue 11).

A migrated cluster whose reverse proxy still declares version 0 of the goal by thumbprint; the goal has since
been renewed, from another (pinned) issuing CA, so version 0 is no longer "another version of the goal" by the
latest version's issuer. The cleanup must keep version 0's VMSS secret (a reimaged node gets only what the model
delivers), and still drop what the reverse proxy does not declare.
"""

from __future__ import annotations

from typing import Any

from snapshots import (
    CLUSTER_ID, GOAL_CN, GOAL_NAME, IDENTITY_ID, NOW, SUB, VAULT_ID, goal_view, known, leaf, pki, plan, secret_url,
    world,
)

from migrate.discovery import cluster_view, node_type_view
from migrate.planner import make_plan
from migrate.snapshot import Snapshot
from migrate.transforms import swap_to_kv_extension

V0, V1, V2 = "0" * 31 + "a", "0" * 31 + "b", "0" * 31 + "c"
ENDPOINT = f"https://westeurope.servicefabric.azure.com/runtime/clusters/{SUB}"


def _issuers() -> list[str]:
    return [pki().authority("issuing").thumbprint, pki().authority("issuing2").thumbprint]


def _versions() -> dict[str, Any]:
    """v0 and v1 from Contoso Issuing CA 1, v2 (the latest) from Contoso Issuing CA 2."""
    return {V0: leaf("rp-v0", valid_from_days=-300), V1: leaf("rp-v1", valid_from_days=-100), V2: leaf("rp-v2", issuer="issuing2", valid_from_days=-1)}


def _scale_set(secret_versions: list[str]) -> dict[str, Any]:
    """nt0 as the migration left it: the Key Vault extension observes the goal, the SF extension goes by common name,
    and the goal's versioned secrets are still in the model."""
    spec = plan()
    raw = {
        "id": f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/nt0", "name": "nt0",
        "location": "westeurope", "sku": {"capacity": 3},
        "properties": {"upgradePolicy": {"mode": "Automatic"}, "virtualMachineProfile": {
            "osProfile": {"windowsConfiguration": {}, "secrets": [{"sourceVault": {"id": VAULT_ID}, "vaultCertificates": [
                {"certificateUrl": secret_url(GOAL_NAME, v), "certificateStore": "My"} for v in secret_versions]}]},
            "extensionProfile": {"extensions": [{"name": "nt0_ServiceFabricNode", "properties": {
                "publisher": "Microsoft.Azure.ServiceFabric", "type": "ServiceFabricNode", "typeHandlerVersion": "1.1",
                "settings": {"clusterEndpoint": ENDPOINT, "nodeTypeRef": "nt0", "certificate": {"thumbprint": "X", "x509StoreName": "My"}},
            }}]},
        }},
    }
    return swap_to_kv_extension(raw, identity_id=IDENTITY_ID, client_id="client", observed_url=secret_url(GOAL_NAME),
                                common_name=GOAL_CN, kv=spec.keyVaultExtension)


def _migrated(reverse_proxy: dict[str, str], secret_versions: list[str]) -> Snapshot:
    versions = _versions()
    snapshot = world(goal=goal_view(versions[V2], version=V2, secret_id=secret_url(GOAL_NAME, V2)))
    snapshot.cluster = cluster_view({"id": CLUSTER_ID, "name": "sfprod-weu", "location": "westeurope", "properties": {
        "clusterState": "Ready", "provisioningState": "Succeeded", "clusterCodeVersion": "10.1.2493.9590", "clusterEndpoint": ENDPOINT,
        "certificateCommonNames": {"commonNames": [{"certificateCommonName": GOAL_CN, "certificateIssuerThumbprint": ",".join(_issuers())}],
                                   "x509StoreName": "My"},
        "reverseProxyCertificate": {**reverse_proxy, "x509StoreName": "My"}, "nodeTypes": [{"name": "nt0"}],
    }})
    snapshot.node_types = [node_type_view(_scale_set(secret_versions), [
        {"instanceId": str(i), "name": f"nt0_{i}", "properties": {"latestModelApplied": True, "provisioningState": "Succeeded"}}
        for i in range(3)])]
    snapshot.known_certificates = {cert.thumbprint: known(cert, GOAL_NAME, version) for version, cert in versions.items()}
    return snapshot


def _cleanup_urls(snapshot: Snapshot) -> list[str]:
    result = make_plan(snapshot, plan(goal={"pinnedIssuers": _issuers()}, cleanup={"removeOldSecrets": True}), NOW, checks=lambda *_: [])
    assert result.starting_state == "ALREADY_COMMON_NAME"
    assert all(s.kind == "cleanup_secrets" for s in result.steps), [s.name for s in result.steps]  # converged otherwise
    return [u for s in result.steps for u in s.params_dict()["urls"]]


def test_a_renewal_from_another_issuer_keeps_the_version_the_reverse_proxy_declares() -> None:
    v0 = _versions()[V0].thumbprint
    assert _cleanup_urls(_migrated({"thumbprint": v0}, [V0])) == []  # was: the secret removed, osProfile.secrets emptied


def test_the_cleanup_drops_only_the_goal_versions_the_reverse_proxy_does_not_declare() -> None:
    v0 = _versions()[V0].thumbprint
    assert _cleanup_urls(_migrated({"thumbprint": v0}, [V0, V1])) == [secret_url(GOAL_NAME, V1)]


def test_the_reverse_proxy_secondary_is_kept_too() -> None:
    versions = _versions()
    urls = _cleanup_urls(_migrated({"thumbprint": versions[V1].thumbprint, "thumbprintSecondary": versions[V0].thumbprint}, [V0, V1]))
    assert urls == []


def test_a_secret_of_unknown_certificate_stays_while_a_declared_thumbprint_is_unmatched() -> None:
    snapshot = _migrated({"thumbprint": _versions()[V0].thumbprint}, [V0, V1])
    snapshot.known_certificates = {t: k for t, k in snapshot.known_certificates.items() if k.version == V2}  # v0, v1 unread
    assert _cleanup_urls(snapshot) == []


def test_without_a_reverse_proxy_the_goal_versions_are_cleaned_up() -> None:
    snapshot = _migrated({"thumbprint": "F" * 40}, [V0, V1])  # declares a certificate delivered some other way
    assert _cleanup_urls(snapshot) == [secret_url(GOAL_NAME, V0), secret_url(GOAL_NAME, V1)]
