"""The auth-sidecar process: CLI, composition root, servers, token service, stores, admin API."""
