"""Builders of realistic snapshots and plan files for unit tests, from real X.509 certificates.

``world()`` is a clean starting point: a cluster declared by thumbprint (a self-signed certificate delivered
by a versioned VMSS secret), one Windows node type of three instances, an access-policy vault enabled for
deployment holding a CA-issued goal certificate whose direct issuer is known and pinned, and an existing
identity that may read the vault. ``run_checks(world(), plan(), NOW)`` gives info findings only; tests
change one thing and look for the finding it should cause.
"""

from __future__ import annotations

import copy
import datetime as dt
from functools import cache
from typing import Any

import yaml

from aztwin.pki import Issued, Pki
from migrate.snapshot import (
    ClusterView, ExtensionView, GoalView, IdentityView, InstanceView, KnownCertificate, NodeTypeView, SecretRef,
    Snapshot, VaultCertificateView, VaultView,
)
from migrate.spec import PlanSpec, parse_plan
from migrate.x509 import facts  # the product's reading of a certificate (the twin's Issued has its own)

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
SUB = "7c0e1f0a-5b8d-4d2e-9f3a-2a6b1c4d8e90"
RG = "rg-sf-prod-weu"
_PROVIDERS = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers"
CLUSTER_ID = f"{_PROVIDERS}/Microsoft.ServiceFabric/clusters/sfprod-weu"
VAULT_NAME = "kv-sfprod-weu"
VAULT_ID = f"{_PROVIDERS}/Microsoft.KeyVault/vaults/{VAULT_NAME}"
VAULT_URI = f"https://{VAULT_NAME}.vault.azure.net/"
IDENTITY_ID = f"{_PROVIDERS}/Microsoft.ManagedIdentity/userAssignedIdentities/id-sfprod-kv-reader"
IDENTITY_PRINCIPAL = "3b9d6a52-8f1e-4c7a-b0d4-5e2f9a1c6b73"
GOAL_NAME = "sfprod-cluster"
GOAL_CN = "sfprod.contoso.com"
GOAL_VERSION = "4f9c2b7e1a8d4e3f9b6c0d5a7e2f1c8b"
OLD_NAME = "sfprod-cluster-old"
OLD_VERSION = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
KV_SECRETS_USER = "/providers/Microsoft.Authorization/roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6"


def vmss_id(name: str) -> str:
    return f"{_PROVIDERS}/Microsoft.Compute/virtualMachineScaleSets/{name}"


def secret_url(name: str, version: str | None = None) -> str:
    return f"{VAULT_URI}secrets/{name}" + (f"/{version}" if version else "")


# -- certificates -----------------------------------------------------------------------------------------
@cache
def pki() -> Pki:
    authority = Pki("https://pki.contoso.com")
    authority.create_authority("root", "Contoso Root CA", NOW - dt.timedelta(days=3000), NOW + dt.timedelta(days=3000))
    authority.create_authority("issuing", "Contoso Issuing CA 1", NOW - dt.timedelta(days=700), NOW + dt.timedelta(days=1100), issuer="root")
    authority.create_authority("issuing2", "Contoso Issuing CA 2", NOW - dt.timedelta(days=100), NOW + dt.timedelta(days=1800), issuer="root")
    return authority


@cache
def leaf(name: str, cn: str = GOAL_CN, issuer: str | None = "issuing", valid_from_days: int = -5, valid_days: int = 365,
         sans: tuple[str, ...] | None = None, ekus: tuple[str, ...] | None = None) -> Issued:
    """A real end-entity certificate (``issuer=None``: self-signed), cached per argument set."""
    start = NOW + dt.timedelta(days=valid_from_days)
    return pki().issue_leaf(name, cn, start, start + dt.timedelta(days=valid_days), issuer=issuer,
                            sans=list(sans) if sans is not None else None, ekus=list(ekus) if ekus is not None else None)


def goal_cert() -> Issued:
    return leaf("goal")


def old_cert() -> Issued:
    return leaf("old", cn="sfprod-old.contoso.com", issuer=None, valid_from_days=-200, valid_days=730)


# -- views ------------------------------------------------------------------------------------------------
def goal_view(cert: Issued | None = None, *, issuer: Issued | None | bool = True, **changes: Any) -> GoalView:
    """The goal as discovery sees it; ``issuer=True`` means its real direct issuer (fetched from AIA)."""
    cert = cert or goal_cert()
    direct = cert.issuer if issuer is True else (issuer or None)
    view = GoalView(
        name=GOAL_NAME,
        version=GOAL_VERSION,
        secret_id=secret_url(GOAL_NAME, GOAL_VERSION),
        versionless_secret_url=secret_url(GOAL_NAME),
        facts=facts(cert.der),
        exportable=True,
        content_type="application/x-pkcs12",
        policy_issuer_name="Contoso",
        enabled=True,
        issuer=facts(direct.der) if direct else None,
        issuer_source="aia" if direct else None,
        issuer_note=None if direct else "AIA URL unreachable",
    )
    for key, value in changes.items():
        setattr(view, key, value)
    return view


def sf_extension(node_type: str, *, thumbprint: str | None = None, common_names: list[str] | None = None,
                 linux: bool = False, provision_after: list[str] | None = None) -> ExtensionView:
    certificate: dict[str, Any] = (
        {"commonNames": common_names, "x509StoreName": "My"} if common_names else {"thumbprint": thumbprint, "x509StoreName": "My"}
    )
    return ExtensionView(
        name=f"{node_type}_ServiceFabricNode",
        publisher="Microsoft.Azure.ServiceFabric",
        type="ServiceFabricLinuxNode" if linux else "ServiceFabricNode",
        type_handler_version="1.1",
        settings={
            "clusterEndpoint": f"https://westeurope.servicefabric.azure.com/runtime/clusters/{SUB}",
            "nodeTypeRef": node_type,
            "dataPath": "/mnt/sfroot" if linux else "D:\\\\SvcFab",
            "durabilityLevel": "Silver",
            "enableParallelJobs": True,
            "certificate": certificate,
        },
        provision_after=provision_after or [],
        auto_upgrade_minor_version=True,
    )


def kv_extension(*, version: str = "3.0", link_on_renewal: bool = False, auto_upgrade: bool = False, linux: bool = False,
                 observed: list[str] | None = None, client_id: str = "client") -> ExtensionView:
    urls = observed or [secret_url(GOAL_NAME)]
    return ExtensionView(
        name="KVVMExtension",
        publisher="Microsoft.Azure.KeyVault",
        type="KeyVaultForLinux" if linux else "KeyVaultForWindows",
        type_handler_version=version,
        settings={
            "secretsManagementSettings": {
                "pollingIntervalInS": "3600",
                "linkOnRenewal": link_on_renewal,
                "requireInitialSync": True,
                "observedCertificates": [{"url": u, "certificateStoreName": "MY", "certificateStoreLocation": "LocalMachine"} for u in urls],
            },
            "authenticationSettings": {"msiEndpoint": "http://169.254.169.254/metadata/identity/oauth2/token", "msiClientId": client_id},
        },
        provision_after=[],
        auto_upgrade_minor_version=True,
        enable_automatic_upgrade=auto_upgrade,
    )


def node_type(name: str = "nt0", *, os: str = "windows", thumbprint: str | None = None, common_names: list[str] | None = None,
              secrets: list[str] | None = None, instances: int = 3, upgrade_mode: str = "Automatic",
              identities: list[str] | None = None, extensions: list[ExtensionView] | None = None) -> NodeTypeView:
    linux = os == "linux"
    secret_urls = [secret_url(OLD_NAME, OLD_VERSION)] if secrets is None else secrets
    if extensions is None:
        extensions = [sf_extension(name, thumbprint=thumbprint or old_cert().thumbprint, common_names=common_names, linux=linux)]
    return NodeTypeView(
        vmss_id=vmss_id(name),
        name=name,
        node_type_ref=name,
        os=os,
        upgrade_mode=upgrade_mode,
        capacity=instances,
        location="westeurope",
        identity_type="UserAssigned" if identities else None,
        user_assigned_identities=list(identities or []),
        secrets=[SecretRef(vault_id=VAULT_ID, certificate_url=u, certificate_store=None if linux else "My") for u in secret_urls],
        extensions=extensions,
        instances=[
            InstanceView(instance_id=str(i), name=f"{name}_{i}", latest_model_applied=True, provisioning_state="Succeeded",
                         update_domain=i % 5, extension_statuses={})
            for i in range(instances)
        ],
        raw={"id": vmss_id(name), "properties": {"upgradePolicy": {"mode": upgrade_mode}}},
    )


def cluster_view(*, thumbprint: str | None = None, secondary: str | None = None, common_names: list[dict[str, str]] | None = None,
                 node_types: tuple[str, ...] = ("nt0",), state: str = "Ready", provisioning: str = "Succeeded",
                 reverse_proxy: str | None = None, unsecured: bool = False) -> ClusterView:
    if not common_names and not unsecured:
        thumbprint = thumbprint or old_cert().thumbprint
    properties: dict[str, Any] = {"clusterState": state, "provisioningState": provisioning}
    if thumbprint:
        properties["certificate"] = {"thumbprint": thumbprint, "x509StoreName": "My"}
    if common_names:
        properties["certificateCommonNames"] = {"commonNames": common_names, "x509StoreName": "My"}
    return ClusterView(
        id=CLUSTER_ID, name="sfprod-weu", location="westeurope", cluster_state=state, provisioning_state=provisioning,
        code_version="10.1.2493.9590", cluster_endpoint=f"https://westeurope.servicefabric.azure.com/runtime/clusters/{SUB}",
        thumbprint=thumbprint, thumbprint_secondary=secondary, common_names=list(common_names or []), x509_store_name="My",
        reverse_proxy_thumbprint=reverse_proxy, reverse_proxy_common_names=[], node_type_names=list(node_types),
        raw={"id": CLUSTER_ID, "properties": properties},
    )


def vault_view(*, rbac: bool = False, enabled_for_deployment: bool = True, grant: bool = True) -> VaultView:
    policies = [{"tenantId": "t", "objectId": IDENTITY_PRINCIPAL, "permissions": {"secrets": ["Get", "List"]}}] if grant and not rbac else []
    return VaultView(id=VAULT_ID, name=VAULT_NAME, uri=VAULT_URI, tenant_id="72f988bf-86f1-41af-91ab-2d7cd011db47", rbac=rbac,
                     enabled_for_deployment=enabled_for_deployment, soft_delete=True, access_policies=policies)


def known(cert: Issued, name: str, version: str) -> KnownCertificate:
    return KnownCertificate(thumbprint=cert.thumbprint, facts=facts(cert.der), vault_id=VAULT_ID, name=name, version=version,
                            secret_url=secret_url(name, version))


def world(*, goal: GoalView | None | bool = True, cluster: ClusterView | None | bool = True,
          node_types: list[NodeTypeView] | None = None) -> Snapshot:
    """The clean baseline (see the module docstring); pass views to replace parts of it."""
    goal_v = goal_view() if goal is True else (goal or None)
    snapshot = Snapshot(
        taken_at=NOW,
        cluster=cluster_view() if cluster is True else (cluster or None),
        node_types=[node_type()] if node_types is None else node_types,
        vault=vault_view(),
        goal=goal_v,
        identity=IdentityView(id=IDENTITY_ID, exists=True, principal_id=IDENTITY_PRINCIPAL, client_id="client", tenant_id="t"),
        vault_certificates=[VaultCertificateView(GOAL_NAME, goal_v.facts if goal_v else None),
                            VaultCertificateView(OLD_NAME, facts(old_cert().der))],
    )
    snapshot.known_certificates = {c.thumbprint: c for c in (known(old_cert(), OLD_NAME, OLD_VERSION),)}
    if goal_v:
        snapshot.known_certificates[goal_v.facts.thumbprint] = KnownCertificate(
            goal_v.facts.thumbprint, goal_v.facts, VAULT_ID, GOAL_NAME, GOAL_VERSION, goal_v.secret_id)
    return snapshot


# -- plan files -----------------------------------------------------------------------------------------
def plan_dict(**overrides: Any) -> dict[str, Any]:
    """A valid plan file as data; keyword arguments deep-merge into it (``goal={"commonName": ...}``)."""
    base: dict[str, Any] = {
        "apiVersion": "sfmigrate/v1",
        "kind": "Migration",
        "cluster": {"id": CLUSTER_ID},
        "goal": {"vaultId": VAULT_ID, "certificateName": GOAL_NAME, "pinnedIssuers": [pki().authority("issuing").thumbprint]},
        "identity": {"id": IDENTITY_ID},
    }
    return _merge(base, overrides)


def plan(**overrides: Any) -> PlanSpec:
    return parse_plan(yaml.safe_dump(plan_dict(**overrides)), "test-plan.yaml")


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
