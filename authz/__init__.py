"""The ext_authz decision engine: extract → verify (or cache) → policy → mutation."""
