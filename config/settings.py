"""The settings model. One frozen object, built once at start (docs/architecture.md, rule 5)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def _listen(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return value


MetadataField = Literal["sub", "jti", "iss", "tenant", "org_id", "project_id", "client_id", "scope", "act",
                        "anonymous"]


class HeaderNames(BaseModel):
    """Names of the identity headers injected for the upstream."""

    model_config = _FROZEN
    tenant: str = "x-tenant-id"
    org: str = "x-org-id"
    project: str = "x-project-id"
    user: str = "x-user-id"
    client: str = "x-client-id"
    scopes: str = "x-scopes"
    actor: str = "x-actor-id"  # the immediate actor (`act.sub`) of a delegated token (RFC 8693)

    @field_validator("*")
    @classmethod
    def _lower(cls, value: str) -> str:
        if not value or any(c in value for c in " :\r\n\0"):
            raise ValueError(f"not a valid header name: {value!r}")
        return value.lower()


class TokenSources(BaseModel):
    """Where ext_authz looks for a token besides Authorization and X-Auth-Token."""

    model_config = _FROZEN
    cookie: str | None = None
    query_param: str | None = None


class CacheSettings(BaseModel):
    model_config = _FROZEN
    max_entries: int = Field(100_000, ge=1)
    ttl_seconds: float = Field(300.0, gt=0)
    negative_ttl_seconds: float = Field(0.0, ge=0, description="0 = no negative caching")


class JwksSettings(BaseModel):
    model_config = _FROZEN
    refresh_seconds: float = Field(300.0, gt=0)
    unknown_kid_cooldown_seconds: float = Field(30.0, ge=0)
    timeout_seconds: float = Field(5.0, gt=0)


class StaticKey(BaseModel):
    """A trusted issuer's public key, pinned to one algorithm."""

    model_config = _FROZEN
    kid: str
    alg: Literal["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
    pem: str


class TrustedIssuer(BaseModel):
    model_config = _FROZEN
    issuer: str
    jwks_uri: str | None = None
    keys: tuple[StaticKey, ...] = ()
    audiences: tuple[str, ...] = ()
    # accept only RFC 9068 explicitly typed access tokens (header typ: at+jwt) from this issuer
    require_access_token_typ: bool = False

    @model_validator(mode="after")
    def _has_keys(self) -> "TrustedIssuer":
        if not self.jwks_uri and not self.keys:
            raise ValueError("needs jwks_uri or keys")
        return self


class RouteRule(BaseModel):
    """Rules by path prefix, for meshes (Istio) that cannot send context_extensions."""

    model_config = _FROZEN
    path_prefix: str
    required_scopes: str = ""
    audience: str = ""
    allow_anonymous: bool = False
    tenant: str = ""
    # requests that entered through a gateway: the URL base clients address (a DPoP proof's
    # htu is this plus the path), e.g. "https://api.example.com"; "" = the scheme and host Envoy saw
    dpop_base_url: str = ""

    @field_validator("dpop_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if value and (not value.startswith(("http://", "https://")) or "?" in value or "#" in value):
            raise ValueError("must be an http(s) URL without query or fragment")
        return value.rstrip("/")


class DpopSettings(BaseModel):
    """DPoP proofs (RFC 9449), at ext_authz and the token endpoint (docs/sender-constrained.md)."""

    model_config = _FROZEN
    # asymmetric algorithms a proof may be signed with (the `algs` of a DPoP challenge)
    algs: tuple[Literal["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"],
                ...] = ("ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA")
    max_age_seconds: float = Field(60.0, gt=0, le=3600)  # how old a proof's iat may be
    clock_skew_seconds: float = Field(5.0, ge=0, le=300)  # how far ahead of our clock its iat may be
    # where a proof's jti is remembered: auto = the store when it is Redis (every worker and
    # replica), else each worker's memory; memory; store
    replay: Literal["auto", "memory", "store"] = "auto"
    replay_max_entries: int = Field(100_000, ge=1000)  # per worker, memory only
    # store only: a slower answer denies with 503 (a stalled Redis must not hold every DPoP Check
    # past Envoy's own ext_authz timeout: the client's socket timeout and retries add up to ~9 s)
    replay_timeout_seconds: float = Field(0.5, gt=0, le=10)
    nonces: bool = False  # server-provided nonces (DPoP-Nonce), needs nonce_secret
    nonce_secret: SecretStr | None = None  # shared by every replica: any of them accepts another's nonce
    nonce_slot_seconds: int = Field(60, ge=5, le=3600)  # a nonce lives one to two slots

    @field_validator("algs", mode="before")
    @classmethod
    def _algs_text(cls, value: object) -> object:
        """AUTH_SIDECAR_DPOP__ALGS=ES256,EdDSA: a comma-separated list."""
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _nonce_secret(self) -> "DpopSettings":
        if self.nonces and (self.nonce_secret is None or len(self.nonce_secret.get_secret_value()) < 16):
            raise ValueError("dpop.nonces needs dpop.nonce_secret (at least 16 characters, the same on every replica)")
        if not self.algs:
            raise ValueError("dpop.algs must name at least one algorithm")
        return self


class Introspection(BaseModel):
    """An external RFC 7662 endpoint for opaque tokens."""

    model_config = _FROZEN
    url: str
    client_id: str
    client_secret: SecretStr
    timeout_seconds: float = Field(3.0, gt=0)


class RefreshSettings(BaseModel):
    model_config = _FROZEN
    # the same refresh token presented again this soon after its rotation gets the same
    # successor (a lost answer, a retry after a 503); later, reuse revokes its family. 0 = off
    reuse_grace_seconds: float = Field(5.0, ge=0, le=300)


class JwtBearerSettings(BaseModel):
    """What a service user's RFC 7523 assertion must carry. The defaults are RFC 7523's; the
    relaxations let assertions built by existing SDKs through (frontier-go: no aud, iss is not
    the service user, 12 h lifetime, kid in the payload too). `sub` is always the key's owner."""

    model_config = _FROZEN
    require_audience: bool = True  # false: an assertion without aud passes (one with aud is still checked)
    max_lifetime: int = Field(3600, ge=1, le=7 * 86_400)  # exp at most this far ahead
    require_iss_is_sub: bool = True  # false: any iss
    kid_from_payload: bool = True  # a payload kid is used when the JWS header has none (the contract; SDKs do so)


class WazoApiSettings(BaseModel):
    """The Wazo-style token API under /api/auth/0.1 (docs/token-service.md#wazo-style-token-api)."""

    model_config = _FROZEN
    enabled: bool = False
    # the client a login without `client_id` is issued for (its tenant, scopes and policy apply)
    default_client_id: str | None = None


class PasswordHashing(BaseModel):
    """argon2id parameters; defaults are OWASP's (m=19 MiB, t=2, p=1)."""

    model_config = _FROZEN
    memory_kib: int = Field(19 * 1024, ge=1024)
    time_cost: int = Field(2, ge=1)
    parallelism: int = Field(1, ge=1)


class KeySettings(BaseModel):
    """The signing keys' life cycle (keys_dir): published -> active -> retired -> gone."""

    model_config = _FROZEN
    # a new key is in the JWKS this long before it signs: longer than any JWKS consumer caches
    publish_ahead: float = Field(900.0, ge=0)
    # how often keys_dir is read for new, changed or removed files
    poll_seconds: float = Field(5.0, gt=0)
    # the longest lifetime of a token this service signs (tokens asking more are cut to it);
    # unset: access_token_ttl_seconds or one day, whichever is longer (a client's maximum)
    max_token_lifetime: int | None = Field(None, ge=1)


class TracingSettings(BaseModel):
    """OpenTelemetry spans (Check, token request, store call); off by default. Needs the
    `tracing` extra (pip install 'auth-sidecar[tracing]') when enabled."""

    model_config = _FROZEN
    enabled: bool = False
    # otlp: OTLP/HTTP protobuf to `endpoint`; console: one JSON object per span on stdout;
    # none: spans are made (and propagate) but not exported
    exporter: Literal["otlp", "console", "none"] = "otlp"
    # the OTLP/HTTP traces URL; unset: the SDK's own (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT /
    # OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4318/v1/traces)
    endpoint: str | None = None
    # the share of new traces recorded; a caller's sampled flag (traceparent) is followed
    sample_ratio: float = Field(1.0, ge=0, le=1)
    service_name: str = Field("auth-sidecar", min_length=1)


class Settings(BaseModel):
    model_config = _FROZEN

    issuer: str = "http://127.0.0.1:8080"
    grpc_listen: str = "0.0.0.0:9191"
    # the gRPC transport: "h2" (HTTP/2 on the worker's event loop) or "grpcio" (grpc.aio)
    grpc_server: Literal["h2", "grpcio"] = "h2"
    http_listen: str = "0.0.0.0:8080"
    workers: int = Field(1, ge=1, le=64)
    store_url: str = "memory://"
    keys_dir: str | None = None
    signing_alg: Literal["ES256", "RS256", "EdDSA"] = "ES256"
    keys: KeySettings = KeySettings()
    admin_token: SecretStr | None = None
    audiences: tuple[str, ...] = ()
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    drain_seconds: float = Field(10.0, ge=0)
    # how often the config file is checked for changes (reloaded like on SIGHUP); 0 = only SIGHUP
    reload_poll_seconds: float = Field(5.0, ge=0)
    # the h2 gRPC transport's connections: preface and SETTINGS within this, or closed
    grpc_handshake_timeout_seconds: float = Field(10.0, gt=0)
    # no stream open and no frame for this long: GOAWAY and closed (0 = never)
    grpc_idle_timeout_seconds: float = Field(300.0, ge=0)
    # unfinished request bytes held across all gRPC connections of a worker
    grpc_max_buffered_bytes: int = Field(16 << 20, ge=1 << 20)
    # SETTINGS_MAX_CONCURRENT_STREAMS the gRPC port (h2) announces (None: 1,024, the hard
    # limit). Low (16), a busy Envoy thread opens more connections, spread over the workers;
    # streams past it are still served up to 1,024
    grpc_max_concurrent_streams: int | None = Field(None, ge=1, le=1024)
    # a request must arrive whole (line, headers, body) within this long of its first byte
    http_read_timeout_seconds: float = Field(10.0, gt=0)
    # proxies in front that append to X-Forwarded-For (Envoy's xff_num_trusted_hops): the client
    # address is the entry this many from the right; 0 = the TCP peer
    trusted_proxy_hops: int = Field(0, ge=0, le=16)

    # ext_authz
    leeway_seconds: float = Field(30.0, ge=0, le=600)
    token_sources: TokenSources = TokenSources()
    headers: HeaderNames = HeaderNames()
    remove_authorization: bool = False
    # gRPC mode: the claims an allow also hands Envoy as dynamic metadata (RBAC, access logs).
    # None by default: Envoy spends ~15-20 µs per request storing eight fields (bench/README.md)
    dynamic_metadata: tuple[MetadataField, ...] = ()
    cache: CacheSettings = CacheSettings()
    jwks: JwksSettings = JwksSettings()
    trusted_issuers: tuple[TrustedIssuer, ...] = ()
    routes: tuple[RouteRule, ...] = ()
    introspection: Introspection | None = None

    # token service
    access_token_ttl_seconds: int = Field(900, ge=1)
    refresh_token_ttl_seconds: int = Field(86_400, ge=1)
    offline_refresh_token_ttl_seconds: int = Field(30 * 86_400, ge=1)
    refresh: RefreshSettings = RefreshSettings()
    jwt_bearer: JwtBearerSettings = JwtBearerSettings()
    wazo_api: WazoApiSettings = WazoApiSettings()
    password_hashing: PasswordHashing = PasswordHashing()
    credentials_service_url: str | None = None
    # failed logins, per (account, source address) and per source address: past the free ones,
    # each failure delays the next attempt from there (1, 2, 4 … s, capped; 429 until then)
    login_max_failures: int = Field(5, ge=1)
    login_source_max_failures: int = Field(30, ge=1)
    login_delay_seconds: float = Field(1.0, gt=0)
    login_lockout_seconds: int = Field(60, ge=1)
    login_failure_window_seconds: int = Field(900, ge=1)
    max_body_bytes: int = Field(65_536, ge=1024)
    tracing: TracingSettings = TracingSettings()
    dpop: DpopSettings = DpopSettings()

    _check_listen = field_validator("grpc_listen", "http_listen")(lambda cls, v: _listen(v))

    @field_validator("store_url")
    @classmethod
    def _store(cls, value: str) -> str:
        schemes = ("memory://", "redis://", "rediss://", "redis+sentinel://", "redis+cluster://")
        if not value.startswith(schemes):
            raise ValueError(f"expected one of {', '.join(schemes)}; got {value!r}")
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @property
    def max_token_lifetime(self) -> int:
        """The longest a token we sign lives: a retired key is kept this long (plus leeway)."""
        return self.keys.max_token_lifetime or max(self.access_token_ttl_seconds, 86_400)

    @property
    def signing_key_retention(self) -> float:
        """How long a retired signing key stays: past the last token it signed, leeway included."""
        return self.max_token_lifetime + self.leeway_seconds

    @property
    def accepted_audiences(self) -> tuple[str, ...]:
        """Audiences ext_authz accepts: configured ones, else our own issuer."""
        return self.audiences or (self.issuer,)
