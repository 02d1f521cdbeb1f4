"""`auth-sidecar admin …`: the admin API from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys

import httpx


def _call(args: argparse.Namespace, method: str, path: str, body: dict | None = None) -> int:
    token = args.token or os.environ.get("AUTH_SIDECAR_ADMIN_TOKEN")
    if not token:
        print("auth-sidecar admin: needs --token or AUTH_SIDECAR_ADMIN_TOKEN", file=sys.stderr)
        return 2
    try:
        resp = httpx.request(method, args.url.rstrip("/") + path, json=body,
                             headers={"authorization": f"Bearer {token}"}, timeout=30)
    except httpx.HTTPError as exc:
        print(f"auth-sidecar admin: {args.url}: {exc}", file=sys.stderr)
        return 1
    try:
        answer = resp.json() if resp.content else None
    except ValueError:  # not the admin API: a proxy's page, or a server without admin_token
        answer = None
        hint = " (is the admin API on? the server needs AUTH_SIDECAR_ADMIN_TOKEN)" if resp.status_code == 404 else ""
        print(f"auth-sidecar admin: {method} {path}: HTTP {resp.status_code}, not a JSON answer{hint}: "
              f"{resp.text[:200]!r}", file=sys.stderr)
    if answer is not None:
        print(json.dumps(answer, indent=2))
    return 0 if resp.status_code < 400 else 1


def _split(value: str | None) -> list[str]:
    return [v for v in (value or "").replace(",", " ").split() if v]


def add_parser(sub: argparse._SubParsersAction) -> None:
    admin = sub.add_parser("admin", help="manage tenants, clients, users, service users")
    admin.add_argument("--url", default=os.environ.get("AUTH_SIDECAR_URL", "http://127.0.0.1:8080"))
    admin.add_argument("--token", help="admin token (default: AUTH_SIDECAR_ADMIN_TOKEN)")
    cmds = admin.add_subparsers(dest="admin_command", required=True)

    c = cmds.add_parser("create-tenant"); c.add_argument("id"); c.add_argument("name")
    c.set_defaults(func=lambda a: _call(a, "POST", "/admin/tenants", {"id": a.id, "name": a.name}))

    c = cmds.add_parser("create-user"); c.add_argument("tenant"); c.add_argument("username")
    c.add_argument("--password", required=True); c.add_argument("--org"); c.add_argument("--projects")
    c.add_argument("--scopes")
    c.set_defaults(func=lambda a: _call(a, "POST", f"/admin/tenants/{a.tenant}/users", {
        "username": a.username, "password": a.password, "org_id": a.org, "project_ids": _split(a.projects),
        "scopes": _split(a.scopes)}))

    c = cmds.add_parser("create-client"); c.add_argument("tenant"); c.add_argument("name")
    c.add_argument("--grant-types", default="password refresh_token"); c.add_argument("--scopes")
    c.add_argument("--access-token-ttl", type=int)
    c.add_argument("--refresh-policy", choices=["always", "offline", "never", "held"])
    c.add_argument("--no-refresh-rotation", action="store_true", help="a refresh keeps the same refresh token")
    c.add_argument("--client-id", help="keep an id the application already uses (default: a new random one)")
    c.set_defaults(func=lambda a: _call(a, "POST", f"/admin/tenants/{a.tenant}/clients", {
        "name": a.name, "grant_types": _split(a.grant_types), "scopes": _split(a.scopes),
        **({"access_token_ttl": a.access_token_ttl} if a.access_token_ttl else {}),
        **({"refresh_policy": a.refresh_policy} if a.refresh_policy else {}),
        **({"refresh_rotation": False} if a.no_refresh_rotation else {}),
        **({"client_id": a.client_id} if a.client_id else {})}))

    c = cmds.add_parser("create-service-user"); c.add_argument("tenant"); c.add_argument("name")
    c.add_argument("--org", required=True); c.add_argument("--projects"); c.add_argument("--scopes")
    c.set_defaults(func=lambda a: _call(a, "POST", f"/admin/tenants/{a.tenant}/service-users", {
        "name": a.name, "org_id": a.org, "project_ids": _split(a.projects), "scopes": _split(a.scopes)}))

    c = cmds.add_parser("add-secret"); c.add_argument("service_user"); c.add_argument("--title", default="")
    c.set_defaults(func=lambda a: _call(a, "POST", f"/admin/service-users/{a.service_user}/secrets",
                                        {"title": a.title}))

    c = cmds.add_parser("add-key"); c.add_argument("service_user"); c.add_argument("--title", default="")
    c.add_argument("--alg", default="ES256", choices=["ES256", "RS256", "EdDSA"])
    c.set_defaults(func=lambda a: _call(a, "POST", f"/admin/service-users/{a.service_user}/keys",
                                        {"title": a.title, "alg": a.alg}))

    c = cmds.add_parser("delete", help="DELETE an admin path, e.g. /admin/service-users/ID")
    c.add_argument("path")
    c.set_defaults(func=lambda a: _call(a, "DELETE", a.path if a.path.startswith("/") else "/" + a.path))
