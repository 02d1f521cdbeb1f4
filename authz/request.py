"""AuthRequest: the plain-Python view of one request to authorize, whatever the transport."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple


class Origin(NamedTuple):
    """Where the request came from, as Envoy saw it: read only by the sender-constrained checks
    (DPoP's `htu`, a certificate-bound token), so not on every Check; but on every one of those
    (a tuple: a tenth of a frozen dataclass's cost to build)."""

    scheme: str  # "https" or "http"
    host: str  # the authority the client addressed (`:authority` / Host)
    certificate: str = ""  # the client certificate's URL-encoded PEM ("" when none or unknown)


def _from_headers(headers: Any) -> Origin:
    """HTTP-mode checks carry only the original headers."""
    return Origin(headers.get("x-forwarded-proto", "http"), headers.get(":authority") or headers.get("host", ""))


@dataclass(slots=True)
class AuthRequest:
    """Headers are lower-cased names (Envoy already sends them so); path includes the query.
    `source` is the transport's own description of the request and `read_origin` its reader
    (a plain function, so building a request costs no closure): the Origin is read on demand."""

    headers: dict[str, str]
    path: str = "/"
    method: str = "GET"
    context_extensions: dict[str, str] = field(default_factory=dict)
    source: Any = None
    read_origin: Callable[[Any], Origin] | None = None

    def origin(self) -> Origin:
        if self.read_origin is None:
            return _from_headers(self.headers)
        return self.read_origin(self.source)
