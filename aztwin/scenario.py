"""Build the twin's world from a scenario spec.

Reading and checking scenario files lives in :mod:`.scenario_load` (re-exported here); by the time a spec
reaches :func:`build_world` every reference in it resolves, so building does not fail on input.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Callable

from .clock import SimClock
from .pki import Pki
from .providers.authorization.models import ROLES_BY_NAME
from .providers.compute.guest import InstalledCert
from .providers.identity.models import FederatedCredential, Principal, TokenService
from .providers.keyvault.models import CertificateVersion, Vault
from .providers.servicefabric.models import Cluster
from .resources import ResourceId
from .scenario_load import (
    SCENARIO_PACKAGE, ScenarioError, builtin_names, builtin_path, goal_targets, is_thumbprint, load_scenario, parse_scenario, start_of,
)
from .scenario_network import build_network
from .scenario_model import ClusterGoalSpec, ClusterSpec, NodeTypeSpec, RoleSpec, ScenarioSpec, duration_seconds
from .wire import TwinError
from .world import TwinSettings, World

_NAMESPACE = uuid.UUID("3f1d8a52-6c1e-4b0a-bb7d-91c2e5a4f0d7")


# -- building the world --------------------------------------------------------------------------------
class _Builder:
    def __init__(self, spec: ScenarioSpec, world: World, start: dt.datetime) -> None:
        self.spec, self.world, self.start = spec, world, start
        self.principal_ids: dict[str, str] = {}
        self.versions: dict[tuple[str, str], list[CertificateVersion]] = {}  # (vault, cert) -> versions
        self.clusters: list[Cluster] = []  # in the order of spec.clusters

    def guid(self, *parts: str) -> str:
        return str(uuid.uuid5(_NAMESPACE, "/".join((self.spec.name,) + parts)))

    def at(self, offset: Any) -> dt.datetime:
        return self.start + dt.timedelta(seconds=duration_seconds(offset))

    def subscription_id(self, name: str | None) -> str:
        if name is None:
            return self.world.default_subscription
        for sub in self.world.subscriptions.values():
            if sub.id.lower() == name.lower() or sub.display_name == name:
                return sub.id
        raise ScenarioError(f"scenario {self.spec.name}: unknown subscription '{name}'")

    def group(self, subscription: str, name: str | None) -> str:
        groups = self.world.subscription(subscription).resource_groups
        if name is None:
            return next(iter(groups.values())).name
        if name.lower() not in groups:
            raise ScenarioError(f"scenario {self.spec.name}: unknown resource group '{name}'")
        return groups[name.lower()].name

    def principal(self, reference: str) -> str:
        try:
            return self.principal_ids[reference]
        except KeyError:
            raise ScenarioError(f"scenario {self.spec.name}: unknown principal '{reference}' (use operator, identity:<name> or principal:<name>)") from None

    def scope(self, role: RoleSpec) -> str:
        """The ARM scope of a role; ``subscription`` and ``resourceGroup:<name>`` lie in ``role.subscription``."""
        text, sub = role.scope, self.subscription_id(role.subscription)
        kind, _, name = text.partition(":")
        if text == "subscription":
            return f"/subscriptions/{sub}"
        if kind == "resourceGroup":
            return f"/subscriptions/{sub}/resourceGroups/{self.group(sub, name)}"
        if kind == "vault":
            vault = self.world.keyvault.by_name(name)
            if vault is None:
                raise ScenarioError(f"scenario {self.spec.name}: role scope names unknown vault '{name}'")
            return vault.rid.id
        if kind == "identity":
            for identity in self.world.msi.identities.values():
                if identity.rid.name == name:
                    return identity.rid.id
            raise ScenarioError(f"scenario {self.spec.name}: role scope names unknown identity '{name}'")
        return text

    def assign(self, principal_id: str, role: str, scope: str, kind: str) -> None:
        definition = ROLES_BY_NAME.get(role.lower())
        if definition is None:
            raise ScenarioError(f"scenario {self.spec.name}: unknown role '{role}'")
        parts = scope.split("/")  # the assignment lives in its scope's subscription
        subscription = parts[2] if scope.lower().startswith("/subscriptions/") and len(parts) > 2 else self.world.default_subscription
        self.world.authorization.assign(
            scope, definition.guid, principal_id, kind, self.world.iso_now(),
            subscription, name=self.guid("role", principal_id, role, scope),
        )

    def build(self) -> None:
        spec, world = self.spec, self.world
        for index, subscription_spec in enumerate(spec.subscriptions):
            subscription = world.add_subscription(subscription_spec.id or self.guid("subscription", str(index)), subscription_spec.name)
            for group in subscription_spec.resourceGroups:
                world.add_resource_group(subscription.id, group.name, group.location)
        operator = Principal(self.guid("operator"), world.identity.tenant_id, spec.operator.name, "ServicePrincipal", self.guid("operator-app"))
        world.identity.add(operator)
        world.identity.default_principal_id = operator.object_id
        self.principal_ids["operator"] = operator.object_id
        for principal_spec in spec.principals:
            principal = Principal(
                self.guid("principal", principal_spec.name), world.identity.tenant_id, principal_spec.name, "ServicePrincipal",
                self.guid("app", principal_spec.name), principal_spec.clientSecret,
                [FederatedCredential(f.issuer, f.subject, f.audience) for f in principal_spec.federated],
            )
            world.identity.add(principal)
            self.principal_ids[f"principal:{principal_spec.name}"] = principal.object_id
        world.pki = Pki(world.base_url)
        world.pki.reachable = spec.pkiEndpoints == "reachable"
        for authority in spec.pki:
            not_before = self.at(authority.validFrom)
            not_after = not_before + dt.timedelta(seconds=duration_seconds(authority.validFor))
            if authority.reissueOf:  # same subject, issuer and key; published with it at its AIA (.p7c)
                issued = world.pki.reissue(authority.name, authority.reissueOf, not_before, not_after)
            else:
                issued = world.pki.create_authority(authority.name, authority.subject, not_before, not_after,
                                                    issuer=authority.issuer, reuse_key_of=authority.reuseKeyOf)
            if authority.issuer is None and authority.trusted:
                world.servicefabric.trusted_roots.add(issued.thumbprint)
        for identity_spec in spec.identities:
            sub = self.subscription_id(identity_spec.subscription)
            rid = ResourceId(sub, self.group(sub, identity_spec.resourceGroup), "Microsoft.ManagedIdentity", "userAssignedIdentities", identity_spec.name)
            location = world.resource_group(sub, rid.resource_group).location
            identity = world.msi.create(rid, location)
            self.principal_ids[f"identity:{identity_spec.name}"] = identity.principal_id
        self._vaults()
        build_network(spec, world, self)
        for role in spec.operator.roles:
            self.assign(operator.object_id, role.role, self.scope(role), "ServicePrincipal")
        for principal_spec in spec.principals:
            for role in principal_spec.roles:
                self.assign(self.principal_ids[f"principal:{principal_spec.name}"], role.role, self.scope(role), "ServicePrincipal")
        for vault_spec in spec.vaults:
            vault = world.keyvault.named(vault_spec.name)
            for assignment in vault_spec.roleAssignments:
                self.assign(self.principal(assignment.principal), assignment.role, vault.rid.id, "ServicePrincipal")
        world.servicefabric.suspended = True
        for cluster_spec in spec.clusters:
            self.clusters.append(self._cluster(cluster_spec))
        world.servicefabric.suspended = False
        self._recreate_identities()
        world.servicefabric.on_nodes_changed()
        for cluster_spec, cluster in zip(spec.clusters, self.clusters):  # a scenario's own state wins over the verdict
            if cluster_spec.state != "Ready":
                cluster.cluster_state = cluster_spec.state
        world.goals = [self._goal(self.clusters[index], goal) for index, goal in goal_targets(spec)]
        world.goal = world.goals[0] if world.goals else {}
        # From here on, grants made through the API wait for propagation (the scenario's own are in force).
        world.authorization.role_assignment_delay = duration_seconds(spec.propagation.roleAssignments)
        world.keyvault.access_policy_delay = duration_seconds(spec.propagation.accessPolicies)

    def _vaults(self) -> None:
        world = self.world
        for vault_spec in self.spec.vaults:
            sub = self.subscription_id(vault_spec.subscription)
            group = self.group(sub, vault_spec.resourceGroup)
            rid = ResourceId(sub, group, "Microsoft.KeyVault", "vaults", vault_spec.name)
            policies = []
            for policy in vault_spec.accessPolicies:
                permissions = {k: v for k, v in (("certificates", policy.certificates), ("secrets", policy.secrets), ("keys", policy.keys)) if v}
                policies.append({"tenantId": world.identity.tenant_id, "objectId": self.principal(policy.principal), "permissions": permissions})
            vault = world.keyvault.add_vault(
                rid, world.resource_group(sub, group).location, access_policies=policies,
                enable_rbac=vault_spec.rbac, enabled_for_deployment=vault_spec.enabledForDeployment,
            )
            for certificate in vault_spec.certificates:
                for index, version in enumerate(certificate.versions):
                    not_before = self.at(version.validFrom)
                    issued = world.pki.issue_leaf(
                        f"{vault_spec.name}/{certificate.name}@{index}", version.subject, not_before,
                        not_before + dt.timedelta(seconds=duration_seconds(version.validFor)),
                        issuer=None if version.issuer == "self" else version.issuer, sans=version.sans, ekus=list(version.ekus),
                    )
                    added = world.keyvault.add_version(
                        vault, certificate.name, issued, exportable=certificate.exportable,
                        content_type=certificate.contentType, issuer_name=certificate.issuerName,
                        key_provider=certificate.keyProvider,
                    )
                    added.enabled = version.enabled
                    self.versions.setdefault((vault_spec.name.lower(), certificate.name.lower()), []).append(added)

    def version(self, reference: str) -> tuple[Vault, CertificateVersion]:
        vault_name, _, rest = reference.partition("/")
        cert_name, _, index = rest.partition("@")
        versions = self.versions[(vault_name.lower(), cert_name.lower())]
        return self.world.keyvault.named(vault_name), versions[int(index)] if index else versions[-1]

    def thumbprint(self, reference: str) -> str:
        if is_thumbprint(reference):
            return reference.upper()
        return self.version(reference)[1].issued.thumbprint

    def issuer_thumbprints(self, names: list[str]) -> str:
        """Authority names, literal thumbprints, or ``vault/certificate`` (a self-signed certificate pinned to itself)."""
        out = []
        for name in names:
            if is_thumbprint(name):
                out.append(name.upper())
            elif "/" in name:
                out.append(self.thumbprint(name))
            else:
                out.append(self.world.pki.authority(name).thumbprint)
        return ",".join(dict.fromkeys(out))

    def _declaration(self, certificate: Any) -> tuple[str, dict[str, Any]]:
        if certificate.commonNames:
            return "certificateCommonNames", {
                "commonNames": [
                    {"certificateCommonName": c.commonName, "certificateIssuerThumbprint": self.issuer_thumbprints(c.issuers)}
                    for c in certificate.commonNames
                ],
                "x509StoreName": "My",
            }
        value = {"thumbprint": self.thumbprint(certificate.thumbprint), "x509StoreName": "My"}
        if certificate.secondary:
            value["thumbprintSecondary"] = self.thumbprint(certificate.secondary)
        return "certificate", value

    def _cluster(self, spec: ClusterSpec) -> Cluster:
        world = self.world
        sub = self.subscription_id(spec.subscription)
        group = self.group(sub, spec.resourceGroup)
        location = (spec.location or world.resource_group(sub, group).location).replace(" ", "").lower()
        rid = ResourceId(sub, group, "Microsoft.ServiceFabric", "clusters", spec.name)
        key, declaration = self._declaration(spec.certificate)
        properties: dict[str, Any] = {
            key: declaration,
            "managementEndpoint": f"https://{spec.name}.{location}.cloudapp.azure.com:19080",
            "clusterCodeVersion": spec.codeVersion,
            "upgradeMode": "Manual",
            "reliabilityLevel": "Silver",
            "vmImage": "Windows" if spec.nodeTypes[0].os == "windows" else "Linux",
            "fabricSettings": _fabric_settings(spec.fabricSettings),
            "clientCertificateThumbprints": [
                {"isAdmin": c.isAdmin, "certificateThumbprint": self.thumbprint(c.thumbprint)} for c in spec.clientCertificateThumbprints
            ],
            "clientCertificateCommonNames": [
                {"isAdmin": c.isAdmin, "certificateCommonName": c.commonName, "certificateIssuerThumbprint": self.issuer_thumbprints(c.issuers)}
                for c in spec.clientCertificateCommonNames
            ],
            "addOnFeatures": ["DnsService"],
            "nodeTypes": [
                {
                    "name": n.name,
                    "clientConnectionEndpointPort": 19000,
                    "httpGatewayEndpointPort": 19080,
                    "applicationPorts": {"startPort": 20000, "endPort": 30000},
                    "ephemeralPorts": {"startPort": 49152, "endPort": 65534},
                    "isPrimary": n.primary or index == 0,
                    "vmInstanceCount": n.instances,
                    "durabilityLevel": n.durability,
                }
                for index, n in enumerate(spec.nodeTypes)
            ],
        }
        if spec.reverseProxyCertificate:
            reverse_key, reverse = self._declaration(spec.reverseProxyCertificate)
            properties["reverseProxyCertificate" if reverse_key == "certificate" else "reverseProxyCertificateCommonNames"] = reverse
        cluster = world.servicefabric.create(rid, location, {"location": location, "properties": properties, "tags": {}})
        for node_type in spec.nodeTypes:
            self._scale_set(spec, node_type, cluster, sub, group, location, key, declaration)
        cluster.unhealthy_nodes = {entry.node: entry.reason for entry in spec.unhealthyNodes}
        cluster.settle_seconds = max(0.0, duration_seconds(spec.settleWindow))
        if spec.state != "Ready":
            cluster.provisioning_state = "Updating"

            def settle() -> None:
                cluster.cluster_state = "Ready"
                cluster.provisioning_state = "Succeeded"

            world.after(duration_seconds(spec.busyFor), f"sf-busy {spec.name}", settle)
        return cluster

    def _scale_set(self, cluster_spec: ClusterSpec, node_type: NodeTypeSpec, cluster: Cluster, sub: str, group: str,
                   location: str, declaration_key: str, declaration: dict[str, Any]) -> None:
        world = self.world
        linux = node_type.os == "linux"
        secrets: dict[str, dict[str, Any]] = {}
        for reference in node_type.secrets:
            vault, version = self.version(reference)
            name = reference.partition("/")[2].split("@")[0]
            entry = {"certificateUrl": world.keyvault.secret_url(vault, name, version.version)}
            if not linux:
                entry["certificateStore"] = "My"
            secrets.setdefault(vault.rid.id, {"sourceVault": {"id": vault.rid.id}, "vaultCertificates": []})["vaultCertificates"].append(entry)
        if declaration_key == "certificate":
            sf_certificate: dict[str, Any] = {"thumbprint": declaration["thumbprint"], "x509StoreName": "My"}
        else:
            sf_certificate = {"commonNames": [c["certificateCommonName"] for c in declaration["commonNames"]], "x509StoreName": "My"}
        sf_settings: dict[str, Any] = {
            "clusterEndpoint": cluster.endpoint,
            "nodeTypeRef": node_type.name,
            "dataPath": "/mnt/sfroot" if linux else "D:\\\\SvcFab",
            "durabilityLevel": node_type.durability,
            "enableParallelJobs": True,
            "nicPrefixOverride": "10.0.0.0/24",
            "certificate": sf_certificate,
        }
        if declaration_key == "certificate" and declaration.get("thumbprintSecondary"):
            sf_settings["certificateSecondary"] = {"thumbprint": declaration["thumbprintSecondary"], "x509StoreName": "My"}
        sf_extension: dict[str, Any] = {
            "name": f"{node_type.name}_ServiceFabricNode",
            "properties": {
                "publisher": "Microsoft.Azure.ServiceFabric",
                "type": "ServiceFabricLinuxNode" if linux else "ServiceFabricNode",
                "typeHandlerVersion": "1.1",
                "autoUpgradeMinorVersion": True,
                "settings": sf_settings,
                "protectedSettings": {"StorageAccountKey1": "twin-redacted", "StorageAccountKey2": "twin-redacted"},
            },
        }
        extensions = []
        identity_ids = [self._identity_id(name) for name in node_type.identities]
        if node_type.keyVaultExtension:
            kv = node_type.keyVaultExtension
            identity_id = self._identity_id(kv.identity)
            if identity_id not in identity_ids:
                identity_ids.append(identity_id)
            client_id = world.msi.get(identity_id).client_id
            observed = []
            for reference in kv.observed:
                vault, _ = self.version(reference)
                observed.append(world.keyvault.secret_url(vault, reference.partition("/")[2].split("@")[0]))
            management: dict[str, Any] = {
                "pollingIntervalInS": str(kv.pollingIntervalInS),
                "requireInitialSync": kv.requireInitialSync,
            }
            if linux:
                management["observedCertificates"] = [{"url": u, "certificateStoreLocation": "/var/lib/waagent/Microsoft.Azure.KeyVault.Store"} for u in observed]
            elif kv.version.startswith("1"):
                management.update({"observedCertificates": observed, "certificateStoreName": "MY", "certificateStoreLocation": "LocalMachine", "linkOnRenewal": kv.linkOnRenewal})
            else:
                management["observedCertificates"] = [{"url": u, "certificateStoreName": "MY", "certificateStoreLocation": "LocalMachine"} for u in observed]
                management["linkOnRenewal"] = kv.linkOnRenewal
            kv_properties: dict[str, Any] = {
                "publisher": "Microsoft.Azure.KeyVault",
                "type": "KeyVaultForLinux" if linux else "KeyVaultForWindows",
                "typeHandlerVersion": kv.version,
                "autoUpgradeMinorVersion": True,
                "settings": {
                    "secretsManagementSettings": management,
                    "authenticationSettings": {"msiEndpoint": "http://169.254.169.254/metadata/identity/oauth2/token", "msiClientId": client_id},
                },
            }
            if kv.enableAutomaticUpgrade is not None:
                kv_properties["enableAutomaticUpgrade"] = kv.enableAutomaticUpgrade
            extensions.append({"name": kv.name, "properties": kv_properties})
            sf_extension["properties"]["provisionAfterExtensions"] = [kv.name]
        extensions.append(sf_extension)
        os_profile: dict[str, Any] = {
            "computerNamePrefix": node_type.name,
            "adminUsername": "sfadmin",
            "secrets": list(secrets.values()),
        }
        if linux:
            os_profile["linuxConfiguration"] = {"disablePasswordAuthentication": True}
        else:
            os_profile["windowsConfiguration"] = {"provisionVMAgent": True, "enableAutomaticUpdates": True}
        body: dict[str, Any] = {
            "location": location,
            "sku": {"name": "Standard_D2s_v3", "tier": "Standard", "capacity": node_type.instances},
            "properties": {
                "upgradePolicy": {"mode": node_type.upgradePolicy},
                "overprovision": False,
                "singlePlacementGroup": True,
                "orchestrationMode": "Uniform",
                "virtualMachineProfile": {
                    "osProfile": os_profile,
                    "storageProfile": {
                        "osDisk": {"osType": "Linux" if linux else "Windows", "createOption": "FromImage", "caching": "ReadOnly", "managedDisk": {"storageAccountType": "Standard_LRS"}},
                        "imageReference": (
                            {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-focal", "sku": "20_04-lts-gen2", "version": "latest"}
                            if linux else
                            {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2022-Datacenter", "version": "latest"}
                        ),
                    },
                    "networkProfile": {"networkInterfaceConfigurations": [{"name": f"nic-{node_type.name}", "properties": {"primary": True, "ipConfigurations": [{"name": "ipconfig", "properties": {"subnet": {"id": f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Network/virtualNetworks/vnet-sf/subnets/{node_type.name}"}}}]}}]},
                    "extensionProfile": {"extensions": extensions},
                },
            },
            "tags": {"resourceType": "Service Fabric", "clusterName": cluster_spec.name},
        }
        if identity_ids:
            body["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {i: {} for i in identity_ids}}
        rid = ResourceId(sub, group, "Microsoft.Compute", "virtualMachineScaleSets", node_type.name)
        world.compute.create(rid, body, settle=True)

    def _recreate_identities(self) -> None:
        """``recreatedAfterUse``: the identity deleted and created again under its resource id, after the nodes got
        their certificates with it: new client and principal ids; grants and extension settings name the old ones."""
        for identity_spec in (i for i in self.spec.identities if i.recreatedAfterUse):
            identity = self.world.msi.get(self._identity_id(identity_spec.name))
            self.world.msi.delete(identity.rid)
            self.world.msi.create(identity.rid, identity.location)

    def _identity_id(self, name: str) -> str:
        for identity in self.world.msi.identities.values():
            if identity.rid.name == name:
                return identity.rid.id
        raise ScenarioError(f"scenario {self.spec.name}: unknown identity '{name}'")

    def _goal(self, cluster: Cluster, goal: ClusterGoalSpec) -> dict[str, Any]:
        """What ``/_emulator/world`` publishes of a goal (sfmigrate writes a plan file from it)."""
        world = self.world
        vault = world.keyvault.named(goal.vault)
        existing = next((i for i in world.msi.identities.values() if i.rid.name == goal.identity), None)
        identity_id = existing.rid.id if existing else ResourceId(cluster.rid.subscription, cluster.rid.resource_group, "Microsoft.ManagedIdentity", "userAssignedIdentities", goal.identity).id
        return {
            "cluster": cluster.rid.id,
            "vault": vault.rid.id,
            "certificate": goal.certificate,
            "commonName": goal.commonName,
            "pinnedIssuers": [t for t in self.issuer_thumbprints(goal.pinnedIssuers).split(",") if t],
            "allowUnpinnedIssuers": goal.allowUnpinnedIssuers,
            "identity": identity_id,
        }


def build_world(spec: ScenarioSpec, base_url: str, settings: TwinSettings | None = None,
                tokens: TokenService | None = None, clock: SimClock | None = None, vault_uri: Callable[[str], str] | None = None) -> World:
    settings = settings or TwinSettings()
    clock = clock or SimClock(start_of(spec), settings.time_scale)
    tenant = spec.tenantId or str(uuid.uuid5(_NAMESPACE, spec.name + "/tenant"))
    world = World(base_url=base_url, tenant_id=tenant, settings=settings, clock=clock, tokens=tokens)
    world.scenario_name = spec.name
    world.vault_uri = vault_uri
    world.scenario_description = spec.description.strip()
    try:
        _Builder(spec, world, clock.start).build()
    except ScenarioError:
        raise
    except (KeyError, ValueError, OverflowError, StopIteration, TwinError) as exc:  # a gap in scenario_load's checks
        message = exc.message if isinstance(exc, TwinError) else str(exc)
        raise ScenarioError(" ".join(f"scenario {spec.name}: cannot build the world: {message}".split())) from None
    return world


__all__ = [
    "InstalledCert", "SCENARIO_PACKAGE", "ScenarioError", "build_world", "builtin_names", "builtin_path", "load_scenario",
    "parse_scenario",
]


def _fabric_settings(extra: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """The cluster's ``fabricSettings``: Security/ClusterProtectionLevel, plus the scenario's sections."""
    sections: dict[str, dict[str, str]] = {"Security": {"ClusterProtectionLevel": "EncryptAndSign"}}
    for name, parameters in extra.items():
        sections.setdefault(name, {}).update(parameters)
    return [{"name": n, "parameters": [{"name": k, "value": v} for k, v in p.items()]} for n, p in sections.items()]
