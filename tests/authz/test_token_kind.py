"""Token confusion: a trusted issuer's ID token (or any JWT typed as something other than an
access token) is a 401, though it is signed by a trusted key and its `aud` is accepted; the
issuer's access tokens still pass. `require_access_token_typ` accepts only RFC 9068 `at+jwt`."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from authz.keys import KeyRing, public_pem
from authz.request import AuthRequest
from config import ConfigError, load_settings
from sidecar.container import build
from sidecar.oauth.errors import InvalidGrant
from tests.authz.checks import answer
from tests.support.processes import ROOT
from tests.support.tokens import b64

IDP = "https://idp.example"  # types nothing: its access tokens say typ JWT or nothing
STRICT = "https://strict-idp.example"  # require_access_token_typ: only at+jwt
AUD = "orders-api"
KEY = ec.generate_private_key(ec.SECP256R1())
ES256 = jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA256)
ID_TOKEN = "an ID token is not an access token"


@pytest.fixture(scope="module")
def container():
    pem = public_pem(KEY.public_key()).decode()
    trusted = [{"issuer": IDP, "keys": [{"kid": "k1", "alg": "ES256", "pem": pem}], "audiences": [AUD]},
               {"issuer": STRICT, "keys": [{"kid": "k1", "alg": "ES256", "pem": pem}], "audiences": [AUD],
                "require_access_token_typ": True}]
    settings = load_settings(environ={"AUTH_SIDECAR_TRUSTED_ISSUERS": json.dumps(trusted)})
    assert settings.trusted_issuers[1].require_access_token_typ and not settings.trusted_issuers[0].require_access_token_typ
    return build(settings, KeyRing.ephemeral_key("ES256"))


def make(iss: str = IDP, typ: Any = "<none>", claim_typ: str | None = None, **claims: Any) -> str:
    """Signed by the trusted key; `typ` the JOSE header's ("<none>": no typ at all), `claim_typ`
    the payload's `typ` claim (Keycloak's)."""
    now = int(time.time())
    payload = {"iss": iss, "sub": "alice", "aud": AUD, "exp": now + 600, "iat": now, "scope": "read", **claims}
    if claim_typ is not None:
        payload["typ"] = claim_typ
    header = {"alg": "ES256", "kid": "k1"} if typ == "<none>" else {"alg": "ES256", "kid": "k1", "typ": typ}
    # signed by hand: PyJWT writes typ JWT unless told otherwise, and drops an empty one
    signing_input = f"{b64(json.dumps(header))}.{b64(json.dumps(payload))}"
    return f"{signing_input}.{b64(ES256.sign(signing_input.encode(), KEY))}"


async def decide(container, bearer: str):
    return await answer(container.engine, AuthRequest({"authorization": f"Bearer {bearer}"}, "/orders"))


ID_TOKENS = {
    "header typ id_token+jwt": dict(typ="id_token+jwt"),
    "header typ id+jwt": dict(typ="id+jwt"),
    "header typ application/id_token+jwt": dict(typ="application/id_token+jwt"),
    "header typ ID_TOKEN+JWT (media types are case-insensitive)": dict(typ="ID_TOKEN+JWT"),
    "Cognito token_use id": dict(typ="JWT", token_use="id"),
    "Keycloak claim typ ID": dict(typ="JWT", claim_typ="ID"),
    "Keycloak claim typ ID, no header typ": dict(claim_typ="ID"),
}

NOT_ACCESS_TOKENS = {
    "OIDC logout token": dict(typ="logout+jwt"),
    "a DPoP proof's type": dict(typ="dpop+jwt"),
    "JOSE": dict(typ="JOSE"),
    "empty typ": dict(typ=""),
}

ACCESS_TOKENS = {
    "no typ": dict(),
    "typ JWT": dict(typ="JWT"),
    "typ jwt": dict(typ="jwt"),
    "typ application/jwt": dict(typ="application/jwt"),
    "typ at+jwt": dict(typ="at+jwt"),
    "typ AT+JWT": dict(typ="AT+JWT"),
    "typ application/at+jwt": dict(typ="application/at+jwt"),
    "Cognito token_use access": dict(typ="JWT", token_use="access"),
    "Keycloak claim typ Bearer": dict(typ="JWT", claim_typ="Bearer"),
}


@pytest.mark.parametrize("case", list(ID_TOKENS))
async def test_id_token_of_a_trusted_issuer_is_401(container, case):
    d = await decide(container, make(**ID_TOKENS[case]))
    assert not d.allowed and d.status == 401, (case, d.status, d.description)
    assert d.error == "invalid_token" and 'error="invalid_token"' in d.www_authenticate
    assert d.description == ID_TOKEN, case
    assert d.reason == "id_token"


@pytest.mark.parametrize("case", list(NOT_ACCESS_TOKENS))
async def test_other_typ_is_401(container, case):
    d = await decide(container, make(**NOT_ACCESS_TOKENS[case]))
    assert d.status == 401 and d.error == "invalid_token", case
    assert "not an access token type" in d.description, (case, d.description)


async def test_non_string_typ_is_401(container):
    d = await decide(container, make(typ=1))
    assert d.status == 401 and d.error == "invalid_token" and "typ must be a string" in d.description


@pytest.mark.parametrize("case", list(ACCESS_TOKENS))
async def test_access_token_of_a_trusted_issuer_passes(container, case):
    d = await decide(container, make(**ACCESS_TOKENS[case]))
    assert d.allowed and d.status == 200, (case, d.description)
    assert d.headers["x-user-id"] == "alice"


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt"])
async def test_require_access_token_typ_accepts_at_jwt(container, typ):
    assert (await decide(container, make(STRICT, typ))).allowed


@pytest.mark.parametrize("typ", ["<none>", "JWT", "application/jwt"])
async def test_require_access_token_typ_refuses_untyped(container, typ):
    d = await decide(container, make(STRICT, typ))
    assert d.status == 401 and d.error == "invalid_token"
    assert d.description == "token is not an access token (typ must be at+jwt)"
    # the same token from the issuer without the setting passes
    assert (await decide(container, make(IDP, typ))).allowed


async def test_require_access_token_typ_still_names_an_id_token(container):
    d = await decide(container, make(STRICT, "at+jwt", token_use="id"))
    assert d.status == 401 and d.description == ID_TOKEN


async def test_refresh_tokens_are_still_refused(container):
    for shape in (dict(typ="rt+jwt"), dict(typ="JWT", token_use="refresh"), dict(claim_typ="Refresh")):
        d = await decide(container, make(**shape))
        assert d.status == 401 and d.description == "refresh tokens are not access tokens", shape


async def test_what_the_token_service_signs_is_accepted(container):
    issued = container.issuer.access_token(subject="bob", client_id="app", tenant="acme", scope=["read"], ttl=60)
    assert jwt.get_unverified_header(issued.token)["typ"] == "at+jwt"
    d = await decide(container, issued.token)
    assert d.allowed and d.headers["x-user-id"] == "bob"


async def test_an_id_token_is_no_token_exchange_evidence(container):
    presented = container.oauth.presented
    for what in ("subject_token", "actor_token"):
        with pytest.raises(InvalidGrant) as refused:
            await presented.verify(make(typ="id_token+jwt"), what)
        assert refused.value.error == "invalid_grant" and refused.value.description == f"{what}: {ID_TOKEN}"
    assert (await presented.verify(make(typ="JWT"), "subject_token")).identity.subject == "alice"


def test_the_documented_example_is_a_valid_config():
    text = (ROOT / "docs" / "configuration.md").read_text()
    section = text[text.index("### Trusted issuers"):text.index("### DPoP")]
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    settings = load_settings(environ={}, overrides=example)
    assert [t.require_access_token_typ for t in settings.trusted_issuers] == [False, True]
    with pytest.raises(ConfigError, match="require_access_token_typ"):
        load_settings(environ={"AUTH_SIDECAR_TRUSTED_ISSUERS": json.dumps(
            [{"issuer": IDP, "jwks_uri": "https://idp.example/jwks", "require_access_token_typ": "sometimes"}])})
