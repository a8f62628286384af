"""Fixtures for the journal tests: one Azurite per test session (per xdist worker) and fresh containers."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from azurite import RunningAzurite
from migrate.journal.blob import BlobStore

HOLDER_SCRIPT = Path(__file__).with_name("_holder.py")
CLUSTER = "/subscriptions/0123abcd-0000-4000-8000-000000000000/resourceGroups/rg-sf/providers/Microsoft.ServiceFabric/clusters/sfcluster"


@pytest.fixture
def container_name() -> str:
    return f"sfm-{uuid.uuid4().hex[:20]}"


@pytest.fixture
def blob_store(azurite: RunningAzurite, container_name: str) -> Iterator[Callable[..., BlobStore]]:
    """Make BlobStores on one fresh container (several stores = several runs); release their leases after."""
    made: list[BlobStore] = []

    def make(cluster_id: str = CLUSTER, prefix: str = "journals", **options: Any) -> BlobStore:
        store = BlobStore.from_connection_string(azurite.connection_string, f"{container_name}/{prefix}",
                                                 cluster_id, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        store.release()


@pytest.fixture
def cluster_id() -> str:
    return CLUSTER


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Run tests/journal/_holder.py in a child process; any still running at the end are killed."""
    children: list[subprocess.Popen[str]] = []

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        child = subprocess.Popen([sys.executable, str(HOLDER_SCRIPT), *args], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        children.append(child)
        return child

    yield run
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()

