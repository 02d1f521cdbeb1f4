"""DPoP (RFC 9449) end to end: requests-oauth2client (a client library no one here wrote) asks
the token endpoint for DPoP-bound tokens and uses them through the real Envoy, in both
ext_authz modes; replay is refused across two replicas sharing one real Redis."""

from __future__ import annotations

import threading
import time

import httpx
import jwt
import pytest
import requests
from requests_oauth2client import DPoPKey, DPoPToken, OAuth2Client

from authz.dpop import b64url_sha256
from tests.e2e.conftest import envoy_config
from tests.support.admin_sidecar import admin_sidecar
from tests.support.net import free_port
from tests.support.processes import EchoUpstream, Envoy, Sidecar


def dpop_envoy_config(sidecar: Sidecar, upstream: EchoUpstream, grpc_listener: int, http_listener: int) -> str:
    """docs/envoy.md's Envoy as it is: its HTTP mode lets the DPoP header reach ext_authz and
    the DPoP-Nonce header back to the client (gRPC mode sends every header)."""
    text = envoy_config(sidecar, upstream, grpc_listener, http_listener)
    assert "- {exact: dpop}\n" in text and "- {exact: dpop-nonce}\n" in text
    return text


@pytest.fixture(scope="module")
def dpop_stack(tmp_path_factory, envoy_path, redis_server):
    """One sidecar replica behind Envoy, a second replica on the same Redis and keys."""
    tmp = tmp_path_factory.mktemp("dpop")
    store = redis_server.url.replace("/0", "/5")
    sidecar = admin_sidecar(tmp, store_url=store)
    replica = admin_sidecar(tmp, store_url=store, keys=tmp / "keys")
    upstream = EchoUpstream().start()
    grpc_listener, http_listener = free_port(), free_port()
    envoy = Envoy(dpop_envoy_config(sidecar, upstream, grpc_listener, http_listener), tmp).start()
    yield {"sidecar": sidecar, "replica": replica, "grpc": f"http://127.0.0.1:{grpc_listener}",
           "http": f"http://127.0.0.1:{http_listener}"}
    envoy.stop()
    upstream.stop()
    replica.stop()
    sidecar.stop()


def confidential(stack, **extra) -> tuple[OAuth2Client, object]:
    app = stack["sidecar"].admin.app(**extra)
    client = OAuth2Client(stack["sidecar"].http + "/oauth/token", auth=(app.client_id, app.client_secret),
                          testing=True)
    return client, app


def public_client(stack, **extra) -> tuple[OAuth2Client, tuple[str, str]]:
    admin = stack["sidecar"].admin
    app = admin.app()  # a tenant and its user alice
    body = {"name": "spa", "grant_types": ["password", "refresh_token"], "scopes": ["read"],
            "token_endpoint_auth_method": "none", **extra}
    made = admin.post(f"/admin/tenants/{app.tenant}/clients", body)
    assert "client_secret" not in made
    client = OAuth2Client(stack["sidecar"].http + "/oauth/token", client_id=made["client_id"], testing=True)
    return client, (app.username, app.password)


def proof(key: DPoPKey, htu: str, token: str, htm: str = "GET") -> str:
    return str(key.proof(htm=htm, htu=htu, ath=b64url_sha256(token)))


def dpop_get(url: str, token: str, dpop: str, scheme: str = "DPoP") -> httpx.Response:
    return httpx.get(url, headers={"authorization": f"{scheme} {token}", "dpop": dpop})


@pytest.fixture(scope="module")
def dpop_token(dpop_stack) -> DPoPToken:
    client, app = confidential(dpop_stack)
    return client.resource_owner_password(app.username, app.password, dpop=True)


def test_token_request_with_a_proof_gives_a_dpop_bound_token(dpop_stack, dpop_token):
    metadata = httpx.get(dpop_stack["sidecar"].http + "/.well-known/oauth-authorization-server").json()
    assert "ES256" in metadata["dpop_signing_alg_values_supported"]
    assert isinstance(dpop_token, DPoPToken) and dpop_token.token_type == "DPoP"
    claims = jwt.decode(dpop_token.access_token, options={"verify_signature": False})
    assert claims["cnf"] == {"jkt": dpop_token.dpop_key.dpop_jkt}


@pytest.mark.parametrize("listener", ["grpc", "http"])
def test_dpop_token_through_envoy(dpop_stack, dpop_token, listener):
    base = dpop_stack[listener]
    url, token, key = base + "/orders?page=1", dpop_token.access_token, dpop_token.dpop_key
    for _ in range(3):  # the library makes a fresh proof for every request
        r = requests.get(url, auth=dpop_token)
        assert r.status_code == 200, r.text
    assert r.json()["headers"]["x-user-id"]

    bearer = httpx.get(url, headers={"authorization": f"Bearer {token}"})
    assert bearer.status_code == 401
    assert bearer.headers["www-authenticate"].startswith("DPoP ")
    assert 'error="invalid_token"' in bearer.headers["www-authenticate"]

    used = proof(key, base + "/orders", token)
    assert dpop_get(url, token, used).status_code == 200
    replayed = dpop_get(url, token, used)
    assert replayed.status_code == 401 and 'error="invalid_dpop_proof"' in replayed.headers["www-authenticate"]
    assert 'algs="ES256' in replayed.headers["www-authenticate"]

    refused = {
        "other method": proof(key, base + "/orders", token, htm="POST"),
        "other URL": proof(key, base + "/admin", token),
        "other key": proof(DPoPKey.generate(), base + "/orders", token),
        "stale iat": str(DPoPKey(key.private_key, iat_generator=lambda: int(time.time()) - 3600).proof(
            htm="GET", htu=base + "/orders", ath=b64url_sha256(token))),
        "other token's ath": proof(key, base + "/orders", token + "x"),
    }
    for case, value in refused.items():
        r = dpop_get(url, token, value)
        assert r.status_code == 401, case
        assert r.json()["error"] == "invalid_dpop_proof", (case, r.text)


@pytest.mark.parametrize("listener", ["grpc", "http"])
def test_a_request_without_a_token_learns_both_schemes_and_the_proof_algorithms(dpop_stack, listener):
    """RFC 9449 §7.2 / RFC 6750 §3: no token, a 401 naming Bearer and DPoP (with `algs`), in one
    `WWW-Authenticate` value (RFC 9110 §11.6.1) that Envoy passes on whole in both modes."""
    r = httpx.get(dpop_stack[listener] + "/orders")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized", r.text
    assert r.headers.get_list("www-authenticate") == [
        'Bearer realm="auth-sidecar", DPoP realm="auth-sidecar", algs="ES256 ES384 ES512 RS256 PS256 EdDSA"']
    # the algorithms a client may sign its proofs with, as the token endpoint's metadata says
    metadata = httpx.get(dpop_stack["sidecar"].http + "/.well-known/oauth-authorization-server").json()
    algs = r.headers["www-authenticate"].rpartition('algs="')[2].rstrip('"').split()
    assert algs == metadata["dpop_signing_alg_values_supported"]


def test_replay_is_refused_by_another_replica_sharing_redis(dpop_stack, dpop_token):
    token, key = dpop_token.access_token, dpop_token.dpop_key
    a, b = dpop_stack["sidecar"], dpop_stack["replica"]
    # HTTP-mode checks straight to each replica: htu is the Host each one is addressed by plus
    # the path after /ext_authz; the same proof, made for the Host both are reached by
    used = proof(key, "http://gateway.test/x", token)
    headers = {"authorization": f"DPoP {token}", "dpop": used, "host": "gateway.test"}
    assert httpx.get(a.http + "/ext_authz/x", headers=headers).status_code == 200
    again = httpx.get(b.http + "/ext_authz/x", headers=headers)
    assert again.status_code == 401 and again.json()["error"] == "invalid_dpop_proof"


def test_a_client_that_requires_dpop_is_refused_without_a_proof(dpop_stack):
    client, app = confidential(dpop_stack, dpop_bound_access_tokens=True)
    r = httpx.post(client.token_endpoint, auth=(app.client_id, app.client_secret),
                   data={"grant_type": "password", "username": app.username, "password": app.password})
    assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof"
    assert client.resource_owner_password(app.username, app.password, dpop=True).token_type == "DPoP"


def test_client_credentials_honour_dpop(dpop_stack):
    client, _ = confidential(dpop_stack, grant_types=("client_credentials",), scopes=("jobs",))
    token = client.client_credentials(dpop=True)
    assert token.token_type == "DPoP"
    assert requests.get(dpop_stack["grpc"] + "/jobs", auth=token).status_code == 200


def test_a_public_clients_refresh_is_bound_to_its_key(dpop_stack):
    client, user = public_client(dpop_stack)
    token = client.resource_owner_password(*user, dpop=True)
    assert token.token_type == "DPoP" and token.refresh_token
    refreshed = client.refresh_token(token)  # the library proves with the token's key
    assert refreshed.token_type == "DPoP" and refreshed.refresh_token
    assert jwt.decode(refreshed.access_token, options={"verify_signature": False})["cnf"]["jkt"] == \
        token.dpop_key.dpop_jkt
    assert requests.get(dpop_stack["http"] + "/orders", auth=refreshed).status_code == 200

    form = {"grant_type": "refresh_token", "refresh_token": refreshed.refresh_token, "client_id": client.client_id}
    endpoint = client.token_endpoint
    stolen = httpx.post(endpoint, data=form)  # no proof
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_dpop_proof"
    other = httpx.post(endpoint, data=form, headers={"dpop": str(DPoPKey.generate().proof(htm="POST", htu=endpoint))})
    assert other.status_code == 400 and other.json()["error"] == "invalid_dpop_proof"
    # the family was not harmed: its holder still refreshes
    assert client.refresh_token(refreshed).token_type == "DPoP"


def test_hostile_dpop_headers_answer_401_fast_and_others_keep_being_served(dpop_stack, dpop_token):
    url, token = dpop_stack["grpc"] + "/orders", dpop_token.access_token
    hostile = ["x" * 16_000, "a.b.c", "e30.e30.e30", "." * 3000, "eyJ" + "A" * 12_000 + ".e30.e30",
               proof(DPoPKey.generate(), url, token) * 3]
    stop, served, refused = threading.Event(), [], []

    def attack() -> None:
        with httpx.Client() as http:
            while not stop.is_set():
                for value in hostile:
                    started = time.perf_counter()
                    r = http.get(url, headers={"authorization": f"DPoP {token}", "dpop": value})
                    refused.append((r.status_code, time.perf_counter() - started))

    threads = [threading.Thread(target=attack) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        with requests.Session() as session:
            for _ in range(20):
                r = session.get(url, auth=dpop_token)
                served.append(r.status_code)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert served == [200] * 20
    assert refused and {status for status, _ in refused} <= {401, 431}, {s for s, _ in refused}
    assert sorted(seconds for _, seconds in refused)[len(refused) // 2] < 0.1  # median


@pytest.fixture(scope="module")
def nonce_stack(tmp_path_factory, envoy_path):
    tmp = tmp_path_factory.mktemp("dpop-nonce")
    sidecar = admin_sidecar(tmp, {"AUTH_SIDECAR_DPOP__NONCES": "true", "AUTH_SIDECAR_DPOP__NONCE_SECRET": "n" * 32})
    upstream = EchoUpstream().start()
    grpc_listener, http_listener = free_port(), free_port()
    envoy = Envoy(dpop_envoy_config(sidecar, upstream, grpc_listener, http_listener), tmp).start()
    yield {"sidecar": sidecar, "grpc": f"http://127.0.0.1:{grpc_listener}", "http": f"http://127.0.0.1:{http_listener}"}
    envoy.stop()
    upstream.stop()
    sidecar.stop()


def test_nonce_at_the_token_endpoint(nonce_stack):
    sidecar = nonce_stack["sidecar"]
    app = sidecar.admin.app()
    endpoint = sidecar.http + "/oauth/token"
    first = httpx.post(endpoint, auth=(app.client_id, app.client_secret),
                       data={"grant_type": "password", "username": app.username, "password": app.password},
                       headers={"dpop": str(DPoPKey.generate().proof(htm="POST", htu=endpoint))})
    assert first.status_code == 400 and first.json()["error"] == "use_dpop_nonce" and first.headers["dpop-nonce"]
    client = OAuth2Client(endpoint, auth=(app.client_id, app.client_secret), testing=True)
    assert client.resource_owner_password(app.username, app.password, dpop=True).token_type == "DPoP"  # retried


@pytest.mark.parametrize("listener", ["grpc", "http"])
def test_nonce_through_envoy(nonce_stack, listener):
    sidecar = nonce_stack["sidecar"]
    app = sidecar.admin.app()
    client = OAuth2Client(sidecar.http + "/oauth/token", auth=(app.client_id, app.client_secret), testing=True)
    token = client.resource_owner_password(app.username, app.password, dpop=True)
    url = nonce_stack[listener] + "/orders"
    key, ath = token.dpop_key, b64url_sha256(token.access_token)
    auth = {"authorization": f"DPoP {token.access_token}"}
    bare = httpx.get(url, headers={**auth, "dpop": str(key.proof(htm="GET", htu=url, ath=ath))})
    assert bare.status_code == 401 and bare.headers["dpop-nonce"]  # Envoy passed the nonce on
    assert 'error="use_dpop_nonce"' in bare.headers["www-authenticate"]
    with_nonce = key.proof(htm="GET", htu=url, ath=ath, nonce=bare.headers["dpop-nonce"])
    assert httpx.get(url, headers={**auth, "dpop": str(with_nonce)}).status_code == 200
    # the library does the same on its own: a 401 use_dpop_nonce, then the request again with it
    fresh = client.resource_owner_password(app.username, app.password, dpop=True)
    assert requests.get(url, auth=fresh).status_code == 200
