"""DPoP at the token endpoint (RFC 9449 §5) over each store: a public client's refresh family
keeps its key binding through rotations (RefreshRecord.jkt written and read back by the memory
and the Redis store), proofs are used once, and errors are RFC 9449's."""

from __future__ import annotations

import time

import httpx
import jwt
from requests_oauth2client import DPoPKey, OAuth2Client


def public_client(svc) -> tuple[str, str, str]:
    app = svc.admin.app()
    made = svc.admin.post(f"/admin/tenants/{app.tenant}/clients",
                          {"name": "spa", "grant_types": ["password", "refresh_token"], "scopes": ["read"],
                           "token_endpoint_auth_method": "none"})
    return made["client_id"], app.username, app.password


def test_public_client_refresh_family_stays_bound(svc):
    client_id, username, password = public_client(svc)
    endpoint = svc.http + "/oauth/token"
    client = OAuth2Client(endpoint, client_id=client_id, testing=True)
    token = client.resource_owner_password(username, password, dpop=True)
    jkt = token.dpop_key.dpop_jkt
    for _ in range(2):  # each rotation's successor is bound too
        token = client.refresh_token(token)
        assert token.token_type == "DPoP"
        assert jwt.decode(token.access_token, options={"verify_signature": False})["cnf"] == {"jkt": jkt}
    form = {"grant_type": "refresh_token", "refresh_token": token.refresh_token, "client_id": client_id}
    for headers in ({}, {"dpop": str(DPoPKey.generate().proof(htm="POST", htu=endpoint))}):
        r = httpx.post(endpoint, data=form, headers=headers)
        assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof", r.text


def test_proofs_at_the_token_endpoint_are_checked_and_used_once(svc):
    app = svc.admin.app(grant_types=("client_credentials",), scopes=("jobs",))
    endpoint = svc.http + "/oauth/token"
    key = DPoPKey.generate()

    def ask(proof: str) -> httpx.Response:
        return httpx.post(endpoint, auth=(app.client_id, app.client_secret), data={"grant_type": "client_credentials"},
                          headers={"dpop": proof})

    used = str(key.proof(htm="POST", htu=endpoint))
    first = ask(used)
    assert first.status_code == 200 and first.json()["token_type"] == "DPoP"
    assert ask(used).json()["error_description"] == "DPoP proof was already used"
    refused = {
        "htu": str(key.proof(htm="POST", htu=svc.http + "/oauth/revoke")),
        "htm": str(key.proof(htm="GET", htu=endpoint)),
        "too old": str(DPoPKey(key.private_key, iat_generator=lambda: int(time.time()) - 600).proof(
            htm="POST", htu=endpoint)),
        "compact JWS": "garbage",
    }
    for words, proof in refused.items():
        r = ask(proof)
        assert r.status_code == 400 and r.json()["error"] == "invalid_dpop_proof", (words, r.text)
        assert words in r.json()["error_description"], (words, r.text)
    # the issuer URL's token endpoint is accepted too (a client configured from the metadata)
    assert ask(str(key.proof(htm="POST", htu="http://127.0.0.1:8080/oauth/token"))).status_code == 200


def test_jwt_bearer_with_a_proof_gives_a_bound_token(svc):
    tenant = svc.admin.app().tenant
    su = svc.admin.post(f"/admin/tenants/{tenant}/service-users", {"name": "etl", "org_id": "org-7"})
    key = svc.admin.post(f"/admin/service-users/{su['id']}/keys", {"title": "etl-key"})
    now, endpoint = int(time.time()), svc.http + "/oauth/token"
    assertion = jwt.encode({"iss": key["principal_id"], "sub": key["principal_id"],
                            "aud": "http://127.0.0.1:8080/oauth/token", "iat": now,
                            "exp": now + 120, "jti": f"etl-dpop-{now}"}, key["private_key"], algorithm="ES256",
                           headers={"kid": key["kid"]})
    dpop = DPoPKey.generate(alg="EdDSA")
    r = httpx.post(endpoint, data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
                   headers={"dpop": str(dpop.proof(htm="POST", htu=endpoint))})
    assert r.status_code == 200 and r.json()["token_type"] == "DPoP", r.text
    claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
    assert claims["cnf"] == {"jkt": dpop.dpop_jkt}
