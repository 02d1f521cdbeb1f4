"""Talking to a running sidecar's token service and admin API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx

ADMIN_TOKEN = "test-admin-token-0123456789"


@dataclass
class App:
    tenant: str
    client_id: str
    client_secret: str
    username: str
    password: str
    user_id: str


class Admin:
    def __init__(self, base: str, token: str = ADMIN_TOKEN) -> None:
        self.http = httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"}, timeout=30)

    def post(self, path: str, body: dict) -> dict:
        r = self.http.post(path, json=body)
        assert r.status_code == 201, (path, r.status_code, r.text)
        return r.json()

    def app(self, grant_types=("password", "refresh_token"), scopes=("read", "write", "offline_access"),
            user_scopes=(), org="org-1", projects=("p1",), **client_extra) -> App:
        tenant = f"t-{uuid.uuid4().hex[:8]}"
        self.post("/admin/tenants", {"id": tenant, "name": tenant})
        client = self.post(f"/admin/tenants/{tenant}/clients", {"name": "web", "grant_types": list(grant_types),
                                                                "scopes": list(scopes), **client_extra})
        user = self.post(f"/admin/tenants/{tenant}/users", {"username": "alice", "password": "correct horse",
                                                            "org_id": org, "project_ids": list(projects),
                                                            "scopes": list(user_scopes)})
        return App(tenant, client["client_id"], client.get("client_secret", ""), "alice", "correct horse", user["id"])


def login(base: str, app: App, **extra) -> httpx.Response:
    return httpx.post(base + "/oauth/token", auth=(app.client_id, app.client_secret),
                      data={"grant_type": "password", "username": app.username, "password": app.password, **extra})


def refresh(base: str, app: App, token: str, **extra) -> httpx.Response:
    return httpx.post(base + "/oauth/token", auth=(app.client_id, app.client_secret),
                      data={"grant_type": "refresh_token", "refresh_token": token, **extra})


def authz(base: str, token: str, **headers) -> httpx.Response:
    return httpx.get(base + "/ext_authz/x", headers={"authorization": f"Bearer {token}", **headers})
