"""Waiting out a fresh vault grant: the Key Vault extension denied by the vault although ARM already shows the
identity's grant. Role assignments and access-policy changes reach the vault's data plane only after a delay (RBAC
troubleshooting: "up to 10 minutes", Microsoft Q&A: "up to 30 minutes";
https://learn.microsoft.com/azure/role-based-access-control/troubleshooting), while the extension's initial sync
retries for a bounded time and then fails the instance (key-vault-windows). A real operator waits and runs the
extension again: here one PATCH of the extension's ``forceUpdateTag`` per attempt, rolled out like any model change,
within ``rollout.grantPropagationMinutes`` of the first denial, measured by Azure's clock (the extension statuses'
times), and journaled so a resumed run keeps the same bound (runbooks/failures/kv-extension-sync.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from .. import readers
from ..errors import OperationalError, StepFailed
from ..vault_access import reads_secrets
from .base import StepContext, roll_out, wait_scale_set_settled

JOURNAL_KEY = "grant_propagation"
MAX_RERUNS = 12  # a bound even when Azure reports no status times
# What the extension reports when the vault refuses its identity (403 from the data plane) ...
_DENIED = ("forbidden", "does not have secrets get permission", "not authorized", "accessdenied", "403")
# ... unless the vault's firewall refused the VM's network (ForbiddenByFirewall): no grant fixes that by waiting.
_NOT_A_GRANT = ("firewall", "client address", "network", "private endpoint", "private link")


def _time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def denials(instances: list[dict[str, Any]], extension: str) -> list[tuple[dt.datetime | None, str]]:
    """(status time, message) of every instance whose extension ``extension`` failed or is still retrying because the
    vault denied it. Empty when any instance failed for another reason: waiting would not help it."""
    found = []
    for instance in instances:
        view = readers.properties(instance).get("instanceView")
        entries = (view.get("extensions") if isinstance(view, Mapping) else None) or []
        for entry in entries:
            if not isinstance(entry, Mapping) or entry.get("name") != extension:
                continue
            status = ((entry.get("statuses") or [{}])[0]) or {}
            code, message = str(status.get("code") or "").lower(), str(status.get("message") or "")
            if code.endswith("succeeded"):
                continue
            text = message.lower()
            if not any(marker in text for marker in _DENIED) or any(marker in text for marker in _NOT_A_GRANT):
                return []
            found.append((_time(status.get("time")), message))
    return found


def _kv_extension_name(raw: dict[str, Any]) -> str | None:
    for extension in readers.extensions(raw):
        if readers.extension_type(extension) in readers.KV_EXTENSION_TYPES:
            return str(extension.get("name"))
    return None


def _grant(ctx: StepContext, identity_id: str) -> tuple[bool, dt.datetime | None]:
    """Does ARM show the identity's read access to the goal's vault, and (RBAC) since when?"""
    identity = ctx.gateway.get_identity(identity_id) or {}
    principal = str((identity.get("properties") or {}).get("principalId") or "")
    vault_id = ctx.spec.goal.vaultId
    vault = ctx.gateway.get_vault(vault_id)
    properties = vault.get("properties") or {}
    rbac = bool(properties.get("enableRbacAuthorization"))
    if not principal:
        return False, None
    assignments = [a.get("properties") or {} for a in ctx.gateway.list_role_assignments(vault_id, principal)] if rbac else []
    granted = reads_secrets(
        rbac=rbac, vault_id=vault_id, principal_id=principal, access_policies=properties.get("accessPolicies") or [],
        assignments=[(str(a.get("scope") or ""), str(a.get("roleDefinitionId") or ""), str(a.get("principalId") or "")) for a in assignments],
    )
    made = [t for t in (_time(a.get("createdOn")) for a in assignments) if t is not None]
    return granted, max(made) if made else None


def wait_for_grant(ctx: StepContext, vmss_id: str, identity_id: str, failure: OperationalError) -> dict[str, Any]:
    """Re-run the Key Vault extension until the vault honours the identity's grant, within the bound; re-raise
    ``failure`` when the instances failed for another reason or ARM shows no grant (nothing to wait for)."""
    bound = dt.timedelta(minutes=ctx.spec.rollout.grantPropagationMinutes)
    # Copy-on-write: with node types rolled out together another thread may be saving the journal (runner lock)
    journal: dict[str, Any] = dict(ctx.record.observed.get(JOURNAL_KEY) or {})
    while True:
        raw, instances = wait_scale_set_settled(ctx, vmss_id)
        extension = _kv_extension_name(raw)
        denied = denials(instances, extension) if extension else []
        if not denied or bound <= dt.timedelta(0):
            raise failure
        granted, granted_at = _grant(ctx, identity_id)
        if not granted:
            raise failure
        times = [t for t, _ in denied if t is not None]
        latest = max(times) if times else None
        first = _time(journal.get("first_denied_at")) or (min(times) if times else None)
        since = min(t for t in (first, granted_at) if t is not None) if (first or granted_at) else None
        waited = (latest - since) if latest and since else dt.timedelta(0)
        reruns = int(journal.get("reruns") or 0)
        if waited >= bound or reruns >= MAX_RERUNS:
            # A later run (the operator's, once the grant is in force) gets a bound of its own; an interrupted
            # one never gets here and keeps the journaled start.
            ctx.record.observed = {k: v for k, v in ctx.record.observed.items() if k != JOURNAL_KEY}
            ctx.save()
            raise StepFailed(
                ctx.step_name,
                f"the vault still denies the Key Vault extension {waited.total_seconds() / 60:.0f} minutes after the grant "
                f"(rollout.grantPropagationMinutes: {ctx.spec.rollout.grantPropagationMinutes}): {denied[0][1]} "
                "(runbooks/failures/kv-extension-sync.md)",
            )
        assert extension is not None
        reruns += 1
        journal = {**journal, "first_denied_at": first.isoformat() if first else None, "reruns": reruns}
        ctx.record.observed = {**ctx.record.observed, JOURNAL_KEY: journal}
        ctx.save()
        ctx.emit("grant-propagation", step=ctx.step_name, scale_set=raw.get("name"), denied=len(denied), rerun=reruns,
                 waited_minutes=round(waited.total_seconds() / 60, 1), bound_minutes=ctx.spec.rollout.grantPropagationMinutes)
        try:  # what `az vmss extension set --force-update` does: a new forceUpdateTag runs the extension again
            ctx.gateway.patch_scale_set_extension(vmss_id, extension, {"properties": {"forceUpdateTag": f"sfmigrate-grant-{reruns}"}},
                                                  ctx.operation_started)
        except OperationalError as exc:  # Automatic policy: the operation fails with its instances; read them again
            failure = exc
        finally:
            ctx.operation_finished()
        try:
            observed = roll_out(ctx, vmss_id)
        except StepFailed as exc:
            failure = exc
            continue
        observed[JOURNAL_KEY] = dict(journal)
        return observed
