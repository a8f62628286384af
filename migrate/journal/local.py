"""The local journal: one JSON file per cluster plus a lock file, in ``--state DIR`` (default ./.sfmigrate/).

Writes are atomic (issue 5: temp file in the same directory, fsync, ``os.replace``, fsync the directory), so a
crash at any instant leaves either the old or the new journal, never a torn one. Files are 0600.

Lock protocol (docs/state.md):
- create ``<key>.lock`` with O_CREAT|O_EXCL and write the LockHolder JSON into it;
- if it exists: a holder on another host is treated as held (only ``unlock --force`` removes it); a holder
  on this host whose pid is alive holds it; a holder whose pid is gone (kill -9) is stale and is taken over
  by writing a new lock file and renaming it over the old one, then re-reading it to confirm;
- inspection and takeover happen under ``flock`` on the lock file's inode (checked against the path), so
  two runs that both find a stale lock cannot both take it over.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from contextlib import suppress
from pathlib import Path

from ..errors import UsageError
from .base import cluster_key, decode_state, encode_state
from .errors import JournalConflict, JournalLocked, LeaseLost
from .model import JournalState, LockHolder

try:
    import fcntl
except ImportError:  # Windows: no flock; takeover is then not serialised (documented in docs/state.md)
    fcntl = None  # type: ignore[assignment]

ACQUIRE_PATIENCE = 5.0  # seconds to wait out a lock file being created or inspected by another process
EMPTY_LOCK_STALE_AFTER = 30.0  # an unreadable lock older than this was left by a creator that died mid-write
TEMP_STALE_AFTER = 60.0

Identity = tuple[int, int, int, int]


def _identity(st: os.stat_result) -> Identity:
    """The local stand-in for an ETag: ``os.replace`` gives every saved journal a new inode."""
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _fsync_dir(directory: Path) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (a zombie counts as gone)."""
    if pid <= 0:
        return False
    if os.name == "nt":
        return True  # os.kill(pid, 0) would terminate it on Windows; be conservative: unlock --force
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by another user
    with suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _flock(fd: int) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _parse_holder(raw: bytes) -> LockHolder | None:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return LockHolder.from_dict(data) if isinstance(data, dict) and data.get("run_id") else None


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
        self.took_over_from: LockHolder | None = None  # set when acquire replaced a dead run's lock
        self._version: Identity | None = None  # what save() may overwrite; None = expects no journal
        self._holder: LockHolder | None = None

    # -- journal ---------------------------------------------------------------------------------------

    def load(self) -> JournalState | None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            self._version = None
            return None
        with os.fdopen(fd, "rb") as handle:
            identity = _identity(os.fstat(handle.fileno()))
            raw = handle.read()
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
        _fsync_dir(self.directory)
        self._version = identity

    # -- lock ------------------------------------------------------------------------------------------

    def acquire(self, holder: LockHolder) -> None:
        if self._holder is not None and self._holder.run_id == holder.run_id:
            self._check_lock()
            return
        self._ensure_dir()
        payload = json.dumps(holder.to_dict(), indent=2).encode("utf-8")
        deadline = time.monotonic() + ACQUIRE_PATIENCE
        while True:
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                if self._take_over_if_stale(holder, payload):
                    break
                if time.monotonic() > deadline:
                    raise JournalLocked(
                        f"cluster {self.cluster_id} is being locked by another run right now ({self.lock_path}); "
                        "try again, or if the lock file stays empty run `sfmigrate unlock --force`"
                    ) from None
                time.sleep(0.05)
                continue
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            _fsync_dir(self.directory)
            break
        self._holder = holder
        self._remove_stale_temps()

    def _take_over_if_stale(self, holder: LockHolder, payload: bytes) -> bool:
        """True when a dead run's lock was replaced by ours; False to retry; JournalLocked when held."""
        try:
            fd = os.open(self.lock_path, os.O_RDONLY)
        except FileNotFoundError:
            return False  # released meanwhile: retry O_EXCL
        with os.fdopen(fd, "rb") as handle:
            if not _flock(handle.fileno()):
                return False  # another process is inspecting or taking over right now
            try:
                if os.stat(self.lock_path).st_ino != os.fstat(handle.fileno()).st_ino:
                    return False  # replaced while we waited: look again
            except FileNotFoundError:
                return False
            other = _parse_holder(handle.read())
            if other is None:
                if time.time() - os.fstat(handle.fileno()).st_mtime < EMPTY_LOCK_STALE_AFTER:
                    return False  # its creator is writing it right now
            elif other.host != socket.gethostname():
                raise JournalLocked(
                    f"cluster {self.cluster_id} is locked by a run on another host: {other.describe()}. "
                    "sfmigrate cannot tell from here whether it still runs; if it is gone, "
                    "run `sfmigrate unlock --force`", other)
            elif pid_alive(other.pid):
                raise JournalLocked(
                    f"cluster {self.cluster_id} is locked by another run: {other.describe()}; "
                    "wait for it to finish or stop it", other)
            # Stale (its process is gone): replace atomically, still under the flock, then confirm.
            self._write_atomically(self.lock_path, payload)
        mine = self._read_holder()
        if mine is None or mine.run_id != holder.run_id:
            raise JournalLocked(f"cluster {self.cluster_id} was locked by another run while taking over a "
                                f"stale lock: {mine.describe() if mine else 'unknown holder'}", mine)
        self.took_over_from = other
        return True

    def release(self) -> None:
        if self._holder is None:
            return
        current = self._read_holder()
        if current is not None and current.run_id == self._holder.run_id:
            with suppress(FileNotFoundError):
                os.unlink(self.lock_path)
            _fsync_dir(self.directory)
        self._holder = None

    def holder(self) -> LockHolder | None:
        try:
            raw = self.lock_path.read_bytes()
        except FileNotFoundError:
            return None
        # a lock file that does not parse is still a lock (being written, or damaged): report an unknown holder
        return _parse_holder(raw) or LockHolder.from_dict({})

    def break_lock(self) -> LockHolder | None:
        """``unlock --force``: remove the lock whoever holds it; the holder's next save() raises LeaseLost."""
        holder = self.holder()
        with suppress(FileNotFoundError):
            os.unlink(self.lock_path)
            _fsync_dir(self.directory)
        return holder  # if this store held it, its next save() raises LeaseLost like any other holder's

    def ensure_held(self) -> None:
        """Raise LeaseLost unless this run (if it took the lock) still holds it; the runner may call it
        before side effects too, not only before journal writes (same method on BlobStore)."""
        self._check_lock()

    # -- helpers ---------------------------------------------------------------------------------------

    def _check_lock(self) -> None:
        if self._holder is None:
            return
        current = self._read_holder()
        if current is None:
            raise LeaseLost(f"the lock on cluster {self.cluster_id} was removed (unlock --force?); "
                            "this run stopped before writing")
        if current.run_id != self._holder.run_id:
            raise LeaseLost(f"the lock on cluster {self.cluster_id} is now held by another run: "
                            f"{current.describe()}; this run stopped before writing")

    def _read_holder(self) -> LockHolder | None:
        try:
            return _parse_holder(self.lock_path.read_bytes())
        except FileNotFoundError:
            return None

    def _ensure_dir(self) -> None:
        """The state folder exists and is writable, or one line naming --state (issue 13: never "internal error")."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--state {self.directory}: cannot create the folder: {exc.strerror or exc}") from None
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise UsageError(f"--state {self.directory}: the folder is not writable")

    def _write_atomically(self, target: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(self.directory)

    def _remove_stale_temps(self) -> None:
        """Temp files left by a crash between write and rename (harmless, but tidy up while we hold the lock)."""
        cutoff = time.time() - TEMP_STALE_AFTER
        for name in (self.path.name, self.lock_path.name):
            for leftover in self.directory.glob(f".{name}.*.tmp"):
                with suppress(OSError):
                    if leftover.stat().st_mtime < cutoff:
                        leftover.unlink()
