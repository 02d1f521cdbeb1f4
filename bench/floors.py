"""Transport floors: a bare grpc.aio Check servicer that always says OK, and a bare ASGI
app that always answers 200. Same runtime (uvloop) as the sidecar."""

from __future__ import annotations

import asyncio
import sys

import grpc
from envoy.service.auth.v3 import external_auth_pb2 as pb
from google.rpc.status_pb2 import Status

OK = pb.CheckResponse(status=Status(code=0), ok_response=pb.OkHttpResponse()).SerializeToString()


async def grpc_floor(port: int) -> None:
    async def check(request, context):
        return OK

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("envoy.service.auth.v3.Authorization", {
        "Check": grpc.unary_unary_rpc_method_handler(check, request_deserializer=pb.CheckRequest.FromString,
                                                     response_serializer=None)}),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


async def asgi_app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    import uvloop
    uvloop.install()
    if kind == "grpc":
        asyncio.run(grpc_floor(port))
    else:
        import uvicorn
        uvicorn.run(asgi_app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


if __name__ == "__main__":
    main()
