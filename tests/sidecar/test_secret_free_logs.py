"""Nothing secret in a log line: one session of every kind of request the sidecar answers, at
debug level, each secret carrying a unique marker (passwords, client secrets, admin tokens,
tokens in headers, query strings and cookies, JSON and form bodies), plus every secret the
sidecar itself hands out (access and refresh tokens, client secrets, private keys). Then
every log line is searched for all of them."""

from __future__ import annotations

import base64
import time
import uuid
from urllib.parse import quote

import grpc
import httpx
import jwt
import pytest
from envoy.service.auth.v3 import external_auth_pb2 as pb
from envoy.service.auth.v3 import external_auth_pb2_grpc as pb_grpc

from authz.dpop import b64url_sha256
from tests.support.admin_sidecar import admin_sidecar
from harness.certificates import self_signed
from tests.support.oauth import Admin
from tests.support.processes import Sidecar

RUN = uuid.uuid4().hex[:8]
ISSUER = "http://127.0.0.1:8080"


class Secrets:
    """Unique markers, and every secret seen in an answer."""

    def __init__(self) -> None:
        self.all: list[str] = []

    def new(self, what: str) -> str:
        marker = f"SeCrEt{RUN}{what}{len(self.all):03d}"
        self.all.append(marker)
        return marker

    def seen(self, value: str) -> str:
        self.all.append(value)
        return value


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("logs")
    secrets = Secrets()
    admin_token = secrets.new("admintoken")
    s = admin_sidecar(tmp, {"AUTH_SIDECAR_LOG_LEVEL": "debug", "AUTH_SIDECAR_TOKEN_SOURCES__COOKIE": "session",
                            "AUTH_SIDECAR_TOKEN_SOURCES__QUERY_PARAM": "access_token",
                            "AUTH_SIDECAR_TRUSTED_PROXY_HOPS": "1"}, admin_token=admin_token)
    run_session(s, secrets, admin_token)
    run_sender_constrained(s, secrets, admin_token)
    s.stop()
    return s.logs(), secrets


def tenant_with_alice(s: Sidecar, secrets: Secrets, admin_token: str, tenant: str,
                      marker: str) -> tuple[httpx.Client, Admin, str]:
    """(a client of the HTTP port, the admin API, alice's password): a tenant of its own with
    the user alice, whose password is the secret `marker`."""
    http = httpx.Client(base_url=s.http, timeout=30)
    admin = Admin(s.http, admin_token)
    admin.post("/admin/tenants", {"id": tenant, "name": tenant})
    password = secrets.new(marker)
    admin.post(f"/admin/tenants/{tenant}/users", {"username": "alice", "password": password})
    return http, admin, password


def run_session(s: Sidecar, secrets: Secrets, admin_token: str) -> None:
    tenant = f"t-{RUN}"
    http, admin, password = tenant_with_alice(s, secrets, admin_token, tenant, "password")
    client = admin.post(f"/admin/tenants/{tenant}/clients",
                        {"name": "web", "grant_types": ["password", "refresh_token", "client_credentials"],
                         "scopes": ["read"]})
    client_id, client_secret = client["client_id"], secrets.seen(client["client_secret"])
    su = admin.post(f"/admin/tenants/{tenant}/service-users", {"name": "robot", "org_id": "org-1"})
    su_cred = admin.post(f"/admin/service-users/{su['id']}/secrets", {"title": "s"})
    su_secret = secrets.seen(su_cred["client_secret"])
    key = admin.post(f"/admin/service-users/{su['id']}/keys", {"title": "k"})
    private_key = key["private_key"]
    secrets.seen("".join(private_key.strip().splitlines()[1:-1])[:64])
    # admin calls refused: wrong admin token, bad bodies carrying secrets
    http.post("/admin/tenants", json={"id": "x", "name": "x"},
              headers={"authorization": f"Bearer {secrets.new('wrongadmin')}"})
    http.post(f"/admin/tenants/{tenant}/users", json={"username": "bob", "password": "short" + secrets.new("p")[:2]},
              headers={"authorization": f"Bearer {admin_token}"})
    http.post(f"/admin/tenants/{tenant}/users", content=b"{" + secrets.new("badjson").encode(),
              headers={"authorization": f"Bearer {admin_token}", "content-type": "application/json"})

    # token grants, good and bad, every way of sending credentials
    basic = (client_id, client_secret)
    tokens = http.post("/oauth/token", auth=basic,
                       data={"grant_type": "password", "username": "alice", "password": password}).json()
    access, refresh = secrets.seen(tokens["access_token"]), secrets.seen(tokens["refresh_token"])
    http.post("/oauth/token", auth=basic,
              data={"grant_type": "password", "username": "alice", "password": secrets.new("wrongpw")})
    http.post("/oauth/token", auth=(client_id, secrets.new("wrongsecret")), data={"grant_type": "client_credentials"})
    http.post("/oauth/token", json={"grant_type": "client_credentials", "client_id": client_id,
                                    "client_secret": secrets.new("jsonsecret")})
    http.post(f"/oauth/token?password={secrets.new('querypw')}&client_secret={secrets.new('querysecret')}",
              auth=basic, data={"grant_type": "client_credentials"})
    http.post("/oauth/token", headers={"authorization": "Basic "
                                       + base64.b64encode(f"{client_id}:{secrets.new('basic')}".encode()).decode()},
              data={"grant_type": "client_credentials"})
    http.post("/oauth/token", headers={"authorization": b"Basic \xe9" + secrets.new("latin").encode()},
              data={"grant_type": "client_credentials"})
    http.post("/oauth/token", headers={"authorization": b"Basic \x01" + secrets.new("ctl").encode()},
              data={"grant_type": "client_credentials"})
    http.post("/oauth/token", content=b"[" * 1000 + secrets.new("deep").encode(), auth=basic,
              headers={"content-type": "application/json"})
    http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                    "client_secret": "x" * 70_000 + secrets.new("huge")})
    cc = http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": su_cred["client_id"],
                                         "client_secret": su_secret})
    secrets.seen(cc.json()["access_token"])
    admin.http.get(f"/admin/service-users/{su['id']}/keys/{key['kid']}")
    rotated = http.post("/oauth/token", auth=basic, data={"grant_type": "refresh_token", "refresh_token": refresh})
    secrets.seen(rotated.json()["refresh_token"])
    http.post("/oauth/token", auth=basic, data={"grant_type": "refresh_token", "refresh_token": refresh})  # reuse
    http.post("/oauth/token", auth=basic, data={"grant_type": "refresh_token",
                                                "refresh_token": secrets.new("badrefresh")})
    now = int(time.time())
    assertion = secrets.seen(jwt.encode({"iss": su["id"], "sub": su["id"], "aud": ISSUER, "exp": now + 60,
                                         "iat": now, "jti": secrets.new("jti")}, private_key,
                                        algorithm=key["alg"], headers={"kid": key["kid"]}))
    assert http.post("/oauth/token", data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                           "assertion": assertion}).status_code == 200
    http.post("/oauth/token", data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                    "assertion": assertion})  # replayed
    http.post("/oauth/token", headers={"authorization": f"Bearer {secrets.new('bearerassertion')}"},
              data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer"})

    # introspection and revocation
    for token in (access, refresh, secrets.new("introspectme")):
        http.post("/oauth/introspect", auth=basic, data={"token": token})
    http.post("/oauth/introspect", auth=(client_id, secrets.new("introspectsecret")), data={"token": access})
    http.post("/oauth/revoke", auth=basic, data={"token": secrets.new("revokeme")})

    # ext_authz over HTTP: every token source, allowed and denied, with secrets in the URL
    good = http.post("/oauth/token", auth=basic, data={"grant_type": "client_credentials"}).json()["access_token"]
    secrets.seen(good)
    for token in (good, secrets.new("headertoken")):
        http.get(f"/ext_authz/app?api_key={secrets.new('apikey')}", headers={"authorization": f"Bearer {token}"})
        http.get("/ext_authz/app", headers={"x-auth-token": token})
        http.get(f"/ext_authz/app?access_token={token}&x={secrets.new('q')}")
        http.get("/ext_authz/app", headers={"cookie": f"session={token}; other={secrets.new('cookie')}"})
    http.get(f"/ext_authz/%61pp?access_token={secrets.new('encodedpath')}")  # the ASGI path
    http.get(f"/ext_authz/app?token={secrets.new('anonquery')}")
    http.get("/ext_authz/app", headers={"authorization": f"Bearer {'e30.' * 2}{secrets.new('malformed')}"})
    http.post("/oauth/revoke", auth=basic, data={"token": access})
    http.get("/ext_authz/app", headers={"authorization": f"Bearer {access}"})  # revoked

    # ext_authz over gRPC: the same sources, in a CheckRequest
    with grpc.insecure_channel(s.grpc) as channel:
        stub = pb_grpc.AuthorizationStub(channel)
        for token in (good, secrets.new("grpctoken"), access):
            for headers, path in (({"authorization": f"Bearer {token}"}, f"/app?code={secrets.new('oauthcode')}"),
                                  ({"x-auth-token": token}, "/app"),
                                  ({}, f"/app?access_token={token}"),
                                  ({"cookie": f"session={token}; csrf={secrets.new('csrf')}"}, "/app")):
                req = pb.CheckRequest()
                req.attributes.request.http.path = path
                req.attributes.request.http.method = "GET"
                for name, value in headers.items():
                    req.attributes.request.http.headers[name] = value
                stub.Check(req, timeout=10)


def certificate(cn: str) -> tuple[str, str]:
    """(PEM, base64 DER) of a self-signed client certificate."""
    pem, der = self_signed(cn)
    return pem, base64.b64encode(der).decode()


def run_sender_constrained(s: Sidecar, secrets: Secrets, admin_token: str) -> None:
    """DPoP proofs, client certificates (XFCC) and token exchange, good and bad, both faces."""
    from requests_oauth2client import DPoPKey

    tenant = f"t-{RUN}-sc"
    http, admin, password = tenant_with_alice(s, secrets, admin_token, tenant, "scpassword")
    web = admin.post(f"/admin/tenants/{tenant}/clients",
                     {"name": "web", "grant_types": ["password", "client_credentials"], "scopes": ["read"]})
    basic = (web["client_id"], secrets.seen(web["client_secret"]))
    # DPoP at the token endpoint: good, replayed, bad
    key, endpoint = DPoPKey.generate(), s.http + "/oauth/token"
    proof = secrets.seen(str(key.proof(htm="POST", htu=endpoint)))
    bound = http.post("/oauth/token", auth=basic, data={"grant_type": "client_credentials"}, headers={"dpop": proof})
    assert bound.json()["token_type"] == "DPoP", bound.text
    token = secrets.seen(bound.json()["access_token"])
    http.post("/oauth/token", auth=basic, data={"grant_type": "client_credentials"}, headers={"dpop": proof})
    http.post("/oauth/token", auth=basic, data={"grant_type": "client_credentials"},
              headers={"dpop": "e30." + secrets.new("badproof")})
    # DPoP at ext_authz: fresh, replayed, as Bearer, a proof whose jti is a marker
    url = "http://" + s.http.split("//")[1] + "/app"
    fresh = secrets.seen(str(key.proof(htm="GET", htu=url, ath=b64url_sha256(token))))
    dpop = {"authorization": f"DPoP {token}", "dpop": fresh}
    answers = [http.get("/ext_authz/app", headers=headers).status_code for headers in (dpop, dpop)]
    assert answers == [200, 401], answers  # fresh, replayed
    for headers in ({"authorization": f"Bearer {token}"},
                    {"authorization": f"DPoP {token}", "dpop": secrets.seen(str(DPoPKey(
                        key.private_key, jti_generator=lambda: secrets.new("jti")).proof(
                        htm="GET", htu=url + "x", ath=b64url_sha256(token))))}):
        http.get("/ext_authz/app", headers=headers)
    with grpc.insecure_channel(s.grpc) as channel:
        stub = pb_grpc.AuthorizationStub(channel)
        req = pb.CheckRequest()
        req.attributes.request.http.path, req.attributes.request.http.method = "/app", "GET"
        req.attributes.request.http.scheme, req.attributes.request.http.host = "https", "api.example.com"
        req.attributes.request.http.headers["authorization"] = f"DPoP {token}"
        req.attributes.request.http.headers["dpop"] = secrets.seen(str(key.proof(
            htm="GET", htu="https://api.example.com/app", ath=b64url_sha256(token))))
        pem, der = certificate("grpc-peer")
        secrets.seen(der[:64])
        req.attributes.source.certificate = quote(pem, safe="")
        assert stub.Check(req, timeout=10).status.code == 0
        assert stub.Check(req, timeout=10).status.code != 0  # replayed
    # client certificates: a self-signed client (jwks x5c), good and wrong certificates
    pem, der = certificate("self-signed")
    secrets.seen(der[:64])
    other_pem, other_der = certificate("other")
    secrets.seen(other_der[:64])
    jwk = {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
           "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "x5c": [der]}
    mtls = admin.post(f"/admin/tenants/{tenant}/clients",
                      {"name": "mtls", "grant_types": ["client_credentials"], "scopes": ["read"],
                       "token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks": {"keys": [jwk]}})
    answers, certified = [], ""
    for cert in (pem, other_pem):
        r = http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": mtls["client_id"]},
                      headers={"x-forwarded-client-cert": f'Cert="{quote(cert, safe="")}"'})
        answers.append(r.status_code)
        certified = certified or secrets.seen(r.json().get("access_token", ""))
    for cert in (pem, other_pem):
        answers.append(http.get("/ext_authz/app", headers={"authorization": f"Bearer {certified}",
                                                            "x-forwarded-client-cert": f'Cert="{quote(cert, safe="")}"'}
                                ).status_code)
    assert answers == [200, 401, 200, 401], answers
    # token exchange: good, a forged actor token, a DPoP-bound subject without its key
    svc = admin.post(f"/admin/tenants/{tenant}/clients",
                     {"name": "svc", "grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"],
                      "scopes": ["read"], "exchange_audiences": ["service-b"]})
    svc_auth = (svc["client_id"], secrets.seen(svc["client_secret"]))
    alice = secrets.seen(http.post("/oauth/token", auth=basic, data={
        "grant_type": "password", "username": "alice", "password": password}).json()["access_token"])
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": alice,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token", "audience": "service-b"}
    exchanged = http.post("/oauth/token", auth=svc_auth, data=form)
    assert exchanged.status_code == 200, exchanged.text
    secrets.seen(exchanged.json()["access_token"])
    http.post("/oauth/token", auth=svc_auth, data={**form, "actor_token": "e30.e30." + secrets.new("actor"),
                                                   "actor_token_type": "urn:ietf:params:oauth:token-type:jwt"})
    assert http.post("/oauth/token", auth=svc_auth, data={**form, "subject_token": token}).status_code == 400
    http.post("/oauth/token", auth=svc_auth, data={**form, "subject_token": secrets.new("subject")})


def test_no_secret_reaches_a_log_line(session):
    logs, secrets = session
    lines = logs.splitlines()
    assert any('"msg": "deny"' in line and '"path": "/app"' in line for line in lines)  # denies are logged
    assert any('"level": "debug"' in line for line in lines) or len(lines) > 10
    leaks = [(secret, line[:300]) for line in lines for secret in secrets.all if secret and secret in line]
    assert not leaks, leaks


def test_no_query_string_reaches_a_log_line(session):
    logs, _ = session
    assert "?" not in "".join(line for line in logs.splitlines() if '"path"' in line)
