"""One lock file: create with O_EXCL, take over a dead holder's, release, break, check (docs/state.md).

A local store holds two of them (journal/local.py): the state folder's, and this machine's lock for the cluster,
so two runs on one cluster with different ``--state`` folders cannot both proceed (issue 13, "Lock scope").

A holder is judged dead only when it ran on this host *and* this boot *and* in this pid namespace, and its pid is
gone: containers that share a hostname (and a kernel, hence a boot id) but not a pid namespace never steal a live
lock; a holder whose boot or namespace is unknown is held until ``unlock --force``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import suppress
from pathlib import Path

from .errors import JournalLocked, LeaseLost
from .model import LockHolder, boot_id, pid_namespace

try:
    import fcntl
except ImportError:  # Windows: no flock; takeover is then not serialised (documented in docs/state.md)
    fcntl = None  # type: ignore[assignment]

ACQUIRE_PATIENCE = 5.0  # seconds to wait out a lock file being created or inspected by another process
EMPTY_LOCK_STALE_AFTER = 30.0  # an unreadable lock older than this was left by a creator that died mid-write


def fsync_dir(directory: Path) -> None:
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


def same_machine_instance(other: LockHolder) -> bool:
    """Whether ``other`` ran where its pid means something here: same host, same boot, same pid namespace."""
    here = LockHolder.current("")
    return (other.host == here.host and bool(other.boot_id) and other.boot_id == boot_id()
            and bool(other.pid_namespace) and other.pid_namespace == pid_namespace())


def _elsewhere(other: LockHolder) -> str:
    if other.host != LockHolder.current("").host:
        return "on another host"
    if not other.boot_id or other.boot_id != boot_id():
        return "on this host before a reboot, or of unknown boot"
    return "in another container (pid namespace) sharing this host name"


def _flock(fd: int) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def parse_holder(raw: bytes) -> LockHolder | None:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return LockHolder.from_dict(data) if isinstance(data, dict) and data.get("run_id") else None


class LockFile:
    def __init__(self, path: Path, cluster_id: str, what: str = "") -> None:
        self.path = path
        self.cluster_id = cluster_id
        self.what = what  # for messages: "" (the state folder's) or " (this machine's lock for the cluster)"
        self.took_over_from: LockHolder | None = None
        self.held_by: LockHolder | None = None  # ours, while held

    def acquire(self, holder: LockHolder, patience: float = ACQUIRE_PATIENCE) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        payload = json.dumps(holder.to_dict(), indent=2).encode("utf-8")
        deadline = time.monotonic() + patience
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                if self._take_over_if_stale(holder, payload):
                    break
                if time.monotonic() > deadline:
                    raise JournalLocked(
                        f"cluster {self.cluster_id} is being locked by another run right now ({self.path}); "
                        "try again, or if the lock file stays empty run `sfmigrate unlock --force`"
                    ) from None
                time.sleep(0.05)
                continue
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            fsync_dir(self.path.parent)
            break
        self.held_by = holder

    def _take_over_if_stale(self, holder: LockHolder, payload: bytes) -> bool:
        """True when a dead run's lock was replaced by ours; False to retry; JournalLocked when held."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False  # released meanwhile: retry O_EXCL
        with os.fdopen(fd, "rb") as handle:
            if not _flock(handle.fileno()):
                return False  # another process is inspecting or taking over right now
            try:
                if os.stat(self.path).st_ino != os.fstat(handle.fileno()).st_ino:
                    return False  # replaced while we waited: look again
            except FileNotFoundError:
                return False
            other = parse_holder(handle.read())
            if other is None:
                if time.time() - os.fstat(handle.fileno()).st_mtime < EMPTY_LOCK_STALE_AFTER:
                    return False  # its creator is writing it right now
            elif not same_machine_instance(other):
                raise JournalLocked(
                    f"cluster {self.cluster_id} is locked{self.what} by a run {_elsewhere(other)}: "
                    f"{other.describe()}. sfmigrate cannot tell from here whether it still runs; if it is gone, "
                    "run `sfmigrate unlock --force`", other)
            elif pid_alive(other.pid):
                raise JournalLocked(
                    f"cluster {self.cluster_id} is locked{self.what} by another run: {other.describe()}; "
                    "wait for it to finish or stop it", other)
            # Stale (its process is gone): replace atomically, still under the flock, then confirm.
            write_atomically(self.path, payload)
        mine = self.read()
        if mine is None or mine.run_id != holder.run_id:
            raise JournalLocked(f"cluster {self.cluster_id} was locked by another run while taking over a "
                                f"stale lock: {mine.describe() if mine else 'unknown holder'}", mine)
        self.took_over_from = other
        return True

    def release(self) -> None:
        if self.held_by is None:
            return
        current = self.read()
        if current is not None and current.run_id == self.held_by.run_id:
            with suppress(FileNotFoundError):
                os.unlink(self.path)
            fsync_dir(self.path.parent)
        self.held_by = None

    def holder(self) -> LockHolder | None:
        try:
            raw = self.path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        # a lock file that does not parse is still a lock (being written, or damaged): report an unknown holder
        return parse_holder(raw) or LockHolder.from_dict({})

    def break_lock(self) -> LockHolder | None:
        holder = self.holder()
        with suppress(FileNotFoundError, NotADirectoryError):
            os.unlink(self.path)
            fsync_dir(self.path.parent)
        return holder

    def check(self) -> None:
        """LeaseLost unless the lock we took is still ours."""
        if self.held_by is None:
            return
        current = self.read()
        if current is None:
            raise LeaseLost(f"the lock{self.what} on cluster {self.cluster_id} was removed (unlock --force?); "
                            "this run stopped before writing")
        if current.run_id != self.held_by.run_id:
            raise LeaseLost(f"the lock{self.what} on cluster {self.cluster_id} is now held by another run: "
                            f"{current.describe()}; this run stopped before writing")

    def read(self) -> LockHolder | None:
        try:
            return parse_holder(self.path.read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return None


def write_atomically(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
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
    fsync_dir(target.parent)
