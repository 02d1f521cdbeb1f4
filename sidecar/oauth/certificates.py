"""Client certificates at the token endpoint (RFC 8705): the one the client presented to the
TLS-terminating proxy in front, and whether it authenticates a client (`tls_client_auth`,
`self_signed_tls_client_auth`) and binds its tokens (`cnf.x5t#S256`).

The sidecar's HTTP port does not terminate TLS: the certificate arrives in
`x-forwarded-client-cert` (XFCC), believed only with `trusted_proxy_hops` ≥ 1, and then only
the element `trusted_proxy_hops` from the right (authz/mtls.py), the one the outermost trusted
proxy wrote. `tls_client_auth` reads that element's `Subject` only, never a subject parsed from
`Cert`: a proxy sends `Subject` where it verified the chain (docs/sender-constrained.md), so a
listener that accepts self-signed certificates (and sends no `Subject`) cannot pass for a CA's.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from authz.mtls import XFCC, der_thumbprint, forwarded_element
from sidecar.oauth.errors import InvalidClient, InvalidGrant, InvalidRequest
from sidecar.store.records import Client

CERTIFICATE_METHODS = ("tls_client_auth", "self_signed_tls_client_auth")


@dataclass(frozen=True, slots=True)
class PresentedCertificate:
    thumbprint: str  # x5t#S256
    subject: str  # RFC 4514 text as the proxy printed it; "" when it sent none


def presented_certificate(request: Request, hops: int) -> PresentedCertificate | None:
    if hops < 1:
        return None  # no proxy is trusted: an XFCC header is whatever the caller wrote
    lines = request.headers.getlist(XFCC)
    element = forwarded_element(",".join(lines), hops) if lines else None
    thumbprint = element.thumbprint() if element is not None else None
    if element is None or thumbprint is None:
        return None
    return PresentedCertificate(thumbprint, element.subject)


def registered_thumbprints(jwks: dict[str, Any] | None) -> list[str]:
    """The `x5t#S256` of the first `x5c` certificate of each key of a client's JWK Set."""
    found = []
    for key in (jwks or {}).get("keys", ()):
        chain = key.get("x5c") if isinstance(key, dict) else None
        if chain:
            try:
                found.append(der_thumbprint(base64.b64decode(chain[0], validate=True)))
            except (binascii.Error, ValueError, TypeError):
                continue  # validated when registered: cannot happen unless the store was altered
    return found


def certificate_authenticates(client: Client, certificate: PresentedCertificate | None) -> bool:
    """RFC 8705 §2.1 (the subject DN a CA certified) or §2.2 (a registered certificate)."""
    if certificate is None:
        return False
    if client.token_endpoint_auth_method == "tls_client_auth":
        wanted = dn_key(client.tls_client_auth_subject_dn or "")
        return bool(wanted) and dn_key(certificate.subject) == wanted
    if client.token_endpoint_auth_method == "self_signed_tls_client_auth":
        presented = certificate.thumbprint.encode()
        matches = [hmac.compare_digest(presented, t.encode()) for t in registered_thumbprints(client.jwks)]
        return any(matches)
    return False


def certificate_refusal(client: Client | None, certificate: PresentedCertificate | None,
                        secret: str) -> InvalidClient | None:
    """Why a certificate client (RFC 8705) failed to authenticate; None for other clients."""
    method = client.token_endpoint_auth_method if client is not None else ""
    if method not in CERTIFICATE_METHODS:
        return None
    if secret:
        return InvalidClient(f"this client authenticates with a certificate ({method}), not a secret")
    if certificate is None:
        return InvalidClient(f"this client authenticates with a certificate ({method}); no client certificate "
                             "was forwarded by a trusted proxy")
    if method == "tls_client_auth":
        return InvalidClient("the client certificate's subject is not this client's tls_client_auth_subject_dn")
    return InvalidClient("the client certificate is not one this client registered (jwks x5c)")


def bound_thumbprint(request: Request, hops: int) -> str:
    """The thumbprint to bind a token to; a client whose tokens are bound must present one."""
    certificate = presented_certificate(request, hops)
    if certificate is None:
        raise InvalidRequest("this client's tokens are bound to its certificate "
                             "(tls_client_certificate_bound_access_tokens); present one")
    return certificate.thumbprint


def check_bound_family(request: Request, hops: int, x5t: str | None, what: str = "this refresh token") -> None:
    """A refresh family bound to a public client's certificate (RFC 8705 §4; `x5t`, None when
    it is not bound) is used only by a request presenting that certificate; else
    `invalid_grant` (RFC 6749 §5.2). The family is left alone: a refusal is no reuse."""
    if x5t is None:
        return
    certificate = presented_certificate(request, hops)
    if certificate is None:
        raise InvalidGrant(f"{what} is bound to a client certificate (RFC 8705); no client certificate was "
                           "forwarded by a trusted proxy")
    if not hmac.compare_digest(certificate.thumbprint.encode(), x5t.encode()):
        raise InvalidGrant(f"{what} is bound to another client certificate than the one presented")


def binds_tokens(client: Client | None) -> bool:
    """Tokens issued to it carry `cnf.x5t#S256` (RFC 8705 §3)."""
    return client is not None and (client.token_endpoint_auth_method in CERTIFICATE_METHODS
                                   or client.tls_client_certificate_bound_access_tokens)


# Distinguished names (RFC 4514 text), compared as RFC 4517 distinguishedNameMatch does for
# the usual string attributes: types by name or OID, case-insensitive; values unescaped, case
# folded, surrounding spaces dropped and inner runs of spaces made one; the attributes of a
# multi-valued RDN in any order. RDN order counts (both Envoy and `openssl x509 -nameopt
# RFC2253` print the most specific first, CN=…,O=…,C=…).
_TYPES = {"2.5.4.3": "CN", "COMMONNAME": "CN", "2.5.4.4": "SN", "SURNAME": "SN", "2.5.4.5": "SERIALNUMBER",
          "2.5.4.6": "C", "COUNTRYNAME": "C", "2.5.4.7": "L", "LOCALITYNAME": "L", "2.5.4.8": "ST",
          "STATEORPROVINCENAME": "ST", "S": "ST", "2.5.4.9": "STREET", "STREETADDRESS": "STREET", "2.5.4.10": "O",
          "ORGANIZATIONNAME": "O", "2.5.4.11": "OU", "ORGANIZATIONALUNITNAME": "OU", "2.5.4.12": "TITLE",
          "2.5.4.42": "GN", "GIVENNAME": "GN", "0.9.2342.19200300.100.1.25": "DC", "DOMAINCOMPONENT": "DC",
          "0.9.2342.19200300.100.1.1": "UID", "USERID": "UID", "1.2.840.113549.1.9.1": "EMAILADDRESS",
          "E": "EMAILADDRESS", "2.5.4.97": "ORGANIZATIONIDENTIFIER"}
_HEX = set("0123456789abcdefABCDEF")

DnKey = tuple[tuple[tuple[str, str], ...], ...]


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, start, i = [], 0, 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == sep:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _unescape(value: str) -> str | None:
    out, i = bytearray(), 0
    while i < len(value):
        ch = value[i]
        if ch != "\\":
            out += ch.encode()
            i += 1
        elif len(value[i + 1:i + 3]) == 2 and set(value[i + 1:i + 3]) <= _HEX:  # \XX: one UTF-8 byte
            out.append(int(value[i + 1:i + 3], 16))
            i += 3
        elif i + 1 < len(value):
            out += value[i + 1].encode()
            i += 2
        else:
            return None  # a lone trailing backslash
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return None


def dn_key(text: str) -> DnKey | None:
    """A comparable form of an RFC 4514 distinguished name; None when it is not one."""
    if not text or not text.strip():
        return None
    rdns = []
    for rdn in _split_unescaped(text, ","):
        avas = []
        for ava in _split_unescaped(rdn, "+"):
            kind, eq, raw = ava.partition("=")
            kind = kind.strip().upper()
            value = _unescape(raw.strip()) if eq else None
            if not kind or value is None:
                return None
            avas.append((_TYPES.get(kind, kind), " ".join(value.split()).casefold()))
        rdns.append(tuple(sorted(avas)))
    return tuple(rdns)
