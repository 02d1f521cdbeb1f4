"""ext_authz over HTTP (Envoy `http_service`): the check adapter and the inline HTTP/1.1 protocol."""
