"""Strict field access for JSON specifications (cards, normalisation, masks).

:class:`Where` carries the dotted path of the object being read so that every error names
the field, e.g. ``card.output.clip``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from service.errors import InputError

T = TypeVar("T")


class SpecError(InputError):
    """A field of a JSON specification is missing, unknown, or has a wrong type or value."""


_TYPE_NAMES = {str: "a string", dict: "an object", list: "a list", int: "an integer", float: "a number"}


@dataclass(frozen=True)
class Where:
    """The dotted path of a JSON object inside a specification."""

    path: str

    def child(self, key: str) -> Where:
        """The path of a nested field."""
        return Where(f"{self.path}.{key}")

    def keys(self, obj: Mapping[str, Any], *, required: set[str], optional: set[str] | None = None) -> None:
        """Refuse missing required keys and unknown keys."""
        allowed = required | (optional or set())
        missing = sorted(required - set(obj))
        if missing:
            raise SpecError(f"{self.path} lacks required field(s) {missing}: add them.")
        unknown = sorted(set(obj) - allowed)
        if unknown:
            raise SpecError(
                f"{self.path} has unknown field(s) {unknown} (allowed: {sorted(allowed)}): "
                "remove or rename them."
            )

    def get(self, obj: Mapping[str, Any], key: str, kind: type[T]) -> T:
        """``obj[key]``, which must be of type ``kind``."""
        if key not in obj:
            raise SpecError(f"{self.path}.{key} is missing: add it.")
        value = obj[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise SpecError(
                f"{self.path}.{key} must be {_TYPE_NAMES.get(kind, kind.__name__)}, "
                f"got {value!r}: fix its type."
            )
        return value

    def number(self, obj: Mapping[str, Any], key: str) -> float:
        """A finite number (int or float in JSON)."""
        if key not in obj:
            raise SpecError(f"{self.path}.{key} is missing: add it.")
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise SpecError(f"{self.path}.{key} must be a finite number, got {value!r}: fix its value.")
        return float(value)

    def integer(self, obj: Mapping[str, Any], key: str, *, minimum: int) -> int:
        """An integer >= ``minimum``."""
        if key not in obj:
            raise SpecError(f"{self.path}.{key} is missing: add it.")
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise SpecError(
                f"{self.path}.{key} must be an integer >= {minimum}, got {value!r}: fix its value."
            )
        return value
