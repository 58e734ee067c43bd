"""Prometheus metrics of the gRPC server, on a registry of its own (one per server)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

#: Latency buckets (s): from a cheap RPC to a 10-minute translation.
BUCKETS_S = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


@dataclass
class Metrics:
    """The server's metrics. ``registry`` is what the HTTP endpoint exposes."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter("radtranslate_requests", "RPCs received", ["method"], registry=r)
        self.failures = Counter(
            "radtranslate_failures", "RPCs failed, by status code", ["method", "code"], registry=r
        )
        self.latency = Histogram(
            "radtranslate_rpc_seconds", "RPC latency", ["method"], buckets=BUCKETS_S, registry=r
        )
        self.stage = Histogram(
            "radtranslate_stage_seconds",
            "Translate latency by stage (receive, queue, decode, inference, encode, send)",
            ["stage"],
            buckets=BUCKETS_S,
            registry=r,
        )
        self.queue_depth = Gauge(
            "radtranslate_queue_depth", "Translate calls admitted, waiting for a worker", registry=r
        )
        self.in_flight = Gauge("radtranslate_in_flight", "Translate calls running on a worker", registry=r)
        self.inferences = Counter(
            "radtranslate_inferences",
            "Translations completed, by model, version and execution provider",
            ["model", "version", "provider"],
            registry=r,
        )
        self.bytes_in = Counter("radtranslate_input_bytes", "Payload bytes received", registry=r)
        self.bytes_out = Counter("radtranslate_output_bytes", "Payload bytes sent", registry=r)


def serve_metrics(metrics: Metrics, *, host: str, port: int) -> Any:
    """Serve ``/metrics`` over HTTP in a daemon thread; returns the HTTP server (``.shutdown()``)."""
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return server
