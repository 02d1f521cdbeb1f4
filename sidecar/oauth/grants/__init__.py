"""One module per grant, each with the same steps (grants/base.py: Grant): an optional prefetch, validate, issue."""

from __future__ import annotations

from sidecar.oauth.grants.base import Grant
from sidecar.oauth.grants.client_credentials import ClientCredentialsGrant
from sidecar.oauth.grants.held_refresh import HeldRefreshGrant
from sidecar.oauth.grants.jwt_bearer import JwtBearerGrant
from sidecar.oauth.grants.password import PasswordGrant
from sidecar.oauth.grants.refresh_token import RefreshTokenGrant
from sidecar.oauth.grants.token_exchange import TokenExchangeGrant

GRANTS: dict[str, Grant] = {g.grant_type: g for g in (PasswordGrant(), ClientCredentialsGrant(),
                                                      RefreshTokenGrant(), JwtBearerGrant(),
                                                      HeldRefreshGrant(), TokenExchangeGrant())}

__all__ = ["GRANTS", "Grant"]
