"""Threat: two runs on one cluster interleave their upgrades because the lock was the state folder's (a second
operator, or a pipeline retry, with another ``--state``), or because a live holder was judged dead (a container
sharing the host name, or a holder from before a reboot whose pid now belongs to something else).
Defence (issue 13, "Lock scope"; docs/security.md "Locks"): a local run also takes this machine's lock for the
cluster; a holder is judged dead only on the same host, boot and pid namespace; blob state locks across machines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from migrate import commands
from migrate.errors import Locked
from migrate.journal import LockHolder, open_store
from migrate.journal.local import LocalStore
from twinkit import fast_session, requests_json

CLUSTER = "/subscriptions/0123abcd-0000-4000-8000-000000000000/resourceGroups/rg-sf/providers/Microsoft.ServiceFabric/clusters/sfcluster"


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_second_run_with_another_state_folder_is_locked_out(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    env = {**os.environ, **twin.env}
    first = commands.prepare_apply(twin.plan_file, state_location=str(tmp_path / "state-a"), session=fast_session(twin))
    try:
        before = requests_json(twin)["mutating"]
        second = subprocess.run([sys.executable, "-m", "migrate", "apply", str(twin.plan_file), "--yes",
                                 "--state", str(tmp_path / "state-b")], env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 5, second.stderr
        assert f"pid {os.getpid()}" in second.stderr and "Traceback" not in second.stderr
        assert requests_json(twin)["mutating"] == before
    finally:
        first.release()
    assert open_store(str(tmp_path / "state-b"), first.spec.cluster.id).holder() is None  # released everywhere


def _holder_elsewhere(**changes: object) -> LockHolder:
    holder = LockHolder.current("apply (elsewhere)")
    holder.pid = _dead_pid()  # in its own namespace or boot this pid may well be alive: it proves nothing here
    for name, value in changes.items():
        setattr(holder, name, value)
    return holder


@pytest.mark.parametrize("where", ["container-sharing-hostname", "before-reboot", "unknown-boot"])
def test_live_lock_of_a_container_sharing_the_hostname_is_not_stolen(tmp_path: Path, where: str) -> None:
    changes = {
        "container-sharing-hostname": {"pid_namespace": "pid:[4026599999]"},
        "before-reboot": {"boot_id": "00000000-0000-0000-0000-000000000000"},
        "unknown-boot": {"boot_id": None, "pid_namespace": None},  # a lock written by an older sfmigrate
    }[where]
    other = _holder_elsewhere(**changes)
    store = LocalStore(tmp_path / "state", CLUSTER)
    store.directory.mkdir()
    store.lock_path.write_text(json.dumps(other.to_dict()))
    with pytest.raises(Locked, match="unlock --force"):
        store.acquire(LockHolder.current())
    assert store.holder() == other  # left in place
    assert store.break_lock() == other  # the operator's explicit decision
    store.acquire(LockHolder.current())


def test_dead_holder_of_this_host_boot_and_namespace_is_still_taken_over(tmp_path: Path) -> None:
    other = _holder_elsewhere()
    store = LocalStore(tmp_path / "state", CLUSTER)
    store.machine_lock_path.parent.mkdir(parents=True, exist_ok=True)
    store.machine_lock_path.write_text(json.dumps(other.to_dict()))
    mine = LockHolder.current()
    store.acquire(mine)
    assert store.took_over_from == other and store.holder() == mine


def test_unusable_machine_lock_folder_is_one_line_not_internal_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from migrate.errors import OperationalError

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("SFMIGRATE_LOCK_DIR", str(blocker / "locks"))
    store = LocalStore(tmp_path / "state", CLUSTER)
    with pytest.raises(OperationalError, match="cannot create the lock .*SFMIGRATE_LOCK_DIR"):
        store.acquire(LockHolder.current())
    assert store.holder() is None  # nothing half-taken
