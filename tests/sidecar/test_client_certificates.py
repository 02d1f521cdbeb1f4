"""RFC 8705 client certificates at the token service: subject DN comparison, and the certificate
client fields through the admin API over each store (the token requests themselves run through
Envoy in tests/e2e/test_mtls.py)."""

from __future__ import annotations

import base64

import httpx
import pytest

from sidecar.oauth.certificates import dn_key, registered_thumbprints
from tests.support.oauth import ADMIN_TOKEN


@pytest.mark.parametrize("registered, presented", [
    ("CN=client-a,O=Acme\\, Inc.,C=FR", "CN=client-a,O=Acme\\, Inc.,C=FR"),
    ("CN=client-a,O=Acme\\, Inc.,C=FR", "cn = Client-A , o=ACME\\2C  Inc., 2.5.4.6=fr"),
    ("CN=a+UID=7,O=Acme", "UID=7+CN=a,O=Acme"),
    ("emailAddress=a@example.com,CN=a", "1.2.840.113549.1.9.1=A@example.com,CN=a"),
    ("CN=caf\\C3\\A9", "CN=café"),
])
def test_equal_distinguished_names(registered, presented):
    assert dn_key(registered) is not None and dn_key(registered) == dn_key(presented)


@pytest.mark.parametrize("registered, presented", [
    ("CN=client-a,O=Acme", "CN=client-b,O=Acme"),
    ("CN=client-a,O=Acme", "O=Acme,CN=client-a"),  # RDN order counts
    ("CN=client-a,O=Acme", "CN=client-a"),
    ("CN=client-a,O=Acme", "CN=client-a,O=Acme,C=FR"),
    ("CN=a\\,O=Acme", "CN=a,O=Acme"),  # an escaped comma is part of the value
    ("CN=client-a", ""),
])
def test_different_distinguished_names(registered, presented):
    assert dn_key(registered) != dn_key(presented)


@pytest.mark.parametrize("text", ["", "  ", "client-a", "=a", "CN=a\\"])
def test_not_distinguished_names(text):
    assert dn_key(text) is None


def _client(svc, body: dict) -> httpx.Response:
    tenant = "certs"
    httpx.post(svc.http + "/admin/tenants", headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
               json={"id": tenant, "name": tenant})
    return httpx.post(f"{svc.http}/admin/tenants/{tenant}/clients", headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
                      json={"name": "svc", "grant_types": ["client_credentials"], **body})


X5C = base64.b64encode(b"0\x82\x01\x00 not really DER, compared byte for byte").decode()


def test_certificate_client_fields_round_trip(svc):
    jwks = {"keys": [{"kty": "EC", "kid": "k1", "x5c": [X5C]}]}
    r = _client(svc, {"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks": jwks})
    assert r.status_code == 201, r.text
    assert "client_secret" not in r.json()  # a certificate client has no secret
    path = f"{svc.http}/admin/tenants/certs/clients/{r.json()['client_id']}"
    got = httpx.get(path, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).json()
    assert got["jwks"] == jwks and got["token_endpoint_auth_method"] == "self_signed_tls_client_auth"
    assert registered_thumbprints(got["jwks"])  # as the token endpoint reads it back from the store
    renewed = {"keys": [*jwks["keys"], {"kty": "EC", "x5c": [base64.b64encode(b"the next one").decode()]}]}
    r = httpx.patch(path, headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
                    json={"jwks": renewed, "tls_client_certificate_bound_access_tokens": True})
    assert r.status_code == 200, r.text
    assert r.json()["jwks"] == renewed and r.json()["tls_client_certificate_bound_access_tokens"] is True


@pytest.mark.parametrize("body, field", [
    ({"token_endpoint_auth_method": "self_signed_tls_client_auth"}, "jwks"),
    ({"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks": {"keys": []}}, "jwks.keys"),
    ({"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks": {"keys": [{"kty": "EC"}]}}, "x5c"),
    ({"token_endpoint_auth_method": "self_signed_tls_client_auth",
      "jwks": {"keys": [{"x5c": ["not_base64-url!"]}]}}, "x5c"),
    ({"token_endpoint_auth_method": "tls_client_auth"}, "tls_client_auth_subject_dn"),
])
def test_certificate_client_fields_refused(svc, body, field):
    r = _client(svc, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_request" and field in r.json()["error_description"]
