"""The composition root (DESIGN rule 6): builds every service once and wires them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import httpx

from authz.cache import TokenCache
from authz.engine import Engine
from authz.extract import TokenExtractor
from transport.grpc.authorization import AuthorizationService
from authz.http_check import HttpCheckApp
from authz.introspection import ChainIntrospector, Introspector, RemoteIntrospector
from authz.jwks import JwksSource
from authz.keys import KeyRing, key_from_pem
from authz.metrics import AuthzMetrics
from authz.mutation import Mutator
from authz.policy import RuleBook, Rules
from authz.verify import IssuerPolicy, JwtVerifier, StaticKeys
from config.settings import Settings
from sidecar.oauth.introspection import StoreIntrospector
from sidecar.oauth.issuer import TokenIssuer
from sidecar.oauth.revoker import Revoker
from sidecar.store import Store, open_store

log = logging.getLogger("sidecar")


def load_keyring(settings: Settings) -> KeyRing:
    if settings.keys_dir:
        return KeyRing.from_dir(settings.keys_dir)
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
    readiness: list[Callable[[], Awaitable[bool]]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)
    draining: bool = False

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
          introspectors: list[Introspector] | None = None) -> Container:
    keyring = keyring or load_keyring(settings)
    metrics = AuthzMetrics()
    http_client = httpx.AsyncClient(timeout=settings.jwks.timeout_seconds, follow_redirects=False)
    own = IssuerPolicy(settings.issuer, StaticKeys(keyring.by_kid), settings.accepted_audiences,
                       require_at_jwt=True)
    issuers = {settings.issuer: own}
    jwks_sources = []
    for trusted in settings.trusted_issuers:
        if trusted.jwks_uri:
            keys: Any = JwksSource(trusted.jwks_uri, http_client, settings.jwks.refresh_seconds,
                                   settings.jwks.unknown_kid_cooldown_seconds, on_fetch=metrics.jwks_fetch)
            jwks_sources.append(keys)
        else:
            keys = StaticKeys({k.kid: key_from_pem(k.kid, k.alg, k.pem) for k in trusted.keys})
        issuers[trusted.issuer] = IssuerPolicy(trusted.issuer, keys, trusted.audiences or settings.accepted_audiences)
    verifier = JwtVerifier(issuers, leeway=settings.leeway_seconds)
    verifier.on_unknown_kid = lambda: setattr(metrics, "unknown_kid", metrics.unknown_kid + 1)
    store = open_store(settings.store_url)
    chain: list[Introspector] = [StoreIntrospector(), *(introspectors or [])]
    if settings.introspection:
        i = settings.introspection
        chain.append(RemoteIntrospector(i.url, i.client_id, i.client_secret.get_secret_value(), http_client,
                                        settings.cache.ttl_seconds))
    cache = TokenCache(settings.cache.max_entries, settings.cache.ttl_seconds, settings.cache.negative_ttl_seconds)
    rules = RuleBook((r.path_prefix, Rules.make(r.required_scopes, r.audience, r.allow_anonymous, r.tenant))
                     for r in settings.routes)
    engine = Engine(TokenExtractor(settings.token_sources.cookie, settings.token_sources.query_param),
                    verifier, cache, rules, Mutator(settings.headers, settings.remove_authorization), metrics,
                    introspector=ChainIntrospector(chain), is_revoked=_revocation_check(settings, store))
    return Container(
        settings=settings, keyring=keyring, http_client=http_client, metrics=metrics, cache=cache, engine=engine,
        authz_service=AuthorizationService(engine), http_check=HttpCheckApp(engine),
        issuer=TokenIssuer(keyring, settings.issuer, settings.accepted_audiences[0]), jwks_sources=jwks_sources,
        store=store, revoker=Revoker(store, cache), readiness=[store.ping])


def _revocation_check(settings: Settings, store: Store):
    """Only our own tokens can be revoked here; checked on a cache miss, never on a hit."""
    async def is_revoked(identity) -> bool:
        if identity.issuer != settings.issuer:
            return False
        return await store.is_revoked(identity.jti, identity.subject, identity.client_id, identity.issued_at)
    return is_revoked
