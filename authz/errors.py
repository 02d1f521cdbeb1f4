"""Why a token was refused. Raised inside verification, turned into a 401 by the engine."""


class TokenError(Exception):
    """The token is missing its mark: malformed, expired, untrusted, revoked (→ 401)."""

    def __init__(self, description: str, reason: str = "invalid_token") -> None:
        super().__init__(description)
        self.description = description
        self.reason = reason  # short metric label, e.g. "expired", "bad_signature"


class Unavailable(Exception):
    """Something a decision needs (the revocation store) did not answer: deny with 503, try later."""


class NotMine(Exception):
    """An authenticator does not recognise the token (docs/architecture.md, rule 2): try the next one."""
