"""Decision: the one result type of the engine (DESIGN rule 3)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True, eq=False)
class Decision:
    allowed: bool
    status: int  # 200, 401 or 403
    reason: str  # metric label: "ok", "missing_token", "expired", "insufficient_scope", ...
    headers: tuple[tuple[str, str], ...] = ()  # set upstream, overwrite semantics
    remove: tuple[str, ...] = ()  # removed from the upstream request
    error: str = ""  # RFC 6750 error code ("" when the token is missing)
    description: str = ""
    scope: str = ""  # scope needed, for insufficient_scope
    metadata: dict[str, Any] = field(default_factory=dict)
    # Transport adapters keep their encoded form here so a cached decision is encoded once.
    wire: Any = None
    wire_http: Any = None

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
