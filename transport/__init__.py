"""Transports: how requests reach the decision engine (`authz`) and how its answers leave."""
