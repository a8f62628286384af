"""``sfmigrate validate PLANFILE`` (issue 14): offline schema and cross-field checks for PR pipelines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

PLANS = Path(__file__).resolve().parents[2] / "plans"


def _validate(*args: str) -> subprocess.CompletedProcess[str]:
    # No Azure: no credential variables and an unroutable ARM endpoint must not matter.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
    return subprocess.run([sys.executable, "-m", "migrate", "validate", *args], env=env, capture_output=True, text=True, timeout=60)


def test_a_valid_plan_file_exits_0_offline() -> None:
    result = _validate(str(PLANS / "example-single-cluster.yaml"))
    assert result.returncode == 0, result.stderr
    assert "valid (cluster /subscriptions/" in result.stdout
    document = json.loads(_validate(str(PLANS / "example-minimal.yaml"), "--format", "json").stdout)
    assert document["valid"] is True and document["cluster"].startswith("/subscriptions/")


def test_an_invalid_plan_file_exits_64_naming_the_field(tmp_path: Path) -> None:
    document = yaml.safe_load((PLANS / "example-minimal.yaml").read_text())
    document["goal"]["pinnedIssuers"] = ["not-a-thumbprint"]
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(document))
    result = _validate(str(broken))
    assert result.returncode == 64 and "goal.pinnedIssuers" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    as_json = _validate(str(broken), "--format", "json")
    assert as_json.returncode == 64 and json.loads(as_json.stdout)["valid"] is False
    assert _validate(str(tmp_path / "missing.yaml")).returncode == 64
