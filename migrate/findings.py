"""Preflight findings: what blocks a migration, what deserves a warning, and what to do about it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

Severity = Literal["error", "warning", "info"]
ERROR: Final = "error"  # blocks apply (exit 3)
WARNING: Final = "warning"
INFO: Final = "info"
SEVERITY_ORDER: dict[Severity, int] = {ERROR: 0, WARNING: 1, INFO: 2}


@dataclass(frozen=True)
class Finding:
    code: str  # stable, e.g. ISSUER_NOT_PINNED (a contract: pipelines and runbooks key on it)
    severity: Severity
    message: str  # what and why, citing the rule
    resource_id: str | None
    remedy: str
    runbook: str | None = None  # runbooks/<page>.md

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITY_ORDER.get(f.severity, 9), f.code, f.resource_id or ""))
