"""One exception tree for the library; the CLI maps each class to a documented exit code.

    SfmigrateError
     ├── UsageError            64  bad arguments, plan file or scenario file
     ├── OperationalError       1  authentication, network, missing resource, a step that cannot finish
     │    ├── StepFailed        1  a step failed after its retries (the run is resumable)
     │    └── AuthenticationFailed 1  no credential got a token (one reason per credential, and a hint)
     ├── Declined               1  apply's confirmation was not answered `yes`; nothing was changed
     ├── Blocked                3  preflight found an error; nothing was written
     ├── StoppedAtRequest       4  --until / --postpone-cutover reached (resumable)
     ├── Locked                 5  another run holds the cluster's lock
     └── Interrupted          130  Ctrl-C, after the journal was saved
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    CHANGES_PENDING = 2  # plan: changes pending, none blocking
    BLOCKED = 3
    STOPPED = 4
    LOCKED = 5
    USAGE = 64
    INTERRUPTED = 130


class SfmigrateError(Exception):
    exit_code: ClassVar[ExitCode] = ExitCode.FAILED


class UsageError(SfmigrateError):
    """Bad input: the message is one line naming the field or argument."""

    exit_code = ExitCode.USAGE


class OperationalError(SfmigrateError):
    """Azure (or the twin) could not be reached or refused; safe to run again."""

    exit_code = ExitCode.FAILED


RESUMABLE = "resumable: run `sfmigrate apply` again"


class StepFailed(OperationalError):
    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"step '{step}' failed: {message}")
        self.step = step
        self.reason = message

    def detail_lines(self) -> list[str]:
        """What the CLI prints under the one-line error: the run is resumable (issue 14)."""
        return [RESUMABLE]


class AuthenticationFailed(OperationalError):
    """Every credential failed to get a token: one line naming the chain, then one reason per credential and a
    hint (the CLI prints :meth:`detail_lines`; logs and ##vso lines take the one-line ``str``)."""

    def __init__(self, summary: str, reasons: list[str], hint: str) -> None:
        super().__init__(f"authentication failed: {summary}" + "".join(f"; {reason}" for reason in reasons))
        self.summary = summary
        self.reasons = reasons
        self.hint = hint

    def headline(self) -> str:
        return f"authentication failed: {self.summary}"

    def detail_lines(self) -> list[str]:
        return [f"  {reason}" for reason in self.reasons] + [f"hint: {self.hint}"]


class Declined(SfmigrateError):
    """The confirmation prompt was answered with anything but ``yes`` (terraform's rule); exit 1, not 130."""

    exit_code = ExitCode.FAILED


class Blocked(SfmigrateError):
    exit_code = ExitCode.BLOCKED


class StoppedAtRequest(SfmigrateError):
    exit_code = ExitCode.STOPPED


class Locked(SfmigrateError):
    exit_code = ExitCode.LOCKED


class Interrupted(SfmigrateError):
    exit_code = ExitCode.INTERRUPTED


class NotFound(OperationalError):
    """Azure answered 404 for a resource the migration needs. ``reason``: Azure's own error text alone, for
    messages that already say "was not found" about ``resource_id`` (no "not found: not found")."""

    def __init__(self, resource_id: str, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.resource_id = resource_id
        self.reason = reason if reason is not None else message


class PermissionDenied(OperationalError):
    """Azure answered 403: the caller lacks a role or an access policy (``reason``: as for NotFound)."""

    def __init__(self, resource_id: str, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.resource_id = resource_id
        self.reason = reason if reason is not None else message


class AzureRequestFailed(OperationalError):
    """Any other refusal from Azure, with its status and error code."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after  # seconds Azure asked us to wait (throttling)


class StalePlan(OperationalError):
    """A saved plan whose observed resources changed since it was made (terraform's stale-plan refusal)."""
