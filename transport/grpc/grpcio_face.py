"""gRPC on grpc.aio (`grpc_server: grpcio`), with grpcio's health service."""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from config.settings import Settings
from transport.grpc.authorization import SERVICE, AuthorizationService


class GrpcioFace:
    """gRPC on grpc.aio (`grpc_server: grpcio`)."""

    def __init__(self, settings: Settings, service: AuthorizationService) -> None:
        # SO_REUSEPORT only for --workers (grpc.aio cannot be handed connections): with one
        # worker a second instance on the port fails instead of sharing it
        reuse = 1 if settings.workers > 1 else 0
        self.server = grpc.aio.server(options=[("grpc.so_reuseport", reuse),
                                               ("grpc.max_receive_message_length", 1 << 20)])
        self.server.add_generic_rpc_handlers((service.handler(),))
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        try:
            self.server.add_insecure_port(settings.grpc_listen)
        except RuntimeError:  # grpcio says only "Failed to bind"
            print(f"auth-sidecar: cannot listen on grpc_listen {settings.grpc_listen}", file=sys.stderr)
            raise SystemExit(2) from None

    async def start(self) -> None:
        await self.server.start()
        for name in ("", SERVICE):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float) -> None:
        for name in ("", SERVICE):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(grace=grace)
