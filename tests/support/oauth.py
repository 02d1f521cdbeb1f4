"""Talking to a running sidecar's token service and admin API: harness/oauth.py, shared with the bench."""

from harness.oauth import ADMIN_TOKEN, Admin, App, authz, login, refresh

__all__ = ["ADMIN_TOKEN", "Admin", "App", "authz", "login", "refresh"]
