"""A model version's drift reference: the profile the registry stored for its training data."""

from __future__ import annotations

from typing import Any

import orjson

from loopml.core import NotFoundError, Settings, ValidationError
from loopml.data import DatasetProfile

__all__ = ["profile_from_json", "reference_profile"]


def profile_from_json(data: bytes) -> DatasetProfile:
    """A profile from stored JSON: :meth:`DatasetProfile.to_dict`'s layout, or the
    registry's (its dataclass fields as they are, columns keyed by name)."""
    try:
        raw: Any = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"the stored profile is not JSON: {exc}") from exc
    if isinstance(raw, dict) and isinstance(raw.get("columns"), dict):
        raw = dict(raw, columns=list(raw["columns"].values()))
    return DatasetProfile.from_dict(raw)


def reference_profile(settings: Settings, model_ref: str) -> DatasetProfile:
    """The profile of the data ``model_ref`` (``NAME@VERSION``, ``NAME@ALIAS`` or
    ``NAME``) was trained on, as the registry stored it: the training data is not read.

    Raises:
        NotFoundError: no such model or version, or the version was registered
            without a dataset version (so no profile was stored).
        ValidationError: the stored profile cannot be read.
    """
    from loopml.registry import ModelRegistry

    with ModelRegistry(settings, create_store=False) as registry:
        version = registry.get(model_ref)
        if version.profile is None:
            raise NotFoundError(
                f"model version {version.ref} has no training-data profile: it was "
                "registered from a run without a dataset version, so there is no drift "
                "reference (pass a profile or the training data to detect_drift instead)"
            )
        data = registry.artifacts.get_bytes(version.profile)  # checks the digest
    return profile_from_json(data)
