"""sfmigrate waits out the settle window after each cluster upgrade (issue 12): with the default
``rollout.settleMinutes`` the twin sees no roll-out or certificate upgrade inside it; with 0 it does."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from migrate import commands
from twinkit import inprocess_session, world_json


def _plan(twin, tmp_path: Path, minutes: float | None) -> Path:
    document = yaml.safe_load(twin.plan_file.read_text())
    if minutes is not None:
        document.setdefault("rollout", {})["settleMinutes"] = minutes
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _wide_window(tmp_path: Path) -> Path:
    import aztwin

    document = yaml.safe_load((Path(aztwin.__file__).parent / "scenarios" / "old-primary.yaml").read_text())
    document["clusters"][0]["settleWindow"] = "6h"
    path = tmp_path / "old-primary-wide-window.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize("minutes, healthy", [(None, True), (0, False)])
def test_the_settle_window_is_waited_out_between_cluster_upgrades_and_roll_outs(twin_factory, tmp_path: Path,
                                                                                minutes: float | None, healthy: bool) -> None:
    # declare the goal (cluster upgrade), roll the extension out, convert. Without the wait, the twin's window is
    # widened to 6 h (7 wall seconds at the tests' time scale) so a loaded machine cannot outlast it by accident.
    twin = twin_factory("old-primary") if minutes is None else twin_factory(scenario_file=_wide_window(tmp_path))
    events: list[dict] = []
    result = commands.apply(_plan(twin, tmp_path, minutes), state_location=str(tmp_path / "state"),
                            session=inprocess_session(twin), emit=events.append)
    assert result.state is not None and result.state.status == "complete"
    cluster = world_json(twin)["cluster"]
    settling = [r for h in cluster["health_history"] if h["phase"] == "settling" for r in h["reasons"]]
    waits = [e for e in events if e["type"] == "waiting" and "settles until" in str(e.get("detail"))]
    if healthy:
        assert cluster["health_worst"] == "Healthy" and not settling, settling
        assert waits, "the run said it waited for the cluster to settle"
    else:
        assert cluster["health_worst"] == "Broken" and settling and not waits
