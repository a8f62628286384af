"""The local journal: one JSON file per cluster plus a lock file, in ``--state DIR`` (default ./.sfmigrate/).

Writes are atomic (issue 5: temp file in the same directory, fsync, ``os.replace``, fsync the directory), so a
crash at any instant leaves either the old or the new journal, never a torn one. Files are 0600.

Lock protocol (docs/state.md; one lock file's rules in lockfile.py): two locks are taken, this machine's lock for
the cluster (``machine_lock_dir()``: runs with different ``--state`` folders exclude each other) and the state
folder's ``<key>.lock`` (runs sharing the folder from other machines exclude each other);
- create ``<key>.lock`` with O_CREAT|O_EXCL and write the LockHolder JSON into it;
- if it exists: a holder on another host, boot or pid namespace is treated as held (only ``unlock --force``
  removes it); a holder here whose pid is alive holds it; a holder whose pid is gone (kill -9) is stale and is
  taken over by writing a new lock file and renaming it over the old one, then re-reading it to confirm;
- inspection and takeover happen under ``flock`` on the lock file's inode (checked against the path), so
  two runs that both find a stale lock cannot both take it over.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import suppress
from pathlib import Path

from ..errors import OperationalError, UsageError
from .base import MAX_JOURNAL_BYTES, cluster_key, decode_state, encode_state
from .errors import JournalConflict
from .lockfile import ACQUIRE_PATIENCE, LockFile, fsync_dir, pid_alive
from .model import JournalState, LockHolder

__all__ = ["ACQUIRE_PATIENCE", "LocalStore", "machine_lock_dir", "pid_alive"]
TEMP_STALE_AFTER = 60.0
LOCK_DIR_VAR = "SFMIGRATE_LOCK_DIR"

Identity = tuple[int, int, int, int]


def _identity(st: os.stat_result) -> Identity:
    """The local stand-in for an ETag: ``os.replace`` gives every saved journal a new inode."""
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def machine_lock_dir() -> Path:
    """Where this machine's per-cluster locks live: ``$SFMIGRATE_LOCK_DIR``, else ``~/.sfmigrate/locks``. It is
    what makes the lock key the cluster rather than the state folder for every run of this user on this machine
    (or in containers sharing that folder); nothing local reaches other machines: use blob state (docs/security.md)."""
    configured = os.environ.get(LOCK_DIR_VAR)
    if configured:
        return Path(configured)
    try:
        return Path.home() / ".sfmigrate" / "locks"
    except RuntimeError:  # no home directory (a bare container user)
        return Path(tempfile.gettempdir()) / f"sfmigrate-locks-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


class LocalStore:
    def __init__(self, directory: Path, cluster_id: str) -> None:
        if directory.exists() and not directory.is_dir():
            raise UsageError(f"--state {directory}: expected a directory, found a file")
        self.directory = directory
        self.cluster_id = cluster_id
        key = cluster_key(cluster_id)
        self.path = directory / f"{key}.journal.json"
        self.lock_path = directory / f"{key}.lock"
        self.location = f"file:{self.path}"
        self._folder_lock = LockFile(self.lock_path, cluster_id)
        machine = machine_lock_dir() / f"{key}.lock"
        same = os.path.abspath(machine) == os.path.abspath(self.lock_path)
        self.machine_lock_path = machine
        # the machine's lock first (the cluster), then the folder's (the journal file, maybe on a share)
        self._locks = [self._folder_lock] if same else [LockFile(machine, cluster_id, " (this machine's lock for the cluster)"), self._folder_lock]
        self._version: Identity | None = None  # what save() may overwrite; None = expects no journal
        self._holder: LockHolder | None = None

    @property
    def took_over_from(self) -> LockHolder | None:
        """Set when acquire replaced a dead run's lock."""
        return self._folder_lock.took_over_from or next((lock.took_over_from for lock in self._locks if lock.took_over_from), None)

    # -- journal ---------------------------------------------------------------------------------------

    def load(self) -> JournalState | None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            self._version = None
            return None
        with os.fdopen(fd, "rb") as handle:
            identity = _identity(os.fstat(handle.fileno()))
            raw = handle.read(MAX_JOURNAL_BYTES + 1)  # bounded: the path may be a link to /dev/zero
        state = decode_state(raw, self.location, self.cluster_id)
        self._version = identity
        return state

    def save(self, state: JournalState) -> None:
        self._check_lock()  # issue 6: a run that lost its lock stops before its next write
        data = encode_state(state)  # refuses secrets before touching the disk
        self._ensure_dir()
        try:
            current: Identity | None = _identity(os.stat(self.path))
        except FileNotFoundError:
            current = None
        if current != self._version:
            raise JournalConflict(
                f"journal {self.location} was changed by another writer since this run read it; "
                "nothing was written — run again to resume from the journal as it is now"
            )
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                if hasattr(os, "fchmod"):
                    os.fchmod(handle.fileno(), 0o600)  # mkstemp creates 0600 already; say so explicitly
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
                identity = _identity(os.fstat(handle.fileno()))  # rename keeps inode and mtime
            os.replace(tmp, self.path)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        fsync_dir(self.directory)
        self._version = identity

    # -- lock ------------------------------------------------------------------------------------------

    def acquire(self, holder: LockHolder) -> None:
        if self._holder is not None and self._holder.run_id == holder.run_id:
            self._check_lock()
            return
        self._ensure_dir()
        taken: list[LockFile] = []
        try:
            for lock in self._locks:
                try:
                    lock.acquire(holder, ACQUIRE_PATIENCE)
                except OSError as exc:  # an unwritable home or state folder: the environment, exit 1
                    raise OperationalError(f"cannot create the lock {lock.path}: {exc.strerror or exc}; set {LOCK_DIR_VAR} "
                                           "(this machine's locks) or --state to a folder this user may write") from None
                taken.append(lock)
        except BaseException:
            for lock in reversed(taken):
                lock.release()
            raise
        self._holder = holder
        self._remove_stale_temps()

    def release(self) -> None:
        if self._holder is None:
            return
        for lock in reversed(self._locks):
            lock.release()
        self._holder = None

    def holder(self) -> LockHolder | None:
        """Who holds the cluster: the state folder's lock, else this machine's lock for the cluster."""
        for lock in reversed(self._locks):
            found = lock.holder()
            if found is not None:
                return found
        return None

    def break_lock(self) -> LockHolder | None:
        """``unlock --force``: remove the lock whoever holds it (the state folder's and this machine's lock for
        the cluster); the holder's next write (journal save, or the intent before an Azure write) raises LeaseLost."""
        broken = [lock.break_lock() for lock in reversed(self._locks)]
        return next((holder for holder in broken if holder is not None), None)

    def ensure_held(self) -> None:
        """Raise LeaseLost unless this run (if it took the lock) still holds it; the runner may call it
        before side effects too, not only before journal writes (same method on BlobStore)."""
        self._check_lock()

    # -- helpers ---------------------------------------------------------------------------------------

    def _check_lock(self) -> None:
        if self._holder is None:
            return
        for lock in reversed(self._locks):
            lock.check()

    def _ensure_dir(self) -> None:
        """The state folder exists and is writable, or one line naming --state (issue 13: never "internal error")."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--state {self.directory}: cannot create the folder: {exc.strerror or exc}") from None
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise UsageError(f"--state {self.directory}: the folder is not writable")

    def _remove_stale_temps(self) -> None:
        """Temp files left by a crash between write and rename (harmless, but tidy up while we hold the lock)."""
        cutoff = time.time() - TEMP_STALE_AFTER
        for name in (self.path.name, self.lock_path.name):
            for leftover in self.directory.glob(f".{name}.*.tmp"):
                with suppress(OSError):
                    if leftover.stat().st_mtime < cutoff:
                        leftover.unlink()
