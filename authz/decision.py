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
    # An allow keeps who and which project; its headers are derived when it is encoded, so a
    # cached decision holds references, not copies (memory per cached token).
    identity: Any = None
    project: str | None = None
    mutator: Any = None
    # Transport adapters keep their encoded form here so a cached decision is encoded once.
    wire: Any = None
    wire_http: Any = None

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """Headers to set upstream, overwrite semantics."""
        return self.mutator.headers(self.identity, self.project) if self.mutator else ()

    @property
    def remove(self) -> tuple[str, ...]:
        """Headers removed from the upstream request."""
        return self.mutator.remove(self.identity, self.project) if self.mutator else ()

    @property
    def metadata(self) -> dict[str, Any]:
        return self.mutator.metadata(self.identity, self.project) if self.mutator else {}

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
