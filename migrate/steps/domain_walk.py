"""Node types rolled out together: the Manual policy's walk over update domains across node types, and the
cancellation the runner gives every step of a group.

Service Fabric's upgrade domains span node types: upgrade domain *d* holds nodes of every node type, and SF's
own upgrades walk one domain at a time across all of them ("Fault domains" and "Upgrade domains",
https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-resource-manager-cluster-description). Under the Manual policy sfmigrate
does the same when it rolls several node types out together: domain *d* on every node type of the group, wait
for all, then *d + 1*. A node type under Automatic/Rolling takes no part (Azure rolls it out on its own).
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterable


class RunCancelled(BaseException):
    """Raised in a step of a group at its next wait or write once the run stops (Ctrl-C, SIGTERM, a failed
    sibling): a BaseException, so no step-level retry or ``except Exception`` swallows it. The step's
    journal record stays as it was (running, with its operation URL): a rerun re-attaches and converges."""


class Cancellation:
    """The run's stop signals for the steps of a group: ``waits`` stops every wait and write (an interrupt),
    ``writes`` stops only writes (a sibling failed: what was sent is waited for, nothing new is sent)."""

    def __init__(self) -> None:
        self.waits = threading.Event()
        self.writes = threading.Event()
        self.reason = ""

    def stop(self, reason: str, *, waits: bool) -> None:
        self.reason = self.reason or reason
        self.writes.set()
        if waits:
            self.waits.set()

    def check(self, *, writing: bool = False) -> None:
        if self.waits.is_set() or (writing and self.writes.is_set()):
            raise RunCancelled(self.reason)

    def sleep(self, seconds: float) -> None:
        """Sleep, waking at once when the run stops (then raise)."""
        if self.waits.wait(seconds):
            raise RunCancelled(self.reason)


class UpdateDomainWalk:
    """Manual policy across the node types of a group: a member may upgrade domain *d* only when every other
    member has either left (Automatic/Rolling, done, failed) or has no domain below *d* still to do; a member
    that has not yet said which domains it will upgrade holds everyone back (so domain 0 starts everywhere)."""

    def __init__(self, members: Iterable[str]) -> None:
        self._cond = threading.Condition()
        self._pending: dict[str, set[int] | None] = {m: None for m in members}  # None: not known yet

    def plan(self, member: str, domains: Iterable[int]) -> None:
        with self._cond:
            self._pending[member] = set(domains)
            self._cond.notify_all()

    def done(self, member: str, domain: int) -> None:
        with self._cond:
            pending = self._pending.get(member)
            if pending is not None:
                pending.discard(domain)
            self._cond.notify_all()

    def leave(self, member: str) -> None:
        with self._cond:
            self._pending.pop(member, None)
            self._cond.notify_all()

    def may_start(self, member: str, domain: int) -> bool:
        with self._cond:
            return self._clear(member, domain)

    def _clear(self, member: str, domain: int) -> bool:
        return all(other == member or (pending is not None and all(d >= domain for d in pending))
                   for other, pending in self._pending.items())

    def turn(self, member: str, domain: int, deadline: float, check: Callable[[], None], poll: float = 0.5) -> None:
        """Block until ``member`` may upgrade ``domain``; ``check`` raises when the run stops. TimeoutError
        past ``deadline`` (time.monotonic())."""
        with self._cond:
            while not self._clear(member, domain):
                check()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"update domain {domain}: the other node types did not reach it")
                self._cond.wait(poll)
