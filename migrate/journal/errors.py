"""Journal failures, placed in the project's one exception tree (migrate/errors.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import Locked, OperationalError

if TYPE_CHECKING:
    from .model import LockHolder


class JournalLocked(Locked):
    """Another live run holds the cluster's lock (exit 5); ``holder`` says who, when it is known."""

    def __init__(self, message: str, holder: LockHolder | None = None) -> None:
        super().__init__(message)
        self.holder = holder


class LeaseLost(OperationalError):
    """This run no longer holds the lock; it stops before its next write (issue 6)."""


class JournalConflict(OperationalError):
    """The journal changed since this run last read or wrote it (the ETag / version fence failed)."""


class JournalUnreadable(OperationalError):
    """The journal exists but cannot be read (not JSON, or an unsupported major format version)."""


class SecretInJournal(OperationalError):
    """A value about to be journalled looks like a token or private key; nothing was written."""
