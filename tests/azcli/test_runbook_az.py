"""Every `az` command the runbooks show runs, with its variables filled in, against a twin (issue 12, "Any Azure
client"): the real Azure CLI (pinned, in .venv-az), the twin registered as a cloud, signed in with the twin's
managed identity. The world is the `basic` scenario after sfmigrate's apply (identity, Key Vault extension and
common-name declaration in place), so the commands find what the pages expect. Commands run in page order on
one twin; each page has its own working folder (files one command writes, the next reads).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import pytest

from azkit import AzSession, az_missing_reason, sign_in, vault_address
from runbook_commands import RunbookCommand, all_commands, commands_in, runbook_pages, shell_blocks
from vault_proxy import VaultProxy
from twinkit import inprocess_session, world_json, with_plan

# Pages whose commands take away what other pages rely on (the vault's deployment access, the identity, its grant,
# the extension, the operator's certificate writes that the findings' remedies use) run last, so each command meets
# the world its page describes.
RUN_LAST = ["azure-devops/README.md", "steps/install-kv-extension.md", "steps/grant-vault-access.md", "steps/ensure-identity.md",
            "steps/enable-vault-deployment.md"]
COMMANDS = sorted(all_commands(), key=lambda c: (RUN_LAST.index(c.page) if c.page in RUN_LAST else -1))

# The documented outcome where it is not exit 0 in this world (migrated, common-name declared): id prefix ->
# text the error must carry.
EXPECTED_ERRORS = {
    # "undo declare-goal-secondary" applies to a cluster still by thumbprint; the page says to roll back
    # convert-cluster first, and SFRP refuses a thumbprint next to common names (documented validation).
    "steps/set-cluster-certificate.md:78:": "InvalidCommonNameThumbprintPair",
    # the scenario's operator may read certificates, not secrets (the vault's access policy): Key Vault says so
    "findings/GOAL_KEY_CNG_ONLY.md:35:": "does not have secrets get permission",
    # the page's line for a user sign-in; signed in as an application (the twin's managed identity), Microsoft
    # Graph refuses /me (user-get: delegated only) and the page's next line is the one to use
    "findings/PERMISSION_DENIED.md:25:": "/me request is only valid with delegated authentication flow",
}

# Commands the twin cannot serve yet: each is a twin gap (name -> why), listed so it stays visible, and GAP_OF maps a
# command id prefix to its gap; strict, so a fixed gap fails here until its line is removed. None today.
TWIN_GAPS: dict[str, str] = {}
GAP_OF: dict[str, str] = {}


def _param(command: RunbookCommand) -> Any:
    gap = next((TWIN_GAPS[g] for prefix, g in GAP_OF.items() if command.test_id.startswith(prefix)), None)
    marks = [pytest.mark.xfail(strict=True, reason=f"twin gap: {gap}")] if gap else []
    return pytest.param(command, id=command.test_id, marks=marks)


def test_the_parser_finds_every_az_line_of_every_bash_block() -> None:
    pages = runbook_pages()
    pipeline = next(p for p in pages if p.name == "azure-pipelines.yml")  # its scripts are scanned too (no az today)
    assert {"sfmigrate plan", "sfmigrate apply"} <= {" ".join(line.split()[:2]) for _, body in shell_blocks(pipeline) for line in body}
    for page in pages:
        lines = [line for _, body in shell_blocks(page) for line in body]
        starts = [line for line in lines if line.lstrip().startswith("az ") or "=$(az " in line]
        assert len(starts) == len(commands_in(page)), page  # every az line starts exactly one command
    assert len(COMMANDS) >= 140 and all(c.text.startswith(("az ", "CLUSTER_ID=", "VMSS_ID=", "VAULT_ID=", "PRINCIPAL=")) for c in COMMANDS)
    continued = next(c for c in COMMANDS if c.page == "steps/install-kv-extension.md" and "get-instance-view" in c.text)
    assert "--query" in continued.text and "\\" not in continued.text  # a backslash continuation is joined


@pytest.fixture(scope="module")
def az_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from aztwin import start_twin
    from migrate import commands

    reason = az_missing_reason()
    if reason:
        pytest.fail(reason)  # `make test` installs it; a missing CLI is a broken setup, not a skip
    root = tmp_path_factory.mktemp("az")
    twin = with_plan(start_twin("basic", time_scale=3000.0, state_dir=root / "twin"))
    stack = contextlib.ExitStack()
    env = pytest.MonkeyPatch()
    for key, value in twin.env.items():
        env.setenv(key, value)  # sfmigrate's apply signs in as the twin's managed identity too
    # a module fixture runs before conftest's per-test lock folder: keep this apply's cluster lock out of ~/.sfmigrate
    env.setenv("SFMIGRATE_LOCK_DIR", str(root / "machine-locks"))
    try:
        assert twin.plan_file is not None
        commands.apply(twin.plan_file, state_location=str(root / "state"), session=inprocess_session(twin))
        proxy = VaultProxy(lambda name: vault_address(twin, name))
        stack.callback(proxy.stop)
        session = sign_in(twin, root / "config", proxy_url=proxy.url)
        session.variables.update(_variables(twin))
        _operator_pfx(twin, root / "pages")
        _grant_certificate_writes(session, twin)
        yield {"twin": twin, "session": session, "root": root, "placeholders": _placeholders(twin)}
    finally:
        stack.close()
        env.undo()
        twin.stop()


def _variables(twin: Any) -> dict[str, str]:
    world = world_json(twin)
    goal = world["goal"]
    cluster = world["cluster"]
    scale_set = world["scale_sets"][0]
    identity = next(i for i in world["identities"] if i["id"].lower() == goal["identity"].lower())
    vault = next(v for v in world["vaults"] if v["id"].lower() == goal["vault"].lower())
    old = next(c["name"] for c in vault["certificates"] if c["name"] != goal["certificate"])
    rg = cluster["id"].split("/")[4]
    return {
        "RG": rg, "CLUSTER": cluster["name"], "NT": scale_set["name"], "NODE_TYPE": scale_set["name"],
        "VAULT": vault["name"], "CERT": goal["certificate"], "GOAL": goal["certificate"], "OLD_CERT": old,
        "n": goal["certificate"], "IDENTITY_ID": identity["id"], "PRINCIPAL": identity["properties"]["principalId"],
        "ARM": twin.base_url, "CLUSTER_ID": cluster["id"], "VMSS_ID": scale_set["id"], "id": scale_set["id"],
        "VAULT_ID": vault["id"], "SUBNET_ID": world["network"]["subnets"][0]["id"],
        "SP": world["principals"][0]["objectId"],
    }


# Pages that import `goal.pfx`: the operator brings it from their CA. Here the goal's own CA issues it (a new goal
# version with its key, no password), so the world stays a migrated, healthy one after the import.
PFX_PAGES = ["findings/GOAL_NOT_PFX.md", "findings/GOAL_SELF_SIGNED.md"]


def _operator_pfx(twin: Any, pages: Path) -> None:
    import datetime as dt

    from cryptography.hazmat.primitives.serialization import NoEncryption, pkcs12

    world = world_json(twin)
    goal = world["goal"]
    vault = next(v for v in world["vaults"] if v["id"].lower() == goal["vault"].lower())
    latest = next(c for c in vault["certificates"] if c["name"] == goal["certificate"])["versions"][-1]
    now = twin.world.now()
    issued = twin.world.pki.issue_leaf("operator-goal", goal["commonName"], now - dt.timedelta(hours=1),
                                       now + dt.timedelta(days=365), issuer=latest["issuer"], sans=[goal["commonName"]])
    blob = pkcs12.serialize_key_and_certificates(b"goal", issued.key, issued.cert, None, NoEncryption())
    for page in PFX_PAGES:
        folder = pages / page.replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "goal.pfx").write_bytes(blob)


def _grant_certificate_writes(session: AzSession, twin: Any) -> None:
    """The findings' remedies write certificates (set-attributes, create, import): whoever runs them holds those
    permissions. The scenario's operator may only read certificates (what sfmigrate needs), so the vault's owner
    grants the writes first, as the operator's own `az keyvault set-policy` line would."""
    world = world_json(twin)
    session.az("keyvault", "set-policy", "--name", world["goal"]["vault"].split("/")[-1],
               "--object-id", world["principals"][0]["objectId"],
               "--certificate-permissions", "get", "list", "update", "create", "import", "delete")


def _placeholders(twin: Any) -> dict[str, str]:
    """The values a reader puts in place of the pages' ``<...>`` placeholders, taken from the world."""
    world = world_json(twin)
    operator = world["principals"][0]
    cluster = world["cluster"]
    goal = world["goal"]
    certificates = {c["name"]: c["versions"][-1] for v in world["vaults"] for c in v["certificates"]}
    goal_version = certificates[goal["certificate"]]
    old_version = next(version for name, version in certificates.items() if name != goal["certificate"])
    extensions = [e["name"] for e in world["scale_sets"][0]["extensions"]]
    service_fabric = next(e["name"] for e in world["scale_sets"][0]["extensions"] if e["type"] == "ServiceFabricNode")
    return {
        "<SF extension name>": service_fabric,
        "<goal CN>": goal["commonName"], "<CN>": goal["commonName"], "<GOAL>": goal_version["thumbprint"],
        "<OLD THUMBPRINT>": old_version["thumbprint"], "<OLD>": old_version["thumbprint"],
        "<NEW>": goal["pinnedIssuers"][0], "<version>": goal_version["version"],
        "<index>": str(extensions.index("KVVMExtension")), "<pfx password>": "",
        "<account>": "stsfmigrate", "<container>": "sfmigrate",
        "<sub>": world["subscriptions"][0]["id"], "<rg>": cluster["id"].split("/")[4],
        "<client id>": operator["clientId"], "<object id>": operator["objectId"],
        "<caller object id>": operator["objectId"], "<resource id from the message>": cluster["id"],
        "<identity rg>": cluster["id"].split("/")[4], "<identity name>": "sf-kv-reader-2",
        "<cluster location>": "westeurope", "<resource id>": cluster["id"], "<id>": "0", "<ids>": "0",
    }


def _fill(text: str, placeholders: dict[str, str]) -> str:
    for placeholder, value in placeholders.items():
        text = text.replace(placeholder, value)
    assert "<" not in text.replace("<=", "").replace("2>", ""), f"a placeholder is left unfilled: {text}"
    return text


@pytest.mark.parametrize("command", [_param(c) for c in COMMANDS])
def test_runbook_az_command_runs_against_the_twin(az_world: dict[str, Any], command: RunbookCommand) -> None:
    session: AzSession = az_world["session"]
    workdir = az_world["root"] / "pages" / command.page.replace("/", "_")
    workdir.mkdir(parents=True, exist_ok=True)
    done = session.run(_fill(command.text, az_world["placeholders"]), cwd=workdir)
    expected = next((text for prefix, text in EXPECTED_ERRORS.items() if command.test_id.startswith(prefix)), None)
    if expected:
        assert done.returncode != 0 and expected in done.stderr, f"{command.page}:{command.line}: {done.stderr[-3000:]}"
        return
    error = "\n".join(line for line in done.stderr.splitlines() if line.startswith(("ERROR", "Code", "Message")))
    assert done.returncode == 0, f"{command.page}:{command.line} exited {done.returncode}\n{error}\n{done.stderr[-1500:]}"
