"""The composition root (docs/architecture.md, rule 6): builds every part once and wires them,
in this order: settings → keys → store → engine → token service → transports. Nothing else
constructs a service; sidecar/server.py only runs what is built here."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol

import httpx
from prometheus_client import CollectorRegistry

from authz.cache import TokenCache
from authz.dpop import ProofChecker
from authz.dpop_binding import DpopBinding, FirstUse
from authz.dpop_nonce import Nonces
from authz.dpop_replay import ReplayCache
from authz.engine import Engine
from authz.extract import TokenExtractor
from authz.introspection import ChainIntrospector, Introspector, RemoteIntrospector
from authz.jwks import JwksSource
from authz.keys import KeyRing, key_from_pem
from authz.metrics import AuthzMetrics
from authz.mutation import Mutator
from authz.policy import RuleBook, Rules
from authz.verify import IssuerPolicy, JwtVerifier, StaticKeys
from config import ConfigError
from config.settings import Settings
from sidecar import service
from sidecar.http_app import build_app
from sidecar.oauth.context import OAuthContext
from sidecar.oauth.credentials import Passwords
from sidecar.oauth.introspection import StoreIntrospector
from sidecar.oauth.issuer import TokenIssuer
from sidecar.oauth.metrics import OAuthMetrics
from sidecar.oauth.presented import PresentedTokens
from sidecar.oauth.revoker import Revoker
from sidecar.oauth.throttle import LoginThrottle
from sidecar.oauth.credentials import RemoteCredentials, StoreCredentials
from sidecar.store import Store, open_store
from sidecar.store.once import use_once_within
from sidecar.store.timed import TimedStore
from transport.grpc.authorization import AuthorizationService
from transport.grpc.h2_face import H2Face
from transport.http.check import HttpCheckApp
from transport.http.face import HttpFace
from transport.sockets import Acceptor, ConnectionSource, bind

log = logging.getLogger("sidecar")


def load_keyring(settings: Settings) -> KeyRing:
    if settings.keys_dir:
        return KeyRing.from_dir(settings.keys_dir, settings.signing_key_retention)
    ring = KeyRing.ephemeral_key(settings.signing_alg)
    log.warning("no keys_dir: using an ephemeral signing key; tokens die with this process",
                extra={"kid": ring.current.kid})
    return ring


@dataclass
class Container:
    settings: Settings
    keyring: KeyRing
    http_client: httpx.AsyncClient
    metrics: AuthzMetrics
    cache: TokenCache
    engine: Engine
    authz_service: AuthorizationService
    http_check: HttpCheckApp
    issuer: TokenIssuer
    jwks_sources: list[JwksSource]
    store: Store
    revoker: Revoker
    registry: CollectorRegistry
    oauth: OAuthContext
    app: Any  # the HTTP port's ASGI app
    readiness: list[Callable[[], Awaitable[bool]]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    draining: bool = False
    tracing: Any = None  # sidecar/tracing/provider.py: Tracing, when tracing.enabled

    async def start(self) -> None:
        for source in self.jwks_sources:
            source.start()
        await self.store.start()
        await self.store.subscribe_revocations(self.revoker.apply)

    async def ready(self) -> bool:
        if self.draining or not all(source.loaded for source in self.jwks_sources):
            return False
        for check in self.readiness:
            try:
                if not await check():
                    return False
            except Exception:
                return False
        return True

    async def reconfigure(self, new: Settings) -> None:
        """Apply the reloadable part of `new` (sidecar/reload.py: RELOADABLE): the new engine
        parts are built first (new JWKS fetched once), then swapped in one step with no await
        in between, so that no Check sees half of each. Cached decisions made under other
        issuers or header names are dropped; route changes keep the cache (decisions are
        remembered per rules)."""
        old = self.settings
        reuse = {} if new.jwks != old.jwks else {s.uri: s for s in self.jwks_sources}
        issuers, sources = _issuers(new, self.keyring, self.http_client, self.metrics, reuse)
        fresh = [s for s in sources if s not in self.jwks_sources]
        if fresh:
            await asyncio.gather(*(s.fetch() for s in fresh))
            failed = [s.uri for s in fresh if not s.loaded]
            if failed:  # taking it would make this replica unready, and every other one with it
                raise ConfigError(f"trusted_issuers: jwks_uri {failed[0]} could not be fetched")
        engine, verifier = self.engine, self.engine.verifier
        stale = [s for s in self.jwks_sources if s not in sources]
        # from here to the end: no await, one step for every Check
        verifier.issuers = issuers
        verifier.leeway = new.leeway_seconds
        if new.routes != old.routes:  # unchanged, the same Rules objects keep the cached decisions
            engine.rules = _rules(new)
        if (new.headers, new.remove_authorization, new.dynamic_metadata) != (
                old.headers, old.remove_authorization, old.dynamic_metadata):
            engine.set_mutator(_mutator(new))
            self.authz_service.refresh()
            self.http_check.refresh()
        if new.token_sources != old.token_sources:
            engine.extractor = _extractor(new)
        if (new.trusted_issuers, new.headers, new.remove_authorization, new.dynamic_metadata, new.leeway_seconds) != (
                old.trusted_issuers, old.headers, old.remove_authorization, old.dynamic_metadata,
                old.leeway_seconds):
            self.cache.clear()
        self.jwks_sources = sources
        self.settings = new
        for source in fresh:
            source.start()
        for source in stale:
            await source.stop()

    async def close(self) -> None:
        for source in self.jwks_sources:
            await source.stop()
        for closer in reversed(self.closers):
            try:
                await closer()
            except Exception:
                log.exception("error while closing")
        await self.store.close()
        await self.http_client.aclose()


def build(settings: Settings, keyring: KeyRing | None = None,
          introspectors: list[Introspector] | None = None, span_exporter: Any = None) -> Container:
    """Everything but the transports, which need the sockets (`faces`). `span_exporter`: where
    spans go instead of `tracing.exporter` (tests), when tracing is enabled."""
    tracing = _tracing(settings, span_exporter)
    keyring = keyring or load_keyring(settings)
    metrics = AuthzMetrics()
    registry = CollectorRegistry()
    registry.register(metrics)
    http_client = httpx.AsyncClient(timeout=settings.jwks.timeout_seconds, follow_redirects=False)
    issuers, jwks_sources = _issuers(settings, keyring, http_client, metrics)
    verifier = JwtVerifier(issuers, leeway=settings.leeway_seconds)
    verifier.on_unknown_kid = lambda: setattr(metrics, "unknown_kid", metrics.unknown_kid + 1)
    store = open_store(settings.store_url)
    chain: list[Introspector] = [StoreIntrospector(), *(introspectors or [])]
    if settings.introspection:
        i = settings.introspection
        chain.append(RemoteIntrospector(i.url, i.client_id, i.client_secret.get_secret_value(), http_client,
                                        settings.cache.ttl_seconds))
    cache = TokenCache(settings.cache.max_entries, settings.cache.ttl_seconds, settings.cache.negative_ttl_seconds)
    proofs = _dpop_checker(settings)
    engine = Engine(_extractor(settings), verifier, cache, _rules(settings), _mutator(settings), metrics,
                    introspector=ChainIntrospector(chain), is_revoked=_revocation_check(settings, store),
                    trusted_proxy_hops=settings.trusted_proxy_hops,
                    dpop=DpopBinding(proofs, _dpop_replay(settings, store)))
    issuer = TokenIssuer(keyring, settings.issuer, settings.accepted_audiences[0], settings.max_token_lifetime)
    revoker = Revoker(store, cache)
    oauth = _oauth_context(settings, store, issuer, revoker, http_client, registry, tracing)
    oauth.dpop = proofs
    # token exchange verifies subject and actor tokens as ext_authz does, with the engine's parts
    oauth.presented = PresentedTokens(verifier, engine.introspector, engine.is_revoked)
    # the adapters' engine: traced only when tracing is on; off, they call the engine itself
    checks: Any = engine if tracing is None else _traced_engine(engine, tracing)
    http_check = HttpCheckApp(checks)
    c = Container(
        settings=settings, keyring=keyring, http_client=http_client, metrics=metrics, cache=cache, engine=engine,
        authz_service=AuthorizationService(checks), http_check=http_check, issuer=issuer,
        jwks_sources=jwks_sources, store=store, revoker=revoker, registry=registry, oauth=oauth, app=None,
        readiness=[store.ping], tracing=tracing)
    routes = service.routes(oauth, verifier, keyring, None if tracing is None else _token_span(tracing))
    if tracing is not None:
        c.closers.insert(0, tracing.close)  # closed last: the spans of the shutdown leave too
    c.app = build_app(http_check, c.ready, registry, keyring, routes)
    return c


def _oauth_context(settings: Settings, store: Store, issuer: TokenIssuer, revoker: Revoker,
                   http_client: httpx.AsyncClient, registry: CollectorRegistry, tracing: Any = None) -> OAuthContext:
    passwords = Passwords(settings.password_hashing)
    metrics = OAuthMetrics(registry)
    timed: Store = TimedStore(store, metrics.store_latency)
    if tracing is not None:
        from sidecar.tracing.store import TracedStore

        timed = TracedStore(timed, tracing.tracer, settings.store_url.partition(":")[0])
    credentials = (RemoteCredentials(settings.credentials_service_url, http_client)
                   if settings.credentials_service_url else StoreCredentials(timed, passwords))
    return OAuthContext(settings=settings, store=timed, issuer=issuer, passwords=passwords,
                        credentials=credentials, metrics=metrics, revoker=revoker,
                        throttle=LoginThrottle(settings, timed, metrics))


def _tracing(settings: Settings, exporter: Any = None) -> Any:
    """The worker's tracer provider, or None when tracing is off (nothing of OpenTelemetry is
    imported then). Built per worker: its export thread does not survive a fork."""
    if not settings.tracing.enabled:
        return None
    from sidecar.tracing import require

    require()
    from sidecar.tracing.provider import Tracing

    return Tracing(settings.tracing, exporter)


def _traced_engine(engine: Engine, tracing: Any) -> Any:
    from sidecar.tracing.check import TracedEngine

    return TracedEngine(engine, tracing.tracer)


def _token_span(tracing: Any) -> Callable[[Any], Any]:
    from sidecar.tracing.token import traced_token

    return lambda handle: traced_token(handle, tracing.tracer)


class GrpcFace(Protocol):
    """transport/grpc/h2_face.py: H2Face, or transport/grpc/grpcio_face.py: GrpcioFace."""

    async def start(self) -> None: ...

    async def stop(self, grace: float) -> None: ...


@dataclass
class Faces:
    """The two ports: started by sidecar/server.py once the container has started."""

    grpc: GrpcFace
    http: HttpFace


def faces(c: Container, grpc_source: ConnectionSource | None, http_source: ConnectionSource | None) -> Faces:
    """The transports over `c`; a source None: this process binds that port itself."""
    settings = c.settings
    if settings.grpc_server == "grpcio":
        from transport.grpc.grpcio_face import GrpcioFace  # grpcio costs ~19 MB per worker: only when chosen

        grpc: GrpcFace = GrpcioFace(settings, c.authz_service)
    else:
        grpc = H2Face(settings, c.authz_service, grpc_source or Acceptor(bind(settings.grpc_listen)))
    http = HttpFace(settings, c.app, c.http_check, http_source or Acceptor(bind(settings.http_listen)))
    return Faces(grpc, http)


def _issuers(settings: Settings, keyring: KeyRing, http_client: httpx.AsyncClient, metrics: AuthzMetrics,
             reuse: dict[str, JwksSource] | None = None) -> tuple[dict[str, IssuerPolicy], list[JwksSource]]:
    """Our own issuer and the trusted ones; `reuse`: running JWKS sources by URI (a reload)."""
    # the key ring itself is the key source: keys it publishes or retires apply at once
    own = IssuerPolicy(settings.issuer, keyring, settings.accepted_audiences, require_at_jwt=True)
    issuers = {settings.issuer: own}
    jwks_sources = []
    for trusted in settings.trusted_issuers:
        if trusted.jwks_uri:
            keys: Any = (reuse or {}).get(trusted.jwks_uri) or JwksSource(
                trusted.jwks_uri, http_client, settings.jwks.refresh_seconds,
                settings.jwks.unknown_kid_cooldown_seconds, on_fetch=metrics.jwks_fetch)
            if keys not in jwks_sources:
                jwks_sources.append(keys)
        else:
            keys = StaticKeys({k.kid: key_from_pem(k.kid, k.alg, k.pem) for k in trusted.keys})
        issuers[trusted.issuer] = IssuerPolicy(trusted.issuer, keys, trusted.audiences or settings.accepted_audiences,
                                               require_at_jwt=trusted.require_access_token_typ)
    return issuers, jwks_sources


def _rules(settings: Settings) -> RuleBook:
    return RuleBook((r.path_prefix, Rules.make(r.required_scopes, r.audience, r.allow_anonymous, r.tenant,
                                               r.dpop_base_url))
                    for r in settings.routes)


def _dpop_checker(settings: Settings) -> ProofChecker:
    """DPoP proofs, checked alike at ext_authz and the token endpoint."""
    d = settings.dpop
    nonces = Nonces(d.nonce_secret.get_secret_value().encode(), d.nonce_slot_seconds) \
        if d.nonces and d.nonce_secret is not None else None
    return ProofChecker(d.algs, d.max_age_seconds, d.clock_skew_seconds, nonces)


def _dpop_replay(settings: Settings, store: Store) -> FirstUse:
    """Where ext_authz remembers the jti of DPoP proofs: each worker's memory (an answer now),
    or the store (Redis: every worker and replica; one SET NX with expiry, a single key, so
    any Cluster slot does; an outage denies with 503)."""
    mode = settings.dpop.replay
    if mode == "store" or (mode == "auto" and settings.store_url.startswith(("redis", "rediss"))):
        timeout = settings.dpop.replay_timeout_seconds

        async def first_use(key: str, until: float) -> bool:
            return await use_once_within(store, "dpop:" + key, until, timeout)
        return first_use
    return ReplayCache(settings.dpop.replay_max_entries).first_use


def _extractor(settings: Settings) -> TokenExtractor:
    return TokenExtractor(settings.token_sources.cookie, settings.token_sources.query_param)


def _mutator(settings: Settings) -> Mutator:
    return Mutator(settings.headers, settings.remove_authorization, settings.dynamic_metadata)


def _revocation_check(settings: Settings, store: Store):
    """Only our own tokens can be revoked here; checked on a cache miss, never on a hit."""
    async def is_revoked(identity) -> bool:
        if identity.issuer != settings.issuer:
            return False
        return await store.is_revoked(identity.jti, identity.subject, identity.client_id, identity.issued_at)
    return is_revoked
