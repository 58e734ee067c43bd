"""The inference engine: one ONNX Runtime session per model version of a repository.

The engine is thread-safe: :meth:`Engine.load` is idempotent and guarded by a lock, and
ONNX Runtime's ``InferenceSession.run`` may be called from several threads at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from service.errors import OptionError, RadTranslateError
from service.inference.body_part import site_mismatch
from service.inference.card import ModelCard, Site, Task
from service.inference.prediction import FloatArray, predict
from service.inference.repository import ModelEntry, ModelRepository, RepositoryError
from service.volume import Volume

log = logging.getLogger("radtranslate.inference")

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class EngineConfig:
    """Engine options, validated once.

    Parameters
    ----------
    providers
        ONNX Runtime execution providers in order of preference; a provider this
        onnxruntime build lacks is skipped (so CUDA is used only where available).
    intra_op_threads
        Threads per session for CPU kernels; 0 = ONNX Runtime's default.
    gpu_mem_limit_bytes
        CUDA arena limit in bytes; ``None`` = no limit.
    device_id
        CUDA device ordinal.
    batch_size
        Slices (or tiles) per ONNX Runtime run; capped by the model's ``max_batch_size``.
    deterministic
        Ask ONNX Runtime for deterministic kernels (``use_deterministic_compute``) and, on
        CUDA, cuDNN's default convolution algorithms instead of a timed search, so that the
        same input gives the same output run after run (at some cost in speed).
    """

    providers: tuple[str, ...] = (CUDA, CPU)
    intra_op_threads: int = 0
    gpu_mem_limit_bytes: int | None = None
    device_id: int = 0
    batch_size: int = 8
    deterministic: bool = True

    def __post_init__(self) -> None:
        providers = tuple(self.providers)
        if not providers or not all(isinstance(p, str) and p for p in providers):
            raise OptionError(
                f"providers must be a non-empty list of provider names, got {self.providers!r}: "
                f"e.g. ({CUDA!r}, {CPU!r})."
            )
        object.__setattr__(self, "providers", providers)
        for name, value, low in (
            ("intra_op_threads", self.intra_op_threads, 0),
            ("device_id", self.device_id, 0),
            ("batch_size", self.batch_size, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise OptionError(f"{name} must be an integer >= {low}, got {value!r}: pass such a number.")
        limit = self.gpu_mem_limit_bytes
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
            raise OptionError(
                f"gpu_mem_limit_bytes must be a positive integer or None, got {limit!r}: fix it."
            )


@dataclass(frozen=True)
class TranslationResult:
    """A translated volume, the model that made it, where the time went (seconds), and notes
    for the user (e.g. the input was re-indexed to axial order, or is oblique)."""

    volume: Volume
    model: str
    version: str
    provider: str
    timings_s: Mapping[str, float]
    warnings: tuple[str, ...] = ()


def _providers(config: EngineConfig) -> list[str | tuple[str, dict[str, Any]]]:
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    chosen: list[str | tuple[str, dict[str, Any]]] = []
    for name in config.providers:
        if name not in available:
            continue
        if name == CUDA:
            options: dict[str, Any] = {"device_id": config.device_id}
            if config.gpu_mem_limit_bytes is not None:
                options["gpu_mem_limit"] = config.gpu_mem_limit_bytes
                options["arena_extend_strategy"] = "kSameAsRequested"  # stay within the limit
            if config.deterministic:
                options["cudnn_conv_algo_search"] = "DEFAULT"
            chosen.append((name, options))
        else:
            chosen.append(name)
    if not chosen:
        raise OptionError(
            f"none of the providers {list(config.providers)} is available in this onnxruntime build "
            f"(available: {sorted(available)}): include {CPU!r}."
        )
    return chosen


def _session(entry: ModelEntry, config: EngineConfig) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if config.intra_op_threads:
        options.intra_op_num_threads = config.intra_op_threads
    options.use_deterministic_compute = config.deterministic
    try:
        session = ort.InferenceSession(str(entry.model_path), options, providers=_providers(config))
    except OptionError:
        raise
    except Exception as exc:  # onnxruntime raises its own RuntimeError subclasses
        raise RepositoryError(
            f"{entry.model_path}: ONNX Runtime cannot load it ({exc}): re-export it."
        ) from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if (
        [i.name for i in inputs] != ["input"]
        or [o.name for o in outputs] != ["output"]
        or (len(inputs[0].shape) != 4)
    ):
        raise RepositoryError(
            f"{entry.model_path}: needs one rank-4 input 'input' and one output 'output', got inputs "
            f"{[(i.name, i.shape) for i in inputs]}, outputs {[o.name for o in outputs]}: re-export it."
        )
    batch, channels, height, width = inputs[0].shape
    if any(isinstance(d, int) for d in (batch, height, width)) or channels != entry.card.context_slices:
        raise RepositoryError(
            f"{entry.model_path}: input shape must be [N, {entry.card.context_slices}, H, W] with dynamic N, "
            f"H, W and the card's context_slices as C, got {inputs[0].shape}: export with dynamic axes."
        )
    return session


class InferenceError(RadTranslateError):
    """ONNX Runtime failed while running a model (device memory, unsupported operator, ...)."""


class Engine:
    """Translate volumes with the models of a repository (see the module docstring)."""

    def __init__(self, repository: str | Path, config: EngineConfig = EngineConfig()) -> None:
        self.root = Path(repository)
        self.config = config
        self._lock = threading.Lock()
        self._repository: ModelRepository | None = None
        self._sessions: dict[tuple[str, str], Any] = {}

    @property
    def repository(self) -> ModelRepository:
        """The validated repository (read on first use; no sessions are created)."""
        with self._lock:
            if self._repository is None:
                self._repository = ModelRepository.load(self.root)
            return self._repository

    def load(self) -> None:
        """Create one ONNX Runtime session per model version; a second call does nothing."""
        repository = self.repository
        with self._lock:
            if self._sessions:
                return
            sessions = {}
            for entry in repository.entries():
                key = (entry.card.name, entry.card.version)
                sessions[key] = _session(entry, self.config)
                log.info(
                    "loaded model",
                    extra={
                        "fields": {
                            "model": key[0],
                            "version": key[1],
                            "provider": sessions[key].get_providers()[0],
                        }
                    },
                )
            self._sessions = sessions

    @property
    def loaded(self) -> bool:
        """True once :meth:`load` has created the sessions."""
        return bool(self._sessions)

    def list_models(self) -> list[ModelCard]:
        """Cards of all model versions, by name then version."""
        return [entry.card for entry in self.repository.entries()]

    def get_model(self, name: str, version: str | None = None) -> ModelCard:
        """The card of ``name`` at ``version`` (default highest); :class:`NotFoundError` if unknown."""
        return self.repository.get(name, version).card

    def resolve(
        self,
        *,
        model: str | None = None,
        task: str | Task | None = None,
        site: str | Site | None = None,
        version: str | None = None,
    ) -> ModelCard:
        """The card chosen by name, or by task (and site) when one model serves it."""
        return self.repository.resolve(model=model, task=task, site=site, version=version).card

    def _session_for(self, card: ModelCard) -> Any:
        self.load()
        return self._sessions[(card.name, card.version)]

    def provider(self, name: str, version: str | None = None) -> str:
        """The execution provider the session of that model actually uses."""
        return str(self._session_for(self.get_model(name, version)).get_providers()[0])

    def translate(
        self,
        volume: Volume,
        *,
        model: str | None = None,
        task: str | Task | None = None,
        site: str | Site | None = None,
        version: str | None = None,
        progress: Callable[[str, float], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> TranslationResult:
        """Translate ``volume`` with the chosen model (see :mod:`service.inference.prediction`).

        Raises
        ------
        InputError, NotFoundError, CancelledError, NumericError
        """
        entry = self.repository.resolve(model=model, task=task, site=site, version=version)
        card = entry.card
        session = self._session_for(card)
        batch = self.config.batch_size
        if entry.config.max_batch_size > 0:
            batch = min(batch, entry.config.max_batch_size)

        def run_batch(x: FloatArray) -> FloatArray:
            try:
                return np.asarray(session.run(["output"], {"input": x})[0])
            except Exception as exc:  # onnxruntime's own exception types
                raise InferenceError(
                    f"ONNX Runtime failed running {card.name!r} v{card.version} on a batch of shape "
                    f"{x.shape} ({type(exc).__name__}: {exc}): check the model export and device memory, "
                    "or lower batch_size."
                ) from exc

        timings: dict[str, float] = {}
        notes: list[str] = []
        mismatch = site_mismatch(card, volume.source.header if volume.source is not None else None)
        if mismatch is not None:
            notes.append(mismatch)
        start = time.perf_counter()
        out = predict(
            volume,
            card,
            run_batch,
            batch_size=batch,
            progress=progress,
            cancel=cancel,
            timings=timings,
            notes=notes,
        )
        timings["total"] = time.perf_counter() - start
        return TranslationResult(
            volume=out,
            model=card.name,
            version=card.version,
            provider=str(session.get_providers()[0]),
            timings_s=MappingProxyType(timings),
            warnings=tuple(notes),
        )
