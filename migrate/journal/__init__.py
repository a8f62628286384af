"""Checkpoint stores and run locks: a local file (default) and Azure Blob (lease lock + ETag fencing).

The runner calls ``open_store(location, cluster_id)`` and then only the JournalStore protocol (base.py).
Format and protocols: docs/state.md.
"""

from __future__ import annotations

from .base import CONNECTION_STRING_VARS, DEFAULT_DIR, JournalStore, cluster_key, open_store
from .errors import JournalConflict, JournalLocked, JournalUnreadable, LeaseLost, SecretInJournal
from .model import FORMAT_VERSION, JournalState, LockHolder, StepRecord, now_iso, pipeline_run_url

__all__ = [
    "CONNECTION_STRING_VARS", "DEFAULT_DIR", "FORMAT_VERSION", "JournalConflict", "JournalLocked", "JournalState",
    "JournalStore", "JournalUnreadable", "LeaseLost", "LockHolder", "SecretInJournal", "StepRecord",
    "cluster_key", "now_iso", "open_store", "pipeline_run_url",
]
