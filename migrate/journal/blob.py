"""The shared journal in Azure Blob Storage: ETag-fenced writes and a renewable lease as the run lock.

Layout (docs/state.md): ``<prefix>/<cluster-key>.journal.json`` (the journal) and ``<prefix>/<cluster-key>.lock``
(an empty blob whose lease is the lock and whose metadata names the holder).

- peers.md §5.3: every journal write carries ``If-Match: <etag>`` (first write ``If-None-Match: *``); a 412 or
  409 means another writer got there first → JournalConflict, nothing overwritten.
- peers.md §1.3/§5.3: a *finite* 60 s lease renewed every 15 s by a daemon thread, so a run killed with -9
  frees the cluster within a minute without an operator (terraform's infinite lease is its top complaint).
- issue 6: losing the lease stops the run before its next write: a failed renewal (409/412/404) sets a flag
  that save() checks first, and save() also renews synchronously, so a lease broken between two ticks is
  noticed before the write.
"""

from __future__ import annotations

import ipaddress
import threading
import time
import uuid
from typing import Any, Mapping
from urllib.parse import quote, unquote, urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError, HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError,
)
from azure.storage.blob import (
    BlobLeaseClient, BlobServiceClient, ContainerClient, ContentSettings, ExponentialRetry,
)

from ..errors import OperationalError, UsageError
from .base import MAX_JOURNAL_BYTES, cluster_key, decode_state, encode_state
from .errors import JournalConflict, JournalLocked, JournalUnreadable, LeaseLost
from .model import JournalState, LockHolder

LEASE_SECONDS = 60  # peers.md §5.1: finite leases are 15–60 s
RENEW_EVERY = 15.0  # four chances to renew before the lease runs out
SAFETY_MARGIN = 5.0  # without a confirmed renewal for LEASE_SECONDS - this, assume the lease is gone
_METADATA_KEYS = ("run_id", "user", "host", "pid", "started_at", "pipeline_url", "command", "boot_id", "pid_namespace")
_LEASE_LOST_CODES = {"LeaseIdMismatchWithLeaseOperation", "LeaseNotPresentWithLeaseOperation", "LeaseLost",
                     "LeaseIdMissing", "LeaseIsBrokenAndCannotBeRenewed", "LeaseAlreadyBroken", "BlobNotFound",
                     "ContainerNotFound"}


def _client_options(connection_verify: Any) -> dict[str, Any]:
    # short timeouts and quick retries (the SDK's default backoff starts at 15 s): a renewal stuck in retries
    # for most of the 60 s lease is worse than one that fails fast and is retried at the next tick
    options: dict[str, Any] = {
        "retry_policy": ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=3, random_jitter_range=1),
        "connection_timeout": 10, "read_timeout": 20,
    }
    if connection_verify is not None:
        options["connection_verify"] = connection_verify
    return options


def _is_loopback_or_ip(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def holder_to_metadata(holder: LockHolder, cluster_id: str) -> dict[str, str]:
    """Blob metadata travels as HTTP headers: ASCII only, so values are percent-encoded where needed."""
    values = {k: v for k, v in holder.to_dict().items() if v not in (None, "")}
    values["cluster_id"] = cluster_id
    return {k: quote(str(v), safe=" :/?=&@.,_-()+'#") for k, v in values.items()}


def holder_from_metadata(metadata: Mapping[str, str]) -> LockHolder:
    lowered = {k.lower(): unquote(v) for k, v in (metadata or {}).items()}
    return LockHolder.from_dict({k: lowered[k] for k in _METADATA_KEYS if k in lowered})


def _code(exc: HttpResponseError) -> str:
    return str(getattr(exc, "error_code", None) or "")


class BlobStore:
    def __init__(self, container: ContainerClient, prefix: str, cluster_id: str, *, location_base: str,
                 lease_seconds: int = LEASE_SECONDS, renew_every: float = RENEW_EVERY) -> None:
        key = cluster_key(cluster_id)
        prefix = prefix.strip("/")
        base = f"{prefix}/{key}" if prefix else key
        self.cluster_id = cluster_id
        self.container = container
        self.journal_name = f"{base}.journal.json"
        self.lock_name = f"{base}.lock"
        self.location = f"{location_base}/{self.journal_name}"
        self.lock_location = f"{location_base}/{self.lock_name}"
        self.container_location = location_base  # the container without its SAS (container.url carries it)
        self.lease_seconds = lease_seconds
        self.renew_every = renew_every
        self._journal = container.get_blob_client(self.journal_name)
        self._lock = container.get_blob_client(self.lock_name)
        self._etag: str | None = None  # what save() may overwrite; None = expects no journal (If-None-Match: *)
        self._container_checked = False
        self._lease: BlobLeaseClient | None = None
        self._lost: str | None = None  # why the lease was lost, set by the renewer or save()
        self._renewed_at = 0.0
        self._renew_lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # -- construction ------------------------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str, cluster_id: str, *, credential: Any = None, connection_verify: Any = None,
                 **options: Any) -> BlobStore:
        """``https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]`` (or an emulator's
        ``http://127.0.0.1:PORT/ACCOUNT/CONTAINER[/PREFIX]``) with a token or key credential."""
        parts = urlsplit(url)
        if parts.query:
            raise UsageError("--state URL must not carry a query (SAS): use blob:CONTAINER/PREFIX with a "
                             "connection string in SFMIGRATE_STATE_CONNECTION_STRING instead")
        segments = [s for s in parts.path.split("/") if s]
        account_url = f"{parts.scheme}://{parts.netloc}"
        if _is_loopback_or_ip(parts.hostname or "") and segments:
            account_url += "/" + segments.pop(0)  # emulator (path-style) URLs carry the account in the path
        if not segments:
            raise UsageError(f"--state {url}: name a container, e.g. https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX")
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        service = BlobServiceClient(account_url, credential=credential, **_client_options(connection_verify))
        container = service.get_container_client(segments[0])
        return cls(container, "/".join(segments[1:]), cluster_id, location_base=f"{account_url}/{segments[0]}",
                   **options)

    @classmethod
    def from_connection_string(cls, connection_string: str, target: str, cluster_id: str, *,
                               connection_verify: Any = None, **options: Any) -> BlobStore:
        """``blob:CONTAINER[/PREFIX]`` with a connection string (SFMIGRATE_STATE_CONNECTION_STRING)."""
        container_name, _, prefix = target.strip("/").partition("/")
        if not container_name:
            raise UsageError("--state blob:CONTAINER[/PREFIX]: name a container")
        try:
            service = BlobServiceClient.from_connection_string(connection_string, **_client_options(connection_verify))
        except ValueError as exc:
            raise UsageError(f"the state connection string is not valid: {exc}") from None
        endpoint = urlsplit(service.url)._replace(query="").geturl().rstrip("/")  # never show a SAS
        return cls(service.get_container_client(container_name), prefix, cluster_id,
                   location_base=f"{endpoint}/{container_name}", **options)

    # -- journal ------------------------------------------------------------------------------------------

    def load(self) -> JournalState | None:
        try:
            download = self._journal.download_blob()
            if (download.properties.size or 0) > MAX_JOURNAL_BYTES:  # untrusted input: never read it whole
                raise JournalUnreadable(f"journal {self.location} is larger than {MAX_JOURNAL_BYTES} bytes: not a journal sfmigrate wrote")
            raw = download.readall()
        except ResourceNotFoundError:
            self._etag = None
            return None
        except AzureError as exc:
            raise OperationalError(f"cannot read journal {self.location}: {_short(exc)}") from exc
        state = decode_state(raw, self.location, self.cluster_id)
        self._etag = download.properties.etag
        return state

    def save(self, state: JournalState) -> None:
        self.ensure_held()  # before anything else: a run without its lease writes nothing
        data = encode_state(state)
        condition: dict[str, Any] = (
            {"etag": self._etag, "match_condition": MatchConditions.IfNotModified} if self._etag
            else {"match_condition": MatchConditions.IfMissing}
        )
        for attempt in (1, 2):
            try:
                result = self._journal.upload_blob(
                    data, overwrite=True, content_settings=ContentSettings(content_type="application/json"),
                    **condition)
                break
            except (ResourceModifiedError, ResourceExistsError) as exc:
                raise JournalConflict(
                    f"journal {self.location} changed by another writer since this run read it; nothing was "
                    "written — run again to resume from the journal as it is now") from exc
            except ResourceNotFoundError as exc:
                if attempt == 2 or _code(exc) != "ContainerNotFound":
                    raise OperationalError(f"cannot write journal {self.location}: {_short(exc)}") from exc
                self._ensure_container(force=True)
            except AzureError as exc:
                raise OperationalError(f"cannot write journal {self.location}: {_short(exc)}") from exc
        self._etag = result["etag"]

    # -- lock -----------------------------------------------------------------------------------------------

    def acquire(self, holder: LockHolder) -> None:
        if self._lease is not None:
            self.ensure_held()
            return
        self._ensure_container()
        lease_id = _as_uuid(holder.run_id)
        lease: BlobLeaseClient | None = None
        for _ in range(5):
            try:
                lease = self._lock.acquire_lease(lease_duration=self.lease_seconds, lease_id=lease_id)
                break
            except ResourceNotFoundError:
                try:  # first run on this cluster: create the (empty) lock blob, then lease it
                    self._lock.upload_blob(b"", overwrite=False)
                except ResourceExistsError:
                    pass
            except HttpResponseError as exc:
                if exc.status_code != 409:
                    raise OperationalError(f"cannot lock {self.lock_location}: {_short(exc)}") from exc
                other = self._settled_holder()
                if other is not None:
                    raise JournalLocked(
                        f"cluster {self.cluster_id} is locked by another run: {other.describe()} "
                        f"(lease on {self.lock_location}; it lapses {self.lease_seconds} s after that run stops "
                        "renewing it, or `sfmigrate unlock --force` breaks it now)", other) from None
            except AzureError as exc:
                raise OperationalError(f"cannot lock {self.lock_location}: {_short(exc)}") from exc
        if lease is None:
            raise JournalLocked(f"cluster {self.cluster_id} is being locked by another run right now; try again")
        try:
            self._lock.set_blob_metadata(holder_to_metadata(holder, self.cluster_id), lease=lease)
        except AzureError as exc:
            _quietly(lease.release)
            raise OperationalError(f"cannot record the lock holder on {self.lock_location}: {_short(exc)}") from exc
        self._lease, self._lost, self._renewed_at = lease, None, time.monotonic()
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew_loop, name="sfmigrate-lease-renewer", daemon=True)
        self._renewer.start()

    def release(self) -> None:
        lease, lost = self._lease, self._lost
        self._stop_renewer()
        self._lease, self._lost = None, None
        if lease is not None and lost is None:
            # clear the holder first, so the next run never reads a departed holder's details
            _quietly(lambda: self._lock.set_blob_metadata({}, lease=lease))
            _quietly(lease.release)  # if it already lapsed or was broken, there is nothing to release

    def _settled_holder(self) -> LockHolder | None:
        """The current holder, read until two reads agree: a new holder writes its metadata just after
        taking the lease, so a read in between shows nobody, or the departed previous holder."""
        previous: LockHolder | None = None
        for _ in range(15):
            current = self.holder()
            if current is None:
                return None  # lapsed meanwhile: acquire again
            if current.run_id != "unknown" and current == previous:
                return current
            previous = current
            time.sleep(0.2)
        return previous

    def holder(self) -> LockHolder | None:
        try:
            props = self._lock.get_blob_properties()
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise OperationalError(f"cannot read the lock {self.lock_location}: {_short(exc)}") from exc
        if props.lease.status != "locked":  # available, expired or broken: nobody holds it
            return None
        return holder_from_metadata(props.metadata)

    def break_lock(self) -> LockHolder | None:
        """``unlock --force``: say who held the lease, then break it at once (peers.md §5.3 step 6)."""
        holder = self.holder()
        if holder is None:
            return None
        try:
            BlobLeaseClient(self._lock).break_lease(lease_break_period=0)
        except AzureError as exc:
            raise OperationalError(f"cannot break the lease on {self.lock_location}: {_short(exc)}") from exc
        if self._lease is not None:  # we broke our own lease: this store must not write any more
            self._stop_renewer()
            self._lost = f"the lease on {self.lock_location} was broken by `unlock --force`"
        return holder

    # -- lease upkeep -----------------------------------------------------------------------------------

    @property
    def lease_lost(self) -> str | None:
        """Why this run's lease was lost (None while held or when never acquired)."""
        return self._lost

    def ensure_held(self) -> None:
        """Raise LeaseLost unless this run (if it took the lock) still holds it; renews as a side effect.
        The runner may call it before side effects too, not only before journal writes."""
        if self._lease is None:
            return
        if self._lost:
            raise LeaseLost(self._lost)
        try:
            self._renew()
        except LeaseLost:
            raise
        except AzureError as exc:  # transient: trust our own clock while the lease is certainly still valid
            if time.monotonic() - self._renewed_at >= self.lease_seconds - SAFETY_MARGIN:
                self._lost = (f"the lease on {self.lock_location} could not be renewed for "
                              f"{self.lease_seconds - SAFETY_MARGIN:.0f} s ({_short(exc)}); this run stopped "
                              "before writing")
                raise LeaseLost(self._lost) from exc

    def _renew(self) -> None:
        lease = self._lease
        if lease is None:
            return
        with self._renew_lock:
            if self._lost:
                raise LeaseLost(self._lost)
            try:
                lease.renew()
            except HttpResponseError as exc:
                if exc.status_code in (404, 409, 412) or _code(exc) in _LEASE_LOST_CODES:
                    self._lost = (f"the lease on {self.lock_location} was lost ({_code(exc) or exc.status_code}: "
                                  "broken by `unlock --force`, or it lapsed and another run took it); "
                                  "this run stopped before writing")
                    raise LeaseLost(self._lost) from exc
                raise
            self._renewed_at = time.monotonic()

    def _renew_loop(self) -> None:
        stop = self._stop
        while not stop.wait(self.renew_every):
            try:
                self._renew()
            except LeaseLost:
                return  # the flag is set; save() refuses from now on
            except Exception:  # noqa: BLE001 - transient; ensure_held() judges by the age of the last renewal
                continue

    def _stop_renewer(self) -> None:
        self._stop.set()
        if self._renewer is not None and self._renewer is not threading.current_thread():
            self._renewer.join(timeout=10)
        self._renewer = None

    def _ensure_container(self, force: bool = False) -> None:
        if self._container_checked and not force:
            return
        try:
            self.container.create_container()
        except ResourceExistsError:
            pass
        except HttpResponseError as exc:
            if exc.status_code != 403:  # may lack the right to create it but still use it (a container SAS)
                raise OperationalError(f"cannot use container {self.container_location}: {_short(exc)}") from exc
        except AzureError as exc:
            raise OperationalError(f"cannot reach {self.container_location}: {_short(exc)}") from exc
        self._container_checked = True


def _as_uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return str(uuid.uuid4())


def _short(exc: BaseException) -> str:
    from ..safe_output import redact

    return redact((str(getattr(exc, "message", None) or exc).splitlines() or [""])[0])[:300]  # SDK messages quote SAS URLs


def _quietly(call: Any) -> None:
    try:
        call()
    except AzureError:
        pass
