"""gRPC on `transport.h2`: unary calls (the ext_authz Check and health probes)."""
