"""The documented upgrades, performed by hand with Microsoft's SDK clients against a running twin.

Each function is one step an operator would take with the portal, an ARM template or a script
(research/sf_migration.md §1, §4.2, §5): GET the resource, change it, PUT/PATCH it, wait for the LRO.
Nothing here knows the twin's internals; the tests read the outcome through ``/_emulator/world``.
"""

from __future__ import annotations

from typing import Any

from twinkit import Clients

RG = "rg-sf"
CLUSTER = "sfcluster"
KV_EXTENSION = "KVVMExtension"
SF_PROTECTED_SETTINGS = {"StorageAccountKey1": "twin-redacted", "StorageAccountKey2": "twin-redacted"}  # the scenarios' values


class Step:
    """The SDK clients of one twin plus the names the steps need."""

    def __init__(self, clients: Clients, vault: str, cluster: str = CLUSTER) -> None:
        self.c = clients
        self.cluster = cluster
        self.vault_name = vault
        self.compute = clients.compute
        self.sf = clients.servicefabric

    # -- reading ----------------------------------------------------------------------------------
    def vault(self) -> Any:
        return self.c.keyvault.vaults.get(RG, self.vault_name)

    def certificate(self, name: str) -> Any:
        """The certificate bundle (latest version) from the data plane: thumbprint and versioned secret id."""
        return self.c.certificates(self.vault().properties.vault_uri).get_certificate(name)

    def thumbprint(self, name: str) -> str:
        return self.certificate(name).properties.x509_thumbprint.hex().upper()

    def node_types(self) -> list[str]:
        return [n.name for n in self.sf.clusters.get(RG, self.cluster).node_types]

    # -- VMSS -------------------------------------------------------------------------------------
    def _sf_extension(self, scale_set: Any) -> Any:
        for extension in scale_set.properties.virtual_machine_profile.extension_profile.extensions:
            if extension.properties.type in ("ServiceFabricNode", "ServiceFabricLinuxNode"):
                return extension
        raise AssertionError("no Service Fabric extension")

    def _put_vmss(self, name: str, scale_set: Any, manual_upgrade: bool = True, protected_settings: bool = True) -> None:
        """PUT the model, then bring Manual-policy instances onto it (manualupgrade), as an operator must.

        A GET never returns ``protectedSettings``: like an ARM template deployment, the PUT supplies the SF
        extension's again (``protected_settings=False`` is the wrong step: a PUT of the GET as it reads)."""
        if protected_settings:
            self._sf_extension(scale_set).properties.protected_settings = dict(SF_PROTECTED_SETTINGS)
        self.compute.virtual_machine_scale_sets.begin_create_or_update(RG, name, scale_set).result()
        if manual_upgrade and scale_set.properties.upgrade_policy.mode == "Manual":
            from azure.mgmt.compute.models import VirtualMachineScaleSetVMInstanceRequiredIDs

            ids = [vm.instance_id for vm in self.compute.virtual_machine_scale_set_vms.list(RG, name)]
            self.compute.virtual_machine_scale_sets.begin_update_instances(
                RG, name, VirtualMachineScaleSetVMInstanceRequiredIDs(instance_ids=ids)
            ).result()

    def add_secret(self, certificate: str, *, node_types: list[str] | None = None, manual_upgrade: bool = True) -> None:
        """osProfile.secrets += the certificate's current version (a versioned URL, research §4.1)."""
        from azure.mgmt.compute.models import SubResource, VaultCertificate, VaultSecretGroup

        secret_id = self.certificate(certificate).secret_id
        vault_id = self.vault().id
        for name in node_types or self.node_types():
            scale_set = self.compute.virtual_machine_scale_sets.get(RG, name)
            profile = scale_set.properties.virtual_machine_profile
            linux = profile.os_profile.linux_configuration is not None
            entry = VaultCertificate(certificate_url=secret_id) if linux else VaultCertificate(certificate_url=secret_id, certificate_store="My")
            groups = profile.os_profile.secrets or []
            group = next((g for g in groups if g.source_vault.id.lower() == vault_id.lower()), None)
            if group is None:
                groups.append(VaultSecretGroup(source_vault=SubResource(id=vault_id), vault_certificates=[entry]))
            else:
                group.vault_certificates.append(entry)
            profile.os_profile.secrets = groups
            self._put_vmss(name, scale_set, manual_upgrade)

    def sf_extension_thumbprints(self, primary: str, secondary: str | None = None) -> None:
        """Service Fabric extension: settings.certificate{thumbprint} (+ certificateSecondary) on every node type."""
        for name in self.node_types():
            scale_set = self.compute.virtual_machine_scale_sets.get(RG, name)
            settings = self._sf_extension(scale_set).properties.settings
            settings["certificate"] = {"thumbprint": primary, "x509StoreName": "My"}
            if secondary:
                settings["certificateSecondary"] = {"thumbprint": secondary, "x509StoreName": "My"}
            else:
                settings.pop("certificateSecondary", None)
            self._put_vmss(name, scale_set)

    def create_identity(self, name: str = "sf-kv-reader") -> Any:
        from azure.mgmt.msi.models import Identity

        return self.c.msi.user_assigned_identities.create_or_update(RG, name, Identity(location="westeurope"))

    def grant_secrets(self, identity: Any) -> None:
        """Access policy 'secrets: get, list' for the identity (the SF doc's example, seed 003)."""
        from azure.mgmt.keyvault.models import AccessPolicyEntry, Permissions, VaultAccessPolicyParameters, VaultAccessPolicyProperties

        entry = AccessPolicyEntry(tenant_id=identity.tenant_id, object_id=identity.principal_id, permissions=Permissions(secrets=["get", "list"]))
        self.c.keyvault.vaults.update_access_policy(
            RG, self.vault_name, "add", VaultAccessPolicyParameters(properties=VaultAccessPolicyProperties(access_policies=[entry]))
        )

    def grant_secrets_role(self, identity: Any, assignment: str = "7a0c4d7e-1f0e-4a57-9d55-0c3a5b1d2e3f") -> None:
        """RBAC vault: 'Key Vault Secrets User' for the identity at the vault's scope (key-vault-windows)."""
        from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

        role = f"/subscriptions/{self.c.subscription}/providers/Microsoft.Authorization/roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6"
        self.c.authorization.role_assignments.create(
            self.vault().id, assignment,
            RoleAssignmentCreateParameters(role_definition_id=role, principal_id=identity.principal_id, principal_type="ServicePrincipal"),
        )

    def install_kv_extension(
        self, identity: Any, observed: list[str], common_name: str, *, link_on_renewal: bool = False,
        version: str = "3.0", provision_after: bool = True, polling_seconds: int = 3600, remove_secrets: bool = True,
        msi_client_id: bool = True, assign_identity: bool = True, store_name: str = "MY", store_location: str = "LocalMachine",
        kv_on_linux: bool = False,
    ) -> None:
        """VMSS identity + Key Vault VM extension + Service Fabric extension by commonNames (seed 003). On Linux node
        types the SF extension goes by common name and the VMSS secrets stay, without the Key Vault extension
        (issue 10: ServiceFabricLinuxNode cannot use KeyVaultForLinux's files); ``kv_on_linux`` is the wrong step."""
        from azure.mgmt.compute.models import (
            UserAssignedIdentitiesValue, VirtualMachineScaleSetExtension, VirtualMachineScaleSetExtensionProperties,
            VirtualMachineScaleSetIdentity,
        )

        uri = self.vault().properties.vault_uri
        urls = [f"{uri}secrets/{name}" for name in observed]
        for name in self.node_types():
            scale_set = self.compute.virtual_machine_scale_sets.get(RG, name)
            profile = scale_set.properties.virtual_machine_profile
            linux = profile.os_profile.linux_configuration is not None
            if linux and not kv_on_linux:
                sf = self._sf_extension(scale_set)
                sf.properties.settings["certificate"] = {"commonNames": [common_name], "x509StoreName": "My"}
                sf.properties.settings.pop("certificateSecondary", None)
                self._put_vmss(name, scale_set)
                continue
            if assign_identity:
                scale_set.identity = VirtualMachineScaleSetIdentity(type="UserAssigned", user_assigned_identities={identity.id: UserAssignedIdentitiesValue()})
            management: dict[str, Any] = {"pollingIntervalInS": str(polling_seconds), "requireInitialSync": True}
            if linux:
                management["observedCertificates"] = [{"url": u, "certificateStoreLocation": "/var/lib/waagent/Microsoft.Azure.KeyVault.Store"} for u in urls]
            else:
                management["observedCertificates"] = [{"url": u, "certificateStoreName": store_name, "certificateStoreLocation": store_location} for u in urls]
                management["linkOnRenewal"] = link_on_renewal
            settings: dict[str, Any] = {"secretsManagementSettings": management}
            if msi_client_id:
                settings["authenticationSettings"] = {"msiEndpoint": "http://169.254.169.254/metadata/identity/oauth2/token", "msiClientId": identity.client_id}
            kv = VirtualMachineScaleSetExtension(
                name=KV_EXTENSION,
                properties=VirtualMachineScaleSetExtensionProperties(
                    publisher="Microsoft.Azure.KeyVault", type="KeyVaultForLinux" if linux else "KeyVaultForWindows",
                    type_handler_version=version, auto_upgrade_minor_version=True, settings=settings,
                ),
            )
            profile.extension_profile.extensions = [e for e in profile.extension_profile.extensions if e.name != KV_EXTENSION] + [kv]
            sf = self._sf_extension(scale_set)
            sf.properties.settings["certificate"] = {"commonNames": [common_name], "x509StoreName": "My"}
            sf.properties.settings.pop("certificateSecondary", None)
            if provision_after:
                sf.properties.provision_after_extensions = [KV_EXTENSION]
            if remove_secrets:  # "the key vault certificate URL has been removed from the OsProfile section" (seed 003)
                profile.os_profile.secrets = []
            self._put_vmss(name, scale_set)

    # -- the cluster ------------------------------------------------------------------------------
    def patch_thumbprints(self, primary: str, secondary: str | None = None) -> Any:
        """PATCH properties.certificate (what Add-/Remove-AzServiceFabricClusterCertificate do, research §5)."""
        from azure.mgmt.servicefabric.models import CertificateDescription, ClusterUpdateParameters

        update = ClusterUpdateParameters(certificate=CertificateDescription(thumbprint=primary, thumbprint_secondary=secondary, x509_store_name="My"))
        return self._settled(self.sf.clusters.begin_update(RG, self.cluster, update).result())

    def put_common_names(self, common_name: str, issuers: list[str]) -> Any:
        """A full PUT without ``certificate`` and with ``certificateCommonNames`` (research §0.6, §1.3)."""
        from azure.mgmt.servicefabric.models import ServerCertificateCommonName, ServerCertificateCommonNames

        cluster = self.sf.clusters.get(RG, self.cluster)
        cluster.certificate = None
        cluster.certificate_common_names = ServerCertificateCommonNames(
            common_names=[ServerCertificateCommonName(certificate_common_name=common_name, certificate_issuer_thumbprint=",".join(issuers))],
            x509_store_name="My",
        )
        return self._settled(self.sf.clusters.begin_create_or_update(RG, self.cluster, cluster).result())

    def _settled(self, result: Any) -> Any:
        """Wait out the settle window after a cluster upgrade, as the doc's operator should (docs/twin.md,
        "Cluster upgrades": Service Fabric rolls on for about 15 minutes after ARM reports Succeeded)."""
        self.c.twin.control().advance_clock(15 * 60 + 1)
        return result

    def authority(self, name: str) -> str:
        """An authority's thumbprint, as the operator would read it off the issuing CA's certificate."""
        return next(a["thumbprint"] for a in world(self.c)["pki"] if a["name"] == name)

    def convert(self, goal: str, common_name: str, issuers: list[str], **extension: Any) -> Any:
        """The second upgrade of the doc: identity, access policy, extensions, then the cluster by common name."""
        identity = self.create_identity()
        self.grant_secrets(identity)
        self.install_kv_extension(identity, [goal], common_name, **extension)
        return self.put_common_names(common_name, issuers)


def world(clients: Clients) -> dict[str, Any]:
    from twinkit import world_json

    return world_json(clients.twin)
