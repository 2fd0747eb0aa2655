"""Training: fit and cross-validate estimators on dataset versions; tune with Optuna.

    from loopml.training import fit, tune

    result = fit(RandomForestClassifier(), "churn@3", target="churned", split="main")
    result.metrics["test.roc_auc"], result.run_id

Every fit logs params, tags, metrics and the model (``model/model.joblib`` plus
``model/meta.json``, the record the registry reads; see :mod:`loopml.training._model`).
scikit-learn and Optuna load on first use, so ``import loopml`` stays fast.
"""

from typing import TYPE_CHECKING

from loopml.core import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from loopml.training._fit import TrainResult, estimator_params, fit
    from loopml.training._metrics import (
        classification_metrics,
        detect_task,
        regression_metrics,
    )
    from loopml.training._model import (
        META_PATH,
        MODEL_PATH,
        input_signature,
        load_model,
        read_model_meta,
    )
    from loopml.training._storage import study_storage
    from loopml.training._tune import TuneResult, tune
    from loopml.training._tune_estimator import tune_estimator

_LAZY = {
    "TrainResult": "_fit",
    "estimator_params": "_fit",
    "fit": "_fit",
    "classification_metrics": "_metrics",
    "detect_task": "_metrics",
    "regression_metrics": "_metrics",
    "META_PATH": "_model",
    "MODEL_PATH": "_model",
    "input_signature": "_model",
    "load_model": "_model",
    "read_model_meta": "_model",
    "study_storage": "_storage",
    "TuneResult": "_tune",
    "tune": "_tune",
    "tune_estimator": "_tune_estimator",
}


__getattr__ = _lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "META_PATH",
    "MODEL_PATH",
    "TrainResult",
    "TuneResult",
    "classification_metrics",
    "detect_task",
    "estimator_params",
    "fit",
    "input_signature",
    "load_model",
    "read_model_meta",
    "regression_metrics",
    "study_storage",
    "tune",
    "tune_estimator",
]
