"""The twin's world: every resource provider's state, one lock, one clock, one event queue.

Providers keep their own state objects (moto's backends) and reach each other through the world, because
the rules connect them: a VMSS instance installs a vault certificate only if its identity may read the
vault; a Service Fabric node presents only what its VMSS delivered.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from .clock import BusyBy, BusyMeter, Event, EventQueue, SimClock
from .operations import OperationRegistry
from .pki import Issued, Pki
from .providers.authorization.models import AuthorizationState
from .providers.identity.models import Directory, TokenService
from .wire import TwinError


@dataclass
class TwinSettings:
    """Knobs of the twin (``sfmigrate emulator serve`` options)."""

    time_scale: float = 120.0  # simulated seconds per wall second
    retry_after_ms: int | None = 40  # None: send integer Retry-After seconds instead
    retry_after_seconds: int = 1
    retry_after_min_ms: int = 10
    retry_after_max_ms: int = 2000
    faults: str | None = None
    # Simulated durations, in seconds (upgrade domain walk, instance update, extension poll).
    ud_walk_seconds: float = 60.0
    instance_update_seconds: float = 90.0
    model_update_seconds: float = 15.0
    cluster_config_seconds: float = 120.0


@dataclass
class ResourceGroup:
    name: str
    location: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Subscription:
    id: str
    display_name: str
    resource_groups: dict[str, ResourceGroup] = field(default_factory=dict)


class World:
    def __init__(
        self,
        *,
        base_url: str,
        tenant_id: str,
        settings: TwinSettings | None = None,
        clock: SimClock | None = None,
        tokens: TokenService | None = None,
    ) -> None:
        from .providers.compute.models import ComputeState
        from .providers.insights.models import ActivityLog
        from .providers.keyvault.models import KeyVaultState
        from .providers.msi.models import MsiState
        from .providers.network.models import NetworkState
        from .providers.servicefabric.models import ServiceFabricState

        self.lock = threading.RLock()
        self.settings = settings or TwinSettings()
        self.clock = clock or SimClock(time_scale=self.settings.time_scale)
        self.events = EventQueue(self.clock)
        self.busy = BusyMeter()  # wall seconds with any work in flight (benches)
        self.cluster_busy = BusyBy(self.sim_seconds)  # per cluster: simulated seconds with work on its resources
        self.base_url = base_url.rstrip("/")
        self.identity = Directory(tenant_id, tokens)
        self.subscriptions: dict[str, Subscription] = {}
        self.default_subscription = ""
        self.authorization = AuthorizationState()
        self.operations = OperationRegistry(self)
        self.keyvault = KeyVaultState(self)
        self.msi = MsiState(self)
        self.network = NetworkState(self)
        self.compute = ComputeState(self)
        self.servicefabric = ServiceFabricState(self)
        self.activity = ActivityLog(self)  # the writes ARM received (providers/insights)
        self.pki = Pki(self.base_url)
        self.vault_uri: Callable[[str], str] | None = None  # name -> data-plane origin; set by the server (one port per vault)
        self.scenario_name = "empty"
        self.scenario_description = ""
        self.goal: dict[str, Any] = {}  # the first of goals (the scenario's top-level goal, if any)
        self.goals: list[dict[str, Any]] = []  # every goal, one per cluster that has one

    # -- time ---------------------------------------------------------------------------------------
    def sim_seconds(self) -> float:
        """Simulated seconds since the start: the running event's instant inside an event, else the clock's."""
        return self.events.current if self.events._in_event else max(self.events.current, self.clock.seconds())

    def now(self) -> dt.datetime:
        return self.clock.at(self.sim_seconds())

    def iso_now(self) -> str:
        return iso(self.now())

    def tick(self) -> None:
        """Run every event that is due (called before each request and by the server's ticker)."""
        with self.lock:
            self.events.run_due()

    def advance(self, seconds: float) -> None:
        """Move simulated time forward and run what falls due (``POST /_emulator/clock/advance``)."""
        with self.lock:
            self.clock.advance(seconds)
            self.events.run_due()

    def after(self, seconds: float, name: str, action: Callable[[], None]) -> Event:
        return self.events.schedule(seconds, name, action)

    # -- busy time -----------------------------------------------------------------------------------
    def work_began(self, resource_id: str) -> str | None:
        """An Azure operation on ``resource_id`` is in flight (an LRO, an upgrade, a roll-out, a settle window): it
        counts in the global busy time and in the busy time of the cluster the resource is (the cluster itself, or
        the scale set of one of its node types); that cluster's key (pass it to :meth:`work_ended`), or None."""
        self.busy.begin()
        cluster = self.servicefabric.membership.cluster_key_of(resource_id)
        if cluster is not None:
            self.cluster_busy.begin(cluster)
        return cluster

    def work_ended(self, cluster: str | None) -> None:
        self.busy.end()
        if cluster is not None:
            self.cluster_busy.end(cluster)

    # -- subscriptions and resource groups ----------------------------------------------------------
    def add_subscription(self, subscription_id: str, display_name: str) -> Subscription:
        subscription = Subscription(subscription_id, display_name)
        self.subscriptions[subscription_id.lower()] = subscription
        if not self.default_subscription:
            self.default_subscription = subscription_id
        return subscription

    def subscription(self, subscription_id: str) -> Subscription:
        found = self.subscriptions.get(subscription_id.lower())
        if found is None:
            raise TwinError(404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found.")
        return found

    def add_resource_group(self, subscription_id: str, name: str, location: str) -> ResourceGroup:
        group = ResourceGroup(name, location)
        self.subscription(subscription_id).resource_groups[name.lower()] = group
        return group

    def resource_group(self, subscription_id: str, name: str) -> ResourceGroup:
        found = self.subscription(subscription_id).resource_groups.get(name.lower())
        if found is None:
            raise TwinError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")
        return found

    # -- certificate authorities --------------------------------------------------------------------
    def add_authority(
        self, name: str, subject: str, not_before: dt.datetime, not_after: dt.datetime, *,
        issuer: str | None, reuse_key_of: str | None, trusted: bool,
    ) -> Issued:
        """A new root or intermediate; a ``trusted`` root goes into the nodes' Trusted Root store."""
        issued = self.pki.create_authority(name, subject, not_before, not_after, issuer=issuer, reuse_key_of=reuse_key_of)
        if issued.issuer is None and trusted:
            self.servicefabric.trusted_roots.add(issued.thumbprint)
        return issued

    def reissue_authority(self, name: str, of: str, not_before: dt.datetime, not_after: dt.datetime) -> Issued:
        """A same-subject, same-key re-issue of ``of`` published at its AIA; nodes build chains with it from now on."""
        issued = self.pki.reissue(name, of, not_before, not_after)
        if issued.issuer is None and self.pki.authority(of).thumbprint in self.servicefabric.trusted_roots:
            self.servicefabric.trusted_roots.add(issued.thumbprint)
        self.servicefabric.on_nodes_changed()
        return issued

    # -- what the control API shows -----------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            self.events.run_due()
            clusters = self.servicefabric.snapshot()
            return {
                "scenario": self.scenario_name,
                "description": self.scenario_description,
                "time": self.iso_now(),
                "simulated_seconds": round(self.clock.seconds(), 3),
                "time_scale": self.clock.time_scale,
                "busy_seconds": round(self.busy.total(), 4),
                "tenant_id": self.identity.tenant_id,
                "subscriptions": [
                    {
                        "id": s.id,
                        "displayName": s.display_name,
                        "resourceGroups": [{"name": g.name, "location": g.location} for g in s.resource_groups.values()],
                    }
                    for s in self.subscriptions.values()
                ],
                "principals": self.identity.snapshot(),
                "role_assignments": self.authorization.snapshot(),
                "identities": self.msi.snapshot(),
                "vaults": self.keyvault.snapshot(),
                "network": self.network.snapshot(),
                "scale_sets": self.compute.snapshot(),
                "clusters": clusters,
                "cluster": clusters[0] if clusters else None,
                "operations": self.operations.snapshot(),
                "pending_events": [{"at": iso(self.clock.at(t)), "name": n} for t, n in self.events.pending()[:50]],
                "goal": self.goal,
                "goals": self.goals,
                "pki": self.pki.snapshot(),
                "pki_endpoints": {"reachable": self.pki.reachable, "revoked": sorted(self.pki.revoked)},
            }


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
