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


@dataclass(frozen=True)
class ServiceUser:
    id: str
    tenant: str
    name: str
    org_id: str
    created: float
    project_ids: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()


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
