"""What sfmigrate prints is safe to print: no secret, no pipeline command it did not mean (issue 13).

Two rules, one place each:

- :func:`redact` is THE redaction function: the journal (``journal.guard``), one-line errors, the
  ``##vso[task.complete]`` message, reports and every line on stdout/stderr go through it. It removes SAS
  signatures (plain, URL-encoded, JSON-escaped), storage account keys, bearer tokens and JWTs, client
  secrets (by name, and by value when the process holds them in its environment), base64 PKCS#12 (PFX)
  blobs and whole PEM private-key blocks.
- :func:`neutralize` rewrites ``##vso[`` and ``##[`` (any case: the Azure Pipelines agent matches them
  anywhere in a line) to ``**vso[`` and ``**[``, the rewrite the agent itself applies to variables that
  could carry commands (https://github.com/microsoft/azure-pipelines-agent/pull/3987). Only sfmigrate's own
  logging commands (``azure_devops.AzureDevOps.write``) bypass it, through :meth:`GuardedStream.write_command`.

:func:`install` wraps ``sys.stdout``/``sys.stderr`` in a :class:`GuardedStream` so nothing printed escapes
both rules, whichever code path printed it.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import sys
from typing import Any, TextIO
from urllib.parse import quote

MASK = "***"

# Whole PEM private-key blocks: raw newlines, JSON-escaped "\n" or one line; to the END line, or to the end
# of the text when it was cut (a truncated message still must not carry half a key).
_PEM_KEY = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)", re.DOTALL)
_SHAPES: tuple[re.Pattern[str], ...] = (
    # header.payload.signature, both JSON objects base64url-encoded, so each starts with "eyJ"
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]{20,}", re.IGNORECASE),
)
# name=value secrets whose name survives (the reader learns what was removed): a SAS signature as
# sig=, sig%3D (URL-encoded), sig%253D (twice), sig\u003d (JSON-escaped); AccountKey= of a connection
# string; client secrets in a token request body or a JSON document.
_NAMED = re.compile(
    r"(?P<name>(?<![A-Za-z])sig(?:=|%3D|%253D|\\u003[dD])"
    r"|AccountKey(?:=|%3D)"
    r"|client[_-]?secret(?:=|%3D|\"?\s*:\s*\"|'?\s*:\s*')"
    r"|client[_-]?assertion(?:=|%3D|\"?\s*:\s*\")"
    r"|(?:certificate[_-]?)?password(?:=|\"?\s*:\s*\"))"
    r"(?P<value>[^\s&;\"'<>,)\]}]{4,})",
    re.IGNORECASE)
# base64 runs long enough to be a PKCS#12 file; judged by decoding their first bytes (below)
_BASE64_RUN = re.compile(r"(?:[A-Za-z0-9+/]|\\/){64,}={0,2}")
# Environment variables whose values are credentials the Azure SDKs read (azure-identity's EnvironmentCredential)
# or sfmigrate reads (the state connection string): their values are masked wherever they appear.
SECRET_ENVIRONMENT = ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_PASSWORD",
                      "SFMIGRATE_STATE_CONNECTION_STRING", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY",
                      "AZURE_STORAGE_SAS_TOKEN", "SYSTEM_ACCESSTOKEN")
_known_secrets: set[str] = set()


def remember_secret(value: str | None) -> None:
    """Mask ``value`` (and its URL-encoded and JSON-escaped forms) in everything redacted from now on."""
    if value and len(value) >= 6:
        _known_secrets.update({value, quote(value, safe=""), value.replace("/", "\\/")})


def _is_pkcs12(run: str) -> bool:
    """PFX = DER SEQUENCE { INTEGER 3, ... } (RFC 7292 §4): 30 (len) 02 01 03 within the first bytes."""
    head = run.replace("\\/", "/")[:16]
    try:
        raw = base64.b64decode(head + "=" * (-len(head) % 4), validate=False)
    except (binascii.Error, ValueError):
        return False
    if len(raw) < 5 or raw[0] != 0x30:
        return False
    length_bytes = raw[1] - 0x80 if raw[1] > 0x80 else 0
    at = 2 + length_bytes
    return raw[at:at + 3] == b"\x02\x01\x03"


def redact(text: str) -> str:
    """``text`` with every credential-like value replaced by ``***`` (names such as ``sig=`` are kept)."""
    if not text:
        return text
    for secret in sorted(_known_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    text = _PEM_KEY.sub(f"[private key {MASK}]", text)
    for pattern in _SHAPES:
        text = pattern.sub(MASK, text)
    text = _NAMED.sub(lambda m: m.group("name") + MASK, text)
    return _BASE64_RUN.sub(lambda m: MASK if _is_pkcs12(m.group(0)) else m.group(0), text)


def redact_value(value: Any) -> Any:
    """:func:`redact` through dicts, lists and tuples (journal records, events); other values unchanged."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(item) for item in value]
    return value


_COMMAND = re.compile(r"##(vso)?\[", re.IGNORECASE)


def neutralize(text: str) -> str:
    """``text`` with every ``##vso[`` / ``##[`` rewritten so the Azure Pipelines agent ignores it."""
    return _COMMAND.sub(lambda m: f"**{m.group(1) or ''}[", text)


def safe(text: str) -> str:
    """Data on its way to the screen or a pipeline log: redacted, then neutralized."""
    return neutralize(redact(text))


class GuardedStream:
    """A text stream that passes every line through :func:`safe`; :meth:`write_command` writes sfmigrate's
    own logging command (redacted, not neutralized). Partial lines wait for their end (or a flush) so a
    ``##vso[`` split over two writes is still caught."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner
        self._pending = ""

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # click probes with b"" to tell binary streams from text ones
            raise TypeError("GuardedStream takes text")
        self._pending += text
        if "\n" in self._pending:
            complete, _, self._pending = self._pending.rpartition("\n")
            self.inner.write(safe(complete + "\n"))
        return len(text)

    def write_command(self, line: str) -> None:
        self.flush()
        self.inner.write(redact(line) + "\n")
        self.inner.flush()

    def flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, ""
            self.inner.write(safe(pending))
        self.inner.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno, errors ... of the real stream
        return getattr(self.inner, name)


def install() -> None:
    """Guard ``sys.stdout`` and ``sys.stderr`` (idempotent) and learn the environment's secret values."""
    for name in SECRET_ENVIRONMENT:
        value = os.environ.get(name)
        remember_secret(value)
        for part in (value or "").split(";"):  # a connection string's SAS or key alone, as messages quote it
            key, _, secret = part.partition("=")
            if key.strip().lower() in ("sharedaccesssignature", "accountkey"):
                remember_secret(secret.lstrip("?"))
    if not isinstance(sys.stdout, GuardedStream):
        sys.stdout = GuardedStream(sys.stdout)
    if not isinstance(sys.stderr, GuardedStream):
        sys.stderr = GuardedStream(sys.stderr)


def write_command(stream: Any, line: str) -> None:
    """Write one of sfmigrate's own logging commands to ``stream`` (guarded or not), secrets removed."""
    if isinstance(stream, GuardedStream):
        stream.write_command(line)
        return
    stream.write(redact(line) + "\n")
    stream.flush()
