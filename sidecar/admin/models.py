"""Admin request bodies. Unknown fields are refused; errors name the field (→ 422)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sidecar.oauth.grants import GRANTS
from sidecar.oauth.grants.base import HELD_REFRESH

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _scope_words(values: list[str]) -> list[str]:
    for v in values:
        if not v or any(c < "!" or c in '"\\' or c > "~" for c in v):
            raise ValueError(f"not a valid scope: {v!r}")
    return values


def _plain(value: str | None) -> str | None:
    if value is not None and any(c in value for c in "\r\n\0"):
        raise ValueError("must not contain control characters")
    return value


class TenantIn(BaseModel):
    model_config = _STRICT
    id: str = Field(pattern=_ID.pattern)
    name: str = Field(min_length=1, max_length=200)


class UserIn(BaseModel):
    model_config = _STRICT
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=8, max_length=1024)
    org_id: str | None = Field(None, max_length=200)
    project_ids: list[str] = Field(default_factory=list, max_length=100)
    scopes: list[str] = Field(default_factory=list, max_length=100)

    _v_scopes = field_validator("scopes")(classmethod(lambda cls, v: _scope_words(v)))
    _v_plain = field_validator("username", "org_id")(classmethod(lambda cls, v: _plain(v)))

    @field_validator("project_ids")
    @classmethod
    def _projects(cls, v: list[str]) -> list[str]:
        for p in v:
            _plain(p)
        return v


class ClientIn(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1, max_length=200)
    grant_types: list[str] = Field(min_length=1)
    scopes: list[str] = Field(default_factory=list, max_length=100)
    access_token_ttl: int | None = Field(None, ge=1, le=86_400)
    # docs/token-service.md#refresh-policy; `client_id`: keep an id the client already has (seed 004)
    refresh_policy: Literal["always", "offline", "never", "held"] = "always"
    refresh_rotation: bool = True
    client_id: str | None = Field(None, pattern=_ID.pattern)

    _v_scopes = field_validator("scopes")(classmethod(lambda cls, v: _scope_words(v)))

    @field_validator("grant_types")
    @classmethod
    def _grants(cls, v: list[str]) -> list[str]:
        unknown = [g for g in v if g not in GRANTS]
        if unknown:
            raise ValueError(f"unknown grant type {unknown[0]!r}; known: {', '.join(sorted(GRANTS))}")
        return v

    @model_validator(mode="after")
    def _held(self) -> "ClientIn":
        if self.refresh_policy == "held" and HELD_REFRESH not in self.grant_types:
            raise ValueError(f"refresh_policy held needs the grant type {HELD_REFRESH}")
        return self


class ServiceUserIn(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1, max_length=200)
    org_id: str = Field(min_length=1, max_length=200)
    project_ids: list[str] = Field(default_factory=list, max_length=100)
    scopes: list[str] = Field(default_factory=list, max_length=100)

    _v_scopes = field_validator("scopes")(classmethod(lambda cls, v: _scope_words(v)))
    _v_plain = field_validator("org_id")(classmethod(lambda cls, v: _plain(v)))


class CredentialIn(BaseModel):
    model_config = _STRICT
    title: str = Field("", max_length=200)
    alg: str = Field("ES256", pattern="^(ES256|RS256|EdDSA)$")
