"""Issuer siblings in the product's pure parts: reading CA bundles, and a goal version from another pinned CA.

``certificates_in`` reads what an AIA URL or ``goal.issuerCertificates`` holds (a certificate, several PEM
certificates, a PKCS#7 ``.p7c`` bundle). ``goal_equivalent`` counts a version of the goal certificate whose
every possible direct issuer is pinned as the goal (no TWO_OLD, no extra cluster upgrade).
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from migrate.planner import goal_equivalent
from migrate.x509 import certificates_in
from snapshots import GOAL_NAME, NOW, known, leaf, pki, product_facts, world


def _issuers() -> list:
    return [pki().authority("issuing"), pki().authority("issuing2")]


def test_certificates_in_reads_der_pem_and_pkcs7_bundles() -> None:
    one, two = _issuers()
    assert certificates_in(one.der) == [one.der]
    assert certificates_in((one.pem + two.pem).encode()) == [one.der, two.der]
    for encoding in (Encoding.DER, Encoding.PEM):  # a PKCS#7 SET OF certificates has no order
        assert sorted(certificates_in(pkcs7.serialize_certificates([one.cert, two.cert], encoding))) == sorted([one.der, two.der])
    with pytest.raises(ValueError):
        certificates_in(b"<html>not found</html>")


def _renewed_world(name: str = GOAL_NAME):  # type: ignore[no-untyped-def]
    """The cluster declares an earlier version of the goal issued by Contoso Issuing CA 2 (the goal: CA 1)."""
    snapshot = world()
    earlier = leaf("goal-from-ca2", issuer="issuing2", valid_from_days=-100)
    snapshot.known_certificates[earlier.thumbprint] = known(earlier, name, "0" * 32)
    snapshot.possible_issuers[earlier.thumbprint] = [product_facts(pki().authority("issuing2"))]
    assert snapshot.goal is not None
    return snapshot, earlier.thumbprint, snapshot.goal.facts.thumbprint


def test_a_goal_version_from_another_pinned_ca_counts_as_the_goal() -> None:
    snapshot, earlier, goal = _renewed_world()
    both = [pki().authority("issuing").thumbprint, pki().authority("issuing2").thumbprint]
    assert goal_equivalent(snapshot, earlier, goal, both)
    assert goal_equivalent(snapshot, earlier, goal, [t.lower() for t in both])  # thumbprints compare case-insensitively


def test_a_goal_version_from_another_ca_does_not_count_unless_every_possible_issuer_is_pinned() -> None:
    snapshot, earlier, goal = _renewed_world()
    only_ca1 = [pki().authority("issuing").thumbprint]
    assert not goal_equivalent(snapshot, earlier, goal, only_ca1)
    assert not goal_equivalent(snapshot, earlier, goal)  # no pinned issuers: as before
    # a same-key re-issue of CA 2 seen at AIA and not pinned: a node may chain through it
    sibling = product_facts(pki().reissue("issuing2-r2", "issuing2", NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=900)))
    snapshot.possible_issuers[earlier].append(sibling)
    both = [pki().authority("issuing").thumbprint, pki().authority("issuing2").thumbprint]
    assert not goal_equivalent(snapshot, earlier, goal, both)
    assert goal_equivalent(snapshot, earlier, goal, both + [sibling.thumbprint])
    # an unknown issuer (nothing seen) never counts
    snapshot.possible_issuers[earlier] = []
    assert not goal_equivalent(snapshot, earlier, goal, both)


def test_another_certificate_with_the_goals_cn_from_a_pinned_ca_is_not_a_version_of_the_goal() -> None:
    snapshot, earlier, goal = _renewed_world(name="some-other-certificate")
    both = [pki().authority("issuing").thumbprint, pki().authority("issuing2").thumbprint]
    assert not goal_equivalent(snapshot, earlier, goal, both)
