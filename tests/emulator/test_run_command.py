"""Action run command on a scale set instance: the script runs against the twin's model of the node and the
result has Azure's shape (docs/twin.md, "Run command"). Driven through the compute SDK's
``begin_run_command`` (202, ``Location`` with the RunCommandResult), outcomes read from ``/_emulator/world``.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from sfsteps import Step
from twinkit import Clients, world_json

CN = "sfcluster.contoso.com"


def _run(twin: Any, script: str, command: str = "RunPowerShellScript", scale_set: str = "nt0") -> list[Any]:
    poller = Clients(twin).compute.virtual_machine_scale_set_vms.begin_run_command(
        "rg-sf", scale_set, "0", {"commandId": command, "script": [script]})
    return list(poller.result().value)


def _streams(twin: Any, script: str) -> tuple[str, str]:
    stdout, stderr = _run(twin, script)
    assert (stdout.code, stderr.code) == ("ComponentStatus/StdOut/succeeded", "ComponentStatus/StdErr/succeeded")
    return stdout.message or "", stderr.message or ""


def _node_certificates(twin: Any) -> list[dict[str, Any]]:
    certificates: list[dict[str, Any]] = world_json(twin)["scale_sets"][0]["instances"][0]["certificates"]
    return certificates


def test_listing_the_machine_store_prints_the_node_certificates_as_a_table(twin: Any) -> None:
    installed = [c for c in _node_certificates(twin) if c.get("store") == "LocalMachine\\My"]
    assert installed
    stdout, stderr = _streams(twin, "Get-ChildItem Cert:\\LocalMachine\\My | Select-Object Thumbprint, Subject, NotAfter")
    lines = stdout.splitlines()
    assert lines[1].split() == ["Thumbprint", "Subject", "NotAfter"] and set(lines[2].split()) == {"----------", "-------", "--------"}
    for certificate in installed:
        row = next(line for line in lines if line.startswith(certificate["thumbprint"]))
        assert f"CN={certificate['subject']}" in row
    assert stderr == ""


def test_a_filter_sort_and_five_properties_print_a_list(twin: Any) -> None:
    old = next(c for c in _node_certificates(twin) if c.get("store") == "LocalMachine\\My")
    stdout, _ = _streams(twin, f"Get-ChildItem Cert:\\LocalMachine\\My | Where-Object Subject -eq 'CN={old['subject']}' | "
                               "Sort-Object NotBefore -Descending | Select-Object Thumbprint, NotBefore, NotAfter, Issuer, HasPrivateKey")
    assert f"Thumbprint    : {old['thumbprint']}" in stdout and f"Issuer        : CN={old['issuer']}" in stdout
    nothing, _ = _streams(twin, "Get-ChildItem Cert:\\LocalMachine\\My | Where-Object Subject -like 'CN=nobody*'")
    assert nothing.strip() == ""


def test_removing_a_certificate_takes_it_off_the_node(twin: Any) -> None:
    old = next(c for c in _node_certificates(twin) if c.get("store") == "LocalMachine\\My")
    _, stderr = _streams(twin, f"Remove-Item Cert:\\LocalMachine\\My\\{old['thumbprint']}")
    assert stderr == ""
    assert old["thumbprint"] not in {c["thumbprint"] for c in _node_certificates(twin)}
    _, again = _streams(twin, f"Remove-Item Cert:\\LocalMachine\\My\\{old['thumbprint']}")
    assert "does not exist" in again


def test_the_key_vault_extension_log_and_service_follow_the_extension(twin: Any) -> None:
    _, missing = _streams(twin, "Get-Service akvvm_service")
    assert "Cannot find any service with service name 'akvvm_service'" in missing  # no extension yet
    step = Step(Clients(twin), "kv-sf-basic")
    identity = step.create_identity()
    step.grant_secrets(identity)
    step.install_kv_extension(identity, ["cluster-cert"], CN)
    goal = step.thumbprint("cluster-cert")
    service, _ = _streams(twin, "Get-ChildItem Cert:\\LocalMachine\\My | Where-Object Subject -like 'CN=sfcluster*' | "
                                "Select-Object Thumbprint; Get-Service akvvm_service")
    assert goal in service and "Running" in service and "akvvm_service" in service
    log, stderr = _streams(twin, "Get-ChildItem 'C:\\WindowsAzure\\Logs\\Plugins\\Microsoft.Azure.KeyVault.KeyVaultForWindows' "
                                 "-Recurse -Filter *.log | Sort-Object LastWriteTime | Select-Object -Last 1 | Get-Content -Tail 50")
    assert f"thumbprint {goal} in LocalMachine\\My".lower() in log.lower() and "Extension status succeeded" in log and stderr == ""


def test_a_command_the_node_does_not_have_says_so_on_stderr_and_prints_nothing(twin: Any) -> None:
    stdout, stderr = _streams(twin, "certutil -store My")
    assert stdout == "" and "'certutil' is not recognized" in stderr and "CommandNotFoundException" in stderr


def test_linux_runs_shell_scripts_and_refuses_powershell(twin_factory: Any) -> None:
    twin = twin_factory("linux-nodetype")
    (status,) = _run(twin, "ls /var/lib/waagent; systemctl status akvvm", command="RunShellScript")
    thumbprints = {c["thumbprint"] for c in _node_certificates(twin) if c["source"] == "vmss-secret"}
    assert status.code == "ProvisioningState/succeeded" and status.message.startswith("Enable succeeded: \n[stdout]\n")
    stdout, _, stderr = status.message.partition("[stderr]\n")
    assert thumbprints and all(f"{t}.crt" in stdout and f"{t}.prv" in stdout for t in thumbprints)
    assert "systemctl: command not found" in stderr
    with pytest.raises(HttpResponseError) as refused:
        _run(twin, "Get-ChildItem Cert:\\LocalMachine\\My")
    assert refused.value.status_code == 409 and "does not match the target OS Linux" in str(refused.value)
