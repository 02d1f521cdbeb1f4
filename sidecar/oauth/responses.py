"""Answers of the token service: JSON, never cached (RFC 6749 §5.1)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from sidecar.oauth.errors import OAuthError

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def ok(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=NO_STORE)


def error(exc: OAuthError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status_code, headers={**NO_STORE, **exc.headers})
