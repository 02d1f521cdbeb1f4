"""AuthRequest: the plain-Python view of one request to authorize, whatever the transport."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class AuthRequest:
    """Headers are lower-cased names (Envoy already sends them so); path includes the query."""

    headers: dict[str, str]
    path: str = "/"
    method: str = "GET"
    context_extensions: dict[str, str] = field(default_factory=dict)
