"""The OpenAPI document for the token and admin endpoints (served at /openapi.json)."""

from __future__ import annotations

from typing import Any


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


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _admin(summary: str, body: dict[str, Any] | None, answer: dict[str, Any], code: str = "201") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "security": [{"admin": []}],
                          "responses": {code: {"description": "ok", "content": {"application/json": {"schema": answer}}},
                                        "400": _ERROR, "401": _ERROR, "404": _ERROR, "422": _ERROR}}
    if body is not None:
        op["requestBody"] = _json(body)
    return op


def _answer(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": "ok", "content": {"application/json": {"schema": schema}}}


def _delete(summary: str) -> dict[str, Any]:
    return {"delete": {"summary": summary, "security": [{"admin": []}],
                       "responses": {"204": {"description": "deleted, and its tokens revoked"},
                                     "401": _ERROR, "404": _ERROR}}}


def openapi_document(issuer: str) -> dict[str, Any]:
    token_form = _obj({"grant_type": {"type": "string", "enum": [
        "password", "client_credentials", "refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "urn:auth-sidecar:grant-type:held-refresh"]},
        "username": _S, "password": _S, "scope": _S, "refresh_token": _S, "assertion": _S, "access_token": _S,
        "client_id": _S, "client_secret": _S, "expires_in": _S, "expiration": _S,
        "access_type": {"type": "string", "enum": ["online", "offline"]}}, ["grant_type"])
    token_answer = _obj({"access_token": _S, "token_type": _S, "expires_in": {"type": "integer"},
                         "refresh_token": _S, "scope": _S}, ["access_token", "token_type", "expires_in"])
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
            "/oauth/token": {"post": {"summary": "token endpoint (RFC 6749, RFC 7523)", "security": [{"client": []}, {}],
                                      "requestBody": form, "responses": {
                                          "200": {"description": "tokens", "content": {"application/json": {"schema": token_answer}}},
                                          "400": _ERROR, "401": _ERROR, "429": _ERROR, "503": _ERROR}}},
            "/oauth/revoke": {"post": {"summary": "revocation (RFC 7009)", "security": [{"client": []}],
                                       "requestBody": token_param, "responses": {"200": {"description": "revoked"},
                                                                                 "401": _ERROR}}},
            "/oauth/introspect": {"post": {"summary": "introspection (RFC 7662)", "security": [{"client": []}],
                                           "requestBody": token_param, "responses": {
                                               "200": {"description": "token state", "content": {"application/json": {
                                                   "schema": {"type": "object", "properties": {"active": {"type": "boolean"}},
                                                              "required": ["active"]}}}}, "401": _ERROR}}},
            "/.well-known/jwks.json": {"get": {"summary": "signing keys", "responses": {"200": {"description": "JWKS"}}}},
            "/.well-known/oauth-authorization-server": {"get": {"summary": "RFC 8414 metadata",
                                                                "responses": {"200": {"description": "metadata"}}}},
            "/.well-known/openid-configuration": {"get": {"summary": "OpenID discovery",
                                                          "responses": {"200": {"description": "metadata"}}}},
            "/admin/tenants": {"post": _admin("create a tenant", _obj({"id": _S, "name": _S}, ["id", "name"]),
                                              _obj({"id": _S, "name": _S}))},
            "/admin/tenants/{tenant}/users": {"post": _admin("create a user", _obj(
                {"username": _S, "password": _S, "org_id": _S, "project_ids": _LIST, "scopes": _LIST},
                ["username", "password"]), _obj({"id": _S, "username": _S}))},
            "/admin/tenants/{tenant}/users/{id}": _delete("delete a user"),
            "/admin/tenants/{tenant}/clients": {"post": _admin("create a client", _obj(
                {"name": _S, "grant_types": _LIST, "scopes": _LIST, "access_token_ttl": {"type": "integer"}},
                ["name", "grant_types"]), _obj({"client_id": _S, "client_secret": _S}))},
            "/admin/tenants/{tenant}/clients/{client_id}": _delete("delete a client"),
            "/admin/tenants/{tenant}/service-users": {"post": _admin("create a service user", _obj(
                {"name": _S, "org_id": _S, "project_ids": _LIST, "scopes": _LIST}, ["name", "org_id"]),
                _obj({"id": _S, "name": _S, "org_id": _S}))},
            "/admin/service-users/{id}": _delete("delete a service user"),
            "/admin/service-users/{id}/secrets": {"post": _admin("add a client secret", _obj({"title": _S}),
                                                                 _obj({"client_id": _S, "client_secret": _S}))},
            "/admin/service-users/{id}/secrets/{client_id}": _delete("delete a secret"),
            "/admin/service-users/{id}/keys": {"post": _admin("add a key pair", _obj({"title": _S, "alg": _S}),
                                                              _obj({"type": _S, "kid": _S, "alg": _S,
                                                                    "principal_id": _S, "private_key": _S}))},
            "/admin/service-users/{id}/keys/{kid}": {
                "get": _admin("the public key as a JWK", None, {"type": "object"}, code="200"),
                **_delete("delete a key")},
            "/admin/keys": {"get": {"summary": "our signing keys and their life-cycle state",
                                    "security": [{"admin": []}], "responses": {
                                        "200": _answer(_obj({"keys": {"type": "array", "items": _SIGNING_KEY}},
                                                            ["keys"])), "401": _ERROR}}},
            "/admin/keys/rotate": {"post": {
                "summary": "schedule a new signing key keys.publish_ahead from now in keys_dir",
                "security": [{"admin": []}], "responses": {
                    "201": _answer(_obj({"kid": _S, "activates_at": _S, "pruned": _LIST,
                                         "keys": {"type": "array", "items": _SIGNING_KEY}}, ["kid", "activates_at"])),
                    "401": _ERROR,
                    "409": {**_ERROR, "description": "keys_dir not writable, an ephemeral key, or a rotation pending"},
                }}},
        },
    }
