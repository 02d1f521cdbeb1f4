"""Admin API: tenants, clients, users, service users and their credentials.

Secrets and private keys are in the 201 answer only; the store keeps digests and public keys.
Reads answer metadata only. DELETE revokes the record and every token it holds; a PATCH that
disables a client, user or service user (or gives a user a new password) revokes their tokens
too, and a disabled one gets no new token. Every write is logged on the `audit` logger.
A PATCH is a conditional write, retried while other writes land in between (none is lost, a
deleted record stays deleted); a record's ETag is its revision, and If-Match makes a PATCH or
DELETE conditional on it, If-None-Match a GET (304) (sidecar/admin/conditional.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hmac
import random
import secrets
import time
import uuid
from typing import Any, Awaitable, Callable

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authz.keys import generate_private_key, private_pem, public_jwk, thumbprint_kid
from sidecar.admin import audit, conditional, views
from sidecar.admin.models import (ClientIn, ClientPatch, CredentialIn, ServiceUserIn, ServiceUserPatch, TenantIn,
                                  TenantPatch, UserIn, UserPatch, grant_conflict)
from sidecar.bodies import BodyError, parse_json, read_capped
from sidecar.oauth.context import OAuthContext
from sidecar.oauth.credentials import digest, new_secret
from sidecar.store import StoreUnavailable
from sidecar.store.base import Conflict
from sidecar.store.records import Client, ServiceKey, ServiceUser, Tenant, User
from sidecar.store.revisions import Editable, ident

NO_STORE = {"Cache-Control": "no-store"}
# conditional writes a PATCH tries before it answers 409: each one lost to a write that landed
# between its read and its write, so this many in a row only under a storm of writes to one record
ATTEMPTS = 20
Revised = tuple[Any, str]  # a record and its revision
Reader = Callable[[], Awaitable[Revised]]


class AdminError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        self.status, self.error, self.description = status, error, description


def _problem(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=NO_STORE)


class AdminApi:
    def __init__(self, ctx: OAuthContext, admin_token: str) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self._token = admin_token.encode()
        self._fingerprint = audit.fingerprint(admin_token)

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._token)

    def _wrap(self, handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            rid = audit.request_id(request.headers.get("x-request-id"))
            answer = await answer_for(request)
            answer.headers["x-request-id"] = rid
            if request.method not in ("GET", "HEAD"):  # a write, or an attempt at one: the audit trail
                admin = self._fingerprint if answer.status_code != 401 else "-"
                audit.record(f"{request.method} {handler.__name__}", request.url.path, answer.status_code, rid, admin)
            return answer

        async def answer_for(request: Request) -> Response:
            if not self._authorized(request):
                return JSONResponse({"error": "invalid_token", "error_description": "a valid admin token is required"},
                                    status_code=401, headers={"WWW-Authenticate": 'Bearer realm="auth-sidecar-admin"'})
            try:
                return await handler(request)
            except AdminError as exc:
                return _problem(exc.status, exc.error, exc.description)
            except StoreUnavailable:
                answer = _problem(503, "temporarily_unavailable", "the store is unavailable; retry later")
                answer.headers["Retry-After"] = "1"
                return answer
        return endpoint

    async def _body(self, request: Request, model: type[BaseModel]) -> Any:
        try:
            raw = await read_capped(request, self.ctx.settings.max_body_bytes)
            media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
            if raw and media != "application/json":
                raise AdminError(415, "invalid_request", "the body must be application/json")
            data = parse_json(raw or b"{}")
        except BodyError as exc:
            raise AdminError(exc.status, "invalid_request", exc.description) from None
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "body"
            raise AdminError(400, "invalid_request", f"{field}: {err['msg']}") from None

    async def _tenant(self, request: Request) -> Tenant:
        tenant = await self.store.get_tenant(request.path_params["tenant"])
        if tenant is None:
            raise AdminError(404, "not_found", f"tenant {request.path_params['tenant']} does not exist")
        return tenant

    async def _service_user(self, request: Request) -> ServiceUser:
        su = await self.store.get_service_user(request.path_params["id"])
        if su is None:
            raise AdminError(404, "not_found", f"service user {request.path_params['id']} does not exist")
        return su

    # --- tenants, users, clients
    async def create_tenant(self, request: Request) -> Response:
        body = await self._body(request, TenantIn)
        try:
            await self.store.create_tenant(Tenant(body.id, body.name, time.time()))
        except Conflict:
            raise AdminError(409, "conflict", f"tenant {body.id} exists") from None
        return JSONResponse({"id": body.id, "name": body.name}, status_code=201)

    async def create_user(self, request: Request) -> Response:
        tenant = await self._tenant(request)
        body = await self._body(request, UserIn)
        password_hash = await self.ctx.passwords.hash_async(body.password)
        user = User(id=str(uuid.uuid4()), tenant=tenant.id, username=body.username, password_hash=password_hash,
                    created=time.time(), org_id=body.org_id, project_ids=tuple(body.project_ids),
                    scopes=tuple(body.scopes))
        try:
            await self.store.create_user(user)
        except Conflict:
            raise AdminError(409, "conflict", f"username {body.username} exists in tenant {tenant.id}") from None
        return JSONResponse({"id": user.id, "username": user.username}, status_code=201)

    async def delete_user(self, request: Request) -> Response:
        user = await self._delete(request, functools.partial(self._user, request), self.store.delete_user)
        await self.ctx.revoker.subject(user.id)
        return Response(status_code=204)

    async def create_client(self, request: Request) -> Response:
        tenant = await self._tenant(request)
        body = await self._body(request, ClientIn)
        # only the secret methods have a secret: a public or certificate client gets none
        secret = new_secret() if body.token_endpoint_auth_method.startswith("client_secret") else None
        if body.client_id and await self.store.get_client(body.client_id) is not None:
            raise AdminError(409, "conflict", f"client {body.client_id} exists")
        client = Client(client_id=body.client_id or secrets.token_urlsafe(12), tenant=tenant.id, name=body.name,
                        grant_types=tuple(body.grant_types), scopes=tuple(body.scopes),
                        secret_digest=digest(secret) if secret else "",
                        created=time.time(), access_token_ttl=body.access_token_ttl,
                        refresh_policy=body.refresh_policy, refresh_rotation=body.refresh_rotation,
                        tenant_disabled=tenant.disabled, token_endpoint_auth_method=body.token_endpoint_auth_method,
                        tls_client_auth_subject_dn=body.tls_client_auth_subject_dn,
                        dpop_bound_access_tokens=body.dpop_bound_access_tokens,
                        exchange_audiences=tuple(body.exchange_audiences),
                        jwks=body.jwks.model_dump() if body.jwks else None,
                        tls_client_certificate_bound_access_tokens=body.tls_client_certificate_bound_access_tokens)
        await self.store.put_client(client)
        answer = {"client_id": client.client_id}
        if secret:
            answer["client_secret"] = secret
        return JSONResponse(answer, status_code=201, headers=NO_STORE)

    async def delete_client(self, request: Request) -> Response:
        client = await self._delete(request, functools.partial(self._client, request), self.store.delete_client)
        await self.ctx.revoker.client(client.client_id)
        return Response(status_code=204)

    # --- service users and their credentials
    async def create_service_user(self, request: Request) -> Response:
        tenant = await self._tenant(request)
        body = await self._body(request, ServiceUserIn)
        su = ServiceUser(id=str(uuid.uuid4()), tenant=tenant.id, name=body.name, org_id=body.org_id,
                         created=time.time(), project_ids=tuple(body.project_ids), scopes=tuple(body.scopes),
                         tenant_disabled=tenant.disabled)
        await self.store.put_service_user(su)
        return JSONResponse({"id": su.id, "name": su.name, "org_id": su.org_id}, status_code=201)

    async def delete_service_user(self, request: Request) -> Response:
        su = await self._delete(request, functools.partial(self._tenant_service_user, request),
                                self.store.delete_service_user)
        await self.ctx.revoker.subject(su.id)
        return Response(status_code=204)

    async def create_secret(self, request: Request) -> Response:
        su = await self._service_user(request)
        body = await self._body(request, CredentialIn)
        secret = new_secret()
        client = Client(client_id=secrets.token_urlsafe(12), tenant=su.tenant, name=su.name,
                        grant_types=("client_credentials",), scopes=su.scopes, secret_digest=digest(secret),
                        created=time.time(), service_user_id=su.id, title=body.title)
        await self.store.put_client(client)
        return JSONResponse({"client_id": client.client_id, "client_secret": secret}, status_code=201,
                            headers=NO_STORE)

    async def delete_secret(self, request: Request) -> Response:
        su = await self._service_user(request)
        client = await self.store.get_client(request.path_params["client_id"])
        if client is None or client.service_user_id != su.id:
            raise AdminError(404, "not_found", f"secret {request.path_params['client_id']} does not exist")
        await self.store.delete_client(client.client_id)
        await self.ctx.revoker.client(client.client_id)
        return Response(status_code=204)

    async def create_key(self, request: Request) -> Response:
        su = await self._service_user(request)
        body = await self._body(request, CredentialIn)
        private = generate_private_key(body.alg)
        kid = thumbprint_kid(private.public_key())
        await self.store.put_service_key(ServiceKey(kid=kid, service_user_id=su.id, title=body.title, alg=body.alg,
                                                    public_jwk=public_jwk(kid, body.alg, private.public_key()),
                                                    created=time.time()))
        return JSONResponse({"type": "sv_rsa" if body.alg == "RS256" else f"sv_{body.alg.lower()}", "kid": kid,
                             "alg": body.alg, "principal_id": su.id, "private_key": private_pem(private).decode()},
                            status_code=201, headers=NO_STORE)

    async def get_key(self, request: Request) -> Response:
        su = await self._service_user(request)
        key = await self.store.get_service_key(request.path_params["kid"])
        if key is None or key.service_user_id != su.id:
            raise AdminError(404, "not_found", f"key {request.path_params['kid']} does not exist")
        return JSONResponse(key.public_jwk)

    async def delete_key(self, request: Request) -> Response:
        su = await self._service_user(request)
        key = await self.store.get_service_key(request.path_params["kid"])
        if key is None or key.service_user_id != su.id:
            raise AdminError(404, "not_found", f"key {request.path_params['kid']} does not exist")
        await self.store.delete_service_key(key.kid)
        await self.ctx.revoker.client(key.kid)  # tokens from this key carry it as client_id
        return Response(status_code=204)

    # --- reads and updates
    async def _page(self, request: Request, kind: str, owner: str | None, view: Callable[[Any], dict]) -> Response:
        try:
            limit, after = views.page_args(request.query_params)
        except views.BadPage as exc:
            raise AdminError(400, "invalid_request", str(exc)) from None
        page = await self.store.list_page(kind, owner, limit, after)  # type: ignore[arg-type]
        return JSONResponse({"items": [view(r) for r in page.items], "next_cursor": views.cursor(page.after)},
                            headers=NO_STORE)

    # --- one record with its revision (→ 404 if it is not there, or not the tenant's)
    async def _revised(self, kind: Editable, key: str, what: str, mine: Callable[[Any], bool]) -> Revised:
        got = await self.store.read_revised(kind, key)
        if got is None or not mine(got[0]):
            raise AdminError(404, "not_found", f"{what} {key} does not exist")
        return got

    async def _tenant_revised(self, request: Request) -> Revised:
        return await self._revised("tenants", request.path_params["tenant"], "tenant", lambda t: True)

    async def _client(self, request: Request) -> Revised:
        tenant = await self._tenant(request)
        return await self._revised("clients", request.path_params["client_id"], "client",
                                   lambda c: c.tenant == tenant.id and not c.service_user_id)

    async def _user(self, request: Request) -> Revised:
        tenant = await self._tenant(request)
        return await self._revised("users", request.path_params["id"], "user", lambda u: u.tenant == tenant.id)

    async def _tenant_service_user(self, request: Request) -> Revised:
        tenant = await self._tenant(request) if "tenant" in request.path_params else None
        return await self._revised("service_users", request.path_params["id"], "service user",
                                   lambda su: tenant is None or su.tenant == tenant.id)

    @staticmethod
    def _one(got: Revised, view: Callable[[Any], dict]) -> Response:
        return JSONResponse(view(got[0]), headers={"ETag": conditional.etag(got[1])})

    @staticmethod
    def _read_one(request: Request, got: Revised, view: Callable[[Any], dict]) -> Response:
        """A GET of one record: 304 with its ETag and no body when If-None-Match names the
        record's ETag or is `*` (RFC 9110 §13.1.2, §15.4.5), else the record."""
        named = conditional.if_none_match(request.headers.getlist("if-none-match"))
        if conditional.not_modified(named, got[1]):
            return Response(status_code=304, headers={"ETag": conditional.etag(got[1])})
        return AdminApi._one(got, view)

    # --- conditional writes
    @staticmethod
    def _if_match(request: Request, revision: str) -> frozenset[str] | None:
        """The request's If-Match (None: none), checked against the record's revision (→ 412)."""
        try:
            wanted = conditional.if_match(request.headers.getlist("if-match"))
        except conditional.BadIfMatch as exc:  # a condition no record meets (RFC 9110 §13.1.1)
            raise AdminError(412, "precondition_failed", str(exc)) from None
        AdminApi._still(request, wanted, revision)
        return wanted

    async def _read_if_match(self, request: Request, read: Reader,
                             model: type[BaseModel] | None = None) -> tuple[Revised, Any, frozenset[str] | None]:
        """The record (404), a PATCH's body (400, 415), then If-Match (412): a refused body says
        so whatever the record's state."""
        first = await read()
        body = await self._body(request, model) if model else None
        return first, body, self._if_match(request, first[1])

    @staticmethod
    def _still(request: Request, wanted: frozenset[str] | None, revision: str) -> None:
        if not conditional.allows(wanted, revision):
            raise AdminApi._changed(request)

    @staticmethod
    def _changed(request: Request) -> AdminError:
        return AdminError(412, "precondition_failed", f"If-Match: {request.url.path} has changed: it is at none "
                          "of the ETags given; read it again for its ETag")

    async def _update(self, request: Request, read: Reader, first: Revised,
                      wanted: frozenset[str] | None, change: Callable[[Any], Any]) -> tuple[Any, Any, str]:
        """Apply `change` to the record as stored and write it only if the record is unchanged
        since it was read; when another write landed in between, read and apply again (a
        PATCH sets fields: applied to the fresh record it loses nothing). (the record as it
        was, as it is, its new revision); 404 once the record is gone."""
        record, revision = first
        for attempt in range(ATTEMPTS):
            if attempt:
                await asyncio.sleep(random.uniform(0, 0.001 * 2 ** min(attempt, 5)))  # spread the retries
                record, revision = await read()
                self._still(request, wanted, revision)
            updated = change(record)
            written = await self.store.replace(updated, revision)
            if written is not None:
                return record, updated, written
        raise AdminError(409, "conflict", f"{request.url.path} kept changing while this PATCH was applied; retry")

    async def _delete(self, request: Request, read: Reader,
                      delete: Callable[[str, str | None], Awaitable[bool]]) -> Any:
        """DELETE: with an If-Match naming ETags, only if the record is still at the one read."""
        (record, revision), _, wanted = await self._read_if_match(request, read)
        exact = wanted is not None and conditional.ANY not in wanted
        if not await delete(ident(record), revision if exact else None) and exact:
            await read()  # 404 when it went meanwhile
            raise self._changed(request)
        return record

    async def list_tenants(self, request: Request) -> Response:
        return await self._page(request, "tenants", None, views.tenant)

    async def get_tenant(self, request: Request) -> Response:
        return self._read_one(request, await self._tenant_revised(request), views.tenant)

    async def list_clients(self, request: Request) -> Response:
        return await self._page(request, "clients", (await self._tenant(request)).id, views.client)

    async def get_client(self, request: Request) -> Response:
        return self._read_one(request, await self._client(request), views.client)

    async def list_users(self, request: Request) -> Response:
        return await self._page(request, "users", (await self._tenant(request)).id, views.user)

    async def get_user(self, request: Request) -> Response:
        return self._read_one(request, await self._user(request), views.user)

    async def list_service_users(self, request: Request) -> Response:
        return await self._page(request, "service_users", (await self._tenant(request)).id, views.service_user)

    async def get_service_user(self, request: Request) -> Response:
        return self._read_one(request, await self._tenant_service_user(request), views.service_user)

    async def list_secrets(self, request: Request) -> Response:
        return await self._page(request, "secrets", (await self._service_user(request)).id, views.secret)

    async def list_keys(self, request: Request) -> Response:
        return await self._page(request, "keys", (await self._service_user(request)).id, views.key)

    async def patch_tenant(self, request: Request) -> Response:
        read = functools.partial(self._tenant_revised, request)
        first, body, wanted = await self._read_if_match(request, read, TenantPatch)
        fields = self._changes(body)
        _, tenant, revision = await self._update(request, read, first, wanted,
                                                 lambda t: dataclasses.replace(t, **fields))
        if "disabled" in fields:  # every time: a PATCH again completes one cut short
            await self._copy_tenant_disabled(tenant)
        return self._one((tenant, revision), views.tenant)

    async def _copy_tenant_disabled(self, tenant: Tenant) -> None:
        """Copy the tenant's `disabled` into each of its clients and service users (a service
        user's secrets are checked through it), a page at a time: the token path then reads
        no tenant record. Each record by a conditional write (a PATCH of it at the same time
        is kept, and so is this), and again while the tenant changed under the copy (another
        PATCH of it): the last copy to end leaves every record as the tenant is."""
        disabled = tenant.disabled
        for _ in range(ATTEMPTS):
            for kind in ("clients", "service_users"):
                after = None
                while True:
                    page = await self.store.list_page(kind, tenant.id, 500, after)
                    for record in page.items:
                        if record.tenant_disabled != disabled:
                            await self._set_tenant_disabled(kind, ident(record), disabled)
                    if page.after is None:
                        break
                    after = page.after
            now = await self.store.get_tenant(tenant.id)
            if now is None or now.disabled == disabled:
                return
            disabled = now.disabled

    async def _set_tenant_disabled(self, kind: Editable, key: str, disabled: bool) -> None:
        for _ in range(ATTEMPTS):
            got = await self.store.read_revised(kind, key)
            if got is None or got[0].tenant_disabled == disabled:
                return
            if await self.store.replace(dataclasses.replace(got[0], tenant_disabled=disabled), got[1]) is not None:
                return
        raise AdminError(409, "conflict", f"{kind} {key} kept changing while the tenant's disabled was copied to it;"
                         " PATCH the tenant again")

    @staticmethod
    def _changes(body: BaseModel) -> dict[str, Any]:
        return {k: (tuple(v) if isinstance(v, list) else v) for k, v in body.model_dump(
            include=body.model_fields_set).items()}

    async def patch_client(self, request: Request) -> Response:
        read = functools.partial(self._client, request)
        first, body, wanted = await self._read_if_match(request, read, ClientPatch)
        changes = self._changes(body)

        def change(client: Client) -> Client:
            updated = dataclasses.replace(client, **changes)
            # only grant_types can bring a conflict (the other fields it weighs are not patchable): a
            # client stored before a rule existed can still be disabled or have its scopes changed
            problem = grant_conflict(updated.grant_types, updated.refresh_policy,
                                     updated.token_endpoint_auth_method) if "grant_types" in changes else None
            if problem:  # the body is well formed; the client as stored rules it out
                raise AdminError(409, "conflict", f"grant_types: {problem} (the client as stored)")
            return updated
        client, updated, revision = await self._update(request, read, first, wanted, change)
        if updated.disabled and not client.disabled:
            await self.ctx.revoker.client(client.client_id)
        return self._one((updated, revision), views.client)

    async def patch_user(self, request: Request) -> Response:
        read = functools.partial(self._user, request)
        first, body, wanted = await self._read_if_match(request, read, UserPatch)
        changes = self._changes(body)
        password = changes.pop("password", None)
        if password is not None:  # hashed once, whatever the retries
            changes["password_hash"] = await self.ctx.passwords.hash_async(password)
        user, updated, revision = await self._update(request, read, first, wanted,
                                                     lambda u: dataclasses.replace(u, **changes))
        if password is not None or (updated.disabled and not user.disabled):
            await self.ctx.revoker.subject(user.id)
        return self._one((updated, revision), views.user)

    async def patch_service_user(self, request: Request) -> Response:
        read = functools.partial(self._tenant_service_user, request)
        first, body, wanted = await self._read_if_match(request, read, ServiceUserPatch)
        changes = self._changes(body)
        su, updated, revision = await self._update(request, read, first, wanted,
                                                   lambda r: dataclasses.replace(r, **changes))
        if updated.disabled and not su.disabled:
            await self.ctx.revoker.subject(su.id)
        return self._one((updated, revision), views.service_user)

    def routes(self) -> list[Route]:
        from sidecar.admin.routing import mount

        return [mount(self.admin_routes())]

    def admin_routes(self) -> list[Route]:
        w = self._wrap
        t, su = "/admin/tenants/{tenant}", "/admin/service-users/{id}"
        return [
            Route("/admin/tenants", w(self.list_tenants), methods=["GET"]),
            Route(t, w(self.get_tenant), methods=["GET"]),
            Route(t, w(self.patch_tenant), methods=["PATCH"]),
            Route(t + "/clients", w(self.list_clients), methods=["GET"]),
            Route(t + "/clients/{client_id}", w(self.get_client), methods=["GET"]),
            Route(t + "/clients/{client_id}", w(self.patch_client), methods=["PATCH"]),
            Route(t + "/users", w(self.list_users), methods=["GET"]),
            Route(t + "/users/{id}", w(self.get_user), methods=["GET"]),
            Route(t + "/users/{id}", w(self.patch_user), methods=["PATCH"]),
            Route(t + "/service-users", w(self.list_service_users), methods=["GET"]),
            Route(t + "/service-users/{id}", w(self.get_service_user), methods=["GET"]),
            Route(t + "/service-users/{id}", w(self.patch_service_user), methods=["PATCH"]),
            Route(su, w(self.get_service_user), methods=["GET"]),
            Route(su, w(self.patch_service_user), methods=["PATCH"]),
            Route(su + "/secrets", w(self.list_secrets), methods=["GET"]),
            Route(su + "/keys", w(self.list_keys), methods=["GET"]),
            Route("/admin/tenants", w(self.create_tenant), methods=["POST"]),
            Route("/admin/tenants/{tenant}/users", w(self.create_user), methods=["POST"]),
            Route("/admin/tenants/{tenant}/users/{id}", w(self.delete_user), methods=["DELETE"]),
            Route("/admin/tenants/{tenant}/clients", w(self.create_client), methods=["POST"]),
            Route("/admin/tenants/{tenant}/clients/{client_id}", w(self.delete_client), methods=["DELETE"]),
            Route("/admin/tenants/{tenant}/service-users", w(self.create_service_user), methods=["POST"]),
            Route("/admin/service-users/{id}", w(self.delete_service_user), methods=["DELETE"]),
            Route("/admin/service-users/{id}/secrets", w(self.create_secret), methods=["POST"]),
            Route("/admin/service-users/{id}/secrets/{client_id}", w(self.delete_secret), methods=["DELETE"]),
            Route("/admin/service-users/{id}/keys", w(self.create_key), methods=["POST"]),
            Route("/admin/service-users/{id}/keys/{kid}", w(self.get_key), methods=["GET"]),
            Route("/admin/service-users/{id}/keys/{kid}", w(self.delete_key), methods=["DELETE"]),
            *self._signing_key_routes(),
        ]

    def _signing_key_routes(self) -> list[Route]:
        from sidecar.admin.signing_keys import SigningKeysApi

        settings = self.ctx.settings
        api = SigningKeysApi(self.ctx.issuer.keyring, settings, settings.signing_key_retention)
        return [Route("/admin/keys", self._wrap(api.list), methods=["GET"]),
                Route("/admin/keys/rotate", self._wrap(api.rotate), methods=["POST"])]
