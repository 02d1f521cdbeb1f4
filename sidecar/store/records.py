"""What the token service keeps. Plain dataclasses, JSON-friendly; secrets only as digests."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


def to_dict(record: Any) -> dict[str, Any]:
    return dataclasses.asdict(record)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    created: float
    disabled: bool = False  # no token for any of its clients, users or service users


@dataclass(frozen=True)
class Client:
    client_id: str
    tenant: str
    name: str
    grant_types: tuple[str, ...]
    scopes: tuple[str, ...]
    secret_digest: str  # sha256 hex of the secret
    created: float
    access_token_ttl: int | None = None
    service_user_id: str | None = None  # set for a service user's secret
    title: str = ""
    # when a password login gets a refresh token (docs/token-service.md#refresh-policy):
    # "always" (the default, as before the setting existed), "offline", "never" or "held"
    refresh_policy: str = "always"
    refresh_rotation: bool = True  # False: a refresh keeps the same refresh token (Wazo's own behaviour)
    disabled: bool = False  # no token for it (invalid_client)
    tenant_disabled: bool = False  # its tenant's `disabled`, copied here: the token path reads no tenant
    # how it authenticates at the token endpoint (RFC 7591 names; docs/sender-constrained.md):
    # client_secret_basic / client_secret_post (either is accepted), tls_client_auth (with
    # tls_client_auth_subject_dn), self_signed_tls_client_auth, none (a public client: no secret)
    token_endpoint_auth_method: str = "client_secret_basic"
    tls_client_auth_subject_dn: str | None = None
    dpop_bound_access_tokens: bool = False  # RFC 9449 §5.2: a token request without a DPoP proof is refused
    exchange_audiences: tuple[str, ...] = ()  # RFC 8693: audiences it may ask for by token exchange
    # RFC 8705 §2.2: self_signed_tls_client_auth's registered certificates, an RFC 7517 JWK Set
    # whose keys carry `x5c` (the first certificate of each is compared); kept as given
    jwks: dict[str, Any] | None = field(default=None, hash=False)
    # RFC 8705 §3.4: tokens bound to the certificate it presents, whatever its auth method
    tls_client_certificate_bound_access_tokens: bool = False


@dataclass(frozen=True)
class User:
    id: str
    tenant: str
    username: str
    password_hash: str
    created: float
    org_id: str | None = None
    project_ids: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    disabled: bool = False  # no token for them (invalid_grant)


@dataclass(frozen=True)
class ServiceUser:
    id: str
    tenant: str
    name: str
    org_id: str
    created: float
    project_ids: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    disabled: bool = False  # no token for it, by secret or by key
    tenant_disabled: bool = False  # its tenant's `disabled`, copied here: the token path reads no tenant


@dataclass(frozen=True)
class ServiceKey:
    kid: str
    service_user_id: str
    title: str
    alg: str
    public_jwk: dict[str, Any] = field(hash=False)
    created: float = 0.0


@dataclass(frozen=True)
class RefreshRecord:
    """One refresh token of a family; the token itself is never stored, only its digest."""

    digest: str
    family: str
    client_id: str
    tenant: str
    subject: str
    scope: str
    family_expires_at: float  # absolute: rotation never extends it
    created: float
    used: bool = False
    org_id: str | None = None
    project_ids: tuple[str, ...] = ()
    held: bool = False  # kept by the service, traded by access token (grants/held_refresh.py)
    jkt: str | None = None  # a public client's DPoP key (RFC 9449 §5): a refresh needs a proof by it
    # a public client's certificate (RFC 8705 §4, `x5t#S256`): a refresh needs the same one.
    # Records stored before the field existed read as None: not bound, as they were
    x5t_s256: str | None = None
