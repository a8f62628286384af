"""The Azure DevOps apply matrix of a fleet plan: one job per unblocked cluster with changes.

Shape ``{jobName: {"planFile": ..., "clusterId": ...}}``, what a job's ``strategy: matrix:`` takes from a runtime
expression (https://learn.microsoft.com/azure/devops/pipelines/yaml-schema/jobs-job-strategy): each leg's keys
become the job's variables ``$(planFile)`` and ``$(clusterId)``. Matrix configuration names may hold only
A-Z, a-z, 0-9 and ``_``, must start with a letter and be at most 100 characters (same page).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .plan import FleetPlanResult

MAX_JOB_NAME = 100
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_]+")


def job_name(label: str, taken: set[str]) -> str:
    """``label`` (e.g. ``rg-sf/sfcluster``) as a matrix configuration name, unique among ``taken``."""
    base = _NOT_ALLOWED.sub("_", label).strip("_") or "cluster"
    if not base[0].isalpha():
        base = "c_" + base
    base = base[:MAX_JOB_NAME]
    name, n = base, 1
    while name.lower() in taken:  # job names compare case-insensitively in Azure DevOps: the pessimistic reading
        n += 1
        suffix = f"_{n}"
        name = base[:MAX_JOB_NAME - len(suffix)] + suffix
    taken.add(name.lower())
    return name


def apply_matrix(result: FleetPlanResult, plans_dir: str | Path) -> dict[str, dict[str, str]]:
    """The matrix for the clusters whose status is ``changes`` (blocked, unobserved and done ones get no job).

    ``planFile`` is the saved plan's path relative to ``plans_dir`` (the published artifact's root), with ``/``
    separators, so a job finds it under wherever the artifact was downloaded. Needs ``save_fleet_plans`` first."""
    root = Path(plans_dir).resolve()
    taken: set[str] = set()
    matrix: dict[str, dict[str, str]] = {}
    for cluster in result.clusters:
        if cluster.status != "changes":
            continue
        saved = result.saved.get(cluster.member.cluster_id)
        if saved is None:
            raise ValueError(f"no saved plan for {cluster.member.cluster_id}: save the fleet's plans first")
        matrix[job_name(cluster.label, taken)] = {"planFile": saved.resolve().relative_to(root).as_posix(),
                                                  "clusterId": cluster.member.cluster_id}
    return matrix


def matrix_json(matrix: dict[str, dict[str, str]]) -> str:
    """One line (an output variable's value cannot hold a line break)."""
    return json.dumps(matrix, separators=(",", ":"), sort_keys=True)
