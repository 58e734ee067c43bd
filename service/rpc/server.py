"""The gRPC server: the one place for message sizes, threads, interceptors, health, reflection, shutdown.

Threads, not asyncio: decoding (pydicom), inference (ONNX Runtime) and encoding all block,
so an asyncio server would hand them to a thread pool anyway; the synchronous server keeps
cancellation (``threading.Event``) and back-pressure (bounded admission) simple.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from protos.radtranslate.v1 import translation_pb2 as pb
from protos.radtranslate.v1 import translation_pb2_grpc as pb_grpc
from service.rpc.admission import Admission
from service.rpc.config import ServerConfig, load_tokens
from service.rpc.core import EngineLike, TranslationCore
from service.rpc.interceptors import StatusInterceptor
from service.rpc.metrics import Metrics, serve_metrics
from service.rpc.security import TokenAuthInterceptor, bind_host, server_credentials
from service.rpc.servicer import TranslationServicer

log = logging.getLogger("radtranslate.rpc.server")

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["TranslationService"].full_name
#: Handler threads beyond workers + queue: health checks, ListModels and refusals stay prompt when busy.
SPARE_THREADS = 8


def channel_options(max_message_bytes: int) -> list[tuple[str, Any]]:
    """Message-size options shared by server and client."""
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]


def build_engine(config: ServerConfig) -> EngineLike:
    """The ONNX Runtime engine over ``config.models_dir`` (not loaded yet)."""
    from service.inference.engine import Engine, EngineConfig
    from service.inference.repository import default_repository_path

    engine_config = EngineConfig(providers=config.providers) if config.providers else EngineConfig()
    return Engine(config.models_dir or default_repository_path(), engine_config)


class TranslationServer:
    """A configured server. ``start()`` serves (health NOT_SERVING), ``load_models()`` makes it SERVING."""

    def __init__(
        self,
        config: ServerConfig,
        engine: EngineLike,
        *,
        tokens: tuple[bytes, ...] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.metrics = metrics or Metrics()
        self.tokens = load_tokens(config) if tokens is None else tokens
        self.admission = Admission(workers=config.workers, queue=config.queue, metrics=self.metrics)
        self.core = TranslationCore(engine)
        self.health = health.HealthServicer()
        self.servicer = TranslationServicer(self.core, config, self.admission, self.metrics)
        self._server: grpc.Server | None = None
        self._metrics_http: Any = None
        self.port = 0
        self.metrics_port = 0
        self.host = config.host

    def _set_health(self, status: int) -> None:
        for name in ("", SERVICE_NAME):
            self.health.set(name, status)

    def start(self) -> int:
        """Bind and serve; returns the bound port (useful with port 0)."""
        from concurrent.futures import ThreadPoolExecutor

        cfg = self.config
        interceptors: list[grpc.ServerInterceptor] = []
        if self.tokens:
            interceptors.append(TokenAuthInterceptor(self.tokens))  # outermost: refuse before any work
        interceptors.append(StatusInterceptor(self.metrics))
        threads = cfg.workers + cfg.queue + SPARE_THREADS
        server = grpc.server(
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"),
            interceptors=interceptors,
            options=[*channel_options(cfg.max_message_bytes), ("grpc.so_reuseport", 0)],
            maximum_concurrent_rpcs=threads * 8,
        )
        pb_grpc.add_TranslationServiceServicer_to_server(self.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        self.host = bind_host(cfg, has_tokens=bool(self.tokens))
        address = f"{self.host}:{cfg.port}"
        credentials = server_credentials(cfg)
        self.port = (
            server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
        )
        server.start()
        self._server = server
        if cfg.metrics_port:
            self._metrics_http = serve_metrics(self.metrics, host=cfg.metrics_host, port=cfg.metrics_port)
            self.metrics_port = int(self._metrics_http.server_port)
        log.info(
            "serving",
            extra={
                "fields": {
                    "address": address,
                    "port": self.port,
                    "tls": cfg.tls,
                    "mutual_tls": cfg.mutual_tls,
                    "tokens": bool(self.tokens),
                    "workers": cfg.workers,
                    "queue": cfg.queue,
                    "metrics_port": self.metrics_port,
                }
            },
        )
        return self.port

    def load_models(self) -> None:
        """Load the engine's models, then report SERVING."""
        load = getattr(self.engine, "load", None)
        if load is not None:
            load()
        self._set_health(health_pb2.HealthCheckResponse.SERVING)
        log.info("models loaded", extra={"fields": {"models": len(self.engine.list_models())}})

    def stop(self, grace_s: float | None = None) -> None:
        """Refuse new calls, let in-flight ones finish for ``grace_s`` (default config.grace_s), then stop."""
        if self._server is None:
            return
        grace = self.config.grace_s if grace_s is None else grace_s
        self.health.enter_graceful_shutdown()
        log.info("draining", extra={"fields": {"grace_s": grace, "in_flight": self.admission.admitted}})
        self._server.stop(grace).wait()
        self.servicer.shutdown()
        if self._metrics_http is not None:
            self._metrics_http.shutdown()
            self._metrics_http = None
        self._server = None
        log.info("stopped")

    def wait(self) -> None:
        if self._server is not None:
            self._server.wait_for_termination()


def serve_forever(server: TranslationServer) -> None:
    """Start, load models, serve until SIGTERM/SIGINT, then drain gracefully."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal received", extra={"fields": {"signal": signal.Signals(signum).name}})
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.start()
        server.load_models()
        while not stop.wait(timeout=1.0):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
