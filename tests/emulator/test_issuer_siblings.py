"""Issuer siblings: a CA re-issued with the same subject and key (a new thumbprint), published at its AIA.

A leaf the CA signed verifies against either certificate, so a node may build its chain through either
(microsoft/service-fabric#1213; which one Windows picks is undocumented: the twin takes the pessimistic
reading). Pinning only one of them breaks the cluster, naming the unpinned sibling; pinning both converts.
Performed by hand through the SDK clients and the control API (docs/twin.md, "Issuer siblings").
"""

from __future__ import annotations

import ssl
import urllib.request
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

from aztwin import ControlError
from sfsteps import Step
from twinkit import Clients, world_json

CN = "sfcluster.contoso.com"
VAULT = "kv-sf-shared-key"


def _fetch(twin: Any, url: str) -> bytes:
    context = ssl.create_default_context(cafile=twin.ca_bundle)
    with urllib.request.urlopen(url, context=context, timeout=30) as response:
        body: bytes = response.read()
        return body


def test_pinning_one_of_two_same_key_issuers_breaks_the_conversion(twin_factory: Any) -> None:
    twin = twin_factory("issuer-shared-key")
    step = Step(Clients(twin), VAULT)
    sibling = step.authority("contoso-issuing-1-r2")
    with pytest.raises(HttpResponseError) as caught:
        step.convert("cluster-cert", CN, [step.authority("contoso-issuing-1")])
    message = str(caught.value)
    assert "ClusterUpgradeFailed" in message and "rolled back" in message
    assert sibling in message and "same subject and key" in message and "CERT_E_UNTRUSTEDROOT" in message
    after = world_json(twin)["cluster"]
    assert after["declaration"] == "thumbprint" and after["health"] == "Healthy"
    assert after["health_worst"] == "Broken" and sibling in after["health_worst_reasons"][0]


def test_pinning_both_same_key_issuers_converts(twin_factory: Any) -> None:
    twin = twin_factory("issuer-shared-key")
    step = Step(Clients(twin), VAULT)
    step.convert("cluster-cert", CN, [step.authority("contoso-issuing-1"), step.authority("contoso-issuing-1-r2")])
    after = world_json(twin)["cluster"]
    assert after["declaration"] == "common_name"
    assert after["health"] == after["health_worst"] == "Healthy", after["health_worst_reasons"]


def test_the_p7c_at_the_goals_aia_holds_both_certificates_and_the_cer_still_one(twin_factory: Any) -> None:
    twin = twin_factory("issuer-shared-key")
    step = Step(Clients(twin), VAULT)
    goal = x509.load_der_x509_certificate(bytes(step.certificate("cluster-cert").cer))
    aia = goal.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    urls = [d.access_location.value for d in aia]
    p7c = next(u for u in urls if u.endswith(".p7c"))
    cer = next(u for u in urls if u.endswith(".cer"))
    bundle = pkcs7.load_der_pkcs7_certificates(_fetch(twin, p7c))
    thumbprints = {c.fingerprint(_sha1()).hex().upper() for c in bundle}
    assert thumbprints == {step.authority("contoso-issuing-1"), step.authority("contoso-issuing-1-r2")}
    assert {c.subject for c in bundle} == {goal.issuer}
    assert len({c.public_key().public_numbers() for c in bundle}) == 1  # type: ignore[union-attr]
    single = x509.load_der_x509_certificate(_fetch(twin, cer))
    assert single.fingerprint(_sha1()).hex().upper() == step.authority("contoso-issuing-1")


def _sha1() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA1()


def test_a_reissue_published_after_the_migration_breaks_the_cluster(twin_factory: Any) -> None:
    """The control API: a converted cluster pinning only contoso-issuing-1 breaks once a re-issue is published."""
    twin = twin_factory("already-cn")
    control = twin.control()
    before = world_json(twin)["cluster"]
    assert before["health"] == "Healthy"
    answer = control.call("POST", "/_emulator/pki/reissue", {"name": "contoso-issuing-1-r2", "of": "contoso-issuing-1"})
    assert answer["subject"] == "Contoso Issuing CA 1" and answer["publishedWith"] == ["contoso-issuing-1"]
    after = world_json(twin)["cluster"]
    assert after["health"] == "Broken" and after["cluster_state"] == "UpgradeServiceUnreachable"
    assert answer["thumbprint"] in after["health_reasons"][0] and "same subject and key" in after["health_reasons"][0]
    pki = {a["name"]: a for a in world_json(twin)["pki"]}
    assert pki["contoso-issuing-1"]["publishedWith"] == ["contoso-issuing-1-r2"]
    with pytest.raises(ControlError) as caught:
        control.call("POST", "/_emulator/pki/reissue", {"name": "x-r3", "of": "no-such-ca"})
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "authority, where",
    [
        ({"subject": "Contoso Issuing CA 9", "issuer": "contoso-root", "reissueOf": "contoso-issuing-1"}, "pki[2].reissueOf"),
        ({"subject": "Contoso Issuing CA 1", "reissueOf": "contoso-issuing-1"}, "pki[2].reissueOf"),  # a root now
        ({"subject": "Contoso Issuing CA 1", "issuer": "contoso-root", "reissueOf": "later"}, "pki[2].reissueOf"),
        ({"subject": "Contoso Issuing CA 1", "issuer": "contoso-root", "reissueOf": "contoso-issuing-1",
          "reuseKeyOf": "contoso-issuing-1"}, "pki[2].reuseKeyOf"),
    ],
)
def test_a_reissue_in_a_scenario_file_keeps_subject_issuer_and_key(authority: dict[str, Any], where: str) -> None:
    import yaml

    from aztwin.scenario import ScenarioError, builtin_path, parse_scenario

    document = yaml.safe_load(builtin_path("issuer-shared-key").read_text(encoding="utf-8"))
    document["pki"][2] = {"name": "contoso-issuing-1-r9", **authority}
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(yaml.safe_dump(document), "bad.yaml")
    assert f"bad.yaml: {where}:" in str(caught.value)
