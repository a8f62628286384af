"""Fault injection from a spec string, reproducible with a seed.

Grammar: rules separated by ``;``, each a comma-separated list of ``key=value``:

- ``rate``: probability (0..1) that a matching request fails (default 0.2);
- ``kinds``: ``|``-separated choice among ``429``, ``500``, ``503``, ``reset`` (default all four). By default
  ``reset`` is drawn only for idempotent methods (GET, PUT, DELETE, HEAD): a client cannot tell whether a
  POST or PATCH whose connection dropped was applied, so it may not retry it (RFC 9110 §9.2.2; azure-core's
  RetryPolicy never does), and such a fault would not be transient. Name ``reset`` in ``kinds`` to inject it
  on every method;
- ``match``: a regular expression searched in ``"METHOD /path"`` (default every ARM/Key Vault request);
- ``subscription``: a subscription id: only ARM requests under ``/subscriptions/<id>`` match (ARM throttles per
  subscription; a 429 storm on one subscription leaves the others alone);
- ``latency``: milliseconds added to every matching request (independent of ``rate``);
- ``seed``: the random seed (default 0); ``retry_after_ms``: the throttling hint (default 20);
- ``limit``: stop injecting after this many faults.

Example: ``rate=0.2,seed=7``, ``match=PUT .*/clusters/,kinds=503,rate=0.5;latency=30`` or
``subscription=<id>,kinds=429,rate=0.5``.
Token and control endpoints are never faulted, so a run fails only where Azure itself could.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field

KINDS = ("429", "500", "503", "reset")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
IDEMPOTENT = frozenset({"GET", "PUT", "DELETE", "HEAD", "OPTIONS"})


class FaultSpecError(ValueError):
    pass


@dataclass
class FaultRule:
    rate: float = 0.2
    kinds: tuple[str, ...] = KINDS
    kinds_named: bool = False  # True when the spec lists kinds (then ``reset`` applies to every method)
    match: re.Pattern[str] | None = None
    subscription: str | None = None  # lower case: only paths under /subscriptions/<it>
    latency_ms: int = 0
    retry_after_ms: int = 20
    limit: int | None = None
    injected: int = 0

    def applies(self, target: str, path: str) -> bool:
        if self.subscription is not None:
            prefix = f"/subscriptions/{self.subscription}"
            lowered = path.lower()
            if not (lowered == prefix or lowered.startswith(prefix + "/")):
                return False
        return self.match is None or bool(self.match.search(target))


@dataclass
class Fault:
    kind: str  # 429 | 500 | 503 | reset
    retry_after_ms: int


@dataclass
class FaultPlan:
    spec: str = ""
    rules: list[FaultRule] = field(default_factory=list)
    seed: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def parse(cls, spec: str | None) -> "FaultPlan":
        plan = cls(spec=spec or "")
        if not spec or not spec.strip():
            plan._random.seed(0)
            return plan
        for chunk in spec.split(";"):
            if not chunk.strip():
                continue
            rule = FaultRule()
            latency_only = True
            for pair in chunk.split(","):
                if not pair.strip():
                    continue
                key, sep, value = pair.partition("=")
                key, value = key.strip().lower(), value.strip()
                if not sep:
                    raise FaultSpecError(f"fault spec: '{pair.strip()}' is not key=value")
                try:
                    if key == "rate":
                        rule.rate = float(value)
                        if not 0 <= rule.rate <= 1:
                            raise ValueError
                        latency_only = False
                    elif key == "kinds":
                        kinds = tuple(k.strip() for k in value.split("|") if k.strip())
                        unknown = [k for k in kinds if k not in KINDS]
                        if unknown or not kinds:
                            raise FaultSpecError(f"fault spec: unknown kind(s) {unknown or value!r}; use {'|'.join(KINDS)}")
                        rule.kinds, rule.kinds_named = kinds, True
                        latency_only = False
                    elif key == "match":
                        rule.match = re.compile(value)
                    elif key == "subscription":
                        if not _GUID.match(value):
                            raise FaultSpecError(f"fault spec: subscription must be a subscription id (a GUID), not {value!r}")
                        rule.subscription = value.lower()
                    elif key == "latency":
                        rule.latency_ms = int(value.removesuffix("ms"))
                    elif key == "seed":
                        plan.seed = int(value)
                    elif key == "retry_after_ms":
                        rule.retry_after_ms = int(value)
                    elif key == "limit":
                        rule.limit = int(value)
                    else:
                        raise FaultSpecError(f"fault spec: unknown key '{key}'")
                except FaultSpecError:
                    raise
                except (ValueError, re.error) as exc:
                    raise FaultSpecError(f"fault spec: bad value for '{key}': {value!r}") from exc
            if latency_only and rule.latency_ms:
                rule.rate = 0.0
            plan.rules.append(rule)
        plan._random.seed(plan.seed)
        return plan

    def decide(self, method: str, path: str) -> tuple[Fault | None, int]:
        """The fault to inject (if any) and the latency to add, for one request."""
        target = f"{method} {path}"
        latency = 0
        with self._lock:
            for rule in self.rules:
                if not rule.applies(target, path):
                    continue
                latency += rule.latency_ms
                if rule.rate <= 0 or (rule.limit is not None and rule.injected >= rule.limit):
                    continue
                kinds = rule.kinds
                if not rule.kinds_named and method.upper() not in IDEMPOTENT:
                    kinds = tuple(k for k in kinds if k != "reset")
                if kinds and self._random.random() < rule.rate:
                    rule.injected += 1
                    return Fault(self._random.choice(kinds), rule.retry_after_ms), latency
        return None, latency

    def summary(self) -> dict[str, object]:
        return {"spec": self.spec, "injected": sum(r.injected for r in self.rules)}
