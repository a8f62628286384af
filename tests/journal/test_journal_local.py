"""The local journal: atomic 0600 writes, version fencing, the secret guard, and the lock file."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from journalkit import held_by, read_line
from migrate.errors import ExitCode, Locked, OperationalError
from migrate.journal import (
    JournalConflict, JournalLocked, JournalState, LeaseLost, LockHolder, SecretInJournal,
)
from migrate.journal.local import LocalStore, pid_alive

Spawn = Callable[..., subprocess.Popen[str]]


def fresh(cluster_id: str) -> JournalState:
    return JournalState.new(cluster_id, "plan1", "spec1", ["install-goal", "convert-cluster"], run_id="r1")


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_save_load_layout_and_modes(state_dir: Path, cluster_id: str) -> None:
    store = LocalStore(state_dir, cluster_id)
    assert store.load() is None
    state = fresh(cluster_id)
    state.step("install-goal").observed = {"nodes_with_goal": 3}
    store.save(state)
    assert store.path == state_dir / "0123abcd-rg-sf-sfcluster.journal.json"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert [p.name for p in state_dir.iterdir()] == [store.path.name]  # no temp file left behind
    loaded = LocalStore(state_dir, cluster_id).load()
    assert loaded is not None and loaded.to_dict() == state.to_dict()
    assert json.loads(store.path.read_text())["format_version"] == "1.1"  # 1.1 (issue 9): records carry their step
    os.chmod(store.path, 0o644)  # someone widened it: the next write restores 0600
    store.load()
    store.save(state)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_failed_rename_leaves_the_old_journal(state_dir: Path, cluster_id: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(state_dir, cluster_id)
    store.save(fresh(cluster_id))
    before = store.path.read_bytes()
    state = store.load()
    assert state is not None
    state.status = "running"

    def crash(*args: object) -> None:
        raise OSError("disk gone between write and rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        store.save(state)
    monkeypatch.undo()
    assert store.path.read_bytes() == before
    assert [p.name for p in state_dir.iterdir()] == [store.path.name]


def test_kill_9_between_temp_and_rename_leaves_the_old_journal(state_dir: Path, cluster_id: str,
                                                               spawn: Spawn) -> None:
    store = LocalStore(state_dir, cluster_id)
    store.save(fresh(cluster_id))
    before = store.path.read_bytes()
    child = spawn("crash-save", str(state_dir), cluster_id)
    assert child.wait(timeout=30) == -signal.SIGKILL
    assert store.path.read_bytes() == before  # the old journal, whole
    leftovers = list(state_dir.glob(".*.tmp"))
    assert len(leftovers) == 1 and b"crashed-mid-write" in leftovers[0].read_bytes()
    # the next run that takes the lock tidies up temp files old enough to be a crash's leftovers
    os.utime(leftovers[0], (time.time() - 3600, time.time() - 3600))
    LocalStore(state_dir, cluster_id).acquire(LockHolder.current())
    assert not leftovers[0].exists()


def test_save_is_fenced_by_the_version_it_last_read(state_dir: Path, cluster_id: str) -> None:
    first, second = LocalStore(state_dir, cluster_id), LocalStore(state_dir, cluster_id)
    first.save(fresh(cluster_id))
    mine, theirs = first.load(), second.load()
    assert mine is not None and theirs is not None
    theirs.status = "stopped"
    second.save(theirs)
    mine.status = "running"
    with pytest.raises(JournalConflict, match="changed by another writer") as info:
        first.save(mine)
    assert isinstance(info.value, OperationalError)
    reloaded = first.load()
    assert reloaded is not None and reloaded.status == "stopped"  # nothing lost
    reloaded.status = "running"
    first.save(reloaded)
    # a store that never loaded expects no journal at all
    with pytest.raises(JournalConflict):
        LocalStore(state_dir, cluster_id).save(fresh(cluster_id))


def test_secret_guard_writes_nothing(state_dir: Path, cluster_id: str) -> None:
    store = LocalStore(state_dir, cluster_id)
    store.save(fresh(cluster_id))
    before = store.path.read_bytes()
    state = store.load()
    assert state is not None
    state.last_error = "token eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJvaWQiOiIxMjM0NTY3OCJ9.sig rejected"
    with pytest.raises(SecretInJournal, match="last_error looks like a JWT"):
        store.save(state)
    state.last_error = None
    state.step("install-goal").observed = {"pfx": "-----BEGIN EC " + "PRIVATE KEY-----\nMHcCAQEE..."}  # a fake fragment, split
    with pytest.raises(SecretInJournal, match=r"steps\[0\].observed.pfx looks like a PEM private key"):
        store.save(state)
    assert store.path.read_bytes() == before and list(state_dir.glob(".*.tmp")) == []


def test_second_acquirer_is_locked_and_told_who_holds_it(state_dir: Path, cluster_id: str) -> None:
    first, second = LocalStore(state_dir, cluster_id), LocalStore(state_dir, cluster_id)
    holder = LockHolder.current("apply plan.json")
    first.acquire(holder)
    assert stat.S_IMODE(first.lock_path.stat().st_mode) == 0o600
    assert first.lock_path.name == "0123abcd-rg-sf-sfcluster.lock"
    with pytest.raises(Locked) as info:
        second.acquire(LockHolder.current())
    message = str(info.value)
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in message and holder.started_at in message
    assert info.value.exit_code == ExitCode.LOCKED
    assert isinstance(info.value, JournalLocked) and info.value.holder == holder
    assert second.holder() == holder
    first.acquire(holder)  # re-entrant for the same run
    first.release()
    assert not first.lock_path.exists() and second.holder() is None
    second.acquire(LockHolder.current())


def test_stale_lock_of_a_killed_process_is_taken_over(state_dir: Path, cluster_id: str, spawn: Spawn) -> None:
    child = spawn("hold", str(state_dir), cluster_id)
    theirs = held_by(child)
    assert theirs.pid == child.pid
    store = LocalStore(state_dir, cluster_id)
    with pytest.raises(Locked, match=f"pid {child.pid} on host"):
        store.acquire(LockHolder.current())
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    assert not pid_alive(child.pid)
    mine = LockHolder.current()
    store.acquire(mine)
    assert store.took_over_from == theirs
    assert store.holder() == mine
    store.save(fresh(cluster_id))  # and the new owner can write


def test_only_one_of_many_racers_takes_over_a_stale_lock(state_dir: Path, cluster_id: str, spawn: Spawn) -> None:
    state_dir.mkdir()
    stale = LockHolder.current("apply (killed)")
    stale.pid = dead_pid()
    store = LocalStore(state_dir, cluster_id)
    store.lock_path.write_text(json.dumps(stale.to_dict()))
    start_at = str(time.time() + 2.0)  # give every child time to import before the start line
    racers = [spawn("race", str(state_dir), cluster_id, start_at) for _ in range(6)]
    results = sorted(read_line(racer, timeout=30) for racer in racers)
    assert results == ["LOCKED"] * 5 + ["WON"]


def test_lock_from_another_host_is_held_until_broken(state_dir: Path, cluster_id: str) -> None:
    state_dir.mkdir()
    remote = LockHolder.current("apply")
    remote.host, remote.pid = "build-agent-07", dead_pid()  # its pid means nothing here
    store = LocalStore(state_dir, cluster_id)
    store.lock_path.write_text(json.dumps(remote.to_dict()))
    with pytest.raises(Locked, match="on another host: pid .* on host build-agent-07.*unlock --force"):
        store.acquire(LockHolder.current())
    assert store.break_lock() == remote
    assert store.holder() is None
    store.acquire(LockHolder.current())


def test_breaking_the_lock_stops_the_holder_before_its_next_write(state_dir: Path, cluster_id: str) -> None:
    runner, operator, other = (LocalStore(state_dir, cluster_id) for _ in range(3))
    holder = LockHolder.current()
    runner.acquire(holder)
    runner.save(fresh(cluster_id))
    before = runner.path.read_bytes()
    assert operator.break_lock() == holder  # sfmigrate unlock --force
    state = runner.load()
    assert state is not None
    with pytest.raises(LeaseLost, match="was removed"):
        runner.save(state)
    with pytest.raises(LeaseLost):
        runner.ensure_held()  # the runner can ask before acting on Azure, too
    other.acquire(LockHolder.current("apply (second)"))
    with pytest.raises(LeaseLost, match="now held by another run"):
        runner.save(state)
    assert runner.path.read_bytes() == before
    runner.release()  # does not remove the new holder's lock
    assert other.holder() is not None and other.holder().command == "apply (second)"  # type: ignore[union-attr]


def test_an_empty_lock_file_is_a_lock_being_created_until_it_is_old(state_dir: Path, cluster_id: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import migrate.journal.local as local

    monkeypatch.setattr(local, "ACQUIRE_PATIENCE", 0.3)
    state_dir.mkdir()
    store = LocalStore(state_dir, cluster_id)
    store.lock_path.write_bytes(b"")
    with pytest.raises(Locked, match="being locked by another run"):
        store.acquire(LockHolder.current())
    os.utime(store.lock_path, (time.time() - 120, time.time() - 120))  # its creator died mid-write
    store.acquire(LockHolder.current())
    assert store.took_over_from is None and store.holder() is not None
