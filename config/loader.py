"""Build Settings from a YAML file and AUTH_SIDECAR_* variables (the environment wins).

Nested keys use a double underscore: AUTH_SIDECAR_CACHE__TTL_SECONDS=60.
Lists take comma-separated values; structured values (trusted_issuers, routes) take JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import ValidationError

from config.settings import Settings

PREFIX = "AUTH_SIDECAR_"
_NOT_SETTINGS = {"CONFIG", "URL"}  # URL: where `auth-sidecar admin` finds the server (a client setting)
_JSON_KEYS = {"trusted_issuers", "routes", "introspection"}
_LIST_KEYS = {"audiences", "dynamic_metadata"}


class ConfigError(Exception):
    """A bad setting; the message is one line naming the key."""


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(PREFIX) or name[len(PREFIX):] in _NOT_SETTINGS:
            continue
        path = name[len(PREFIX):].lower().split("__")
        value: Any = raw
        if path[0] in _JSON_KEYS:
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{name}: not valid JSON ({exc.msg})") from None
        elif path[0] in _LIST_KEYS:
            value = [part.strip() for part in raw.split(",") if part.strip()]
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: not valid YAML ({exc})".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: top level must be a mapping")
    return data


def _describe(exc: ValidationError) -> str:
    err = exc.errors()[0]
    key = ".".join(str(part) for part in err["loc"]) or "(root)"
    msg = err["msg"].replace("\n", " ")
    more = len(exc.errors()) - 1
    return f"{key}: {msg}" + (f" (and {more} more)" if more else "")


def load_settings(path: str | None = None, environ: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Settings:
    """Load settings; raise ConfigError with one line naming the key on any problem."""
    environ = os.environ if environ is None else environ
    path = path or environ.get(PREFIX + "CONFIG")
    data = _read_file(path) if path else {}
    data = _merge(data, _env_overrides(environ))
    if overrides:
        data = _merge(data, dict(overrides))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
