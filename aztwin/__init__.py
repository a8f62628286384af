"""aztwin: a twin of the parts of Azure that sfmigrate touches, served over HTTPS on loopback.

Microsoft's unchanged clients talk to it (custom endpoint, CA bundle, token endpoints); behind the HTTP
layer it models the certificate world and says when a change would have broken the cluster, and why.
It is an independent oracle: it never imports ``migrate`` and keeps its own copy of every rule.

The public API is what this module exports; everything else is internal to the twin.
"""

from __future__ import annotations

from .control_client import ControlClient, ControlError
from .errors import TwinSetupError
from .inprocess import ForeignOriginError, InProcessTransport
from .scenario_load import ScenarioError, builtin_names, builtin_path, load_scenario
from .twin import RunningTwin, start_twin
from .world import TwinSettings

__all__ = [
    "ControlClient",
    "ControlError",
    "ForeignOriginError",
    "InProcessTransport",
    "RunningTwin",
    "ScenarioError",
    "TwinSettings",
    "TwinSetupError",
    "builtin_names",
    "builtin_path",
    "load_scenario",
    "start_twin",
]
