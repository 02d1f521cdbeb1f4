"""What every grant and endpoint of the token service needs, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config.settings import Settings
from sidecar.oauth.credentials import CredentialChecker, Passwords
from sidecar.oauth.issuer import TokenIssuer
from sidecar.oauth.metrics import OAuthMetrics
from sidecar.oauth.presented import PresentedTokens
from sidecar.oauth.revoker import Revoker
from sidecar.oauth.throttle import LoginThrottle
from sidecar.store import Store


@dataclass
class OAuthContext:
    settings: Settings
    store: Store
    issuer: TokenIssuer
    passwords: Passwords
    credentials: CredentialChecker
    metrics: OAuthMetrics
    revoker: Revoker
    throttle: LoginThrottle
    presented: PresentedTokens | None = None  # ext_authz's verification, for token exchange
    dpop: Any = None  # authz/dpop.py: ProofChecker, shared with ext_authz (the composition root sets it)

    @property
    def token_endpoint(self) -> str:
        return self.settings.issuer + "/oauth/token"
