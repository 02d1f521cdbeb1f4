"""Typed, immutable settings for auth-sidecar: YAML file + AUTH_SIDECAR_* environment."""

from config.loader import ConfigError, load_settings
from config.settings import Settings

__all__ = ["ConfigError", "Settings", "load_settings"]
