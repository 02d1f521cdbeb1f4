"""Token confusion, end to end: a trusted OpenID provider's ID token, signed by its JWKS key and
naming an accepted audience, is refused 401 through the real Envoy of docs/envoy.md in gRPC and
HTTP mode, and as token-exchange evidence; the same provider's access token passes. A second
provider with `require_access_token_typ` accepts only `typ: at+jwt`."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from authz.keys import write_new_key
from tests.e2e.conftest import Stack, start_stack, stop_stack
from tests.support.jwks_server import IssuerKey, JwksServer
from tests.support.oauth import ADMIN_TOKEN, Admin, App, login

IDP = "https://idp.example"
STRICT = "https://strict-idp.example"
AUD = "orders-api"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT = "urn:ietf:params:oauth:token-type:jwt"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
ID_TOKEN = "an ID token is not an access token"


@dataclass
class World:
    stack: Stack
    idp: JwksServer
    exchanger: App  # a confidential client that may exchange tokens for service-b (and alice, its user)

    def token(self, iss: str = IDP, typ: str = "JWT", claim_typ: str | None = None, **claims: Any) -> str:
        """Signed by the provider's JWKS key; `typ` the header's, `claim_typ` the payload's (Keycloak's)."""
        now = int(time.time())
        payload = {"iss": iss, "sub": "ext-user", "aud": AUD, "exp": now + 600, "iat": now, "scope": "read",
                   **claims}
        if claim_typ is not None:
            payload["typ"] = claim_typ
        key = self.idp.keys[0]
        return jwt.encode(payload, key.private, algorithm="ES256", headers={"kid": key.kid, "typ": typ})

    def exchange(self, **data: str) -> httpx.Response:
        return httpx.post(self.stack.sidecar.http + "/oauth/token",
                          auth=(self.exchanger.client_id, self.exchanger.client_secret),
                          data={"grant_type": EXCHANGE, "audience": "service-b", **data})


@pytest.fixture(scope="module")
def world(tmp_path_factory, envoy_path):
    tmp = tmp_path_factory.mktemp("id-tokens")
    write_new_key(tmp / "keys")
    idp = JwksServer()
    idp.keys.append(IssuerKey())
    trusted = [{"issuer": IDP, "jwks_uri": idp.uri, "audiences": [AUD]},
               {"issuer": STRICT, "jwks_uri": idp.uri, "audiences": [AUD], "require_access_token_typ": True}]
    stack = start_stack(tmp, {"AUTH_SIDECAR_KEYS_DIR": str(tmp / "keys"), "AUTH_SIDECAR_ADMIN_TOKEN": ADMIN_TOKEN,
                              "AUTH_SIDECAR_TRUSTED_ISSUERS": json.dumps(trusted)})
    try:
        exchanger = Admin(stack.sidecar.http).app(grant_types=("password", EXCHANGE), scopes=("read",),
                                                  exchange_audiences=["service-b"])
        yield World(stack, idp, exchanger)
    finally:
        stop_stack(stack)
        idp.stop()



def get(url: str, token: str) -> httpx.Response:
    return httpx.get(url + "/orders", headers={"authorization": f"Bearer {token}"})


def assert_refused(r: httpx.Response, description: str) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith('Bearer realm="auth-sidecar", error="invalid_token"')
    assert description in r.headers["www-authenticate"]
    assert r.json() == {"error": "invalid_token", "error_description": description}


def test_id_token_refused_access_token_passes(world, envoy):
    access = get(envoy, world.token())
    assert access.status_code == 200, access.text
    assert access.json()["headers"]["x-user-id"] == ["ext-user"]
    for id_token in (world.token(typ="id_token+jwt"), world.token(typ="JWT", token_use="id"),
                     world.token(claim_typ="ID")):
        assert_refused(get(envoy, id_token), ID_TOKEN)
    # the token service's own tokens (typ at+jwt) still pass
    own = login(world.stack.sidecar.http, world.exchanger)
    assert own.status_code == 200, own.text
    assert get(envoy, own.json()["access_token"]).status_code == 200


def test_require_access_token_typ_accepts_only_at_jwt(world, envoy):
    assert get(envoy, world.token(STRICT, typ="at+jwt")).status_code == 200
    assert_refused(get(envoy, world.token(STRICT, typ="JWT")), "token is not an access token (typ must be at+jwt)")
    assert get(envoy, world.token(IDP, typ="JWT")).status_code == 200  # the other issuer has no such rule


@pytest.mark.parametrize("token_type", [ACCESS, JWT])
def test_id_token_is_no_exchange_evidence(world, token_type):
    id_token = world.token(typ="id_token+jwt")
    r = world.exchange(subject_token=id_token, subject_token_type=token_type)
    assert r.status_code == 400 and r.json() == {"error": "invalid_grant",
                                                 "error_description": f"subject_token: {ID_TOKEN}"}, r.text
    r = world.exchange(subject_token=world.token(), subject_token_type=token_type,
                       actor_token=world.token(typ="JWT", token_use="id"), actor_token_type=token_type)
    assert r.status_code == 400 and r.json() == {"error": "invalid_grant",
                                                 "error_description": f"actor_token: {ID_TOKEN}"}, r.text
    # the provider's access token is exchanged
    r = world.exchange(subject_token=world.token(), subject_token_type=token_type)
    assert r.status_code == 200, r.text
    assert jwt.decode(r.json()["access_token"], options={"verify_signature": False})["sub"] == "ext-user"
