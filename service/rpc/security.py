"""Transport security and authentication: TLS / mutual TLS credentials, bearer tokens.

- TLS: ``tls_cert`` + ``tls_key`` (PEM files). Mutual TLS: also ``tls_ca``, the CA that signs
  client certificates; clients without a certificate it signed are refused in the handshake.
- Tokens: a client sends metadata ``authorization: Bearer <token>``. Tokens are compared in
  constant time (:func:`hmac.compare_digest`, against every configured token). Health checks
  (``grpc.health.v1.Health``) need no token, so container and Kubernetes probes work.
- Neither TLS nor tokens: the server binds to 127.0.0.1 only and logs a warning.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from service.errors import OptionError
from service.rpc.config import LOCALHOST, ServerConfig

log = logging.getLogger("radtranslate.rpc.security")

AUTH_HEADER = "authorization"
#: Methods that need no token (prefix match).
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/",)


def _read(name: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise OptionError(
            f"{name} {path!r} cannot be read ({exc.strerror}): check the path and permissions."
        ) from None


def server_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    """TLS credentials from the config's PEM files, or ``None`` for plaintext."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    key = _read("tls_key", config.tls_key)
    cert = _read("tls_cert", config.tls_cert)
    ca = _read("tls_ca", config.tls_ca) if config.tls_ca else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_host(config: ServerConfig, *, has_tokens: bool) -> str:
    """The host to bind: the configured one, or 127.0.0.1 when neither TLS nor tokens protect it."""
    if config.tls or has_tokens or _is_loopback(config.host):
        if not config.tls and has_tokens and not _is_loopback(config.host):
            log.warning(
                "tokens travel in cleartext without TLS: set tls_cert and tls_key for any untrusted network",
                extra={"fields": {"host": config.host}},
            )
        return config.host
    log.warning(
        "neither TLS nor tokens are configured: binding to 127.0.0.1 only instead of the requested host; "
        "configure tls_cert/tls_key or token_file (RADTRANSLATE_TOKENS) to serve other machines",
        extra={"fields": {"requested_host": config.host, "bound_host": LOCALHOST}},
    )
    return LOCALHOST


def _deny(handler: Any, message: str) -> Any:
    """A handler of the same kind as ``handler`` that answers UNAUTHENTICATED without reading input."""

    def abort(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    if handler is None:
        return None
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort)
    return grpc.unary_unary_rpc_method_handler(abort)


class TokenAuthInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Refuses calls without a valid bearer token (UNAUTHENTICATED), except health checks."""

    def __init__(self, tokens: tuple[bytes, ...]) -> None:
        if not tokens:
            raise OptionError("TokenAuthInterceptor needs at least one token: configure token_file.")
        self._tokens = tokens

    def valid(self, presented: bytes) -> bool:
        ok = False
        for token in self._tokens:  # every token compared: timing does not tell which one matched
            ok |= hmac.compare_digest(presented, token)
        return ok

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        method = handler_call_details.method
        if method.startswith(PUBLIC_PREFIXES):
            return continuation(handler_call_details)
        value = ""
        for key, val in handler_call_details.invocation_metadata or ():
            if key == AUTH_HEADER:
                value = val if isinstance(val, str) else val.decode("latin-1")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token:
            log.warning("call without token refused", extra={"fields": {"method": method}})
            return _deny(
                continuation(handler_call_details),
                "missing token: send metadata 'authorization: Bearer <token>'.",
            )
        if not self.valid(token.strip().encode()):
            log.warning("call with invalid token refused", extra={"fields": {"method": method}})
            return _deny(
                continuation(handler_call_details),
                "invalid token: send a token the server is configured with.",
            )
        return continuation(handler_call_details)
