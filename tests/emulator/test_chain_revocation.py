"""Chain building and revocation: certificates validated by common name need their CRL; thumbprints do not.

cluster-security-certificates: for common-name declarations "revocation errors, partial chain or
time-invalid trust errors are considered fatal". Each test performs the conversion by hand through the SDK
(tests/emulator/sfsteps.py) in a world whose PKI endpoints are unreachable, or whose goal is revoked, and
reads the outcome through ``/_emulator/world`` (docs/twin.md, "Chain building and revocation").
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Callable

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from aztwin.providers.servicefabric.chain import ChainPolicy, chain_problem, policy_for
from aztwin.pki import Pki
from sfsteps import Step
from test_doc_table import derived as derived_from
from twinkit import Clients, world_json

CN = "sfcluster.contoso.com"
VAULT = "kv-sf-goal-primary"
RELAXED = {"Security": {"IgnoreCrlOfflineError": "true"}}


def derived(tmp_path: Path, name: str, edit: Callable[[dict[str, Any]], None], base: str = "goal-primary") -> Path:
    return derived_from(tmp_path, base, name, edit)


def offline(fabric_settings: dict[str, dict[str, str]] | None = None) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        document["pkiEndpoints"] = "unreachable"
        if fabric_settings:
            document["clusters"][0]["fabricSettings"] = fabric_settings

    return edit


def convert(twin: Any) -> dict[str, Any]:
    """Identity, access, Key Vault extension, then the cluster by common name with the issuer pinned."""
    step = Step(Clients(twin), VAULT)
    try:
        step.convert("cluster-cert", CN, [step.authority("contoso-issuing-1")])
    except HttpResponseError:
        pass  # a rolled-back upgrade fails the operation; the verdict says why
    cluster: dict[str, Any] = world_json(twin)["cluster"]
    return cluster


def reasons(cluster: dict[str, Any]) -> str:
    return " | ".join(cluster["health_worst_reasons"])


def test_unreachable_crl_breaks_a_conversion_to_common_name(twin_factory: Any, tmp_path: Path) -> None:
    twin = twin_factory(None, scenario_file=derived(tmp_path, "pki-offline-hand", offline()))
    assert world_json(twin)["cluster"]["health"] == "Healthy"  # by thumbprint, revocation was never needed
    cluster = convert(twin)
    assert cluster["health_worst"] == "Broken"
    assert "cannot check revocation" in reasons(cluster) and "CRYPT_E_REVOCATION_OFFLINE" in reasons(cluster)
    assert "/_pki/contoso-issuing-1.crl" in reasons(cluster)


def test_ignore_crl_offline_error_keeps_the_conversion_healthy(twin_factory: Any, tmp_path: Path) -> None:
    twin = twin_factory(None, scenario_file=derived(tmp_path, "pki-offline-relaxed", offline(RELAXED)))
    cluster = convert(twin)
    assert cluster["declaration"] == "common_name"
    assert cluster["health"] == cluster["health_worst"] == "Healthy", reasons(cluster)


def test_crl_checking_flag_zero_keeps_the_conversion_healthy(twin_factory: Any, tmp_path: Path) -> None:
    twin = twin_factory(None, scenario_file=derived(tmp_path, "pki-offline-noflag", offline({"Security": {"CrlCheckingFlag": "0"}})))
    cluster = convert(twin)
    assert cluster["declaration"] == "common_name" and cluster["health_worst"] == "Healthy", reasons(cluster)


def test_thumbprint_declarations_do_not_need_the_pki(twin_factory: Any, tmp_path: Path) -> None:
    twin = twin_factory(None, scenario_file=derived(tmp_path, "pki-offline-thumbprint", offline()))
    control = twin.control()
    control.call("POST", "/_emulator/pki/endpoints", {"reachable": True})
    control.call("POST", "/_emulator/pki/endpoints", {"reachable": False})
    control.advance_clock(3600)
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "thumbprint" and cluster["health_worst"] == "Healthy"


def test_the_pki_going_offline_after_the_conversion_breaks_the_cluster(twin_factory: Any) -> None:
    twin = twin_factory("goal-primary")
    assert convert(twin)["health_worst"] == "Healthy"
    answer = twin.control().call("POST", "/_emulator/pki/endpoints", {"reachable": False})
    assert answer == {"reachable": False}
    cluster = world_json(twin)["cluster"]
    assert cluster["health"] == "Broken" and "CRYPT_E_REVOCATION_OFFLINE" in " ".join(cluster["health_reasons"])


def test_a_revoked_goal_is_rejected_once_declared_by_common_name(twin_factory: Any) -> None:
    twin = twin_factory("goal-primary")
    goal = Step(Clients(twin), VAULT).thumbprint("cluster-cert")
    answer = twin.control().call("POST", "/_emulator/pki/revoke", {"thumbprint": goal})
    assert answer["thumbprint"] == goal and answer["issuer"] == "contoso-issuing-1"
    assert world_json(twin)["cluster"]["health"] == "Healthy"  # by thumbprint: no revocation check
    cluster = convert(twin)
    assert cluster["health_worst"] == "Broken" and "CRYPT_E_REVOKED" in reasons(cluster)


def test_the_crl_is_served_signed_and_lists_revoked_certificates(twin_factory: Any) -> None:
    twin = twin_factory("goal-primary")
    goal = Step(Clients(twin), VAULT).certificate("cluster-cert")
    leaf = x509.load_der_x509_certificate(bytes(goal.cer))
    points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    url = str(points[0].full_name[0].value)  # type: ignore[index]
    assert url == f"{twin.base_url}/_pki/contoso-issuing-1.crl"
    issuer_url = f"{twin.base_url}/_pki/contoso-issuing-1.cer"
    issuer = x509.load_der_x509_certificate(requests.get(issuer_url, verify=twin.ca_bundle, timeout=10).content)
    crl = x509.load_der_x509_crl(requests.get(url, verify=twin.ca_bundle, timeout=10).content)
    assert crl.is_signature_valid(issuer.public_key()) and len(crl) == 0  # type: ignore[arg-type]
    twin.control().call("POST", "/_emulator/pki/revoke", {"thumbprint": leaf.fingerprint(hashes.SHA1()).hex()})
    crl = x509.load_der_x509_crl(requests.get(url, verify=twin.ca_bundle, timeout=10).content)
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    twin.control().call("POST", "/_emulator/pki/endpoints", {"reachable": False})
    assert requests.get(url, verify=twin.ca_bundle, timeout=10).status_code == 504  # no caller reaches it
    assert requests.get(issuer_url, verify=twin.ca_bundle, timeout=10).status_code == 504


def test_bad_control_bodies_are_rejected(twin_factory: Any) -> None:
    from aztwin.control_client import ControlError

    control = twin_factory("goal-primary").control()
    with pytest.raises(ControlError) as bad:
        control.call("POST", "/_emulator/pki/endpoints", {"reachable": "no"})
    assert bad.value.status == 400
    with pytest.raises(ControlError) as unknown:
        control.call("POST", "/_emulator/pki/revoke", {"thumbprint": "00" * 20})
    assert unknown.value.status == 404


def test_partial_chain_without_installed_intermediates_and_without_aia() -> None:
    """The chain rule itself: an intermediate neither installed nor reachable at AIA is a partial chain."""
    now = dt.datetime.now(dt.timezone.utc)
    pki = Pki("https://twin.example")
    pki.create_authority("root", "Root", now - dt.timedelta(days=10), now + dt.timedelta(days=900))
    pki.create_authority("issuing", "Issuing", now - dt.timedelta(days=10), now + dt.timedelta(days=900), issuer="root")
    leaf = pki.issue_leaf("leaf", CN, now - dt.timedelta(days=1), now + dt.timedelta(days=90), issuer="issuing")
    assert chain_problem(leaf, now, ChainPolicy(pki_reachable=False, intermediates_installed=True, ignore_crl_offline_error=True)) is None
    partial = chain_problem(leaf, now, ChainPolicy(pki_reachable=False, intermediates_installed=False, ignore_crl_offline_error=True))
    assert partial and "CERT_E_CHAINING" in partial and "https://twin.example/_pki/issuing.cer" in partial
    assert chain_problem(leaf, now, ChainPolicy(pki_reachable=True, intermediates_installed=False)) is None
    expired_ca = chain_problem(leaf, now + dt.timedelta(days=1000), ChainPolicy())
    assert expired_ca and "CERT_E_EXPIRED" in expired_ca
    linux = policy_for({"vmImage": "Linux"}, False, [])
    assert linux.crl_checking_flag == 0 and chain_problem(leaf, now, linux) is None
    windows = policy_for({"vmImage": "Windows", "fabricSettings": [{"name": "Security", "parameters": [
        {"name": "CrlCheckingFlag", "value": "0x10000000"}]}]}, False, [])
    assert windows.crl_checking_flag == 0x10000000
    offline_leaf = chain_problem(leaf, now, windows)
    assert offline_leaf and leaf.thumbprint in offline_leaf  # END_CERT: the leaf alone is checked
