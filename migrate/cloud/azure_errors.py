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

from ..errors import AuthenticationFailed, AzureRequestFailed, NotFound, OperationalError, PermissionDenied
from ..safe_output import redact

# Printed under every authentication failure (issue 14): the two ways in, and pages a user can open.
AUTH_HINT = ("sign in with `az login`, or set AZURE_CLIENT_ID/AZURE_TENANT_ID with a federated token or certificate "
             "(pipeline: runbooks/azure-devops/README.md); see "
             "https://learn.microsoft.com/azure/developer/python/sdk/authentication/credential-chains")
THROTTLING_RUNBOOK = "runbooks/failures/throttling.md"
_caller = ""  # who is calling: the credential and tenant of the session (set by commands.open_session)


def set_caller(description: str) -> None:
    """Name the credential (and tenant) a wrong-subscription error reports: which identity looked."""
    global _caller
    _caller = description


def _subscription_scope(resource_id: str) -> str | None:
    parts = resource_id.strip("/").split("/")
    return parts[1] if len(parts) >= 2 and parts[0].lower() == "subscriptions" else None


def _wrong_subscription(exc: Exception, resource_id: str, status: int | None) -> str | None:
    """404 SubscriptionNotFound, or a 403 on the subscription itself: the caller looks in the wrong tenant or
    subscription. Say which subscription and which credential/tenant was used."""
    code = str(getattr(getattr(exc, "error", None), "code", None) or "")
    subscription = _subscription_scope(resource_id)
    if subscription is None:
        return None
    on_subscription = resource_id.strip("/").count("/") == 1
    if not (code in ("SubscriptionNotFound", "InvalidSubscriptionId") or (status == 403 and on_subscription)):
        return None
    return (f"subscription {subscription} is not visible to {_caller or 'the credential'} ({_error_text(exc)}): "
            "check the subscription in the plan file's resource ids and that this credential's tenant holds it "
            "(az account list; AZURE_TENANT_ID)")


def auth_failure(exc: Exception, prefix: str = "") -> AuthenticationFailed:
    """Every credential's reason, one line each and redacted (a chained credential lists them after
    "Attempted credentials:", one per tab-indented line), and the hint."""
    text = str(getattr(exc, "message", None) or exc)
    head, _, attempts = text.partition("Attempted credentials:")
    summary = " ".join(head.split("To mitigate this issue")[0].split()).rstrip(".") or type(exc).__name__
    reasons = []
    for chunk in attempts.split("\n\t"):
        chunk = chunk.split("To mitigate this issue")[0]
        line = redact(" ".join(chunk.split()))
        if line:
            reasons.append(line[:400])
    return AuthenticationFailed(prefix + redact(summary)[:600], reasons, AUTH_HINT)


def translate(exc: Exception, resource_id: str = "") -> OperationalError:
    """An SDK/transport exception as a migrate error (httpx-style mapping at the boundary)."""
    status = getattr(exc, "status_code", None)
    if isinstance(exc, (ResourceNotFoundError, HttpResponseError)) and status in (403, 404):
        wrong = _wrong_subscription(exc, resource_id, status)
        if wrong:
            return (NotFound if status == 404 else PermissionDenied)(resource_id, wrong, wrong)
    if isinstance(exc, ResourceNotFoundError):
        return NotFound(resource_id, f"not found: {resource_id} ({_error_text(exc)})", _error_text(exc))
    if isinstance(exc, ClientAuthenticationError):
        if status == 403:
            return PermissionDenied(resource_id, f"permission denied on {resource_id}: {_error_text(exc)}", _error_text(exc))
        return auth_failure(exc)
    if isinstance(exc, HttpResponseError):
        if status == 403:
            reason = f"{_error_text(exc)}{_firewall_hint(exc)}"
            return PermissionDenied(resource_id, f"permission denied on {resource_id}: {reason}", reason)
        if status == 404:
            return NotFound(resource_id, f"not found: {resource_id} ({_error_text(exc)})", _error_text(exc))
        code = getattr(getattr(exc, "error", None), "code", None)
        response = getattr(exc, "response", None)
        wait = retry_after(response.headers, 0.0) if response is not None else 0.0
        return AzureRequestFailed(f"{resource_id}: {_error_text(exc)}", status, code, wait or None)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return OperationalError(f"network error talking to Azure: {exc}")
    from azure.identity import CredentialUnavailableError

    if isinstance(exc, CredentialUnavailableError):
        return auth_failure(exc, "no credential available: ")
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
