"""Errors the twin raises before it serves: bad settings or a scenario it cannot build.

Each message is one line naming the argument or the scenario field; a front end (``sfmigrate emulator
serve``, a test harness) turns it into its own usage error.
"""

from __future__ import annotations


class TwinSetupError(Exception):
    """The twin cannot start with these arguments; the message names the argument or field."""
