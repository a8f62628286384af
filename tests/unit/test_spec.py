"""The plan file: good plans parse with their defaults; malformed ones always give one line naming the field
(PlanFileError, exit 64), never another exception (property-based, hypothesis)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from migrate.errors import ExitCode, UsageError
from migrate.spec import PlanFileError, PlanSpec, json_schema, load_plan, parse_plan, schema_text, write_schema
from snapshots import CLUSTER_ID, IDENTITY_ID, SUB, VAULT_ID, plan_dict, vmss_id

ROOT = Path(__file__).resolve().parents[2]
PLANS = ROOT / "plans"
SOURCE = "test.yaml"
THUMB = "1FB86B1168EC743154062E8C9CC5B171A4B7CCB4"
# SFMIGRATE_HYPOTHESIS_EXAMPLES=5000 for a deeper run than the fast default.
FAST = settings(max_examples=int(os.environ.get("SFMIGRATE_HYPOTHESIS_EXAMPLES", "100")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def parse(data: Any) -> PlanSpec:
    return parse_plan(yaml.safe_dump(data), SOURCE)


def error_of(text: str) -> PlanFileError:
    with pytest.raises(PlanFileError) as caught:
        parse_plan(text, SOURCE)
    return caught.value


def assert_one_line(error: PlanFileError) -> str:
    message = str(error)
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"{SOURCE}: ")
    assert isinstance(error, UsageError) and error.exit_code == ExitCode.USAGE == 64
    return message


# -- good plans -------------------------------------------------------------------------------------------
def test_minimal_plan_takes_the_defaults() -> None:
    spec = parse(plan_dict())
    assert spec.nodeTypes == "discover" and spec.cloud.name == "AzureCloud" and spec.goal.commonName is None
    kv = spec.keyVaultExtension
    assert (kv.windowsVersion, kv.linuxVersion, kv.linkOnRenewal, kv.requireInitialSync, kv.pollingIntervalInS) == ("3.0", "3.0", False, True, 3600)
    assert spec.cleanup.removeOldSecrets is False and spec.checks.expiryWarningDays == 30 and spec.rollout.manualBatchPercent == 100


def test_full_plan() -> None:
    spec = parse(plan_dict(
        cloud={"name": "Custom", "armEndpoint": "https://127.0.0.1:8443", "caBundle": "/tmp/ca.pem"},
        goal={"commonName": "  sfprod.contoso.com ", "pinnedIssuers": [THUMB.lower(), "62 6D 44 E7 04 D1 CE AB E3 BF 0D 53 39 74 64 AC 80 80 14 2C"]},
        nodeTypes=[vmss_id("nt0"), vmss_id("nt1") + " "],
        keyVaultExtension={"windowsVersion": "1.0", "certificateStoreLocation": "CurrentUser"},
        cleanup={"removeOldSecrets": True},
        checks={"expiryWarningDays": 0},
    ))
    assert spec.goal.commonName == "sfprod.contoso.com"
    assert spec.goal.pinnedIssuers == [THUMB, "626D44E704D1CEABE3BF0D53397464AC8080142C"]
    assert spec.nodeTypes == [vmss_id("nt0"), vmss_id("nt1")]
    assert spec.keyVaultExtension.windowsVersion == "1.0" and spec.cleanup.removeOldSecrets


def test_lower_case_resource_group_segment_is_accepted() -> None:
    spec = parse(plan_dict(cluster={"id": CLUSTER_ID.replace("resourceGroups", "resourcegroups")}))
    assert spec.cluster.id.endswith("/sfprod-weu")


def test_unpinned_needs_the_flag() -> None:
    assert parse(plan_dict(goal={"pinnedIssuers": [], "allowUnpinnedIssuers": True})).goal.pinnedIssuers == []
    message = assert_one_line(error_of(yaml.safe_dump(plan_dict(goal={"pinnedIssuers": []}))))
    assert message.startswith(f"{SOURCE}: goal.pinnedIssuers: ")


def test_fingerprint_is_stable_and_sensitive() -> None:
    assert parse(plan_dict()).fingerprint() == parse(plan_dict()).fingerprint()
    assert parse(plan_dict()).fingerprint() != parse(plan_dict(cleanup={"removeOldSecrets": True})).fingerprint()


@pytest.mark.parametrize("name", ["example-single-cluster.yaml", "example-minimal.yaml"])
def test_examples_parse_and_match_the_schema(name: str) -> None:
    spec = load_plan(PLANS / name)
    assert spec.apiVersion == "sfmigrate/v1"
    jsonschema.validate(yaml.safe_load((PLANS / name).read_text()), json_schema())


def test_committed_schema_is_the_generated_one(tmp_path: Path) -> None:
    assert (PLANS / "schema.json").read_text(encoding="utf-8") == schema_text(), \
        "plans/schema.json is stale: python -c \"from migrate.spec import write_schema; write_schema('plans/schema.json')\""
    written = write_schema(tmp_path / "nested" / "schema.json")
    assert json.loads(written.read_text()) == json_schema()
    jsonschema.Draft202012Validator.check_schema(json_schema())


def test_readme_names_every_field_and_finding() -> None:
    from migrate.checks import CATALOGUE

    readme = (PLANS / "README.md").read_text(encoding="utf-8")
    for code in CATALOGUE:
        assert f"`{code}`" in readme, code
    for section, model in PlanSpec.model_fields.items():
        annotation = model.annotation
        fields = getattr(annotation, "model_fields", None)
        for name in fields or [None]:
            assert f"`{section}.{name}`" in readme if name else f"`{section}`" in readme, (section, name)


def test_load_plan_errors(tmp_path: Path) -> None:
    assert "does not exist" in str(pytest.raises(PlanFileError, load_plan, tmp_path / "nope.yaml").value)
    assert "is a directory" in str(pytest.raises(PlanFileError, load_plan, tmp_path).value)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert "not UTF-8" in str(pytest.raises(PlanFileError, load_plan, binary).value)


# -- specific bad plans: the exact field path ------------------------------------------------------------
BAD: list[tuple[dict[str, Any], str]] = [
    (plan_dict(cluster={"id": CLUSTER_ID.replace("clusters", "managedClusters")}), "cluster.id: managed clusters"),
    (plan_dict(cluster={"id": "sfprod-weu"}), "cluster.id: not an ARM resource id"),
    (plan_dict(cluster={"id": VAULT_ID}), "cluster.id: must be a Microsoft.ServiceFabric/clusters id"),
    (plan_dict(cluster={"id": CLUSTER_ID + "\n/extra"}), "cluster.id: not an ARM resource id"),
    (plan_dict(goal={"vaultId": VAULT_ID.replace(SUB, "not-a-guid")}), "goal.vaultId: not an ARM resource id"),
    (plan_dict(goal={"certificateName": "has space"}), "goal.certificateName: a Key Vault certificate name"),
    (plan_dict(goal={"certificateName": "name\n"}), "goal.certificateName: a Key Vault certificate name"),
    (plan_dict(goal={"commonName": "CN=sfprod.contoso.com"}), "goal.commonName: give the bare common name"),
    (plan_dict(goal={"commonName": "  "}), "goal.commonName: must not be empty"),
    (plan_dict(goal={"pinnedIssuers": [THUMB, "33:41:AB"]}), "goal.pinnedIssuers[1]: '33:41:AB' is not a 40-hex-digit"),
    (plan_dict(goal={"pinnedIssuers": [THUMB + "\n"]}), "goal.pinnedIssuers[0]: "),
    (plan_dict(goal={"pinnedIssuers": [THUMB, THUMB.lower()]}), "goal.pinnedIssuers[1]: "),
    (plan_dict(goal={"pinnedIssuers": f"{THUMB},{THUMB}"}), "goal.pinnedIssuers: write a YAML list"),
    (plan_dict(goal={"pinnedIssuers": [42]}), "goal.pinnedIssuers[0]: Input should be a valid string"),
    (plan_dict(goal={"extra": 1}), "goal.extra: unknown field"),
    (plan_dict(identity={"id": CLUSTER_ID}), "identity.id: must be a Microsoft.ManagedIdentity/userAssignedIdentities id"),
    (plan_dict(identity=None), "identity: Input should be a valid dictionary"),
    (plan_dict(nodeTypes="all"), "nodeTypes: use 'discover' or a list"),
    (plan_dict(nodeTypes=[]), "nodeTypes: list at least one"),
    (plan_dict(nodeTypes=[vmss_id("a"), 3]), "nodeTypes[1]: must be a VMSS resource id"),
    (plan_dict(nodeTypes=[vmss_id("a"), vmss_id("A")]), "nodeTypes[1]: listed twice"),
    (plan_dict(nodeTypes=[CLUSTER_ID]), "nodeTypes[0]: must be a Microsoft.Compute/virtualMachineScaleSets id"),
    (plan_dict(keyVaultExtension={"windowsVersion": 3.0}), "keyVaultExtension.windowsVersion: quote the version"),
    (plan_dict(keyVaultExtension={"linuxVersion": "latest"}), "keyVaultExtension.linuxVersion: must be a major.minor"),
    (plan_dict(keyVaultExtension={"pollingIntervalInS": 5}), "keyVaultExtension.pollingIntervalInS: "),
    (plan_dict(keyVaultExtension={"linkOnRenewl": False}), "keyVaultExtension.linkOnRenewl: unknown field"),
    (plan_dict(keyVaultExtension={"certificateStoreLocation": "localmachine"}), "keyVaultExtension.certificateStoreLocation: "),
    (plan_dict(keyVaultExtension={"name": "bad name"}), "keyVaultExtension.name: "),
    (plan_dict(keyVaultExtension={"linuxStoreLocation": "relative/path"}), "keyVaultExtension.linuxStoreLocation: "),
    (plan_dict(cloud={"name": "Custom"}), "cloud.armEndpoint: required when name is Custom"),
    (plan_dict(cloud={"armEndpoint": "http://localhost"}), "cloud.armEndpoint: must be an https:// URL"),
    (plan_dict(cloud={"name": "AzureGermanCloud"}), "cloud.name: Input should be"),
    (plan_dict(checks={"expiryWarningDays": -1}), "checks.expiryWarningDays: "),
    (plan_dict(rollout={"manualBatchPercent": 0}), "rollout.manualBatchPercent: "),
    (plan_dict(cleanup={"removeOldSecrets": "sometimes"}), "cleanup.removeOldSecrets: Input should be a valid boolean"),
    (plan_dict(kind="Rollback"), "kind: Input should be 'Migration'"),
    (plan_dict(apiVersion="sfmigrate/v2"), "apiVersion: must be 'sfmigrate/v1' (got 'sfmigrate/v2')"),
    ({k: v for k, v in plan_dict().items() if k != "goal"}, "goal: required field is missing"),
    ({k: v for k, v in plan_dict().items() if k != "apiVersion"}, "apiVersion: required field is missing"),
    ({**plan_dict(), "Goal": {}}, "Goal: unknown field"),
    ({**plan_dict(), "odd key\nwith newline": 1}, "['odd key\\nwith newline']: unknown field"),
    ({**plan_dict(), 7: 1}, "(top level): field name"),
    ({**plan_dict(), "checks": {None: 1}}, "checks: field name"),
]


@pytest.mark.parametrize("data,expected", BAD, ids=[expected.split(":")[0] + f"-{i}" for i, (_, expected) in enumerate(BAD)])
def test_bad_plan_names_the_field(data: dict[str, Any], expected: str) -> None:
    message = assert_one_line(error_of(yaml.safe_dump(data)))
    assert message.startswith(f"{SOURCE}: {expected}"), message


@pytest.mark.parametrize("text,expected", [
    ("", "a plan file is a YAML mapping"),
    ("- a\n- b\n", "a plan file is a YAML mapping"),
    ("apiVersion: sfmigrate/v1\ncluster: {id: [\n", "not valid YAML (line"),
    ("a: 1\n---\nb: 2\n", "not valid YAML"),
    ("\x00", "not valid YAML"),
    ("[" * 1000, "not valid YAML"),
    ("apiVersion: sfmigrate/v1\nx: !!python/object:os.system {}\n", "not valid YAML"),
    ("apiVersion: sfmigrate/v1\nchecks: {expiryWarningDays: " + "9" * 5000 + "}\n", "not valid YAML"),
    ("apiVersion: &a [*a]\n", "apiVersion: must be"),
    (f"apiVersion: sfmigrate/v1\ncluster: {{id: {CLUSTER_ID}}}\nidentity: {{id: {IDENTITY_ID}}}\n"
     f"goal: &g {{vaultId: {VAULT_ID}, certificateName: c, pinnedIssuers: *g}}\n", "goal.pinnedIssuers: "),
])
def test_bad_text(text: str, expected: str) -> None:
    assert expected in assert_one_line(error_of(text))


# -- properties ---------------------------------------------------------------------------------------------
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30),
                    st.dates(), st.binary(max_size=8))
structures = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4),
    st.dictionaries(st.one_of(st.text(max_size=12), st.integers(), st.booleans()), children, max_size=4),
), max_leaves=12)
bad_strings = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["", " ", "CN=x", "/subscriptions/", CLUSTER_ID + "/", CLUSTER_ID + "\u2028x", THUMB[:-1], THUMB + "0",
                     "G" * 40, THUMB.replace("1", ":"), "4.0", "3", "3.0.1", "https://", "\x00", "a\rb", "\u2029"]),
)
# Where a mutation goes: dotted path -> (parent keys, key).
LEAVES = [
    ("cluster.id",), ("goal.vaultId",), ("goal.certificateName",), ("goal.commonName",), ("goal.pinnedIssuers",),
    ("goal.allowUnpinnedIssuers",), ("goal.issuerCertificates",), ("identity.id",), ("nodeTypes",), ("cloud.name",),
    ("cloud.armEndpoint",), ("keyVaultExtension.windowsVersion",), ("keyVaultExtension.linuxVersion",),
    ("keyVaultExtension.pollingIntervalInS",), ("keyVaultExtension.linkOnRenewal",), ("keyVaultExtension.requireInitialSync",),
    ("keyVaultExtension.certificateStoreLocation",), ("cleanup.removeOldSecrets",), ("checks.expiryWarningDays",),
    ("rollout.manualBatchPercent",), ("cluster",), ("goal",), ("identity",), ("keyVaultExtension",), ("cloud",),
]


def full_plan() -> dict[str, Any]:
    return plan_dict(cloud={"name": "AzureCloud"}, nodeTypes=[vmss_id("nt0")], keyVaultExtension={"windowsVersion": "3.0"},
                     cleanup={"removeOldSecrets": False}, checks={"expiryWarningDays": 30}, rollout={"manualBatchPercent": 100})


def mutate(path: str, value: Any, how: str) -> dict[str, Any]:
    data = full_plan()
    *parents, key = path.split(".")
    target = data
    for part in parents:
        target = target[part]
    if how == "delete":
        target.pop(key, None)
    elif how == "unknown" and isinstance(target.get(key), dict):
        target[key] = {**target[key], "unexpectedField": value}
    elif how == "list-item" and isinstance(target.get(key), list):
        target[key] = [*target[key], value]
    else:
        target[key] = value
    return data


def check_message(error: PlanFileError, path: str) -> None:
    message = assert_one_line(error)
    rest = message[len(SOURCE) + 2:]
    reported = rest.split(": ", 1)[0]
    # The reported field is the mutated one, a field below it, or (for cross-field rules) its section.
    assert reported.startswith(path) or path.startswith(reported.split("[")[0]), message


@FAST
@given(text=st.text(max_size=200))
@example(text="apiVersion: sfmigrate/v1\n\x85")
@example(text="? - a\n: b")
def test_any_text_gives_a_plan_or_one_line(text: str) -> None:
    try:
        parse_plan(text, SOURCE)
    except PlanFileError as error:
        assert_one_line(error)


@FAST
@given(data=structures)
def test_any_structure_gives_one_line(data: Any) -> None:
    with pytest.raises(PlanFileError) as caught:
        parse_plan(yaml.safe_dump(data), SOURCE)
    assert_one_line(caught.value)


@FAST
@given(extra=st.dictionaries(st.text(min_size=1, max_size=12), structures, min_size=1, max_size=3))
def test_unknown_top_level_fields_are_named(extra: dict[str, Any]) -> None:
    data = full_plan()
    assume(not set(extra) & set(data) and not set(extra) & set(PlanSpec.model_fields))
    with pytest.raises(PlanFileError) as caught:
        parse_plan(yaml.safe_dump({**data, **extra}), SOURCE)
    assert "unknown field" in assert_one_line(caught.value)


@FAST
@given(path=st.sampled_from([leaf[0] for leaf in LEAVES]), value=st.one_of(structures, bad_strings),
       how=st.sampled_from(["replace", "delete", "unknown", "list-item"]))
def test_mutated_plan_fails_on_one_line_at_that_field(path: str, value: Any, how: str) -> None:
    data = mutate(path, value, how)
    try:
        parse_plan(yaml.safe_dump(data), SOURCE)
    except PlanFileError as error:
        check_message(error, path)
    # some mutations are valid (e.g. deleting an optional field): parsing is then fine


@FAST
@given(item=bad_strings, index=st.integers(0, 2))
def test_bad_thumbprints_and_ids_are_refused(item: str, index: int) -> None:
    issuers = [THUMB, "626D44E704D1CEABE3BF0D53397464AC8080142C"]
    issuers.insert(min(index, len(issuers)), item)
    cleaned = item.replace(" ", "")
    assume(not (len(cleaned) == 40 and all(c in "0123456789abcdefABCDEF" for c in cleaned)))
    message = assert_one_line(error_of(yaml.safe_dump(plan_dict(goal={"pinnedIssuers": issuers}))))
    assert f"goal.pinnedIssuers[{min(index, 2)}]: " in message
    message = assert_one_line(error_of(yaml.safe_dump(plan_dict(identity={"id": item}))))
    assert message.startswith(f"{SOURCE}: identity.id: ")


def test_valid_plan_survives_a_round_trip() -> None:
    spec = parse(full_plan())
    again = parse(copy.deepcopy(spec.model_dump(mode="json")))
    assert again == spec and again.fingerprint() == spec.fingerprint()
    assert IDENTITY_ID == spec.identity.id
