"""Threat: someone who can write the saved plan artifact (``plan --out``) between review and ``apply`` edits a step's
parameters, e.g. ``grant-vault-access`` to grant Owner, while ``show`` still tells the reviewer a harmless story.
Defence (issue 13, defect 2; docs/security.md "Saved plans"): ``apply`` re-plans and refuses, with zero mutating
requests, unless the steps and their parameters equal the saved ones; the role granted comes from the code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from twinkit import requests_json, world_json

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "migrate", *args], env=env, capture_output=True, text=True, timeout=300)


def _grant(document: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in document["plan"]["steps"] if s["kind"] == "grant_vault_access")


def _owner_role(document: dict[str, Any]) -> None:
    _grant(document)["params"]["role"] = OWNER


def _other_identity(document: dict[str, Any]) -> None:
    params = _grant(document)["params"]
    params["identity_id"] = params["identity_id"].rsplit("/", 1)[0] + "/attacker-identity"


def _access_policy_instead(document: dict[str, Any]) -> None:
    params = _grant(document)["params"]
    params.update(rbac=False, role=None, tenant_id="00000000-0000-0000-0000-00000000beef")


def _misleading_title(document: dict[str, Any]) -> None:
    _grant(document)["title"] = "access policy: secrets get, list"


def _dropped_step(document: dict[str, Any]) -> None:
    document["plan"]["steps"] = [s for s in document["plan"]["steps"] if s["kind"] != "grant_vault_access"]


TAMPERINGS: dict[str, Callable[[dict[str, Any]], None]] = {
    "owner-role": _owner_role, "other-identity": _other_identity, "access-policy-instead": _access_policy_instead,
    "misleading-title": _misleading_title, "dropped-step": _dropped_step,
}


@pytest.fixture
def saved_plan(twin_factory, tmp_path: Path):
    twin = twin_factory("rbac-vault")
    env = {**os.environ, **twin.env}
    saved = tmp_path / "saved.json"
    planned = run(["plan", str(twin.plan_file), "--out", str(saved)], env)
    assert planned.returncode == 2, planned.stderr
    return twin, env, saved


def test_tampered_saved_plan_is_refused_with_zero_mutating_requests(saved_plan, tmp_path: Path) -> None:
    twin, env, saved = saved_plan
    original = json.loads(saved.read_text())
    assert _grant(original)["params"]["rbac"] is True
    before = requests_json(twin)["mutating"]
    for name, tamper in TAMPERINGS.items():
        document = json.loads(json.dumps(original))
        tamper(document)
        edited = tmp_path / f"{name}.json"
        edited.write_text(json.dumps(document))
        applied = run(["apply", str(edited), "--yes", "--state", str(tmp_path / f"state-{name}")], env)
        assert applied.returncode == 64, (name, applied.stdout, applied.stderr)
        assert "Traceback" not in applied.stderr and "internal error" not in applied.stderr, name
        assert ("does not match a re-plan" in applied.stderr or "Key Vault Secrets User" in applied.stderr), (name, applied.stderr)
    assert requests_json(twin)["mutating"] == before, "a tampered saved plan sent a write"
    roles = [a for a in world_json(twin).get("role_assignments", []) if OWNER in json.dumps(a)]
    assert roles == []


def test_saved_plan_naming_owner_role_is_refused_on_reading(saved_plan, tmp_path: Path) -> None:
    """The role is a rule of the code: ``show`` refuses it too, naming the field, instead of displaying it."""
    _, env, saved = saved_plan
    document = json.loads(saved.read_text())
    _owner_role(document)
    edited = tmp_path / "owner.json"
    edited.write_text(json.dumps(document))
    shown = run(["show", str(edited)], env)
    assert shown.returncode == 64 and "params.role" in shown.stderr and "Traceback" not in shown.stderr, shown.stderr


def test_untampered_saved_plan_still_applies(saved_plan, tmp_path: Path) -> None:
    twin, env, saved = saved_plan
    applied = run(["apply", str(saved), "--yes", "--state", str(tmp_path / "state")], env)
    assert applied.returncode == 0, applied.stderr
    assert world_json(twin)["cluster"]["declaration"] == "common_name"
