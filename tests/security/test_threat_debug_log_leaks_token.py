"""Threat: `--debug` logs HTTP traffic and every credential's reasons, so a token, the managed-identity header
secret, the pipeline's System.AccessToken or a federated assertion could reach a CI log (issue 14).
Defence: azure-core's logging policy redacts headers outside its allow-list and never logs bodies; sfmigrate's
own request line carries no header but the request id; every logged line goes through safe_output.redact."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from twinkit import pipeline_env



def _sfmigrate(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrate", *args], env=env, capture_output=True, text=True, timeout=300)


def _assert_no_secret(stderr: str, secrets: list[str]) -> None:
    assert "x-ms-request-id" in stderr and "Request URL" in stderr  # the traffic was logged (else this proves nothing)
    for secret in secrets:
        assert secret and secret not in stderr
    assert "eyJ" not in stderr  # no JWT: no access token, no federated assertion
    for line in stderr.splitlines():
        if "'Authorization'" in line or "X-IDENTITY-HEADER" in line:
            assert "'REDACTED'" in line, line


def test_debug_with_managed_identity_logs_no_token_and_no_identity_header(twin_factory) -> None:
    twin = twin_factory("old-primary")
    env = {**os.environ, **twin.env}
    planned = _sfmigrate(["plan", str(twin.plan_file), "--debug"], env)
    assert planned.returncode == 2, planned.stderr
    _assert_no_secret(planned.stderr, [twin.env["IDENTITY_HEADER"]])
    assert "X-IDENTITY-HEADER" in planned.stderr  # the token request itself was logged, its secret header redacted


def test_debug_in_a_pipeline_logs_neither_the_access_token_nor_the_assertion(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    env, _ = pipeline_env(twin)
    env["AGENT_TEMPDIRECTORY"] = str(tmp_path)
    planned = _sfmigrate(["plan", str(twin.plan_file), "--debug"], env)
    assert planned.returncode == 0, planned.stderr  # pipeline mode: changes pending exit 0
    _assert_no_secret(planned.stderr, [env["SYSTEM_ACCESSTOKEN"]])
    assert "AzurePipelinesCredential" in planned.stderr


def test_an_authentication_failure_under_debug_names_each_credential_without_secrets(twin_factory) -> None:
    twin = twin_factory("basic")
    env = {**os.environ, **twin.env, "IDENTITY_HEADER": "wrong-identity-header-value"}
    env.pop("AZURE_TOKEN_CREDENTIALS")
    planned = _sfmigrate(["plan", str(twin.plan_file), "--debug"], env)
    assert planned.returncode == 1, planned.stderr
    assert "wrong-identity-header-value" not in planned.stderr and "eyJ" not in planned.stderr
    assert "sfmigrate:   ManagedIdentityCredential: " in planned.stderr
