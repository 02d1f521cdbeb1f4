"""gRPC on the h2 transport (`grpc_server: h2`, the default): the Authorization and Health
services on this process's listening socket or on the connections its supervisor hands it."""

from __future__ import annotations

from config.settings import Settings
from transport.grpc.authorization import SERVICE, AuthorizationService
from transport.grpc.health import NOT_SERVING, Health
from transport.grpc.unary import GrpcH2Server
from transport.h2.limits import Limits
from transport.sockets import ConnectionSource


def advertised_streams(settings: Settings) -> int | None:
    """The streams a connection asks a client to keep to (`grpc_max_concurrent_streams`; None:
    no limit below the hard one). Low, it makes one busy Envoy thread open more connections,
    which the supervisor spreads over the workers; it also caps what one connection of a client
    that never opens a second (h2load, a grpcio channel) keeps in flight."""
    return settings.grpc_max_concurrent_streams


class H2Face:
    def __init__(self, settings: Settings, service: AuthorizationService, source: ConnectionSource) -> None:
        self.health = Health(("", SERVICE))
        limits = Limits(handshake_timeout=settings.grpc_handshake_timeout_seconds,
                        idle_timeout=settings.grpc_idle_timeout_seconds,
                        max_buffered_total=settings.grpc_max_buffered_bytes,
                        advertised_streams=advertised_streams(settings))
        self.server = GrpcH2Server({f"/{SERVICE}/Check": service.check_message,
                                    "/grpc.health.v1.Health/Check": self.health.check}, max_message=1 << 20,
                                   limits=limits)
        self.source = source  # --workers: the supervisor's balancer; else our own listening socket

    async def start(self) -> None:
        self.server.on_connection_closed = self.source.connection_closed
        self.source.receive(self.server.adopt)

    async def stop(self, grace: float) -> None:
        self.health.set(NOT_SERVING)
        self.source.stop()
        await self.server.stop(grace)
