"""grpc.health.v1.Health/Check for the h2 transport: what kubelet's gRPC probe and Envoy's
gRPC health checks ask. Watch (a stream) is not served: it answers UNIMPLEMENTED."""

from __future__ import annotations

from google.protobuf.message import DecodeError
from grpc_health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from transport.grpc.unary import INVALID_ARGUMENT, GrpcError

NOT_FOUND = 5
SERVING, NOT_SERVING = HealthCheckResponse.SERVING, HealthCheckResponse.NOT_SERVING


class Health:
    def __init__(self, services: tuple[str, ...]) -> None:
        self._answers = {name: HealthCheckResponse(status=SERVING).SerializeToString() for name in services}

    def set(self, status: int) -> None:
        """Every service at once: the process serves all of them or none."""
        answer = HealthCheckResponse(status=status).SerializeToString()
        self._answers = {name: answer for name in self._answers}

    def check(self, message: bytes) -> bytes:
        try:
            service = HealthCheckRequest.FromString(message).service
        except DecodeError:
            raise GrpcError(INVALID_ARGUMENT, "not a HealthCheckRequest") from None
        answer = self._answers.get(service)
        if answer is None:
            raise GrpcError(NOT_FOUND, f"unknown service {service[:200]}")
        return answer
