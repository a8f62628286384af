"""Which scale sets are whose node types, kept as indexes so an event costs what it touches (docs/twin.md, "Big
worlds" and "Fleets").

A scale set is a node type of the cluster its Service Fabric extension's ``clusterEndpoint`` names (nodeTypeRef
gives the node type). Looking that up walks neither the clusters nor the scale sets of the world: clusters are
found by endpoint, and the scale sets of a cluster come from an index rebuilt only when a scale set's model or
the set of clusters changed (model writes are few; verdicts, polls and instance updates are many).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..compute.guest import SF_TYPES

if TYPE_CHECKING:
    from ...world import World
    from ..compute.models import ScaleSet
    from .models import Cluster


class Membership:
    def __init__(self, world: World, clusters: dict[str, Cluster]) -> None:
        self.world = world
        self.clusters = clusters  # the state's own dict: cluster key -> cluster
        self._by_endpoint: dict[str, Cluster] = {}  # clusterEndpoint (lower case) -> cluster
        self._member_of: dict[str, set[str]] = {}  # scale set key -> clusters it had nodes in at their last verdict
        self._members: dict[str, set[str]] = {}  # cluster key -> scale sets with nodes at its last verdict
        self._clusters_layout = 0  # changes whenever a cluster is added or removed
        self._seen: tuple[int, int] | None = None  # (compute layout, clusters layout) the index was built at
        self._node_types: dict[str, list[tuple[ScaleSet, str]]] = {}  # cluster key -> (scale set, node type)

    def added(self, cluster: Cluster) -> None:
        self._by_endpoint[cluster.endpoint.lower()] = cluster
        self._clusters_layout += 1

    def removed(self, cluster: Cluster) -> None:
        self._by_endpoint.pop(cluster.endpoint.lower(), None)
        self.remember(cluster, set())
        self._clusters_layout += 1

    def joins(self, scale_set: ScaleSet) -> list[tuple[str, str]]:
        """(cluster key, node type) for each cluster a Service Fabric extension of ``scale_set`` names by its
        clusterEndpoint (the first extension naming a cluster gives the node type: ``nodeTypeRef``)."""
        found: dict[str, str] = {}
        for extension in scale_set.extensions_of_type(*SF_TYPES):
            settings = (extension.get("properties") or {}).get("settings") or {}
            cluster = self._by_endpoint.get(str(settings.get("clusterEndpoint", "")).lower())
            if cluster is not None:
                found.setdefault(cluster.rid.key, str(settings.get("nodeTypeRef") or scale_set.rid.name))
        return list(found.items())

    def cluster_of(self, scale_set: ScaleSet) -> Cluster | None:
        """The cluster ``scale_set`` is a node type of, found by endpoint, not by a walk over the clusters."""
        joins = self.joins(scale_set)
        return self.clusters.get(joins[0][0]) if joins else None

    def cluster_key_of(self, resource_id: str) -> str | None:
        """The key of the cluster ``resource_id`` belongs to: the cluster itself, or a scale set of one of its node
        types; None for anything else (busy time, :meth:`World.work_began`)."""
        key = resource_id.lower()
        if key in self.clusters:
            return key
        scale_set = self.world.compute.scale_sets.get(key)
        cluster = self.cluster_of(scale_set) if scale_set is not None else None
        return cluster.rid.key if cluster is not None else None

    def node_types_of(self, cluster: Cluster) -> list[tuple[ScaleSet, str]]:
        """The scale sets whose Service Fabric extension joins ``cluster``, with their node type, in world order."""
        compute = self.world.compute
        if self._seen != (compute.layout, self._clusters_layout):
            index: dict[str, list[tuple[ScaleSet, str]]] = {}
            for scale_set in compute.all():
                for key, node_type in self.joins(scale_set):
                    index.setdefault(key, []).append((scale_set, node_type))
            self._node_types, self._seen = index, (compute.layout, self._clusters_layout)
        return self._node_types.get(cluster.rid.key, [])

    def remember(self, cluster: Cluster, scale_sets: set[str]) -> None:
        """The scale sets ``cluster`` had nodes in at this verdict (an event on one of them concerns it later on,
        even if the scale set has left the cluster since)."""
        for gone in self._members.get(cluster.rid.key, set()) - scale_sets:
            self._member_of.get(gone, set()).discard(cluster.rid.key)
        for key in scale_sets:
            self._member_of.setdefault(key, set()).add(cluster.rid.key)
        self._members[cluster.rid.key] = scale_sets

    def concerned(self, scale_sets: list[ScaleSet]) -> set[str]:
        """Keys of the clusters ``scale_sets`` are (by their extension) or were (at the last verdict) part of."""
        keys: set[str] = set()
        for scale_set in scale_sets:
            keys |= self._member_of.get(scale_set.rid.key, set())
            owner = self.cluster_of(scale_set)
            if owner is not None:
                keys.add(owner.rid.key)
        return keys
