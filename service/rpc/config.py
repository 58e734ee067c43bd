"""Server configuration: one frozen :class:`ServerConfig`, validated once.

Precedence (later wins): built-in defaults < config file (TOML or JSON) < environment
variables ``RADTRANSLATE_<FIELD>`` (upper-case field name, e.g. ``RADTRANSLATE_PORT``) <
command-line flags. Tokens are never read from the config file itself: give
``token_file`` (one token per line) or the environment variable ``RADTRANSLATE_TOKENS``
(comma-separated).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from service.errors import OptionError

MiB = 1024 * 1024
#: Largest chunk payload the contract allows (the server sends ``chunk_bytes``).
MAX_CHUNK_BYTES = 4 * MiB
ENV_PREFIX = "RADTRANSLATE_"
TOKENS_ENV = "RADTRANSLATE_TOKENS"
LOCALHOST = "127.0.0.1"


@dataclass(frozen=True)
class ServerConfig:
    """Validated server options (see ``docs/service.md`` for each one)."""

    host: str = LOCALHOST
    port: int = 50051
    models_dir: str | None = None  # None: $RADTRANSLATE_MODEL_REPOSITORY, else the bundled repository
    workers: int = 1  # concurrent inferences
    queue: int = 4  # requests admitted beyond the workers (waiting); more -> RESOURCE_EXHAUSTED
    max_message_bytes: int = 8 * MiB  # per gRPC message, both directions
    chunk_bytes: int = 1 * MiB  # payload of each chunk the server sends
    max_request_bytes: int = 2048 * MiB  # total input bytes per Translate call
    max_instances: int = 5000  # DICOM instances per Translate call
    grace_s: float = 30.0  # graceful-shutdown drain period
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None  # CA of client certificates: setting it requires mutual TLS
    token_file: str | None = None
    metrics_host: str = LOCALHOST
    metrics_port: int = 0  # 0 = no metrics endpoint
    providers: tuple[str, ...] = ()  # ONNX Runtime providers, in preference order; empty = engine default
    log_json: bool = True
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        _check_int("port", self.port, 0, 65535)
        _check_int("metrics_port", self.metrics_port, 0, 65535)
        _check_int("workers", self.workers, 1, 256)
        _check_int("queue", self.queue, 0, 10_000)
        _check_int("chunk_bytes", self.chunk_bytes, 4096, MAX_CHUNK_BYTES)
        _check_int("max_message_bytes", self.max_message_bytes, self.chunk_bytes + 64 * 1024, 1024 * MiB)
        _check_int("max_request_bytes", self.max_request_bytes, 1024, 64 * 1024 * MiB)
        _check_int("max_instances", self.max_instances, 1, 1_000_000)
        if not (0.0 <= float(self.grace_s) <= 3600.0):
            raise OptionError(f"grace_s must be within 0..3600 seconds, got {self.grace_s!r}: pass e.g. 30.")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise OptionError(
                f"tls_cert and tls_key must be given together, got tls_cert={self.tls_cert!r}, "
                f"tls_key={self.tls_key!r}: pass both (--tls-cert and --tls-key) or neither."
            )
        if self.tls_ca is not None and self.tls_cert is None:
            raise OptionError(
                f"tls_ca ({self.tls_ca!r}) requires server TLS: pass --tls-cert and --tls-key as well."
            )
        for name in ("tls_cert", "tls_key", "tls_ca", "token_file"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_file():
                raise OptionError(f"{name} must be a readable file, got {value!r}: check the path.")
        if not self.host:
            raise OptionError("host must not be empty: pass e.g. 0.0.0.0 or 127.0.0.1.")

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def mutual_tls(self) -> bool:
        return self.tls_ca is not None


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise OptionError(
            f"{name} must be an integer within {low}..{high}, got {value!r}: pass a value in range."
        )


_FIELDS = {f.name: f for f in fields(ServerConfig)}


def _coerce(name: str, raw: Any) -> Any:
    """Turn a string/JSON/TOML value into the field's type."""
    default = _FIELDS[name].default
    if raw is None:
        return None
    try:
        if name == "providers":
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(str(p).strip() for p in items if str(p).strip())
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        text = str(raw)
        return None if text == "" and default is None else text  # "" clears an optional path
    except (TypeError, ValueError):
        raise OptionError(
            f"{name} got {raw!r}, which is not a valid {type(default).__name__}: fix the value."
        ) from None


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Options from a TOML (``.toml``) or JSON file; a ``[server]`` table is used when present."""
    file = Path(path)
    try:
        text = file.read_bytes()
    except OSError as exc:
        raise OptionError(
            f"config file {str(file)!r} cannot be read ({exc.strerror}): check the path."
        ) from None
    try:
        data: Any = tomllib.loads(text.decode()) if file.suffix != ".json" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OptionError(
            f"config file {str(file)!r} is not valid TOML/JSON ({exc}): fix its syntax."
        ) from None
    if isinstance(data, dict) and isinstance(data.get("server"), dict):
        data = data["server"]
    if not isinstance(data, dict):
        raise OptionError(f"config file {str(file)!r} must hold a table of options: fix its content.")
    return data


def load_config(
    *,
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServerConfig:
    """Build the config: defaults < file < ``RADTRANSLATE_*`` environment < ``overrides`` (flags).

    ``overrides`` values of ``None`` mean "not given" and are ignored.
    """
    env = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    if config_file is None and env.get(ENV_PREFIX + "CONFIG"):
        config_file = env[ENV_PREFIX + "CONFIG"]
    if config_file is not None:
        for key, value in read_config_file(config_file).items():
            if key not in _FIELDS:
                allowed = ", ".join(sorted(_FIELDS))
                raise OptionError(f"config file option {key!r} is unknown: use one of {allowed}.")
            merged[key] = _coerce(key, value)
    for name in _FIELDS:
        env_value = env.get(ENV_PREFIX + name.upper())
        if env_value is not None:
            merged[name] = _coerce(name, env_value)
    for key, value in (overrides or {}).items():
        if value is not None:
            merged[key] = _coerce(key, value)
    return dataclasses.replace(ServerConfig(), **merged) if merged else ServerConfig()


def load_tokens(config: ServerConfig, environ: Mapping[str, str] | None = None) -> tuple[bytes, ...]:
    """Accepted bearer tokens: lines of ``token_file`` plus ``RADTRANSLATE_TOKENS`` (comma-separated)."""
    env = os.environ if environ is None else environ
    tokens: list[str] = []
    if config.token_file is not None:
        lines = Path(config.token_file).read_text().splitlines()
        tokens += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    tokens += [t.strip() for t in env.get(TOKENS_ENV, "").split(",") if t.strip()]
    short = [t for t in tokens if len(t) < 16]
    if short:
        raise OptionError(
            f"{len(short)} token(s) are shorter than 16 characters: use long random tokens "
            "(e.g. `openssl rand -hex 32`)."
        )
    return tuple(t.encode() for t in tokens)
