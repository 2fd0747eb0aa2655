"""A small, easy classification dataset in a catalog, with a stored stratified split."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loopml.core import Settings, load_settings
from loopml.data import DataCatalog, SplitSpec
from tests.training.helpers import close_clients, easy_classification


def ingest_toy(settings: Settings, name: str = "toy") -> str:
    with DataCatalog(settings) as catalog:
        version = catalog.ingest(easy_classification(), name=name).version
        spec = SplitSpec(kind="stratified", column="label", ratios=(0.7, 0.15, 0.15), seed=3)
        catalog.split(version.ref, spec, name="main")
    return version.ref


@pytest.fixture
def toy(settings: Settings) -> str:
    """``toy@1`` in the ``settings`` store (SQLite and PostgreSQL), split ``main``."""
    return ingest_toy(settings)


@pytest.fixture(scope="module")
def shared_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A SQLite store shared by the tests of one module (ingesting costs about a second)."""
    root = tmp_path_factory.mktemp("training")
    return load_settings(project_dir=root, environ={}, system_metrics=False)


@pytest.fixture(scope="module")
def shared_toy(shared_settings: Settings) -> str:
    """``toy@1`` with split ``main`` in :func:`shared_settings`."""
    return ingest_toy(shared_settings)


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    close_clients()
