"""The OAuth 2.0 token service: token endpoint, grants, revocation, introspection, metadata."""
