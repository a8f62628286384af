"""Service Fabric clusters: the ARM resource, the runtime on the nodes, and SFRP's phased upgrades.

A certificate change walks upgrade domains three times (https://learn.microsoft.com/azure/service-fabric/cluster-security-certificates;
microsoft/service-fabric's CertificateClusterUpgradeFlow.cs): add the new certificates to every node's validation list, switch what
nodes present, then trim the validation list. SFRP accepts the upgrade (only its documented validation
errors are up-front rejections); each upgrade domain then passes a health check or fails it: the nodes'
own problems (:func:`.precheck.domain_problems`: a declared certificate not installed, a common-name
conversion from outside the documented starting states), a node made unhealthy by the scenario, or the
verdict taken after the step. The first failure rolls the upgrade back (the ARM operation fails with the
domain and the reasons). A violation outside an upgrade (a renewal from an unpinned issuer, say, or a
certificate expiring) leaves the cluster ``UpgradeServiceUnreachable``.
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from ...clock import Event
from ...operations import Operation
from ...resources import ResourceId, resource_not_found
from ...wire import TwinError, bad_request
from .chain import policy_for
from .declaration import Declaration, ValidationList, selects_by_not_after, validate_certificate_properties, validate_transition
from .hazards import hazards
from .membership import Membership
from .precheck import domain_problems
from .reverse_proxy import judge as judge_reverse_proxy
from .verdict import NodeView, Verdict, evaluate

if TYPE_CHECKING:
    from ..compute.models import Instance, ScaleSet
    from ...world import World

READ_ONLY = {"provisioningState", "clusterState", "clusterId", "clusterEndpoint", "availableClusterVersions"}
_NAMESPACE = uuid.UUID("6b0e3f2a-2f41-4d8e-9d4b-3a5e0c7f1a24")
PHASES = ("add-to-validation-list", "switch-presentation", "trim-validation-list")


def strip_read_only(body: dict[str, Any]) -> dict[str, Any]:
    clean = copy.deepcopy(body)
    for key in ("id", "name", "type", "etag", "systemData"):
        clean.pop(key, None)
    for key in READ_ONLY:
        (clean.get("properties") or {}).pop(key, None)
    return clean


@dataclass
class NodeSettings:
    presentation: Declaration
    validation: ValidationList


@dataclass
class Upgrade:
    kind: str  # certificate | configuration
    old_body: dict[str, Any]
    steps: list[tuple[str, int]]
    target: Declaration
    source: Declaration  # the declaration the upgrade started from
    operation: Operation | None
    snapshot: dict[str, NodeSettings]
    position: int = 0
    phase: str = ""
    event: Event | None = None


@dataclass
class Cluster:
    rid: ResourceId
    location: str
    body: dict[str, Any]
    cluster_id: str
    cluster_state: str = "Ready"
    provisioning_state: str = "Succeeded"
    node_settings: dict[str, NodeSettings] = field(default_factory=dict)
    health: str = "Healthy"
    health_worst: str = "Healthy"
    health_reasons: list[str] = field(default_factory=list)
    worst_reasons: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    upgrade: Upgrade | None = None
    presented: dict[str, str | None] = field(default_factory=dict)
    operations: list[str] = field(default_factory=list)
    # node -> why it fails every upgrade's health check (a stuck replica, a full disk...): the scenario's
    # ``unhealthyNodes`` or the control API; an upgrade walking its domain rolls back
    unhealthy_nodes: dict[str, str] = field(default_factory=dict)
    # Service Fabric keeps rolling an upgrade out for about 15 minutes after ARM reports Succeeded (scenario
    # ``settleWindow``): a certificate upgrade or an update domain of a roll-out started before then counts
    settle_seconds: float = 900.0
    settling_until: dt.datetime | None = None
    settled_from: dt.datetime | None = None

    @property
    def properties(self) -> dict[str, Any]:
        properties: dict[str, Any] = self.body.setdefault("properties", {})
        return properties

    @property
    def endpoint(self) -> str:
        return f"https://{self.location}.servicefabric.azure.com/runtime/clusters/{self.cluster_id}"

    @property
    def declaration(self) -> Declaration:
        return Declaration.from_properties(self.properties)

    @property
    def code_version(self) -> str:
        return str(self.properties.get("clusterCodeVersion") or "10.1.2493.9590")


class ServiceFabricState:
    def __init__(self, world: World) -> None:
        self.world = world
        self.clusters: dict[str, Cluster] = {}
        self.trusted_roots: set[str] = set()  # thumbprints of roots in the nodes' Trusted Root store
        self.suspended = False  # while a scenario is being built, nodes are not yet whole
        self._validity_event: Event | None = None
        self._validity_moment: dt.datetime | None = None
        self.membership = Membership(world, self.clusters)  # which scale sets are whose node types (indexes)

    def get(self, resource_id: str) -> Cluster:
        found = self.clusters.get(resource_id.lower())
        if found is None:
            raise resource_not_found("Microsoft.ServiceFabric/clusters", resource_id)
        return found

    def create(self, rid: ResourceId, location: str, body: dict[str, Any], cluster_state: str = "Ready") -> Cluster:
        cluster = Cluster(rid, location, strip_read_only(body), str(uuid.uuid5(_NAMESPACE, rid.key)), cluster_state)
        self.clusters[rid.key] = cluster
        self.membership.added(cluster)
        return cluster

    # -- the ARM resource: what PUT, PATCH and DELETE do (SFRP's rules; the routes decode and render) ---
    def put(self, rid: ResourceId, location: str, body: dict[str, Any]) -> tuple[Cluster, Operation]:
        """Create a cluster (it waits for its nodes, then is Ready) or replace one: the cluster and the operation."""
        cluster = self.clusters.get(rid.key)
        if cluster is None:
            validate_certificate_properties(body.get("properties") or {})
            created = self.create(rid, location, body, cluster_state="WaitingForNodes")
            operation = self.world.operations.start("sf-create", rid.id, self.world.settings.cluster_config_seconds)

            def ready() -> None:
                created.cluster_state = "Ready"
                self.world.operations.finish(operation)
                self.on_nodes_changed()

            self.world.after(self.world.settings.cluster_config_seconds, f"sf-create {rid.name}", ready)
            created.operations.append(operation.id)
            return created, operation
        if location != cluster.location:
            raise bad_request(f"The location of cluster '{rid.name}' cannot be changed from '{cluster.location}'.", "LocationCannotBeChanged")
        return cluster, self.update(cluster, strip_read_only(body))

    def patch(self, cluster: Cluster, properties_patch: dict[str, Any], tags: dict[str, str] | None) -> Operation:
        """Each top-level property the patch names is replaced; an explicit null removes it (module docstring of
        routes.py: the twin's choice where SFRP is UNCONFIRMED)."""
        merged = copy.deepcopy(cluster.body)
        properties = merged.setdefault("properties", {})
        for key, value in properties_patch.items():
            if value is None:
                properties.pop(key, None)
            else:
                properties[key] = copy.deepcopy(value)
        if tags is not None:
            merged["tags"] = tags
        return self.update(cluster, merged)

    def update(self, cluster: Cluster, new_body: dict[str, Any]) -> Operation:
        """Start the upgrade to ``new_body``; SFRP takes one only from a Ready cluster
        (runbooks/findings/CLUSTER_NOT_READY.md)."""
        if cluster.cluster_state == "UpgradeServiceUnreachable":
            raise TwinError(
                409, "ClusterUpdateUnavailable",
                "The update of the cluster is currently unavailable. Please ensure that the cluster is up and system "
                "services are healthy (clusterState UpgradeServiceUnreachable: the cluster cannot be managed by the resource provider).",
            )
        if cluster.cluster_state != "Ready" or cluster.upgrade is not None:
            raise TwinError(
                409, "PendingClusterUpgradeCannotBeInterrupted",
                f"The cluster is going through an upgrade which cannot be interrupted (clusterState {cluster.cluster_state}).",
            )
        properties = new_body.get("properties") or {}
        validate_certificate_properties(properties)
        validate_transition(cluster.declaration, Declaration.from_properties(properties))
        new_body["location"] = cluster.location
        operation = self.world.operations.start("sf-update", cluster.rid.id, self.world.settings.model_update_seconds)
        self.start_update(cluster, new_body, operation)
        return operation

    def delete(self, rid: ResourceId) -> bool:
        """Remove the cluster; False if there was none."""
        cluster = self.clusters.pop(rid.key, None)
        if cluster is not None:
            self.membership.removed(cluster)
        return cluster is not None

    # -- nodes ----------------------------------------------------------------------------------------
    def members(self, cluster: Cluster) -> list[tuple[ScaleSet, Instance, str]]:
        """(scale set, instance, node type) for every VM whose Service Fabric extension joins this cluster."""
        found = []
        for scale_set, node_type in self.membership.node_types_of(cluster):
            for instance in scale_set.instances:
                if instance.joined:  # a VM still being created is not a node yet
                    found.append((scale_set, instance, node_type))
        return found

    def _settings(self, cluster: Cluster, node: str) -> NodeSettings:
        if node not in cluster.node_settings:  # a new node joins with the cluster's current configuration
            declaration = cluster.declaration
            cluster.node_settings[node] = NodeSettings(declaration, declaration.validation())
        return cluster.node_settings[node]

    def node_views(self, cluster: Cluster, members: list[tuple[ScaleSet, Instance, str]] | None = None) -> list[NodeView]:
        views = []
        linux: dict[int, bool] = {}  # per scale set, not per node (big worlds)
        for scale_set, instance, node_type in self.members(cluster) if members is None else members:
            settings = self._settings(cluster, instance.name)
            if id(scale_set) not in linux:
                linux[id(scale_set)] = scale_set.os == "linux"
            views.append(NodeView(instance.name, node_type, instance.update_domain, instance.store, settings.presentation, settings.validation,
                                  linux[id(scale_set)], instance.waagent_removed))
        return views

    def set_node_health(self, node: str, unhealthy: str | None, cluster_ref: str | None = None) -> str | None:
        """Mark ``node`` as failing upgrade health checks (``unhealthy`` is why) or heal it; the cluster's id, or
        None when no cluster has that node. ``cluster_ref`` (a cluster id, or a name) picks among clusters whose
        nodes share names (scale sets of the same name in two resource groups)."""
        for cluster in self.clusters.values():
            if cluster_ref and cluster_ref.lower() not in (cluster.rid.id.lower(), cluster.rid.name.lower()):
                continue
            if any(instance.name == node for _, instance, _ in self.members(cluster)):
                if unhealthy is None:
                    cluster.unhealthy_nodes.pop(node, None)
                else:
                    cluster.unhealthy_nodes[node] = unhealthy
                return cluster.rid.id
        return None

    # -- the settle window after an upgrade ------------------------------------------------------------------
    def _settle(self, cluster: Cluster) -> None:
        """The upgrade ended as far as ARM shows; the cluster rolls on for ``settle_seconds`` (busy time too)."""
        if cluster.settle_seconds <= 0:
            return
        now = self.world.now()
        cluster.settled_from, cluster.settling_until = now, now + dt.timedelta(seconds=cluster.settle_seconds)
        busy_for = self.world.work_began(cluster.rid.id)
        self.world.after(cluster.settle_seconds, f"sf-settle {cluster.rid.name}", lambda: self.world.work_ended(busy_for))

    def _disturb(self, cluster: Cluster, what: str) -> None:
        now = self.world.now()
        if cluster.settling_until is None or cluster.settled_from is None or now >= cluster.settling_until:
            return
        minutes = (now - cluster.settled_from).total_seconds() / 60
        reason = (f"{what} started {minutes:.1f} min after the previous cluster upgrade reported Succeeded, while Service "
                  f"Fabric was still rolling it out (about {cluster.settle_seconds / 60:.0f} min after ARM reports "
                  "Succeeded: wait it out before the next certificate change or roll-out)")
        cluster.history.append({"time": self.world.iso_now(), "health": "Broken", "phase": "settling", "reasons": [reason]})
        if cluster.health_worst != "Broken":
            cluster.health_worst, cluster.worst_reasons = "Broken", [reason]

    def disturbed_by(self, scale_set: ScaleSet, what: str) -> None:
        """An update domain of a roll-out of ``scale_set`` starts: it counts against the cluster it is a node type of,
        if that cluster is still settling (by the scale set, not node names: two clusters may share those)."""
        cluster = self.membership.cluster_of(scale_set)
        if cluster is not None and cluster.settling_until is not None:
            self._disturb(cluster, what)

    # -- the verdict ----------------------------------------------------------------------------------
    def evaluate(self, cluster: Cluster, phase: str) -> Verdict:
        members = self.members(cluster)
        self.membership.remember(cluster, {scale_set.rid.key for scale_set, _, _ in members})
        nodes = self.node_views(cluster, members)
        pki = self.world.pki
        chain = policy_for(cluster.properties, pki.reachable, pki.revoked)  # CN validation: chain and revocation (chain.py)
        verdict = evaluate(nodes, self.world.now(), selects_by_not_after(cluster.code_version), self.trusted_roots, chain,
                           issuer_siblings=pki.siblings)
        if not nodes:
            verdict = Verdict(True)
        judge_reverse_proxy(verdict, cluster.properties, nodes, self.world.now())  # docs/twin.md, "Reverse proxy certificate"
        cluster.presented = verdict.presented
        changed = verdict.health != cluster.health or (not verdict.healthy and verdict.reasons != cluster.health_reasons)
        cluster.health = verdict.health
        cluster.health_reasons = list(verdict.reasons)
        if not verdict.healthy and cluster.health_worst != "Broken":
            cluster.health_worst = "Broken"
            cluster.worst_reasons = list(verdict.reasons)
        if changed:
            cluster.history.append({"time": self.world.iso_now(), "health": verdict.health, "phase": phase, "reasons": verdict.reasons[:5]})
        return verdict

    def on_nodes_changed(self, scale_sets: Iterable[ScaleSet] | None = None) -> None:
        """Certificates on nodes changed (a VMSS secret, an extension poll): take the verdict again, of the
        clusters ``scale_sets`` are (or were) part of, or of every cluster (None: a change anywhere, a CA's)."""
        if self.suspended:
            return
        touched = None if scale_sets is None else list(scale_sets)
        concerned = None if touched is None else self.membership.concerned(touched)
        for key, cluster in self.clusters.items():  # in file order; skipping one costs a set look-up
            if cluster.upgrade is not None:
                continue  # the upgrade takes the verdict after each step
            if concerned is not None and key not in concerned:
                continue  # the cost of an event is the cost of the clusters it touches (docs/twin.md, "Big worlds")
            verdict = self.evaluate(cluster, "running")
            if not verdict.healthy and cluster.cluster_state == "Ready":
                cluster.cluster_state = "UpgradeServiceUnreachable"
        self._watch_validity(touched)

    def _watch_validity(self, touched: list[ScaleSet] | None = None) -> None:
        """Certificates become valid and expire by themselves (expired ones are ignored, https://learn.microsoft.com/azure/service-fabric/cluster-security-certificates): take the
        verdict again at the next such instant on any node. Only the ``touched`` scale sets' stores changed (None:
        look at all); an instant that no longer exists costs one verdict that changes nothing."""
        now = self.world.now()
        scale_sets = self.world.compute.all() if touched is None else touched
        moments = [
            moment
            for scale_set in scale_sets
            for instance in scale_set.instances
            for cert in instance.store
            for moment in (cert.issued.facts.not_before, cert.issued.facts.not_after)
            if moment > now
        ]
        watching = self._validity_moment if self._validity_event is not None and not self._validity_event.cancelled else None
        if touched is not None and watching is not None and watching > now:
            moments.append(watching)
        upcoming = min(moments) if moments else None
        if self._validity_event is not None:
            if self._validity_moment == upcoming and not self._validity_event.cancelled:
                return  # already watching that instant
            self._validity_event.cancelled = True
        self._validity_event, self._validity_moment = None, upcoming
        if upcoming is not None:
            self._validity_event = self.world.after((upcoming - now).total_seconds() + 1, "sf-certificate-validity", self.on_nodes_changed)

    # -- upgrades -------------------------------------------------------------------------------------
    def start_update(self, cluster: Cluster, new_body: dict[str, Any], operation: Operation) -> None:
        old_body = cluster.body
        old = cluster.declaration
        self.node_views(cluster)  # every node holds the configuration it runs before the resource changes
        cluster.body = strip_read_only(new_body)
        new = cluster.declaration
        cluster.operations.append(operation.id)
        uds = sorted({view.update_domain for view in self.node_views(cluster)}) or [0]
        if old != new:
            steps = [(phase, ud) for phase in PHASES for ud in uds]
            kind, state = "certificate", "UpdatingUserCertificate"
        elif _config_changed(old_body, cluster.body):
            steps = [("configuration", ud) for ud in uds]
            kind, state = "configuration", "UpdatingUserConfiguration"
        else:
            self.world.after(self.world.settings.model_update_seconds, "cluster-noop", lambda: self.world.operations.finish(operation))
            return
        snapshot = {name: copy.deepcopy(s) for name, s in cluster.node_settings.items()}
        for view in self.node_views(cluster):
            snapshot.setdefault(view.name, NodeSettings(view.presentation, view.validation))
        if kind == "certificate":
            self._disturb(cluster, "a certificate upgrade")
        cluster.upgrade = Upgrade(kind, old_body, steps, new, old, operation, snapshot)
        cluster.cluster_state = state
        cluster.provisioning_state = "Updating"
        operation.expected_done = self.world.clock.seconds() + len(steps) * self.world.settings.ud_walk_seconds
        self._schedule_step(cluster)

    def _schedule_step(self, cluster: Cluster) -> None:
        upgrade = cluster.upgrade
        assert upgrade is not None
        upgrade.event = self.world.after(self.world.settings.ud_walk_seconds, f"sf-upgrade {cluster.rid.name}", lambda: self._step(cluster))

    def _step(self, cluster: Cluster) -> None:
        upgrade = cluster.upgrade
        if upgrade is None:
            return
        phase, ud = upgrade.steps[upgrade.position]
        upgrade.phase = f"{phase} UD{ud}"
        domain = [view for view in self.node_views(cluster) if view.update_domain == ud]
        problems = [f"node {view.name} is unhealthy: {cluster.unhealthy_nodes[view.name]}" for view in domain if view.name in cluster.unhealthy_nodes]
        if upgrade.kind == "certificate":
            problems += domain_problems(domain, self.world.now(), cluster.code_version, upgrade.source, upgrade.target, phase)
        if problems:  # the domain's health check fails before its nodes take the step
            self._record_failure(cluster, upgrade.phase, problems)
            self._roll_back(cluster, problems)
            return
        for view in domain:
            settings = self._settings(cluster, view.name)
            if phase == "add-to-validation-list":
                settings.validation = settings.validation.union(upgrade.target.validation())
            elif phase == "switch-presentation":
                settings.presentation = upgrade.target
            elif phase == "trim-validation-list":
                settings.validation = upgrade.target.validation()
        verdict = self.evaluate(cluster, upgrade.phase)
        if not verdict.healthy:
            self._roll_back(cluster, verdict.reasons)
            return
        upgrade.position += 1
        if upgrade.position < len(upgrade.steps):
            self._schedule_step(cluster)
            return
        cluster.upgrade = None
        cluster.cluster_state = "Ready"
        cluster.provisioning_state = "Succeeded"
        self._settle(cluster)
        if upgrade.operation:
            self.world.operations.finish(upgrade.operation)

    def _record_failure(self, cluster: Cluster, phase: str, reasons: list[str]) -> None:
        """A domain failed its health check: its nodes went down, so the cluster was unhealthy (health_worst)."""
        cluster.history.append({"time": self.world.iso_now(), "health": "Broken", "phase": phase, "reasons": reasons[:5]})
        if cluster.health_worst != "Broken":
            cluster.health_worst, cluster.worst_reasons = "Broken", list(reasons)

    def _roll_back(self, cluster: Cluster, reasons: list[str]) -> None:
        """The upgrade failed its health check: restore every node, then the resource (FailureAction=Rollback).
        ARM shows the cluster still updating while it rolls back, then Ready on the old declaration, and the
        operation Failed with the domain and the reasons."""
        upgrade = cluster.upgrade
        assert upgrade is not None
        failed_at = upgrade.phase
        cluster.node_settings = copy.deepcopy(upgrade.snapshot)
        cluster.body = upgrade.old_body

        def done() -> None:
            cluster.upgrade = None
            cluster.cluster_state = "Ready"
            cluster.provisioning_state = "Succeeded"
            after = self.evaluate(cluster, "rolled back")
            if not after.healthy:
                cluster.cluster_state = "UpgradeServiceUnreachable"
            self._settle(cluster)
            if upgrade.operation:
                self.world.operations.finish(
                    upgrade.operation,
                    {
                        "code": "ClusterUpgradeFailed",
                        "message": f"The cluster upgrade failed its health check at '{failed_at}' and was rolled back: "
                        + " | ".join(reasons[:3]),
                        "details": [{"code": "UpgradeDomainHealthCheckFailed", "message": r} for r in reasons[:8]],
                    },
                )

        upgrade.phase = "rolling back"
        self.world.after(self.world.settings.ud_walk_seconds, f"sf-rollback {cluster.rid.name}", done)

    def snapshot(self) -> list[dict[str, Any]]:
        out = []
        for cluster in self.clusters.values():
            declaration = cluster.declaration
            groups: dict[str, dict[str, Any]] = {}
            for scale_set, instance, node_type in self.members(cluster):
                group = groups.setdefault(node_type, {"name": node_type, "vmss": scale_set.rid.id, "os": scale_set.os, "nodes": []})
                settings = self._settings(cluster, instance.name)
                group["nodes"].append(
                    {
                        "name": instance.name,
                        "upgradeDomain": instance.update_domain,
                        "presents": cluster.presented.get(instance.name),
                        "presentation": settings.presentation.public(),
                        "validation": settings.validation.public(),
                        "thumbprints": instance.thumbprints(),
                        "certificates": [c.public() for c in instance.store],
                    }
                )
            out.append(
                {
                    "id": cluster.rid.id,
                    "name": cluster.rid.name,
                    "declaration": declaration.kind,
                    "certificate": cluster.properties.get("certificate"),
                    "certificateCommonNames": cluster.properties.get("certificateCommonNames"),
                    "reverseProxyCertificate": cluster.properties.get("reverseProxyCertificate"),
                    "clientCertificateThumbprints": cluster.properties.get("clientCertificateThumbprints") or [],
                    "clientCertificateCommonNames": cluster.properties.get("clientCertificateCommonNames") or [],
                    "cluster_state": cluster.cluster_state,
                    "provisioning_state": cluster.provisioning_state,
                    "code_version": cluster.code_version,
                    "health": cluster.health,
                    "health_worst": cluster.health_worst,
                    "health_reasons": cluster.health_reasons,
                    "health_worst_reasons": cluster.worst_reasons,
                    "health_history": cluster.history[-50:],
                    "unhealthy_nodes": dict(cluster.unhealthy_nodes),
                    "settling_until": cluster.settling_until.isoformat() if cluster.settling_until else None,
                    # simulated seconds with an operation in flight on the cluster or its node types' scale sets
                    "busy_seconds": round(self.world.cluster_busy.seconds(cluster.rid.key), 3),
                    "hazards": hazards(self.world, cluster, self.members(cluster), cluster.presented),
                    "upgrade": None if cluster.upgrade is None else {
                        "kind": cluster.upgrade.kind, "phase": cluster.upgrade.phase,
                        "step": cluster.upgrade.position, "steps": len(cluster.upgrade.steps),
                    },
                    "node_types": list(groups.values()),
                }
            )
        return out


def _config_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return strip_read_only(old).get("properties") != strip_read_only(new).get("properties")
