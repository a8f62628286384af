"""Fleets (issue 15): many clusters from one fleet file, each through the single-cluster planner, runner, journal
and lock. spec (the file), resolve (one plan model per cluster), session (shared cloud, credential, write budget),
plan / apply / status (the commands' library side), report (rendering)."""
