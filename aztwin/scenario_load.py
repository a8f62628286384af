"""Reading scenario files: YAML, the schema (:mod:`.scenario_model`), then every cross-reference.

A scenario that passes :func:`parse_scenario` builds: each problem is found here, before the world exists,
and reported as one line naming the file and the field path (``vaults[0].certificates[1].versions[0].issuer``).
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .errors import TwinSetupError
from .providers.authorization.models import ROLES_BY_NAME
from .scenario_model import ClusterGoalSpec, ScenarioSpec, SubscriptionSpec, duration_seconds
from .scenario_network import check_network

SCENARIO_PACKAGE = "aztwin.scenarios"
# X.509 validity dates the PKI can write (cryptography refuses dates before 1950).
_EARLIEST = dt.datetime(1950, 1, 2, tzinfo=dt.timezone.utc)
_LATEST = dt.datetime(9999, 12, 30, tzinfo=dt.timezone.utc)


class ScenarioError(TwinSetupError):
    """A scenario file that cannot be used; the message names the file and field."""


def builtin_names() -> list[str]:
    folder = resources.files(SCENARIO_PACKAGE)
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def builtin_path(name: str) -> Path:
    path = Path(str(resources.files(SCENARIO_PACKAGE) / f"{name}.yaml"))
    if name not in builtin_names() or not path.is_file():  # a name, never a path (files: --scenario-file)
        raise ScenarioError(f"--scenario: unknown scenario '{name}'; built-in scenarios: {', '.join(builtin_names())}")
    return path


def _field_path(location: tuple[Any, ...]) -> str:
    out = ""
    for part in location:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def parse_scenario(text: str, source: str = "scenario") -> ScenarioSpec:
    """Parse and validate; every problem is one line naming the file and the field path."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ScenarioError(_one_line(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}")) from None
    except RecursionError:
        raise ScenarioError(f"{source}: not valid YAML: nested too deeply") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario must be a YAML mapping with apiVersion: sfmigrate/twin-v1")
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ScenarioError(_one_line(f"{source}: {_field_path(tuple(first['loc']))}: {first['msg']}")) from None
    except RecursionError:
        raise ScenarioError(f"{source}: nested too deeply") from None
    _References(spec, source).check()
    return spec


def load_scenario(name: str | None = None, path: str | Path | None = None) -> tuple[ScenarioSpec, str]:
    """A scenario by built-in name or file path, with the text it came from."""
    if path is not None:
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(_one_line(f"{file}: cannot read the scenario file: {exc.strerror or exc}")) from None
        except UnicodeDecodeError:
            raise ScenarioError(_one_line(f"{file}: the scenario file is not UTF-8 text")) from None
        return parse_scenario(text, str(file)), text
    file = builtin_path(name or "basic")
    text = file.read_text(encoding="utf-8")
    return parse_scenario(text, f"scenario '{name or 'basic'}'"), text


def is_thumbprint(text: str) -> bool:
    return len(text) == 40 and all(c in "0123456789abcdefABCDEF" for c in text)


def start_of(spec: ScenarioSpec) -> dt.datetime | None:
    if not spec.start:
        return None
    moment = dt.datetime.fromisoformat(spec.start.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def subscription_of(spec: ScenarioSpec, name: str | None) -> SubscriptionSpec | None:
    """The subscription a ``subscription`` field names (its name or id); the first one for ``None``."""
    if name is None:
        return spec.subscriptions[0]
    return next((s for s in spec.subscriptions if s.name == name or (s.id or "").lower() == name.lower()), None)


def clusters_named(spec: ScenarioSpec, name: str, group: str | None = None, subscription: str | None = None) -> list[int]:
    """Indexes of the clusters called ``name`` (in ``group`` of ``subscription`` where given): names are unique per
    resource group, so a name alone may match several."""
    wanted = subscription_of(spec, subscription) if subscription is not None else None
    found = []
    for index, cluster in enumerate(spec.clusters):
        sub = subscription_of(spec, cluster.subscription)
        if cluster.name != name or sub is None or (wanted is not None and sub is not wanted):
            continue
        if group is not None and (cluster.resourceGroup or sub.resourceGroups[0].name).lower() != group.lower():
            continue
        found.append(index)
    return found


def goal_targets(spec: ScenarioSpec) -> list[tuple[int, ClusterGoalSpec]]:
    """(cluster index, goal) for every goal of a checked scenario: the top-level ``goal`` first, then each
    ``clusters[].goal`` in file order."""
    targets: list[tuple[int, ClusterGoalSpec]] = []
    if spec.goal is not None:
        [index] = clusters_named(spec, spec.goal.cluster, spec.goal.resourceGroup, spec.goal.subscription)
        targets.append((index, spec.goal))
    targets.extend((index, c.goal) for index, c in enumerate(spec.clusters) if c.goal is not None)
    return targets


class _References:
    """Every name a scenario uses must be defined, once, where the builder will look for it."""

    def __init__(self, spec: ScenarioSpec, source: str) -> None:
        self.spec, self.source = spec, source
        self.start = start_of(spec) or dt.datetime.now(dt.timezone.utc)
        self.vaults = {v.name.lower(): v for v in spec.vaults}
        self.identities = {i.name for i in spec.identities}
        self.principals = {p.name for p in spec.principals}
        self.authorities = {a.name for a in spec.pki}

    def fail(self, where: str, message: str) -> None:
        raise ScenarioError(_one_line(f"{self.source}: {where}: {message}"))

    def check(self) -> None:
        self._subscriptions()
        self._roles("operator.roles", self.spec.operator.roles)
        self._unique("principals", [p.name for p in self.spec.principals])
        for index, principal in enumerate(self.spec.principals):
            self._roles(f"principals[{index}].roles", principal.roles)
        self._pki()
        self._unique("identities", [i.name for i in self.spec.identities], fold=True)
        for index, identity in enumerate(self.spec.identities):
            self._placement(f"identities[{index}]", identity.subscription, identity.resourceGroup)
        self._vaults()
        self._clusters()
        self._goal()
        check_network(self.spec, self.fail)

    # -- helpers ----------------------------------------------------------------------------------
    def _unique(self, where: str, names: list[str], fold: bool = False) -> None:
        seen: set[str] = set()
        for index, name in enumerate(names):
            key = name.lower() if fold else name
            if key in seen:
                self.fail(f"{where}[{index}].name", f"'{name}' is defined more than once")
            seen.add(key)

    def _subscription(self, name: str | None, where: str) -> SubscriptionSpec:
        sub = subscription_of(self.spec, name)
        if sub is None:
            self.fail(f"{where}.subscription", f"unknown subscription '{name}'")
            raise AssertionError  # unreachable
        return sub

    def _placement(self, where: str, subscription: str | None, group: str | None) -> tuple[str, str]:
        sub = self._subscription(subscription, where)
        groups = {g.name.lower(): g.name for g in sub.resourceGroups}
        if group is not None and group.lower() not in groups:
            self.fail(f"{where}.resourceGroup", f"unknown resource group '{group}' in subscription '{sub.name}'")
        return sub.name, (group or sub.resourceGroups[0].name).lower()

    def _dates(self, where: str, valid_from: Any, valid_for: Any) -> None:
        try:
            not_before = self.start + dt.timedelta(seconds=duration_seconds(valid_from))
            not_after = not_before + dt.timedelta(seconds=duration_seconds(valid_for))
        except OverflowError:
            not_before = not_after = _LATEST + dt.timedelta(days=1)
        if not (_EARLIEST <= not_before <= _LATEST and _EARLIEST <= not_after <= _LATEST):
            self.fail(where, "the certificate's validity must fall between the years 1950 and 9999")

    def _principal(self, reference: str, where: str) -> None:
        kind, _, name = reference.partition(":")
        if reference == "operator":
            return
        if kind == "identity" and name in self.identities:
            return
        if kind == "principal" and name in self.principals:
            return
        self.fail(where, f"unknown principal '{reference}' (use operator, identity:<name> or principal:<name>)")

    def _roles(self, where: str, roles: list[Any]) -> None:
        for index, role in enumerate(roles):
            if role.role.lower() not in ROLES_BY_NAME:
                self.fail(f"{where}[{index}].role", f"unknown role '{role.role}'")
            kind, _, name = role.scope.partition(":")
            if role.subscription is not None and role.scope != "subscription" and kind != "resourceGroup":
                self.fail(f"{where}[{index}].subscription", "applies to the scopes subscription and resourceGroup:<name> only")
            sub = self._subscription(role.subscription, f"{where}[{index}]")
            if role.scope == "subscription" or role.scope.lower().startswith("/subscriptions/"):
                continue
            known = {
                "resourceGroup": {g.name.lower() for g in sub.resourceGroups},
                "vault": set(self.vaults),
                "identity": {i.lower() for i in self.identities},
            }
            if kind not in known:
                self.fail(f"{where}[{index}].scope", f"'{role.scope}' is not subscription, resourceGroup:<name>, vault:<name>, identity:<name> or an ARM id")
            if name.lower() not in known[kind]:
                self.fail(f"{where}[{index}].scope", f"unknown {kind} '{name}'" + (f" in subscription '{sub.name}'" if kind == "resourceGroup" else ""))

    def certificate(self, reference: str, where: str, *, thumbprint: bool = False, versioned: bool = True) -> None:
        """``vault/certificate[@N]`` (or, where allowed, a literal thumbprint) names something defined."""
        if thumbprint and is_thumbprint(reference):
            return
        vault_name, slash, rest = reference.partition("/")
        cert_name, at, index = rest.partition("@")
        vault = self.vaults.get(vault_name.lower())
        certificate = next((c for c in vault.certificates if c.name.lower() == cert_name.lower()), None) if vault else None
        if not slash or certificate is None:
            also = " (nor a thumbprint)" if thumbprint else ""
            self.fail(where, f"'{reference}' is not vault/certificate of this scenario{also}")
            return
        if at and not versioned:
            self.fail(where, f"'{reference}': the Key Vault extension observes versionless certificates; drop '@{index}'")
        if at and not (index.isdigit() and int(index) < len(certificate.versions)):
            self.fail(where, f"'{reference}': version index must be 0..{len(certificate.versions) - 1}")

    def issuer(self, reference: str, where: str) -> None:
        if reference in self.authorities or is_thumbprint(reference):
            return
        if "/" in reference:
            self.certificate(reference, where)
            return
        self.fail(where, f"'{reference}' is not an authority of pki, a vault/certificate or a thumbprint")

    # -- sections ---------------------------------------------------------------------------------
    def _subscriptions(self) -> None:
        subs = self.spec.subscriptions
        self._unique("subscriptions", [s.name for s in subs])
        ids = [s.id.lower() for s in subs if s.id]
        if len(ids) != len(set(ids)):
            self.fail("subscriptions", "two subscriptions have the same id")
        for index, sub in enumerate(subs):
            self._unique(f"subscriptions[{index}].resourceGroups", [g.name for g in sub.resourceGroups], fold=True)

    def _pki(self) -> None:
        self._unique("pki", [a.name for a in self.spec.pki])
        defined: set[str] = set()
        for index, authority in enumerate(self.spec.pki):
            if authority.issuer and authority.issuer not in defined:
                self.fail(f"pki[{index}].issuer", f"'{authority.issuer}' is not an authority defined before it")
            if authority.reuseKeyOf and authority.reuseKeyOf not in defined:
                self.fail(f"pki[{index}].reuseKeyOf", f"'{authority.reuseKeyOf}' is not an authority defined before it")
            if authority.reissueOf:
                self._reissue(index, authority.reissueOf, defined)
            self._dates(f"pki[{index}].validFrom", authority.validFrom, authority.validFor)
            defined.add(authority.name)

    def _reissue(self, index: int, of: str, defined: set[str]) -> None:
        """A re-issue keeps the subject, issuer and key of an earlier authority (docs/scenarios.md, ``reissueOf``)."""
        authority = self.spec.pki[index]
        original = next((a for a in self.spec.pki if a.name == of), None)
        if of not in defined or original is None:
            self.fail(f"pki[{index}].reissueOf", f"'{of}' is not an authority defined before it")
        elif authority.reuseKeyOf:
            self.fail(f"pki[{index}].reuseKeyOf", "a re-issue (reissueOf) already shares the key of the authority it re-issues")
        elif authority.subject != original.subject or authority.issuer != original.issuer:
            self.fail(f"pki[{index}].reissueOf", f"a re-issue keeps the subject and issuer of '{of}' "
                      f"('{original.subject}', issuer {original.issuer or 'none: a root'})")

    def _vaults(self) -> None:
        self._unique("vaults", [v.name for v in self.spec.vaults], fold=True)
        for vi, vault in enumerate(self.spec.vaults):
            self._placement(f"vaults[{vi}]", vault.subscription, vault.resourceGroup)
            self._unique(f"vaults[{vi}].certificates", [c.name for c in vault.certificates], fold=True)
            for ci, certificate in enumerate(vault.certificates):
                for xi, version in enumerate(certificate.versions):
                    where = f"vaults[{vi}].certificates[{ci}].versions[{xi}]"
                    if version.issuer != "self" and version.issuer not in self.authorities:
                        self.fail(f"{where}.issuer", f"unknown authority '{version.issuer}'")
                    self._dates(f"{where}.validFrom", version.validFrom, version.validFor)
            for pi, policy in enumerate(vault.accessPolicies):
                self._principal(policy.principal, f"vaults[{vi}].accessPolicies[{pi}].principal")
            for ri, assignment in enumerate(vault.roleAssignments):
                if assignment.role.lower() not in ROLES_BY_NAME:
                    self.fail(f"vaults[{vi}].roleAssignments[{ri}].role", f"unknown role '{assignment.role}'")
                self._principal(assignment.principal, f"vaults[{vi}].roleAssignments[{ri}].principal")

    def _declaration(self, declared: Any, where: str) -> None:
        if declared.thumbprint is None and not declared.commonNames:
            self.fail(where, "give thumbprint (and secondary) or commonNames")
        if declared.thumbprint is not None and declared.commonNames:
            self.fail(where, "give thumbprint (and secondary) or commonNames, not both")
        if declared.secondary and declared.thumbprint is None:
            self.fail(f"{where}.secondary", "a secondary needs a primary thumbprint")
        for key in ("thumbprint", "secondary"):
            value = getattr(declared, key)
            if value:
                self.certificate(value, f"{where}.{key}", thumbprint=True)
        names = [c.commonName.lower() for c in declared.commonNames or []]
        if len(set(names)) != len(names):
            self.fail(f"{where}.commonNames", "the same common name is declared twice")
        for ni, common in enumerate(declared.commonNames or []):
            for ii, issuer in enumerate(common.issuers):
                self.issuer(issuer, f"{where}.commonNames[{ni}].issuers[{ii}]")

    def _clusters(self) -> None:
        scale_sets: set[tuple[str, str, str]] = set()
        clusters: set[tuple[str, str, str]] = set()
        for ki, cluster in enumerate(self.spec.clusters):
            sub, group = self._placement(f"clusters[{ki}]", cluster.subscription, cluster.resourceGroup)
            if (sub, group, cluster.name) in clusters:  # an ARM name is unique in its resource group
                self.fail(f"clusters[{ki}].name", f"a cluster named '{cluster.name}' already exists in that resource group")
            clusters.add((sub, group, cluster.name))
            self._declaration(cluster.certificate, f"clusters[{ki}].certificate")
            if cluster.reverseProxyCertificate:
                self._declaration(cluster.reverseProxyCertificate, f"clusters[{ki}].reverseProxyCertificate")
            self._client_certificates(ki)
            if cluster.goal is not None:
                self._goal_fields(cluster.goal, f"clusters[{ki}].goal")
            for ni, node_type in enumerate(cluster.nodeTypes):
                where = f"clusters[{ki}].nodeTypes[{ni}]"
                key = (sub, group, node_type.name.lower())
                if key in scale_sets:
                    self.fail(f"{where}.name", f"a scale set named '{node_type.name}' already exists in that resource group")
                scale_sets.add(key)
                for si, secret in enumerate(node_type.secrets):
                    self.certificate(secret, f"{where}.secrets[{si}]")
                for ii, name in enumerate(node_type.identities):
                    if name not in self.identities:
                        self.fail(f"{where}.identities[{ii}]", f"unknown identity '{name}'")
                extension = node_type.keyVaultExtension
                if extension:
                    if extension.identity not in self.identities:
                        self.fail(f"{where}.keyVaultExtension.identity", f"unknown identity '{extension.identity}'")
                    if extension.name in {f"{node_type.name}_ServiceFabricNode"}:
                        self.fail(f"{where}.keyVaultExtension.name", "clashes with the Service Fabric extension's name")
                    for oi, observed in enumerate(extension.observed):
                        self.certificate(observed, f"{where}.keyVaultExtension.observed[{oi}]", versioned=False)
            nodes = {f"{n.name}_{i}" for n in cluster.nodeTypes for i in range(n.instances)}
            for ui, unhealthy in enumerate(cluster.unhealthyNodes):
                if unhealthy.node not in nodes:
                    self.fail(f"clusters[{ki}].unhealthyNodes[{ui}].node", f"no node '{unhealthy.node}' (nodes are <node type>_<instance id>, e.g. {cluster.nodeTypes[0].name}_0)")

    def _client_certificates(self, ki: int) -> None:
        cluster = self.spec.clusters[ki]
        for ti, entry in enumerate(cluster.clientCertificateThumbprints):
            self.certificate(entry.thumbprint, f"clusters[{ki}].clientCertificateThumbprints[{ti}].thumbprint", thumbprint=True)
        for ni, common in enumerate(cluster.clientCertificateCommonNames):
            for ii, issuer in enumerate(common.issuers):
                self.issuer(issuer, f"clusters[{ki}].clientCertificateCommonNames[{ni}].issuers[{ii}]")

    def _goal(self) -> None:
        goal = self.spec.goal
        if goal is None:
            return
        if goal.subscription is not None:
            self._subscription(goal.subscription, "goal")
        found = clusters_named(self.spec, goal.cluster, goal.resourceGroup, goal.subscription)
        where = "" if goal.resourceGroup is None else f" in resource group '{goal.resourceGroup}'"
        if not found:
            self.fail("goal.cluster", f"unknown cluster '{goal.cluster}'{where}")
        if len(found) > 1:
            self.fail("goal.cluster", f"clusters named '{goal.cluster}' are in several resource groups{where}: "
                      "give goal.resourceGroup (and goal.subscription)")
        if self.spec.clusters[found[0]].goal is not None:
            self.fail("goal.cluster", f"cluster '{goal.cluster}' has its own goal (clusters[{found[0]}].goal): give one")
        self._goal_fields(goal, "goal")

    def _goal_fields(self, goal: ClusterGoalSpec, where: str) -> None:
        self.certificate(f"{goal.vault}/{goal.certificate}", f"{where}.certificate", versioned=False)
        for index, issuer in enumerate(goal.pinnedIssuers):
            self.issuer(issuer, f"{where}.pinnedIssuers[{index}]")
        if goal.commonName is not None and not 1 <= len(goal.commonName) <= 64:
            self.fail(f"{where}.commonName", "a common name has 1 to 64 characters")
