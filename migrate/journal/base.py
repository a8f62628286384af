"""The journal store interface, the shared JSON codec, and ``open_store`` (the one entry point).

Contract every store keeps (docs/state.md):
- ``save`` is atomic and *fenced*: it writes only over the version this store object last loaded or saved
  (a store that has not loaded expects no journal), else JournalConflict; it raises LeaseLost *before
  writing* if this run's lock was lost; it refuses values that look like secrets (guard.py).
- ``acquire`` raises Locked (JournalLocked, exit 5) naming the holder when another live run holds the lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..errors import UsageError
from ..arm_ids import id_parts
from .errors import JournalUnreadable
from .guard import refuse_secrets
from .model import JournalState, LockHolder, now_iso

DEFAULT_DIR = ".sfmigrate"
CONNECTION_STRING_VARS = ("SFMIGRATE_STATE_CONNECTION_STRING", "AZURE_STORAGE_CONNECTION_STRING")

@runtime_checkable
class JournalStore(Protocol):
    location: str  # for messages: "file:/path/x.journal.json" or "https://acct.blob.../container/prefix/x..."

    def load(self) -> JournalState | None: ...
    def save(self, state: JournalState) -> None: ...
    def acquire(self, holder: LockHolder) -> None: ...
    def release(self) -> None: ...
    def holder(self) -> LockHolder | None: ...
    def break_lock(self) -> LockHolder | None: ...


def _clean(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "_", text.lower()).strip("._") or "_"


def cluster_key(cluster_id: str) -> str:
    """``<sub8>-<rg>-<name>`` from an ARM id, lower-cased (ARM ids are case-insensitive) and sanitised.

    Anything that had to be altered, or is not an ARM id, gets a short hash of the lower-cased id appended,
    so two clusters can never share a journal."""
    digest = hashlib.sha256(cluster_id.strip().lower().encode()).hexdigest()[:8]
    try:
        sub, rg, name = id_parts(cluster_id.strip())
    except ValueError:
        return f"{_clean(cluster_id)[:80]}-{digest}"
    key = f"{_clean(sub)[:8]}-{_clean(rg)}-{_clean(name)}"
    if (_clean(rg) != rg.lower() or _clean(name) != name.lower()) or len(key) > 150:
        key = f"{key[:140]}-{digest}"
    return key


def encode_state(state: JournalState) -> bytes:
    """Stamp ``updated_at`` and serialise; refuses secret-looking values before anything is written."""
    state.updated_at = now_iso()
    data = state.to_dict()
    refuse_secrets(data)
    return (json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")


MAX_JOURNAL_BYTES = 16 * 1024 * 1024  # a journal keeps 200 events: anything near this size was not written by sfmigrate
MAX_JOURNAL_DEPTH = 64  # the deepest a journal sfmigrate writes goes is about 10 (observed facts, step changes)


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether JSON ``value`` nests deeper than ``limit`` (iterative: a hostile journal must not exhaust the stack
    of the code that later walks it, the secret guard or a renderer)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return False


def decode_state(raw: bytes, location: str, cluster_id: str) -> JournalState:
    """The journal from its bytes. It is untrusted input (whoever can write the state folder or the container
    can edit it): every failure is JournalUnreadable or UsageError naming the field, never an internal error."""
    if len(raw) > MAX_JOURNAL_BYTES:
        raise JournalUnreadable(f"journal {location} is larger than {MAX_JOURNAL_BYTES} bytes: not a journal sfmigrate wrote")
    try:
        data: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JournalUnreadable(f"journal {location} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise JournalUnreadable(f"journal {location} nests deeper than JSON can be read") from None
    if _depth_exceeds(data, MAX_JOURNAL_DEPTH):
        raise JournalUnreadable(f"journal {location} nests deeper than {MAX_JOURNAL_DEPTH} levels: not a journal sfmigrate wrote")
    try:
        state = JournalState.from_dict(data)
    except JournalUnreadable as exc:
        raise JournalUnreadable(f"journal {location}: {exc}") from exc
    except UsageError as exc:  # a step that does not read back (unknown kind, malformed params): exit 64
        raise UsageError(f"journal {location}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise JournalUnreadable(f"journal {location} has an unexpected shape: {exc}") from exc
    if state.cluster_id.lower() != cluster_id.lower():
        raise JournalUnreadable(f"journal {location} belongs to cluster {state.cluster_id}, not {cluster_id}")
    return state


def open_store(location: str | None, cluster_id: str, *, credential: Any = None,
               connection_verify: Any = None) -> JournalStore:
    """Pick the store from ``--state``:

    - absent → local directory ``./.sfmigrate/``; a path or ``file:PATH`` → that local directory;
    - ``https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]`` → Azure Blob with ``credential``
      (DefaultAzureCredential when None);
    - ``blob:CONTAINER[/PREFIX]`` → Azure Blob with the connection string in
      ``SFMIGRATE_STATE_CONNECTION_STRING`` or else ``AZURE_STORAGE_CONNECTION_STRING``.
    """
    if location and location.startswith(("https://", "http://")):
        from .blob import BlobStore

        return BlobStore.from_url(location, cluster_id, credential=credential, connection_verify=connection_verify)
    if location and location.startswith("blob:"):
        from .blob import BlobStore

        names = [v for v in CONNECTION_STRING_VARS if os.environ.get(v)]
        if not names:
            raise UsageError(f"--state {location} needs a connection string in {' or '.join(CONNECTION_STRING_VARS)}")
        return BlobStore.from_connection_string(os.environ[names[0]], location[len("blob:"):], cluster_id,
                                                connection_verify=connection_verify)
    from .local import LocalStore

    path = location[len("file:"):] if location and location.startswith("file:") else location
    return LocalStore(Path(path or DEFAULT_DIR), cluster_id)
