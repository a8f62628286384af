"""Azure SDK and transport exceptions as sfmigrate's error types (the one mapping, at the gateway's boundary)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from ..errors import AzureRequestFailed, NotFound, OperationalError, PermissionDenied


def translate(exc: Exception, resource_id: str = "") -> OperationalError:
    """An SDK/transport exception as a migrate error (httpx-style mapping at the boundary)."""
    if isinstance(exc, ResourceNotFoundError):
        return NotFound(resource_id, f"not found: {resource_id} ({_error_text(exc)})")
    if isinstance(exc, ClientAuthenticationError):
        if getattr(exc, "status_code", None) == 403:
            return PermissionDenied(resource_id, f"permission denied on {resource_id}: {_error_text(exc)}")
        return OperationalError(f"authentication failed: {_error_text(exc)}")
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        if status == 403:
            return PermissionDenied(resource_id, f"permission denied on {resource_id}: {_error_text(exc)}{_firewall_hint(exc)}")
        if status == 404:
            return NotFound(resource_id, f"not found: {resource_id} ({_error_text(exc)})")
        code = getattr(getattr(exc, "error", None), "code", None)
        response = getattr(exc, "response", None)
        wait = retry_after(response.headers, 0.0) if response is not None else 0.0
        return AzureRequestFailed(f"{resource_id}: {_error_text(exc)}", status, code, wait or None)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return OperationalError(f"network error talking to Azure: {exc}")
    from azure.identity import CredentialUnavailableError

    if isinstance(exc, CredentialUnavailableError):
        return OperationalError(f"no credential available: {str(exc).splitlines()[0]}")
    return OperationalError(f"{type(exc).__name__}: {exc}")


_NETWORK_REFUSALS = ("ForbiddenByFirewall", "ForbiddenByConnection", "Client address is not authorized",
                     "Public network access is disabled")


def _firewall_hint(exc: Exception) -> str:
    """Key Vault's network rules, not permissions, refused the call (inner error ForbiddenByFirewall/-Connection)."""
    error = getattr(exc, "error", None)
    inner = getattr(error, "innererror", None) or {}
    text = f"{inner.get('code', '') if isinstance(inner, dict) else ''} {getattr(exc, 'message', '') or exc}"
    if not any(marker in text for marker in _NETWORK_REFUSALS):
        return ""
    return (" (the vault's firewall refused this machine's network address, not a permission: add the address to the "
            "vault's networkAcls.ipRules or run sfmigrate from an allowed network; see runbooks/findings/VAULT_NETWORK_RESTRICTED.md)")


def _error_text(exc: Exception) -> str:
    """Azure's error as one line (extension messages carry CR/LF; they end up in logs and ##vso lines)."""
    error = getattr(exc, "error", None)
    if error is not None and getattr(error, "code", None):
        text = f"{error.code}: {error.message}"
    else:
        text = (getattr(exc, "message", None) or str(exc)).splitlines()[0] if str(exc) else type(exc).__name__
    return " ".join(str(text).split())[:1000]


@contextmanager
def azure_errors(resource_id: str = "") -> Iterator[None]:
    try:
        yield
    except (HttpResponseError, ServiceRequestError, ServiceResponseError) as exc:
        raise translate(exc, resource_id) from exc
    except Exception as exc:  # credential errors come in several classes
        from azure.identity import CredentialUnavailableError

        if isinstance(exc, CredentialUnavailableError):
            raise translate(exc, resource_id) from exc
        raise


def retry_after(headers: Any, default: float) -> float:
    """Seconds to wait, from ``retry-after-ms`` / ``x-ms-retry-after-ms`` / ``Retry-After``."""
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return default
