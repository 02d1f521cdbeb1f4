"""The verification cache: bounded, hot tokens kept, never past exp, evictable by revocation."""

from __future__ import annotations

from authz.cache import TokenCache, token_key
from authz.decision import unauthorized
from authz.identity import Identity


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def identity(n: int, exp: float = 10_000.0, **claims) -> Identity:
    return Identity.from_claims({"sub": f"user-{n}", "jti": f"jti-{n}", "client_id": "app", "scope": "read",
                                 **claims}, expires_at=exp)


def test_size_stays_bounded_and_the_oldest_goes_first():
    cache = TokenCache(max_entries=100, ttl_seconds=300, clock=Clock())
    for n in range(1_000):
        cache.put(token_key(f"t{n}"), identity(n))
    assert len(cache) == 100
    assert cache.get(token_key("t0")) is None
    assert cache.get(token_key("t999")).identity.subject == "user-999"


def test_a_token_hit_since_the_hand_passed_survives_eviction():
    cache = TokenCache(max_entries=10, ttl_seconds=300, clock=Clock())
    for n in range(10):
        cache.put(token_key(f"t{n}"), identity(n))
    assert cache.get(token_key("t0")) is not None  # t0 is hot
    for n in range(10, 19):
        cache.put(token_key(f"t{n}"), identity(n))
    assert cache.get(token_key("t0")) is not None
    assert cache.get(token_key("t1")) is None


def test_entry_never_outlives_exp_nor_the_ttl():
    clock = Clock()
    cache = TokenCache(max_entries=10, ttl_seconds=300, clock=clock)
    cache.put(token_key("short"), identity(1, exp=clock.now + 5))
    cache.put(token_key("long"), identity(2, exp=clock.now + 3_600))
    clock.now += 6
    assert cache.get(token_key("short")) is None
    assert cache.get(token_key("long")) is not None
    clock.now += 300
    assert cache.get(token_key("long")) is None
    assert len(cache) == 0


def test_expired_entries_are_swept_by_later_inserts_without_a_lookup():
    clock = Clock()
    cache = TokenCache(max_entries=1_000, ttl_seconds=300, clock=clock)
    for n in range(50):
        cache.put(token_key(f"old{n}"), identity(n, exp=clock.now + 5))
    clock.now += 10
    for n in range(50):
        cache.put(token_key(f"new{n}"), identity(100 + n))
    assert len(cache) == 50


def test_an_already_expired_token_is_not_stored():
    clock = Clock()
    cache = TokenCache(max_entries=10, ttl_seconds=300, clock=clock)
    cache.put(token_key("t"), identity(1, exp=clock.now - 1))
    assert len(cache) == 0


def test_revocation_evicts_by_jti_subject_or_client_and_reinsert_works():
    cache = TokenCache(max_entries=100, ttl_seconds=300, clock=Clock())
    for n in range(10):
        cache.put(token_key(f"t{n}"), identity(n, client_id="app" if n < 5 else "other"))
    assert cache.evict(jti="jti-0") == 1
    assert cache.evict(subject="user-1") == 1
    assert cache.evict(client_id="other") == 5
    assert len(cache) == 3
    for _ in range(300):
        cache.put(token_key("t0"), identity(0))
        cache.evict(jti="jti-0")
    assert len(cache) == 3
    cache.put(token_key("t0"), identity(0))
    assert cache.get(token_key("t0")).identity.jti == "jti-0"


def test_refusals_are_cached_only_when_negative_caching_is_on():
    off = TokenCache(max_entries=10, ttl_seconds=300, clock=Clock())
    off.put_refusal(token_key("bad"), unauthorized("bad signature", "bad_signature"))
    assert off.get(token_key("bad")) is None
    on = TokenCache(max_entries=10, ttl_seconds=300, negative_ttl_seconds=5, clock=Clock())
    on.put_refusal(token_key("bad"), unauthorized("bad signature", "bad_signature"))
    entry = on.get(token_key("bad"))
    assert entry.identity is None and entry.memo.reason == "bad_signature"


def test_tokens_of_one_shape_share_their_profile():
    a, b = identity(1, tenant="acme"), identity(2, tenant="acme")
    assert a.profile is b.profile and a.subject != b.subject
    assert identity(3, tenant="other").profile is not a.profile
