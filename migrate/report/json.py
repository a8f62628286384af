"""The versioned JSON report: exactly :meth:`migrate.plan.Plan.to_report`, keys in its (contract) order."""

from __future__ import annotations

import json as _json

from ..plan import Plan


def render_plan(plan: Plan, *, color: bool = False) -> str:
    del color
    # No sort_keys: to_report() already orders the contract keys (format_version first); values keep theirs.
    return _json.dumps(plan.to_report(), indent=2, ensure_ascii=False, default=str) + "\n"
