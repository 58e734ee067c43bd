"""The one place where domain errors become gRPC status codes (and RPCs are counted).

=============================  ===================  =========================================
Error                          Code                 Message to the client
=============================  ===================  =========================================
InputError (and subclasses)    INVALID_ARGUMENT     the error's message (what and how to fix)
NotFoundError                  NOT_FOUND            the error's message
OutputError                    FAILED_PRECONDITION  the error's message
CancelledError                 CANCELLED, or DEADLINE_EXCEEDED when the deadline has passed
ResourceExhaustedError         RESOURCE_EXHAUSTED   the error's message (retry with backoff)
NotReadyError                  UNAVAILABLE          the error's message (retry shortly)
anything else                  INTERNAL             "internal error, reference <id>"; the stack
                                                    trace is logged server-side with the id
=============================  ===================  =========================================
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from service.errors import (
    CancelledError,
    InputError,
    NotFoundError,
    OutputError,
    ResourceExhaustedError,
)
from service.rpc.core import NotReadyError
from service.rpc.metrics import Metrics

log = logging.getLogger("radtranslate.rpc")

_MAPPING: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (InputError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (OutputError, grpc.StatusCode.FAILED_PRECONDITION),
    (ResourceExhaustedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (NotReadyError, grpc.StatusCode.UNAVAILABLE),
    (CancelledError, grpc.StatusCode.CANCELLED),
)


def status_for(
    exc: BaseException, context: grpc.ServicerContext | None = None
) -> tuple[grpc.StatusCode, str]:
    """The status code and client-facing message of an exception (logs internal errors)."""
    for kind, code in _MAPPING:
        if isinstance(exc, kind):
            if code is grpc.StatusCode.CANCELLED and context is not None:
                remaining = context.time_remaining()
                if remaining is not None and remaining <= 0:
                    return (
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        "the deadline passed and the work was stopped: "
                        "allow a longer timeout (large series take minutes).",
                    )
            return code, str(exc)
    reference = uuid.uuid4().hex[:12]
    log.error(
        "internal error",
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"fields": {"reference": reference, "error_type": type(exc).__name__}},
    )
    return grpc.StatusCode.INTERNAL, f"internal error, reference {reference}"


def _method_name(full: str) -> str:
    return full.rsplit("/", 1)[-1] or full


class StatusInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Maps exceptions to status codes and records requests, failures and latency per method."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = _method_name(handler_call_details.method)
        metrics = self._metrics

        def fail(exc: BaseException, context: grpc.ServicerContext) -> None:
            if not context.is_active() and isinstance(exc, CancelledError | grpc.RpcError):
                metrics.failures.labels(method, "CANCELLED").inc()
                return  # the client is gone; nothing to send
            code, message = status_for(exc, context)
            metrics.failures.labels(method, code.name).inc()
            context.abort(code, message)

        def unary(behavior: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
                metrics.requests.labels(method).inc()
                start = time.perf_counter()
                try:
                    return behavior(request, context)
                except Exception as exc:
                    fail(exc, context)  # aborts the RPC (raises) unless the client is gone
                    return None
                finally:
                    metrics.latency.labels(method).observe(time.perf_counter() - start)

            return wrapped

        def streaming(behavior: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
            def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                metrics.requests.labels(method).inc()
                start = time.perf_counter()
                try:
                    yield from behavior(request, context)
                except Exception as exc:
                    fail(exc, context)  # aborts the RPC (raises) unless the client is gone
                finally:
                    metrics.latency.labels(method).observe(time.perf_counter() - start)

            return wrapped

        kwargs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **kwargs)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), **kwargs)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **kwargs)
        return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **kwargs)
