"""A separate process that takes a journal lock (or crashes mid-write) for the journal tests.

    python _holder.py hold LOCATION CLUSTER            acquire, print the holder JSON, sleep until killed
    python _holder.py race LOCATION CLUSTER START_AT   at time START_AT, acquire; print WON or LOCKED
    python _holder.py crash-save LOCATION CLUSTER      load, then SIGKILL itself inside save() at the rename

LOCATION is what ``--state`` takes (a directory, or ``blob:CONTAINER/PREFIX`` with the connection string in
SFMIGRATE_STATE_CONNECTION_STRING).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from migrate.journal import JournalLocked, LockHolder, open_store


def main(mode: str, location: str, cluster: str, *rest: str) -> int:
    store = open_store(location, cluster)
    if mode == "hold":
        holder = LockHolder.current("apply (test holder)")
        store.acquire(holder)
        print(json.dumps(holder.to_dict()), flush=True)
        while True:
            time.sleep(60)
    if mode == "race":
        time.sleep(max(0.0, float(rest[0]) - time.time()))
        try:
            store.acquire(LockHolder.current("race"))
        except JournalLocked:
            print("LOCKED", flush=True)
            return 0
        print("WON", flush=True)
        time.sleep(3)  # hold it while the others look: they must see a live holder
        store.release()
        return 0
    if mode == "crash-save":
        state = store.load()
        assert state is not None
        state.status = "crashed-mid-write"
        os.replace = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)  # type: ignore[assignment]
        store.save(state)
        return 3  # not reached
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
