"""Where sender-constrained tokens meet the token service's other doors and ext_authz's
faces, against a running sidecar that believes one proxy hop (XFCC): a bound subject or actor
token traded by token exchange without its key, an actor of another tenant, chains and refresh
tokens as subjects; clients whose tokens must be bound at the Wazo-style API; public clients at
introspection; a patched jwks; a certificate client's tokens with a DPoP proof; XFCC smuggling
through an unbalanced quote; two DPoP headers in HTTP mode; DPoP challenges for every refusal
of a DPoP request; a proof replayed across the HTTP and gRPC faces; NaN in a jwt-bearer exp."""

from __future__ import annotations

import base64
import hashlib
import time

import grpc
import httpx
import jwt
import pytest
from envoy.service.auth.v3 import external_auth_pb2 as pb
from envoy.service.auth.v3 import external_auth_pb2_grpc as pb_grpc
from requests_oauth2client import DPoPKey, OAuth2Client

from authz.keys import KeyRing
from tests.support.admin_sidecar import admin_sidecar
from tests.support.oauth import ADMIN_TOKEN, App, login
from tests.support.tokens import sign

ISSUER = "http://127.0.0.1:8080"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
HASH_A, HASH_B = hashlib.sha256(b"certificate a").hexdigest(), hashlib.sha256(b"certificate b").hexdigest()
X5T_A = jwt.utils.base64url_encode(bytes.fromhex(HASH_A)).decode()


@pytest.fixture(scope="module")
def side(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seams")
    sidecar = admin_sidecar(tmp, {"AUTH_SIDECAR_TRUSTED_PROXY_HOPS": "1", "AUTH_SIDECAR_WAZO_API__ENABLED": "true",
                                  "AUTH_SIDECAR_LOGIN_SOURCE_MAX_FAILURES": "100000"})
    sidecar.ring = KeyRing.from_dir(str(tmp / "keys"))
    yield sidecar
    sidecar.stop()


@pytest.fixture(scope="module")
def world(side) -> tuple[App, dict]:
    """A tenant with `web` (password logins) and service A (token exchange for service-b)."""
    app = side.admin.app(scopes=("read", "write"))
    a = side.admin.post(f"/admin/tenants/{app.tenant}/clients",
                        {"name": "service-a", "grant_types": [EXCHANGE], "scopes": ["read", "write"],
                         "exchange_audiences": ["service-b"]})
    return app, a


def exchange(side, a: dict, subject: str, headers: dict | None = None, **extra) -> httpx.Response:
    return httpx.post(side.http + "/oauth/token", auth=(a["client_id"], a["client_secret"]), headers=headers or {},
                      data={"grant_type": EXCHANGE, "subject_token": subject, "subject_token_type": ACCESS,
                            "audience": "service-b", **extra})


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def own_token(side, app: App, **extra) -> str:
    now = int(time.time())
    return sign(side.ring, {"iss": ISSUER, "sub": app.user_id, "aud": ISSUER, "exp": now + 300, "iat": now,
                            "jti": f"own-{time.time_ns()}", "client_id": app.client_id, "scope": "read",
                            "tenant": app.tenant, **extra})


def test_a_dpop_bound_subject_token_is_exchanged_only_with_a_proof_by_its_key(side, world):
    app, a = world
    endpoint = side.http + "/oauth/token"
    web = OAuth2Client(endpoint, auth=(app.client_id, app.client_secret), testing=True)
    alice = web.resource_owner_password(app.username, app.password, scope="read", dpop=True)
    assert alice.token_type == "DPoP"
    stolen = alice.access_token
    for headers in ({}, {"dpop": str(DPoPKey.generate().proof(htm="POST", htu=endpoint))}):
        r = exchange(side, a, stolen, headers)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
        assert "subject_token is DPoP-bound" in r.json()["error_description"]
    # the holder of the key (a client acting with alice's key) may: the new token stays bound to it
    r = exchange(side, a, stolen, {"dpop": str(alice.dpop_key.proof(htm="POST", htu=endpoint))})
    assert r.status_code == 200 and r.json()["token_type"] == "DPoP", r.text
    assert claims(r.json()["access_token"])["cnf"] == {"jkt": alice.dpop_key.dpop_jkt}


def test_a_certificate_bound_subject_token_is_exchanged_only_with_its_certificate(side, world):
    app, a = world
    bound = own_token(side, app, cnf={"x5t#S256": X5T_A})
    for headers in ({}, {"x-forwarded-client-cert": f"Hash={HASH_B}"}):
        r = exchange(side, a, bound, headers)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
        assert "bound to a client certificate" in r.json()["error_description"]
    r = exchange(side, a, bound, {"x-forwarded-client-cert": f"Hash={HASH_A}"})
    assert r.status_code == 200, r.text
    assert claims(r.json()["access_token"])["cnf"] == {"x5t#S256": X5T_A}  # still bound to that certificate


def test_a_bound_actor_token_and_an_actor_of_another_tenant_are_refused(side, world):
    app, a = world
    subject = own_token(side, app)
    other = side.admin.app(scopes=("read",))
    for actor, words in ((own_token(side, other), "actor_token belongs to another tenant"),
                         (own_token(side, app, cnf={"jkt": DPoPKey.generate().dpop_jkt}), "actor_token is DPoP-bound")):
        r = exchange(side, a, subject, actor_token=actor, actor_token_type=ACCESS)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
        assert words in r.json()["error_description"]
    r = exchange(side, a, subject, actor_token=own_token(side, app), actor_token_type=ACCESS)
    assert r.status_code == 200 and claims(r.json()["access_token"])["act"] == {"sub": app.user_id}, r.text


WAZO = "/api/auth/0.1/token"


def test_wazo_api_gives_no_plain_tokens_to_clients_whose_tokens_are_bound(side):
    app = side.admin.app(scopes=("read",))
    clients = f"/admin/tenants/{app.tenant}/clients"
    dpop = side.admin.post(clients, {"name": "spa", "grant_types": ["password", "refresh_token"],
                                     "scopes": ["read"], "dpop_bound_access_tokens": True})
    subject_dn = "CN=client-a,O=Acme\\, Inc.,C=FR"
    certified = side.admin.post(clients, {"name": "mtls", "grant_types": ["password", "refresh_token"],
                                          "scopes": ["read"], "token_endpoint_auth_method": "tls_client_auth",
                                          "tls_client_auth_subject_dn": subject_dn})
    for client in (dpop, certified):
        r = httpx.post(side.http + WAZO, auth=(app.username, app.password),
                       json={"client_id": client["client_id"], "access_type": "offline"})
        assert r.status_code == 400 and r.json()["error"] == "unauthorized_client", r.text
    # the certificate client's refresh token is bound by its certificate: not usable without it here
    xfcc = {"x-forwarded-client-cert": f'Hash={HASH_A};Subject="{subject_dn}"'}
    login = httpx.post(side.http + "/oauth/token", headers=xfcc,
                       data={"grant_type": "password", "client_id": certified["client_id"],
                             "username": app.username, "password": app.password})
    assert login.status_code == 200 and claims(login.json()["access_token"])["cnf"] == {"x5t#S256": X5T_A}
    r = httpx.post(side.http + WAZO, json={"client_id": certified["client_id"],
                                           "refresh_token": login.json()["refresh_token"]})
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client", r.text
    # the same client, at the token endpoint, with its certificate: still fine
    again = httpx.post(side.http + "/oauth/token", headers=xfcc,
                       data={"grant_type": "refresh_token", "client_id": certified["client_id"],
                             "refresh_token": login.json()["refresh_token"]})
    assert again.status_code == 200, again.text


def test_a_public_client_may_revoke_its_own_tokens_but_not_introspect(side):
    app = side.admin.app(scopes=("read",))
    spa = side.admin.post(f"/admin/tenants/{app.tenant}/clients",
                          {"name": "spa", "grant_types": ["password", "refresh_token"], "scopes": ["read"],
                           "token_endpoint_auth_method": "none"})
    alice = login(side.http, app).json()["access_token"]  # the confidential `web` client's token
    r = httpx.post(side.http + "/oauth/introspect", data={"token": alice, "client_id": spa["client_id"]})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text
    own = httpx.post(side.http + "/oauth/token", data={"grant_type": "password", "client_id": spa["client_id"],
                                                       "username": app.username, "password": app.password})
    r = httpx.post(side.http + "/oauth/revoke", data={"token": own.json()["refresh_token"],
                                                      "client_id": spa["client_id"]})
    assert r.status_code == 200
    again = httpx.post(side.http + "/oauth/token", data={"grant_type": "refresh_token", "client_id": spa["client_id"],
                                                         "refresh_token": own.json()["refresh_token"]})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_http_mode_refuses_two_dpop_headers_as_grpc_mode_does(side):
    app = side.admin.app(grant_types=("client_credentials",), scopes=("read",))
    key, endpoint = DPoPKey.generate(), side.http + "/oauth/token"
    token = httpx.post(endpoint, auth=(app.client_id, app.client_secret), data={"grant_type": "client_credentials"},
                       headers={"dpop": str(key.proof(htm="POST", htu=endpoint))}).json()["access_token"]

    def proof() -> str:
        return str(key.proof(htm="GET", htu=side.http + "/x", ath=jwt.utils.base64url_encode(
            hashlib.sha256(token.encode()).digest()).decode()))

    # RFC 9449 §4.3 check 1: one DPoP header field; the first or the last of two is not picked
    for pair in ((proof(), "junk"), ("junk", proof()), (proof(), proof())):
        r = httpx.get(side.http + "/ext_authz/x", headers=[("authorization", f"DPoP {token}"),
                                                           *(("dpop", value) for value in pair)])
        assert r.status_code == 401 and "exactly one DPoP header" in r.json()["error_description"], r.text
    r = httpx.get(side.http + "/ext_authz/x", headers={"authorization": f"DPoP {token}", "dpop": proof()})
    assert r.status_code == 200, r.text


def test_a_self_signed_clients_old_certificate_stops_working_when_its_jwks_is_patched(side):
    app = side.admin.app(scopes=("read",))
    der_a, der_b = b"certificate a", b"certificate b"  # compared byte for byte, never parsed
    x5c = {der: base64.b64encode(der).decode() for der in (der_a, der_b)}
    client = side.admin.post(f"/admin/tenants/{app.tenant}/clients",
                             {"name": "device", "grant_types": ["client_credentials"], "scopes": ["read"],
                              "token_endpoint_auth_method": "self_signed_tls_client_auth",
                              "jwks": {"keys": [{"kty": "EC", "x5c": [x5c[der_a]]}]}})

    def ask(hash_: str) -> httpx.Response:
        return httpx.post(side.http + "/oauth/token", headers={"x-forwarded-client-cert": f"Hash={hash_}"},
                          data={"grant_type": "client_credentials", "client_id": client["client_id"]})

    assert ask(HASH_A).status_code == 200 and ask(HASH_B).status_code == 401
    r = httpx.patch(side.http + f"/admin/tenants/{app.tenant}/clients/{client['client_id']}",
                    headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
                    json={"jwks": {"keys": [{"kty": "EC", "x5c": [x5c[der_b]]}]}})
    assert r.status_code == 200, r.text
    old = ask(HASH_A)
    assert old.status_code == 401 and old.json()["error"] == "invalid_client", old.text
    assert ask(HASH_B).status_code == 200


def test_a_certificate_clients_tokens_with_a_dpop_proof_need_both_at_ext_authz(side):
    """A tls_client_auth client sending a DPoP proof: cnf has both; a refresh with a proof of
    another key rebinds the access token (a confidential client's refresh token is bound by
    its certificate, RFC 9449 §5); ext_authz asks for the certificate and the proof."""
    app = side.admin.app(scopes=("read",))
    subject_dn = "CN=client-a,O=Acme\\, Inc.,C=FR"
    client = side.admin.post(f"/admin/tenants/{app.tenant}/clients",
                             {"name": "mtls", "grant_types": ["password", "refresh_token"], "scopes": ["read"],
                              "token_endpoint_auth_method": "tls_client_auth",
                              "tls_client_auth_subject_dn": subject_dn})
    endpoint, xfcc = side.http + "/oauth/token", {"x-forwarded-client-cert": f'Hash={HASH_A};Subject="{subject_dn}"'}
    first, second = DPoPKey.generate(), DPoPKey.generate()
    login = httpx.post(endpoint, headers={**xfcc, "dpop": str(first.proof(htm="POST", htu=endpoint))},
                       data={"grant_type": "password", "client_id": client["client_id"],
                             "username": app.username, "password": app.password})
    assert login.status_code == 200 and login.json()["token_type"] == "DPoP", login.text
    assert claims(login.json()["access_token"])["cnf"] == {"x5t#S256": X5T_A, "jkt": first.dpop_jkt}
    refreshed = httpx.post(endpoint, headers={**xfcc, "dpop": str(second.proof(htm="POST", htu=endpoint))},
                           data={"grant_type": "refresh_token", "client_id": client["client_id"],
                                 "refresh_token": login.json()["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    token = refreshed.json()["access_token"]
    assert claims(token)["cnf"] == {"x5t#S256": X5T_A, "jkt": second.dpop_jkt}
    ath = jwt.utils.base64url_encode(hashlib.sha256(token.encode()).digest()).decode()

    def check(key: DPoPKey | None, certificate: str | None) -> int:
        headers = {"authorization": f"DPoP {token}"}
        if key is not None:
            headers["dpop"] = str(key.proof(htm="GET", htu=side.http + "/x", ath=ath))
        if certificate is not None:
            headers["x-forwarded-client-cert"] = f"Hash={certificate}"
        return httpx.get(side.http + "/ext_authz/x", headers=headers).status_code

    assert check(second, HASH_A) == 200
    assert [check(second, None), check(second, HASH_B), check(None, HASH_A), check(first, HASH_A)] == [401] * 4
    assert check(second, HASH_A) == 200  # cached: both still checked, and still fine


def test_refusals_of_dpop_requests_carry_the_dpop_challenge(side):
    """RFC 9449 §7.1: a request made with the DPoP scheme is refused with a `DPoP` challenge
    (and `algs`), whatever the reason: an expired or revoked token too, not only a bad proof; a
    Bearer request keeps RFC 6750's `Bearer` challenge for the same token."""
    app = side.admin.app(scopes=("read",))
    key = DPoPKey.generate()
    expired = own_token(side, app, cnf={"jkt": key.dpop_jkt}, exp=int(time.time()) - 120, iat=int(time.time()) - 900)
    live = login(side.http, app, scope="read")
    assert httpx.post(side.http + "/oauth/revoke", auth=(app.client_id, app.client_secret),
                      data={"token": live.json()["access_token"]}).status_code == 200
    for token in (expired, live.json()["access_token"]):
        ath = jwt.utils.base64url_encode(hashlib.sha256(token.encode()).digest()).decode()
        for _ in range(2):  # the verification, then the cached refusal
            r = httpx.get(side.http + "/ext_authz/x", headers={
                "authorization": f"DPoP {token}", "dpop": str(key.proof(htm="GET", htu=side.http + "/x", ath=ath))})
            challenge = r.headers["www-authenticate"]
            assert r.status_code == 401 and challenge.startswith("DPoP "), challenge
            assert 'error="invalid_token"' in challenge and 'algs="' in challenge, challenge
        bearer = httpx.get(side.http + "/ext_authz/x", headers={"authorization": f"Bearer {token}"})
        assert bearer.status_code == 401 and bearer.headers["www-authenticate"].startswith("Bearer "), bearer.headers
    malformed = httpx.get(side.http + "/ext_authz/x", headers={"authorization": "DPoP a b"})
    assert malformed.status_code == 401 and malformed.headers["www-authenticate"].startswith("DPoP ")


def test_a_refresh_token_or_a_chain_too_long_is_no_subject(side, world):
    app, a = world
    tokens = login(side.http, app, scope="read").json()
    r = exchange(side, a, tokens["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    act: dict = {"sub": "svc-0"}
    for i in range(1, 8):  # 8 actors already: one more is refused, not truncated
        act = {"sub": f"svc-{i}", "act": act}
    r = exchange(side, a, own_token(side, app, act=act))
    assert r.status_code == 400 and "longer than 8" in r.json()["error_description"], r.text
    r = exchange(side, a, own_token(side, app, act=act["act"]))
    assert r.status_code == 200 and claims(r.json()["access_token"])["act"]["act"] == act["act"], r.text


def test_an_xfcc_the_client_starts_cannot_swallow_what_the_trusted_proxy_appends(side):
    """A proxy with `forward_client_cert_details: APPEND_FORWARD` appends its element to the
    client's XFCC. A client part with an unbalanced quote, read from the left, would make the
    proxy's element part of the client's own, naming someone else's certificate or subject."""
    app = side.admin.app(scopes=("read",))
    subject_dn = "CN=client-a,O=Acme\\, Inc.,C=FR"
    clients = f"/admin/tenants/{app.tenant}/clients"
    device = side.admin.post(clients, {"name": "device", "grant_types": ["client_credentials"], "scopes": ["read"],
                                       "token_endpoint_auth_method": "self_signed_tls_client_auth",
                                       "jwks": {"keys": [{"kty": "EC", "x5c": [
                                           base64.b64encode(b"certificate a").decode()]}]}})
    certified = side.admin.post(clients, {"name": "mtls", "grant_types": ["client_credentials"], "scopes": ["read"],
                                          "token_endpoint_auth_method": "tls_client_auth",
                                          "tls_client_auth_subject_dn": subject_dn})
    appended = f",By=spiffe://gw;Hash={HASH_B};Subject=\"CN=attacker\""  # what the proxy saw: certificate b

    def ask(client: dict, forged: str) -> httpx.Response:
        return httpx.post(side.http + "/oauth/token", headers={"x-forwarded-client-cert": forged + appended},
                          data={"grant_type": "client_credentials", "client_id": client["client_id"]})

    for client, forged in ((device, f'Hash={HASH_A};By="'), (certified, f'Subject="{subject_dn}";By="')):
        r = ask(client, forged)
        assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text
    bound = own_token(side, app, cnf={"x5t#S256": X5T_A})
    r = httpx.get(side.http + "/ext_authz/x", headers={"authorization": f"Bearer {bound}",
                                                       "x-forwarded-client-cert": f'Hash={HASH_A};By="' + appended})
    assert r.status_code == 401, r.text
    r = httpx.get(side.http + "/ext_authz/x", headers={"authorization": f"Bearer {bound}",
                                                       "x-forwarded-client-cert": f'Hash={HASH_A};By="x"'})
    assert r.status_code == 200, r.text  # a well-formed one from the trusted proxy still counts


def test_a_jwt_bearer_assertion_with_a_nan_exp_is_refused_not_replayable(side):
    tenant = side.admin.app().tenant
    su = side.admin.post(f"/admin/tenants/{tenant}/service-users", {"name": "etl", "org_id": "org-7"})
    key = side.admin.post(f"/admin/service-users/{su['id']}/keys", {"title": "etl-key"})
    now = int(time.time())
    assertion = jwt.encode({"iss": key["principal_id"], "sub": key["principal_id"], "aud": ISSUER, "iat": now,
                            "exp": float("nan"), "jti": f"nan-{now}"}, key["private_key"], algorithm="ES256",
                           headers={"kid": key["kid"]})
    for _ in range(2):
        r = httpx.post(side.http + "/oauth/token", data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                                         "assertion": assertion})
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text


def test_a_proof_used_on_one_face_is_a_replay_on_the_other(side):
    """One worker's replay memory serves both ext_authz faces (`dpop.replay` memory here)."""
    app = side.admin.app(grant_types=("client_credentials",), scopes=("read",))
    key, endpoint = DPoPKey.generate(), side.http + "/oauth/token"
    token = httpx.post(endpoint, auth=(app.client_id, app.client_secret), data={"grant_type": "client_credentials"},
                       headers={"dpop": str(key.proof(htm="POST", htu=endpoint))}).json()["access_token"]
    ath = jwt.utils.base64url_encode(hashlib.sha256(token.encode()).digest()).decode()
    host = side.http.split("//")[1]
    with grpc.insecure_channel(side.grpc) as channel:
        stub = pb_grpc.AuthorizationStub(channel)

        def grpc_check(proof: str) -> int:
            req = pb.CheckRequest()
            http = req.attributes.request.http
            http.path, http.method, http.scheme, http.host = "/x", "GET", "http", host
            http.headers["authorization"], http.headers["dpop"] = f"DPoP {token}", proof
            return stub.Check(req, timeout=10).denied_response.status.code or 200

        def http_check(proof: str) -> int:
            return httpx.get(side.http + "/ext_authz/x", headers={"authorization": f"DPoP {token}",
                                                                  "dpop": proof}).status_code

        for first, second in ((http_check, grpc_check), (grpc_check, http_check)):
            proof = str(key.proof(htm="GET", htu=f"http://{host}/x", ath=ath))
            assert (first(proof), second(proof)) == (200, 401)
