"""mTLS-bound tokens (RFC 8705) end to end: a real Envoy terminating TLS with client certificates
(the configuration of docs/sender-constrained.md), the sidecar behind it, clients over real TLS
(httpx, and requests-oauth2client for the token requests). `cryptography` makes a CA, Envoy's
server certificate, two CA-issued client certificates and a self-signed one."""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import re
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest
import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from requests_oauth2client import InvalidClient, InvalidGrant, OAuth2Client

from tests.support.admin_sidecar import admin_sidecar
from tests.support.net import free_port
from tests.support.oauth import ADMIN_TOKEN
from tests.support.processes import ROOT, EchoUpstream, Envoy, Sidecar

# ---------------------------------------------------------------- certificates


@dataclass
class Cert:
    cert: Path
    key: Path
    der: bytes
    subject: str  # RFC 4514, as openssl -nameopt RFC2253 prints it

    @property
    def x5t(self) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(self.der).digest()).rstrip(b"=").decode()

    @property
    def x5c(self) -> str:
        return base64.b64encode(self.der).decode()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme, Inc."),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(folder: Path, name: str, subject: x509.Name, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
           *, ca: bool = False, server: bool = False) -> tuple[Cert, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    issuer_name, issuer_key = issuer or (subject, key)  # no issuer: self-signed
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    if not ca:
        usage = x509.ExtendedKeyUsageOID.SERVER_AUTH if server else x509.ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}-key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return Cert(folder / f"{name}.pem", folder / f"{name}-key.pem", cert.public_bytes(serialization.Encoding.DER),
                cert.subject.rfc4514_string()), key


@dataclass
class Pki:
    ca: Path
    server: Cert
    a: Cert  # CA-issued, CN=client-a
    b: Cert  # CA-issued, CN=client-b
    self_signed: Cert  # CN=client-a too, but signed by itself


def make_pki(folder: Path) -> Pki:
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test clients CA")])
    ca, ca_key = _issue(folder, "ca", ca_name, None, ca=True)
    issuer = (ca_name, ca_key)
    return Pki(ca.cert, _issue(folder, "server", _name("localhost"), issuer, server=True)[0],
               _issue(folder, "client-a", _name("client-a"), issuer)[0],
               _issue(folder, "client-b", _name("client-b"), issuer)[0],
               _issue(folder, "self-signed", _name("client-a"), None)[0])


# ---------------------------------------------------------------- the stack


def envoy_config_from_docs() -> dict:
    """The Envoy configuration of docs/sender-constrained.md's mTLS section."""
    text = (ROOT / "docs" / "sender-constrained.md").read_text()
    section = text[text.index("## mTLS-bound tokens (RFC 8705)"):]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match, "docs/sender-constrained.md's mTLS section has no yaml block"
    return yaml.safe_load(match.group(1))


def _swap(node, old, new):
    if isinstance(node, dict):
        return {k: _swap(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_swap(v, old, new) for v in node]
    return new[old.index(node)] if node in old else node


@dataclass
class Stack:
    sidecar: Sidecar
    envoy: Envoy
    upstream: EchoUpstream
    pki: Pki
    grpc_url: str  # listener 10443: gRPC ext_authz, the peer certificate in the CheckRequest
    token_url: str  # listener 10444: token service and HTTP-mode ext_authz, the certificate in XFCC
    self_signed_url: str  # listener 10445: token service for self-signed certificates
    plain_url: str  # no TLS at all, gRPC ext_authz (added by the test, not in the doc)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, envoy_path):
    tmp = tmp_path_factory.mktemp("mtls")
    pki = make_pki(tmp)
    sidecar = admin_sidecar(tmp, {"AUTH_SIDECAR_TRUSTED_PROXY_HOPS": "1"})
    upstream = EchoUpstream().start()
    ports = [free_port() for _ in range(4)]
    config = _swap(envoy_config_from_docs(),
                   [10443, 10444, 10445, 9191, 8080, 8000, "http://127.0.0.1:8080", "/etc/envoy/tls/server.pem",
                    "/etc/envoy/tls/server-key.pem", "/etc/envoy/tls/clients-ca.pem", "0.0.0.0"],
                   [*ports[:3], sidecar.grpc_port, sidecar.http_port, upstream.port, sidecar.http,
                    str(pki.server.cert), str(pki.server.key), str(pki.ca), "127.0.0.1"])
    listeners = config["static_resources"]["listeners"]
    plain = yaml.safe_load(yaml.safe_dump(listeners[0]))  # the gRPC listener without TLS
    plain["name"], plain["address"]["socket_address"]["port_value"] = "plain_grpc_authz", ports[3]
    del plain["filter_chains"][0]["transport_socket"]
    listeners.append(plain)
    envoy = Envoy(yaml.safe_dump(config), tmp).start()
    base = "https://127.0.0.1:{}"
    yield Stack(sidecar, envoy, upstream, pki, base.format(ports[0]), base.format(ports[1]), base.format(ports[2]),
                f"http://127.0.0.1:{ports[3]}")
    envoy.stop()
    upstream.stop()
    sidecar.stop()
    assert "Traceback" not in sidecar.logs(), sidecar.logs()[-3000:]


def tls(stack: Stack, cert: Cert | None) -> httpx.Client:
    """An HTTPS client trusting Envoy's server certificate, presenting `cert`."""
    context = ssl.create_default_context(cafile=str(stack.pki.ca))
    if cert is not None:
        context.load_cert_chain(str(cert.cert), str(cert.key))
    return httpx.Client(verify=context, timeout=10)


class AdminApi:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
        self.tenant = f"t-{uuid.uuid4().hex[:8]}"
        self.post("/admin/tenants", {"id": self.tenant, "name": self.tenant})

    def post(self, path: str, body: dict) -> dict:
        r = self.http.post(path, json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def client(self, **fields) -> dict:
        return self.post(f"/admin/tenants/{self.tenant}/clients",
                         {"name": "svc", "grant_types": ["client_credentials"], "scopes": ["read"], **fields})


@pytest.fixture(scope="module")
def admin(stack) -> AdminApi:
    return AdminApi(stack.sidecar.http)


@pytest.fixture(scope="module")
def pki_client(admin, stack) -> str:
    """A tls_client_auth client registered with client A's subject DN."""
    return admin.client(token_endpoint_auth_method="tls_client_auth",
                        tls_client_auth_subject_dn=stack.pki.a.subject)["client_id"]


def oauth2_client(stack: Stack, url: str, client_id: str, cert: Cert) -> OAuth2Client:
    """requests-oauth2client, authenticating by certificate: client_id in the body, the
    certificate on the TLS connection (requests' `cert=`)."""
    session = requests.Session()
    session.cert = (str(cert.cert), str(cert.key))
    session.verify = str(stack.pki.ca)
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment replaces `verify`
    return OAuth2Client(token_endpoint=url + "/oauth/token", auth=client_id, session=session)


@pytest.fixture(scope="module")
def bound_token(stack, pki_client) -> str:
    """An access token bound to client A's certificate, by tls_client_auth through Envoy."""
    return oauth2_client(stack, stack.token_url, pki_client, stack.pki.a).client_credentials(scope="read").access_token


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def get(stack: Stack, url: str, token: str, cert: Cert | None, **headers) -> httpx.Response:
    with tls(stack, cert) as http:
        return http.get(url + "/orders", headers={"authorization": f"Bearer {token}", **headers})


def assert_invalid_token(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert r.json()["error"] == "invalid_token"
    assert "certificate" in r.json()["error_description"]


# ---------------------------------------------------------------- tests


def test_tls_client_auth_through_envoy_gives_a_token_bound_to_the_certificate(stack, bound_token):
    assert claims(bound_token)["cnf"] == {"x5t#S256": stack.pki.a.x5t}


@pytest.mark.parametrize("listener", ["grpc", "http"])
def test_bound_token_with_its_certificate_passes(stack, bound_token, pki_client, listener):
    url = stack.grpc_url if listener == "grpc" else stack.token_url
    for _ in range(2):  # the second one from the verification cache: the certificate is checked again
        r = get(stack, url, bound_token, stack.pki.a)
        assert r.status_code == 200, r.text
        assert r.json()["headers"]["x-client-id"] == [pki_client]


@pytest.mark.parametrize("listener", ["grpc", "http"])
def test_bound_token_with_another_certificate_is_401(stack, bound_token, listener):
    url = stack.grpc_url if listener == "grpc" else stack.token_url
    assert get(stack, url, bound_token, stack.pki.a).status_code == 200  # cached as valid
    r = get(stack, url, bound_token, stack.pki.b)
    assert_invalid_token(r)
    assert "did not present" in r.json()["error_description"]


def test_bound_token_without_a_certificate_is_401_even_with_a_forged_xfcc(stack, bound_token):
    a = stack.pki.a
    forged = f'Hash={hashlib.sha256(a.der).hexdigest()};Subject="{a.subject}"'
    for headers in ({}, {"x-forwarded-client-cert": forged}):  # Envoy drops an XFCC on a plain connection
        r = get(stack, stack.plain_url, bound_token, None, **headers)
        assert_invalid_token(r)
        assert "presented none" in r.json()["error_description"]


def test_an_unbound_token_needs_no_certificate(stack, admin):
    secret_client = admin.client()
    r = httpx.post(stack.sidecar.http + "/oauth/token", auth=(secret_client["client_id"],
                                                             secret_client["client_secret"]),
                   data={"grant_type": "client_credentials"})
    token = r.json()["access_token"]
    assert "cnf" not in claims(token)
    assert get(stack, stack.plain_url, token, None).status_code == 200


def test_wrong_subject_dn_is_invalid_client(stack, pki_client):
    with pytest.raises(InvalidClient, match="tls_client_auth_subject_dn"):
        oauth2_client(stack, stack.token_url, pki_client, stack.pki.b).client_credentials(scope="read")
    with tls(stack, stack.pki.b) as http:  # B claiming A's certificate: Envoy replaces the XFCC
        a = stack.pki.a
        r = http.post(stack.token_url + "/oauth/token", data={"grant_type": "client_credentials",
                                                              "client_id": pki_client},
                      headers={"x-forwarded-client-cert": f'Hash={hashlib.sha256(a.der).hexdigest()};'
                                                          f'Subject="{a.subject}"'})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert "tls_client_auth_subject_dn" in r.json()["error_description"]


def test_tls_client_auth_is_refused_where_the_chain_is_not_verified(stack, pki_client):
    # the self-signed listener sends no Subject: a self-made certificate with A's subject gets nothing
    with tls(stack, stack.pki.self_signed) as http:
        r = http.post(stack.self_signed_url + "/oauth/token", data={"grant_type": "client_credentials",
                                                                    "client_id": pki_client})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_self_signed_tls_client_auth(stack, admin):
    me = stack.pki.self_signed
    client_id = admin.client(token_endpoint_auth_method="self_signed_tls_client_auth",
                             jwks={"keys": [{"kty": "EC", "x5c": [me.x5c]}]})["client_id"]
    token = oauth2_client(stack, stack.self_signed_url, client_id, me).client_credentials(scope="read").access_token
    assert claims(token)["cnf"] == {"x5t#S256": me.x5t}
    with tls(stack, stack.pki.a) as http:  # a certificate it did not register
        r = http.post(stack.self_signed_url + "/oauth/token", data={"grant_type": "client_credentials",
                                                                    "client_id": client_id})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert "registered" in r.json()["error_description"]


def test_introspection_returns_cnf(stack, pki_client, bound_token):
    with tls(stack, stack.pki.a) as http:  # the caller authenticates by certificate too
        r = http.post(stack.token_url + "/oauth/introspect", data={"token": bound_token, "client_id": pki_client})
    assert r.status_code == 200, r.text
    assert r.json()["active"] is True
    assert r.json()["cnf"] == {"x5t#S256": stack.pki.a.x5t}


def test_secret_client_asking_for_bound_tokens(stack, admin):
    c = admin.client(tls_client_certificate_bound_access_tokens=True)
    with tls(stack, stack.pki.b) as http:
        r = http.post(stack.token_url + "/oauth/token", auth=(c["client_id"], c["client_secret"]),
                      data={"grant_type": "client_credentials"})
    assert r.status_code == 200, r.text
    assert claims(r.json()["access_token"])["cnf"] == {"x5t#S256": stack.pki.b.x5t}
    r = httpx.post(stack.sidecar.http + "/oauth/token", auth=(c["client_id"], c["client_secret"]),
                   data={"grant_type": "client_credentials"})  # no proxy, no certificate
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_xfcc_is_ignored_when_no_proxy_is_trusted(stack, bound_token, tmp_path):
    """trusted_proxy_hops 0: whoever reaches the sidecar can write XFCC; it authenticates nothing."""
    direct = admin_sidecar(tmp_path, keys=Path(stack.sidecar.env["AUTH_SIDECAR_KEYS_DIR"]))
    try:
        a = stack.pki.a
        forged = {"x-forwarded-client-cert": f'Hash={hashlib.sha256(a.der).hexdigest()};Subject="{a.subject}"'}
        client_id = AdminApi(direct.http).client(token_endpoint_auth_method="tls_client_auth",
                                                 tls_client_auth_subject_dn=a.subject)["client_id"]
        r = httpx.post(direct.http + "/oauth/token", headers=forged,
                       data={"grant_type": "client_credentials", "client_id": client_id})
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        r = httpx.get(direct.http + "/ext_authz/orders", headers={"authorization": f"Bearer {bound_token}", **forged})
        assert_invalid_token(r)
    finally:
        direct.stop()


def test_password_and_refresh_tokens_of_a_certificate_client_are_bound(stack, admin):
    client_id = admin.post(f"/admin/tenants/{admin.tenant}/clients", {
        "name": "app", "grant_types": ["password", "refresh_token"], "scopes": ["read"],
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_subject_dn": stack.pki.a.subject})["client_id"]
    admin.post(f"/admin/tenants/{admin.tenant}/users", {"username": "alice", "password": "correct horse"})
    client = oauth2_client(stack, stack.token_url, client_id, stack.pki.a)
    first = client.resource_owner_password("alice", "correct horse", scope="read")
    assert claims(first.access_token)["cnf"] == {"x5t#S256": stack.pki.a.x5t}
    refreshed = client.refresh_token(first.refresh_token)
    assert claims(refreshed.access_token)["cnf"] == {"x5t#S256": stack.pki.a.x5t}
    assert get(stack, stack.grpc_url, refreshed.access_token, stack.pki.a).status_code == 200
    with pytest.raises(InvalidClient):  # the refresh token is the client's: another certificate is not
        oauth2_client(stack, stack.token_url, client_id, stack.pki.b).refresh_token(refreshed.refresh_token)


def test_a_public_clients_refresh_tokens_are_bound_to_its_certificate(stack, admin):
    """RFC 8705 §4: no client authentication binds a public client's refresh token, so the
    family is bound to the certificate it logged in with; B holding A's refresh token gets nothing."""
    client_id = admin.post(f"/admin/tenants/{admin.tenant}/clients", {
        "name": "spa", "grant_types": ["password", "refresh_token"], "scopes": ["read"],
        "token_endpoint_auth_method": "none", "tls_client_certificate_bound_access_tokens": True})["client_id"]
    admin.post(f"/admin/tenants/{admin.tenant}/users", {"username": "bob", "password": "correct horse"})
    a = oauth2_client(stack, stack.token_url, client_id, stack.pki.a)
    first = a.resource_owner_password("bob", "correct horse", scope="read")
    refreshed = a.refresh_token(first.refresh_token)
    assert claims(refreshed.access_token)["cnf"] == {"x5t#S256": stack.pki.a.x5t}
    assert get(stack, stack.grpc_url, refreshed.access_token, stack.pki.a).status_code == 200
    with pytest.raises(InvalidGrant, match="another client certificate"):
        oauth2_client(stack, stack.token_url, client_id, stack.pki.b).refresh_token(refreshed.refresh_token)
    assert a.refresh_token(refreshed.refresh_token).access_token  # still its holder's
