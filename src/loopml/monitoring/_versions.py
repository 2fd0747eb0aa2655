"""What the monitor needs to know about a model version: its task, classes and the
reference profile of its training data (the data-drift reference)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.core import LoopmlError, Settings
from loopml.monitoring._predictions import canonical

if TYPE_CHECKING:
    from loopml.data import DatasetProfile

__all__ = ["VersionCache", "VersionInfo"]

_log = logging.getLogger("loopml.monitoring")


@dataclass(frozen=True)
class VersionInfo:
    """``task`` is ``"classification"``, ``"regression"`` or None (unknown: the version is
    not in the registry); ``classes`` are canonical labels in ``predict_proba`` order and
    ``class_keys`` the keys the serving app gives them in ``probabilities``."""

    ref: str
    task: str | None
    classes: tuple[str, ...]
    class_keys: tuple[str, ...]
    profile: DatasetProfile | None
    features: tuple[str, ...] = ()  # inputs the profile can compare: data-drift features

    @property
    def positive_key(self) -> str | None:
        """The ``probabilities`` key of a binary classifier's positive class (the larger
        label, as :func:`loopml.training.classification_metrics` scores it), else None."""
        if self.task != "classification" or len(self.classes) != 2:
            return None
        return self.class_keys[self.classes.index(sorted(self.classes)[-1])]


def _comparable(profile: DatasetProfile, inputs: list[str]) -> tuple[str, ...]:
    """The inputs whose training profile has bins to count into; datetime inputs move
    with time and are left out, as the drift engine's defaults do."""
    chosen = []
    for name in inputs:
        column = profile.columns.get(name)
        if column is None or column.kind == "datetime":
            continue
        if column.kind == "numeric" and column.histogram is None:
            continue
        chosen.append(name)
    return tuple(chosen)


class VersionCache:
    """Registry look-ups for the versions one monitoring pass meets, each done once."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._found: dict[str, VersionInfo] = {}

    @property
    def seen(self) -> set[str]:
        """The versions looked up so far."""
        return set(self._found)

    def get(self, ref: str) -> VersionInfo:
        if ref not in self._found:
            self._found[ref] = self._load(ref)
        return self._found[ref]

    def _load(self, ref: str) -> VersionInfo:
        from loopml.registry import ModelRegistry

        try:
            with ModelRegistry(self._settings) as registry:
                version = registry.get(ref)
        except LoopmlError as exc:  # a deleted model, a store without it: monitor anyway
            _log.warning("monitoring: model version %s is not in the registry: %s", ref, exc)
            return VersionInfo(ref, None, (), (), None)
        outputs: dict[str, Any] = version.signature.get("outputs") or {}
        raw_classes = outputs.get("classes")
        task = version.extra.get("task") or ("classification" if raw_classes else "regression")
        classes = list(raw_classes or [])
        profile = self._profile(ref)
        inputs = [str(i.get("name")) for i in version.signature.get("inputs") or []]
        return VersionInfo(
            ref=ref,
            task=str(task),
            classes=tuple(canonical(c) for c in classes),
            class_keys=tuple(str(c) for c in classes),
            profile=profile,
            features=() if profile is None else _comparable(profile, inputs),
        )

    def _profile(self, ref: str) -> DatasetProfile | None:
        from loopml.monitoring import _drift_link

        return _drift_link.reference_or_none(self._settings, ref)
