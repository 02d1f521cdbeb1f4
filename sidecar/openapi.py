"""The OpenAPI document for the token and admin endpoints (served at /openapi.json)."""

from __future__ import annotations

import re
from typing import Any

from sidecar.admin import models, views
from sidecar.oauth.grants import GRANTS
from sidecar.oauth.grants.base import HELD_REFRESH
from sidecar.oauth.grants.token_exchange import TOKEN_EXCHANGE, TOKEN_TYPES


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required or [], "additionalProperties": False}


_S = {"type": "string"}
_LIST = {"type": "array", "items": _S}
_SIGNING_KEY = {"type": "object", "properties": {
    "kid": {"type": "string"}, "alg": {"type": "string"},
    "state": {"type": "string", "enum": ["published", "active", "retired", "gone"]},
    "activates_at": {"type": ["string", "null"]}, "retires_at": {"type": ["string", "null"]}}}
_ERROR = {"description": "error", "content": {"application/json": {"schema": _obj(
    {"error": _S, "error_description": _S}, ["error"])}}}


_FORM_ERRORS = {"400": _ERROR, "401": _ERROR, "413": _ERROR, "429": _ERROR, "503": _ERROR}


def _json(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _answer(schema: dict[str, Any], description: str = "ok") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# --- the admin API: the rules sidecar/admin/models.py and views.py enforce
_NAME = {"type": "string", "minLength": 1, "maxLength": models.TEXT_MAX, "pattern": models.TEXT}
_SCOPES = {"type": "array", "maxItems": models.ITEMS_MAX, "items": {
    "type": "string", "minLength": 1, "maxLength": models.ITEM_MAX, "pattern": models.SCOPE}}
_PROJECTS = {"type": "array", "maxItems": models.ITEMS_MAX, "items": {
    "type": "string", "minLength": 1, "maxLength": models.ITEM_MAX, "pattern": models.TEXT}}
_AUDIENCES = {"type": "array", "maxItems": models.ITEMS_MAX, "items": _NAME}
# RFC 7591 `jwks` of a self_signed_tls_client_auth client: each key names its certificate in x5c
_JWKS = _obj({"keys": {"type": "array", "minItems": 1, "maxItems": 16, "items": {
    "type": "object", "required": ["x5c"], "properties": {"x5c": {
        "type": "array", "minItems": 1, "maxItems": 10, "items": {
            "type": "string", "minLength": 4, "maxLength": 16_384, "pattern": models.BASE64}}}}}}, ["keys"])
_PASSWORD = {"type": "string", "minLength": 8, "maxLength": 1024}
_BOOL = {"type": "boolean"}
_TTL = {"type": "integer", "minimum": 1, "maximum": models.TTL_MAX}
_TITLE = {"type": "string", "maxLength": models.TEXT_MAX, "pattern": f"^$|{models.TEXT}"}
_TIME = {"type": "string", "format": "date-time"}
_ID_PARAM = {"type": "string", "pattern": r"^[A-Za-z0-9_-][A-Za-z0-9._~-]{0,127}$"}
_PARAMS = {"tenant": {"type": "string", "pattern": models.ID}, "id": _ID_PARAM, "client_id": _ID_PARAM,
           "kid": _ID_PARAM}
_PAGING = [
    {"name": "limit", "in": "query", "required": False, "description": f"at most this many items (default "
     f"{views.DEFAULT_LIMIT})", "schema": {"type": "integer", "minimum": 1, "maximum": views.MAX_LIMIT}},
    {"name": "cursor", "in": "query", "required": False, "description": "the next_cursor of the page before "
     "(opaque)", "schema": {"type": "string", "minLength": 1, "maxLength": views.MAX_CURSOR}}]


def _record(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props)}


_TENANT = _record({"id": _S, "name": _S, "disabled": _BOOL, "created": _TIME})
_CLIENT = _record({"client_id": _S, "tenant": _S, "name": _S, "grant_types": _LIST, "scopes": _LIST,
                   "access_token_ttl": {"type": ["integer", "null"]}, "refresh_policy": _S,
                   "refresh_rotation": _BOOL, "disabled": _BOOL, "token_endpoint_auth_method": _S,
                   "tls_client_auth_subject_dn": {"type": ["string", "null"]}, "dpop_bound_access_tokens": _BOOL,
                   "exchange_audiences": _LIST, "jwks": {"type": ["object", "null"]},
                   "tls_client_certificate_bound_access_tokens": _BOOL, "created": _TIME})
_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "tls_client_auth", "self_signed_tls_client_auth", "none"]

_USER = _record({"id": _S, "tenant": _S, "username": _S, "org_id": {"type": ["string", "null"]},
                 "project_ids": _LIST, "scopes": _LIST, "disabled": _BOOL, "created": _TIME})
_SERVICE_USER = _record({"id": _S, "tenant": _S, "name": _S, "org_id": _S, "project_ids": _LIST, "scopes": _LIST,
                         "disabled": _BOOL, "created": _TIME})
_SECRET = _record({"client_id": _S, "title": _S, "created": _TIME})
_KEY = _record({"kid": _S, "alg": _S, "title": _S, "created": _TIME})


def _page(item: dict[str, Any]) -> dict[str, Any]:
    return _record({"items": {"type": "array", "items": item}, "next_cursor": {"type": ["string", "null"]}})


def _op(summary: str, path: str, codes: dict[str, Any], body: dict[str, Any] | None = None,
        query: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    params = [{"name": name, "in": "path", "required": True, "schema": _PARAMS[name]}
              for name in re.findall(r"{(\w+)}", path)]
    responses = {**codes, "401": _ERROR, "503": {**_ERROR, "description": "the store is unavailable; retry later"}}
    if any(p["in"] == "path" for p in params):
        responses["404"] = {**_ERROR, "description": "no such record"}
    if body is not None:
        responses["400"] = {**_ERROR, "description": "a refused value; the description names the field"}
        responses["413"] = {**_ERROR, "description": "the body is larger than max_body_bytes"}
        responses["415"] = {**_ERROR, "description": "the body is not application/json"}
    op: dict[str, Any] = {"summary": summary, "security": [{"admin": []}], "responses": responses}
    if params or query:
        op["parameters"] = params + (query or [])
    if query:
        responses["400"] = {**_ERROR, "description": "a refused limit or cursor"}
    if body is not None:
        op["requestBody"] = body
    return op


# RFC 9110 §8.8.3, §13.1.1, §13.1.2: a record's ETag (its revision), If-Match on its PATCH and
# DELETE, If-None-Match on its GET
_ETAG = {"ETag": {"required": True, "description": "the record's revision, a strong entity tag",
                  "schema": {"type": "string", "pattern": '^"[0-9a-f]{40}"$'}}}
_IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
             "description": "`*` or a list of entity tags: only if the record is at one of these ETags (as GET or "
                            "PATCH gave them), or for `*` exists; else 412 and nothing changes"}


_IF_NONE_MATCH = {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
                  "description": "`*` or a list of entity tags (weak comparison: W/\"x\" names \"x\"): 304 with no "
                                 "body when the record is at one of them, or for `*` exists; a field that is neither "
                                 "is ignored"}
_NOT_MODIFIED = {"description": "If-None-Match names the record's ETag (or is *): the caller's copy is current; "
                                "no body", "headers": _ETAG}


def _conditional(op: dict[str, Any]) -> dict[str, Any]:
    """An operation on one record that takes If-Match."""
    op["parameters"] = op.get("parameters", []) + [_IF_MATCH]
    op["responses"]["412"] = {**_ERROR, "description": "If-Match names none of the record's ETags (it changed, "
                              "or the field is not * or a list of entity tags); nothing changed"}
    return op


def _tagged(answer: dict[str, Any]) -> dict[str, Any]:
    return {**answer, "headers": _ETAG}


def _list(summary: str, path: str, item: dict[str, Any]) -> dict[str, Any]:
    return _op(summary, path, {"200": _answer(_page(item))}, query=_PAGING)


def _get(summary: str, path: str, answer: dict[str, Any], etag: bool = True) -> dict[str, Any]:
    if not etag:
        return _op(summary, path, {"200": _answer(answer)})
    op = _op(summary, path, {"200": _tagged(_answer(answer)), "304": _NOT_MODIFIED})
    op["parameters"] = op.get("parameters", []) + [_IF_NONE_MATCH]
    return op


def _create(summary: str, path: str, body: dict[str, Any], answer: dict[str, Any], conflict: str | None = None,
            required: bool = True) -> dict[str, Any]:
    codes = {"201": _answer(answer, "created")}
    if conflict:
        codes["409"] = {**_ERROR, "description": conflict}
    return _op(summary, path, codes, body=_json(body, required))


def _patch(summary: str, path: str, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    # every field optional: an empty body changes nothing
    return _conditional(_op(summary, path, {
        "200": _tagged(_answer(answer, "the record as changed")),
        "409": {**_ERROR, "description": "the change conflicts with the record as stored (a client's grant_types "
                "with its refresh_policy or auth method), or the record kept changing while the PATCH was applied"}},
        body=_json(body, False)))


def _delete(summary: str, path: str, conditional: bool = False) -> dict[str, Any]:
    op = _op(summary, path, {"204": {"description": "deleted, and its tokens revoked"}})
    return _conditional(op) if conditional else op


def _admin_paths() -> dict[str, Any]:
    t, su = "/admin/tenants/{tenant}", "/admin/service-users/{id}"
    grant_types = {"type": "array", "minItems": 1, "maxItems": len(GRANTS) or 1,
                   "items": {"type": "string", "enum": sorted(GRANTS)}}
    su_patch = _obj({"project_ids": _PROJECTS, "scopes": _SCOPES, "disabled": _BOOL})
    return {
        "/admin/tenants": {
            "get": _list("list the tenants", "/admin/tenants", _TENANT),
            "post": _create("create a tenant", "/admin/tenants",
                            _obj({"id": {"type": "string", "pattern": models.ID}, "name": _NAME}, ["id", "name"]),
                            _obj({"id": _S, "name": _S}), conflict="a tenant with that id exists")},
        t: {"get": _get("a tenant", t, _TENANT),
            "patch": _patch("rename, disable or enable a tenant", t, _obj({"name": _NAME, "disabled": _BOOL}),
                            _TENANT)},
        t + "/users": {
            "get": _list("a tenant's users", t + "/users", _USER),
            "post": _create("create a user", t + "/users", _obj(
                {"username": _NAME, "password": _PASSWORD, "org_id": {**_NAME, "type": ["string", "null"]},
                 "project_ids": _PROJECTS, "scopes": _SCOPES}, ["username", "password"]),
                _obj({"id": _S, "username": _S}), conflict="the username is taken in the tenant")},
        t + "/users/{id}": {
            "get": _get("a user (never the password hash)", t + "/users/{id}", _USER),
            "patch": _patch("change a user; a new password or disabling revokes the user's tokens", t + "/users/{id}",
                            _obj({"password": _PASSWORD, "org_id": {**_NAME, "type": ["string", "null"]},
                                  "project_ids": _PROJECTS, "scopes": _SCOPES, "disabled": _BOOL}), _USER),
            "delete": _delete("delete a user", t + "/users/{id}", conditional=True)},
        t + "/clients": {
            "get": _list("a tenant's clients", t + "/clients", _CLIENT),
            "post": _create("create a client", t + "/clients", {**_obj(
                {"name": _NAME, "grant_types": grant_types, "scopes": _SCOPES,
                 "access_token_ttl": {**_TTL, "type": ["integer", "null"]},
                 "refresh_policy": {"type": "string", "enum": ["always", "offline", "never", "held"]},
                 "refresh_rotation": _BOOL,
                 "client_id": {"type": ["string", "null"], "pattern": models.ID},
                 "token_endpoint_auth_method": {"type": "string", "enum": _AUTH_METHODS},
                 "tls_client_auth_subject_dn": {**_NAME, "type": ["string", "null"]},
                 "dpop_bound_access_tokens": _BOOL, "exchange_audiences": _AUDIENCES,
                 "jwks": {**_JWKS, "type": ["object", "null"]},
                 "tls_client_certificate_bound_access_tokens": _BOOL}, ["name", "grant_types"]),
                "allOf": [
                    # refresh_policy held needs the held-refresh grant
                    {"if": {"properties": {"refresh_policy": {"const": "held"}}, "required": ["refresh_policy"]},
                     "then": {"properties": {"grant_types": {"contains": {"const": HELD_REFRESH}}}}},
                    # tls_client_auth names the certificate's subject, and only it does
                    {"if": {"properties": {"token_endpoint_auth_method": {"const": "tls_client_auth"}},
                            "required": ["token_endpoint_auth_method"]},
                     "then": {"properties": {"tls_client_auth_subject_dn": {"type": "string"}},
                              "required": ["tls_client_auth_subject_dn"]},
                     "else": {"properties": {"tls_client_auth_subject_dn": {"type": "null"}}}},
                    # self_signed_tls_client_auth registers its certificates
                    {"if": {"properties": {"token_endpoint_auth_method": {"const": "self_signed_tls_client_auth"}},
                            "required": ["token_endpoint_auth_method"]},
                     "then": {"properties": {"jwks": {"type": "object"}}, "required": ["jwks"]}},
                    # a public client has no secret to prove client_credentials or a token exchange with
                    {"if": {"properties": {"token_endpoint_auth_method": {"const": "none"}},
                            "required": ["token_endpoint_auth_method"]},
                     "then": {"properties": {"grant_types": {"not": {"contains": {
                         "enum": ["client_credentials", TOKEN_EXCHANGE]}}}}}}]},
                _obj({"client_id": _S, "client_secret": _S}, ["client_id"]),
                conflict="a client with that client_id exists")},
        t + "/clients/{client_id}": {
            "get": _get("a client (never its secret)", t + "/clients/{client_id}", _CLIENT),
            "patch": _patch("change a client; disabling revokes its tokens", t + "/clients/{client_id}",
                            _obj({"grant_types": grant_types, "scopes": _SCOPES, "disabled": _BOOL,
                                  "dpop_bound_access_tokens": _BOOL, "exchange_audiences": _AUDIENCES,
                                  "jwks": _JWKS, "tls_client_certificate_bound_access_tokens": _BOOL}), _CLIENT),
            "delete": _delete("delete a client", t + "/clients/{client_id}", conditional=True)},
        t + "/service-users": {
            "get": _list("a tenant's service users", t + "/service-users", _SERVICE_USER),
            "post": _create("create a service user", t + "/service-users", _obj(
                {"name": _NAME, "org_id": _NAME, "project_ids": _PROJECTS, "scopes": _SCOPES}, ["name", "org_id"]),
                _obj({"id": _S, "name": _S, "org_id": _S}))},
        t + "/service-users/{id}": {
            "get": _get("a service user of the tenant", t + "/service-users/{id}", _SERVICE_USER),
            "patch": _patch("change a service user; disabling revokes its tokens", t + "/service-users/{id}",
                            su_patch, _SERVICE_USER)},
        su: {"get": _get("a service user", su, _SERVICE_USER),
             "patch": _patch("change a service user; disabling revokes its tokens", su, su_patch, _SERVICE_USER),
             "delete": _delete("delete a service user", su, conditional=True)},
        su + "/secrets": {
            "get": _list("a service user's secrets (metadata only)", su + "/secrets", _SECRET),
            "post": _create("add a client secret (shown once)", su + "/secrets", _obj({"title": _TITLE}),
                            _obj({"client_id": _S, "client_secret": _S}), required=False)},
        su + "/secrets/{client_id}": {"delete": _delete("delete a secret", su + "/secrets/{client_id}")},
        su + "/keys": {
            "get": _list("a service user's keys (metadata only)", su + "/keys", _KEY),
            "post": _create("add a key pair (the private key shown once)", su + "/keys", _obj(
                {"title": _TITLE, "alg": {"type": "string", "enum": list(models.ALGS)}}),
                _obj({"type": _S, "kid": _S, "alg": _S, "principal_id": _S, "private_key": _S}), required=False)},
        su + "/keys/{kid}": {
            "get": _get("the public key as a JWK", su + "/keys/{kid}", {"type": "object"}, etag=False),
            "delete": _delete("delete a key", su + "/keys/{kid}")},
        "/admin/keys": {"get": _op("our signing keys and their life-cycle state", "/admin/keys", {
            "200": _answer(_obj({"keys": {"type": "array", "items": _SIGNING_KEY}}, ["keys"]))})},
        "/admin/keys/rotate": {"post": _op(
            "schedule a new signing key keys.publish_ahead from now in keys_dir", "/admin/keys/rotate", {
                "201": _answer(_obj({"kid": _S, "activates_at": _S, "pruned": _LIST,
                                     "keys": {"type": "array", "items": _SIGNING_KEY}}, ["kid", "activates_at"])),
                "409": {**_ERROR, "description": "keys_dir not writable, an ephemeral key, or a rotation pending"}})},
    }


def openapi_document(issuer: str) -> dict[str, Any]:
    token_type = {"type": "string", "enum": list(TOKEN_TYPES)}
    targets = {"oneOf": [_S, {"type": "array", "items": _S, "minItems": 1}],
               "description": "RFC 8693: may repeat (a JSON body: a list)"}
    token_form = _obj({"grant_type": {"type": "string", "enum": [
        "password", "client_credentials", "refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "urn:auth-sidecar:grant-type:held-refresh", TOKEN_EXCHANGE]},
        "username": _S, "password": _S, "scope": _S, "refresh_token": _S, "assertion": _S, "access_token": _S,
        "client_id": _S, "client_secret": _S, "expires_in": _S, "expiration": _S,
        "access_type": {"type": "string", "enum": ["online", "offline"]},
        # token exchange (RFC 8693 §2.1)
        "subject_token": _S, "subject_token_type": token_type, "actor_token": _S, "actor_token_type": token_type,
        "requested_token_type": token_type, "audience": targets, "resource": targets}, ["grant_type"])
    token_answer = _obj({"access_token": _S, "token_type": _S, "expires_in": {"type": "integer"},
                         "refresh_token": _S, "scope": _S, "issued_token_type": _S},
                        ["access_token", "token_type", "expires_in"])
    form = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": token_form},
                                          "application/json": {"schema": token_form}}}
    token_param = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": _obj(
        {"token": _S, "token_type_hint": _S}, ["token"])}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "auth-sidecar token service and admin API", "version": "0.1.0"},
        "servers": [{"url": issuer}],
        "components": {"securitySchemes": {
            "client": {"type": "http", "scheme": "basic"},
            "admin": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/oauth/token": {"post": {"summary": "token endpoint (RFC 6749, RFC 7523, RFC 8693)", "security": [{"client": []}, {}],
                                      "requestBody": form, "responses": {
                                          "200": {"description": "tokens", "content": {"application/json": {"schema": token_answer}}},
                                          "400": _ERROR, "401": _ERROR, "413": _ERROR, "429": _ERROR,
                                          "503": _ERROR}}},
            "/oauth/revoke": {"post": {"summary": "revocation (RFC 7009)", "security": [{"client": []}],
                                       "requestBody": token_param, "responses": {"200": {"description": "revoked"},
                                                                                 **_FORM_ERRORS}}},
            "/oauth/introspect": {"post": {"summary": "introspection (RFC 7662)", "security": [{"client": []}],
                                           "requestBody": token_param, "responses": {
                                               "200": {"description": "token state", "content": {"application/json": {
                                                   "schema": {"type": "object", "properties": {"active": {"type": "boolean"}},
                                                              "required": ["active"]}}}}, **_FORM_ERRORS}}},
            "/.well-known/jwks.json": {"get": {"summary": "signing keys", "responses": {"200": {"description": "JWKS"}}}},
            "/.well-known/oauth-authorization-server": {"get": {"summary": "RFC 8414 metadata",
                                                                "responses": {"200": {"description": "metadata"}}}},
            "/.well-known/openid-configuration": {"get": {"summary": "OpenID discovery",
                                                          "responses": {"200": {"description": "metadata"}}}},
            **_admin_paths(),
        },
    }
