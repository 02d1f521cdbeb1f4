"""Scope rules: a request may narrow what it is allowed, never widen it."""

from __future__ import annotations

from typing import Iterable

from sidecar.oauth.errors import InvalidScope

OFFLINE = "offline_access"


def parse_scope(scope: str | None) -> set[str] | None:
    """A `scope` parameter's words; None when it is absent or empty."""
    if scope is None or scope == "":
        return None
    words = scope.split(" ")
    if any(not w or any(c < "!" or c == '"' or c == "\\" or c > "~" for c in w) for w in words):
        raise InvalidScope("scope must be space-separated printable tokens (RFC 6749 §3.3)")
    return set(words)


def grant(requested: str | None, *allowed: Iterable[str] | None) -> set[str]:
    """The scopes granted: all allowed ones when none are requested, else the request if allowed."""
    permitted: set[str] | None = None
    for limit in allowed:
        if limit is not None:
            permitted = set(limit) if permitted is None else permitted & set(limit)
    permitted = permitted or set()
    wanted = parse_scope(requested)
    if wanted is None:
        return permitted
    extra = wanted - permitted
    if extra:
        raise InvalidScope(f"scope not allowed: {' '.join(sorted(extra))}")
    return wanted
