"""Shared fixtures: a running Azure twin and the real SDK clients pointed at it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from aztwin import RunningTwin, start_twin
from twinkit import Clients, PlannedTwin, with_plan

FAST = 3000.0  # simulated seconds per wall second for tests


@pytest.fixture(autouse=True)
def _fresh_key_vault_challenges() -> Iterator[None]:
    """Forget Key Vault challenges between tests, in every folder.

    azure-keyvault caches each vault's challenge (tenant, scope) process-wide by host:port; a later twin that
    gets a recycled port must not inherit an earlier scenario's tenant (seen in test_rehearse, where the
    rehearsal twin has a tenant of its own).
    """
    from azure.keyvault.certificates._shared import http_challenge_cache

    http_challenge_cache.clear()
    yield
    http_challenge_cache.clear()


@pytest.fixture(autouse=True)
def _machine_locks_per_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine's per-cluster locks (migrate.journal.local.machine_lock_dir) live in the test's folder: every
    twin has the same cluster ids, and tests run side by side (subprocesses inherit the variable)."""
    monkeypatch.setenv("SFMIGRATE_LOCK_DIR", str(tmp_path / "machine-locks"))


@pytest.fixture
def twin_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., PlannedTwin]]:
    """Start twins on loopback, each with sfmigrate's plan file for it; each is stopped after the test.
    The last one started sets the env."""
    started: list[RunningTwin] = []

    def start(scenario: str = "basic", *, env: bool = True, **kwargs: Any) -> PlannedTwin:
        kwargs.setdefault("time_scale", FAST)
        kwargs.setdefault("state_dir", tmp_path / f"twin-{len(started)}")
        running = start_twin(scenario, **kwargs)
        started.append(running)
        twin = with_plan(running)
        if env:
            for key, value in twin.env.items():
                monkeypatch.setenv(key, value)
        return twin

    yield start
    for twin in started:
        twin.stop()


@pytest.fixture
def twin(twin_factory: Callable[..., PlannedTwin]) -> PlannedTwin:
    return twin_factory("basic")


@pytest.fixture
def clients(twin: RunningTwin) -> Clients:
    return Clients(twin)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One Azurite blob service per test process, on loopback, with telemetry off (tests/azurite.py)."""
    from azurite import missing_reason, start_azurite

    reason = missing_reason()
    if reason:
        pytest.skip(f"Azurite unavailable: {reason}")
    running = start_azurite(tmp_path_factory.mktemp("azurite"))
    yield running
    running.stop()
