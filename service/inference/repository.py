"""The model repository: a Triton-compatible folder of ONNX models with model cards.

Layout (see ``docs/model_repository.md``)::

    <repository>/<name>/config.pbtxt         Triton configuration (onnxruntime_onnx)
    <repository>/<name>/card.json            card of one version (its "version" field)
    <repository>/<name>/<version>/model.onnx version folders: positive integers (Triton)
    <repository>/<name>/<version>/card.json  optional card of that version (takes precedence)

Every version folder must have exactly one card whose ``name`` and ``version`` match the
folders: a model is never served without the card describing it.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from service.errors import InputError, NotFoundError
from service.inference.card import ModelCard, Site, Task, load_card
from service.inference.triton_config import TritonConfig, check_config

#: Environment variable overriding the default repository location.
REPOSITORY_ENV = "RADTRANSLATE_MODEL_REPOSITORY"


class RepositoryError(InputError):
    """The model repository is missing, empty, or holds an inconsistent model."""


@dataclass(frozen=True)
class ModelEntry:
    """One servable model version: its card, ONNX file and Triton configuration."""

    card: ModelCard
    model_path: Path
    config: TritonConfig


def default_repository_path() -> Path:
    """``$RADTRANSLATE_MODEL_REPOSITORY``, else ``repository/`` inside the ``models`` package.

    The ``models`` package is located without being imported (it needs torch).
    """
    env = os.environ.get(REPOSITORY_ENV)
    if env:
        return Path(env)
    spec = importlib.util.find_spec("models")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise RepositoryError(
            f"no model repository: the 'models' package is not installed and {REPOSITORY_ENV} is not set: "
            f"set {REPOSITORY_ENV} or pass --models DIR."
        )
    return Path(locations[0]) / "repository"


def _version_card(model_dir: Path, version: str) -> ModelCard:
    own = model_dir / version / "card.json"
    card = load_card(own if own.is_file() else model_dir / "card.json")
    where = own if own.is_file() else model_dir / "card.json"
    if card.name != model_dir.name:
        raise RepositoryError(
            f"{where}: name {card.name!r} differs from the folder {model_dir.name!r}: fix it."
        )
    if card.version != version:
        raise RepositoryError(
            f"{where}: version {card.version!r} does not describe version folder {version!r}: "
            f"add {model_dir / version / 'card.json'} or fix the card's version."
        )
    return card


def _load_model(model_dir: Path) -> list[ModelEntry]:
    versions = sorted(
        (p.name for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit() and int(p.name) > 0),
        key=int,
    )
    if not versions:
        raise RepositoryError(f"{model_dir}: no version folder (1, 2, ...): add <version>/model.onnx.")
    entries = []
    config: TritonConfig | None = None
    for version in versions:
        card = _version_card(model_dir, version)
        model_path = model_dir / version / "model.onnx"
        if not model_path.is_file():
            raise RepositoryError(f"{model_path}: not found: put the exported ONNX model there.")
        if config is None or config.channels not in (-1, card.context_slices):
            config = check_config(
                model_dir / "config.pbtxt", model_name=model_dir.name, channels=card.context_slices
            )
        entries.append(ModelEntry(card=card, model_path=model_path, config=config))
    return entries


class ModelRepository:
    """A loaded, validated repository (immutable after :meth:`load`)."""

    def __init__(self, root: Path, entries: dict[tuple[str, str], ModelEntry]) -> None:
        self.root = root
        self._entries = dict(entries)

    @classmethod
    def load(cls, root: str | os.PathLike[str]) -> ModelRepository:
        """Read and validate every model under ``root``.

        Raises
        ------
        RepositoryError, CardError, ConfigError
            Naming the file and field at fault.
        """
        path = Path(root)
        if not path.is_dir():
            raise RepositoryError(
                f"model repository {str(path)!r} is not a folder: pass --models DIR or set {REPOSITORY_ENV}."
            )
        entries: dict[tuple[str, str], ModelEntry] = {}
        for model_dir in sorted(path.iterdir()):
            if not model_dir.is_dir() or model_dir.name.startswith((".", "_")):
                continue
            for entry in _load_model(model_dir):
                entries[(entry.card.name, entry.card.version)] = entry
        if not entries:
            raise RepositoryError(
                f"model repository {str(path)!r} holds no model: add <name>/config.pbtxt, card.json and "
                "<version>/model.onnx (see docs/model_repository.md)."
            )
        return cls(path, entries)

    def entries(self) -> list[ModelEntry]:
        """All model versions, sorted by name then version number."""
        return [self._entries[k] for k in sorted(self._entries, key=lambda k: (k[0], int(k[1])))]

    def get(self, name: str, version: str | None = None) -> ModelEntry:
        """The entry of ``name`` at ``version`` (default: the highest version).

        Raises
        ------
        NotFoundError
            Unknown name or version.
        """
        versions = sorted((v for n, v in self._entries if n == name), key=int)
        if not versions:
            known = sorted({n for n, _ in self._entries})
            raise NotFoundError(
                f"model {name!r} is not in the repository (models: {known}): pick one of these."
            )
        chosen = versions[-1] if version is None else str(version)
        if chosen not in versions:
            raise NotFoundError(
                f"model {name!r} has no version {version!r} (versions: {versions}): pick one of these."
            )
        return self._entries[(name, chosen)]

    def resolve(
        self,
        *,
        model: str | None = None,
        task: str | Task | None = None,
        site: str | Site | None = None,
        version: str | None = None,
    ) -> ModelEntry:
        """Choose a model by name, or by task (and site) when exactly one model name serves it.

        A model trained for site ``any`` serves every site. With ``model``, ``task`` and ``site``
        are checks: a model that does another task or serves another site is refused.

        Raises
        ------
        InputError
            Neither model nor task given, several models serve the task (and site), or the named
            model does not do the task or serve the site.
        NotFoundError
            No model serves the task (and site), or the name/version is unknown.
        """
        wanted = Task.parse(task) if task is not None else None
        where = Site.parse(site) if site is not None else None
        if model is not None:
            entry = self.get(model, version)
            if wanted is not None and entry.card.task is not wanted:
                raise InputError(
                    f"model {model!r} does task {entry.card.task.value}, not {wanted.value}: "
                    "pick a model for that task, or do not name the task."
                )
            if where is not None and not _serves(entry.card, where):
                raise InputError(
                    f"model {model!r} was trained for site {entry.card.site.value}, not {where.value}: "
                    "pick a model for that site, or do not name the site."
                )
            return entry
        if wanted is None:
            raise InputError("neither a model nor a task was given: pass --model NAME or --task TASK.")
        cards = [e.card for e in self._entries.values() if e.card.task is wanted]
        if where is not None:
            cards = [c for c in cards if _serves(c, where)]
        names = sorted({c.name for c in cards})
        asked = wanted.value if where is None else f"{wanted.value} at site {where.value}"
        if not names:
            raise NotFoundError(
                f"no model in the repository does task {asked}: add one or pick another task or site."
            )
        if len(names) > 1:
            sites = sorted({c.site.value for c in cards})
            hint = (
                "pass --model NAME to choose one"
                if where is not None or len(sites) == 1
                else f"pass --site ({', '.join(sites)}) or --model NAME to choose one"
            )
            raise InputError(f"several models do task {asked} ({names}): {hint}.")
        return self.get(names[0], version)


def _serves(card: ModelCard, site: Site) -> bool:
    """True when ``card``'s model serves ``site`` (a model for site ``any`` serves all)."""
    return card.site is site or card.site is Site.ANY or site is Site.ANY
