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
        self.store_latency = Histogram("auth_sidecar_store_seconds", "store call latency", ["op"],
                                       registry=registry)
