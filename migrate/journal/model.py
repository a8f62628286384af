"""The journal's plain data: per-step records, the run's state, and who holds the lock.

The JSON form is versioned by ``format_version`` (peers.md §1.2, terraform's promise): minor versions only
add fields; readers ignore fields they do not know but keep them, so an older sfmigrate rewriting a journal
does not drop what a newer one wrote; a newer *major* version is refused.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import socket
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final, Literal, Mapping, get_args
from urllib.parse import quote

from ..plan import Step
from .errors import JournalUnreadable

# 1.1: every step record carries its step in the one JSON form (``step``: migrate.plan.Step.to_dict);
# 1.0 kept only an optional step's definition (``definition``), which is still read.
FORMAT_VERSION = "1.1"
MAX_EVENTS = 200  # bounded history: the journal is rewritten at every transition, keep it small

StepStatus = Literal["pending", "running", "done", "failed"]
RunStatus = Literal["pending", "running", "complete", "failed", "stopped", "interrupted"]
PENDING: Final = "pending"
RUNNING: Final = "running"
DONE: Final = "done"
FAILED: Final = "failed"
STEP_STATUSES: tuple[StepStatus, ...] = get_args(StepStatus)
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)


def now_iso() -> str:
    """UTC, second precision, ``Z`` suffix: sortable and unambiguous across hosts."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _known(cls: type, data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    names = {f.name for f in fields(cls) if f.name != "extra"}
    known = {k: v for k, v in data.items() if k in names}
    extra = {k: v for k, v in data.items() if k not in names}
    return known, extra


def _newer(read: str, ours: str) -> str:
    """The version to write: ours, unless the journal came from a newer minor version (its fields are kept)."""
    def key(version: str) -> tuple[int, ...]:
        try:
            return tuple(int(part) for part in version.split("."))
        except ValueError:
            return (0,)
    return read if key(read) > key(ours) else ours


def _check_types(known: dict[str, Any], types: Mapping[str, tuple[type, ...]], where: str) -> None:
    """A journal is input anyone who can write the store can edit: a field of the wrong JSON type is refused
    here, naming it, rather than failing later as an internal error (issue 13, "Bad input")."""
    for name, allowed in types.items():
        value = known.get(name)
        if name in known and not (isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)):
            kinds = " or ".join("null" if t is type(None) else {"str": "a string", "int": "an integer",
                                "dict": "an object", "list": "a list"}.get(t.__name__, t.__name__) for t in allowed)
            raise JournalUnreadable(f"{where}{name}: expected {kinds}, found {type(value).__name__}")


_OPTIONAL_TEXT = (str, type(None))
_RECORD_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "attempts": (int,), "started_at": _OPTIONAL_TEXT, "finished_at": _OPTIONAL_TEXT,
    "observed": (dict, type(None)), "operation_url": _OPTIONAL_TEXT, "last_error": _OPTIONAL_TEXT,
}
_STATE_TYPES: dict[str, tuple[type, ...]] = {
    "cluster_id": (str,), "plan_hash": (str,), "spec_fingerprint": (str,), "created_at": (str,), "updated_at": (str,),
    "steps": (list, type(None)), "last_error": _OPTIONAL_TEXT, "events": (list, type(None)), "run_id": _OPTIONAL_TEXT,
    "cluster_upgrade_ended_at": _OPTIONAL_TEXT,
}


def _status(value: Any, allowed: tuple[str, ...], where: str) -> Any:
    if value not in allowed:
        raise JournalUnreadable(f"{where}: unknown status {value!r} (one of {', '.join(allowed)})")
    return value


@dataclass
class StepRecord:
    name: str
    status: StepStatus = PENDING
    attempts: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    observed: dict[str, Any] = field(default_factory=dict)  # JSON facts seen after the step; never secrets
    operation_url: str | None = None  # in-flight LRO a resumed run re-attaches to instead of re-sending
    last_error: str | None = None
    step: Step | None = None  # what the step does (its one JSON form); read back validated
    extra: dict[str, Any] = field(default_factory=dict, repr=False)  # fields from a newer minor version

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.extra)
        data.update(
            name=self.name, status=self.status, attempts=self.attempts, started_at=self.started_at,
            finished_at=self.finished_at, observed=self.observed, operation_url=self.operation_url,
            last_error=self.last_error, step=self.step.to_dict() if self.step else None,
        )
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "steps[?]") -> StepRecord:
        """A record read back; its step is validated (an unknown kind or malformed params is a UsageError
        naming the field: a journal is input anyone with write access to the store can edit)."""
        if not isinstance(data, Mapping):
            raise JournalUnreadable(f"{where}: not a JSON object")
        known, extra = _known(cls, data)
        if not isinstance(known.get("name"), str):
            raise JournalUnreadable(f"{where}: a step record has no name")
        _check_types(known, _RECORD_TYPES, f"{where}.")
        known["status"] = _status(known.get("status", PENDING), STEP_STATUSES, f"{where}.status")
        raw_step = known.pop("step", None)
        legacy = extra.pop("definition", None)  # format 1.0: an optional step's definition, without name
        if raw_step is None and isinstance(legacy, Mapping):
            raw_step = {**legacy, "name": known["name"]}
        record = cls(**known)
        record.extra = extra
        record.observed = dict(record.observed or {})
        if raw_step is not None:
            record.step = Step.from_dict(raw_step, f"{where}.step")
        return record


@dataclass
class JournalState:
    format_version: str
    cluster_id: str
    plan_hash: str
    spec_fingerprint: str
    created_at: str
    updated_at: str
    status: RunStatus = "pending"
    steps: list[StepRecord] = field(default_factory=list)  # plan order
    last_error: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)  # bounded: time, type, step, detail
    run_id: str | None = None
    # when the last cluster upgrade a run made reported Succeeded (Azure's clock, ISO): the next certificate change
    # or roll-out waits out the settle window after it, in this run or the next one (runner.SETTLE_BEFORE)
    cluster_upgrade_ended_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def new(cls, cluster_id: str, plan_hash: str, spec_fingerprint: str, step_names: list[str],
            *, run_id: str | None = None) -> JournalState:
        stamp = now_iso()
        return cls(
            format_version=FORMAT_VERSION, cluster_id=cluster_id, plan_hash=plan_hash,
            spec_fingerprint=spec_fingerprint, created_at=stamp, updated_at=stamp,
            steps=[StepRecord(name) for name in step_names], run_id=run_id,
        )

    def step(self, name: str) -> StepRecord:
        for record in self.steps:
            if record.name == name:
                return record
        raise KeyError(name)

    def add_event(self, type: str, step: str | None = None, detail: Any = None) -> dict[str, Any]:
        event = {"time": now_iso(), "type": type, "step": step, "detail": detail}
        self.events.append(event)
        del self.events[:-MAX_EVENTS]
        return event

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.extra)
        data.update(
            format_version=_newer(self.format_version, FORMAT_VERSION), cluster_id=self.cluster_id, plan_hash=self.plan_hash,
            spec_fingerprint=self.spec_fingerprint, created_at=self.created_at, updated_at=self.updated_at,
            status=self.status, run_id=self.run_id, last_error=self.last_error,
            cluster_upgrade_ended_at=self.cluster_upgrade_ended_at,
            steps=[s.to_dict() for s in self.steps], events=list(self.events),
        )
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JournalState:
        if not isinstance(data, Mapping):
            raise JournalUnreadable("the journal is not a JSON object")
        version = str(data.get("format_version", ""))
        major = version.split(".", 1)[0]
        if major != FORMAT_VERSION.split(".", 1)[0]:
            # peers.md §1.2: reject an unsupported major version instead of guessing
            raise JournalUnreadable(
                f"journal format {version or '(missing)'} is not supported (this sfmigrate reads "
                f"{FORMAT_VERSION.split('.')[0]}.x); use the sfmigrate version that wrote it"
            )
        known, extra = _known(cls, data)
        missing = [n for n in ("cluster_id", "plan_hash", "spec_fingerprint", "created_at", "updated_at")
                   if n not in known]
        if missing:
            raise JournalUnreadable(f"journal lacks {', '.join(missing)}")
        _check_types(known, _STATE_TYPES, "")
        known["status"] = _status(known.get("status", "pending"), RUN_STATUSES, "status")
        known["steps"] = [StepRecord.from_dict(s, f"steps[{i}]") for i, s in enumerate(known.get("steps") or [])]
        names = [record.name for record in known["steps"]]
        if len(set(names)) != len(names):
            raise JournalUnreadable("steps: a step name appears twice")
        # events are history for display: keep the well-formed ones (time, type, step, detail)
        known["events"] = [e for e in known.get("events") or [] if isinstance(e, dict) and isinstance(e.get("type"), str)
                           and isinstance(e.get("time", ""), str) and isinstance(e.get("step"), (str, type(None)))]
        state = cls(**known)
        state.extra = extra
        return state


def pipeline_run_url(env: Mapping[str, str] | None = None) -> str | None:
    """The Azure DevOps run that holds the lock, from the agent's predefined variables (peers.md §4)."""
    env = os.environ if env is None else env
    collection, project, build = (env.get(k) for k in ("SYSTEM_COLLECTIONURI", "SYSTEM_TEAMPROJECT", "BUILD_BUILDID"))
    if not (collection and project and build):
        return None
    return f"{collection.rstrip('/')}/{quote(project)}/_build/results?buildId={quote(build)}"


def boot_id() -> str | None:
    """This kernel's boot id (Linux), or None: a pid means something only within one boot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def pid_namespace() -> str | None:
    """This process's pid namespace (Linux: ``pid:[inode]``), or None: containers sharing a hostname and a
    kernel still have pid namespaces of their own, where another container's pid means nothing."""
    try:
        return os.readlink("/proc/self/ns/pid") or None
    except OSError:
        return None


@dataclass
class LockHolder:
    run_id: str
    user: str
    host: str
    pid: int
    started_at: str
    pipeline_url: str | None = None
    command: str = ""
    boot_id: str | None = None  # with host and pid_namespace: where ``pid`` can be checked (lockfile.py)
    pid_namespace: str | None = None

    @classmethod
    def current(cls, command: str = "apply", *, run_id: str | None = None) -> LockHolder:
        """This process, as a lock holder (the run id doubles as the blob lease id, so it is a UUID)."""
        try:
            user = getpass.getuser()
        except Exception:  # no passwd entry (containers): the name is only for messages
            user = "unknown"
        return cls(
            run_id=run_id or str(uuid.uuid4()), user=user, host=socket.gethostname(), pid=os.getpid(),
            started_at=now_iso(), pipeline_url=pipeline_run_url(), command=command,
            boot_id=boot_id(), pid_namespace=pid_namespace(),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "user": self.user, "host": self.host, "pid": self.pid,
            "started_at": self.started_at, "pipeline_url": self.pipeline_url, "command": self.command,
            "boot_id": self.boot_id, "pid_namespace": self.pid_namespace,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LockHolder:
        known, _ = _known(cls, data)
        try:
            known["pid"] = int(known.get("pid", 0))
        except (TypeError, ValueError):
            known["pid"] = 0
        for name in ("run_id", "user", "host", "started_at"):
            known[name] = str(known.get(name) or "unknown")
        for name in ("pipeline_url", "boot_id", "pid_namespace"):  # a lock file is input: strings or nothing
            known[name] = str(known[name]) if isinstance(known.get(name), str) else None
        known["command"] = str(known.get("command") or "")
        return cls(**known)

    def describe(self) -> str:
        text = f"pid {self.pid} on host {self.host} (user {self.user}) since {self.started_at}"
        if self.command:
            text += f", running '{self.command}'"
        if self.pipeline_url:
            text += f", pipeline run {self.pipeline_url}"
        return text
