"""Admin request bodies. Unknown fields are refused; errors name the field (→ 400).
Types are strict (JSON types as the OpenAPI document states them, no coercion). A PATCH body
names only what changes; a field given as null is refused (org_id excepted: null clears it).

The patterns below are also the OpenAPI document's (sidecar/openapi.py), so the document
states exactly what is refused."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from sidecar.oauth.grants import GRANTS
from sidecar.oauth.grants.base import HELD_REFRESH
from sidecar.oauth.grants.token_exchange import TOKEN_EXCHANGE

ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # a tenant id
# names, titles, usernames, org and project ids: no control characters, nothing blank at either end
TEXT = r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
SCOPE = r"^[!#-\[\]-~]+$"  # RFC 6749 scope-token: printable ASCII but space, '"' and '\'
TEXT_MAX, ITEMS_MAX, ITEM_MAX = 200, 100, 200
TTL_MAX = 86_400
ALGS = ("ES256", "RS256", "EdDSA")

_STRICT = ConfigDict(extra="forbid", strict=True)

Text = Annotated[str, Field(min_length=1, max_length=TEXT_MAX, pattern=TEXT)]
Scope = Annotated[str, Field(min_length=1, max_length=ITEM_MAX, pattern=SCOPE)]
Project = Annotated[str, Field(min_length=1, max_length=ITEM_MAX, pattern=TEXT)]
Scopes = Annotated[list[Scope], Field(max_length=ITEMS_MAX)]
Projects = Annotated[list[Project], Field(max_length=ITEMS_MAX)]
Password = Annotated[str, Field(min_length=8, max_length=1024)]


def _whole(value: object) -> object:
    # JSON Schema counts 60.0 as an integer: so does this API (true and "60" stay refused)
    return int(value) if isinstance(value, float) and value.is_integer() else value


Ttl = Annotated[int, BeforeValidator(_whole), Field(ge=1, le=TTL_MAX)]


def _grant_types(v: list[str]) -> list[str]:
    unknown = [g for g in v if g not in GRANTS]
    if unknown:
        raise ValueError(f"unknown grant type {unknown[0]!r}; known: {', '.join(sorted(GRANTS))}")
    return v


GrantTypes = Annotated[list[str], Field(min_length=1, max_length=len(GRANTS) or 1)]
AuthMethod = Literal["client_secret_basic", "client_secret_post", "tls_client_auth", "self_signed_tls_client_auth",
                     "none"]
Audiences = Annotated[list[Text], Field(max_length=ITEMS_MAX)]


def check_auth_method(method: str, subject_dn: str | None, jwks: object = None) -> None:
    if method == "self_signed_tls_client_auth" and jwks is None:
        raise ValueError("token_endpoint_auth_method self_signed_tls_client_auth needs jwks (certificates in x5c)")
    if method == "tls_client_auth" and not subject_dn:
        raise ValueError("token_endpoint_auth_method tls_client_auth needs tls_client_auth_subject_dn")
    if subject_dn and method != "tls_client_auth":
        raise ValueError("tls_client_auth_subject_dn is only for token_endpoint_auth_method tls_client_auth")


# an x5c entry: standard base64 (not base64url) of a DER certificate (RFC 7517 §4.7); compared
# byte for byte with the certificate presented, never parsed
BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
X5c = Annotated[list[Annotated[str, Field(min_length=4, max_length=16_384, pattern=BASE64)]],
                Field(min_length=1, max_length=10)]


class CertificateJwk(BaseModel):
    """A JWK naming a certificate; its other members (kty, kid, n/e, x/y…) are kept as given."""
    model_config = ConfigDict(extra="allow", strict=True)
    x5c: X5c


class Jwks(BaseModel):
    """RFC 7591 `jwks`: self_signed_tls_client_auth's certificates (RFC 8705 §2.2)."""
    model_config = _STRICT
    keys: Annotated[list[CertificateJwk], Field(min_length=1, max_length=16)]


class TenantIn(BaseModel):
    model_config = _STRICT
    id: str = Field(pattern=ID)
    name: Text


class UserIn(BaseModel):
    model_config = _STRICT
    username: Text
    password: Password
    org_id: Text | None = None
    project_ids: Projects = Field(default_factory=list)
    scopes: Scopes = Field(default_factory=list)


class ClientIn(BaseModel):
    model_config = _STRICT
    name: Text
    grant_types: GrantTypes
    scopes: Scopes = Field(default_factory=list)
    access_token_ttl: Ttl | None = None
    # docs/token-service.md#refresh-policy; `client_id`: keep an id the client already has (seed 004)
    refresh_policy: Literal["always", "offline", "never", "held"] = "always"
    refresh_rotation: bool = True
    client_id: str | None = Field(None, pattern=ID)
    # docs/sender-constrained.md: how it authenticates, DPoP required, exchange audiences
    token_endpoint_auth_method: AuthMethod = "client_secret_basic"
    tls_client_auth_subject_dn: Text | None = None
    dpop_bound_access_tokens: bool = False
    exchange_audiences: Audiences = Field(default_factory=list)
    jwks: Jwks | None = None
    tls_client_certificate_bound_access_tokens: bool = False

    _v_grants = field_validator("grant_types")(classmethod(lambda cls, v: _grant_types(v)))

    @model_validator(mode="after")
    def _consistent(self) -> "ClientIn":
        check_auth_method(self.token_endpoint_auth_method, self.tls_client_auth_subject_dn, self.jwks)
        problem = grant_conflict(self.grant_types, self.refresh_policy, self.token_endpoint_auth_method)
        if problem:
            raise ValueError(problem)
        return self


def grant_conflict(grant_types: Any, refresh_policy: str, auth_method: str) -> str | None:
    """Why these grant types do not fit the client's other settings (at creation and on a PATCH)."""
    if refresh_policy == "held" and HELD_REFRESH not in grant_types:
        return f"refresh_policy held needs the grant type {HELD_REFRESH}"
    if auth_method == "none" and "client_credentials" in grant_types:
        return "a public client (token_endpoint_auth_method none) may not use client_credentials"
    if auth_method == "none" and TOKEN_EXCHANGE in grant_types:
        # the grant refuses it (token_exchange.py): its id alone would turn any user's token into others
        return (f"a public client (token_endpoint_auth_method none) may not use {TOKEN_EXCHANGE}: "
                "token exchange needs an authenticated client")
    return None


class ServiceUserIn(BaseModel):
    model_config = _STRICT
    name: Text
    org_id: Text
    project_ids: Projects = Field(default_factory=list)
    scopes: Scopes = Field(default_factory=list)


class CredentialIn(BaseModel):
    model_config = _STRICT
    title: str = Field("", max_length=TEXT_MAX, pattern=f"^$|{TEXT}")
    alg: str = Field("ES256", pattern=f"^({'|'.join(ALGS)})$")


# PATCH bodies: a field left out keeps its value (defaults are never validated, so an
# explicit null fails the field's type and is refused)
class TenantPatch(BaseModel):
    model_config = _STRICT
    name: Text = None  # type: ignore[assignment]
    disabled: bool = None  # type: ignore[assignment]


class ClientPatch(BaseModel):
    model_config = _STRICT
    grant_types: GrantTypes = None  # type: ignore[assignment]
    scopes: Scopes = None  # type: ignore[assignment]
    disabled: bool = None  # type: ignore[assignment]
    dpop_bound_access_tokens: bool = None  # type: ignore[assignment]
    exchange_audiences: Audiences = None  # type: ignore[assignment]
    jwks: Jwks = None  # type: ignore[assignment]  # new certificates (self_signed_tls_client_auth)
    tls_client_certificate_bound_access_tokens: bool = None  # type: ignore[assignment]

    _v_grants = field_validator("grant_types")(classmethod(lambda cls, v: _grant_types(v)))


class UserPatch(BaseModel):
    model_config = _STRICT
    password: Password = None  # type: ignore[assignment]
    org_id: Text | None = None
    project_ids: Projects = None  # type: ignore[assignment]
    scopes: Scopes = None  # type: ignore[assignment]
    disabled: bool = None  # type: ignore[assignment]


class ServiceUserPatch(BaseModel):
    model_config = _STRICT
    project_ids: Projects = None  # type: ignore[assignment]
    scopes: Scopes = None  # type: ignore[assignment]
    disabled: bool = None  # type: ignore[assignment]
