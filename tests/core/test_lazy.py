"""Lazy exports: loaded on first use, cached, and an unknown name is an AttributeError."""

from __future__ import annotations

import pytest

from loopml.core import lazy_exports


def test_a_lazy_name_is_imported_once_and_cached() -> None:
    namespace: dict[str, object] = {}
    getattr_ = lazy_exports("loopml.core", {"new_id": "_ids"}, namespace)
    from loopml.core._ids import new_id

    assert getattr_("new_id") is new_id
    assert namespace["new_id"] is new_id


def test_an_unknown_name_names_the_package() -> None:
    getattr_ = lazy_exports("loopml.core", {}, {})
    with pytest.raises(AttributeError, match="'loopml.core' has no attribute 'nope'"):
        getattr_("nope")
