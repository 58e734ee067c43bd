"""``radtranslate serve``: run the gRPC translation server until SIGTERM (then drain gracefully).

Configuration precedence (later wins): defaults < ``--config`` file (TOML/JSON) <
``RADTRANSLATE_*`` environment variables < these flags. See ``docs/service.md``.
"""

from __future__ import annotations

import argparse
from typing import Any

FLAGS: tuple[tuple[str, str, Any, str], ...] = (
    # (flag, config field, type, help)
    ("--host", "host", str, "address to bind (default 127.0.0.1; 0.0.0.0 needs TLS or tokens)"),
    ("--port", "port", int, "gRPC port (default 50051; 0 = any free port)"),
    ("--models", "models_dir", str, "model repository folder (Triton layout)"),
    ("--workers", "workers", int, "concurrent translations (default 1)"),
    ("--queue", "queue", int, "calls that may wait for a worker; beyond: RESOURCE_EXHAUSTED (default 4)"),
    ("--tls-cert", "tls_cert", str, "server certificate chain (PEM)"),
    ("--tls-key", "tls_key", str, "server private key (PEM)"),
    ("--tls-ca", "tls_ca", str, "CA of client certificates (PEM): requires mutual TLS"),
    ("--token-file", "token_file", str, "accepted bearer tokens, one per line"),
    ("--metrics-host", "metrics_host", str, "address of the Prometheus endpoint (default 127.0.0.1)"),
    ("--metrics-port", "metrics_port", int, "Prometheus /metrics port (default 0 = off)"),
    ("--grace-s", "grace_s", float, "seconds in-flight calls may finish after SIGTERM (default 30)"),
    ("--max-message-bytes", "max_message_bytes", int, "largest gRPC message, both directions"),
    ("--max-request-bytes", "max_request_bytes", int, "largest input per Translate call"),
    ("--max-instances", "max_instances", int, "most DICOM instances per Translate call"),
    ("--chunk-bytes", "chunk_bytes", int, "payload bytes per chunk the server sends"),
    ("--providers", "providers", str, "ONNX Runtime providers, comma-separated, in preference order"),
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the gRPC translation server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="FILE", help="TOML or JSON file of server options")
    for flag, field, kind, text in FLAGS:
        parser.add_argument(flag, dest=field, type=kind, default=None, help=text)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from service.logs import configure
    from service.rpc.config import load_config
    from service.rpc.server import TranslationServer, build_engine, serve_forever

    overrides = {field: getattr(args, field) for _, field, _, _ in FLAGS}
    config = load_config(config_file=args.config, overrides=overrides)
    configure(config.log_level, json_format=config.log_json)
    serve_forever(TranslationServer(config, build_engine(config)))
    return 0
