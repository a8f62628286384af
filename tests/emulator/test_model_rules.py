"""DESIGN §2 as pure functions: presentation, validation, the verdict, and SFRP's declaration rules.

No HTTP and no world here: certificates from a small PKI, nodes as ``NodeView``s, and the functions the
twin's Service Fabric model calls (``verdict.evaluate``, ``declaration.validate_transition``).
"""

from __future__ import annotations

import datetime as dt

import pytest

from aztwin.pki import Pki
from aztwin.providers.compute.guest import InstalledCert, _link_renewals, ordered_extensions, parse_kv_settings, sf_check
from aztwin.providers.servicefabric.declaration import (
    COMMON_NAME, THUMBPRINT, CommonNameRule, Declaration, selects_by_not_after, validate_certificate_properties,
    validate_transition,
)
from aztwin.providers.servicefabric.precheck import domain_problems
from aztwin.providers.servicefabric.verdict import NodeView, accepts, evaluate, present
from aztwin.wire import TwinError

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)
CN = "sfcluster.contoso.com"


@pytest.fixture(scope="module")
def pki() -> Pki:
    pki = Pki()
    pki.create_authority("root", "Contoso Root CA", NOW - 3650 * DAY, NOW + 3650 * DAY)
    pki.create_authority("ica1", "Contoso Issuing CA 1", NOW - 700 * DAY, NOW + 1000 * DAY, issuer="root")
    pki.create_authority("ica2", "Contoso Issuing CA 2", NOW - 700 * DAY, NOW + 1000 * DAY, issuer="root")
    pki.create_authority("rogue-root", "Rogue Root CA", NOW - 700 * DAY, NOW + 1000 * DAY)
    pki.create_authority("rogue-ica", "Rogue Issuing CA", NOW - 700 * DAY, NOW + 1000 * DAY, issuer="rogue-root")
    return pki


@pytest.fixture(scope="module")
def trusted(pki: Pki) -> set[str]:
    return {pki.authority("root").thumbprint}  # rogue-root is not in the nodes' Trusted Root store


_counter = iter(range(10_000))


def leaf(pki: Pki, cn: str = CN, *, issuer: str | None = "ica1", nb: float = -10, days: float = 365,
         sans: list[str] | None = None, key: bool = True, provider: str = "CAPI") -> InstalledCert:
    not_before = NOW + nb * DAY
    issued = pki.issue_leaf(f"leaf-{next(_counter)}", cn, not_before, not_before + days * DAY, issuer=issuer, sans=sans)
    return InstalledCert(issued.thumbprint, issued, "preinstalled", "", NOW.isoformat(), has_private_key=key, key_provider=provider)


def tp(*certs: InstalledCert) -> Declaration:
    return Declaration(THUMBPRINT, tuple(c.thumbprint for c in certs))


def cn(name: str = CN, *issuers: str) -> Declaration:
    return Declaration(COMMON_NAME, common_names=(CommonNameRule(name, tuple(issuers)),))


def node(name: str, store: list[InstalledCert], presentation: Declaration, validation: Declaration | None = None, ud: int = 0) -> NodeView:
    return NodeView(name, "nt0", ud, store, presentation, (validation or presentation).validation())


def cluster_of(store: list[InstalledCert], presentation: Declaration, validation: Declaration | None = None, n: int = 3) -> list[NodeView]:
    return [node(f"nt0_{i}", store, presentation, validation, i) for i in range(n)]


# -- presentation ------------------------------------------------------------------------------------
def test_newest_not_before_is_presented(pki: Pki, trusted: set[str]) -> None:
    # DESIGN §2: among matching certificates, the latest NotBefore wins (7.2 CU4+).
    older, newer = leaf(pki, nb=-100, days=1000), leaf(pki, nb=-10, days=365)
    for declaration in (cn(CN, pki.authority("ica1").thumbprint), tp(older, newer)):
        verdict = evaluate(cluster_of([older, newer], declaration), NOW, False, trusted)
        assert verdict.healthy, verdict.reasons
        assert set(verdict.presented.values()) == {newer.thumbprint}


def test_runtimes_before_7_2_cu4_present_the_farthest_not_after(pki: Pki, trusted: set[str]) -> None:
    # research §1.1 NOTE: before 7.2.445 replace NotBefore with NotAfter.
    long_lived, newer = leaf(pki, nb=-100, days=1000), leaf(pki, nb=-10, days=365)
    view = node("n", [long_lived, newer], tp(long_lived, newer))
    assert present(view, NOW, by_not_after=True).cert is long_lived
    assert present(view, NOW, by_not_after=False).cert is newer
    assert selects_by_not_after("7.2.432.9590") and selects_by_not_after("6.5.676.9590")
    assert not selects_by_not_after("7.2.445.9590") and not selects_by_not_after("10.1.2493.9590")


def test_expired_certificates_are_ignored(pki: Pki, trusted: set[str]) -> None:
    valid, expired_newer = leaf(pki, nb=-300, days=365), leaf(pki, nb=-200, days=100)
    assert present(node("n", [valid, expired_newer], tp(valid, expired_newer)), NOW, False).cert is valid
    only_expired = evaluate(cluster_of([expired_newer], tp(expired_newer)), NOW, False, trusted)
    assert not only_expired.healthy and "expired" in only_expired.reasons[0]


def test_presentation_matches_the_common_name_exactly_and_case_sensitively(pki: Pki) -> None:
    cert = leaf(pki, CN)
    assert present(node("n", [cert], cn(CN)), NOW, False).cert is cert
    for wrong in ("SFCluster.contoso.com", f"CN={CN}", "*.contoso.com"):
        presented = present(node("n", [cert], cn(wrong)), NOW, False)
        assert presented.cert is None and "not installed" in presented.reason, wrong


def test_validation_matches_the_common_name_case_insensitively(pki: Pki, trusted: set[str]) -> None:
    cert, ica1 = leaf(pki, CN), pki.authority("ica1").thumbprint
    for declared in ("SFCLUSTER.CONTOSO.COM", CN, "*.contoso.com"):
        ok, why = accepts(cn(declared, ica1).validation(), cert, NOW, trusted)
        assert ok, (declared, why)
    assert not accepts(cn("other.contoso.com", ica1).validation(), cert, NOW, trusted)[0]


def test_a_certificate_without_its_private_key_cannot_be_presented(pki: Pki) -> None:
    cert = leaf(pki, key=False)
    presented = present(node("n", [cert], tp(cert)), NOW, False)
    assert presented.cert is None and "private key" in presented.reason


# -- validation: issuer pinning ------------------------------------------------------------------------
def test_an_unpinned_direct_issuer_is_rejected_even_with_a_trusted_root(pki: Pki, trusted: set[str]) -> None:
    # research §1.2: with issuers listed, only the *direct* issuer counts, "whether the root is trusted or not".
    from_ica2 = leaf(pki, issuer="ica2")
    ok, why = accepts(cn(CN, pki.authority("ica1").thumbprint).validation(), from_ica2, NOW, trusted)
    assert not ok and "not among the pinned issuers" in why and "CERT_E_UNTRUSTEDROOT" in why
    ok, why = accepts(cn(CN, pki.authority("root").thumbprint).validation(), leaf(pki, issuer="ica1"), NOW, trusted)
    assert not ok and "direct issuer" in why  # pinning the root is not pinning the issuer


def test_a_pinned_issuer_is_accepted_even_under_an_untrusted_root(pki: Pki, trusted: set[str]) -> None:
    rogue = leaf(pki, issuer="rogue-ica")
    assert accepts(cn(CN, pki.authority("rogue-ica").thumbprint).validation(), rogue, NOW, trusted)[0]


def test_an_empty_pin_list_falls_back_to_chain_trust(pki: Pki, trusted: set[str]) -> None:
    empty = cn(CN).validation()
    assert accepts(empty, leaf(pki, issuer="ica2"), NOW, trusted)[0]
    ok, why = accepts(empty, leaf(pki, issuer="rogue-ica"), NOW, trusted)
    assert not ok and "trusted root" in why
    assert not accepts(empty, leaf(pki, issuer=None), NOW, trusted)[0]  # self-signed: no chain to trust


def test_a_self_signed_certificate_pinned_to_itself_is_accepted(pki: Pki, trusted: set[str]) -> None:
    # research §1.1: for tests only, "only if the issuer is pinned to its own thumbprint".
    cert = leaf(pki, issuer=None)
    assert accepts(cn(CN, cert.thumbprint).validation(), cert, NOW, trusted)[0]


def test_every_pair_of_nodes_must_authenticate_each_other(pki: Pki, trusted: set[str]) -> None:
    old, goal = leaf(pki, "old.contoso.com", issuer=None, nb=-200), leaf(pki, nb=-5)
    store = [old, goal]
    switched = node("nt0_0", store, cn(CN, pki.authority("ica1").thumbprint), ud=0)  # presents and accepts CN only
    behind = node("nt0_1", store, tp(old), ud=1)  # presents and accepts the old thumbprint only
    verdict = evaluate([switched, behind], NOW, False, trusted)
    assert not verdict.healthy
    assert any("node nt0_1 rejects" in r and "presented by node nt0_0" in r for r in verdict.reasons)
    assert any("node nt0_0 rejects" in r and "presented by node nt0_1" in r for r in verdict.reasons)
    # The phased path: validation holds both while presentation switches (research §1.4).
    both = tp(old).validation().union(cn(CN, pki.authority("ica1").thumbprint).validation())
    phased = [NodeView("nt0_0", "nt0", 0, store, switched.presentation, both), NodeView("nt0_1", "nt0", 1, store, behind.presentation, both)]
    assert evaluate(phased, NOW, False, trusted).healthy


# -- hazards on the node: linkOnRenewal and CNG ---------------------------------------------------------
def test_link_on_renewal_follows_san_containment_and_hijacks_presentation(pki: Pki, trusted: set[str]) -> None:
    # seed 003: A's SANs are all in C's, so A.renewal = C; B's only intersect, so B stays unlinked.
    alice = leaf(pki, "Alice's accessories", sans=["alice.universalexports.com"])
    bob = leaf(pki, "Bob's bits", sans=["bob.universalexports.com", "bob.universalexports.net"])
    mallory = leaf(pki, "Mallory's malware", issuer="rogue-ica", sans=["alice.universalexports.com", "bob.universalexports.com", "mallory.universalexports.com"])

    class _Instance:
        store = [alice, bob]

    _link_renewals(_Instance, mallory)
    assert alice.linked_to == mallory.thumbprint and bob.linked_to is None
    store = [alice, bob, mallory]
    verdict = evaluate(cluster_of(store, tp(alice)), NOW, False, trusted)
    assert not verdict.healthy and set(verdict.presented.values()) == {mallory.thumbprint}
    assert "linkOnRenewal" in verdict.reasons[0] and alice.thumbprint in verdict.reasons[0]


def test_a_cng_key_from_extension_4_is_unusable(pki: Pki, trusted: set[str]) -> None:
    cert = leaf(pki, provider="CNG")
    verdict = evaluate(cluster_of([cert], tp(cert)), NOW, False, trusted)
    assert not verdict.healthy and "NTE_BAD_PROV_TYPE" in verdict.reasons[0]


def test_extension_4_always_links_and_requires_the_initial_sync() -> None:
    def extension(kind: str, version: str, **management: object) -> dict:
        settings = {"secretsManagementSettings": {"observedCertificates": ["https://kv/secrets/c"], **management}}
        return {"name": "kv", "properties": {"type": kind, "typeHandlerVersion": version, "settings": settings}}

    v3 = parse_kv_settings(extension("KeyVaultForWindows", "3.0", linkOnRenewal=False, requireInitialSync=False))
    v4 = parse_kv_settings(extension("KeyVaultForWindows", "4.0", linkOnRenewal=False, requireInitialSync=False))
    linux4 = parse_kv_settings(extension("KeyVaultForLinux", "4.0"))
    assert not isinstance(v3, str) and not isinstance(v4, str) and not isinstance(linux4, str)
    assert (v3.link_on_renewal, v3.require_initial_sync) == (False, False)
    assert (v4.link_on_renewal, v4.require_initial_sync) == (True, True)  # research §3.1: "Linking always occurs"
    assert not linux4.link_on_renewal  # "Not available on Linux"


# -- the Service Fabric node extension ----------------------------------------------------------------
def test_service_fabric_extension_needs_its_declared_certificate(pki: Pki) -> None:
    cert = leaf(pki)

    class _Instance:
        store = [cert]
        waagent_removed: dict[str, str] = {}

        class scale_set:  # a Windows VM (the Linux rules: tests/emulator/test_linux_nodes.py)
            os = "windows"

        @staticmethod
        def installed(thumbprint: str) -> InstalledCert | None:
            return cert if thumbprint.upper() == cert.thumbprint else None

    class _World:
        @staticmethod
        def now() -> dt.datetime:
            return NOW

    def check(certificate: object) -> str | None:
        return sf_check(_World, _Instance, {"properties": {"settings": {"certificate": certificate}}})

    assert check({"thumbprint": cert.thumbprint, "x509StoreName": "My"}) is None
    assert check({"commonNames": [CN], "x509StoreName": "My"}) is None
    assert "FindByThumbprint" in (check({"thumbprint": "AB" * 20, "x509StoreName": "My"}) or "")
    assert "FindBySubjectName' 'CN=" in (check({"commonNames": [f"CN={CN}"], "x509StoreName": "My"}) or "")
    assert "must be an array" in (check({"commonNames": CN, "x509StoreName": "My"}) or "")


def test_provision_after_extensions_orders_extensions() -> None:
    kv = {"name": "KVVMExtension", "properties": {"type": "KeyVaultForWindows"}}
    sf_after = {"name": "SF", "properties": {"type": "ServiceFabricNode", "provisionAfterExtensions": ["KVVMExtension"]}}
    sf_alone = {"name": "SF", "properties": {"type": "ServiceFabricNode"}}
    assert [e["name"] for e in ordered_extensions({"extensionProfile": {"extensions": [sf_after, kv]}})] == ["KVVMExtension", "SF"]
    # Without provisionAfterExtensions there is no ordering guarantee: the twin runs SF first (worst case).
    assert [e["name"] for e in ordered_extensions({"extensionProfile": {"extensions": [kv, sf_alone]}})] == ["SF", "KVVMExtension"]


# -- SFRP's declaration rules -------------------------------------------------------------------------
A, B, C, D = ("A" * 40, "B" * 40, "C" * 40, "D" * 40)


@pytest.mark.parametrize(
    "old, new, code",
    [
        ((A, B), (C, D), "TwoCertificatesToTwoCertificatesNotAllowed"),
        ((A, B), (A, C), "AddAndRemoveCertificateNotAllowed"),
        ((A,), (B,), "CertificateUpdateNotRolling"),
        ((A,), (B, C), "CertificateUpgradeWithNoIntersectionNotAllowed"),
        ((A, B), (C,), "CertificateUpgradeWithNoIntersectionNotAllowed"),
        ((A,), (A, B), None),
        ((A, B), (B,), None),
        ((A, B), (B, A), None),
    ],
)
def test_thumbprint_transitions(old: tuple[str, ...], new: tuple[str, ...], code: str | None) -> None:
    if code is None:
        validate_transition(Declaration(THUMBPRINT, old), Declaration(THUMBPRINT, new))
        return
    with pytest.raises(TwinError) as caught:
        validate_transition(Declaration(THUMBPRINT, old), Declaration(THUMBPRINT, new))
    assert caught.value.code == code


def test_common_name_transitions() -> None:
    validate_transition(Declaration(THUMBPRINT, (A,)), cn(CN, B))  # a type change skips the count rules (§7.2)
    validate_transition(cn(CN, A), cn(CN, A, B))
    with pytest.raises(TwinError) as caught:
        validate_transition(cn(CN, A), cn(CN, B))
    assert caught.value.code == "IssuerThumbprintUpgradeWithNoIntersection"
    with pytest.raises(TwinError) as caught:
        validate_transition(cn(CN, A), Declaration("none"))
    assert caught.value.code == "AuthenticationTypeCannotBeChangedByRemovingCertificate"


def _names(*entries: tuple[str, str]) -> dict:
    return {"commonNames": [{"certificateCommonName": n, "certificateIssuerThumbprint": i} for n, i in entries], "x509StoreName": "My"}


@pytest.mark.parametrize(
    "properties, code",
    [
        ({"certificate": {"thumbprint": A}, "certificateCommonNames": _names((CN, A))}, "InvalidCommonNameThumbprintPair"),
        ({"certificate": {"thumbprint": "33:41:" + "A" * 34}}, "InvalidCertificateThumbprint"),
        ({"certificate": {"thumbprint": A, "thumbprintSecondary": A.lower()}}, "InvalidCertificateThumbprint"),
        ({"certificateCommonNames": _names((CN, A), ("b.contoso.com", A), ("c.contoso.com", A))}, "InvalidCommonNameCount"),
        ({"certificateCommonNames": _names((CN, A), (CN.upper(), A))}, "DupeCommonNameNotAllowedForClusterCert"),
        ({"certificateCommonNames": _names(("", A))}, "InvalidCommonName"),
        ({"certificateCommonNames": _names((CN, f"{A};{B}"))}, "InvalidCertificateIssuerThumbprints"),
        ({"certificateCommonNames": _names((CN, f"{A},{A.lower()}"))}, "InvalidCertificateIssuerThumbprints"),
        ({"certificateCommonNames": _names((CN, "not-hex"))}, "InvalidCertificateIssuerThumbprints"),
        ({"certificateCommonNames": _names((CN, f"{A}, {B}"))}, None),
        ({"certificateCommonNames": _names((CN, ""))}, None),
    ],
)
def test_declaration_syntax(properties: dict, code: str | None) -> None:
    if code is None:
        validate_certificate_properties(properties)
        return
    with pytest.raises(TwinError) as caught:
        validate_certificate_properties(properties)
    assert caught.value.code == code


# -- an upgrade domain's health check against its nodes (the walk fails, then rolls back) ----------------------
def _precheck_code(views: list[NodeView], old: Declaration, new: Declaration) -> str | None:
    """The rule a domain of ``views`` fails the upgrade by, in the first phase where it fails; None if none."""
    for phase in ("add-to-validation-list", "switch-presentation", "trim-validation-list"):
        problems = domain_problems(views, NOW, "10.1.2493.9590", old, new, phase)
        if problems:
            return "install before declaring" if "install before declaring" in problems[0] else "goal by thumbprint first"
    return None


def test_precheck_install_before_declaring(pki: Pki) -> None:
    # A certificate the new declaration adds must be installed and usable on every node.
    current, goal, expired = leaf(pki, "old.contoso.com"), leaf(pki), leaf(pki, nb=-400, days=100)
    nodes = [node("nt0_0", [current, goal], tp(current)), node("nt0_1", [current], tp(current), ud=1)]
    assert _precheck_code(nodes, tp(current), tp(current, goal)) == "install before declaring"
    assert _precheck_code(cluster_of([current, goal], tp(current)), tp(current), tp(current, goal)) is None
    assert _precheck_code(cluster_of([current, expired], tp(current)), tp(current), tp(current, expired)) == "install before declaring"
    assert _precheck_code(cluster_of([current], tp(current)), tp(current), cn(CN)) == "install before declaring"


def test_precheck_converts_to_common_name_only_from_the_goal_presented_by_thumbprint(pki: Pki) -> None:
    # research/sf_migration.md §1.1: the goal is in the cluster by thumbprint, and presented, before the CN upgrade.
    # Presentation picks the latest NotBefore among the declared certificates (DESIGN §2).
    current, goal = leaf(pki, "old.contoso.com", nb=-10), leaf(pki, nb=-5)
    target = cn(CN, pki.authority("ica1").thumbprint)
    assert _precheck_code(cluster_of([current, goal], tp(current)), tp(current), target) == "goal by thumbprint first"
    assert _precheck_code(cluster_of([current, goal], tp(current, goal)), tp(current, goal), target) is None
    assert _precheck_code(cluster_of([current, goal], tp(goal)), tp(goal), target) is None
    older_goal = leaf(pki, nb=-20)  # Old + secondary Goal, but Old is newer: Old is presented
    assert _precheck_code(cluster_of([current, older_goal], tp(current, older_goal)), tp(current, older_goal), target) == "goal by thumbprint first"
