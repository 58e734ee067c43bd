"""Reading the project's PyTorch files (``checkpoint.pt``, ``best.pt``) with a typed error for anything else.

``torch.load`` raises whatever its unpickler or zip reader meets (``UnpicklingError``, ``RuntimeError``,
``EOFError``...) when it is handed a file that is not a PyTorch file: a model repository's
``model.onnx``, a truncated copy, a file of another program. The callers turn that into the project's
typed error naming the option, the file and the fix.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from service.errors import InputError

_UNREADABLE = (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile)


def load_torch_file(
    path: Path,
    *,
    what: str,
    fix: str,
    error: type[InputError] = InputError,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Load ``path`` with ``torch.load``; a file that is not a PyTorch dictionary raises ``error``.

    Parameters
    ----------
    path
        The file to read (its existence is the caller's check).
    what
        What the file was given as, e.g. ``"--init-from"``; the message starts with it.
    fix
        The end of the message: what to pass instead.
    error
        The :class:`~service.errors.InputError` subclass to raise.
    map_location
        Where tensors are placed (``torch.load``'s argument).
    """
    try:
        state = torch.load(path, weights_only=False, map_location=map_location)
    except _UNREADABLE as exc:
        kind = (
            "an ONNX model (a model repository keeps the served graph, not the training state)"
            if path.suffix.lower() == ".onnx"
            else f"not a PyTorch file ({type(exc).__name__})"
        )
        raise error(f"{what}: {path} is {kind}: {fix}") from exc
    if not isinstance(state, dict):
        raise error(f"{what}: {path} holds a {type(state).__name__}, not a radtranslate checkpoint: {fix}")
    return state
