"""gRPC on grpc.aio (`grpc_server: grpcio`), with grpcio's health service."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from transport.grpc.authorization import SERVICE
from config.settings import Settings
from sidecar.container import Container


class GrpcioFace:
    """gRPC on grpc.aio (`grpc_server: grpcio`)."""

    def __init__(self, settings: Settings, container: Container) -> None:
        self.server = grpc.aio.server(options=[("grpc.so_reuseport", 1), ("grpc.max_receive_message_length", 1 << 20)])
        self.server.add_generic_rpc_handlers((container.authz_service.handler(),))
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.server.add_insecure_port(settings.grpc_listen)

    async def start(self) -> None:
        await self.server.start()
        for name in ("", SERVICE):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float) -> None:
        for name in ("", SERVICE):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(grace=grace)
