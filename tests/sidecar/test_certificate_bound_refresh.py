"""A public client's refresh family bound to its client certificate (RFC 8705 §4, RFC 9700
§4.14.2), through a real `auth-sidecar serve` on each store (memory, a real Redis, a real Redis
Cluster): the certificate arrives as the trusted proxy's `x-forwarded-client-cert` (written here
by the test, which plays the one trusted hop; tests/e2e/test_mtls.py goes through a real Envoy).
The family keeps the certificate through every rotation, a refresh with another certificate or
none is `invalid_grant` and leaves the family to its holder, and records written without the
binding (by an older version, or before the client was bound) keep working."""

from __future__ import annotations

import hashlib
import json

import httpx
import jwt
import pytest
import redis
from redis.cluster import RedisCluster

from sidecar.oauth.credentials import digest
from sidecar.oauth.issuer import parse_refresh_token
from sidecar.store.redis_layout import refresh_key
from tests.redis.conftest import redis_cluster  # the session fixture, used by name
from tests.support.admin_sidecar import admin_sidecar

__all__ = ["redis_cluster"]
HELD = "urn:auth-sidecar:grant-type:held-refresh"
HASH_A, HASH_B = hashlib.sha256(b"certificate a").hexdigest(), hashlib.sha256(b"certificate b").hexdigest()
X5T_A = jwt.utils.base64url_encode(bytes.fromhex(HASH_A)).decode()
X5T_B = jwt.utils.base64url_encode(bytes.fromhex(HASH_B)).decode()
CERT_A, CERT_B = {"x-forwarded-client-cert": f"Hash={HASH_A}"}, {"x-forwarded-client-cert": f"Hash={HASH_B}"}


@pytest.fixture(scope="module", params=["memory", "redis", "cluster"])
def svc(request, tmp_path_factory):
    env = {"AUTH_SIDECAR_TRUSTED_PROXY_HOPS": "1", "AUTH_SIDECAR_LOGIN_SOURCE_MAX_FAILURES": "100000"}
    server = (request.getfixturevalue("redis_server" if request.param == "redis" else "redis_cluster")
              if request.param != "memory" else None)
    sidecar = admin_sidecar(tmp_path_factory.mktemp(f"bound-refresh-{request.param}"), env,
                            store_url=server.url if server else None)
    if server is not None:  # to rewrite a record as an older version stored it
        sidecar.redis = (redis.Redis.from_url(server.url) if request.param == "redis"
                         else RedisCluster(host="127.0.0.1", port=server.ports[0]))
    sidecar.store_kind = request.param
    yield sidecar
    sidecar.stop()
    assert "Traceback" not in sidecar.logs(), sidecar.logs()[-3000:]


def public_client(svc, bound: bool = True) -> tuple[str, str]:
    """(client_id, its admin path): a public client of a new tenant with user alice."""
    app = svc.admin.app(grant_types=("password",))
    made = svc.admin.post(f"/admin/tenants/{app.tenant}/clients", {
        "name": "app", "grant_types": ["password", "refresh_token"], "scopes": ["read"],
        "token_endpoint_auth_method": "none", "tls_client_certificate_bound_access_tokens": bound})
    return made["client_id"], f"/admin/tenants/{app.tenant}/clients/{made['client_id']}"


def token(svc, form: dict, headers: dict | None = None) -> httpx.Response:
    r = httpx.post(svc.http + "/oauth/token", data=form, headers=headers or {})
    assert r.status_code < 500, r.text
    return r


def login(svc, client_id: str, headers: dict) -> dict:
    r = token(svc, {"grant_type": "password", "client_id": client_id, "username": "alice",
                    "password": "correct horse", "scope": "read"}, headers)
    assert r.status_code == 200, r.text
    return r.json()


def refresh(svc, client_id: str, refresh_token: str, headers: dict | None = None) -> httpx.Response:
    return token(svc, {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": refresh_token},
                 headers)


def cnf(answer: dict) -> dict:
    return jwt.decode(answer["access_token"], options={"verify_signature": False})["cnf"]


def assert_refused(r: httpx.Response, problem: str) -> None:
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_grant", r.text
    assert problem in r.json()["error_description"], r.text


def test_a_public_clients_refresh_family_is_bound_to_its_certificate(svc):
    client_id, _ = public_client(svc)
    tokens = login(svc, client_id, CERT_A)
    assert cnf(tokens) == {"x5t#S256": X5T_A}
    for _ in range(2):  # each successor is bound too
        r = refresh(svc, client_id, tokens["refresh_token"], CERT_A)
        assert r.status_code == 200, r.text
        tokens = r.json()
        assert cnf(tokens) == {"x5t#S256": X5T_A}
    stolen = tokens["refresh_token"]
    assert_refused(refresh(svc, client_id, stolen, CERT_B), "another client certificate")
    assert_refused(refresh(svc, client_id, stolen), "no client certificate was forwarded")
    # refused, not reused: the family stays its holder's
    r = refresh(svc, client_id, stolen, CERT_A)
    assert r.status_code == 200, r.text
    assert cnf(r.json()) == {"x5t#S256": X5T_A}


def test_the_binding_outlives_the_clients_setting(svc):
    """A family made while the client was bound stays bound after the setting is turned off."""
    client_id, path = public_client(svc)
    tokens = login(svc, client_id, CERT_A)
    r = svc.admin.http.patch(path, json={"tls_client_certificate_bound_access_tokens": False})
    assert r.status_code == 200, r.text
    assert_refused(refresh(svc, client_id, tokens["refresh_token"]), "no client certificate was forwarded")
    r = refresh(svc, client_id, tokens["refresh_token"], CERT_A)
    assert r.status_code == 200, r.text
    assert "cnf" not in jwt.decode(r.json()["access_token"], options={"verify_signature": False})


def test_an_unbound_public_client_and_a_secret_client_are_unchanged(svc):
    client_id, _ = public_client(svc, bound=False)
    tokens = login(svc, client_id, {})
    r = refresh(svc, client_id, tokens["refresh_token"], CERT_B)  # a certificate it need not present
    assert r.status_code == 200, r.text
    app = svc.admin.app(tls_client_certificate_bound_access_tokens=True)  # confidential: bound by its secret
    form = {"grant_type": "password", "username": app.username, "password": app.password}
    r = httpx.post(svc.http + "/oauth/token", auth=(app.client_id, app.client_secret), data=form, headers=CERT_A)
    assert r.status_code == 200, r.text
    r = httpx.post(svc.http + "/oauth/token", auth=(app.client_id, app.client_secret), headers=CERT_B,
                   data={"grant_type": "refresh_token", "refresh_token": r.json()["refresh_token"]})
    assert r.status_code == 200, r.text  # the refreshed token is bound to the certificate presented then
    assert cnf(r.json()) == {"x5t#S256": X5T_B}


def test_a_family_stored_without_a_certificate_keeps_working(svc):
    """Families made before the client was bound, and (Redis) records as an older version
    wrote them, with no certificate field at all: any certificate refreshes them."""
    client_id, path = public_client(svc, bound=False)
    tokens = login(svc, client_id, {})
    r = svc.admin.http.patch(path, json={"tls_client_certificate_bound_access_tokens": True})
    assert r.status_code == 200, r.text
    if svc.store_kind != "memory":  # the record as an older version wrote it: no field at all
        presented = parse_refresh_token(tokens["refresh_token"])
        key = refresh_key(presented.family, digest(presented.secret))
        data = json.loads(svc.redis.hget(key, "data"))
        assert data.pop("x5t_s256") is None
        svc.redis.hset(key, "data", json.dumps(data))
    r = refresh(svc, client_id, tokens["refresh_token"], CERT_B)
    assert r.status_code == 200, r.text
    assert cnf(r.json()) == {"x5t#S256": X5T_B}  # the access token is bound, as the client now wants
    r = refresh(svc, client_id, r.json()["refresh_token"], CERT_A)  # its successor: unbound as it was
    assert r.status_code == 200, r.text


def test_a_public_clients_held_session_is_bound_to_its_certificate(svc):
    app = svc.admin.app(grant_types=("password",))
    client_id = svc.admin.post(f"/admin/tenants/{app.tenant}/clients", {
        "name": "spa", "grant_types": ["password", HELD], "scopes": ["read"], "refresh_policy": "held",
        "token_endpoint_auth_method": "none", "tls_client_certificate_bound_access_tokens": True})["client_id"]
    tokens = login(svc, client_id, CERT_A)
    assert "refresh_token" not in tokens and cnf(tokens) == {"x5t#S256": X5T_A}
    trade = {"grant_type": HELD, "client_id": client_id, "access_token": tokens["access_token"]}
    assert_refused(token(svc, trade, CERT_B), "the held session is bound to another client certificate")
    assert_refused(token(svc, trade), "no client certificate was forwarded")
    r = token(svc, trade, CERT_A)
    assert r.status_code == 200, r.text
    assert cnf(r.json()) == {"x5t#S256": X5T_A}
