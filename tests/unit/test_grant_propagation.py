"""Which failed Key Vault extensions a fresh grant explains (migrate/steps/grant_propagation.py): only the vault's
403 to the identity; a firewall refusal or any other failure is not waited for."""

from __future__ import annotations

from typing import Any

import pytest

from migrate.steps.grant_propagation import denials

DENIED = ("Initial sync failed after 25 retries (KeyVaultInitialSyncRetriesExhausted): Forbidden: identity 'c' does not "
          "have secrets get permission on key vault 'kv'")


def instance(message: str, code: str = "ProvisioningState/failed", time: str = "2026-01-15T09:05:00Z") -> dict[str, Any]:
    return {"properties": {"instanceView": {"extensions": [
        {"name": "KVVMExtension", "statuses": [{"code": code, "message": message, "time": time}]},
        {"name": "nt0_ServiceFabricNode", "statuses": [{"code": "ProvisioningState/failed", "message": "provisions after 'KVVMExtension'"}]},
    ]}}}


def test_a_vault_403_is_a_denial_with_its_time() -> None:
    [(moment, message)] = denials([instance(DENIED), instance("ok", code="ProvisioningState/succeeded")], "KVVMExtension")
    assert message == DENIED and moment is not None and moment.isoformat() == "2026-01-15T09:05:00+00:00"


@pytest.mark.parametrize("message", [
    "Forbidden: Client address is not authorized and caller is not a trusted service (ForbiddenByFirewall)",
    "IMDS: the identity with client id 'c' is not assigned to this VM.",
    "Observed certificate 'https://kv/secrets/x': every version is disabled.",
])
def test_other_failures_are_not_waited_for(message: str) -> None:
    assert denials([instance(DENIED), instance(message)], "KVVMExtension") == []


def test_no_extension_status_means_nothing_to_wait_for() -> None:
    assert denials([{"properties": {}}], "KVVMExtension") == []
