"""`auth-sidecar admin …`: the admin API from the command line.

An answer is printed as JSON on stdout (exit 0); a failure is one line on stderr (exit 1):
the admin API off, a refused token, an unknown id, a refused value, no server listening."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any
from urllib.parse import quote

import httpx

_LIST_HELP = "separated by spaces or commas (quote a list with spaces: 'a b'); '' clears it"


def _fail(message: str) -> int:
    print(f"auth-sidecar admin: {message}", file=sys.stderr)
    return 1


def _explain(method: str, path: str, resp: httpx.Response) -> str:
    """One line saying why the admin API refused."""
    try:
        answer = resp.json()
        detail = answer.get("error_description") or answer.get("error") or ""
    except (ValueError, AttributeError):  # not the admin API: a proxy's page, or a server without admin_token
        hint = " (is the admin API on? the server needs AUTH_SIDECAR_ADMIN_TOKEN)" if resp.status_code == 404 else ""
        return f"{method} {path}: HTTP {resp.status_code}, not a JSON answer{hint}: {resp.text[:200]!r}"
    if resp.status_code == 401:
        return f"{method} {path}: HTTP 401, the admin token was refused (check --token or AUTH_SIDECAR_ADMIN_TOKEN)"
    if resp.status_code == 404:
        return f"{method} {path}: HTTP 404, not found: {detail}"
    return f"{method} {path}: HTTP {resp.status_code}: {detail}"


def _call(args: argparse.Namespace, method: str, path: str, body: dict | None = None,
          query: dict | None = None) -> int:
    token = args.token or os.environ.get("AUTH_SIDECAR_ADMIN_TOKEN")
    if not token:
        print("auth-sidecar admin: needs --token or AUTH_SIDECAR_ADMIN_TOKEN", file=sys.stderr)
        return 2
    url = args.url.rstrip("/") + path
    headers = {"authorization": f"Bearer {token}"}
    if getattr(args, "if_match", None):
        headers["if-match"] = args.if_match
    try:
        resp = httpx.request(method, url, json=body, params={k: v for k, v in (query or {}).items() if v is not None},
                             headers=headers, timeout=30)
    except httpx.ConnectError as exc:
        reason = "connection refused" if "refused" in str(exc).lower() else str(exc) or type(exc).__name__
        return _fail(f"cannot connect to {args.url}: {reason} (is `auth-sidecar serve` running there? see --url)")
    except httpx.HTTPError as exc:
        return _fail(f"{args.url}: {type(exc).__name__}: {exc}")
    if resp.status_code >= 400:
        return _fail(_explain(method, path, resp))
    if resp.content:
        try:
            print(json.dumps(resp.json(), indent=2))
        except ValueError:
            return _fail(f"{method} {path}: HTTP {resp.status_code}, not a JSON answer: {resp.text[:200]!r}")
    if "etag" in resp.headers:  # for a later --if-match; stdout stays the JSON
        print(f"ETag: {resp.headers['etag']}", file=sys.stderr)
    return 0


def _split(value: str | None) -> list[str]:
    return [v for v in (value or "").replace(",", " ").split() if v]


def _seg(value: str) -> str:
    return quote(value, safe="")


def _password(value: str | None) -> str | None:
    if value == "-":  # not on the command line, where `ps` shows it
        return sys.stdin.readline().rstrip("\r\n")
    return value


def _jwks(paths: list[str] | None) -> dict[str, Any] | None:
    """PEM files → an RFC 7517 JWK Set naming each certificate in `x5c` (self_signed_tls_client_auth)."""
    if not paths:
        return None
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import Encoding

    keys = []
    for path in paths:
        with open(path, "rb") as pem:
            for cert in x509.load_pem_x509_certificates(pem.read()):
                key = cert.public_key()
                kty = "EC" if isinstance(key, ec.EllipticCurvePublicKey) else \
                    "RSA" if isinstance(key, rsa.RSAPublicKey) else "OKP"
                keys.append({"kty": kty, "x5c": [base64.b64encode(cert.public_bytes(Encoding.DER)).decode()]})
    return {"keys": keys}


def _changes(args: argparse.Namespace, lists: tuple[str, ...] = (), plain: tuple[str, ...] = ()) -> dict[str, Any]:
    """The PATCH body: only what a flag names."""
    body: dict[str, Any] = {}
    for name in lists:
        if getattr(args, name) is not None:
            body[{"projects": "project_ids"}.get(name, name)] = _split(getattr(args, name))
    for name in plain:
        if getattr(args, name) is not None:
            body[{"org": "org_id"}.get(name, name)] = getattr(args, name)
    if args.disabled is not None:
        body["disabled"] = args.disabled
    return body


def _paging(c: argparse.ArgumentParser) -> None:
    c.add_argument("--limit", type=int, help="at most this many items (1-1000; default 100)")
    c.add_argument("--cursor", help="continue after the page whose answer gave this next_cursor")


def _disable_flags(c: argparse.ArgumentParser, what: str) -> None:
    group = c.add_mutually_exclusive_group()
    group.add_argument("--disable", dest="disabled", action="store_const", const=True,
                       help=f"{what} gets no new token, and its tokens are revoked")
    group.add_argument("--enable", dest="disabled", action="store_const", const=False,
                       help=f"{what} may get tokens again (revoked tokens stay revoked)")


def _if_match_flag(c: argparse.ArgumentParser) -> None:
    c.add_argument("--if-match", metavar="ETAG", help="only if the record is unchanged since a get or update "
                   "printed this ETag (on stderr), quotes included; '*': only if it exists. Else HTTP 412")


def _list(cmds: Any, name: str, help_text: str, owner: str | None, path: str) -> None:
    c = cmds.add_parser(name, help=help_text, description=help_text + ". Prints {items, next_cursor}.")
    if owner:
        c.add_argument(owner, help=f"the {owner.replace('_', ' ')}'s id")
    _paging(c)
    c.set_defaults(func=lambda a: _call(a, "GET", path.format(**{k: _seg(v) for k, v in vars(a).items()
                                                                  if isinstance(v, str)}),
                                        query={"limit": a.limit, "cursor": a.cursor}))


def add_parser(sub: argparse._SubParsersAction) -> None:
    admin = sub.add_parser("admin", help="manage tenants, clients, users, service users",
                           description="Call the admin API of a running sidecar (it needs AUTH_SIDECAR_ADMIN_TOKEN). "
                                       "Answers are printed as JSON; a failure is one line on stderr, exit code 1. "
                                       "A client_id may start with '-': give ids after '--', e.g. "
                                       "`update-client --disable -- TENANT CLIENT_ID`.")
    admin.add_argument("--url", default=os.environ.get("AUTH_SIDECAR_URL", "http://127.0.0.1:8080"),
                       help="the sidecar's HTTP address (default: AUTH_SIDECAR_URL or http://127.0.0.1:8080)")
    admin.add_argument("--token", help="admin token (default: AUTH_SIDECAR_ADMIN_TOKEN)")
    cmds = admin.add_subparsers(dest="admin_command", required=True, metavar="COMMAND",
                                help="what to do; `COMMAND --help` tells more")

    # --- create
    c = cmds.add_parser("create-tenant", help="create a tenant")
    c.add_argument("id", help="tenant id: letters, digits, '.', '_', '-' (at most 64)")
    c.add_argument("name", help="display name")
    c.set_defaults(func=lambda a: _call(a, "POST", "/admin/tenants", {"id": a.id, "name": a.name}))

    c = cmds.add_parser("create-user", help="create a user in a tenant (prints its id)")
    c.add_argument("tenant", help="the tenant's id")
    c.add_argument("username", help="the name the user logs in with")
    c.add_argument("--password", required=True, help="at least 8 characters; '-' reads it from stdin")
    c.add_argument("--org", help="org_id claim of the user's tokens")
    c.add_argument("--projects", help="project_ids claim, " + _LIST_HELP)
    c.add_argument("--scopes", help="scopes the user may get, " + _LIST_HELP + " (none: what the client allows)")
    c.set_defaults(func=lambda a: _call(a, "POST", f"/admin/tenants/{_seg(a.tenant)}/users", {
        "username": a.username, "password": _password(a.password), "org_id": a.org,
        "project_ids": _split(a.projects), "scopes": _split(a.scopes)}))

    c = cmds.add_parser("create-client", help="create a client in a tenant (prints its id and secret, once)")
    c.add_argument("tenant", help="the tenant's id")
    c.add_argument("name", help="display name")
    c.add_argument("--grant-types", default="password refresh_token",
                   help="grant types it may use, " + _LIST_HELP.split(";")[0] + " (default: 'password refresh_token')")
    c.add_argument("--scopes", help="scopes it may ask for, " + _LIST_HELP.split(";")[0])
    c.add_argument("--access-token-ttl", type=int, help="its access tokens' lifetime in seconds (1-86400)")
    c.add_argument("--refresh-policy", choices=["always", "offline", "never", "held"],
                   help="when a password login gets a refresh token (docs/token-service.md#refresh-policy)")
    c.add_argument("--no-refresh-rotation", action="store_true", help="a refresh keeps the same refresh token")
    c.add_argument("--client-id", help="keep an id the application already uses (default: a new random one)")
    # client certificates (RFC 8705, docs/sender-constrained.md)
    c.add_argument("--auth-method", choices=["client_secret_basic", "client_secret_post", "tls_client_auth",
                                             "self_signed_tls_client_auth", "none"],
                   help="token_endpoint_auth_method (default client_secret_basic: a secret, printed once)")
    c.add_argument("--subject-dn", help="tls_client_auth: its certificate's subject DN, RFC 4514 (CN=…,O=…)")
    c.add_argument("--certificate", action="append", metavar="PEM_FILE",
                   help="self_signed_tls_client_auth: a file of certificates it may present (repeatable)")
    c.add_argument("--certificate-bound-tokens", action="store_true",
                   help="bind its tokens to the certificate it presents even with a secret "
                        "(tls_client_certificate_bound_access_tokens)")
    c.set_defaults(func=lambda a: _call(a, "POST", f"/admin/tenants/{_seg(a.tenant)}/clients", {
        **({"token_endpoint_auth_method": a.auth_method} if a.auth_method else {}),
        **({"tls_client_auth_subject_dn": a.subject_dn} if a.subject_dn else {}),
        **({"jwks": _jwks(a.certificate)} if a.certificate else {}),
        **({"tls_client_certificate_bound_access_tokens": True} if a.certificate_bound_tokens else {}),
        "name": a.name, "grant_types": _split(a.grant_types), "scopes": _split(a.scopes),
        **({"access_token_ttl": a.access_token_ttl} if a.access_token_ttl else {}),
        **({"refresh_policy": a.refresh_policy} if a.refresh_policy else {}),
        **({"refresh_rotation": False} if a.no_refresh_rotation else {}),
        **({"client_id": a.client_id} if a.client_id else {})}))

    c = cmds.add_parser("create-service-user", help="create a service user in a tenant (prints its id)")
    c.add_argument("tenant", help="the tenant's id")
    c.add_argument("name", help="display name")
    c.add_argument("--org", required=True, help="org_id claim of its tokens")
    c.add_argument("--projects", help="project_ids claim, " + _LIST_HELP.split(";")[0])
    c.add_argument("--scopes", help="scopes it may get, " + _LIST_HELP.split(";")[0])
    c.set_defaults(func=lambda a: _call(a, "POST", f"/admin/tenants/{_seg(a.tenant)}/service-users", {
        "name": a.name, "org_id": a.org, "project_ids": _split(a.projects), "scopes": _split(a.scopes)}))

    c = cmds.add_parser("add-secret", help="add a client secret to a service user (prints it, once)")
    c.add_argument("service_user", help="the service user's id")
    c.add_argument("--title", default="", help="a note saying what the secret is for")
    c.set_defaults(func=lambda a: _call(a, "POST", f"/admin/service-users/{_seg(a.service_user)}/secrets",
                                        {"title": a.title}))

    c = cmds.add_parser("add-key", help="add a key pair to a service user (prints the private key, once)")
    c.add_argument("service_user", help="the service user's id")
    c.add_argument("--title", default="", help="a note saying what the key is for")
    c.add_argument("--alg", default="ES256", choices=["ES256", "RS256", "EdDSA"], help="key algorithm (default ES256)")
    c.set_defaults(func=lambda a: _call(a, "POST", f"/admin/service-users/{_seg(a.service_user)}/keys",
                                        {"title": a.title, "alg": a.alg}))

    # --- read
    _list(cmds, "list-tenants", "list the tenants", None, "/admin/tenants")
    _list(cmds, "list-clients", "list a tenant's clients", "tenant", "/admin/tenants/{tenant}/clients")
    _list(cmds, "list-users", "list a tenant's users", "tenant", "/admin/tenants/{tenant}/users")
    _list(cmds, "list-service-users", "list a tenant's service users", "tenant",
          "/admin/tenants/{tenant}/service-users")
    _list(cmds, "list-secrets", "list a service user's secrets (metadata, never the secret)", "service_user",
          "/admin/service-users/{service_user}/secrets")
    _list(cmds, "list-keys", "list a service user's keys (metadata)", "service_user",
          "/admin/service-users/{service_user}/keys")

    c = cmds.add_parser("get-tenant", help="show a tenant")
    c.add_argument("tenant", help="the tenant's id")
    c.set_defaults(func=lambda a: _call(a, "GET", f"/admin/tenants/{_seg(a.tenant)}"))

    for kind, segment, ident in (("client", "clients", "client_id"), ("user", "users", "id")):
        c = cmds.add_parser(f"get-{kind}", help=f"show a {kind} (never its secret or password)")
        c.add_argument("tenant", help="the tenant's id")
        c.add_argument("id", help=f"the {kind}'s {ident}")
        c.set_defaults(func=lambda a, segment=segment: _call(
            a, "GET", f"/admin/tenants/{_seg(a.tenant)}/{segment}/{_seg(a.id)}"))

    c = cmds.add_parser("get-service-user", help="show a service user")
    c.add_argument("id", help="the service user's id")
    c.set_defaults(func=lambda a: _call(a, "GET", f"/admin/service-users/{_seg(a.id)}"))

    # --- update (only what a flag names changes)
    c = cmds.add_parser("update-tenant", help="rename, disable or enable a tenant")
    c.add_argument("tenant", help="the tenant's id")
    c.add_argument("--name", help="new display name")
    _disable_flags(c, "no client or service user of the tenant")
    _if_match_flag(c)
    c.set_defaults(func=lambda a: _call(a, "PATCH", f"/admin/tenants/{_seg(a.tenant)}", _changes(a, plain=("name",))))

    c = cmds.add_parser("update-client", help="change a client's scopes or grant types, disable or enable it")
    c.add_argument("tenant", help="the tenant's id")
    c.add_argument("id", help="the client's client_id")
    c.add_argument("--scopes", help="its new scopes, " + _LIST_HELP)
    c.add_argument("--grant-types", dest="grant_types", help="its new grant types, " + _LIST_HELP.split(";")[0])
    _disable_flags(c, "the client")
    _if_match_flag(c)
    c.set_defaults(func=lambda a: _call(a, "PATCH", f"/admin/tenants/{_seg(a.tenant)}/clients/{_seg(a.id)}",
                                        _changes(a, lists=("scopes", "grant_types"))))

    c = cmds.add_parser("update-user", help="change a user's scopes, projects, org or password, disable or enable it")
    c.add_argument("tenant", help="the tenant's id")
    c.add_argument("id", help="the user's id")
    c.add_argument("--scopes", help="the new scopes, " + _LIST_HELP)
    c.add_argument("--projects", help="the new project_ids, " + _LIST_HELP)
    c.add_argument("--org", help="the new org_id")
    c.add_argument("--password", help="a new password (revokes the user's tokens); '-' reads it from stdin")
    _disable_flags(c, "the user")
    _if_match_flag(c)
    c.set_defaults(func=lambda a: _call(a, "PATCH", f"/admin/tenants/{_seg(a.tenant)}/users/{_seg(a.id)}", {
        **_changes(a, lists=("scopes", "projects"), plain=("org",)),
        **({"password": _password(a.password)} if a.password is not None else {})}))

    c = cmds.add_parser("update-service-user", help="change a service user's scopes or projects, disable or enable it")
    c.add_argument("id", help="the service user's id")
    c.add_argument("--scopes", help="the new scopes, " + _LIST_HELP)
    c.add_argument("--projects", help="the new project_ids, " + _LIST_HELP)
    _disable_flags(c, "the service user (all its secrets and keys)")
    _if_match_flag(c)
    c.set_defaults(func=lambda a: _call(a, "PATCH", f"/admin/service-users/{_seg(a.id)}",
                                        _changes(a, lists=("scopes", "projects"))))

    c = cmds.add_parser("delete", help="DELETE an admin path and revoke its tokens, e.g. /admin/service-users/ID")
    c.add_argument("path", help="the admin path, e.g. /admin/tenants/T/users/ID")
    _if_match_flag(c)
    c.set_defaults(func=lambda a: _call(a, "DELETE", a.path if a.path.startswith("/") else "/" + a.path))
