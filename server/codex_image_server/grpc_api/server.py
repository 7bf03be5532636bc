"""Assembles the gRPC server on grpc.aio: ImageService, grpc.health.v1,
reflection. One event loop serves every call; nothing here holds a thread
while it waits on a peer."""

from __future__ import annotations

import asyncio

import grpc
from codeximage.v1 import image_service_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer

from codex_image_server.dataplane import frozen
from codex_image_server.dataplane.handlers import Handlers
from codex_image_server.dataplane.operation_messages import OPERATIONS_SERVICE
from codex_image_server.grpc_api.servicer import ImageServicer
from codex_image_server.grpc_api.wire import Received
from codex_image_server.runtime.blocking import Blocking
from codex_image_server.runtime.logs import log
from codex_image_server.settings import Settings

SERVICE = pb.DESCRIPTOR.services_by_name["ImageService"]
SERVICE_NAME = SERVICE.full_name


REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


def _serve_reflection(server: grpc.aio.Server, services: tuple[str, ...]) -> None:
    """Server reflection under both names. grpcio-reflection serves only
    v1alpha; grpcurl and buf curl ask for v1 first. The two protocols are the
    same messages under another package, so one servicer answers both."""
    servicer = ReflectionServicer(services + (reflection.SERVICE_NAME,))
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                REFLECTION_V1,
                {
                    "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                        servicer.ServerReflectionInfo,
                        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
                    )
                },
            ),
        )
    )


def _service_handlers(servicer: ImageServicer, service=SERVICE) -> grpc.GenericRpcHandler:
    """Every RPC of the proto's service, bound to the servicer's handler of
    the same name; responses go through `frozen.wire`, so a fixed answer is
    serialised once."""
    handlers = {}
    for method in service.methods:
        make = (
            grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        # No parsing here: the servicer gets the raw bytes (boxed, see
        # wire.Received) and parses them only after the API-key check.
        handlers[method.name] = make(
            servicer.rpc(method.name),
            request_deserializer=Received.off_the_wire,
            response_serializer=frozen.wire,
        )
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


class GrpcServer:
    def __init__(self, settings: Settings, handlers: Handlers, blocking: Blocking):
        self.settings = settings
        service = handlers.service
        self.engine = service.engine
        self.blocking = blocking
        self.slots = service.slots
        # References travel inside the request: allow the configured maximum.
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", settings.max_request_bytes),
                ("grpc.so_reuseport", 0),
            ]
        )
        self.operations = handlers.operations
        self.servicer = ImageServicer(settings, handlers, blocking)
        self.server.add_generic_rpc_handlers(
            (_service_handlers(self.servicer), _service_handlers(self.servicer, OPERATIONS_SERVICE))
        )
        self.health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        _serve_reflection(
            self.server,
            (
                SERVICE_NAME,
                OPERATIONS_SERVICE.full_name,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            ),
        )
        try:
            self.port = self.server.add_insecure_port(f"{settings.grpc_host}:{settings.grpc_port}")
        except RuntimeError:  # grpcio raises where it once returned 0
            self.port = 0
        if not self.port:
            raise SystemExit(
                f"could not bind gRPC on {settings.grpc_host}:{settings.grpc_port}: the port "
                "is in use or the address is not this machine's. Set CODEX_IMAGE_SERVER_GRPC_PORT "
                "to a free port (0 picks one)."
            )
        self._watcher: asyncio.Task | None = None

    async def _set_health(self) -> None:
        # A probe spawns codex: it runs on the default executor, never on the
        # loop nor in the blocking pool that generations use.
        ready = await asyncio.get_running_loop().run_in_executor(None, self.engine.readiness.get)
        serving = health_pb2.HealthCheckResponse.SERVING
        await self.health.set("", serving)  # the process is up
        # Ready only when codex can generate: a mesh routes on this one.
        await self.health.set(
            SERVICE_NAME, serving if ready.ready else health_pb2.HealthCheckResponse.NOT_SERVING
        )

    async def _watch_readiness(self) -> None:
        while True:
            await asyncio.sleep(self.settings.readiness_ttl_ms / 1000)
            try:
                await self._set_health()
            except Exception as exc:  # noqa: BLE001 - the watcher must outlive one bad probe
                log("readiness.watch_failed", level="warning", error_type=type(exc).__name__)

    async def start(self) -> None:
        await self._set_health()
        await self.server.start()
        await self.operations.start()
        self._watcher = asyncio.create_task(self._watch_readiness())

    async def stop(self, grace_s: float) -> None:
        """Refuse new calls, cancel running ones (their codex groups die), wait."""
        if self._watcher is not None:
            self._watcher.cancel()
        await self.health.enter_graceful_shutdown()
        await self.operations.stop()  # its runs are handed back, not failed
        self.servicer.shut_down()
        await self.server.stop(grace_s)
        # Whatever a cancelled call left (its cleanup still running) is stopped here.
        await asyncio.get_running_loop().run_in_executor(None, self.engine.shutdown)
        log("server.stopped")
