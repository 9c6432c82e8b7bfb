"""The similarity model of a tag with too few reports for a learner (see ``learner``'s module doc).

An item's score is its cosine to the centroid of the explicit positives minus its cosine to the
centroid of every other item (explicit negatives and unlabelled items alike: with few or no
negatives, "the rest of the dataset" is the best available picture of "not this tag"), standardised
by the mean and standard deviation of the other items' scores and squashed into a probability
(``functions.common.tag_model.centroid_probability``).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from functions.common.tag_model import TagModel, centroid_probability, unit_rows

CENTROID_COLUMNS = 2048  # ~60 kB of JSON; on the Persian corpus 1024, 4096 and all columns scored alike


def _centroid_sums(unit: sp.csr_matrix, is_positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sums of the positive rows and of the other rows, and the direction between their centroids."""
    positive_sum = np.asarray(unit[is_positive].sum(axis=0)).ravel()
    rest_sum = np.asarray(unit[~is_positive].sum(axis=0)).ravel()
    positive_norm, rest_norm = float(np.linalg.norm(positive_sum)), float(np.linalg.norm(rest_sum))
    # a zero norm (every row empty) leaves that side out instead of dividing by zero
    direction = (positive_sum / positive_norm if positive_norm > 0 else 0.0 * positive_sum) - (
        rest_sum / rest_norm if rest_norm > 0 else 0.0
    )
    return positive_sum, rest_sum, direction


def train_centroid(
    tag_id: int, X: sp.csr_matrix, labelled: np.ndarray, y: np.ndarray, threshold: float
) -> tuple[TagModel, np.ndarray]:
    """The model and the labelled rows' out-of-fold probabilities (leave-one-out for positives,
    NaN for a lone positive; a negative is scored by the full model, where it is one of the rest)."""
    unit = unit_rows(X)
    is_positive = np.zeros(unit.shape[0], dtype=bool)
    is_positive[labelled[y]] = True
    _, _, direction = _centroid_sums(unit, is_positive)
    # The centroid of all other items touches every n-gram of the dataset (~0.7 MB of JSON for 8k
    # texts); the model keeps the CENTROID_COLUMNS strongest columns and is rebuilt on them alone,
    # so that its scores, offset, spread and leave-one-out values all describe the kept model.
    kept = np.flatnonzero(direction)
    if len(kept) > CENTROID_COLUMNS:
        kept = np.sort(kept[np.argsort(-np.abs(direction[kept]), kind="stable")[:CENTROID_COLUMNS]])
    unit = sp.csr_matrix(unit[:, kept])
    positive_sum, rest_sum, direction = _centroid_sums(unit, is_positive)
    positive_norm, rest_norm = float(np.linalg.norm(positive_sum)), float(np.linalg.norm(rest_sum))
    rest_scores = np.asarray(unit[~is_positive] @ direction).ravel()
    offset = float(rest_scores.mean()) if len(rest_scores) else 0.0
    spread = float(rest_scores.std()) if len(rest_scores) > 1 and rest_scores.std() > 0 else 1.0
    model = TagModel(
        tag_id,
        "centroid",
        threshold,
        direction={int(c): float(np.float32(w)) for c, w in zip(kept, direction, strict=True) if w != 0},
        offset=offset,
        spread=spread,
    )
    scores = np.asarray(unit[labelled] @ direction).ravel()
    # Leave-one-out for a positive x without refitting: its centroids become (positives - x) and
    # (rest + x); their dot products with x and norms follow from the sums' (|a +- x|^2 expanded).
    for index in np.flatnonzero(y):
        row = unit[labelled[index]]
        own = float(row.multiply(row).sum())
        if own == 0 or int(y.sum()) < 2:
            scores[index] = np.nan
            continue
        to_positive, to_rest = float(row.dot(positive_sum)[0]), float(row.dot(rest_sum)[0])
        without = math.sqrt(max(positive_norm**2 - 2 * to_positive + own, 1e-12))
        with_it = math.sqrt(max(rest_norm**2 + 2 * to_rest + own, 1e-12))
        scores[index] = (to_positive - own) / without - (to_rest + own) / with_it
    return model, centroid_probability(scores, offset, spread)
