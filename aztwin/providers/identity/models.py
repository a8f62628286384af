"""Principals and tokens: the twin's Entra ID, managed-identity endpoint and pipeline OIDC issuer.

Tokens are JWT-shaped (HS256 with a secret generated at start) and carry ``tid``, ``oid`` and ``aud``,
so ARM and Key Vault can authenticate each request and record the principal behind it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ...wire import TwinError

ARM_AUDIENCES = ("https://management.azure.com", "https://management.core.windows.net")
KEYVAULT_AUDIENCES = ("https://vault.azure.net",)
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
PIPELINE_ISSUER_PREFIX = "https://vstoken.dev.azure.com/"


@dataclass
class FederatedCredential:
    issuer: str
    subject: str
    audience: str = FEDERATION_AUDIENCE


@dataclass
class Principal:
    object_id: str
    tenant_id: str
    display_name: str
    kind: str  # ServicePrincipal | ManagedIdentity | User
    client_id: str
    client_secret: str | None = field(default=None, repr=False)  # never logged or snapshotted
    federated: list[FederatedCredential] = field(default_factory=list)
    resource_id: str | None = None  # user-assigned identities

    def public(self) -> dict[str, Any]:
        return {
            "objectId": self.object_id,
            "clientId": self.client_id,
            "tenantId": self.tenant_id,
            "displayName": self.display_name,
            "kind": self.kind,
            **({"resourceId": self.resource_id} if self.resource_id else {}),
        }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenService:
    """Mints and verifies the twin's JWTs."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def mint(self, claims: dict[str, Any]) -> str:
        header = {"alg": "HS256", "typ": "JWT", "kid": "twin"}
        signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
        signature = hmac.new(self._secret, signing_input.encode("ascii"), hashlib.sha256).digest()
        return signing_input + "." + _b64(signature)

    def verify(self, token: str) -> dict[str, Any]:
        """Claims of a token the twin issued; raises ValueError with the reason otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            raise ValueError("the token is not a JWT")
        expected = hmac.new(self._secret, f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256).digest()
        try:
            signature = _unb64(parts[2])
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError("the token is malformed") from exc
        if not hmac.compare_digest(signature, expected):
            raise ValueError("the token signature is invalid")
        if not isinstance(claims, dict):
            raise ValueError("the token claims are not an object")
        if float(claims.get("exp", 0)) < time.time():
            raise ValueError("the token is expired")
        return claims


def normalise_audience(resource: str) -> str:
    resource = resource.strip()
    if resource.endswith("/.default"):
        resource = resource[: -len("/.default")]
    return resource.rstrip("/")


class Directory:
    """The tenant's principals and the tokens issued to them."""

    def __init__(self, tenant_id: str, tokens: TokenService | None = None) -> None:
        self.tenant_id = tenant_id
        self.tokens = tokens or TokenService()
        self.principals: dict[str, Principal] = {}
        self.identity_header = secrets.token_urlsafe(24)  # the managed-identity endpoint's shared secret
        self.pipeline_access_tokens: dict[str, str] = {}  # System.AccessToken -> organisation id
        self.default_principal_id: str | None = None  # who the managed-identity endpoint answers as

    def add(self, principal: Principal) -> Principal:
        self.principals[principal.object_id] = principal
        return principal

    def new_principal(self, display_name: str, kind: str, **extra: Any) -> Principal:
        return self.add(
            Principal(str(uuid.uuid4()), self.tenant_id, display_name, kind, str(uuid.uuid4()), **extra)
        )

    def by_client_id(self, client_id: str) -> Principal | None:
        for principal in self.principals.values():
            if principal.client_id == client_id:
                return principal
        return None

    def reset_secret(self, display_name: str) -> Principal | None:
        """A new client secret for service principal ``display_name`` (``az ad sp credential reset``: the
        previous secret stops working); None if there is no such principal."""
        for principal in self.principals.values():
            if principal.kind == "ServicePrincipal" and principal.display_name == display_name:
                principal.client_secret = secrets.token_urlsafe(32)
                return principal
        return None

    def issue(self, principal: Principal, resource: str, lifetime: int = 3600) -> tuple[str, int]:
        now = int(time.time())
        claims = {
            "aud": normalise_audience(resource),
            "iss": f"https://sts.windows.net/{principal.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "tid": principal.tenant_id,
            "oid": principal.object_id,
            "sub": principal.object_id,
            "appid": principal.client_id,
            "idtyp": "app",
        }
        return self.tokens.mint(claims), now + lifetime

    def authenticate(self, authorization: str | None, audiences: tuple[str, ...]) -> Principal:
        """The principal behind a bearer token, or a 401 naming what is wrong."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise TwinError(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            )
        token = authorization[7:].strip()
        try:
            claims = self.tokens.verify(token)
        except ValueError as exc:
            code = "ExpiredAuthenticationToken" if "expired" in str(exc) else "InvalidAuthenticationToken"
            raise TwinError(401, code, f"The access token is invalid: {exc}.") from exc
        accepted = {normalise_audience(a) for a in audiences}
        if normalise_audience(str(claims.get("aud", ""))) not in accepted:
            raise TwinError(
                401,
                "InvalidAuthenticationTokenAudience",
                f"The access token has an invalid audience '{claims.get('aud')}'.",
            )
        principal = self.principals.get(str(claims.get("oid")))
        if principal is None:
            raise TwinError(401, "InvalidAuthenticationToken", "The token's principal does not exist in the tenant.")
        return principal

    # -- the token endpoints' rules (the routes decode the form or query and render the token) -----------
    def client_credentials(self, client_id: str, client_secret: str | None, assertion: str | None) -> Principal:
        """The application signing in with a secret or a federated assertion (OAuth2 client credentials)."""
        principal = self.by_client_id(client_id)
        if principal is None or principal.kind == "ManagedIdentity":
            raise TwinError(
                400, "unauthorized_client", f"AADSTS700016: Application with identifier '{client_id}' was not found."
            )
        if assertion is not None:
            self._check_assertion(principal, assertion)
        elif principal.client_secret is None or client_secret != principal.client_secret:
            raise TwinError(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        return principal

    def _check_assertion(self, principal: Principal, assertion: str) -> None:
        try:
            claims = self.tokens.verify(assertion)
        except ValueError as exc:
            raise TwinError(401, "invalid_client", f"AADSTS700024: Client assertion is invalid: {exc}.") from exc
        for credential in principal.federated:
            if (
                claims.get("iss") == credential.issuer
                and claims.get("sub") == credential.subject
                and claims.get("aud") == credential.audience
            ):
                return
        raise TwinError(
            401,
            "invalid_client",
            "AADSTS700213: No matching federated identity record found for presented assertion subject "
            f"'{claims.get('sub')}'.",
        )

    def check_identity_header(self, value: str | None) -> None:
        """The managed-identity endpoint answers only callers that present ``IDENTITY_HEADER``."""
        if value != self.identity_header:
            raise TwinError(401, "invalid_request", "The X-IDENTITY-HEADER is missing or wrong.")

    def managed_identity(self, client_id: str | None) -> Principal:
        """The identity the managed-identity endpoint answers as: the one named, else the host's own."""
        if client_id:
            principal = self.by_client_id(client_id)
            if principal is None:
                raise TwinError(400, "invalid_request", f"No managed identity with client id '{client_id}'.")
            return principal
        principal = self.principals.get(self.default_principal_id or "")
        if principal is None:
            raise TwinError(400, "invalid_request", "The host has no managed identity.")
        return principal

    def pipeline_organisation(self, access_token: str) -> str:
        """The Azure DevOps organisation a System.AccessToken belongs to (401 if none)."""
        organisation = self.pipeline_access_tokens.get(access_token)
        if organisation is None:
            raise TwinError(401, "Unauthorized", "TF400813: The System.AccessToken is missing or not valid.")
        return organisation

    def pipeline_assertion(self, organisation: str, connection_id: str) -> str:
        """The OIDC token a pipeline's service connection exchanges at the token endpoint."""
        now = int(time.time())
        return self.tokens.mint(
            {
                "iss": PIPELINE_ISSUER_PREFIX + organisation,
                "sub": f"sc://twin/sfmigrate/{connection_id}",
                "aud": FEDERATION_AUDIENCE,
                "iat": now,
                "nbf": now,
                "exp": now + 600,
            }
        )

    def snapshot(self) -> list[dict[str, Any]]:
        return [p.public() for p in self.principals.values()]
