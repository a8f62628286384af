"""Discovery reads the public material a certificate names (AIA, CRL) once per URL, without credentials."""

from __future__ import annotations

from collections import Counter

from migrate import commands
from twinkit import inprocess_session, requests_json


def test_each_aia_and_crl_url_is_fetched_once_and_anonymously(twin_factory) -> None:
    twin = twin_factory("issuer-shared-key")  # AIA .cer and .p7c, and CRLs, for the goal and its issuing CA
    commands.plan(twin.plan_file, session=inprocess_session(twin))
    fetched = [r for r in requests_json(twin)["requests"] if r["path"].startswith("/_pki/")]
    counts = Counter(r["path"] for r in fetched)
    assert counts and all(n == 1 for n in counts.values()), counts
    assert {p.rsplit(".", 1)[-1] for p in counts} >= {"cer", "p7c", "crl"}
    assert all(r["caller"] is None for r in fetched)  # no token went with them
