"""The demo's estimator: gradient-boosted trees that take the categorical columns as text.

Requests carry ``carrier``, ``origin`` and ``dest`` as JSON strings, and the serving app
hands the model a DataFrame of plain text columns. So the encoding lives inside the model:
an ordinal encoder turns each text column into category codes (a value never seen in
training becomes "missing", which the trees handle), and HistGradientBoosting splits on
those codes as categories. The same object is fitted, registered, served and scored
offline, so nothing about the encoding can differ between training and serving.
"""

from __future__ import annotations

from typing import Any

from loopml.demo._flights import CATEGORICAL, NUMERIC

__all__ = ["delay_classifier"]

# A value never seen in training, or a missing one, becomes code -1: a negative
# category is treated as missing by HistGradientBoosting.
_UNSEEN = -1


def delay_classifier(seed: int = 0, max_iter: int = 150) -> Any:
    """An unfitted scikit-learn pipeline for :data:`FEATURES` in that column order."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    encode = ColumnTransformer(
        [
            (
                "categories",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=_UNSEEN,
                    encoded_missing_value=_UNSEEN,
                ),
                list(CATEGORICAL),
            ),
            ("numbers", "passthrough", list(NUMERIC)),
        ],
        verbose_feature_names_out=False,
    )
    trees = HistGradientBoostingClassifier(
        categorical_features=list(range(len(CATEGORICAL))),
        max_iter=max_iter,
        learning_rate=0.1,
        early_stopping=False,  # a fixed size: retrains cost the same and compare fairly
        random_state=seed,
    )
    return Pipeline([("encode", encode), ("trees", trees)])
