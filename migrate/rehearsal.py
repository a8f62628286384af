"""``sfmigrate rehearse``: a dress rehearsal of a migration on a twin of the live world.

Discovery reads the live world (GET only, public certificate parts only); :func:`scenario_from_snapshot`
writes it as a twin scenario with equivalent certificates (same subjects, SANs, EKUs, validity, issuer
structure and pins — new keys, since private keys are never read); a twin starts from it; the same apply
runs there; the report gives the twin's verdict and the timeline of upgrades.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from .arm_ids import id_parts
from .errors import ExitCode
from .snapshot import KnownCertificate, NodeTypeView, Snapshot
from .spec import PlanSpec, load_plan
from .x509 import CertFacts

if TYPE_CHECKING:
    from aztwin import ControlClient
    from azure.identity import ClientSecretCredential

    from .commands import Session
    from .plan import Plan

_WINDOWS_NAME = re.compile(r"[^A-Za-z0-9]")
# Healthy: the twin ended Healthy, declared by common name; Broken: its health degraded during the run;
# Blocked: preflight refused the plan; Failed: the run failed or ended still declared by thumbprint.
Outcome = Literal["Healthy", "Broken", "Blocked", "Failed"]


def _offset(moment: dt.datetime, now: dt.datetime) -> str:
    return f"{int((moment - now).total_seconds())}s"


def _length(facts: CertFacts) -> str:
    return f"{max(60, int((facts.not_after - facts.not_before).total_seconds()))}s"


@dataclass
class _Builder:
    snapshot: Snapshot
    spec: PlanSpec
    now: dt.datetime
    notes: list[str] = field(default_factory=list)
    authorities: list[dict[str, Any]] = field(default_factory=list)
    authority_of: dict[tuple[str, str], str] = field(default_factory=dict)  # (issuer subject, AKI) -> name
    vaults: dict[str, dict[str, Any]] = field(default_factory=dict)  # vault name -> vault spec
    refs: dict[str, str] = field(default_factory=dict)  # thumbprint -> vault/cert@index
    groups: dict[str, dict[str, str]] = field(default_factory=dict)  # subscription -> {group: location}
    identities: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower-cased id -> identity spec
    node_names: dict[str, str] = field(default_factory=dict)  # VMSS name -> twin node type name

    # -- shared pieces --------------------------------------------------------------------------------
    def group(self, resource_id: str, location: str) -> tuple[str, str]:
        subscription, group, _ = id_parts(resource_id)
        self.groups.setdefault(subscription, {}).setdefault(group, location.replace(" ", "").lower() or "westeurope")
        return subscription, group

    def root(self) -> str:
        if not self.authorities:
            self.authorities.append({"name": "rehearsal-root", "subject": "Rehearsal Root CA", "validFrom": "-3650d", "validFor": "7300d"})
        return "rehearsal-root"

    def authority(self, issuer: CertFacts | None, subject: str | None, key_id: str | None) -> str:
        """A twin authority standing in for a real issuer (the same subject and validity when known)."""
        key = ((issuer.subject_cn if issuer else subject) or "unknown issuer", (issuer.subject_key_id if issuer else key_id) or "")
        if key in self.authority_of:
            return self.authority_of[key]
        self.root()
        name = f"issuer-{len(self.authority_of) + 1}"
        authority: dict[str, Any] = {"name": name, "subject": key[0][:64], "issuer": "rehearsal-root"}
        if issuer is not None:
            authority["validFrom"] = _offset(issuer.not_before, self.now)
            authority["validFor"] = _length(issuer)
        self.authorities.append(authority)
        self.authority_of[key] = name
        return name

    def vault(self, vault_id: str, location: str) -> dict[str, Any]:
        name = id_parts(vault_id)[2]
        if name not in self.vaults:
            subscription, group = self.group(vault_id, location)
            self.vaults[name] = {"name": name, "resourceGroup": group, "subscription": subscription, "certificates": [],
                                 "accessPolicies": [{"principal": "operator", "certificates": ["get", "list"]},
                                                    {"principal": f"principal:{REHEARSAL_PRINCIPAL}", "certificates": ["get", "list"]}]}
        return self.vaults[name]

    def add_version(self, vault_id: str, location: str, name: str, facts: CertFacts, *, issuer: CertFacts | None = None,
                    policy: dict[str, Any] | None = None) -> str:
        if facts.thumbprint in self.refs:
            return self.refs[facts.thumbprint]
        vault = self.vault(vault_id, location)
        certificate = next((c for c in vault["certificates"] if c["name"].lower() == name.lower()), None)
        if certificate is None:
            certificate = {"name": name, "versions": []}
            vault["certificates"].append(certificate)
        certificate.update(policy or {})
        version = {
            "subject": (facts.subject_cn or name)[:64],
            "sans": list(facts.sans),
            "issuer": "self" if facts.self_signed else self.authority(issuer, facts.issuer_cn, facts.authority_key_id),
            "validFrom": _offset(facts.not_before, self.now),
            "validFor": _length(facts),
            "ekus": [e for e in facts.ekus if e in ("serverAuth", "clientAuth")] if facts.ekus else ["serverAuth", "clientAuth"],
        }
        certificate["versions"].append(version)
        certificate["versions"].sort(key=lambda v: int(v["validFrom"][:-1]))  # the latest NotBefore last
        ref = f"{vault['name']}/{name}"
        self.refs[facts.thumbprint] = ref  # made exact (@index) by finish_refs once every version is known
        version["_thumbprint"] = facts.thumbprint
        return ref

    def finish_refs(self) -> None:
        for vault in self.vaults.values():
            for certificate in vault["certificates"]:
                for index, version in enumerate(certificate["versions"]):
                    self.refs[version.pop("_thumbprint")] = f"{vault['name']}/{certificate['name']}@{index}"

    def placeholder(self, thumbprint: str, purpose: str) -> str:
        """A stand-in for a declared certificate discovery could not read (noted in the report)."""
        assert self.snapshot.vault is not None
        self.notes.append(f"certificate {thumbprint} ({purpose}) could not be read; the rehearsal uses a self-signed stand-in")
        facts = CertFacts(thumbprint, f"CN={purpose}-{thumbprint[:8].lower()}", f"{purpose}-{thumbprint[:8].lower()}", "", None, (),
                          ("serverAuth", "clientAuth"), self.now - dt.timedelta(days=30), self.now + dt.timedelta(days=335),
                          True, False, "1", "RSA-2048", (), None, None)
        return self.add_version(self.snapshot.vault.id, "westeurope", f"{purpose}-{thumbprint[:8].lower()}", facts)


def scenario_from_snapshot(snapshot: Snapshot, spec: PlanSpec, now: dt.datetime | None = None) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """The live world as a twin scenario, the map of live names to twin names, and notes on what differs."""
    from .readers import issuer_thumbprints

    now = now or dt.datetime.now(dt.timezone.utc)
    if snapshot.cluster is None or snapshot.vault is None or snapshot.goal is None:
        missing = [n for n, v in (("cluster", snapshot.cluster), ("vault", snapshot.vault), ("goal certificate", snapshot.goal)) if v is None]
        from .errors import OperationalError

        raise OperationalError(f"rehearse: the {', '.join(missing)} could not be read, so the world cannot be rehearsed")
    b = _Builder(snapshot, spec, now)
    cluster, vault, goal = snapshot.cluster, snapshot.vault, snapshot.goal
    b.group(cluster.id, cluster.location)
    b.vault(vault.id, cluster.location).update({"rbac": vault.rbac, "enabledForDeployment": vault.enabled_for_deployment})
    # Certificates: the goal (with its policy), what node types reference, the vault's others.
    known: list[KnownCertificate] = sorted(snapshot.known_certificates.values(), key=lambda k: k.facts.not_before)
    for item in known:
        if item.thumbprint == goal.facts.thumbprint:
            continue
        vault_id = item.vault_id or vault.id
        if item.secret_url and not item.vault_id:
            vault_id = _vault_id_for_url(snapshot, item.secret_url) or vault.id
        b.add_version(vault_id, cluster.location, item.name or f"cert-{item.thumbprint[:8].lower()}", item.facts)
    b.add_version(vault.id, cluster.location, goal.name, goal.facts, issuer=goal.issuer, policy={
        "exportable": goal.exportable if goal.exportable is not None else True,
        "contentType": goal.content_type if goal.content_type in ("application/x-pkcs12", "application/x-pem-file") else "application/x-pkcs12",
        "issuerName": goal.policy_issuer_name or "Unknown",
    })
    pinned = _pins(b, spec.goal.pinnedIssuers)
    declaration: dict[str, Any] = {}
    if cluster.common_names:
        declaration["commonNames"] = [
            {"commonName": c.get("certificateCommonName", ""), "issuers": _pins(b, issuer_thumbprints(c.get("certificateIssuerThumbprint")))}
            for c in cluster.common_names
        ]
    declared: dict[str, str] = {}
    for key, thumbprint in (("thumbprint", cluster.thumbprint), ("secondary", cluster.thumbprint_secondary)):
        if thumbprint:
            if thumbprint not in b.refs:
                b.placeholder(thumbprint, "cluster")
            declared[key] = thumbprint
    reverse_thumbprint = cluster.reverse_proxy_thumbprint
    if reverse_thumbprint and reverse_thumbprint not in b.refs:
        b.placeholder(reverse_thumbprint, "reverse-proxy")
    b.finish_refs()  # every version is known now: references become vault/certificate@index
    declaration.update({key: b.refs[thumbprint] for key, thumbprint in declared.items()})
    reverse = {"thumbprint": b.refs[reverse_thumbprint]} if reverse_thumbprint else None
    identity_name = _identity(b, spec.identity.id, cluster.location)
    node_types = [_node_type(b, n, identity_name) for n in snapshot.node_types]
    if not snapshot.identity or not snapshot.identity.exists:
        b.identities.pop(spec.identity.id.lower(), None)  # sfmigrate creates it, on the twin as live
    _access(b, identity_name)
    cluster_name = re.sub(r"[^a-z0-9-]", "", cluster.name.lower())[:23].strip("-") or "cluster"
    if len(cluster_name) < 3:
        cluster_name = f"{cluster_name}-sf"
    state = cluster.cluster_state if cluster.cluster_state in ("Ready", "UpdatingUserConfiguration", "UpdatingUserCertificate", "UpgradeServiceUnreachable") else "Ready"
    scenario: dict[str, Any] = {
        "apiVersion": "sfmigrate/twin-v1",
        "name": "rehearsal",
        "principals": [{"name": REHEARSAL_PRINCIPAL, "roles": [{"role": "Owner"}]}],
        "description": f"Rehearsal of {cluster.id} (generated by sfmigrate rehearse from a read-only discovery).",
        "subscriptions": [
            {"id": sub, "name": f"subscription-{sub[:8]}", "resourceGroups": [{"name": g, "location": loc} for g, loc in groups.items()]}
            for sub, groups in b.groups.items()
        ],
        "pki": b.authorities,
        "identities": list(b.identities.values()),
        "vaults": list(b.vaults.values()),
        "clusters": [{
            "name": cluster_name,
            "resourceGroup": id_parts(cluster.id)[1],
            "subscription": id_parts(cluster.id)[0],
            "location": cluster.location.replace(" ", "").lower(),
            "codeVersion": cluster.code_version or "10.1.2493.9590",
            "state": state,
            "certificate": declaration,
            **({"reverseProxyCertificate": reverse} if reverse else {}),
            "nodeTypes": node_types,
        }],
        "goal": {
            "cluster": cluster_name,
            "vault": id_parts(vault.id)[2],
            "certificate": goal.name,
            "commonName": spec.goal.commonName,
            "pinnedIssuers": pinned,
            "identity": id_parts(spec.identity.id)[2],
            "allowUnpinnedIssuers": spec.goal.allowUnpinnedIssuers,
        },
    }
    if scenario["goal"]["commonName"] is None:
        del scenario["goal"]["commonName"]
    mapping = {cluster.name: cluster_name, **b.node_names}
    return scenario, mapping, b.notes


def _vault_id_for_url(snapshot: Snapshot, url: str) -> str | None:
    for node_type in snapshot.node_types:
        for secret in node_type.secrets:
            if secret.certificate_url == url:
                return secret.vault_id
    return None


def _pins(b: _Builder, thumbprints: list[str]) -> list[str]:
    """Pinned issuer thumbprints as twin authorities: the goal's real issuer maps to its stand-in."""
    goal = b.snapshot.goal
    assert goal is not None
    out = []
    for thumbprint in thumbprints:
        thumbprint = thumbprint.strip().upper()
        if goal.issuer is not None and thumbprint == goal.issuer.thumbprint:
            out.append(b.authority(goal.issuer, goal.facts.issuer_cn, goal.facts.authority_key_id))
        else:
            out.append(b.authority(None, f"Pinned issuer {thumbprint[:8]}", thumbprint))
    return out


def _identity(b: _Builder, identity_id: str, location: str) -> str:
    subscription, group = b.group(identity_id, location)
    name = id_parts(identity_id)[2]
    b.identities.setdefault(identity_id.lower(), {"name": name, "resourceGroup": group, "subscription": subscription})
    return name


def _node_type(b: _Builder, node_type: NodeTypeView, goal_identity: str) -> dict[str, Any]:
    name = (_WINDOWS_NAME.sub("", node_type.name) or "nt")[:9]
    if not name[0].isalpha():
        name = ("n" + name)[:9]
    b.node_names[node_type.name] = name
    b.group(node_type.vmss_id, node_type.location)
    primary = False
    cluster = b.snapshot.cluster
    assert cluster is not None  # scenario_from_snapshot refuses a snapshot without one
    for entry in (cluster.raw.get("properties") or {}).get("nodeTypes") or []:
        if entry.get("name") == (node_type.node_type_ref or node_type.name):
            primary = bool(entry.get("isPrimary"))
    sf = node_type.sf_extension
    spec: dict[str, Any] = {
        "name": name,
        "os": node_type.os,
        "instances": max(1, min(100, len(node_type.instances) or node_type.capacity or 1)),
        "primary": primary,
        "upgradePolicy": node_type.upgrade_mode.capitalize() if node_type.upgrade_mode.lower() in ("automatic", "manual", "rolling") else "Manual",
        "durability": str((sf.settings if sf else {}).get("durabilityLevel") or "Silver").capitalize(),
        "secrets": [],
        "identities": [],
    }
    for secret in node_type.secrets:
        known = next((k for k in b.snapshot.known_certificates.values() if k.secret_url and k.secret_url.lower() == secret.certificate_url.lower()), None)
        if known is not None and known.thumbprint in b.refs:
            spec["secrets"].append(b.refs[known.thumbprint])
        else:
            b.notes.append(f"{node_type.name}: secret {secret.certificate_url} could not be read; left out of the rehearsal")
    for identity_id in node_type.user_assigned_identities:
        spec["identities"].append(_identity(b, identity_id, node_type.location))
    kv = node_type.kv_extension
    if kv is not None:
        management = kv.settings.get("secretsManagementSettings") or {}
        client = str((kv.settings.get("authenticationSettings") or {}).get("msiClientId") or "").lower()
        identity = goal_identity if b.snapshot.identity and (b.snapshot.identity.client_id or "").lower() == client else (spec["identities"] or [goal_identity])[0]
        observed = []
        for item in management.get("observedCertificates") or []:
            url = item if isinstance(item, str) else (item or {}).get("url", "")
            certificate = url.rstrip("/").rsplit("/", 1)[-1]
            vault_name = next((v for v in b.vaults if url.lower().startswith(_vault_uri(b, v).lower())), None)
            if vault_name:
                observed.append(f"{vault_name}/{certificate}")
        if observed:
            spec["keyVaultExtension"] = {
                "name": kv.name, "identity": identity, "observed": observed,
                "version": kv.type_handler_version if kv.type_handler_version in ("1.0", "2.0", "3.0", "4.0") else "3.0",
                "linkOnRenewal": bool(management.get("linkOnRenewal")),
                "requireInitialSync": bool(management.get("requireInitialSync")),
                "pollingIntervalInS": max(60, min(86400, int(management.get("pollingIntervalInS") or 3600))),
            }
            if identity not in spec["identities"]:
                spec["identities"].append(identity)
    return spec


def _vault_uri(b: _Builder, vault_name: str) -> str:
    vault = b.snapshot.vault
    if vault is not None and vault.name.lower() == vault_name.lower():
        return vault.uri
    return f"https://{vault_name}."


def _access(b: _Builder, identity_name: str) -> None:
    """The operator reads certificates; the identity keeps the access it has live (policy or roles)."""
    from .arm_ids import role_guid
    from .vault_access import SECRET_READER_ROLES

    snapshot = b.snapshot
    vault = snapshot.vault
    assert vault is not None
    twin_vault = b.vaults[vault.name]
    identity = snapshot.identity
    if vault.rbac:
        twin_vault["roleAssignments"] = [{"principal": "operator", "role": "Key Vault Reader"},
                                         {"principal": f"principal:{REHEARSAL_PRINCIPAL}", "role": "Key Vault Reader"}]
        if identity and identity.exists:
            for assignment in snapshot.vault_role_assignments:
                # Only the roles that let the identity read secrets matter to the extension (Azure's built-in names).
                role = SECRET_READER_ROLES.get(role_guid(assignment.role_definition_id))
                if role and assignment.principal_id == identity.principal_id:
                    twin_vault["roleAssignments"].append({"principal": f"identity:{identity_name}", "role": role})
        return
    if identity and identity.exists:
        for policy in vault.access_policies:
            if policy.get("objectId") == identity.principal_id:
                permissions = policy.get("permissions") or {}
                twin_vault["accessPolicies"].append({
                    "principal": f"identity:{identity_name}",
                    "secrets": [p.lower() for p in permissions.get("secrets") or []],
                    "certificates": [p.lower() for p in permissions.get("certificates") or []],
                })


# -- running the rehearsal --------------------------------------------------------------------------------
@dataclass
class RehearsalResult:
    outcome: Outcome
    live_steps: list[str]
    twin_steps: list[str]
    findings: list[dict[str, Any]]
    verdict: dict[str, Any]
    timeline: list[dict[str, Any]]
    scenario_file: Path
    mapping: dict[str, str]
    notes: list[str]
    error: str | None = None
    seconds: float = 0.0
    report_file: Path | None = None  # rehearsal.html: verdict, declaration, the measured timeline (issue 14)

    @property
    def exit_code(self) -> ExitCode:
        """0 Healthy by common name, 3 blocked, 1 broken or failed."""
        return {"Healthy": ExitCode.OK, "Blocked": ExitCode.BLOCKED}.get(self.outcome, ExitCode.FAILED)

    def render_text(self) -> str:
        verdict = self.verdict
        lines = [
            f"rehearsal outcome: {self.outcome} ({self.seconds:.1f} s); scenario: {self.scenario_file}",
            f"live plan steps:  {', '.join(self.live_steps) or '(none)'}",
            f"twin run steps:   {', '.join(self.twin_steps) or '(none)'}",
            f"twin verdict:     declared by {verdict.get('declaration')}, health {verdict.get('health')}, "
            f"worst {verdict.get('health_worst')}, cluster {verdict.get('cluster_state')}",
        ]
        lines += [f"  broke because: {reason}" for reason in (verdict.get("health_worst_reasons") or [])[:5]]
        lines += [f"error: {self.error}"] if self.error else []
        lines += [f"note: {note}" for note in self.notes]
        lines += [f"report: {self.report_file}"] if self.report_file else []
        lines.append("timeline:")
        for event in self.timeline:
            if event.get("type") in ("step-start", "step-done", "step-failed"):
                detail = event.get("detail") or {}
                lines.append(f"  {event.get('time', '')[11:19]} {event['type']:<11} {event.get('step')} {detail.get('seconds', '')}")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome, "live_steps": self.live_steps, "twin_steps": self.twin_steps,
            "findings": self.findings, "verdict": self.verdict, "timeline": self.timeline,
            "scenario_file": str(self.scenario_file), "mapping": self.mapping, "notes": self.notes,
            "error": self.error, "seconds": round(self.seconds, 2),
            "report_file": str(self.report_file) if self.report_file else None,
        }


REHEARSAL_PRINCIPAL = "sfmigrate-rehearsal"


def _write_report(path: Path, result: RehearsalResult, live_plan: Plan, snapshot: Snapshot, twin_plan: Plan,
                  stamped: list[dict[str, Any]], time_scale: float) -> Path:
    """rehearsal.html: the twin's verdict, the live declaration before -> after, and the timeline with the
    durations the twin measured, in Azure's time (wall seconds x the twin's time scale)."""
    from .report.declaration import plan_declaration
    from .report.html import render_rehearsal_html
    from .report.timeline import measured_timeline
    from .safe_output import redact

    timeline = measured_timeline(stamped, time_scale, {s.name: s.kind for s in twin_plan.steps})
    page = render_rehearsal_html(outcome=result.outcome, verdict=result.verdict, findings=twin_plan.findings, timeline=timeline,
                                 declaration=plan_declaration(live_plan, snapshot), notes=result.notes, error=result.error,
                                 scenario_file=str(result.scenario_file), cluster_id=live_plan.cluster_id)
    path.write_text(redact(page), encoding="utf-8")  # no secret in a report (issue 13)
    return path


def _rehearsal_credential(control: ControlClient, base_url: str, ca_bundle: str) -> ClientSecretCredential:
    """The rehearsal twin's own service principal, with a secret the control API issues to this process
    only, so the live credential and environment are never touched."""
    from azure.identity import ClientSecretCredential

    issued = control.principal_credentials(REHEARSAL_PRINCIPAL)
    return ClientSecretCredential(
        issued["tenantId"], issued["clientId"], issued["clientSecret"], authority=base_url,
        disable_instance_discovery=True, connection_verify=ca_bundle,
    )


def rehearse(source: str | Path, *, out: str | Path | None = None, time_scale: float = 2000.0,
             session: Session | None = None) -> RehearsalResult:
    """Discover the live world (read-only), build its twin, run the same apply there, report the verdict."""
    from aztwin import TwinSetupError, start_twin

    from . import commands
    from .discovery import discover
    from .errors import Blocked, SfmigrateError, UsageError
    from .twin_plan import twin_plan_document

    started = time.monotonic()
    spec, saved = commands.load_source(source)
    session = session or commands.open_session(spec)
    if saved is None:  # a plan file: plan it live (read-only)
        live = commands.plan(source, session=session)
        snapshot, live_plan = live.snapshot, live.plan
    else:  # a saved plan: its steps as saved, the world as it is now
        snapshot, live_plan = discover(session.gateway, spec), saved.plan
    live_steps = [s.name for s in live_plan.steps]
    scenario, mapping, notes = scenario_from_snapshot(snapshot, spec)
    folder = Path(out) if out else Path(tempfile.mkdtemp(prefix="sfmigrate-rehearsal-"))
    folder.mkdir(parents=True, exist_ok=True)
    scenario_file = folder / "rehearsal-scenario.yaml"
    scenario_file.write_text("# Generated by sfmigrate rehearse: a twin of the live world (public certificate parts only).\n"
                             + yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
    try:
        twin = start_twin(scenario_file=scenario_file, time_scale=time_scale, state_dir=folder / "twin")
    except TwinSetupError as exc:
        raise UsageError(f"the rehearsal twin could not be built: {exc}") from None
    events: list[dict[str, Any]] = []
    stamped: list[dict[str, Any]] = []  # the same events with the wall time they arrived: the report's timeline

    def record(event: dict[str, Any]) -> None:
        events.append(event)
        stamped.append({**event, "at": time.monotonic()})

    try:
        control = twin.control()
        rehearsal_plan = twin_plan_document(control.world().get("goal"), twin.base_url, twin.ca_bundle)
        if rehearsal_plan is None:
            raise UsageError("the rehearsal twin has no goal to migrate to")
        options = spec.model_dump(mode="json")
        for key in ("keyVaultExtension", "cleanup", "checks"):
            rehearsal_plan[key] = options[key]
        rehearsal_plan["rollout"] = {**options["rollout"], "pollIntervalSeconds": 0.02}
        plan_file = folder / "rehearsal-plan.yaml"
        plan_file.write_text(yaml.safe_dump(rehearsal_plan, sort_keys=False), encoding="utf-8")
        twin_session = commands.open_session(load_plan(plan_file), retry_backoff=0.05, credential=_rehearsal_credential(control, twin.base_url, twin.ca_bundle))
        twin_plan = commands.plan(plan_file, session=twin_session).plan
        findings = [f.to_dict() for f in twin_plan.findings]
        outcome: Outcome = "Healthy"
        error: str | None = None
        try:
            commands.apply(plan_file, state_location=str(folder / "state"), session=twin_session, emit=record)
        except Blocked as exc:
            outcome, error = "Blocked", str(exc)
        except SfmigrateError as exc:
            outcome, error = "Failed", str(exc)
        cluster = control.world()["cluster"]
        if outcome == "Healthy" and (cluster["health_worst"] != "Healthy" or cluster["declaration"] != "common_name"):
            outcome = "Broken" if cluster["health_worst"] != "Healthy" else "Failed"
        verdict = {k: cluster.get(k) for k in ("declaration", "health", "health_worst", "health_reasons", "health_worst_reasons", "cluster_state")}
        verdict["health_history"] = cluster.get("health_history")
        timeline = [e for e in events if e.get("type") in ("step-start", "step-done", "step-failed", "cluster", "instances", "manual-upgrade")]
        result = RehearsalResult(outcome, live_steps, [s.name for s in twin_plan.steps], findings, verdict, timeline,
                                 scenario_file, mapping, notes, error, time.monotonic() - started)
        result.report_file = _write_report(folder / "rehearsal.html", result, live_plan, snapshot, twin_plan, stamped, time_scale)
        return result
    finally:
        twin.stop()
