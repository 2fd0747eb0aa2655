"""Turn ``fit``'s data arguments into named parts: a dataset ref or a DataFrame, a split.

The rows of a stored split come from :meth:`DataCatalog.get_split`, which recomputes
the split from its stored definition and checks it against the stored row counts,
so a model trained on ``flights@3`` split ``main`` saw exactly those rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import NotFoundError, Settings, ValidationError
from loopml.data import DataCatalog, SplitSpec, split_indices
from loopml.training._metrics import check_task, detect_task

__all__ = ["AUTO_SPLIT", "TrainingData", "prepare"]

AUTO_SPLIT = "auto"
AUTO_RATIOS = (0.8, 0.2)


@dataclass(frozen=True, slots=True)
class TrainingData:
    """The parts to train and evaluate on, and where they came from."""

    parts: dict[str, pd.DataFrame]  # "train" first, then the split's other parts in order
    target: str
    features: list[str]
    task: str
    dataset: str | None  # "name@version"; None for a DataFrame
    dataset_digest: str | None
    split: str  # a stored split's name, "auto", or "spec" for a SplitSpec given inline
    split_spec: dict[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        return {name: len(frame) for name, frame in self.parts.items()}

    def xy(self, part: str) -> tuple[pd.DataFrame, pd.Series[Any]]:
        frame = self.parts[part]
        return frame[self.features], frame[self.target]


def _check_names(target: object, features: object) -> list[str] | None:
    if not isinstance(target, str) or not target:
        raise ValidationError(f"target must be a column name; got {target!r}")
    if features is None:
        return None
    if isinstance(features, str) or not isinstance(features, Sequence):
        raise ValidationError(f"features must be a list of column names; got {features!r}")
    names = list(features)
    bad = [name for name in names if not isinstance(name, str) or not name]
    if bad or not names:
        raise ValidationError(f"features must be a non-empty list of column names; got {names!r}")
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValidationError(f"features lists column(s) {duplicated} more than once")
    if target in names:
        raise ValidationError(f"target column {target!r} is also listed in features")
    return names


def _check_columns(
    columns: list[str], target: str, features: list[str] | None, where: str
) -> list[str]:
    if target not in columns:
        raise ValidationError(
            f"target column {target!r} is not in {where}; its columns are {columns}"
        )
    if features is None:
        return [c for c in columns if c != target]
    missing = [name for name in features if name not in columns]
    if missing:
        raise ValidationError(
            f"feature column(s) {missing} are not in {where}; its columns are {columns}"
        )
    return features


def _auto_spec(task: str, target: str, seed: int) -> SplitSpec:
    if task == "classification":
        return SplitSpec(kind="stratified", ratios=AUTO_RATIOS, seed=seed, column=target)
    return SplitSpec(kind="random", ratios=AUTO_RATIOS, seed=seed)


def prepare(
    data: str | pd.DataFrame,
    *,
    target: str,
    features: Sequence[str] | None,
    split: str | SplitSpec | None,
    task: str,
    seed: int,
    settings: Settings | None,
) -> TrainingData:
    """Resolve, check and split the data ``fit`` trains on.

    Raises:
        NotFoundError: the dataset, its version or the named split does not exist.
        ValidationError: a missing target or feature column, a null target, a bad
            split or task.
    """
    wanted = _check_names(target, features)
    check_task(task)
    if split is not None and not isinstance(split, str | SplitSpec):
        raise ValidationError(
            f"split must be a stored split's name, a SplitSpec or None; got {split!r}"
        )
    spec_column = split.column if isinstance(split, SplitSpec) else None
    dataset = digest = None
    stored: dict[str, Any] | None = None
    if isinstance(data, str):
        with DataCatalog(settings) as catalog:
            version = catalog.get(data)
            if version.kind != "table":
                raise ValidationError(f"{version.ref} is a set of files; fit needs a table")
            dataset, digest = version.ref, version.digest
            columns = [str(f["name"]) for f in version.schema or []]
            chosen = _check_columns(columns, target, wanted, f"dataset {dataset}")
            if isinstance(split, str):
                stored = _stored_split(catalog, dataset, split)
            extra = [spec_column] if spec_column and spec_column not in chosen else []
            frame = catalog.load(dataset, columns=[*chosen, target, *extra])
            positions = catalog.get_split(dataset, split) if isinstance(split, str) else None
    elif isinstance(data, pd.DataFrame):
        if isinstance(split, str):
            raise ValidationError(
                f"split={split!r} names a stored split, which needs a dataset ref "
                "('name@version') as data; for a DataFrame pass a SplitSpec or None"
            )
        columns = [str(c) for c in data.columns]
        chosen = _check_columns(columns, target, wanted, "the DataFrame")
        frame = data.reset_index(drop=True)
        positions = None
    else:
        raise ValidationError(
            f"data must be a dataset ref ('name@version' or 'name') or a pandas DataFrame; "
            f"got {type(data).__name__}"
        )
    nulls = int(frame[target].isna().sum())
    if nulls:
        raise ValidationError(
            f"target column {target!r} has {nulls} null value(s); drop or fill them first"
        )
    resolved = detect_task(frame[target]) if task == "auto" else task
    if positions is None:
        spec = split if isinstance(split, SplitSpec) else _auto_spec(resolved, target, seed)
        spec.check(list(frame.columns))
        positions = split_indices(frame, spec)
        split_name = "spec" if isinstance(split, SplitSpec) else AUTO_SPLIT
        spec_dict = spec.to_dict()
    else:
        split_name = str(split)
        spec_dict = dict(stored["spec"]) if stored else {}
    parts = _parts(frame, positions, [*chosen, target], split_name)
    return TrainingData(
        parts=parts,
        target=target,
        features=list(chosen),
        task=resolved,
        dataset=dataset,
        dataset_digest=digest,
        split=split_name,
        split_spec=spec_dict,
    )


def _stored_split(catalog: DataCatalog, ref: str, name: str) -> dict[str, Any]:
    stored = catalog.splits(ref)
    for entry in stored:
        if entry["name"] == name:
            return entry
    names = [str(entry["name"]) for entry in stored]
    raise NotFoundError(
        f"dataset {ref} has no stored split named {name!r}; stored splits: "
        f"{json.dumps(names) if names else 'none'} (store one with DataCatalog.split)"
    )


def _parts(
    frame: pd.DataFrame,
    positions: dict[str, Any],
    columns: list[str],
    split_name: str,
) -> dict[str, pd.DataFrame]:
    if "train" not in positions:
        raise ValidationError(
            f"split {split_name!r} has no part named 'train' (its parts are "
            f"{list(positions)}); fit trains on 'train' and evaluates on the others"
        )
    order = ["train", *[name for name in positions if name != "train"]]
    parts = {
        name: frame.iloc[np.asarray(positions[name], dtype=np.int64)][columns].reset_index(
            drop=True
        )
        for name in order
    }
    if parts["train"].empty:
        raise ValidationError(f"the 'train' part of split {split_name!r} has no rows")
    return parts
