"""Platt scaling: a model's scores turned into probabilities that mean what they say.

A learner's own probabilities are not calibrated: LightGBM with class-balanced weights on a few
dozen reports answers 0.90 for a sentence it knows nothing about, and a logistic regression's
margin depends on its regularisation. Platt (1999) fits ``p = sigmoid(slope * score + offset)`` to
the out-of-fold scores, whose labels the model did not see. His targets replace 1 and 0 by
``(P + 1) / (P + 2)`` and ``1 / (N + 2)`` (P positives, N negatives), so that a handful of
perfectly separated reports does not give an infinite slope and probabilities of exactly 0 and 1.
The slope is kept >= 0: a model that ranks worse than chance out of fold becomes the reports'
prior, not a model with its ranking turned around.

The probabilities are calibrated to the reports as given: with 14 positives among 42 reports the
prior is 1/3, as it would be for new data reported in the same proportion.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

Calibration = tuple[float, float]  # (slope, offset)


def fit_platt(scores: np.ndarray, truth: np.ndarray) -> Calibration:
    """The sigmoid that best maps ``scores`` to the labels ``truth`` (Platt's targets)."""
    truth = truth.astype(bool)
    positives = int(truth.sum())
    negatives = len(truth) - positives
    target = np.where(truth, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    values = np.asarray(scores, dtype=np.float64)

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        z = params[0] * values + params[1]
        error = expit(z) - target
        # cross-entropy against the targets, written stably: log(1 + e^z) - t z
        return float(np.sum(np.logaddexp(0.0, z) - target * z)), np.array(
            [float(error @ values), float(error.sum())]
        )

    result = minimize(
        loss, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B", bounds=[(0.0, None), (None, None)]
    )
    return float(result.x[0]), float(result.x[1])


def calibrated(scores: np.ndarray, calibration: Calibration) -> np.ndarray:
    slope, offset = calibration
    return np.asarray(expit(slope * np.asarray(scores, dtype=np.float64) + offset), dtype=np.float64)


def brier(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """Mean squared error of the probabilities: a proper score that rewards ranking and
    calibration alike, bounded (one confident mistake costs at most 1, unlike log loss)."""
    return float(np.mean((probabilities - truth.astype(np.float64)) ** 2))
