"""Inference: model repository and cards, normalisation, masking, the ONNX Runtime engine.

This package imports neither torch nor the ``models`` package; training code imports
:mod:`service.inference.normalisation` and :mod:`service.inference.masking` from here so
that training and serving preprocess identically.
"""

from service.inference.card import CardError, ModelCard, Task, load_card, parse_card
from service.inference.engine import Engine, EngineConfig, TranslationResult
from service.inference.repository import ModelRepository, RepositoryError, default_repository_path

__all__ = [
    "CardError",
    "Engine",
    "EngineConfig",
    "ModelCard",
    "ModelRepository",
    "RepositoryError",
    "Task",
    "TranslationResult",
    "default_repository_path",
    "load_card",
    "parse_card",
]
