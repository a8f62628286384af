"""The journal's data model, its secret guard, cluster keys and the choice of store."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.core.credentials import AzureNamedKeyCredential

from migrate.errors import UsageError
from migrate.journal import (
    FORMAT_VERSION, JournalState, JournalStore, JournalUnreadable, LockHolder, SecretInJournal, StepRecord, cluster_key,
    open_store, pipeline_run_url,
)
from migrate.journal.base import decode_state, encode_state
from migrate.journal.blob import BlobStore
from migrate.journal.guard import find_secret
from migrate.journal.local import LocalStore
from migrate.journal.model import MAX_EVENTS

CLUSTER = "/subscriptions/0123abcd-0000-4000-8000-000000000000/resourceGroups/RG-SF/providers/Microsoft.ServiceFabric/clusters/sfcluster"
JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwczovL21hbmFnZW1lbnQuYXp1cmUuY29tIn0.c2lnbmF0dXJl"
KEY = AzureNamedKeyCredential("acct", "a2V5")
PEM_KEY = "-----BEGIN " + "PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END " + "PRIVATE KEY-----"  # a fake fragment


def new_state() -> JournalState:
    return JournalState.new(CLUSTER, "abc123", "fp", ["install-goal", "convert-cluster"], run_id="r1")


def test_round_trip_keeps_unknown_fields_from_a_newer_minor_version() -> None:
    data = new_state().to_dict()
    data["format_version"] = "1.7"
    data["future_field"] = {"x": 1}
    data["steps"][0]["future_step_field"] = [1, 2]
    state = JournalState.from_dict(data)
    assert state.step("install-goal").extra == {"future_step_field": [1, 2]}
    again = state.to_dict()
    assert again["future_field"] == {"x": 1} and again["steps"][0]["future_step_field"] == [1, 2]
    assert [s.name for s in state.steps] == ["install-goal", "convert-cluster"]


def test_a_newer_major_version_is_refused() -> None:
    data = new_state().to_dict()
    data["format_version"] = "2.0"
    with pytest.raises(JournalUnreadable, match="format 2.0 is not supported"):
        JournalState.from_dict(data)


def test_a_newer_minor_version_is_not_stamped_down_and_an_older_one_is_stamped_up() -> None:
    data = new_state().to_dict()
    data["format_version"] = "1.7"
    assert JournalState.from_dict(data).to_dict()["format_version"] == "1.7"
    data["format_version"] = "1.0"
    assert JournalState.from_dict(data).to_dict()["format_version"] == FORMAT_VERSION


def test_unknown_status_words_are_refused_naming_the_field() -> None:
    data = new_state().to_dict()
    data["steps"][1]["status"] = "skipped"
    with pytest.raises(JournalUnreadable, match=r"steps\[1\].status: unknown status 'skipped'"):
        JournalState.from_dict(data)
    data = new_state().to_dict()
    data["status"] = "paused"
    with pytest.raises(JournalUnreadable, match="status: unknown status 'paused'"):
        JournalState.from_dict(data)


def test_a_step_that_does_not_read_back_is_a_usage_error_naming_the_journal_and_field() -> None:
    data = new_state().to_dict()
    data["steps"][0]["step"] = {"name": "install-goal", "kind": "format_disk", "params": {}}
    import json

    with pytest.raises(UsageError, match=r"journal file:x: steps\[0\].step.kind: unknown step kind 'format_disk'"):
        decode_state(json.dumps(data).encode(), "file:x", CLUSTER)


def test_decode_rejects_garbage_and_someone_elses_journal() -> None:
    with pytest.raises(JournalUnreadable, match="not valid JSON"):
        decode_state(b"{not json", "file:x", CLUSTER)
    raw = encode_state(new_state())
    assert decode_state(raw, "file:x", CLUSTER.lower()).cluster_id == CLUSTER  # ARM ids are case-insensitive
    with pytest.raises(JournalUnreadable, match="belongs to cluster"):
        decode_state(raw, "file:x", CLUSTER.replace("sfcluster", "other"))


def test_step_lookup_events_are_bounded_and_format_version_is_current() -> None:
    state = new_state()
    assert state.format_version == FORMAT_VERSION and state.status == "pending"
    assert isinstance(state.step("convert-cluster"), StepRecord)
    with pytest.raises(KeyError):
        state.step("nope")
    for i in range(MAX_EVENTS + 25):
        state.add_event("progress", "install-goal", {"i": i})
    assert len(state.events) == MAX_EVENTS and state.events[-1]["detail"] == {"i": MAX_EVENTS + 24}
    assert set(state.events[0]) == {"time", "type", "step", "detail"}


@pytest.mark.parametrize(("value", "kind"), [
    (JWT, "JWT"),
    (f"Authorization: Bearer {'A' * 40}", "bearer"),
    (PEM_KEY, "private key"),
    ("-----BEGIN RSA " + "PRIVATE KEY-----", "private key"),
    ("-----BEGIN ENCRYPTED " + "PRIVATE KEY-----", "private key"),
    ("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=" + "k" * 40 + "==", "account key"),
    ("https://a.blob.core.windows.net/c/b?sv=2021&sig=" + "x" * 30, "SAS"),
])
def test_secret_guard_spots_tokens_and_keys(value: str, kind: str) -> None:
    state = new_state()
    state.step("install-goal").observed = {"nested": [{"value": value}]}
    with pytest.raises(SecretInJournal, match=kind) as info:
        encode_state(state)
    assert "steps[0].observed.nested[0].value" in str(info.value)
    assert value not in str(info.value)  # the message never repeats the secret


def test_secret_guard_allows_public_material() -> None:
    state = new_state()
    record = state.step("install-goal")
    record.observed = {
        "certificate": "-----BEGIN CERTIFICATE-----\nMIIC...\n-----END CERTIFICATE-----",
        "thumbprint": "A" * 40,
        "secret_url": "https://kv.vault.azure.net/secrets/cluster-cert",
    }
    # ARM async-operation URLs carry signed c=/s=/h= parameters; the runner must be able to journal them
    record.operation_url = ("https://management.azure.com/subscriptions/x/providers/Microsoft.ServiceFabric/locations/"
                            "westeurope/operations/1?api-version=2021-06-01&t=638&c=MIIHhzCCBm+gAwIBAgITfAAAAA&s=abc-_&h=xyz")
    state.last_error = "ResourceNotFound: the vault kv was not found"
    assert find_secret(state.to_dict()) is None
    encode_state(state)


def test_cluster_keys_are_readable_sanitised_and_distinct() -> None:
    assert cluster_key(CLUSTER) == "0123abcd-rg-sf-sfcluster"
    assert cluster_key(CLUSTER.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/")) == "0123abcd-rg-sf-sfcluster"
    odd = cluster_key(CLUSTER.replace("RG-SF", "rg(1)"))
    assert odd.startswith("0123abcd-rg_1-sfcluster-") and "/" not in odd
    assert odd != cluster_key(CLUSTER.replace("RG-SF", "rg_1"))
    assert cluster_key("../../etc/passwd").count("/") == 0


def test_lock_holder_describes_itself_and_names_the_pipeline_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSTEM_COLLECTIONURI", "https://dev.azure.com/contoso/")
    monkeypatch.setenv("SYSTEM_TEAMPROJECT", "SF Ops")
    monkeypatch.setenv("BUILD_BUILDID", "4242")
    holder = LockHolder.current("apply plan.json")
    assert holder.pipeline_url == "https://dev.azure.com/contoso/SF%20Ops/_build/results?buildId=4242"
    text = holder.describe()
    assert f"pid {holder.pid} on host {holder.host} (user {holder.user}) since {holder.started_at}" in text
    assert LockHolder.from_dict(holder.to_dict()) == holder
    assert pipeline_run_url({}) is None


def test_open_store_picks_the_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    default = open_store(None, CLUSTER)
    assert isinstance(default, LocalStore) and default.directory == Path(".sfmigrate")
    assert default.location.endswith(".sfmigrate/0123abcd-rg-sf-sfcluster.journal.json")
    assert isinstance(open_store(f"file:{tmp_path}/s", CLUSTER), LocalStore)
    assert isinstance(open_store(str(tmp_path / "s"), CLUSTER), LocalStore)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UsageError, match="expected a directory"):
        open_store(str(tmp_path / "afile"), CLUSTER)
    for var in ("SFMIGRATE_STATE_CONNECTION_STRING", "AZURE_STORAGE_CONNECTION_STRING"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(UsageError, match="SFMIGRATE_STATE_CONNECTION_STRING or AZURE_STORAGE_CONNECTION_STRING"):
        open_store("blob:journals/prod", CLUSTER)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true")
    store = open_store("blob:journals/prod", CLUSTER)
    assert isinstance(store, BlobStore)
    assert store.location == "http://127.0.0.1:10000/devstoreaccount1/journals/prod/0123abcd-rg-sf-sfcluster.journal.json"
    url_store = open_store("https://acct.blob.core.windows.net/journals/team/a", CLUSTER, credential=KEY)
    assert isinstance(url_store, BlobStore)
    assert all(isinstance(s, JournalStore) for s in (default, store, url_store))  # the runner's protocol
    assert url_store.location == "https://acct.blob.core.windows.net/journals/team/a/0123abcd-rg-sf-sfcluster.journal.json"
    assert url_store.lock_location.endswith("/journals/team/a/0123abcd-rg-sf-sfcluster.lock")
    with pytest.raises(UsageError, match="name a container"):
        open_store("https://acct.blob.core.windows.net/", CLUSTER, credential=KEY)
    with pytest.raises(UsageError, match="SAS"):
        open_store("https://acct.blob.core.windows.net/c?sig=abc", CLUSTER, credential=KEY)
