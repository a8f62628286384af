"""The blob journal against Azurite on loopback: ETag fencing, the 60 s lease lock, break and loss."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from typing import Callable

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.storage.blob import BlobServiceClient

from azurite import ACCOUNT, ACCOUNT_KEY, RunningAzurite
from journalkit import held_by
from migrate.errors import ExitCode, Locked
from migrate.journal import JournalConflict, JournalLocked, JournalState, LeaseLost, LockHolder, open_store
from migrate.journal.blob import BlobStore

pytestmark = pytest.mark.azurite
MakeStore = Callable[..., BlobStore]
Spawn = Callable[..., subprocess.Popen[str]]


def fresh(cluster_id: str) -> JournalState:
    return JournalState.new(cluster_id, "plan1", "spec1", ["install-goal", "convert-cluster"], run_id="r1")


def raw_container(azurite: RunningAzurite, name: str):  # type: ignore[no-untyped-def]
    return BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(name)


def test_layout_round_trip_and_first_write_if_missing(blob_store: MakeStore, azurite: RunningAzurite,
                                                      container_name: str, cluster_id: str) -> None:
    first, second = blob_store(), blob_store()
    assert first.load() is None and second.load() is None  # container does not even exist yet
    first.save(fresh(cluster_id))
    with pytest.raises(JournalConflict, match="changed by another writer"):  # If-None-Match: *
        second.save(fresh(cluster_id))
    container = raw_container(azurite, container_name)
    names = sorted(b.name for b in container.list_blobs())
    assert names == ["journals/0123abcd-rg-sf-sfcluster.journal.json"]
    props = container.get_blob_client(names[0]).get_blob_properties()
    assert props.content_settings.content_type == "application/json"
    loaded = second.load()
    assert loaded is not None and loaded.plan_hash == "plan1" and loaded.step("install-goal").status == "pending"
    loaded.step("install-goal").status = "done"
    second.save(loaded)
    again = blob_store().load()
    assert again is not None and again.step("install-goal").status == "done"


def test_foreign_write_between_load_and_save_is_a_conflict_and_loses_nothing(
        blob_store: MakeStore, cluster_id: str) -> None:
    runner, intruder = blob_store(), blob_store()
    runner.save(fresh(cluster_id))
    state = runner.load()
    theirs = intruder.load()
    assert state is not None and theirs is not None
    theirs.status = "stopped"
    theirs.add_event("abort", detail="operator")
    intruder.save(theirs)
    state.step("install-goal").status = "running"
    with pytest.raises(JournalConflict, match="changed by another writer") as info:
        runner.save(state)
    assert info.value.exit_code == ExitCode.FAILED
    kept = blob_store().load()
    assert kept is not None and kept.status == "stopped" and kept.events[-1]["type"] == "abort"
    reread = runner.load()  # after re-reading, the runner may write again
    assert reread is not None
    reread.status = "running"
    runner.save(reread)


def test_two_concurrent_acquirers_one_wins_the_other_is_told_who(blob_store: MakeStore, azurite: RunningAzurite,
                                                                 container_name: str) -> None:
    stores = [blob_store(), blob_store()]
    holders = [LockHolder.current("apply #1"), LockHolder.current("apply #2")]
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def contend(i: int) -> None:
        barrier.wait()
        try:
            stores[i].acquire(holders[i])
            outcomes[i] = "won"
        except Locked as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=contend, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(o == "won" for o in outcomes) == [False, True]
    winner = outcomes.index("won")
    loser_error = outcomes[1 - winner]
    assert isinstance(loser_error, JournalLocked) and loser_error.exit_code == ExitCode.LOCKED
    held = holders[winner]
    message = str(loser_error)
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in message and held.started_at in message
    assert f"running '{held.command}'" in message and "unlock --force" in message
    assert loser_error.holder is not None and loser_error.holder.run_id == held.run_id
    assert stores[1 - winner].holder() == held  # status can show it too
    # the lock blob: an empty blob, leased, whose metadata names the holder
    lock = raw_container(azurite, container_name).get_blob_client("journals/0123abcd-rg-sf-sfcluster.lock")
    props = lock.get_blob_properties()
    assert props.size == 0 and props.lease.state == "leased" and props.lease.duration == "fixed"
    assert props.metadata["run_id"] == held.run_id and props.metadata["pid"] == str(held.pid)
    assert props.metadata["host"] == held.host and props.metadata["started_at"] == held.started_at
    stores[winner].release()
    assert stores[1 - winner].holder() is None
    stores[1 - winner].acquire(holders[1 - winner])


def test_holder_metadata_names_the_pipeline_run(blob_store: MakeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSTEM_COLLECTIONURI", "https://dev.azure.com/contoso/")
    monkeypatch.setenv("SYSTEM_TEAMPROJECT", "SF Ops")
    monkeypatch.setenv("BUILD_BUILDID", "77")
    holder = LockHolder.current("apply")
    holder.user = "José"  # metadata is ASCII-only on the wire: encoded, and decoded back
    blob_store().acquire(holder)
    seen = blob_store().holder()
    assert seen == holder
    assert seen is not None and "pipeline run https://dev.azure.com/contoso/SF%20Ops/_build/results?buildId=77" in seen.describe()


def test_break_lock_shows_the_holder_and_frees_the_cluster(blob_store: MakeStore) -> None:
    runner, operator = blob_store(), blob_store()
    assert operator.break_lock() is None  # nothing to break
    holder = LockHolder.current("apply")
    runner.acquire(holder)
    assert operator.break_lock() == holder
    assert operator.holder() is None
    operator.acquire(LockHolder.current("apply (after unlock --force)"))


def test_lost_lease_stops_the_run_before_its_next_write(blob_store: MakeStore, cluster_id: str) -> None:
    runner = blob_store(renew_every=0.3)
    runner.acquire(LockHolder.current())
    runner.save(fresh(cluster_id))
    state = runner.load()
    assert state is not None
    journal_before = blob_store().load()
    blob_store().break_lock()  # unlock --force from elsewhere
    deadline = time.monotonic() + 10
    while runner.lease_lost is None and time.monotonic() < deadline:  # the renewer notices on its own
        time.sleep(0.1)
    assert runner.lease_lost is not None and "lease" in runner.lease_lost
    state.status = "running"
    with pytest.raises(LeaseLost, match="stopped before writing"):
        runner.save(state)
    assert blob_store().load() == journal_before  # nothing was written


def test_a_lease_broken_between_renewals_is_caught_by_save_itself(blob_store: MakeStore, cluster_id: str) -> None:
    runner = blob_store()  # renews every 15 s: the break lands between two renewals
    runner.acquire(LockHolder.current())
    runner.save(fresh(cluster_id))
    state = runner.load()
    assert state is not None
    other = blob_store()
    other.break_lock()
    other.acquire(LockHolder.current("apply (new owner)"))
    with pytest.raises(LeaseLost):
        runner.save(state)
    runner.release()  # must not release the new owner's lease
    assert other.holder() is not None and other.holder().command == "apply (new owner)"  # type: ignore[union-attr]


def test_url_location_with_a_credential(azurite: RunningAzurite, container_name: str, cluster_id: str) -> None:
    url = f"{azurite.blob_endpoint}/{container_name}/team-a"
    store = open_store(url, cluster_id, credential=AzureNamedKeyCredential(ACCOUNT, ACCOUNT_KEY))
    assert isinstance(store, BlobStore)
    assert store.location == f"{url}/0123abcd-rg-sf-sfcluster.journal.json"
    store.acquire(LockHolder.current())
    try:
        store.save(fresh(cluster_id))
        assert store.load() is not None
    finally:
        store.release()


def test_connection_string_location_from_the_environment(azurite: RunningAzurite, container_name: str,
                                                         cluster_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFMIGRATE_STATE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true")  # the first one wins
    store = open_store(f"blob:{container_name}/p", cluster_id)
    assert isinstance(store, BlobStore) and str(azurite.port) in store.location and "AccountKey" not in store.location
    store.save(fresh(cluster_id))


@pytest.mark.slow
def test_lease_lapses_within_a_minute_after_kill_9(azurite: RunningAzurite, container_name: str, cluster_id: str,
                                                   blob_store: MakeStore, spawn: Spawn) -> None:
    child = spawn("hold", f"blob:{container_name}/journals", cluster_id,
                  env={"SFMIGRATE_STATE_CONNECTION_STRING": azurite.connection_string})
    theirs = held_by(child)
    store = blob_store()
    with pytest.raises(Locked, match=f"pid {child.pid} on host"):
        store.acquire(LockHolder.current())
    killed_at = time.monotonic()
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    assert store.holder() == theirs  # still leased right after the kill: nobody released it
    refused = 0
    while True:
        try:
            store.acquire(LockHolder.current("apply (resumed)"))
            break
        except Locked as exc:
            assert f"pid {child.pid} on host" in str(exc)  # refused for the dead holder's lease, not another
            refused += 1
            # A hang guard, not a speed claim: the lease is 60 s, so it has lapsed well before 120 s.
            assert time.monotonic() - killed_at < 120, "the dead holder's lease did not lapse"
            time.sleep(2)
    assert refused > 0  # it lapsed by itself: taking the lock was refused after the kill, then succeeded
    assert json.loads(json.dumps(store.holder().to_dict()))["command"] == "apply (resumed)"  # type: ignore[union-attr]


def test_unreachable_storage_stops_the_run_once_the_lease_may_have_lapsed(
        blob_store: MakeStore, cluster_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.core.exceptions import ServiceRequestError

    runner = blob_store()
    runner.acquire(LockHolder.current())
    runner.save(fresh(cluster_id))
    state = runner.load()
    assert state is not None

    def unreachable(**kwargs: object) -> None:
        raise ServiceRequestError("connection refused")

    assert runner._lease is not None
    monkeypatch.setattr(runner._lease, "renew", unreachable)
    runner.save(state)  # renewed moments ago: the lease is certainly still ours, the write goes ahead
    runner._renewed_at = time.monotonic() - 56  # no confirmed renewal for longer than a lease can be trusted
    state.status = "running"
    with pytest.raises(LeaseLost, match="could not be renewed"):
        runner.save(state)
    reloaded = blob_store().load()
    assert reloaded is not None and reloaded.status == "pending"
