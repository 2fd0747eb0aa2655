"""Cache keys: what must be unchanged for a step's stored outputs to be reused."""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata
from typing import Any

import blake3
import orjson

from loopml.pipelines._step import Step

__all__ = ["cache_key", "dependency_versions"]

# Bump when the key's recipe or the stored value formats change.
_RECIPE = "loopml-step-cache-1"


@lru_cache(maxsize=256)
def _installed(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def dependency_versions(step: Step) -> dict[str, str]:
    """The installed version of every distribution the step declares in ``deps``."""
    return {name: _installed(name) for name in step.deps}


def cache_key(step: Step, input_digests: dict[str, str]) -> str:
    """One digest over the step's code, declared dependencies and input digests.

    Parameters and constants count through their digests in ``input_digests``, so a
    changed parameter and a changed upstream output invalidate the same way.
    """
    material: dict[str, Any] = {
        "recipe": _RECIPE,
        "function": step.fn.__qualname__,
        "source": step.source_digest,
        "version": step.cache_version,
        "outputs": list(step.outputs),
        "deps": dependency_versions(step),
        "inputs": input_digests,
    }
    encoded = orjson.dumps(material, option=orjson.OPT_SORT_KEYS)
    return "blake3:" + blake3.blake3(encoded).hexdigest()
