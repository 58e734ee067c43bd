"""Token authentication, TLS, mutual TLS, and the localhost-only fallback."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import pytest

from service.errors import OptionError
from service.rpc.config import ServerConfig, load_tokens
from service.rpc.security import TokenAuthInterceptor

from .conftest import Pki, StartServer

TOKEN = "t0ken-" + "a" * 32


def test_tokens_required_except_for_health(start_server: StartServer) -> None:
    running = start_server(tokens=(TOKEN.encode(),))
    with running.client() as anonymous, pytest.raises(grpc.RpcError) as error:
        anonymous.list_models()
    assert error.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "missing token" in error.value.details()
    with running.client(token="wrong-" + "b" * 32) as wrong, pytest.raises(grpc.RpcError) as error:
        wrong.list_models()
    assert error.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "invalid token" in error.value.details()
    with running.client(token="wrong-" + "b" * 32) as wrong, pytest.raises(grpc.RpcError) as error:
        from .conftest import volume_ct

        wrong.translate_volume(volume_ct(), model="ct-identity")
    assert error.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert running.engine.batches == []
    with running.client() as anonymous:
        assert anonymous.health() == "SERVING"  # probes need no token
    with running.client(token=TOKEN) as good:
        assert len(good.list_models()) == 3


def test_token_compare_matches_only_exact_tokens() -> None:
    interceptor = TokenAuthInterceptor((b"x" * 32, b"y" * 40))
    assert interceptor.valid(b"x" * 32) and interceptor.valid(b"y" * 40)
    assert (
        not interceptor.valid(b"x" * 31) and not interceptor.valid(b"x" * 33) and not interceptor.valid(b"")
    )


def test_tokens_from_file_and_environment(tmp_path: Path) -> None:
    file = tmp_path / "tokens"
    file.write_text("# comment\n" + "f" * 20 + "\n\n")
    config = ServerConfig(token_file=str(file))
    assert load_tokens(config, environ={"RADTRANSLATE_TOKENS": "e" * 16 + ", " + "g" * 17}) == (
        b"f" * 20, b"e" * 16, b"g" * 17,
    )  # fmt: skip
    with pytest.raises(OptionError, match="shorter than 16"):
        load_tokens(ServerConfig(), environ={"RADTRANSLATE_TOKENS": "short"})


def test_tls_server_refuses_plaintext_and_accepts_trusting_clients(
    start_server: StartServer, pki: Pki
) -> None:
    running = start_server(tls_cert=str(pki.server_cert), tls_key=str(pki.server_key))
    target = f"localhost:{running.server.port}"
    running.target = target
    with running.client(ca_file=str(pki.ca)) as client:
        assert len(client.list_models()) == 3
    with running.client() as plaintext, pytest.raises(grpc.RpcError) as error:
        plaintext.list_models(timeout_s=5)
    assert error.value.code() is grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_refuses_missing_and_foreign_client_certificates(
    start_server: StartServer, pki: Pki
) -> None:
    running = start_server(tls_cert=str(pki.server_cert), tls_key=str(pki.server_key), tls_ca=str(pki.ca))
    running.target = f"localhost:{running.server.port}"
    with running.client(
        ca_file=str(pki.ca), cert_file=str(pki.client_cert), key_file=str(pki.client_key)
    ) as ok:
        assert len(ok.list_models()) == 3
    with running.client(ca_file=str(pki.ca)) as no_cert, pytest.raises(grpc.RpcError) as error:
        no_cert.list_models(timeout_s=5)
    assert error.value.code() is grpc.StatusCode.UNAVAILABLE
    with (
        running.client(
            ca_file=str(pki.ca), cert_file=str(pki.other_cert), key_file=str(pki.other_key)
        ) as foreign,
        pytest.raises(grpc.RpcError) as error,
    ):
        foreign.list_models(timeout_s=5)
    assert error.value.code() is grpc.StatusCode.UNAVAILABLE


def test_without_tls_or_tokens_the_server_binds_localhost_only(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="radtranslate.rpc.security"):
        running = start_server(host="0.0.0.0")
    assert running.server.host == "127.0.0.1"
    assert any("binding to 127.0.0.1 only" in r.getMessage() for r in caplog.records)
    with running.client() as client:
        assert client.health() == "SERVING"


def test_tls_options_are_validated(pki: Pki) -> None:
    with pytest.raises(OptionError, match="given together"):
        ServerConfig(tls_cert=str(pki.server_cert))
    with pytest.raises(OptionError, match="requires server TLS"):
        ServerConfig(tls_ca=str(pki.ca))
    with pytest.raises(OptionError, match="readable file"):
        ServerConfig(tls_cert="/nonexistent.pem", tls_key=str(pki.server_key))


def test_tls_with_token_sends_the_token_as_call_credentials(start_server: StartServer, pki: Pki) -> None:
    running = start_server(
        tls_cert=str(pki.server_cert), tls_key=str(pki.server_key), tokens=(TOKEN.encode(),)
    )
    running.target = f"localhost:{running.server.port}"
    with running.client(ca_file=str(pki.ca), token=TOKEN) as client:
        assert len(client.list_models()) == 3
    with running.client(ca_file=str(pki.ca)) as no_token, pytest.raises(grpc.RpcError) as error:
        no_token.list_models()
    assert error.value.code() is grpc.StatusCode.UNAUTHENTICATED
