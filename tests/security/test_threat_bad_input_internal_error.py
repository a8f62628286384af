"""Threat: bad input that ends in "internal error" and a traceback (issue 13, "Also"): a plan whose files
are missing, endless or not certificates, an armEndpoint with a space, unwritable outputs, and an Azure
answer (200) whose body has the wrong shape. Each must be one line on stderr, exit 64 (input) or 1
(environment), and send no write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from armfront import ArmFront, arm_front
from twinkit import requests_json


def _sfmigrate(args: list[str], twin: Any, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    env.update(twin.env)
    return subprocess.run([sys.executable, "-m", "migrate", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def _one_line(done: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    err = done.stderr.strip()
    assert done.returncode == code, done.stderr
    assert len(err.splitlines()) == 1 and "internal error" not in err and "Traceback" not in err, err
    for word in words:
        assert word in err, err


def _plan_with(twin: Any, tmp_path: Path, **changes: Any) -> Path:
    plan = yaml.safe_load(Path(twin.plan_file).read_text())
    for dotted, value in changes.items():
        section, field = dotted.split("__")
        plan[section][field] = value
    target = tmp_path / "plan.yaml"
    target.write_text(yaml.safe_dump(plan))
    return target


@pytest.fixture
def old_primary(twin_factory: Any) -> Any:
    return twin_factory("old-primary")


def test_plan_file_of_unbounded_size_dev_zero_is_refused_not_read_forever(old_primary: Any, tmp_path: Path) -> None:
    _one_line(_sfmigrate(["plan", "/dev/zero"], old_primary, tmp_path, timeout=60), 64, "/dev/zero")
    _one_line(_sfmigrate(["status", "/dev/zero"], old_primary, tmp_path, timeout=60), 64, "/dev/zero")


@pytest.mark.parametrize("content", [None, "not a certificate\n", "/dev/zero"])
def test_ca_bundle_missing_or_not_a_certificate_names_the_file(old_primary: Any, tmp_path: Path, content: str | None) -> None:
    bundle = tmp_path / "bundle.pem"
    if content == "/dev/zero":
        bundle = Path("/dev/zero")
    elif content is not None:
        bundle.write_text(content)
    done = _sfmigrate(["plan", str(_plan_with(old_primary, tmp_path, cloud__caBundle=str(bundle)))], old_primary, tmp_path, 60)
    _one_line(done, 64, "cloud.caBundle", str(bundle))
    assert requests_json(old_primary)["total"] == 0  # refused before any request


@pytest.mark.parametrize("content", [None, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"])
def test_issuer_certificates_missing_or_not_a_certificate_names_the_file(old_primary: Any, tmp_path: Path, content: str | None) -> None:
    issuer = tmp_path / "issuer.pem"
    if content is not None:
        issuer.write_text(content)
    done = _sfmigrate(["plan", str(_plan_with(old_primary, tmp_path, goal__issuerCertificates=[str(issuer)]))], old_primary, tmp_path, 60)
    _one_line(done, 64, "goal.issuerCertificates", str(issuer))


@pytest.mark.parametrize("endpoint", ["https://127.0.0.1:443 x", "https://127.0.0.1:44x3", "https:// /", "https://a\tb"])
def test_arm_endpoint_with_a_space_or_bad_port_is_a_usage_error(old_primary: Any, tmp_path: Path, endpoint: str) -> None:
    done = _sfmigrate(["plan", str(_plan_with(old_primary, tmp_path, cloud__armEndpoint=endpoint))], old_primary, tmp_path, 60)
    _one_line(done, 64, "armEndpoint")


def test_unwritable_report_out_and_state_are_one_line(old_primary: Any, tmp_path: Path) -> None:
    plan = str(old_primary.plan_file)
    _one_line(_sfmigrate(["plan", plan, "--report", "/proc/none/r.md"], old_primary, tmp_path), 64, "--report")
    _one_line(_sfmigrate(["plan", plan, "--out", "/proc/none.json"], old_primary, tmp_path), 64, "--out")
    _one_line(_sfmigrate(["plan", plan, "--report", "/dev/full"], old_primary, tmp_path), 1, "--report", "No space")
    _one_line(_sfmigrate(["apply", plan, "--yes", "--state", "/proc/none"], old_primary, tmp_path), 64, "--state")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "ro"
        locked.mkdir(mode=0o500)
        _one_line(_sfmigrate(["apply", plan, "--yes", "--state", str(locked)], old_primary, tmp_path), 64, "--state")
    assert requests_json(old_primary)["mutating"] == 0


@pytest.fixture
def shape_shifter(old_primary: Any) -> Iterator[tuple[Any, type[ArmFront], str]]:
    with arm_front(old_primary) as (handler, url):
        yield old_primary, handler, url


@pytest.mark.parametrize("body", [{"properties": 5}, {"properties": {"nodeTypes": "nt0", "certificate": []}},
                                  {"properties": {"nodeTypes": [7], "certificate": {"thumbprint": {"a": 1}}}}])
def test_arm_200_with_a_body_of_the_wrong_shape_is_one_line_exit_1(shape_shifter: Any, tmp_path: Path, body: Any) -> None:
    twin, handler, front = shape_shifter
    handler.body = json.dumps(body).encode()
    plan = _plan_with(twin, tmp_path, cloud__armEndpoint=front)
    for args in (["plan", str(plan)], ["apply", str(plan), "--yes", "--state", str(tmp_path / "state")]):
        done = _sfmigrate(args, twin, tmp_path)
        _one_line(done, 1, "unexpected shape")
    assert requests_json(twin)["mutating"] == 0


def test_issuer_certificates_in_der_is_still_accepted(old_primary: Any, tmp_path: Path) -> None:
    """The check refuses what is not a certificate, not what discovery reads (DER here)."""
    import ssl as _ssl

    pem = Path(old_primary.ca_bundle).read_text().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    issuer = tmp_path / "issuer.cer"
    issuer.write_bytes(_ssl.PEM_cert_to_DER_cert(pem))
    done = _sfmigrate(["plan", str(_plan_with(old_primary, tmp_path, goal__issuerCertificates=[str(issuer)]))], old_primary, tmp_path)
    assert done.returncode in (0, 2, 3), done.stderr
