"""Kashf's per-tag learner: one binary model per tag from the explicit reports, evaluated out of fold.

Only explicit reports are labels: an item nobody reported for the tag is unknown, never a negative.

Which model a tag gets, by its explicit positives P and negatives N (labels on items not in
``item_ids`` are ignored):

- ``P == 0`` → ``"no_positives"``: always answers 0. Nothing says what the tag looks like; tagging
  nothing is the only answer that cannot be wrong about a positive. ``evaluation`` is None, every
  explicit (negative) label gets OOF 0 and none is "not sure".
- ``0 < P < MIN_PER_CLASS`` or ``N < MIN_PER_CLASS`` → ``"centroid"``: an item's score is its cosine
  to the centroid of the explicit positives minus its cosine to the centroid of every other item
  (explicit negatives and unlabelled items alike: with few or no negatives, "the rest of the dataset"
  is the best available picture of "not this tag"). Raw scores are not comparable across tags (the
  centroid of everything resembles every text), so the score is standardised by the mean and
  standard deviation of the scores of those other items, z, and the tag applies from z = 2 on:
  probability ``sigmoid(CENTROID_SLOPE * (z - CENTROID_Z))``, threshold 0.5 (on the Persian
  chatterbot corpus z = 2 beat 1, 1.5, 2.5 and 3 and the unstandardised difference, for 1 to 12
  positives). OOF predictions are leave-one-out for positives (scored by the centroids built
  without them, standardised as the full model; a lone positive has none and gets no OOF value); a
  negative is scored by the full model, where it is one of all the other items. ``evaluation`` is
  given when at least 2 positives and 1 negative have an OOF value, else None. The stored model
  keeps the ``CENTROID_COLUMNS`` strongest columns of the direction (JSON size).
- otherwise → ``"lightgbm"``: see ``PARAMS``. OOF from stratified K-fold with
  K = min(5, min(P, N)) (so at least ``MIN_PER_CLASS``); the final model is fitted on all labels.

"Not sure" items are explicit labels whose OOF probability is on the other side of the threshold:
the human label or the features are worth a second look.

Any feature matrix works (sparse TF-IDF rows, dense image/face vectors): LightGBM sees the
``MAX_COLUMNS`` columns that best separate the fold's classes, the centroid uses cosines.

Dense embeddings (images, faces) also give LightGBM three prototype columns: an item's cosine to
the centroid of the fit's positives, to that of its negatives, and their difference (built from
each fold's own labels, stored with the model). With a handful of reports, trees on 1,280 raw
embedding columns split on noise (generated scenes, 8+8 reports: OOF F1 0.71, a held-out scene
tagged wrongly at 0.95); one split on the prototype difference carries what the embedding knows,
so dense fits see only one raw column per 8 reports beside the prototypes (same data: OOF F1 1.0,
every held-out scene right).

Measured (``bench/kashf_training.py``, tests): on the 13 Persian chatterbot categories (70/30
splits, three seeds) held-out macro F1 0.87 (logistic regression on the same features 0.92, guessing
by the prior 0.08, shuffled labels ~0.08); 10,000 reports over 20 tags train in ~10 s on one core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import scipy.sparse as sp
from sklearn.model_selection import StratifiedKFold

from functions.common.tag_model import (
    TagModel,
    as_csr,
    centroid_probability,
    similarities,
    unit_dense,
    unit_rows,
)

MIN_PER_CLASS = 3  # below 3 of either class a fold would train on 1 example of it; the centroid is steadier
MAX_FOLDS = 5
THRESHOLD = 0.5  # with class-balanced weights 0.5 is the even-odds point; tuning it on OOF would bias F1
CENTROID_COLUMNS = 2048  # ~60 kB of JSON; on the Persian corpus 1024, 4096 and all columns scored alike

# Small-data settings: a leaf may hold two reports (min_data_in_leaf, min_data_in_bin,
# min_sum_hessian_in_leaf), bins are built for every column (feature_pre_filter=False, else LightGBM
# drops columns with fewer rows than min_data_in_leaf before it looks at them), trees stay small
# (num_leaves 4: on the Persian chatterbot corpus 4 beat 7 and 15 by 0.01-0.03 macro F1 over three
# splits) and L2-regularised, and a fixed 100 rounds at 0.1: early stopping on folds of a handful of
# reports only measures noise. deterministic + one thread make a seed reproduce a model.
PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.1,
    "num_leaves": 4,
    "min_data_in_leaf": 2,
    "min_data_in_bin": 1,
    "min_sum_hessian_in_leaf": 1e-3,
    "lambda_l2": 1.0,
    "feature_fraction": 0.8,
    "max_bin": 63,
    "feature_pre_filter": False,
    "deterministic": True,
    "num_threads": 1,
    "verbose": -1,
}
NUM_ROUNDS = 100
# Each fit sees only the MAX_COLUMNS columns whose mean differs most between its positives and
# negatives (chosen inside each fold, from that fold's labels only, so OOF stays honest). Binning
# ~10k n-gram columns cost ~1.3 s per fit; 600 columns cost ~0.1 s and scored higher (0.875 vs 0.86).
MAX_COLUMNS = 600


@dataclass(frozen=True)
class TagEvaluation:
    precision: float
    recall: float
    f1: float
    positives: int
    negatives: int


@dataclass
class TagRun:
    model: TagModel
    evaluation: TagEvaluation | None
    oof: dict[int, float]
    notsure: list[int]


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _prototypes(unit: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.vstack([_unit(unit[y].mean(axis=0)), _unit(unit[~y].mean(axis=0))])


def _evaluate(truth: np.ndarray, probabilities: np.ndarray, threshold: float) -> TagEvaluation:
    predicted = probabilities >= threshold
    true_positive = int(np.sum(predicted & truth))
    precision = true_positive / int(predicted.sum()) if predicted.any() else 0.0
    recall = true_positive / int(truth.sum()) if truth.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return TagEvaluation(precision, recall, f1, int(truth.sum()), int((~truth).sum()))


def _select_columns(rows: sp.csr_matrix, y: np.ndarray, limit: int = MAX_COLUMNS) -> np.ndarray:
    gap = np.abs(np.asarray(rows[y].mean(axis=0)).ravel() - np.asarray(rows[~y].mean(axis=0)).ravel())
    useful = np.flatnonzero(gap)
    if len(useful) > limit:
        useful = useful[np.argsort(-gap[useful], kind="stable")[:limit]]
    # no column tells the classes apart: keep one so LightGBM still fits (a constant model)
    return np.sort(useful) if len(useful) else np.zeros(1, dtype=np.int64)


def _fit_booster(rows: np.ndarray, y: np.ndarray, seed: int) -> lgb.Booster:
    positives = int(y.sum())
    negatives = len(y) - positives
    # balanced weights: each class weighs half, so a rare tag is not learnt as "always no"
    weights = np.where(y, len(y) / (2 * positives), len(y) / (2 * negatives))
    params = {**PARAMS, "seed": seed}
    data = lgb.Dataset(rows, label=y.astype(np.float64), weight=weights, params=params)
    return lgb.train(params, data, num_boost_round=NUM_ROUNDS)


def _train_lightgbm(
    tag_id: int, X: sp.csr_matrix, labelled: np.ndarray, y: np.ndarray, seed: int, dense: bool = False
) -> tuple[TagModel, np.ndarray]:
    rows = sp.csr_matrix(X[labelled])
    unit = unit_dense(rows) if dense else None

    def inputs(part: np.ndarray, columns: np.ndarray, prototypes: np.ndarray | None) -> np.ndarray:
        chosen = rows[part][:, columns].toarray()
        if unit is None or prototypes is None:
            return chosen
        return np.hstack([chosen, similarities(unit[part], prototypes)])

    # dense rows: few raw columns next to the prototypes, more as reports grow (one per 8 reports)
    limit = min(MAX_COLUMNS, len(y) // 8) if dense else MAX_COLUMNS
    folds = min(MAX_FOLDS, int(y.sum()), int((~y).sum()))
    oof = np.zeros(len(y))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(len(y)), y):
        columns = _select_columns(rows[train], y[train], limit)
        prototypes = _prototypes(unit[train], y[train]) if unit is not None else None
        booster = _fit_booster(inputs(train, columns, prototypes), y[train], seed)
        oof[test] = booster.predict(inputs(test, columns, prototypes))
    everything = np.arange(len(y))
    columns = _select_columns(rows, y, limit)
    prototypes = _prototypes(unit, y) if unit is not None else None
    booster = _fit_booster(inputs(everything, columns, prototypes), y, seed)
    model = TagModel(tag_id, "lightgbm", THRESHOLD, booster.model_to_string(), [int(c) for c in columns])
    if prototypes is not None:
        model.prototypes = [[float(v) for v in row] for row in prototypes.astype(np.float32)]
    model._booster = booster
    return model, oof


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


def _train_centroid(
    tag_id: int, X: sp.csr_matrix, labelled: np.ndarray, y: np.ndarray
) -> tuple[TagModel, np.ndarray]:
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
        THRESHOLD,
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


def train_tag(tag_id: int, X: Any, item_ids: list[int], labels: dict[int, bool], seed: int = 0) -> TagRun:
    """Train tag ``tag_id`` from the explicit ``labels`` (item id → positive) on rows ``X`` of
    ``item_ids``; see the module doc for which model, its evaluation and "not sure"."""
    matrix = as_csr(X)
    if matrix.shape[0] != len(item_ids):
        raise ValueError(f"X has {matrix.shape[0]} rows for {len(item_ids)} item ids")
    row_of = {item: row for row, item in enumerate(item_ids)}
    labelled_items = [item for item in sorted(labels) if item in row_of]
    labelled = np.array([row_of[item] for item in labelled_items], dtype=np.int64)
    y = np.array([bool(labels[item]) for item in labelled_items], dtype=bool)
    positives, negatives = int(y.sum()), int((~y).sum())

    if positives == 0:
        model = TagModel(tag_id, "no_positives", THRESHOLD)
        return TagRun(model, None, {item: 0.0 for item in labelled_items}, [])
    if positives < MIN_PER_CLASS or negatives < MIN_PER_CLASS:
        model, oof = _train_centroid(tag_id, matrix, labelled, y)
    else:
        model, oof = _train_lightgbm(tag_id, matrix, labelled, y, seed, dense=not sp.issparse(X))

    return _run(model, labelled_items, y, oof)


def _run(model: TagModel, items: list[int], y: np.ndarray, oof: np.ndarray) -> TagRun:
    """The run of ``model``: its evaluation on the out-of-fold values that exist, and the labels
    they contradict ("not sure")."""
    known = ~np.isnan(oof)
    evaluation = None
    if int(y[known].sum()) >= 2 and int((~y[known]).sum()) >= 1:
        evaluation = _evaluate(y[known], oof[known], model.threshold)
    predicted = oof >= model.threshold
    notsure = [item for item, k, p, t in zip(items, known, predicted, y, strict=True) if k and p != t]
    values = {item: float(p) for item, k, p in zip(items, known, oof, strict=True) if k}
    return TagRun(model, evaluation, values, notsure)


def macro(evaluations: list[TagEvaluation]) -> dict[str, float]:
    """Unweighted means over tags (a rare tag counts as much as a common one); zeros when none."""
    if not evaluations:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    return {
        name: math.fsum(getattr(e, name) for e in evaluations) / len(evaluations)
        for name in ("precision", "recall", "f1")
    }
