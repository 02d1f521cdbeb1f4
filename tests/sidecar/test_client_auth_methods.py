"""How a client authenticates at the token endpoint (`token_endpoint_auth_method`), against
the real `auth-sidecar serve` over each store: a public client (`none`) is created without a
secret and logs in with its client_id alone, a secret presented for it is refused, and the
admin API refuses settings that do not fit together, at creation and on a PATCH."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest

from sidecar.store.redis_store import RedisStore
from tests.support.oauth import App

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def _token(svc, data: dict, auth=None) -> httpx.Response:
    return httpx.post(svc.http + "/oauth/token", data=data, auth=auth)


def test_a_public_client_has_no_secret_and_logs_in_with_its_id(svc):
    app: App = svc.admin.app(token_endpoint_auth_method="none")
    assert app.client_secret == ""  # the creation answer carried no client_secret
    client = svc.admin.http.get(f"/admin/tenants/{app.tenant}/clients/{app.client_id}").json()
    assert client["token_endpoint_auth_method"] == "none" and "client_secret" not in client
    login = {"grant_type": "password", "username": app.username, "password": app.password}
    r = _token(svc, {**login, "client_id": app.client_id})
    assert r.status_code == 200, r.text
    refreshed = _token(svc, {"grant_type": "refresh_token", "refresh_token": r.json()["refresh_token"],
                             "client_id": app.client_id})
    assert refreshed.status_code == 200, refreshed.text
    # a secret presented for a client that has none proves nothing: refused, in the body or as Basic
    for data, auth in (({**login, "client_id": app.client_id, "client_secret": "guess"}, None),
                       (login, (app.client_id, "guess"))):
        r = _token(svc, data, auth)
        assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text


def test_a_confidential_client_still_needs_its_secret(svc):
    app: App = svc.admin.app()
    r = _token(svc, {"grant_type": "password", "username": app.username, "password": app.password,
                     "client_id": app.client_id})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text


def test_settings_that_do_not_fit_together_are_refused(svc):
    tenant = svc.admin.app().tenant
    clients = f"/admin/tenants/{tenant}/clients"
    for body, words in (
            ({"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}, "public client"),
            ({"token_endpoint_auth_method": "tls_client_auth", "grant_types": ["client_credentials"]},
             "tls_client_auth_subject_dn"),
            ({"tls_client_auth_subject_dn": "CN=a", "grant_types": ["client_credentials"]}, "only for"),
            ({"token_endpoint_auth_method": "private_key_jwt", "grant_types": ["client_credentials"]},
             "token_endpoint_auth_method")):
        r = svc.admin.http.post(clients, json={"name": "x", **body})
        assert r.status_code == 400 and r.json()["error"] == "invalid_request", (body, r.text)
        assert words in r.json()["error_description"], (body, r.text)
    # a PATCH that would break the same rules with the client as stored is refused (409: its
    # body is well formed, the client's state rules it out) and changes nothing
    public = svc.admin.post(clients, {"name": "spa", "grant_types": ["password"], "token_endpoint_auth_method": "none"})
    r = svc.admin.http.patch(f"{clients}/{public['client_id']}", json={"grant_types": ["client_credentials"]})
    assert r.status_code == 409 and "public client" in r.json()["error_description"], r.text
    held = svc.admin.post(clients, {"name": "h", "refresh_policy": "held",
                                    "grant_types": ["password", "urn:auth-sidecar:grant-type:held-refresh"]})
    r = svc.admin.http.patch(f"{clients}/{held['client_id']}", json={"grant_types": ["password"]})
    assert r.status_code == 409 and "held" in r.json()["error_description"], r.text
    assert svc.admin.http.get(f"{clients}/{public['client_id']}").json()["grant_types"] == ["password"]
    assert svc.admin.http.get(f"{clients}/{held['client_id']}").json()["grant_types"] == [
        "password", "urn:auth-sidecar:grant-type:held-refresh"]


def test_a_public_client_may_not_have_the_token_exchange_grant(svc):
    """RFC 8693 exchanges need an authenticated client here (the grant refuses a public one): the
    admin API refuses the pairing up front, at creation and on a PATCH, as for client_credentials."""
    tenant = svc.admin.app().tenant
    clients = f"/admin/tenants/{tenant}/clients"
    r = svc.admin.http.post(clients, json={"name": "spa", "token_endpoint_auth_method": "none",
                                           "grant_types": ["password", EXCHANGE]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
    assert "public client" in r.json()["error_description"] and EXCHANGE in r.json()["error_description"], r.text
    assert [c for c in svc.admin.http.get(clients).json()["items"] if c["name"] == "spa"] == []
    public = svc.admin.post(clients, {"name": "spa", "grant_types": ["password"], "token_endpoint_auth_method": "none"})
    r = svc.admin.http.patch(f"{clients}/{public['client_id']}", json={"grant_types": ["password", EXCHANGE]})
    assert r.status_code == 409 and r.json()["error"] == "conflict", r.text  # the stored client rules it out
    assert EXCHANGE in r.json()["error_description"], r.text
    assert svc.admin.http.get(f"{clients}/{public['client_id']}").json()["grant_types"] == ["password"]
    # a client that authenticates may have it, by creation or by a PATCH
    confidential = svc.admin.post(clients, {"name": "api", "grant_types": [EXCHANGE]})
    r = svc.admin.http.patch(f"{clients}/{confidential['client_id']}", json={"grant_types": ["password", EXCHANGE]})
    assert r.status_code == 200 and r.json()["grant_types"] == ["password", EXCHANGE], r.text


def test_dpop_and_exchange_settings_read_back_and_patch(svc):
    tenant = svc.admin.app().tenant
    clients = f"/admin/tenants/{tenant}/clients"
    c = svc.admin.post(clients, {"name": "svc-a", "grant_types": ["client_credentials"],
                                 "dpop_bound_access_tokens": True, "exchange_audiences": ["service-b"]})
    read = svc.admin.http.get(f"{clients}/{c['client_id']}").json()
    assert read["dpop_bound_access_tokens"] is True and read["exchange_audiences"] == ["service-b"]
    assert read["token_endpoint_auth_method"] == "client_secret_basic" and read["tls_client_auth_subject_dn"] is None
    r = svc.admin.http.patch(f"{clients}/{c['client_id']}", json={"exchange_audiences": ["service-b", "service-c"],
                                                                  "dpop_bound_access_tokens": False})
    assert r.status_code == 200 and r.json()["exchange_audiences"] == ["service-b", "service-c"], r.text
    assert r.json()["dpop_bound_access_tokens"] is False


# Redis only (the record is written into the store), and last in the module: earlier, this
# indirect parameter makes pytest start the module's sidecars twice
@pytest.mark.parametrize("svc", ["redis"], indirect=True)
def test_a_stored_client_that_breaks_a_later_rule_can_still_be_patched(svc):
    """Only a PATCH of grant_types is checked: a public client stored with the token exchange
    before the admin API refused it (written here straight into Redis) can still be disabled,
    the grant itself refuses it, and a PATCH of its grant_types must drop the exchange."""
    app: App = svc.admin.app(token_endpoint_auth_method="none")
    path = f"/admin/tenants/{app.tenant}/clients/{app.client_id}"

    async def add_exchange() -> None:
        store = RedisStore.from_url(svc.env["AUTH_SIDECAR_STORE_URL"])
        try:
            client = await store.get_client(app.client_id)
            await store.put_client(dataclasses.replace(client, grant_types=(*client.grant_types, EXCHANGE)))
        finally:
            await store.close()
    asyncio.run(add_exchange())
    assert EXCHANGE in svc.admin.http.get(path).json()["grant_types"]
    r = _token(svc, {"grant_type": EXCHANGE, "client_id": app.client_id, "subject_token": "x",
                     "subject_token_type": "urn:ietf:params:oauth:token-type:access_token"})
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client", r.text
    r = svc.admin.http.patch(path, json={"disabled": True})
    assert r.status_code == 200 and r.json()["disabled"] is True, r.text
    r = svc.admin.http.patch(path, json={"grant_types": ["password", EXCHANGE]})
    assert r.status_code == 409 and EXCHANGE in r.json()["error_description"], r.text
    r = svc.admin.http.patch(path, json={"grant_types": ["password"]})
    assert r.status_code == 200 and r.json()["grant_types"] == ["password"], r.text
