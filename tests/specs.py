"""Validate wire JSON against Microsoft's published Swagger 2.0 specs (``../shared/specs``).

jsonschema (Draft 4) + referencing, with a registry that loads each spec file by its relative path, so the
specs' cross-file ``$ref``s resolve as they do in azure-rest-api-specs (research/emulation.md §7). Swagger's
own keywords are mapped onto JSON Schema here:

- ``x-nullable: true``  -> the value may also be ``null``;
- ``discriminator``     -> ignored (the base schema is checked; subtypes are not selected);
- ``readOnly``          -> nothing to do for responses (it only forbids the property in requests);
- ``nextLink``          -> may be ``null``: Key Vault answers ``"nextLink": null`` on a list's last page and
                           every SDK pager stops on it (the specs declare a plain string);
- ``format``            -> not asserted (Draft 4 ignores unknown formats: ``unixtime``, ``base64url``, ...).
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

# CI runs a clone with the read-only ``shared/`` folder beside it: <clone>/../shared/specs (for a test in
# tests/emulator/ that is ``Path(__file__).resolve().parents[2].parent / "shared" / "specs"``).
SPECS = Path(__file__).resolve().parents[1].parent / "shared" / "specs"
SPEC_ROOT = SPECS / "specification"

SERVICEFABRIC = "servicefabric/resource-manager/Microsoft.ServiceFabric/stable/2021-06-01/cluster.json"
COMPUTE_VMSS = "compute/resource-manager/Microsoft.Compute/ComputeRP/stable/2024-07-01/virtualMachineScaleSet.json"
COMPUTE_COMMON = "compute/resource-manager/Microsoft.Compute/ComputeRP/stable/2024-07-01/computeRPCommon.json"
KEYVAULT_MGMT = "keyvault/resource-manager/Microsoft.KeyVault/KeyVault/stable/2024-11-01/keyvault.json"
KEYVAULT_DATA = "keyvault/data-plane/Microsoft.KeyVault/stable/7.5/certificates.json"
MSI = "msi/resource-manager/Microsoft.ManagedIdentity/ManagedIdentity/stable/2024-11-30/ManagedIdentity.json"


def available() -> bool:
    return SPEC_ROOT.is_dir()


def _swagger_to_schema(node: Any) -> Any:
    """A copy of a spec subtree with Swagger-only keywords turned into Draft 4 equivalents."""
    if isinstance(node, list):
        return [_swagger_to_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _swagger_to_schema(value) for key, value in node.items()}
    out.pop("discriminator", None)
    next_link = (out.get("properties") or {}).get("nextLink")
    if isinstance(next_link, dict) and next_link.get("type") == "string":
        next_link["type"] = ["string", "null"]
    if out.get("x-nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        elif "$ref" in out:  # Draft 4 ignores siblings of $ref: wrap it
            ref = out.pop("$ref")
            out["anyOf"] = [{"$ref": ref}, {"type": "null"}]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


@lru_cache(maxsize=None)
def _load(uri: str) -> Resource:
    path = Path(uri.removeprefix("file://"))
    document = _swagger_to_schema(json.loads(path.read_text(encoding="utf-8")))
    return Resource.from_contents(document, default_specification=DRAFT4)


def _retrieve(uri: str) -> Resource:
    if not uri.startswith("file://"):
        raise LookupError(f"only spec files are resolvable, not {uri}")
    return _load(uri)


@lru_cache(maxsize=None)
def validator(spec_file: str, definition: str) -> Draft4Validator:
    """A validator for ``#/definitions/{definition}`` of ``spec_file`` (relative to ``specification/``)."""
    uri = (SPEC_ROOT / spec_file).resolve().as_uri()
    registry: Registry = Registry(retrieve=_retrieve)  # type: ignore[call-arg]
    return Draft4Validator({"$ref": f"{uri}#/definitions/{definition}"}, registry=registry)


def errors(body: Any, spec_file: str, definition: str) -> list[str]:
    """Every way ``body`` breaks the definition, as ``path: message`` lines (empty when it conforms)."""
    found = validator(spec_file, definition).iter_errors(copy.deepcopy(body))
    return sorted(f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in found)


def assert_conforms(body: Any, spec_file: str, definition: str) -> None:
    problems = errors(body, spec_file, definition)
    assert not problems, f"{definition} ({spec_file}) does not validate:\n  " + "\n  ".join(problems[:20])
