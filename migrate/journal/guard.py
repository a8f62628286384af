"""Refuse to journal values that look like credentials (issue 5: "never holding tokens or key material").

A cheap last line of defence, not a scanner: the runner should never put such values in ``observed`` or
``last_error``; if one slips through (an exception message quoting a header, say), nothing is written.
Public certificate material (``-----BEGIN CERTIFICATE-----``, thumbprints, ARM operation URLs with their
signed ``c=``/``s=`` parameters) is allowed.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from .errors import SecretInJournal

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # header.payload.signature, both JSON objects base64url-encoded, so each starts with "eyJ"
    ("a JWT (access token)", re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")),
    ("a PEM private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")),
    ("a bearer token", re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]{20,}")),
    ("a storage account key", re.compile(r"AccountKey=[A-Za-z0-9+/=]{20,}", re.IGNORECASE)),
    ("a SAS signature", re.compile(r"[?&;]sig=[A-Za-z0-9%+/=]{16,}", re.IGNORECASE)),
)


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{path}.{key}", str(key)
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def find_secret(value: Any, path: str = "journal") -> tuple[str, str] | None:
    """The first (path, kind) whose string looks like a credential, or None."""
    for where, text in _strings(value, path):
        for kind, pattern in _PATTERNS:
            if pattern.search(text):
                return where, kind
    return None


def refuse_secrets(value: Any, path: str = "journal") -> None:
    """Raise SecretInJournal naming where the suspicious value is (never the value itself)."""
    hit = find_secret(value, path)
    if hit:
        where, kind = hit
        raise SecretInJournal(f"refusing to write the journal: {where} looks like {kind}")


def redact(value: Any) -> Any:
    """The value with anything credential-like replaced by ``***`` (Azure error texts quote SAS URLs and
    headers); what the runner records goes through this before the guard sees it. One redaction for all
    output (issue 13): ``migrate.safe_output.redact``."""
    from ..safe_output import redact_value

    return redact_value(value)
