"""reverse-proxy-renewed: the migration keeps every version the reverse proxy declares by thumbprint (issue 11).

The cluster and its reverse proxy declare version 0 of the goal; the goal has been renewed. sfmigrate converts
the cluster (cleanup on) and keeps version 0's VMSS secret. After a later renewal from another pinned issuer, a
new plan touches none of the reverse proxy's secrets (it used to empty ``osProfile.secrets``), and a reimaged
node still gets the reverse proxy's certificate from the model, so the twin's verdict stays Healthy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from migrate import commands
from twinkit import Clients, inprocess_session, requests_json, scale_sets, world_json

VAULT = "kv-sf-rp-renewed"


def _plan_with_cleanup(twin: Any, tmp_path: Path) -> Path:
    document = yaml.safe_load(twin.plan_file.read_text())
    document["cleanup"] = {"removeOldSecrets": True}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _secret_urls(twin: Any) -> list[str]:
    [nt0] = [s for s in scale_sets(Clients(twin)) if s["name"] == "nt0"]
    return [c["certificateUrl"] for g in nt0["properties"]["virtualMachineProfile"]["osProfile"].get("secrets") or []
            for c in g["vaultCertificates"]]


def _proxy_thumbprint(twin: Any) -> str:
    return str(world_json(twin)["cluster"]["reverseProxyCertificate"]["thumbprint"]).upper()


def _node_certificates(twin: Any, instance_id: str) -> set[str]:
    nt0 = next(s for s in world_json(twin)["scale_sets"] if s["name"] == "nt0")
    return {c["thumbprint"] for i in nt0["instances"] if i["instanceId"] == instance_id for c in i["certificates"]}


def test_converts_keeps_the_reverse_proxy_version_and_a_later_renewal_plans_nothing_for_it(twin_factory: Any, tmp_path: Path) -> None:
    twin = twin_factory("reverse-proxy-renewed")
    session = inprocess_session(twin)
    plan_file = _plan_with_cleanup(twin, tmp_path)
    proxy = _proxy_thumbprint(twin)
    [proxy_secret] = _secret_urls(twin)  # version 0: the cluster's and the reverse proxy's

    result = commands.apply(plan_file, state_location=str(tmp_path / "state"), session=session)
    assert result.state is not None and result.state.status == "complete"
    assert not [s for s in result.plan.steps if proxy_secret in (s.params_dict().get("urls") or [])]
    cluster = world_json(twin)["cluster"]
    assert cluster["declaration"] == "common_name" and cluster["reverseProxyCertificate"]["thumbprint"].upper() == proxy
    assert cluster["health"] == cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
    assert _secret_urls(twin) == [proxy_secret]  # kept: the reverse proxy still declares version 0 by thumbprint

    mutating = requests_json(twin)["mutating"]
    assert commands.apply(plan_file, state_location=str(tmp_path / "state"), session=session).nothing_to_do
    assert requests_json(twin)["mutating"] == mutating  # a second apply writes nothing

    # A routine renewal, from the other pinned issuer: the Key Vault extension installs it, nodes present it.
    renewed = twin.control().call("POST", "/_emulator/certificates/renew",
                                  {"vault": VAULT, "certificate": "cluster-cert", "issuer": "contoso-issuing-2", "validFrom": "-1d"})
    twin.control().advance_clock(3 * 3600)  # past the extension's polling interval
    again = commands.plan(plan_file, session=session)
    assert again.plan.steps == [], [(s.name, s.params_dict()) for s in again.plan.steps]  # was: cleanup-secrets:nt0 [version 0]
    assert again.exit_code == 0
    assert _secret_urls(twin) == [proxy_secret]

    # Why it matters: a reimaged node comes back with what the model delivers, version 0 included.
    Clients(twin).compute.virtual_machine_scale_set_vms.begin_reimage("rg-sf", "nt0", "2").result()
    assert {proxy, renewed["thumbprint"]} <= _node_certificates(twin, "2")
    cluster = world_json(twin)["cluster"]
    assert cluster["health"] == cluster["health_worst"] == "Healthy", cluster["health_worst_reasons"]
