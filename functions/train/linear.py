"""The linear learner: logistic regression on a tag's reports (see ``learner``'s module doc for when
it is chosen over LightGBM).

Rows are L2-normalised (text rows already are; image and face embeddings become directions), each
fit sees the ``LINEAR_COLUMNS`` columns that best separate its classes (chosen inside each fold, like
LightGBM's), and classes weigh alike. The model is the columns, their weights and the intercept; its
score is the margin ``w . x + b``, which ``calibration`` turns into a probability.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from functions.common.tag_model import TagModel
from functions.train.columns import select_columns

Splits = list[tuple[np.ndarray, np.ndarray]]

# Inverse L2 strength, on L2-normalised rows. Held-out accuracy on the small datasets of
# bench/kashf_small_data.py (305 texts) for C = 1, 10, 100, 1000: 0.882, 0.898, 0.898, 0.898; macro F1
# on bench/kashf_training.py's chatterbot corpus at 500 reports per tag: 0.675, 0.778, 0.812, 0.811.
LINEAR_C = 100.0
# A bound on the model's size (~100 kB of JSON) for large text datasets, whose 100k+ n-gram columns a
# model would otherwise store; a small dataset or a dense embedding has fewer. At 500 reports per tag
# 4096 columns scored as 16384 (macro F1 0.812, 0.806) and above 1024 (0.768).
LINEAR_COLUMNS = 4096


def _fit(rows: sp.csr_matrix, y: np.ndarray) -> tuple[np.ndarray, LogisticRegression]:
    columns = select_columns(rows, y, LINEAR_COLUMNS)
    model = LogisticRegression(C=LINEAR_C, class_weight="balanced", solver="liblinear")
    return columns, model.fit(rows[:, columns], y)


def linear_scores(unit: sp.csr_matrix, y: np.ndarray, splits: Splits) -> np.ndarray:
    """Out-of-fold margins of the labelled rows ``unit`` (L2-normalised)."""
    scores = np.zeros(len(y))
    for train, test in splits:
        columns, model = _fit(unit[train], y[train])
        scores[test] = model.decision_function(unit[test][:, columns])
    return scores


def linear_model(tag_id: int, unit: sp.csr_matrix, y: np.ndarray, threshold: float) -> TagModel:
    """The model fitted on all the labelled rows (calibration is added by the caller)."""
    columns, fitted = _fit(unit, y)
    return TagModel(
        tag_id,
        "linear",
        threshold,
        columns=[int(c) for c in columns],
        weights=[float(np.float32(w)) for w in fitted.coef_[0]],
        intercept=float(fitted.intercept_[0]),
    )
