"""Admin API: tenants, clients, users, service users and their credentials.

Secrets and private keys are in the 201 answer only; the store keeps digests and public keys.
Reads answer metadata only. DELETE revokes the record and every token it holds; a PATCH that
disables a client, user or service user (or gives a user a new password) revokes their tokens
too, and a disabled one gets no new token. Every write is logged on the `audit` logger.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import time
import uuid
from typing import Any, Awaitable, Callable

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authz.keys import generate_private_key, private_pem, public_jwk, thumbprint_kid
from sidecar.admin import audit, views
from sidecar.admin.models import (ClientIn, ClientPatch, CredentialIn, ServiceUserIn, ServiceUserPatch, TenantIn,
                                  TenantPatch, UserIn, UserPatch, grant_conflict)
from sidecar.bodies import BodyError, parse_json, read_capped
from sidecar.oauth.context import OAuthContext
from sidecar.oauth.credentials import digest, new_secret
from sidecar.store import StoreUnavailable
from sidecar.store.base import Conflict
from sidecar.store.records import Client, ServiceKey, ServiceUser, Tenant, User

NO_STORE = {"Cache-Control": "no-store"}


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
        tenant = await self._tenant(request)
        user = await self.store.get_user(request.path_params["id"])
        if user is None or user.tenant != tenant.id:
            raise AdminError(404, "not_found", f"user {request.path_params['id']} does not exist")
        await self.store.delete_user(user.id)
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
        tenant = await self._tenant(request)
        client = await self.store.get_client(request.path_params["client_id"])
        if client is None or client.tenant != tenant.id or client.service_user_id:
            raise AdminError(404, "not_found", f"client {request.path_params['client_id']} does not exist")
        await self.store.delete_client(client.client_id)
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
        su = await self._service_user(request)
        await self.store.delete_service_user(su.id)
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

    async def _client(self, request: Request) -> Client:
        tenant = await self._tenant(request)
        client = await self.store.get_client(request.path_params["client_id"])
        if client is None or client.tenant != tenant.id or client.service_user_id:
            raise AdminError(404, "not_found", f"client {request.path_params['client_id']} does not exist")
        return client

    async def _user(self, request: Request) -> User:
        tenant = await self._tenant(request)
        user = await self.store.get_user(request.path_params["id"])
        if user is None or user.tenant != tenant.id:
            raise AdminError(404, "not_found", f"user {request.path_params['id']} does not exist")
        return user

    async def _tenant_service_user(self, request: Request) -> ServiceUser:
        su = await self._service_user(request)
        if "tenant" in request.path_params and su.tenant != (await self._tenant(request)).id:
            raise AdminError(404, "not_found", f"service user {request.path_params['id']} does not exist")
        return su

    async def list_tenants(self, request: Request) -> Response:
        return await self._page(request, "tenants", None, views.tenant)

    async def get_tenant(self, request: Request) -> Response:
        return JSONResponse(views.tenant(await self._tenant(request)))

    async def list_clients(self, request: Request) -> Response:
        return await self._page(request, "clients", (await self._tenant(request)).id, views.client)

    async def get_client(self, request: Request) -> Response:
        return JSONResponse(views.client(await self._client(request)))

    async def list_users(self, request: Request) -> Response:
        return await self._page(request, "users", (await self._tenant(request)).id, views.user)

    async def get_user(self, request: Request) -> Response:
        return JSONResponse(views.user(await self._user(request)))

    async def list_service_users(self, request: Request) -> Response:
        return await self._page(request, "service_users", (await self._tenant(request)).id, views.service_user)

    async def get_service_user(self, request: Request) -> Response:
        return JSONResponse(views.service_user(await self._tenant_service_user(request)))

    async def list_secrets(self, request: Request) -> Response:
        return await self._page(request, "secrets", (await self._service_user(request)).id, views.secret)

    async def list_keys(self, request: Request) -> Response:
        return await self._page(request, "keys", (await self._service_user(request)).id, views.key)

    async def patch_tenant(self, request: Request) -> Response:
        tenant = await self._tenant(request)
        body = await self._body(request, TenantPatch)
        tenant = dataclasses.replace(tenant, **body.model_dump(include=body.model_fields_set))
        await self.store.put_tenant(tenant)
        if "disabled" in body.model_fields_set:  # every time: a PATCH again completes one cut short
            await self._copy_tenant_disabled(tenant)
        return JSONResponse(views.tenant(tenant))

    async def _copy_tenant_disabled(self, tenant: Tenant) -> None:
        """Copy the tenant's `disabled` into each of its clients and service users (a service
        user's secrets are checked through it), a page at a time: the token path then reads
        no tenant record."""
        for kind, put in (("clients", self.store.put_client), ("service_users", self.store.put_service_user)):
            after = None
            while True:
                page = await self.store.list_page(kind, tenant.id, 500, after)  # type: ignore[arg-type]
                for record in page.items:
                    if record.tenant_disabled != tenant.disabled:
                        await put(dataclasses.replace(record, tenant_disabled=tenant.disabled))
                if page.after is None:
                    break
                after = page.after

    async def patch_client(self, request: Request) -> Response:
        client = await self._client(request)
        body = await self._body(request, ClientPatch)
        changes = {k: (tuple(v) if isinstance(v, list) else v) for k, v in body.model_dump(
            include=body.model_fields_set).items()}
        updated = dataclasses.replace(client, **changes)
        # only grant_types can bring a conflict (the other fields it weighs are not patchable): a client
        # stored before a rule existed can still be disabled or have its scopes changed
        problem = grant_conflict(updated.grant_types, updated.refresh_policy,
                                 updated.token_endpoint_auth_method) if "grant_types" in changes else None
        if problem:
            raise AdminError(400, "invalid_request", problem)
        await self.store.put_client(updated)
        if updated.disabled and not client.disabled:
            await self.ctx.revoker.client(client.client_id)
        return JSONResponse(views.client(updated))

    async def patch_user(self, request: Request) -> Response:
        user = await self._user(request)
        body = await self._body(request, UserPatch)
        changes = {k: (tuple(v) if isinstance(v, list) else v) for k, v in body.model_dump(
            include=body.model_fields_set).items()}
        password = changes.pop("password", None)
        if password is not None:
            changes["password_hash"] = await self.ctx.passwords.hash_async(password)
        updated = dataclasses.replace(user, **changes)
        await self.store.put_user(updated)
        if password is not None or (updated.disabled and not user.disabled):
            await self.ctx.revoker.subject(user.id)
        return JSONResponse(views.user(updated))

    async def patch_service_user(self, request: Request) -> Response:
        su = await self._tenant_service_user(request)
        body = await self._body(request, ServiceUserPatch)
        changes = {k: (tuple(v) if isinstance(v, list) else v) for k, v in body.model_dump(
            include=body.model_fields_set).items()}
        updated = dataclasses.replace(su, **changes)
        await self.store.put_service_user(updated)
        if updated.disabled and not su.disabled:
            await self.ctx.revoker.subject(su.id)
        return JSONResponse(views.service_user(updated))

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
