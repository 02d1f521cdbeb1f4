"""Token-service metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class OAuthMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.issued = Counter("auth_sidecar_tokens_issued", "access tokens issued", ["grant_type", "client_id"],
                              registry=registry)
        self.failures = Counter("auth_sidecar_token_failures", "token endpoint errors", ["error"], registry=registry)
        self.reuse = Counter("auth_sidecar_refresh_reuse_detected", "refresh tokens used twice (family revoked)",
                             registry=registry)
        self.login_failures = Counter("auth_sidecar_login_failures", "failed client or user authentications",
                                      ["kind"], registry=registry)
        self.throttled = Counter("auth_sidecar_login_throttled",
                                 "login attempts refused with 429 while a failure delay runs, by the key that "
                                 "was blocked: (account, source address) or the source address",
                                 ["kind", "by"], registry=registry)
        self.store_latency = Histogram("auth_sidecar_store_seconds", "store call latency", ["op"],
                                       registry=registry)
