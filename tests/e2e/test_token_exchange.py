"""RFC 8693 token exchange, end to end: requests-oauth2client (a client library no one here
wrote) asks the token service; the tokens go through the real Envoy of docs/envoy.md to the
echo upstream, over the memory store and a real Redis.

The scenario: alice logs in through the `web` client; service A (a client allowed to ask for
`service-b`) exchanges her token for one meant for service B; B's routes (`/service-b`,
configured to require that audience) accept it and the upstream sees alice as the user and A
as the actor; B exchanges again for service C (the `act` chain nests)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import httpx
import jwt
import pytest
from requests_oauth2client import EndpointError, OAuth2Client

from authz.keys import KeyRing
from tests.e2e.conftest import Stack, stack_around, stop_stack
from tests.support.admin_sidecar import admin_sidecar
from tests.support.jwks_server import IssuerKey, JwksServer
from tests.support.oauth import App, login
from tests.support.tokens import sign

ISSUER = "http://127.0.0.1:8080"
IDP = "https://idp.example"
IDP_AUD = "orders-api"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
JWT = "urn:ietf:params:oauth:token-type:jwt"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


@dataclass
class World:
    stack: Stack
    ring: KeyRing  # the sidecar's signing keys: crafts expired and may_act tokens of our own
    idp: JwksServer
    app: App  # tenant, the `web` client and alice
    a: OAuth2Client  # service A: may ask for service-b and service-d
    a_id: str
    b: OAuth2Client  # service B: may ask for service-c
    b_id: str

    @property
    def token_url(self) -> str:
        return self.stack.sidecar.http + "/oauth/token"

    def alice(self, **extra) -> dict:
        r = login(self.stack.sidecar.http, self.app, **extra)
        assert r.status_code == 200, r.text
        return r.json()

    def idp_token(self, sub: str = "ext-user", **claims) -> str:
        now = int(time.time())
        payload = {"iss": IDP, "sub": sub, "aud": IDP_AUD, "exp": now + 600, "iat": now, "scope": "read", **claims}
        key = self.idp.keys[0]
        return jwt.encode(payload, key.private, algorithm="ES256", headers={"kid": key.kid})


@pytest.fixture(scope="module", params=["memory", "redis"])
def world(request, tmp_path_factory, envoy_path):
    tmp = tmp_path_factory.mktemp(f"exchange-{request.param}")
    idp = JwksServer()
    idp.keys.append(IssuerKey())
    # this sidecar fronts services B and C: it accepts tokens meant for them
    env = {"AUTH_SIDECAR_AUDIENCES": ",".join([ISSUER, "service-b", "service-c", "service-d"]),
           "AUTH_SIDECAR_ROUTES": json.dumps([{"path_prefix": "/service-b", "audience": "service-b"},
                                              {"path_prefix": "/service-c", "audience": "service-c"}]),
           "AUTH_SIDECAR_TRUSTED_ISSUERS": json.dumps([{"issuer": IDP, "jwks_uri": idp.uri,
                                                        "audiences": [IDP_AUD]}]),
           "AUTH_SIDECAR_LOGIN_SOURCE_MAX_FAILURES": "100000"}
    store = request.getfixturevalue("redis_server").url if request.param == "redis" else None
    stack = stack_around(admin_sidecar(tmp, env, store_url=store), tmp)
    try:
        admin = stack.sidecar.admin
        app = admin.app(grant_types=("password", "refresh_token"), scopes=("read", "write"))
        clients = f"/admin/tenants/{app.tenant}/clients"
        a = admin.post(clients, {"name": "service-a", "grant_types": [EXCHANGE], "scopes": ["read", "write"],
                                 "exchange_audiences": ["service-b", "service-d"]})
        b = admin.post(clients, {"name": "service-b", "grant_types": [EXCHANGE], "scopes": ["read"],
                                 "exchange_audiences": ["service-c"]})
        url = stack.sidecar.http + "/oauth/token"  # testing: loopback http is fine
        yield World(stack, KeyRing.from_dir(str(tmp / "keys")), idp, app,
                    OAuth2Client(url, auth=(a["client_id"], a["client_secret"]), testing=True), a["client_id"],
                    OAuth2Client(url, auth=(b["client_id"], b["client_secret"]), testing=True), b["client_id"])
    finally:
        stop_stack(stack)
        idp.stop()



def payload(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def get(url: str, token: str, **headers) -> httpx.Response:
    return httpx.get(url, headers={"authorization": f"Bearer {token}", **headers})


def refused(call) -> EndpointError:
    with pytest.raises(EndpointError) as caught:
        call()
    return caught.value


def test_service_a_exchanges_alice_token_for_service_b(world, envoy):
    alice = world.alice(scope="read write")
    exchanged = world.a.token_exchange(subject_token=alice["access_token"], subject_token_type=ACCESS,
                                       audience="service-b")
    assert exchanged.token_type.lower() == "bearer" and exchanged.refresh_token is None
    assert exchanged.kwargs["issued_token_type"] == ACCESS
    assert exchanged.scope == "read write"
    claims = payload(exchanged.access_token)
    assert claims["aud"] == "service-b" and claims["act"] == {"sub": world.a_id}
    assert claims["sub"] == world.app.user_id and claims["client_id"] == world.a_id
    assert claims["tenant"] == world.app.tenant and claims["exp"] <= payload(alice["access_token"])["exp"]

    # B's route: the upstream sees alice as the user and A as the actor; a client-sent actor is not believed
    r = get(envoy + "/service-b/orders", exchanged.access_token, **{"x-actor-id": "root"})
    assert r.status_code == 200, r.text
    seen = r.json()["headers"]
    assert seen["x-actor-id"] == [world.a_id] and seen["x-user-id"] == [world.app.user_id]
    assert seen["x-client-id"] == [world.a_id]
    # alice's own token is not meant for B
    assert get(envoy + "/service-b/orders", alice["access_token"]).status_code == 401
    # a token that delegates nothing carries no actor, and a smuggled one is stripped
    plain = get(envoy + "/orders", alice["access_token"], **{"x-actor-id": "root"})
    assert plain.status_code == 200 and "x-actor-id" not in plain.json()["headers"]


def test_audience_not_allowed_is_invalid_target(world):
    alice = world.alice()
    error = refused(lambda: world.a.token_exchange(subject_token=alice["access_token"], subject_token_type=ACCESS,
                                                   audience="service-c"))
    assert error.error == "invalid_target" and "service-c" in error.description
    # one allowed, one not: refused whole
    error = refused(lambda: world.a.token_exchange(subject_token=alice["access_token"], subject_token_type=ACCESS,
                                                   audience=["service-b", "service-c"]))
    assert error.error == "invalid_target"
    # A may ask for two services at once (audience and resource each may repeat)
    both = world.a.token_exchange(subject_token=alice["access_token"], subject_token_type=ACCESS,
                                  audience="service-b", resource="service-d")
    assert payload(both.access_token)["aud"] == ["service-b", "service-d"]


def test_scope_is_only_narrowed(world, envoy):
    alice = world.alice(scope="read")
    error = refused(lambda: world.a.token_exchange(subject_token=alice["access_token"], subject_token_type=ACCESS,
                                                   audience="service-b", scope="read write"))
    assert error.error == "invalid_scope" and "write" in error.description
    wide = world.alice(scope="read write")
    narrow = world.a.token_exchange(subject_token=wide["access_token"], subject_token_type=ACCESS,
                                    audience="service-b", scope="read")
    assert narrow.scope == "read"
    assert get(envoy + "/service-b/x", narrow.access_token).json()["headers"]["x-scopes"] == ["read"]
    # B's own scopes bound what it gets, whatever the subject token had
    assert world.b.token_exchange(subject_token=world.a.token_exchange(
        subject_token=wide["access_token"], subject_token_type=ACCESS, audience="service-b").access_token,
        subject_token_type=ACCESS, audience="service-c").scope == "read"


def test_revoking_alice_family_revokes_the_exchanged_chain(world, envoy):
    alice = world.alice()
    for_b = world.a.token_exchange(subject_token=alice["access_token"], subject_token_type=ACCESS,
                                   audience="service-b")
    for_c = world.b.token_exchange(subject_token=for_b.access_token, subject_token_type=ACCESS)  # B's only audience
    assert get(envoy + "/service-b/x", for_b.access_token).status_code == 200
    assert get(envoy + "/service-c/x", for_c.access_token).status_code == 200  # cached now
    r = httpx.post(world.stack.sidecar.http + "/oauth/revoke", auth=(world.app.client_id, world.app.client_secret),
                   data={"token": alice["refresh_token"]})
    assert r.status_code == 200
    denied = get(envoy + "/service-b/x", for_b.access_token)
    assert denied.status_code == 401 and denied.json()["error"] == "invalid_token"
    assert get(envoy + "/service-c/x", for_c.access_token).status_code == 401
    # and nothing more is exchanged from the revoked family
    error = refused(lambda: world.b.token_exchange(subject_token=for_b.access_token, subject_token_type=ACCESS))
    assert error.error == "invalid_grant" and "revoked" in error.description


def test_chain_nests_act_newest_actor_outermost(world, envoy):
    alice = world.alice()
    for_b = world.a.token_exchange(subject_token=alice["access_token"], subject_token_type=ACCESS,
                                   audience="service-b")
    for_c = world.b.token_exchange(subject_token=for_b.access_token, subject_token_type=ACCESS,
                                   audience="service-c")
    claims = payload(for_c.access_token)
    assert claims["act"] == {"sub": world.b_id, "act": {"sub": world.a_id}}
    assert claims["sub"] == world.app.user_id and claims["aud"] == "service-c"
    assert claims["fam"] == payload(alice["access_token"])["fam"]
    seen = get(envoy + "/service-c/x", for_c.access_token).json()["headers"]
    assert seen["x-actor-id"] == [world.b_id] and seen["x-user-id"] == [world.app.user_id]


def test_may_act_admits_only_the_named_actor(world):
    now = int(time.time())
    own = {"iss": ISSUER, "sub": world.app.user_id, "aud": ISSUER, "exp": now + 300, "iat": now, "jti": f"m-{now}",
           "client_id": world.app.client_id, "scope": "read", "tenant": world.app.tenant}
    for_a = sign(world.ring, {**own, "may_act": {"sub": world.a_id}})
    ok = world.a.token_exchange(subject_token=for_a, subject_token_type=ACCESS, audience="service-b")
    assert payload(ok.access_token)["act"] == {"sub": world.a_id}
    for_b = sign(world.ring, {**own, "jti": f"n-{now}", "may_act": {"sub": world.b_id}})
    error = refused(lambda: world.a.token_exchange(subject_token=for_b, subject_token_type=ACCESS,
                                                   audience="service-b"))
    assert error.error == "invalid_grant" and "may_act" in error.description
    # an actor token: the actor is its subject, who must be the one may_act names (iss too, when given)
    agent = world.idp_token(sub="agent-7")
    named = sign(world.ring, {**own, "jti": f"o-{now}", "may_act": {"sub": "agent-7", "iss": IDP}})
    acted = world.a.token_exchange(subject_token=named, subject_token_type=ACCESS, actor_token=agent,
                                   actor_token_type=JWT, audience="service-b")
    assert payload(acted.access_token)["act"] == {"sub": "agent-7", "iss": IDP}
    error = refused(lambda: world.a.token_exchange(subject_token=named, subject_token_type=ACCESS,
                                                   audience="service-b"))  # A itself is not agent-7
    assert error.error == "invalid_grant"


def test_trusted_issuer_subject_token(world, envoy):
    external = world.idp_token(sub="ext-user", scope="read write")
    exchanged = world.a.token_exchange(subject_token=external, subject_token_type=JWT, audience="service-b",
                                       scope="read")
    claims = payload(exchanged.access_token)
    assert claims["iss"] == ISSUER and claims["sub"] == "ext-user" and claims["act"] == {"sub": world.a_id}
    seen = get(envoy + "/service-b/x", exchanged.access_token).json()["headers"]
    assert seen["x-user-id"] == ["ext-user"] and seen["x-actor-id"] == [world.a_id]


def test_bad_subject_tokens_are_invalid_grant(world):
    alice = world.alice()["access_token"]
    head, body, sig = alice.split(".")
    forged = f"{head}.{body}.{sig[:-6]}AAAAAA"
    now = int(time.time())
    expired = sign(world.ring, {"iss": ISSUER, "sub": world.app.user_id, "aud": ISSUER, "exp": now - 120,
                                "iat": now - 900, "jti": f"x-{now}", "scope": "read", "tenant": world.app.tenant})
    stranger = IssuerKey()  # claims to be the IdP, signed with another key
    fake_idp = jwt.encode({"iss": IDP, "sub": "x", "aud": IDP_AUD, "exp": now + 60}, stranger.private,
                          algorithm="ES256", headers={"kid": world.idp.keys[0].kid})
    other_tenant = sign(world.ring, {"iss": ISSUER, "sub": "u", "aud": ISSUER, "exp": now + 60, "iat": now,
                                     "jti": f"t-{now}", "scope": "read", "tenant": "someone-else"})
    for token in (forged, expired, fake_idp, other_tenant, "rt1-" + "0" * 24 + "-opaque"):
        error = refused(lambda: world.a.token_exchange(subject_token=token, subject_token_type=ACCESS,
                                                       audience="service-b"))
        assert error.error == "invalid_grant" and "subject_token" in error.description, token


@pytest.mark.parametrize("change, error", [
    ({"subject_token_type": "urn:ietf:params:oauth:token-type:refresh_token"}, "invalid_request"),
    ({"requested_token_type": "urn:ietf:params:oauth:token-type:id_token"}, "invalid_request"),
    ({"actor_token": "x"}, "invalid_request"),  # without actor_token_type
    ({"subject_token": None}, "invalid_request"),
    ({"audience": None}, "invalid_request"),  # A may ask for two: it must say which
])
def test_malformed_requests(world, change, error):
    alice = world.alice()["access_token"]
    data = {"grant_type": EXCHANGE, "subject_token": alice, "subject_token_type": ACCESS, "audience": "service-b",
            **change}
    r = httpx.post(world.token_url, auth=(world.a.auth.client_id, world.a.auth.client_secret),
                   data={k: v for k, v in data.items() if v is not None})
    assert r.status_code == 400 and r.json()["error"] == error, r.text


def test_client_without_the_grant_is_refused(world):
    alice = world.alice()["access_token"]
    r = httpx.post(world.token_url, auth=(world.app.client_id, world.app.client_secret),
                   data={"grant_type": EXCHANGE, "subject_token": alice, "subject_token_type": ACCESS,
                         "audience": "service-b"})
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"


def test_json_body_lists_and_lifetime_bounded_by_the_subject_token(world):
    now = int(time.time())
    short = sign(world.ring, {"iss": ISSUER, "sub": world.app.user_id, "aud": ISSUER, "exp": now + 60, "iat": now,
                              "jti": f"s-{now}", "scope": "read", "tenant": world.app.tenant})
    auth = (world.a.auth.client_id, world.a.auth.client_secret)
    r = httpx.post(world.token_url, auth=auth, json={"grant_type": EXCHANGE, "subject_token": short,
                                                     "subject_token_type": JWT, "audience": ["service-b", "service-d"]})
    assert r.status_code == 200, r.text
    assert payload(r.json()["access_token"])["aud"] == ["service-b", "service-d"]
    assert 55 <= r.json()["expires_in"] <= 60 and payload(r.json()["access_token"])["exp"] <= now + 60
    bad = httpx.post(world.token_url, auth=auth, json={"grant_type": EXCHANGE, "subject_token": short,
                                                       "subject_token_type": JWT, "audience": "service-b\nservice-d"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"
