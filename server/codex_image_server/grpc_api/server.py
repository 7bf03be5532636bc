"""Assembles the gRPC server: ImageService, grpc.health.v1, reflection, auth."""
from __future__ import annotations

import threading
from concurrent import futures

import grpc
from codeximage.v1 import image_service_pb2 as pb
from codeximage.v1 import image_service_pb2_grpc as pb_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from ..engine import Engine
from ..logs import log
from ..output_store import OutputStore
from ..settings import Settings
from ..slots import Slots
from .auth import ApiKeyInterceptor
from .servicer import ImageServicer
from .undecodable import UndecodableRequestInterceptor

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ImageService"].full_name


REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


def _serve_reflection(server: grpc.Server, services: tuple[str, ...]) -> None:
    """Server reflection under both names. grpcio-reflection serves only
    v1alpha; grpcurl and buf curl ask for v1 first. The two protocols are the
    same messages under another package, so one servicer answers both."""
    servicer = reflection.ReflectionServicer(services + (reflection.SERVICE_NAME,))
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(REFLECTION_V1, {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)}),))


class GrpcServer:
    def __init__(self, settings: Settings, engine: Engine, store: OutputStore):
        self.settings = settings
        self.engine = engine
        self.slots = Slots(settings.max_concurrent, settings.queue_limit)
        # References travel inside the request: allow the configured maximum.
        max_request = settings.max_request_bytes
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=settings.worker_threads, thread_name_prefix="rpc"),
            # Auth first: a caller without a key learns nothing from its bytes.
            interceptors=([ApiKeyInterceptor(settings.api_keys)] if settings.api_keys else [])
            + [UndecodableRequestInterceptor()],
            options=[("grpc.max_receive_message_length", max_request),
                     ("grpc.so_reuseport", 0)])
        self.servicer = ImageServicer(settings, engine, store, self.slots)
        pb_grpc.add_ImageServiceServicer_to_server(self.servicer, self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        _serve_reflection(self.server, (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name))
        try:
            self.port = self.server.add_insecure_port(f"{settings.grpc_host}:{settings.grpc_port}")
        except RuntimeError:  # grpcio raises where it once returned 0
            self.port = 0
        if not self.port:
            raise SystemExit(f"could not bind gRPC on {settings.grpc_host}:{settings.grpc_port}: the port "
                             "is in use or the address is not this machine's. Set CODEX_IMAGE_SERVER_GRPC_PORT "
                             "to a free port (0 picks one).")
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch_readiness, name="readiness", daemon=True)

    def _set_health(self) -> None:
        ready = self.engine.readiness.get()
        serving = health_pb2.HealthCheckResponse.SERVING
        self.health.set("", serving)  # the process is up
        # Ready only when codex can generate: a mesh routes on this one.
        self.health.set(SERVICE_NAME, serving if ready.ready else health_pb2.HealthCheckResponse.NOT_SERVING)

    def _watch_readiness(self) -> None:
        while not self._stop.wait(self.settings.readiness_ttl_ms / 1000):
            self._set_health()

    def start(self) -> None:
        self._set_health()
        self.server.start()
        self._watcher.start()

    def stop(self, grace_s: float) -> None:
        """Refuse new calls, cancel running ones (their codex groups die), wait."""
        self._stop.set()
        self.health.enter_graceful_shutdown()
        self.servicer.shut_down()
        self.server.stop(grace_s).wait()
        self.engine.shutdown()
        log("server.stopped")
