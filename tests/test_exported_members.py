"""Each package's __all__ names exactly what it exports, and every name resolves."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "loopml",
    "loopml.core",
    "loopml.store",
    "loopml.artifacts",
    "loopml.tracking",
    "loopml.data",
    "loopml.compute",
    "loopml.pipelines",
    "loopml.governance",
    "loopml.training",
    "loopml.registry",
    "loopml.serving",
    "loopml.monitoring",
    "loopml.loop",
    "loopml.demo",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_resolve(name: str) -> None:
    module = importlib.import_module(name)
    for exported in module.__all__:
        assert hasattr(module, exported), f"{name}.__all__ names missing {exported}"


@pytest.mark.parametrize("name", PACKAGES)
def test_public_names_are_in_all(name: str) -> None:
    module = importlib.import_module(name)
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and not isinstance(v, type(importlib))
        and n not in {"annotations", "TYPE_CHECKING", "Any"}
    }
    assert public <= set(module.__all__) | {"schema"}
