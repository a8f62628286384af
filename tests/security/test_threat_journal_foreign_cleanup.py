"""Threat: whoever can write the journal edits the optional cleanup step a resumed run carries over from it
(``cleanup_secrets``: the one step taken from the journal rather than re-planned) so that it strips the VMSS secrets
of a scale set outside the migration, another cluster's, leaving its nodes without their certificates at the next
reimage. Defence (docs/security.md "Journal and state"): a step carried over from the journal may touch only the
cluster's own node types; anything else is refused in one line (exit 64) before any write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from migrate import commands
from migrate.errors import StoppedAtRequest, UsageError
from migrate.runner import RunOptions
from twinkit import inprocess_session, requests_json


def test_journal_cleanup_aimed_at_another_scale_set_is_refused_before_any_write(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory("old-primary")
    document = yaml.safe_load(twin.plan_file.read_text())
    document.setdefault("cleanup", {})["removeOldSecrets"] = True
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(document))
    session = inprocess_session(twin)
    state = tmp_path / "state"
    with pytest.raises(StoppedAtRequest):
        commands.apply(plan, state_location=str(state), session=session, options=RunOptions(until="cleanup-secrets:nt0"))
    journal_file = next(state.glob("*.journal.json"))
    journal = json.loads(journal_file.read_text())
    [record] = [json.loads(json.dumps(r)) for r in journal["steps"] if r["name"] == "cleanup-secrets:nt0"]
    victim = record["step"]["params"]["vmss_id"].replace("/resourceGroups/rg-sf/", "/resourceGroups/rg-other-team/")
    # a step of its own name: the fresh plan has none such, so it would be carried over as the journal says
    record["name"] = record["step"]["name"] = "cleanup-secrets:victim"
    record["step"]["params"]["vmss_id"] = victim
    record["step"]["resources"] = [victim]
    journal["steps"].append(record)
    journal_file.write_text(json.dumps(journal))
    before = requests_json(twin)["mutating"]
    with pytest.raises(UsageError, match="is not a node type of this cluster") as refused:
        commands.apply(plan, state_location=str(state), session=session)
    assert "\n" not in str(refused.value)
    assert requests_json(twin)["mutating"] == before
