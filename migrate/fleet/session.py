"""One cloud, one credential and one write budget for a whole fleet; a gateway of its own per cluster.

Each cluster gets its own :class:`~migrate.cloud.gateway.Gateway` (the runner sets the gateway's ``before_write``
for the length of its run, and its request counts are that cluster's), all sharing the credential and the
per-subscription :class:`~migrate.cloud.policies.WriteBudget` (ARM's limits are per subscription, not per run).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cloud.credentials import choose_credential
from ..cloud.endpoints import CloudEndpoints, resolve_cloud
from ..cloud.gateway import Gateway, Transport
from ..cloud.policies import ARM_WRITES_PER_MINUTE, WriteBudget
from ..commands import Session, check_plan_files
from ..spec import PlanSpec
from .resolve import FleetMember, labels, resolve
from .spec import FleetSpec, load_fleet

log = logging.getLogger("sfmigrate")
# ARM's limits are per subscription and a fleet shares them, so a throttled subscription is expected, not an error:
# each request retries a throttled or failed status this many times (azure-core's RetryPolicy: 3 by default), always
# honouring Retry-After (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling).
FLEET_STATUS_RETRIES = 10


class FleetGateway(Gateway):
    """A cluster's gateway in a fleet: the shared write budget, and patience with a throttled subscription."""

    def _common(self) -> dict[str, Any]:
        return {**super()._common(), "retry_status": FLEET_STATUS_RETRIES}


@dataclass
class FleetSession:
    cloud: CloudEndpoints
    credential: Any
    credential_description: str
    budget: WriteBudget
    poll_interval: float | None = None  # None: each cluster's rollout.pollIntervalSeconds
    retry_backoff: float | None = None
    transport: Transport | None = None

    def session_for(self, spec: PlanSpec) -> Session:
        interval = self.poll_interval if self.poll_interval is not None else spec.rollout.pollIntervalSeconds
        gateway = FleetGateway(self.cloud, self.credential, poll_interval=interval, retry_backoff=self.retry_backoff, transport=self.transport)
        gateway.write_budget = self.budget
        return Session(spec, self.cloud, self.credential, self.credential_description, gateway)

    def list_clusters(self, subscription: str, resource_group: str | None) -> list[dict[str, Any]]:
        gateway = FleetGateway(self.cloud, self.credential, retry_backoff=self.retry_backoff, transport=self.transport)
        return gateway.list_clusters(subscription, resource_group)


def open_fleet_session(fleet: FleetSpec, *, writes_per_minute: int = ARM_WRITES_PER_MINUTE, poll_interval: float | None = None,
                       retry_backoff: float | None = None, credential: Any = None, transport: Transport | None = None) -> FleetSession:
    cloud = resolve_cloud(fleet.cloud, transport)
    if credential is None:
        credential, description = choose_credential(cloud, transport=transport)
    else:
        description = type(credential).__name__
    log.info("credential: %s", description)
    return FleetSession(cloud, credential, description, WriteBudget(writes_per_minute), poll_interval, retry_backoff,
                        transport or pooled_transport(cloud))


# Connections kept per host: a fleet's clusters run side by side (up to --concurrency), each discovering with a
# handful of threads, against the same few hosts (ARM, the vaults).
POOL_CONNECTIONS_PER_HOST = 64


def pooled_transport(cloud: CloudEndpoints) -> Transport:
    """One azure-core transport, and so one connection pool, for every gateway of the fleet. A gateway of its own
    transport per cluster opened a new TLS connection per client and cluster, each loading the CA bundle again:
    ~80 ms of CPU each, most of a fleet plan's time (bench/fleet_apply.py). The gateways send on it and never close
    it (migrate.cloud.gateway); it lives as long as the process."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport

    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=POOL_CONNECTIONS_PER_HOST)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    transport: Transport = RequestsTransport(session=session, session_owner=False, connection_verify=cloud.ca_bundle or True)
    return transport


@dataclass
class LoadedFleet:
    """A fleet file, its session and its resolved clusters (each with a unique short label)."""

    path: Path
    spec: FleetSpec
    session: FleetSession
    members: list[FleetMember]
    labels: dict[str, str]

    def label(self, member: FleetMember) -> str:
        return self.labels[member.cluster_id]


def load(path: str | Path, session: FleetSession | None = None, **session_options: Any) -> LoadedFleet:
    """Read and validate the fleet file, open its session, list its selections, resolve every cluster."""
    fleet = load_fleet(path)
    resolve(fleet.model_copy(update={"select": []}), str(path))  # the listed clusters are checked before any credential or request
    session = session or open_fleet_session(fleet, **session_options)
    members = resolve(fleet, str(path), session.list_clusters)
    for member in members:
        check_plan_files(member.spec)
    return LoadedFleet(Path(path), fleet, session, members, labels(members))
