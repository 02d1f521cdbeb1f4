"""gRPC on the h2 transport (`grpc_server: h2`, the default): the Authorization and Health
services on this process's listening socket or on the connections its supervisor hands it."""

from __future__ import annotations

from config.settings import Settings
from transport.grpc.authorization import SERVICE, AuthorizationService
from transport.grpc.health import NOT_SERVING, Health
from transport.grpc.unary import GrpcH2Server
from transport.h2.limits import Limits
from transport.sockets import ConnectionSource


class H2Face:
    def __init__(self, settings: Settings, service: AuthorizationService, source: ConnectionSource) -> None:
        self.health = Health(("", SERVICE))
        limits = Limits(handshake_timeout=settings.grpc_handshake_timeout_seconds,
                        idle_timeout=settings.grpc_idle_timeout_seconds,
                        max_buffered_total=settings.grpc_max_buffered_bytes,
                        advertised_streams=settings.grpc_max_concurrent_streams)
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
