"""The signing keys' life cycle, computed from activation times and the clock alone."""

from __future__ import annotations

import math

import pytest

from authz import key_schedule as ks
from authz.keys import KeyRing, SigningKey, generate_private_key, thumbprint_kid


def key(name: str) -> SigningKey:
    private = generate_private_key("ES256")
    return SigningKey(thumbprint_kid(private.public_key()), "ES256", private, ks.activation_from_name(name), name)


def test_file_names_carry_the_activation_time():
    assert ks.activation_from_name("20261128T091500Z-abc.pem") == 1795857300.0
    assert ks.name_for(1795857300.0, "abc") == "20261128T091500Z-abc.pem"
    assert ks.name_for(1795857299.2, "abc") == "20261128T091500Z-abc.pem"  # never early
    for legacy in ("signing-key.pem", "20261128T091500-abc.pem", "20261399T999999Z-x.pem"):
        assert ks.activation_from_name(legacy) is None


def test_published_active_retired_gone():
    acts, retention = [100.0, 200.0], 50.0
    assert ks.plan(acts, 150, retention).states == (ks.ACTIVE, ks.PUBLISHED)
    assert ks.plan(acts, 150, retention).next_change == 200
    at_switch = ks.plan(acts, 200, retention)
    assert at_switch.states == (ks.RETIRED, ks.ACTIVE) and at_switch.retires_at[0] == 250
    assert at_switch.next_change == 250
    assert ks.plan(acts, 250, retention).states == (ks.GONE, ks.ACTIVE)
    assert ks.plan(acts, 250, retention).next_change == math.inf


def test_keys_without_activation_are_active_from_the_start():
    # two legacy keys: the last by name signs, the other stays while its file is there
    p = ks.plan([None, None], 1e12, 10)
    assert p.states == (ks.RETIRED, ks.ACTIVE) and p.retires_at == (None, None) and not p.early
    # a scheduled key after them retires the signing legacy key on its own schedule
    p = ks.plan([None, None, 100.0], 200, 10)
    assert p.states == (ks.RETIRED, ks.GONE, ks.ACTIVE)


def test_no_key_active_yet_the_earliest_signs():
    p = ks.plan([100.0, 200.0], 50, 10)
    assert p.early and p.states == (ks.ACTIVE, ks.PUBLISHED) and p.next_change == 100


def test_ring_switches_on_time_and_drops_gone_keys():
    now = [1000.0]
    old, new = key("19700101T001640Z-a.pem"), key("19700101T001800Z-b.pem")  # 1000 s, 1080 s
    ring = KeyRing([new, old], retention=30, clock=lambda: now[0])
    assert ring.current.kid == old.kid and set(ring.by_kid) == {old.kid, new.kid}
    assert [k["kid"] for k in ring.jwks()["keys"]] == [new.kid, old.kid]
    now[0] = 1080.0
    assert ring.current.kid == new.kid  # the signing path itself notices the time
    assert old.kid in ring.by_kid
    now[0] = 1110.0
    ring.tick()
    assert list(ring.by_kid) == [new.kid] and [k["kid"] for k in ring.jwks()["keys"]] == [new.kid]


@pytest.mark.asyncio
async def test_ring_is_the_own_key_source():
    ring = KeyRing.ephemeral_key("ES256")
    assert (await ring.key_for(ring.current.kid)).kid == ring.current.kid
    assert await ring.key_for(None) is not None  # one key: a token without kid finds it
    assert await ring.key_for("nope") is None
