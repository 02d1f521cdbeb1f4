"""One exception class per RFC 6749 §5.2 error, caught in one place (the endpoint)."""

from __future__ import annotations


class OAuthError(Exception):
    error = "invalid_request"
    status_code = 400

    def __init__(self, description: str, headers: dict[str, str] | None = None, status_code: int | None = None):
        super().__init__(description)
        self.description = description
        self.headers = headers or {}
        if status_code is not None:
            self.status_code = status_code

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    error = "invalid_client"
    status_code = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidTarget(OAuthError):
    error = "invalid_target"  # RFC 8707 §2, RFC 8693 §2.2.2: an audience or resource not allowed


class UnsupportedTokenType(OAuthError):
    error = "unsupported_token_type"  # RFC 7009 §2.2.1


class InvalidDpopProof(OAuthError):
    error = "invalid_dpop_proof"  # RFC 9449 §5


class UseDpopNonce(OAuthError):
    error = "use_dpop_nonce"  # RFC 9449 §8: retry with the nonce in the DPoP-Nonce header


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status_code = 503


def throttled(error: type[OAuthError], retry_after: int) -> OAuthError:
    """Too many failed attempts: the RFC error code, status 429 and Retry-After."""
    return error(f"too many failed attempts; retry after {retry_after} seconds",
                 headers={"Retry-After": str(retry_after)}, status_code=429)
