"""Twin-test hygiene shared by every file in this folder."""

from __future__ import annotations

from typing import Iterator

import pytest


@pytest.fixture(autouse=True)
def _fresh_key_vault_challenges() -> Iterator[None]:
    """Forget Key Vault challenges between tests.

    azure-keyvault caches each vault's challenge (tenant, scope) process-wide by host:port
    (research/emulation.md §2); a later twin that gets a recycled port must not inherit an earlier
    scenario's tenant.
    """
    from azure.keyvault.certificates._shared import http_challenge_cache

    http_challenge_cache.clear()
    yield
    http_challenge_cache.clear()
