"""A cluster's certificate declaration and the rules SFRP applies to changing it (pure functions).

Sources: microsoft/service-fabric's ClusterManagementErrorCode.cs and standalone settings validator
(https://github.com/microsoft/service-fabric, src/prod/src/managed/Api/Dlls/Microsoft.ServiceFabric.ClusterManagementCommon/)
and https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ...wire import TwinError

_HEX40 = re.compile(r"^[0-9A-Fa-f]{40}$")
THUMBPRINT = "thumbprint"
COMMON_NAME = "common_name"


@dataclass(frozen=True)
class CommonNameRule:
    common_name: str
    issuers: tuple[str, ...]  # upper-case thumbprints; empty = chain to a trusted root


@dataclass(frozen=True)
class Declaration:
    kind: str  # thumbprint | common_name | none
    thumbprints: tuple[str, ...] = ()  # primary first
    common_names: tuple[CommonNameRule, ...] = ()
    store: str = "My"

    @classmethod
    def from_properties(cls, properties: dict[str, Any]) -> "Declaration":
        certificate = properties.get("certificate")
        common = properties.get("certificateCommonNames")
        if isinstance(certificate, dict):
            prints = [certificate.get("thumbprint"), certificate.get("thumbprintSecondary")]
            return cls(THUMBPRINT, tuple(str(p).upper() for p in prints if p), store=str(certificate.get("x509StoreName") or "My"))
        if isinstance(common, dict):
            rules = tuple(
                CommonNameRule(str(entry.get("certificateCommonName") or ""), split_issuers(str(entry.get("certificateIssuerThumbprint") or "")))
                for entry in common.get("commonNames") or []
            )
            return cls(COMMON_NAME, common_names=rules, store=str(common.get("x509StoreName") or "My"))
        return cls("none")

    def validation(self) -> "ValidationList":
        return ValidationList(frozenset(self.thumbprints), self.common_names)

    def public(self) -> dict[str, Any]:
        if self.kind == THUMBPRINT:
            return {"kind": self.kind, "thumbprints": list(self.thumbprints)}
        return {
            "kind": self.kind,
            "commonNames": [{"commonName": r.common_name, "issuers": list(r.issuers)} for r in self.common_names],
        }


@dataclass(frozen=True)
class ValidationList:
    """What a node accepts from peers: thumbprints and common names with pinned issuers (may hold both)."""

    thumbprints: frozenset[str] = frozenset()
    common_names: tuple[CommonNameRule, ...] = field(default_factory=tuple)

    def union(self, other: "ValidationList") -> "ValidationList":
        rules = list(self.common_names)
        for rule in other.common_names:
            if rule not in rules:
                rules.append(rule)
        return ValidationList(self.thumbprints | other.thumbprints, tuple(rules))

    def public(self) -> dict[str, Any]:
        return {
            "thumbprints": sorted(self.thumbprints),
            "commonNames": [{"commonName": r.common_name, "issuers": list(r.issuers)} for r in self.common_names],
        }


def split_issuers(text: str) -> tuple[str, ...]:
    return tuple(p.replace(" ", "").upper() for p in text.split(",") if p.strip())


def _reject(code: str, message: str, status: int = 400) -> TwinError:
    return TwinError(status, code, message)


def validate_certificate_properties(properties: dict[str, Any]) -> None:
    """Syntax rules of one cluster definition."""
    certificate = properties.get("certificate")
    common = properties.get("certificateCommonNames")
    if certificate is not None and common is not None:
        raise _reject("InvalidCommonNameThumbprintPair", "Common names and issuer thumbprints should not be both defined for a particular certificate.")
    if certificate is not None:
        if not isinstance(certificate, dict):
            raise _reject("InvalidRequestFormat", "The property 'properties.certificate' must be an object.")
        for key in ("thumbprint", "thumbprintSecondary"):
            value = certificate.get(key)
            if value is None and key == "thumbprintSecondary":
                continue
            if not isinstance(value, str) or not _HEX40.match(value):
                raise _reject("InvalidCertificateThumbprint", f"Certificate thumbprint '{value}' is invalid.")
        if certificate.get("thumbprintSecondary") and certificate["thumbprintSecondary"].upper() == certificate["thumbprint"].upper():
            raise _reject("InvalidCertificateThumbprint", "The primary and secondary certificate thumbprints are the same.")
    if common is not None:
        if not isinstance(common, dict) or not isinstance(common.get("commonNames"), list):
            raise _reject("InvalidRequestFormat", "The property 'properties.certificateCommonNames.commonNames' must be an array.")
        names = common["commonNames"]
        if not names or len(names) > 2:
            raise _reject("InvalidCommonNameCount", "Up to 2 common names are supported for certificates except the client certificates.")
        seen = set()
        for entry in names:
            if not isinstance(entry, dict):
                raise _reject("InvalidRequestFormat", "Each common name entry must be an object.")
            name = entry.get("certificateCommonName")
            if not isinstance(name, str) or not name.strip():
                raise _reject("InvalidCommonName", "Common name must not be empty.")
            if name.lower() in seen:
                raise _reject("DupeCommonNameNotAllowedForClusterCert", "Duplicated common names for the cluster certificate type is not supported.")
            seen.add(name.lower())
            validate_issuer_list(entry.get("certificateIssuerThumbprint"))
    reverse_common = properties.get("reverseProxyCertificateCommonNames")
    if isinstance(reverse_common, dict):
        for entry in reverse_common.get("commonNames") or []:
            if isinstance(entry, dict) and entry.get("certificateIssuerThumbprint"):
                raise _reject("UnsupportedIssuerThumbprintPair", "Issuer thumbprint is not supported for this particular certificate type yet.")


def validate_issuer_list(value: Any) -> None:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _reject("InvalidCertificateIssuerThumbprints", f"Certificate issuer thumbprints {value} are either invalid or contain duplicated entries.")
    if not value.strip():
        return
    entries = [e.replace(" ", "").upper() for e in value.split(",")]
    if any(not _HEX40.match(e) for e in entries) or len(set(entries)) != len(entries):
        raise _reject("InvalidCertificateIssuerThumbprints", f"Certificate issuer thumbprints {value} are either invalid or contain duplicated entries.")


def validate_transition(old: Declaration, new: Declaration) -> None:
    """Rules on going from ``old`` to ``new`` (type changes TP<->CN skip the count rules, §7.2)."""
    if old.kind == THUMBPRINT and new.kind == THUMBPRINT:
        before, after = set(old.thumbprints), set(new.thumbprints)
        if before == after:
            return
        common = before & after
        if len(before) == 2 and len(after) == 2:
            if common:
                raise _reject("AddAndRemoveCertificateNotAllowed", "Certificates cannot be added and removed at the same time; add or remove one certificate per upgrade.")
            raise _reject("TwoCertificatesToTwoCertificatesNotAllowed", "Upgrading from 2 different certificates to 2 different certificates is not allowed.")
        if len(before) == 1 and len(after) == 1:
            raise _reject("CertificateUpdateNotRolling", "Certificates have to be rolled over one at a time. All existing certificates cannot be modified at the same time.")
        if not common:
            raise _reject("CertificateUpgradeWithNoIntersectionNotAllowed", "Upgrading from 1 certificate to 2 certificates or 2 certificates to 1 certificate is not allowed if there is no thumbprint or common name intersection.")
        return
    if old.kind == COMMON_NAME and new.kind == COMMON_NAME:
        rules_before = {r.common_name.lower(): r for r in old.common_names}
        for rule in new.common_names:
            previous = rules_before.get(rule.common_name.lower())
            if previous and previous.issuers and rule.issuers and not set(previous.issuers) & set(rule.issuers):
                raise _reject("IssuerThumbprintUpgradeWithNoIntersection", "The current and updated issuer thumbprint collections must have an intersection.")
    if old.kind != "none" and new.kind == "none":
        raise _reject("AuthenticationTypeCannotBeChangedByRemovingCertificate", "The cluster's certificate cannot be removed; a secured cluster cannot become unsecured.")
    if old.kind == "none" and new.kind != "none":
        raise _reject("AuthenticationTypeCannotBeChangedByAddingCertificate", "An unsecured cluster cannot become secured by adding a certificate.")


def parse_version(text: str | None) -> tuple[int, ...]:
    parts = []
    for piece in str(text or "0").split("."):
        try:
            parts.append(int(piece))
        except ValueError:
            break
    return tuple(parts)


def selects_by_not_after(code_version: str | None) -> bool:
    """Before 7.2.445 (7.2 CU4) the runtime presents the farthest-expiring certificate (https://learn.microsoft.com/azure/service-fabric/service-fabric-cluster-change-cert-thumbprint-to-cn)."""
    return parse_version(code_version)[:3] < (7, 2, 445)
