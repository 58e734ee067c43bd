"""Status codes back into typed errors, for callers of :class:`service.rpc.client.TranslationClient`.

Each error is both a :class:`grpc.RpcError` (``code()``, ``details()``, as gRPC callers expect) and
the matching error of :mod:`service.errors`, so ``radtranslate translate --server`` maps a remote
failure to the same exit code as a local one (INVALID_ARGUMENT -> input error, NOT_FOUND -> not found).
"""

from __future__ import annotations

import grpc

from service.errors import (
    CancelledError,
    InputError,
    NotFoundError,
    OutputError,
    RadTranslateError,
    ResourceExhaustedError,
)


class RemoteError(RadTranslateError, grpc.RpcError):  # type: ignore[misc]
    """A call failed on the server (or in transport); ``code()`` and ``details()`` as gRPC reports them."""

    def __init__(self, target: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"server {target} answered {code.name}: {details}")
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class RemoteInputError(RemoteError, InputError):
    """INVALID_ARGUMENT, or UNAUTHENTICATED (fix the request or the credentials)."""


class RemoteNotFoundError(RemoteError, NotFoundError):
    """NOT_FOUND: unknown model or version."""


class RemoteBusyError(RemoteError, ResourceExhaustedError):
    """RESOURCE_EXHAUSTED: the server's queue is full; retry with backoff."""


class RemoteCancelledError(RemoteError, CancelledError):
    """DEADLINE_EXCEEDED or CANCELLED: the work was stopped."""


class RemoteOutputError(RemoteError, OutputError):
    """FAILED_PRECONDITION: the server cannot produce the output."""


_CLASSES: dict[grpc.StatusCode, type[RemoteError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: RemoteInputError,
    grpc.StatusCode.UNAUTHENTICATED: RemoteInputError,
    grpc.StatusCode.NOT_FOUND: RemoteNotFoundError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RemoteBusyError,
    grpc.StatusCode.DEADLINE_EXCEEDED: RemoteCancelledError,
    grpc.StatusCode.CANCELLED: RemoteCancelledError,
    grpc.StatusCode.FAILED_PRECONDITION: RemoteOutputError,
}


def typed(error: grpc.RpcError, target: str) -> RemoteError:
    """The typed counterpart of a failed call's :class:`grpc.RpcError`."""
    if isinstance(error, RemoteError):
        return error
    code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
    details = error.details() if callable(getattr(error, "details", None)) else str(error)
    if code is grpc.StatusCode.UNAVAILABLE and not details:
        details = "the server is unreachable: check the address, TLS settings and that it is running."
    return _CLASSES.get(code, RemoteError)(target, code, details or "")
