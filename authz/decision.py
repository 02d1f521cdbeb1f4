"""Decision: the one result type of the engine (DESIGN rule 3)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True, eq=False)
class Decision:
    allowed: bool
    status: int  # 200, 401 or 403
    reason: str  # metric label: "ok", "missing_token", "expired", "insufficient_scope", ...
    error: str = ""  # RFC 6750 error code ("" when the token is missing)
    description: str = ""
    scope: str = ""  # scope needed, for insufficient_scope
    # An allow keeps who and which project; its headers are derived when it is encoded.
    identity: Any = None
    project: str | None = None
    mutator: Any = None
    # A personal allow is shared by every token of one shape (same tenant, org, client,
    # scopes, issuer, project): `identity` is a representative whose own `sub`/`jti` are never
    # used, and transports add the requesting token's own part per response. Cached tokens
    # then hold no decision of their own (memory per cached token, bench row `rss_100k`).
    personal: bool = False
    # Transport adapters keep their encoded form here so a decision is encoded once.
    wire: Any = None
    wire_http: Any = None
    wire_raw: Any = None

    def own(self, identity: Any) -> "Decision":
        """This decision made whole for one token, its own headers included."""
        if not self.personal:
            return self
        return Decision(True, 200, self.reason, identity=identity, project=self.project, mutator=self.mutator)

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """Headers to set upstream, overwrite semantics (a personal one: all but the token's own)."""
        return self.mutator.headers(self.identity, self.project, own=not self.personal) if self.mutator else ()

    @property
    def remove(self) -> tuple[str, ...]:
        """Headers removed from the upstream request."""
        return self.mutator.remove(self.identity, self.project) if self.mutator else ()

    @property
    def metadata(self) -> dict[str, Any]:
        return self.mutator.metadata(self.identity, self.project, own=not self.personal) if self.mutator else {}

    @property
    def www_authenticate(self) -> str:
        parts = ['Bearer realm="auth-sidecar"']
        if self.error and self.error in ("invalid_token", "insufficient_scope", "invalid_request"):
            parts.append(f'error="{self.error}"')
            if self.description:
                parts.append('error_description="' + self.description.replace('"', "'") + '"')
            if self.scope:
                parts.append(f'scope="{self.scope}"')
        return ", ".join(parts)

    @property
    def body(self) -> bytes:
        if not self.error:
            return json.dumps({"error": "unauthorized", "error_description": self.description}).encode()
        return json.dumps({"error": self.error, "error_description": self.description}).encode()


def unauthorized(description: str, reason: str, error: str = "invalid_token") -> Decision:
    return Decision(False, 401, reason, error=error, description=description)


def forbidden(description: str, reason: str, error: str = "access_denied", scope: str = "") -> Decision:
    return Decision(False, 403, reason, error=error, description=description, scope=scope)


MISSING_TOKEN = unauthorized("a bearer token is required", "missing_token", error="")
