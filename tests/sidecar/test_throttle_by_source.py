"""Failed logins slow down the address they come from, not the account: an attacker guessing a
client's secret or a user's password is refused (429 Retry-After) while the real client or
user at another address still gets in. Addresses are real: clients bind 127.0.0.x, or with
`trusted_proxy_hops` an X-Forwarded-For entry; replicas sharing Redis share the counts."""

from __future__ import annotations

import time

import httpx
import pytest
from starlette.requests import Request

from sidecar.source_address import source_address
from sidecar.store.base import Penalty
from sidecar.store.memory import MemoryStore
from sidecar.store.redis_store import RedisStore
from tests.support.admin_sidecar import admin_sidecar

LIMITS = {"AUTH_SIDECAR_LOGIN_MAX_FAILURES": "3", "AUTH_SIDECAR_LOGIN_SOURCE_MAX_FAILURES": "8",
          "AUTH_SIDECAR_LOGIN_DELAY_SECONDS": "30", "AUTH_SIDECAR_LOGIN_LOCKOUT_SECONDS": "120"}


@pytest.fixture(scope="module")
def by_peer(tmp_path_factory):
    s = admin_sidecar(tmp_path_factory.mktemp("peer"), LIMITS)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, redis_server):
    """Two replicas behind one proxy hop, sharing Redis."""
    env = {**LIMITS, "AUTH_SIDECAR_TRUSTED_PROXY_HOPS": "1"}
    a = admin_sidecar(tmp_path_factory.mktemp("replica-a"), env, store_url=redis_server.url)
    b = admin_sidecar(tmp_path_factory.mktemp("replica-b"), env, store_url=redis_server.url)
    yield a, b
    a.stop()
    b.stop()


def from_address(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def client_login(http: httpx.Client, base: str, client_id: str, secret: str, **headers) -> httpx.Response:
    return http.post(base + "/oauth/token", auth=(client_id, secret), headers=headers,
                     data={"grant_type": "client_credentials"})


def password_login(http: httpx.Client, base: str, app, password: str, **headers) -> httpx.Response:
    return http.post(base + "/oauth/token", auth=(app.client_id, app.client_secret), headers=headers,
                     data={"grant_type": "password", "username": app.username, "password": password})


def assert_throttled(r: httpx.Response, error: str) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["error"] == error
    assert 1 <= int(r.headers["retry-after"]) <= 30


def throttled_count(base: str, kind: str, by: str) -> float:
    for line in httpx.get(base + "/metrics").text.splitlines():
        if line.startswith(f'auth_sidecar_login_throttled_total{{by="{by}",kind="{kind}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_guessing_a_client_secret_does_not_lock_the_client_out(by_peer):
    base, app = by_peer.http, by_peer.admin.app(grant_types=("client_credentials",))
    attacker, owner = from_address("127.0.0.2"), from_address("127.0.0.3")
    for _ in range(3):
        assert client_login(attacker, base, app.client_id, "guess").status_code == 401
    assert_throttled(client_login(attacker, base, app.client_id, app.client_secret), "invalid_client")
    assert_throttled(client_login(attacker, base, app.client_id, "guess"), "invalid_client")
    for _ in range(3):  # the real client, from its own address, every time
        assert client_login(owner, base, app.client_id, app.client_secret).status_code == 200
    assert throttled_count(base, "client", "account") >= 2


def test_guessing_a_password_does_not_lock_the_user_out(by_peer):
    base, app = by_peer.http, by_peer.admin.app()
    attacker, user = from_address("127.0.0.4"), from_address("127.0.0.5")
    for _ in range(3):
        assert password_login(attacker, base, app, "guess").json()["error"] == "invalid_grant"
    assert_throttled(password_login(attacker, base, app, app.password), "invalid_grant")
    assert password_login(user, base, app, app.password).status_code == 200
    assert throttled_count(base, "user", "account") >= 1


def test_one_address_trying_many_accounts_is_stopped(by_peer):
    base = by_peer.http
    apps = [by_peer.admin.app(grant_types=("client_credentials",)) for _ in range(4)]
    attacker, owner = from_address("127.0.0.6"), from_address("127.0.0.7")
    for app in apps:  # 2 guesses each: under the per-account limit, 8 for the address
        for _ in range(2):
            assert client_login(attacker, base, app.client_id, "guess").status_code == 401
    fresh = by_peer.admin.app(grant_types=("client_credentials",))
    assert_throttled(client_login(attacker, base, fresh.client_id, fresh.client_secret), "invalid_client")
    assert throttled_count(base, "client", "source") >= 1
    assert all(client_login(owner, base, a.client_id, a.client_secret).status_code == 200 for a in apps)


def test_forwarded_for_is_ignored_without_trusted_hops(by_peer):
    base, app = by_peer.http, by_peer.admin.app(grant_types=("client_credentials",))
    attacker = from_address("127.0.0.1")  # uvicorn would believe X-Forwarded-For from 127.0.0.1
    for n in range(3):
        client_login(attacker, base, app.client_id, "guess", **{"x-forwarded-for": f"10.0.0.{n}"})
    r = client_login(attacker, base, app.client_id, app.client_secret, **{"x-forwarded-for": "10.0.0.99"})
    assert_throttled(r, "invalid_client")


def test_behind_a_proxy_the_forwarded_address_counts_across_replicas(replicas):
    a, b = replicas
    app = a.admin.app(grant_types=("client_credentials",))
    proxy = httpx.Client(timeout=30)  # every request comes from the proxy's address
    for _ in range(3):
        r = client_login(proxy, a.http, app.client_id, "guess", **{"x-forwarded-for": "203.0.113.9"})
        assert r.status_code == 401
    # the other replica knows (Redis); a forged entry to the left changes nothing
    for spoof in ("203.0.113.9", "198.51.100.1, 203.0.113.9"):
        assert_throttled(client_login(proxy, b.http, app.client_id, app.client_secret, **{"x-forwarded-for": spoof}),
                         "invalid_client")
    for replica in (a, b):  # the real client, through the same proxy, from its own address
        r = client_login(proxy, replica.http, app.client_id, app.client_secret, **{"x-forwarded-for": "192.0.2.7"})
        assert r.status_code == 200, r.text


@pytest.fixture(params=["memory", "redis"])
async def store(request):
    if request.param == "memory":
        yield MemoryStore()
        return
    s = RedisStore.from_url(request.getfixturevalue("redis_server").url)
    await s.clear_failures("k")
    yield s
    await s.close()


async def test_delays_double_up_to_the_cap_and_success_forgets(store):
    penalty = Penalty(free=2, base=1.0, cap=5.0, window=60)
    untils = [await store.record_failure("k", penalty) for _ in range(6)]
    assert untils[0] == 0  # the first failure is free
    assert [round(until - time.time()) for until in untils[1:]] == [1, 2, 4, 5, 5]
    count, blocked = await store.throttle_state(["k", "other"])
    assert count == 6 and blocked[0] > time.time() and blocked[1] == 0
    await store.clear_failures("k")
    assert await store.throttle_state(["k"]) == (0, (0.0,))


def request_from(peer: str, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return Request({"type": "http", "client": (peer, 1234), "headers": headers})


@pytest.mark.parametrize("peer,forwarded,hops,source", [
    ("10.0.0.1", ("6.6.6.6",), 0, "10.0.0.1"),  # no trusted proxy: the header is the client's word
    ("10.0.0.1", ("6.6.6.6, 1.2.3.4",), 1, "1.2.3.4"),  # the entry our proxy appended
    ("10.0.0.1", ("6.6.6.6", "1.2.3.4, 5.6.7.8"), 2, "1.2.3.4"),  # several lines are one list
    ("10.0.0.1", ("1.2.3.4",), 2, "10.0.0.1"),  # fewer entries than proxies: the peer, as Envoy does
    ("2001:db8:1:2:3:4:5:6", (), 0, "2001:db8:1:2::/64"),  # IPv6 counts per /64
    ("::ffff:192.0.2.1", (), 0, "192.0.2.1"),
])
def test_source_address(peer, forwarded, hops, source):
    assert source_address(request_from(peer, *forwarded), hops) == source
