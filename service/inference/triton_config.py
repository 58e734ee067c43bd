"""Reading and checking Triton ``config.pbtxt`` files (the subset radtranslate relies on).

The parser reads protobuf text format: ``name: value`` fields, nested ``name { ... }``
messages, ``name [ ... ]`` lists, ``#`` comments. It returns repeated fields as lists.
:func:`check_config` then requires what the engine and Triton's onnxruntime backend need:

- ``platform: "onnxruntime_onnx"`` (or ``backend: "onnxruntime"``); ``name``, when given,
  equal to the model folder's name;
- one input ``"input"`` of ``TYPE_FP32``, one output ``"output"`` of ``TYPE_FP32``;
- with ``max_batch_size > 0`` (Triton adds the batch axis): input dims ``[C, -1, -1]``, output
  dims ``[1, -1, -1]``; with ``max_batch_size: 0`` the full shapes ``[-1, C, -1, -1]`` and
  ``[-1, 1, -1, -1]``; ``C`` = the card's ``context_slices``, or ``-1`` (any) for a model whose
  versions differ in context slices (Triton applies one config to every version; ONNX Runtime then
  checks each version's own input shape).

Other Triton fields (``instance_group``, ``dynamic_batching``, ...) are allowed and ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.errors import InputError

_TOKEN = re.compile(r'\s+|#[^\n]*|"(?:[^"\\]|\\.)*"|[{}\[\]:,;<>]|[^\s{}\[\]:,;<>"#]+')


class ConfigError(InputError):
    """A ``config.pbtxt`` is unreadable or does not describe a servable model."""


@dataclass(frozen=True)
class TritonConfig:
    """What radtranslate uses from a ``config.pbtxt``."""

    max_batch_size: int  # 0: the model's batch axis is explicit in dims
    channels: int  # input channels = context slices; -1: any (the versions differ)


def _tokens(text: str, source: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:  # pragma: no cover - the pattern matches any character class
            raise ConfigError(f"{source}: cannot parse near {text[pos : pos + 20]!r}: fix the syntax.")
        token = match.group(0)
        pos = match.end()
        if not token.isspace() and not token.startswith("#"):
            out.append(token)
    return out


def _scalar(token: str) -> Any:
    if token.startswith('"'):
        return bytes(token[1:-1], "utf-8").decode("unicode_escape")
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token)
    except ValueError:
        return token  # enum identifier (TYPE_FP32, true, ...)


def parse_pbtxt(text: str, *, source: str = "config.pbtxt") -> dict[str, list[Any]]:
    """Parse protobuf text format into ``{field: [values]}`` (messages are nested dicts)."""
    tokens = _tokens(text, source)
    pos = 0

    def fail(what: str) -> ConfigError:
        near = " ".join(tokens[max(0, pos - 3) : pos + 3])
        return ConfigError(f"{source}: {what} near {near!r}: fix the protobuf text syntax.")

    def value() -> Any:
        nonlocal pos
        if pos >= len(tokens):
            raise fail("unexpected end of file")
        token = tokens[pos]
        pos += 1
        if token in ("{", "<"):
            return message("}" if token == "{" else ">")
        if token == "[":
            items: list[Any] = []
            while pos < len(tokens) and tokens[pos] != "]":
                items.append(value())
                if pos < len(tokens) and tokens[pos] == ",":
                    pos += 1
            if pos >= len(tokens):
                raise fail("unclosed '['")
            pos += 1
            return items
        if token in "}]>:,;":
            raise fail(f"unexpected {token!r}")
        return _scalar(token)

    def message(end: str | None) -> dict[str, list[Any]]:
        nonlocal pos
        fields: dict[str, list[Any]] = {}
        while pos < len(tokens) and tokens[pos] != end:
            key = tokens[pos]
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise fail(f"expected a field name, got {key!r}")
            pos += 1
            if pos < len(tokens) and tokens[pos] == ":":
                pos += 1
            item = value()
            bucket = fields.setdefault(key, [])
            bucket.extend(item if isinstance(item, list) else [item])
            if pos < len(tokens) and tokens[pos] in (",", ";"):
                pos += 1
        if end is not None:
            if pos >= len(tokens):
                raise fail(f"missing {end!r}")
            pos += 1
        return fields

    return message(None)


def _one(fields: dict[str, list[Any]], key: str, source: str) -> Any:
    values = fields.get(key, [])
    if len(values) != 1:
        raise ConfigError(f"{source}: field {key!r} must appear once, found {len(values)}: fix the config.")
    return values[0]


def _tensor(
    fields: dict[str, list[Any]], key: str, name: str, dims: list[int], source: str, *, any_at: int = -1
) -> list[int]:
    """Check one tensor; ``dims[any_at]`` may also be ``-1`` when ``any_at >= 0``. Returns its dims."""
    tensors = fields.get(key, [])
    if len(tensors) != 1 or not isinstance(tensors[0], dict):
        raise ConfigError(
            f"{source}: {key} must list exactly one tensor, found {len(tensors)}: fix the config."
        )
    tensor = tensors[0]
    got_name = _one(tensor, "name", f"{source}: {key}")
    if got_name != name:
        raise ConfigError(f"{source}: {key}.name must be {name!r}, got {got_name!r}: rename it.")
    dtype = _one(tensor, "data_type", f"{source}: {key}")
    if dtype != "TYPE_FP32":
        raise ConfigError(f"{source}: {key}.data_type must be TYPE_FP32, got {dtype!r}: export float32.")
    got_dims = list(tensor.get("dims", []))
    allowed = [dims]
    if any_at >= 0:
        allowed.append([-1 if i == any_at else d for i, d in enumerate(dims)])
    if got_dims not in allowed:
        shown = " or ".join(str(a) for a in allowed)
        raise ConfigError(f"{source}: {key}.dims must be {shown}, got {got_dims}: fix the config.")
    return got_dims


def check_config(path: Path, *, model_name: str, channels: int) -> TritonConfig:
    """Read ``path`` and check it serves ``model_name`` with ``channels`` input channels (or any: -1)."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: not found: add a Triton config.pbtxt to the model folder.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read ({exc}): fix the file.") from None
    fields = parse_pbtxt(text, source=source)
    platform = fields.get("platform", [None])[0]
    backend = fields.get("backend", [None])[0]
    if platform != "onnxruntime_onnx" and backend != "onnxruntime":
        raise ConfigError(
            f'{source}: platform must be "onnxruntime_onnx", got {platform!r}: '
            'set platform: "onnxruntime_onnx".'
        )
    if "name" in fields and _one(fields, "name", source) != model_name:
        raise ConfigError(
            f"{source}: name {fields['name'][0]!r} differs from the folder name "
            f"{model_name!r}: make them equal."
        )
    mbs = _one(fields, "max_batch_size", source) if "max_batch_size" in fields else 0
    if not isinstance(mbs, int) or mbs < 0:
        raise ConfigError(f"{source}: max_batch_size must be an integer >= 0, got {mbs!r}: fix it.")
    lead = [] if mbs > 0 else [-1]
    dims = _tensor(fields, "input", "input", [*lead, channels, -1, -1], source, any_at=len(lead))
    _tensor(fields, "output", "output", [*lead, 1, -1, -1], source)
    return TritonConfig(max_batch_size=mbs, channels=int(dims[len(lead)]))


def render_config(model_name: str, channels: int, *, max_batch_size: int = 8) -> str:
    """A ``config.pbtxt`` for a radtranslate model (what exporters write).

    ``version_policy: { all { } }`` makes Triton serve every version folder, as radtranslate
    does (Triton's default serves only the highest). ``channels`` -1 accepts any number of input
    channels: for a model whose versions differ in context slices.
    """
    lead = "" if max_batch_size > 0 else "-1, "
    return (
        f'name: "{model_name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: {max_batch_size}\n'
        "version_policy: { all { } }\n"
        f'input [\n  {{\n    name: "input"\n    data_type: TYPE_FP32\n'
        f"    dims: [ {lead}{channels}, -1, -1 ]\n"
        "  }\n]\n"
        f'output [\n  {{\n    name: "output"\n    data_type: TYPE_FP32\n    dims: [ {lead}1, -1, -1 ]\n'
        "  }\n]\n"
    )
