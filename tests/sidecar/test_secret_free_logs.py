"""Nothing secret in a log line: one session of every kind of request the sidecar answers, at
debug level, each secret carrying a unique marker (passwords, client secrets, admin tokens,
tokens in headers, query strings and cookies, JSON and form bodies), plus every secret the
sidecar itself hands out (access and refresh tokens, client secrets, private keys). Then
every log line is searched for all of them."""

from __future__ import annotations

import base64
import time
import uuid

import grpc
import httpx
import jwt
import pytest
from envoy.service.auth.v3 import external_auth_pb2 as pb
from envoy.service.auth.v3 import external_auth_pb2_grpc as pb_grpc

from authz.keys import write_new_key
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
    write_new_key(tmp / "keys")
    secrets = Secrets()
    admin_token = secrets.new("admintoken")
    s = Sidecar(env={"AUTH_SIDECAR_KEYS_DIR": str(tmp / "keys"), "AUTH_SIDECAR_ADMIN_TOKEN": admin_token,
                     "AUTH_SIDECAR_LOG_LEVEL": "debug", "AUTH_SIDECAR_TOKEN_SOURCES__COOKIE": "session",
                     "AUTH_SIDECAR_TOKEN_SOURCES__QUERY_PARAM": "access_token"}, tmp=tmp).start()
    run_session(s, secrets, admin_token)
    s.stop()
    return s.logs(), secrets


def run_session(s: Sidecar, secrets: Secrets, admin_token: str) -> None:
    http = httpx.Client(base_url=s.http, timeout=30)
    admin = Admin(s.http, admin_token)
    tenant = f"t-{RUN}"
    admin.post("/admin/tenants", {"id": tenant, "name": "logs"})
    password = secrets.new("password")
    admin.post(f"/admin/tenants/{tenant}/users", {"username": "alice", "password": password})
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
