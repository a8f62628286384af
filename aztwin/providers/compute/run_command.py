"""Action run command on a scale set instance (``POST …/virtualMachines/{id}/runCommand``; docs/twin.md,
"Run command"): the script runs against the twin's model of the node, and the result has the shape Azure gives.

- Windows (``RunPowerShellScript``): compute/powershell.py interprets the script; the result's ``value`` holds two
  InstanceViewStatus entries, ``ComponentStatus/StdOut/succeeded`` and ``ComponentStatus/StdErr/succeeded``, their
  ``message`` the streams (https://learn.microsoft.com/azure/virtual-machines/windows/run-command).
- Linux (``RunShellScript``): a few shell commands over the node's files (``ls``); one
  ``ProvisioningState/succeeded`` entry whose message is ``Enable succeeded: \\n[stdout]\\n…\\n[stderr]\\n…``
  (https://learn.microsoft.com/azure/virtual-machines/linux/run-command).
- A command id of the other OS is refused as Azure does (409 ``Conflict``, "Run command OS type 'Linux' does not
  match the target OS Windows."); an unknown command id is 404 (the wording is the twin's).
- A script the twin does not interpret answers what the node would for a command it does not have: nothing on
  stdout, the shell's "not recognized"/"command not found" on stderr, and the run command itself succeeds
  (pessimistic: the operator learns nothing from it, rather than something the twin made up).
- Output is cut to its last 4,096 bytes, as the docs say of run command output.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from ...wire import TwinError, bad_request
from .powershell import KV_SERVICE, PowerShell, Run, split_outside_quotes

if TYPE_CHECKING:
    from ...world import World
    from .models import Instance

WINDOWS_COMMANDS = {"RunPowerShellScript", "EnableRemotePS", "IPConfig", "RDPSettings", "ResetRDPCert", "SetRDPPort", "EnableAdminAccount", "DisableNLA", "DisableWindowsUpdate", "EnableWindowsUpdate"}
LINUX_COMMANDS = {"RunShellScript", "ifconfig"}
OUTPUT_LIMIT = 4096
RUN_SECONDS = 30.0  # simulated time a run command takes (the docs: a script runs for up to 90 minutes)
SCRIPT = "/var/lib/waagent/run-command/download/0/script.sh"


def check_command(instance: Instance, command_id: str) -> None:
    linux = instance.scale_set.os == "linux"
    known = {c.lower(): c for c in WINDOWS_COMMANDS | LINUX_COMMANDS}
    canonical = known.get(command_id.lower())
    if canonical is None:
        raise TwinError(404, "NotFound", f"The run command '{command_id}' was not found in this location.")
    if (canonical in LINUX_COMMANDS) != linux:
        wanted, target = ("Linux", "Windows") if canonical in LINUX_COMMANDS else ("Windows", "Linux")
        raise TwinError(409, "Conflict", f"Run command OS type '{wanted}' does not match the target OS {target}.")


def invoke(world: World, instance: Instance, command_id: str, script: list[str]) -> dict[str, Any]:
    """Run ``script`` on ``instance`` now; the RunCommandResult body the operation reports when it ends."""
    check_command(instance, command_id)
    if command_id.lower() not in ("runpowershellscript", "runshellscript"):
        return _result(instance, Run(stdout=[f"{command_id} ran."]))  # the built-in commands take no script
    if not script:
        raise bad_request("The property 'script' is required for RunPowerShellScript and RunShellScript.", "InvalidParameter")
    text = "\n".join(script)
    if instance.scale_set.os == "linux":
        return _result(instance, Shell(instance).execute(text))
    return _result(instance, PowerShell(instance, world.now(), kv_windows_log).execute(text))


def _tail(lines: list[str]) -> str:
    text = "\n".join(lines)
    return text[-OUTPUT_LIMIT:] if len(text.encode()) > OUTPUT_LIMIT else text


def _status(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "level": "Info", "displayStatus": "Provisioning succeeded", "message": message}


def _result(instance: Instance, run: Run) -> dict[str, Any]:
    if instance.scale_set.os == "linux":
        return {"value": [_status("ProvisioningState/succeeded",
                                  f"Enable succeeded: \n[stdout]\n{_tail(run.stdout)}\n[stderr]\n{_tail(run.stderr)}\n")]}
    return {"value": [_status("ComponentStatus/StdOut/succeeded", _tail(run.stdout)),
                      _status("ComponentStatus/StdErr/succeeded", _tail(run.stderr))]}


def kv_windows_log(instance: Instance) -> list[str]:
    """The Key Vault extension's log on a Windows node: what it installed and its last status (the line wording is
    the twin's; the folder is the documented one, key-vault-windows troubleshooting)."""
    lines = [f"{c.arrived} [{KV_SERVICE}] Certificate '{c.source_url}' installed: thumbprint {c.thumbprint} in {c.store}"
             for c in instance.store if c.source == "kv-extension"]
    for state in instance.extensions.values():
        if state.type.endswith("KeyVaultForWindows"):
            lines.append(f"{state.time} [{KV_SERVICE}] Extension status {state.status}: {state.message}")
    return sorted(lines)


class Shell:
    """``RunShellScript`` over a Linux node's files: ``ls`` of waagent's certificate folder and the Key Vault
    extension's store folders; any other command is ``command not found``."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.run = Run()

    def files(self) -> dict[str, list[str]]:
        """Folder -> file names, from the certificates on the node (compute/linux.py)."""
        folders: dict[str, list[str]] = {}
        for cert in self.instance.store:
            if cert.source == "vmss-secret":
                folders.setdefault("/var/lib/waagent", []).extend([f"{cert.thumbprint}.crt", f"{cert.thumbprint}.prv"])
            elif cert.path:
                folder, _, name = cert.path.rpartition("/")
                folders.setdefault(folder, []).append(name)
        for link in self.instance.symlinks:
            folder, _, name = link.rpartition("/")
            folders.setdefault(folder, []).append(name)
        return {k: sorted(set(v)) for k, v in folders.items()}

    def execute(self, script: str) -> Run:
        for number, line in enumerate(script.splitlines(), start=1):
            for command in split_outside_quotes(line, ";"):
                try:
                    words = shlex.split(command)
                except ValueError:
                    words = command.split()
                if not words:
                    continue
                if words[0] == "ls":
                    self._ls([w for w in words[1:] if not w.startswith("-")] or ["."])
                elif words[0] in ("echo",):
                    self.run.stdout.append(" ".join(words[1:]))
                else:
                    self.run.stderr.append(f"{SCRIPT}: line {number}: {words[0]}: command not found")
        return self.run

    def _ls(self, paths: list[str]) -> None:
        folders = self.files()
        for path in paths:
            folder = path.rstrip("/")
            if folder in folders:
                self.run.stdout.extend(folders[folder])
            elif any(f.startswith(folder + "/") for f in folders):
                self.run.stdout.extend(sorted({f[len(folder) + 1:].split("/")[0] for f in folders if f.startswith(folder + "/")}))
            else:
                self.run.stderr.append(f"ls: cannot access '{path}': No such file or directory")
