"""Preflight checks: every finding code, positively and negatively, on snapshots built from real certificates."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import functools
from typing import Callable

import pytest

from migrate.checks import CATALOGUE, run_checks
from migrate.findings import ERROR, INFO, SEVERITY_ORDER, Finding
from migrate.network import SubnetView, VaultNetworkView
from migrate.snapshot import IdentityView, Problem, RoleAssignmentView, Snapshot, VaultCertificateView
from migrate.spec import PlanSpec
from snapshots import (
    CLUSTER_ID, GOAL_CN, GOAL_NAME, GOAL_VERSION, IDENTITY_ID, IDENTITY_PRINCIPAL, KV_SECRETS_USER, NOW, OLD_NAME, RG, SUB,
    VAULT_ID, cluster_view, goal_cert, goal_view, known, kv_extension, leaf, node_type, pki, plan, secret_url, sf_extension,
    product_facts, vault_view, vmss_id, world,
)
from test_old_cert_checks import old_cert_case

Case = Callable[[], tuple[Snapshot, PlanSpec]]


def found(snapshot: Snapshot, spec: PlanSpec, now: dt.datetime = NOW) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for item in run_checks(snapshot, spec, now):
        out.setdefault(item.code, []).append(item)
    return out


def thumb(name: str) -> str:
    return pki().authority(name).thumbprint


# -- small world edits ------------------------------------------------------------------------------------
def with_problem(code: str, resource_id: str, message: str = "(404) not found") -> Case:
    def case() -> tuple[Snapshot, PlanSpec]:
        snapshot = world()
        snapshot.problems.append(Problem(code, resource_id, message))
        return snapshot, plan()
    return case


def edit(change: Callable[[Snapshot], object], **plan_overrides: object) -> Case:
    def case() -> tuple[Snapshot, PlanSpec]:
        snapshot = world()
        change(snapshot)
        return snapshot, plan(**plan_overrides)
    return case


def with_goal(cert_kwargs: dict[str, object] | None = None, **view_changes: object) -> Case:
    def case() -> tuple[Snapshot, PlanSpec]:
        cert = leaf(**cert_kwargs) if cert_kwargs else goal_cert()
        view = goal_view(cert, **view_changes)
        snapshot = world(goal=view)
        return snapshot, plan()
    return case


def spec_edit(change: Callable[[PlanSpec], object], snapshot: Callable[[], Snapshot] = world) -> Case:
    def case() -> tuple[Snapshot, PlanSpec]:
        spec = plan()
        change(spec)
        return snapshot(), spec
    return case


def _crl(snapshot: Snapshot, *, reachable: bool, revoked: bool | None = None) -> None:
    """The goal names a CRL that discovery did (not) reach (tests/unit/test_revocation.py has the details)."""
    from migrate.snapshot import PublicEndpoint

    assert snapshot.goal is not None
    snapshot.goal.public_endpoints = [PublicEndpoint("crl", "http://pki.contoso.example/issuing.crl", snapshot.goal.facts.thumbprint,
                                                     snapshot.goal.facts.subject, reachable, "" if reachable else "refused", revoked)]


def already_cn(issuers: str | None = None) -> Callable[[], Snapshot]:
    def make() -> Snapshot:
        listed = thumb("issuing") if issuers is None else issuers
        cluster = cluster_view(common_names=[{"certificateCommonName": GOAL_CN, "certificateIssuerThumbprint": listed}])
        nt = node_type(common_names=[GOAL_CN], secrets=[],
                       extensions=[kv_extension(), sf_extension("nt0", common_names=[GOAL_CN], provision_after=["KVVMExtension"])])
        return world(cluster=cluster, node_types=[nt])
    return make


def newer_same_cn(days: int) -> Callable[[Snapshot], None]:
    """Deliver (by VMSS secret) another certificate with the goal's CN, issued ``days`` after the goal's NotBefore."""
    def change(snapshot: Snapshot) -> None:
        other = leaf("same-cn", cn=GOAL_CN, issuer="issuing2", valid_from_days=-5 + days)
        snapshot.known_certificates[other.thumbprint] = known(other, "sfprod-other", "9" * 32)
        snapshot.node_types[0].secrets.append(dataclasses.replace(snapshot.node_types[0].secrets[0], certificate_url=secret_url("sfprod-other", "9" * 32)))
    return change


def set_attr(path: str, value: object) -> Callable[[Snapshot], None]:
    def change(snapshot: Snapshot) -> None:
        target: object = snapshot
        parts = path.split(".")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else getattr(target, part)  # type: ignore[index]
        setattr(target, parts[-1], value)
    return change


SUBNET = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/nt0"


def firewalled(bypass: str = "AzureServices", subnet_rule: bool = False) -> Callable[[Snapshot], None]:
    """The vault's firewall denies by default; nt0 sits in SUBNET (admitted with its service endpoint if ``subnet_rule``)."""
    def change(snapshot: Snapshot) -> None:
        for node_type_view in snapshot.node_types:
            profile = node_type_view.raw.setdefault("properties", {}).setdefault("virtualMachineProfile", {})
            profile["networkProfile"] = {"networkInterfaceConfigurations": [
                {"properties": {"ipConfigurations": [{"properties": {"subnet": {"id": SUBNET}}}]}}]}
        snapshot.vault_network = VaultNetworkView(
            default_action="Deny", bypass=bypass, virtual_network_rules=[SUBNET] if subnet_rule else [],
            subnets={SUBNET.lower(): SubnetView(SUBNET, ["Microsoft.KeyVault"])},
        )
    return change


def linux_world_firewalled() -> Snapshot:
    """A Linux node type (the goal goes by VMSS secret) behind a firewall with bypass None."""
    snapshot = linux_world()
    firewalled(bypass="None")(snapshot)
    return snapshot


def linux_world() -> Snapshot:
    return world(node_types=[node_type(os="linux")])


def rbac_world(scope: str | None, role: str = KV_SECRETS_USER) -> Callable[[], Snapshot]:
    def make() -> Snapshot:
        snapshot = world()
        snapshot.vault = vault_view(rbac=True)
        if scope:
            snapshot.vault_role_assignments = [RoleAssignmentView(f"{scope}/providers/Microsoft.Authorization/roleAssignments/1",
                                                                  scope, f"/subscriptions/{SUB}{role}", IDENTITY_PRINCIPAL)]
        return snapshot
    return make


def goal_in_secrets(snapshot: Snapshot) -> None:
    snapshot.vault.enabled_for_deployment = False  # type: ignore[union-attr]
    for nt in snapshot.node_types:
        nt.secrets.append(dataclasses.replace(nt.secrets[0], certificate_url=secret_url(GOAL_NAME, GOAL_VERSION)))


@functools.cache
def issuing_sibling() -> str:
    """A re-issue of the goal's issuing CA (same subject and key, another thumbprint), as discovery would see it."""
    return pki().reissue("issuing-r2", "issuing", NOW - dt.timedelta(days=30), NOW + dt.timedelta(days=2000)).thumbprint


def with_issuer_sibling(snapshot: Snapshot) -> None:
    """Discovery saw the goal's issuer and its re-issue (in the .p7c at the goal's AIA)."""
    assert snapshot.goal is not None
    issuing_sibling()  # the re-issue exists
    issuers = [pki().authority("issuing"), pki().authority("issuing-r2")]
    snapshot.possible_issuers[snapshot.goal.facts.thumbprint] = [product_facts(i) for i in issuers]


def ec_goal(snapshot: Snapshot) -> None:
    """The goal's key is elliptic-curve (as the certificate's public key reports it)."""
    snapshot.goal.facts = dataclasses.replace(snapshot.goal.facts, key_type="EC-secp256r1")  # type: ignore[union-attr]


def linux_world_ec() -> Snapshot:
    snapshot = linux_world()
    ec_goal(snapshot)
    return snapshot


def strip_cn(snapshot: Snapshot) -> None:
    snapshot.goal.facts = dataclasses.replace(snapshot.goal.facts, subject_cn=None)  # type: ignore[union-attr]


# -- the cases: code -> situations that must raise it / situations that must not ------------------------
RG_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}"
POSITIVE: dict[str, list[Case]] = {
    "RESOURCE_NOT_FOUND": [
        with_problem("ResourceNotFound", vmss_id("nt9")),
        lambda: (world(cluster=False), plan()),
        lambda: (world(goal=False), plan()),
        lambda: (world(), plan(nodeTypes=[vmss_id("nt0"), vmss_id("nt1")])),
    ],
    "PERMISSION_DENIED": [with_problem("AuthorizationFailed", VAULT_ID, "(403) does not have authorization")],
    "DISCOVERY_INCOMPLETE": [with_problem("TooManyRequests", CLUSTER_ID, "(429) throttled")],
    "CLUSTER_UNMANAGEABLE": [edit(set_attr("cluster.cluster_state", "UpgradeServiceUnreachable"))],
    "CLUSTER_NOT_READY": [edit(set_attr("cluster.cluster_state", "UpdatingUserCertificate")),
                          edit(set_attr("cluster.provisioning_state", "Failed"))],
    "UNSUPPORTED_CLUSTER": [lambda: (world(cluster=cluster_view(unsecured=True)), plan()),
                            lambda: (world(node_types=[]), plan())],
    "NODE_TYPE_NOT_COVERED": [edit(set_attr("cluster.node_type_names", ["nt0", "nt1"]))],
    "SF_EXTENSION_MISSING": [lambda: (world(node_types=[node_type(extensions=[]), ]), plan())],
    "ALREADY_COMMON_NAME": [lambda: (already_cn()(), plan())],
    "REVERSE_PROXY_BY_THUMBPRINT": [edit(set_attr("cluster.reverse_proxy_thumbprint", "A" * 40))],
    "GOAL_DISABLED": [with_goal(enabled=False)],
    "GOAL_SELF_SIGNED": [with_goal({"name": "goal-self", "issuer": None}, issuer=None)],
    "GOAL_NOT_YET_VALID": [with_goal({"name": "goal-future", "valid_from_days": 3})],
    "GOAL_EXPIRING": [with_goal({"name": "goal-short", "valid_from_days": -355, "valid_days": 365}),
                      with_goal({"name": "goal-expired", "valid_from_days": -400, "valid_days": 365})],
    "OLD_CERT_EXPIRING": [old_cert_case(12), old_cert_case(-3, goal_secondary=True)],
    "OLD_CERT_EXPIRED": [old_cert_case(-3)],
    "KEY_NOT_EXPORTABLE": [with_goal(exportable=False)],
    "CN_MISMATCH": [
        lambda: (world(), plan(goal={"commonName": "sfprod.contoso.net"})),
        lambda: (world(), plan(goal={"commonName": GOAL_CN.upper()})),
        spec_edit(lambda s: setattr(s.goal, "commonName", f"CN={GOAL_CN}")),
        edit(strip_cn),
    ],
    "SAN_MISSING_CN": [with_goal({"name": "goal-san", "sans": ("www.contoso.com",)})],
    "CLIENT_AUTH_EKU_MISSING": [with_goal({"name": "goal-server-only", "ekus": ("serverAuth",)})],
    "GOAL_NOT_PFX": [with_goal(content_type="application/x-pem-file")],
    "GOAL_KEY_CNG_ONLY": [edit(ec_goal)],
    "SHARED_SUBJECT": [
        edit(lambda s: s.vault_certificates.append(VaultCertificateView("web", product_facts(leaf("web", cn=GOAL_CN, sans=("www.contoso.com",)))))),
        edit(lambda s: s.vault_certificates.append(VaultCertificateView("san", product_facts(leaf("san", cn="api.contoso.com", sans=("api.contoso.com", GOAL_CN)))))),
    ],
    "NEWER_CERT_SAME_CN": [edit(newer_same_cn(+2))],
    "ISSUER_NOT_PINNED": [
        lambda: (world(), plan(goal={"pinnedIssuers": [thumb("issuing2")]})),
        lambda: (world(), plan(goal={"pinnedIssuers": [thumb("root")]})),  # pinning the root is the classic mistake
        lambda: (already_cn(thumb("issuing2"))(), plan()),
    ],
    "ISSUER_UNVERIFIED": [with_goal(issuer=None), with_goal(issuer=pki().authority("issuing2"))],
    "ISSUER_LIST_INVALID": [
        spec_edit(lambda s: setattr(s.goal, "pinnedIssuers", [thumb("issuing"), thumb("issuing").lower()])),
        spec_edit(lambda s: setattr(s.goal, "pinnedIssuers", ["33:41:AB"])),
        lambda: (already_cn(f"{thumb('issuing')},{thumb('issuing')}")(), plan()),
        lambda: (already_cn("not-hex")(), plan()),
    ],
    "ISSUER_PINNING_DISABLED": [lambda: (world(), plan(goal={"pinnedIssuers": [], "allowUnpinnedIssuers": True}))],
    "REVOCATION_UNREACHABLE": [edit(lambda s: _crl(s, reachable=False))],
    "GOAL_REVOKED": [edit(lambda s: _crl(s, reachable=True, revoked=True))],
    "ISSUER_PIN_INCOMPLETE": [edit(with_issuer_sibling)],
    "EXTENSION_VERSION_UNSAFE": [
        lambda: (world(), plan(keyVaultExtension={"windowsVersion": "4.0"})),
        lambda: (linux_world(), plan(keyVaultExtension={"linuxVersion": "4.1"})),
        lambda: (world(node_types=[node_type(extensions=[kv_extension(version="4.0"), sf_extension("nt0", thumbprint="A" * 40)])]), plan()),
    ],
    "EXTENSION_AUTO_UPGRADE": [lambda: (world(node_types=[node_type(extensions=[kv_extension(auto_upgrade=True), sf_extension("nt0")])]), plan())],
    # The identity was deleted and created again: the scale set lists it, the extension names its old client id.
    "KV_EXTENSION_CLIENT_ID_STALE": [
        lambda: (world(node_types=[node_type(identities=[IDENTITY_ID], extensions=[kv_extension(client_id="old-client"), sf_extension("nt0")])]), plan()),
    ],
    "KV_EXTENSION_IDENTITY_CONFLICT": [
        lambda: (world(node_types=[node_type(extensions=[kv_extension(observed=[secret_url("app-cert")], client_id="other"), sf_extension("nt0")])]), plan()),
        lambda: (_without_identity(world(node_types=[node_type(extensions=[kv_extension(observed=[secret_url(GOAL_NAME), secret_url("app-cert")]), sf_extension("nt0")])])), plan()),
    ],
    "LINK_ON_RENEWAL_ENABLED": [
        lambda: (world(), plan(keyVaultExtension={"linkOnRenewal": True})),
        lambda: (world(node_types=[node_type(extensions=[kv_extension(link_on_renewal=True), sf_extension("nt0")])]), plan()),
    ],
    "INITIAL_SYNC_DISABLED": [lambda: (world(), plan(keyVaultExtension={"requireInitialSync": False}))],
    "CERTIFICATE_STORE_MISMATCH": [
        lambda: (world(), plan(keyVaultExtension={"certificateStoreLocation": "CurrentUser"})),
        lambda: (world(), plan(keyVaultExtension={"certificateStoreName": "TrustedPeople"})),
        edit(lambda s: s.node_types[0].extensions[0].settings["certificate"].update(x509StoreName="Root")),
        edit(set_attr("cluster.x509_store_name", "TrustedPeople")),
    ],
    "LINUX_DELIVERY_BY_VMSS_SECRET": [lambda: (linux_world(), plan())],
    "VAULT_NOT_ENABLED_FOR_DEPLOYMENT": [edit(set_attr("vault.enabled_for_deployment", False))],
    "IDENTITY_WILL_BE_CREATED": [edit(set_attr("identity.exists", False)), edit(set_attr("identity", None))],
    "VAULT_ACCESS_WILL_BE_GRANTED": [edit(set_attr("vault.access_policies", [])), lambda: (rbac_world(None)(), plan()),
                                     edit(set_attr("identity", IdentityView(IDENTITY_ID, exists=False)))],
    "MANAGED_IDENTITY_OPERATOR_NEEDED": [lambda: (world(), plan())],
    "MANUAL_UPGRADE_POLICY": [lambda: (world(node_types=[node_type(upgrade_mode="Manual")]), plan())],
    "INSTANCES_NOT_ON_LATEST_MODEL": [edit(set_attr("node_types.0.instances.1.latest_model_applied", False))],
    "OLD_CERTS_REMAIN_ON_NODES": [lambda: (world(), plan(cleanup={"removeOldSecrets": True}))],
    "OLD_SECRETS_KEPT": [lambda: (world(), plan())],
    "VAULT_NETWORK_RESTRICTED": [edit(firewalled()), edit(firewalled(bypass="None", subnet_rule=True)),
                                 lambda: (linux_world_firewalled(), plan())],
}

NEGATIVE: dict[str, list[Case]] = {
    "RESOURCE_NOT_FOUND": [lambda: (world(), plan()), with_problem("ResourceNotFound", IDENTITY_ID),
                           lambda: (world(), plan(nodeTypes=[vmss_id("nt0")]))],
    "PERMISSION_DENIED": [lambda: (world(), plan()), with_problem("NotFound", VAULT_ID)],
    "DISCOVERY_INCOMPLETE": [lambda: (world(), plan()), with_problem("Forbidden", VAULT_ID)],
    "CLUSTER_UNMANAGEABLE": [lambda: (world(), plan()), edit(set_attr("cluster.cluster_state", "UpdatingUserCertificate"))],
    "CLUSTER_NOT_READY": [lambda: (world(), plan()), edit(set_attr("cluster.cluster_state", "UpgradeServiceUnreachable"))],
    "UNSUPPORTED_CLUSTER": [lambda: (world(), plan()), lambda: (already_cn()(), plan()), lambda: (world(cluster=False, node_types=[]), plan())],
    "NODE_TYPE_NOT_COVERED": [lambda: (world(), plan()), edit(set_attr("cluster.node_type_names", ["NT0"]))],
    "SF_EXTENSION_MISSING": [lambda: (world(), plan())],
    "ALREADY_COMMON_NAME": [lambda: (world(), plan())],
    "REVERSE_PROXY_BY_THUMBPRINT": [lambda: (world(), plan())],
    "GOAL_DISABLED": [lambda: (world(), plan())],
    "GOAL_SELF_SIGNED": [lambda: (world(), plan())],
    "GOAL_NOT_YET_VALID": [lambda: (world(), plan()), with_goal({"name": "goal-today", "valid_from_days": 0})],
    "GOAL_EXPIRING": [lambda: (world(), plan()),
                      lambda: (world(goal=goal_view(leaf("goal-short", valid_from_days=-355, valid_days=365))), plan(checks={"expiryWarningDays": 5}))],
    "OLD_CERT_EXPIRING": [lambda: (world(), plan()), old_cert_case(12, checks={"expiryWarningDays": 10}), old_cert_case(-3)],
    "OLD_CERT_EXPIRED": [lambda: (world(), plan()), old_cert_case(12), old_cert_case(-3, goal_secondary=True)],
    "KEY_NOT_EXPORTABLE": [lambda: (world(), plan()), with_goal(exportable=None)],
    "CN_MISMATCH": [lambda: (world(), plan()), lambda: (world(), plan(goal={"commonName": GOAL_CN}))],
    "SAN_MISSING_CN": [lambda: (world(), plan()), with_goal({"name": "goal-upper-san", "sans": (GOAL_CN.upper(), "www.contoso.com")})],
    "CLIENT_AUTH_EKU_MISSING": [lambda: (world(), plan()), with_goal({"name": "goal-no-eku", "ekus": ()})],
    "GOAL_KEY_CNG_ONLY": [lambda: (world(), plan()),
                          lambda: (linux_world_ec(), plan())],  # Linux has no key providers
    "GOAL_NOT_PFX": [lambda: (world(), plan()),
                     lambda: (world(goal=goal_view(content_type="application/x-pem-file"), node_types=[node_type(os="linux")]), plan())],
    "SHARED_SUBJECT": [lambda: (world(), plan()),
                       edit(lambda s: s.vault_certificates.append(VaultCertificateView("api", product_facts(leaf("api", cn="api.contoso.com"))))),
                       edit(lambda s: s.vault_certificates.append(VaultCertificateView("pending", None)))],
    "NEWER_CERT_SAME_CN": [lambda: (world(), plan()), edit(newer_same_cn(-2))],
    "ISSUER_NOT_PINNED": [lambda: (world(), plan()), lambda: (world(), plan(goal={"pinnedIssuers": [thumb("issuing2"), thumb("issuing")]})),
                          lambda: (already_cn()(), plan()), lambda: (already_cn("")(), plan()),
                          with_goal(issuer=None), with_goal({"name": "goal-self", "issuer": None}, issuer=None)],
    "ISSUER_UNVERIFIED": [lambda: (world(), plan()), lambda: (world(goal=goal_view(issuer=None)), plan(goal={"pinnedIssuers": [], "allowUnpinnedIssuers": True}))],
    "ISSUER_LIST_INVALID": [lambda: (world(), plan()), lambda: (already_cn()(), plan()), lambda: (already_cn(f"{thumb('issuing')}, {thumb('issuing2')}")(), plan())],
    "ISSUER_PINNING_DISABLED": [lambda: (world(), plan()), lambda: (world(), plan(goal={"allowUnpinnedIssuers": True}))],
    "REVOCATION_UNREACHABLE": [lambda: (world(), plan()), edit(lambda s: _crl(s, reachable=True)),
                               edit(lambda s: _crl(s, reachable=False), checks={"acceptUnreachableRevocation": True})],
    "GOAL_REVOKED": [lambda: (world(), plan()), edit(lambda s: _crl(s, reachable=True, revoked=False))],
    "ISSUER_PIN_INCOMPLETE": [lambda: (world(), plan()),
                              edit(with_issuer_sibling, goal={"pinnedIssuers": [thumb("issuing"), issuing_sibling()]}),
                              edit(with_issuer_sibling, goal={"pinnedIssuers": [], "allowUnpinnedIssuers": True})],
    "EXTENSION_VERSION_UNSAFE": [lambda: (world(), plan()), lambda: (world(), plan(keyVaultExtension={"linuxVersion": "4.0"})),
                                 lambda: (world(node_types=[node_type(extensions=[kv_extension(version="3.0"), sf_extension("nt0")])]), plan())],
    "EXTENSION_AUTO_UPGRADE": [lambda: (world(), plan()), lambda: (already_cn()(), plan())],
    "KV_EXTENSION_CLIENT_ID_STALE": [
        lambda: (world(), plan()),  # no Key Vault extension yet
        lambda: (world(node_types=[node_type(identities=[IDENTITY_ID], extensions=[kv_extension(), sf_extension("nt0")])]), plan()),  # current id
        lambda: (world(node_types=[node_type(extensions=[kv_extension(client_id="other"), sf_extension("nt0")])]), plan()),  # identity not assigned
    ],
    "KV_EXTENSION_IDENTITY_CONFLICT": [
        lambda: (world(), plan()),  # no Key Vault extension yet
        lambda: (world(node_types=[node_type(extensions=[kv_extension(observed=[secret_url("app-cert")]), sf_extension("nt0")])]), plan()),  # same identity
        lambda: (world(node_types=[node_type(extensions=[kv_extension(client_id="other"), sf_extension("nt0")])]), plan()),  # it reads only the goal
    ],
    "LINK_ON_RENEWAL_ENABLED": [lambda: (world(), plan()), lambda: (linux_world(), plan(keyVaultExtension={"linkOnRenewal": True})),
                                lambda: (world(node_types=[node_type(os="linux", extensions=[kv_extension(link_on_renewal=True, linux=True), sf_extension("nt0", linux=True)])]), plan())],
    "INITIAL_SYNC_DISABLED": [lambda: (world(), plan())],
    "CERTIFICATE_STORE_MISMATCH": [
        lambda: (world(), plan()),
        lambda: (world(), plan(keyVaultExtension={"certificateStoreName": "MY"})),  # store names are case-insensitive
        lambda: (linux_world(), plan(keyVaultExtension={"certificateStoreLocation": "CurrentUser"})),  # not used on Linux
    ],
    "LINUX_DELIVERY_BY_VMSS_SECRET": [lambda: (world(), plan())],
    "VAULT_NOT_ENABLED_FOR_DEPLOYMENT": [lambda: (world(), plan()), edit(goal_in_secrets),
                                         lambda: (_disabled(already_cn()()), plan())],
    "IDENTITY_WILL_BE_CREATED": [lambda: (world(), plan())],
    "VAULT_ACCESS_WILL_BE_GRANTED": [lambda: (world(), plan()), lambda: (rbac_world(VAULT_ID)(), plan()), lambda: (rbac_world(RG_ID)(), plan())],
    "MANAGED_IDENTITY_OPERATOR_NEEDED": [lambda: (world(node_types=[node_type(identities=[IDENTITY_ID.lower()])]), plan())],
    "MANUAL_UPGRADE_POLICY": [lambda: (world(), plan())],
    "INSTANCES_NOT_ON_LATEST_MODEL": [lambda: (world(), plan())],
    "OLD_CERTS_REMAIN_ON_NODES": [lambda: (world(), plan()), lambda: (already_cn()(), plan(cleanup={"removeOldSecrets": True}))],
    "OLD_SECRETS_KEPT": [lambda: (world(), plan(cleanup={"removeOldSecrets": True})), lambda: (already_cn()(), plan())],
    "VAULT_NETWORK_RESTRICTED": [lambda: (world(), plan()), edit(firewalled(subnet_rule=True)),
                                 edit(set_attr("vault_network", VaultNetworkView(public_network_access="Enabled")))],
}


def _disabled(snapshot: Snapshot) -> Snapshot:
    snapshot.vault.enabled_for_deployment = False  # type: ignore[union-attr]
    return snapshot


def _cases(table: dict[str, list[Case]]) -> list[object]:
    return [pytest.param(code, case, id=f"{code}-{i}") for code, cases in table.items() for i, case in enumerate(cases)]


def _without_identity(snapshot):  # the plan's identity does not exist yet (it will be a new one)
    snapshot.identity = None
    return snapshot


def test_every_code_is_tested_both_ways() -> None:
    assert set(POSITIVE) == set(CATALOGUE)
    assert set(NEGATIVE) == set(CATALOGUE)


@pytest.mark.parametrize("code,case", _cases(POSITIVE))
def test_code_is_raised(code: str, case: Case) -> None:
    snapshot, spec = case()
    findings = found(snapshot, spec)
    assert code in findings, f"{code} missing; got {sorted(findings)}"
    for item in findings[code]:
        assert item.severity == CATALOGUE[code][0]
        assert item.runbook == f"findings/{code}.md"
        assert item.message and item.remedy and "\n" not in item.message


@pytest.mark.parametrize("code,case", _cases(NEGATIVE))
def test_code_is_not_raised(code: str, case: Case) -> None:
    snapshot, spec = case()
    assert code not in found(snapshot, spec)


# -- properties of the whole ------------------------------------------------------------------------------
def test_clean_world_has_no_errors_or_warnings() -> None:
    findings = run_checks(world(), plan(), NOW)
    assert {f.severity for f in findings} == {INFO}


def test_findings_are_sorted_errors_first_and_unique() -> None:
    snapshot = world(goal=goal_view(leaf("goal-self", issuer=None), issuer=None))
    snapshot.cluster.cluster_state = "Updating"  # type: ignore[union-attr]
    findings = run_checks(snapshot, plan(cleanup={"removeOldSecrets": True}), NOW)
    ranks = [SEVERITY_ORDER[f.severity] for f in findings]
    assert ranks == sorted(ranks) and findings[0].severity == ERROR
    assert len(findings) == len(set(findings))


def test_checks_are_pure() -> None:
    snapshot, spec = world(), plan()
    before, spec_before = copy.deepcopy(snapshot.to_dict()), spec.model_dump()
    first = run_checks(snapshot, spec, NOW)
    assert run_checks(snapshot, spec, NOW) == first
    assert snapshot.to_dict() == before and spec.model_dump() == spec_before


def test_naive_now_is_utc() -> None:
    assert run_checks(world(), plan(), NOW.replace(tzinfo=None)) == run_checks(world(), plan(), NOW)


def test_missing_goal_reported_once_when_the_vault_is_denied() -> None:
    snapshot = world(goal=False)
    snapshot.problems.append(Problem("Forbidden", f"https://{VAULT_ID.rsplit('/', 1)[1]}.vault.azure.net/certificates/{GOAL_NAME}", "(403)"))
    findings = found(snapshot, plan())
    assert "RESOURCE_NOT_FOUND" not in findings and len(findings["PERMISSION_DENIED"]) == 1


def test_unmanageable_cluster_is_not_also_not_ready() -> None:
    snapshot = world()
    snapshot.cluster.cluster_state, snapshot.cluster.provisioning_state = "UpgradeServiceUnreachable", "Failed"  # type: ignore[union-attr]
    assert "CLUSTER_NOT_READY" not in found(snapshot, plan())


def test_issuer_not_pinned_names_the_direct_issuer() -> None:
    message = found(world(), plan(goal={"pinnedIssuers": [thumb("root")]}))["ISSUER_NOT_PINNED"][0].message
    assert thumb("issuing") in message and "Contoso Issuing CA 1" in message and "direct issuer" in message


def test_expiry_message_counts_days() -> None:
    snapshot = world(goal=goal_view(leaf("goal-short", valid_from_days=-355, valid_days=365)))
    assert "expires in 10 day(s)" in found(snapshot, plan())["GOAL_EXPIRING"][0].message
    snapshot = world(goal=goal_view(leaf("goal-expired", valid_from_days=-400, valid_days=365)))
    assert "expired on" in found(snapshot, plan())["GOAL_EXPIRING"][0].message


def test_cn_case_difference_is_explained() -> None:
    message = found(world(), plan(goal={"commonName": GOAL_CN.upper()}))["CN_MISMATCH"][0].message
    assert "case-sensitive" in message


def test_shared_subject_names_the_other_certificate() -> None:
    snapshot = world()
    snapshot.vault_certificates.append(VaultCertificateView("web", product_facts(leaf("web", cn=GOAL_CN, sans=("www.contoso.com",)))))
    items = found(snapshot, plan())["SHARED_SUBJECT"]
    assert len(items) == 1 and "'web'" in items[0].message and items[0].resource_id == VAULT_ID
    assert OLD_NAME not in items[0].message


def test_every_catalogue_entry_is_well_formed() -> None:
    for code, (severity, summary) in CATALOGUE.items():
        assert code.isupper() and code.replace("_", "").isalnum()
        assert severity in SEVERITY_ORDER and summary
