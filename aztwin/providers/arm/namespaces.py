"""Resource providers as ``GET /subscriptions/{s}/providers[/{namespace}]`` shows them.

Generic clients (``az resource``, ``az rest`` without an api-version, Terraform's azapi) read a resource type's
``apiVersions`` here before they call it. The twin lists the types it serves with the api-versions of the
published specs it follows and of the SDKs sfmigrate pins (it serves any api-version the same way).
"""

from __future__ import annotations

from typing import Any

from ...wire import TwinError

# namespace -> resource type -> api-versions, newest first
SERVED: dict[str, dict[str, list[str]]] = {
    "Microsoft.Compute": {
        "virtualMachineScaleSets": ["2026-04-01", "2024-07-01"],
        "virtualMachineScaleSets/virtualMachines": ["2026-04-01", "2024-07-01"],
        "virtualMachineScaleSets/extensions": ["2026-04-01", "2024-07-01"],
        "locations/operations": ["2026-04-01", "2024-07-01"],
    },
    "Microsoft.ServiceFabric": {
        "clusters": ["2021-06-01"],
        "locations/operations": ["2021-06-01"],
        "locations/operationResults": ["2021-06-01"],
    },
    "Microsoft.KeyVault": {
        "vaults": ["2026-05-15", "2024-11-01"],
        "vaults/accessPolicies": ["2026-05-15", "2024-11-01"],
    },
    "Microsoft.ManagedIdentity": {
        "userAssignedIdentities": ["2024-11-30", "2018-11-30"],
    },
    "Microsoft.Authorization": {
        "roleAssignments": ["2022-04-01"],
        "roleDefinitions": ["2022-04-01"],
    },
}


def provider_body(subscription_id: str, namespace: str, locations: list[str]) -> dict[str, Any]:
    """One provider, as ARM's Providers_Get answers it (namespace matched case-insensitively, as ARM does)."""
    canonical = next((n for n in SERVED if n.lower() == namespace.lower()), None)
    if canonical is None:
        raise TwinError(404, "InvalidResourceNamespace", f"The resource namespace '{namespace}' is invalid.")
    return {
        "id": f"/subscriptions/{subscription_id}/providers/{canonical}",
        "namespace": canonical,
        "registrationState": "Registered",
        "registrationPolicy": "RegistrationRequired",
        "resourceTypes": [
            {"resourceType": kind, "locations": locations, "apiVersions": versions, "capabilities": "None"}
            for kind, versions in SERVED[canonical].items()
        ],
    }


def provider_bodies(subscription_id: str, locations: list[str]) -> list[dict[str, Any]]:
    return [provider_body(subscription_id, namespace, locations) for namespace in SERVED]
