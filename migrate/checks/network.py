"""Can the nodes reach the goal's vault the way they will fetch from it? (pure; migrate/network.py)"""

from __future__ import annotations

from typing import Iterator

from ..findings import Finding
from ..network import extension_reaches, subnet_ids
from ..readers import THUMBPRINT
from ..snapshot import NodeTypeView
from .catalogue import finding
from .context import Ctx

_RUNBOOK_NOTE = "See runbooks/findings/VAULT_NETWORK_RESTRICTED.md."


def _fetches_vmss_secrets(ctx: Ctx, node_type: NodeTypeView, staging: bool) -> bool:
    """Compute fetches this node type's VMSS secrets from the vault: Linux node types keep the goal as one,
    the goal is staged as one on every node type while the cluster still needs it by thumbprint, and (the
    pessimistic reading, docs/twin.md "Vault network rules") every roll-out re-fetches the secrets already listed."""
    vault = ctx.snapshot.vault
    listed = vault is not None and any(s.vault_id.lower() == vault.id.lower() for s in node_type.secrets)
    return node_type.os == "linux" or staging or listed


def _staging(ctx: Ctx) -> bool:
    """The goal must first reach the nodes as a VMSS secret (the cluster declares thumbprints, not the goal's)."""
    cluster, goal = ctx.snapshot.cluster, ctx.snapshot.goal
    if cluster is None or goal is None or cluster.declaration != THUMBPRINT:
        return False
    return goal.facts.thumbprint not in cluster.declared_thumbprints


def check_vault_network(ctx: Ctx) -> Iterator[Finding]:
    """VAULT_NETWORK_RESTRICTED: a node type that cannot fetch the goal through the vault's network rules.

    Windows node types fetch with the Key Vault VM extension from their scale set's subnet; VMSS secrets are
    fetched by the trusted "Azure Virtual Machines deployment service", admitted only with bypass AzureServices
    (https://learn.microsoft.com/azure/key-vault/general/overview-vnet-service-endpoints#trusted-services)."""
    snap = ctx.snapshot
    network, vault = snap.vault_network, snap.vault
    if network is None or vault is None or network.open:
        return
    staging = _staging(ctx)
    for node_type in snap.node_types:
        if _fetches_vmss_secrets(ctx, node_type, staging) and not network.trusted_services_pass:
            yield finding(
                "VAULT_NETWORK_RESTRICTED",
                f"node type {node_type.name}: Compute fetches its VMSS secrets from vault {vault.name} as the trusted "
                "service 'Azure Virtual Machines deployment service', but the vault's networkAcls.bypass is None, so "
                "its firewall refuses them and the scale set's instances fail to provision.",
                vault.id,
                f"Set the vault's networkAcls.bypass to AzureServices (\"Allow trusted Microsoft services to bypass this "
                f"firewall\"). {_RUNBOOK_NOTE}",
            )
        if node_type.os != "windows":
            continue
        subnets = subnet_ids(node_type.raw)
        if not subnets:
            yield finding(
                "VAULT_NETWORK_RESTRICTED",
                f"node type {node_type.name}: its scale set names no subnet, so whether the Key Vault VM extension can "
                f"reach vault {vault.name} through its network rules cannot be told.",
                node_type.vmss_id,
                f"Check the scale set's networkProfile and the vault's networking settings. {_RUNBOOK_NOTE}",
            )
        for subnet in subnets:
            why = extension_reaches(network, subnet)
            if why is None:
                continue
            yield finding(
                "VAULT_NETWORK_RESTRICTED",
                f"node type {node_type.name}: the Key Vault VM extension fetches the goal from the nodes' own network "
                f"(subnet {subnet}), and vault {vault.name} refuses it: {why}. The extension would fail on every node "
                "and the cluster could not be converted.",
                node_type.vmss_id,
                f"Before running apply: {why.split(': ', 1)[-1]}. {_RUNBOOK_NOTE}",
            )
