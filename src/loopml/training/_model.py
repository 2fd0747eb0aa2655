"""The model a training run leaves behind: ``model/model.joblib`` and ``model/meta.json``.

``meta.json`` (format 1) is what the registry reads to register a run's model::

    {
      "format": 1,
      "flavor": "sklearn",                      # loaded with joblib
      "file": "model.joblib",                   # the model, beside meta.json
      "artifact": "model/model.joblib",         # the same, as a path inside the run
      "estimator": "lightgbm.sklearn.LGBMClassifier",   # qualified class name
      "task": "classification",                 # or "regression"
      "target": "label",
      "features": ["x1", "x2"],                 # the column order predict() expects
      "signature": {
        "inputs": [{"name": "x1", "dtype": "float64", "nullable": false}, ...],
        "outputs": {"name": "label", "dtype": "int64", "classes": [0, 1]}
      },                                        # "classes" only for classification
      "libraries": {"scikit-learn": "1.9.1", "numpy": "2.4.6", "pandas": "3.1.1",
                    "joblib": "1.6.0", "lightgbm": "4.7.0"},
      "python": "3.11.14",
      "dataset": "flights@3",                   # null when trained on a DataFrame
      "dataset_digest": "blake3:...",           # null when trained on a DataFrame
      "split": "main",                          # a stored split, "auto" or "spec"
      "split_spec": {...},                      # the split's SplitSpec.to_dict()
      "rows": {"train": 800, "test": 200}
    }

Input dtypes are pandas dtype names of the training features; ``nullable`` is true
when the training data had a missing value in that column. ``libraries`` holds
scikit-learn, numpy, pandas and joblib, plus the distribution of every estimator
class inside the model (the outer one and, for pipelines and ensembles, the inner
ones). The artifact's digest is the run's artifact record.
"""

from __future__ import annotations

import functools
import importlib.metadata
import io
import json
import platform
from typing import TYPE_CHECKING, Any

from loopml.core import NotFoundError, Settings, ValidationError

if TYPE_CHECKING:
    import pandas as pd

    from loopml.training._inputs import TrainingData

__all__ = [
    "META_PATH",
    "MODEL_PATH",
    "build_meta",
    "input_signature",
    "load_model",
    "qualified_name",
    "read_model_meta",
]

FORMAT = 1
MODEL_DIR = "model"
MODEL_PATH = "model/model.joblib"
META_PATH = "model/meta.json"
_BASE_LIBRARIES = ("scikit-learn", "numpy", "pandas", "joblib")


def qualified_name(obj: object) -> str:
    """``module.Class`` of an object's class."""
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _estimators_inside(model: Any) -> list[Any]:
    found = [model]
    get_params = getattr(model, "get_params", None)
    if callable(get_params):
        try:
            params = get_params(deep=True)
        except Exception:  # a third-party get_params may not know deep=True
            params = {}
        found += [value for value in params.values() if hasattr(value, "fit")]
    return found


def library_versions(model: Any) -> dict[str, str]:
    """Versions of the base libraries and of the packages the model's classes come from."""
    names = list(_BASE_LIBRARIES)
    for estimator in _estimators_inside(model):
        top = type(estimator).__module__.split(".")[0]
        for distribution in _distributions().get(top, []):
            if distribution not in names:
                names.append(distribution)
    versions = {name: _version(name) for name in names}
    return {name: found for name, found in versions.items() if found is not None}


def input_signature(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Column name, pandas dtype and whether training data had missing values."""
    return [
        {
            "name": str(name),
            "dtype": str(frame[name].dtype),
            "nullable": bool(frame[name].isna().any()),
        }
        for name in frame.columns
    ]


def _plain(values: Any) -> list[Any]:
    listed = values.tolist() if hasattr(values, "tolist") else list(values)
    return [item.item() if hasattr(item, "item") else item for item in listed]


def output_signature(model: Any, data: TrainingData) -> dict[str, Any]:
    """The prediction's name and dtype, and the classes of a classifier."""
    y = data.parts["train"][data.target]
    output: dict[str, Any] = {"name": data.target, "dtype": str(y.dtype)}
    if data.task == "classification":
        classes = getattr(model, "classes_", None)
        if classes is None:
            import pandas as pd

            classes = sorted(pd.unique(y).tolist())
        output["classes"] = _plain(classes)
    return output


def build_meta(model: Any, data: TrainingData) -> dict[str, Any]:
    """The ``model/meta.json`` record of a fitted model (see the module docstring)."""
    train = data.parts["train"]
    return {
        "format": FORMAT,
        "flavor": "sklearn",
        "file": MODEL_PATH.rsplit("/", 1)[1],
        "artifact": MODEL_PATH,
        "estimator": qualified_name(model),
        "task": data.task,
        "target": data.target,
        "features": list(data.features),
        "signature": {
            "inputs": input_signature(train[data.features]),
            "outputs": output_signature(model, data),
        },
        "libraries": library_versions(model),
        "python": platform.python_version(),
        "dataset": data.dataset,
        "dataset_digest": data.dataset_digest,
        "split": data.split,
        "split_spec": data.split_spec,
        "rows": data.counts,
    }


def read_model_meta(run_id: str, *, settings: Settings | None = None) -> dict[str, Any]:
    """The ``model/meta.json`` of a training run.

    Raises:
        NotFoundError: the run does not exist or logged no model.
    """
    from loopml.tracking import Client

    client = Client.default(settings)
    try:
        raw = client.read_artifact(run_id, META_PATH)
    except NotFoundError as exc:
        raise NotFoundError(f"run {run_id} has no {META_PATH}: it logged no model") from exc
    meta: dict[str, Any] = json.loads(raw)
    if meta.get("format") != FORMAT or meta.get("flavor") != "sklearn":
        raise ValidationError(
            f"run {run_id}: {META_PATH} has format {meta.get('format')!r} and flavor "
            f"{meta.get('flavor')!r}; this loopml reads format {FORMAT}, flavor 'sklearn'"
        )
    return meta


def load_model(run_id: str, *, settings: Settings | None = None) -> Any:
    """The fitted model a training run logged (its bytes checked against their digest).

    Only load models from runs you trust: joblib files can run code when loaded.
    """
    import joblib

    meta = read_model_meta(run_id, settings=settings)
    from loopml.tracking import Client

    raw = Client.default(settings).read_artifact(run_id, str(meta["artifact"]))
    return joblib.load(io.BytesIO(raw))
