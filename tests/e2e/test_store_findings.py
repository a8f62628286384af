"""The plan file's Windows store settings against the stores Service Fabric reads (issue 10: stores).

A store the Service Fabric extension and the cluster do not read, or ``CurrentUser``, is the error finding
CERTIFICATE_STORE_MISMATCH before any write; a store name that differs only in case is the same store and
converts. The twin's own rule is proved in tests/emulator/test_windows_stores.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate import commands
from migrate.errors import Blocked
from twinkit import inprocess_session, requests_json, world_json

WRITES = {"PUT", "PATCH", "POST", "DELETE"}
WRONG_STORES = [
    pytest.param({"certificateStoreLocation": "CurrentUser"}, "CurrentUser", id="current-user"),
    pytest.param({"certificateStoreName": "TrustedPeople"}, "x509StoreName My", id="other-store-name"),
]


def _plan_with(twin: Any, tmp_path: Path, **settings: str) -> Path:
    """The twin's plan file with keyVaultExtension settings changed, as an operator would edit it."""
    document = yaml.safe_load(twin.plan_file.read_text(encoding="utf-8"))
    document.setdefault("keyVaultExtension", {}).update(settings)
    path = tmp_path / "edited-plan.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _writes(twin: Any) -> list[str]:
    """Every write the twin received: ARM, vault data planes and anything else (token GETs are not writes)."""
    log = requests_json(twin)
    return [f"{r['method']} {r['path']}" for r in log["requests"] if r["method"] in WRITES or r.get("mutating")]


@pytest.mark.parametrize("scenario", ["old-primary", "goal-primary"])
@pytest.mark.parametrize("settings,named", WRONG_STORES)
def test_a_store_service_fabric_does_not_read_blocks_before_any_write(twin_factory, tmp_path: Path, scenario: str,
                                                                     settings: dict[str, str], named: str) -> None:
    twin = twin_factory(scenario)
    plan_file = _plan_with(twin, tmp_path, **settings)
    session = inprocess_session(twin)
    planned = commands.plan(plan_file, session=session)
    assert planned.exit_code == 3
    mismatches = [f for f in planned.plan.findings if f.code == "CERTIFICATE_STORE_MISMATCH"]
    assert mismatches and all(f.severity == "error" for f in mismatches)
    assert any(named in f.message for f in mismatches), [f.message for f in mismatches]
    with pytest.raises(Blocked):
        commands.apply(plan_file, state_location=str(tmp_path / "state"), session=session)
    assert _writes(twin) == []
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "thumbprint" and cluster["health_worst"] == "Healthy"


def test_a_store_name_in_another_case_is_the_same_store_and_converts(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    plan_file = _plan_with(twin, tmp_path, certificateStoreName="MY")
    session = inprocess_session(twin)
    assert not [f for f in commands.plan(plan_file, session=session).plan.findings if f.code == "CERTIFICATE_STORE_MISMATCH"]
    applied = commands.apply(plan_file, state_location=str(tmp_path / "state"), session=session)
    assert applied.state is not None and applied.state.status == "complete"
    world = world_json(twin)
    assert world["cluster"]["declaration"] == "common_name"
    assert world["cluster"]["health_worst"] == "Healthy", world["cluster"]["health_worst_reasons"]
    installed = [c for c in world["scale_sets"][0]["instances"][0]["certificates"] if c["subject"] == "sfcluster.contoso.com"]
    assert installed and all(c["store"].lower() == "localmachine\\my" for c in installed)  # one store, one copy each
    assert len({c["thumbprint"] for c in installed}) == len(installed)


def test_the_cli_exits_3_on_current_user_and_writes_nothing(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    plan_file = _plan_with(twin, tmp_path, certificateStoreLocation="CurrentUser")
    env = {**os.environ, **twin.env}
    applied = subprocess.run([sys.executable, "-m", "migrate", "apply", str(plan_file), "--yes", "--state", str(tmp_path / "s")],
                             env=env, capture_output=True, text=True, timeout=300)
    assert applied.returncode == 3, applied.stderr
    assert "CERTIFICATE_STORE_MISMATCH" in applied.stderr and "Traceback" not in applied.stderr
    assert _writes(twin) == []
