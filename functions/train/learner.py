"""Kashf's learner: one binary model per tag from the explicit reports, evaluated out of fold, with
one learner chosen per dataset by cross-validation.

Only explicit reports are labels: an item nobody reported for the tag is unknown, never a negative.

Which model a tag gets, by its explicit positives P and negatives N (labels on items not in
``item_ids`` are ignored):

- ``P == 0`` → ``"no_positives"``: always answers 0. Nothing says what the tag looks like; tagging
  nothing is the only answer that cannot be wrong about a positive. ``evaluation`` is None, every
  explicit (negative) label gets OOF 0 and none is "not sure".
- ``0 < P < MIN_PER_CLASS`` or ``N < MIN_PER_CLASS`` → ``"centroid"`` (``centroid``): cosine to the
  positives' centroid minus cosine to the rest, standardised, the tag applies from z = 2 on (on the
  Persian chatterbot corpus z = 2 beat 1, 1.5, 2.5 and 3, for 1 to 12 positives). OOF values are
  leave-one-out for positives; ``evaluation`` is given when at least 2 positives and 1 negative
  have an OOF value, else None.
- otherwise the dataset's learner, ``"lightgbm"`` (``boosting``) or ``"linear"`` (``linear``):
  stratified K-fold with K = min(5, P, N) gives out-of-fold scores, Platt scaling fitted on them
  (``calibration``) makes them probabilities, and the final model, fitted on all labels, carries
  that calibration.

Choosing the learner: both learners are cross-validated on every tag with enough reports, on the
same folds, and the dataset gets the one whose calibrated out-of-fold probabilities have the lower
mean Brier score over its tags; LightGBM keeps ties. Per dataset, not per tag: a tag's few dozen
reports are too few to pick between two models reliably, a dataset's tags together are not.
Trees need many reports to find the few n-grams that matter; a linear model weighs every n-gram a
little from the start. Measured (``bench/kashf_training.py``): on 12 small datasets (14 texts per
tag, 3 tags) 90 % of 305 held-out texts tagged exactly right with the linear model, 67 % with
LightGBM, 82 % with a word n-gram logistic regression; on the chatterbot corpus with 50 and 500
reports per tag the linear model also had the lower Brier score and the higher held-out macro F1.
LightGBM wins where a tag depends on features together (tests/unit/test_kashf_small_data.py).

"Not sure" items are explicit labels whose OOF probability is on the other side of the threshold:
the human label or the features are worth a second look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.model_selection import StratifiedKFold

from functions.common.tag_model import TagModel, as_csr, unit_rows
from functions.train.boosting import BoostingFit
from functions.train.calibration import Calibration, brier, calibrated, fit_platt
from functions.train.centroid import train_centroid
from functions.train.linear import linear_model, linear_scores

MIN_PER_CLASS = 3  # below 3 of either class a fold would train on 1 example of it; the centroid is steadier
MAX_FOLDS = 5
THRESHOLD = 0.5  # calibrated probabilities: 0.5 is even odds; tuning it on OOF would bias F1
LIGHTGBM, LINEAR = "lightgbm", "linear"
LEARNERS = (LIGHTGBM, LINEAR)


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


@dataclass(frozen=True)
class Labelled:
    """A tag's explicit labels: the items, their rows in X, and whether each is positive."""

    items: list[int]
    rows: np.ndarray
    y: np.ndarray

    @property
    def learnable(self) -> bool:
        positives = int(self.y.sum())
        return positives >= MIN_PER_CLASS and len(self.y) - positives >= MIN_PER_CLASS


@dataclass(frozen=True)
class Candidate:
    """One learner's out-of-fold result on one tag."""

    scores: np.ndarray
    calibration: Calibration
    probabilities: np.ndarray
    brier: float


@dataclass
class DatasetRuns:
    """What training gives a dataset: each tag's run, the chosen learner (None when no tag had
    enough reports to need one) and each learner's mean out-of-fold Brier score."""

    runs: dict[int, TagRun]
    learner: str | None = None
    brier: dict[str, float] = field(default_factory=dict)


def _evaluate(truth: np.ndarray, probabilities: np.ndarray, threshold: float) -> TagEvaluation:
    predicted = probabilities >= threshold
    true_positive = int(np.sum(predicted & truth))
    precision = true_positive / int(predicted.sum()) if predicted.any() else 0.0
    recall = true_positive / int(truth.sum()) if truth.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return TagEvaluation(precision, recall, f1, int(truth.sum()), int((~truth).sum()))


def _labelled(X: sp.csr_matrix, item_ids: list[int], labels: dict[int, bool]) -> Labelled:
    if X.shape[0] != len(item_ids):
        raise ValueError(f"X has {X.shape[0]} rows for {len(item_ids)} item ids")
    row_of = {item: row for row, item in enumerate(item_ids)}
    items = [item for item in sorted(labels) if item in row_of]
    rows = np.array([row_of[item] for item in items], dtype=np.int64)
    return Labelled(items, rows, np.array([bool(labels[item]) for item in items], dtype=bool))


class TagFits:
    """One tag's labelled rows, its folds, and each learner's out-of-fold result and final model."""

    def __init__(self, X: sp.csr_matrix, tag: Labelled, seed: int, dense: bool) -> None:
        self.tag, self.y = tag, tag.y
        rows = sp.csr_matrix(X[tag.rows])
        self.boosting = BoostingFit(rows, tag.y, seed, dense)
        self.unit = unit_rows(rows)
        folds = min(MAX_FOLDS, int(tag.y.sum()), int((~tag.y).sum()))
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        self.splits = list(splitter.split(np.zeros(len(tag.y)), tag.y))

    def candidate(self, learner: str) -> Candidate:
        if learner == LIGHTGBM:
            scores = self.boosting.scores(self.splits)
        else:
            scores = linear_scores(self.unit, self.y, self.splits)
        calibration = fit_platt(scores, self.y)
        probabilities = calibrated(scores, calibration)
        return Candidate(scores, calibration, probabilities, brier(probabilities, self.y))

    def model(self, tag_id: int, learner: str, calibration: Calibration) -> TagModel:
        if learner == LIGHTGBM:
            model = self.boosting.model(tag_id, THRESHOLD)
        else:
            model = linear_model(tag_id, self.unit, self.y, THRESHOLD)
        model.calibration = calibration
        return model


def choose(
    candidates: dict[int, dict[str, Candidate]], learners: tuple[str, ...]
) -> tuple[str, dict[str, float]]:
    """The learner with the lowest mean Brier score over the tags (the first of ``learners`` on a tie)."""
    means = {
        learner: math.fsum(found[learner].brier for found in candidates.values()) / len(candidates)
        for learner in learners
    }
    return min(learners, key=lambda learner: means[learner]), means


def train_tags(
    X: Any,
    item_ids: list[int],
    labels: dict[int, dict[int, bool]],
    seed: int = 0,
    learners: tuple[str, ...] = LEARNERS,
) -> DatasetRuns:
    """Train every tag (``labels``: tag id → item id → positive) on rows ``X`` of ``item_ids``,
    choosing one learner of ``learners`` for the dataset; see the module doc."""
    matrix = as_csr(X)
    dense = not sp.issparse(X)
    tags = {tag_id: _labelled(matrix, item_ids, found) for tag_id, found in labels.items()}
    fits = {tag_id: TagFits(matrix, tag, seed, dense) for tag_id, tag in tags.items() if tag.learnable}
    candidates = {
        tag_id: {learner: fit.candidate(learner) for learner in learners} for tag_id, fit in fits.items()
    }
    result = DatasetRuns(runs={})
    if candidates:
        result.learner, result.brier = choose(candidates, learners)
    for tag_id, tag in tags.items():
        if tag_id in fits and result.learner is not None:
            chosen = candidates[tag_id][result.learner]
            model = fits[tag_id].model(tag_id, result.learner, chosen.calibration)
            result.runs[tag_id] = _run(model, tag, chosen.probabilities)
        else:
            result.runs[tag_id] = _few_reports(tag_id, matrix, tag)
    return result


def train_tag(
    tag_id: int,
    X: Any,
    item_ids: list[int],
    labels: dict[int, bool],
    seed: int = 0,
    learners: tuple[str, ...] = LEARNERS,
) -> TagRun:
    """Train one tag as a dataset of its own (its learner chosen by its own cross-validation)."""
    return train_tags(X, item_ids, {tag_id: labels}, seed, learners).runs[tag_id]


def _few_reports(tag_id: int, X: sp.csr_matrix, tag: Labelled) -> TagRun:
    if not tag.y.any():
        model = TagModel(tag_id, "no_positives", THRESHOLD)
        return TagRun(model, None, {item: 0.0 for item in tag.items}, [])
    model, oof = train_centroid(tag_id, X, tag.rows, tag.y, THRESHOLD)
    return _run(model, tag, oof)


def _run(model: TagModel, tag: Labelled, oof: np.ndarray) -> TagRun:
    """The run of ``model``: its evaluation on the out-of-fold values that exist, and the labels
    they contradict ("not sure")."""
    y = tag.y
    known = ~np.isnan(oof)
    evaluation = None
    if int(y[known].sum()) >= 2 and int((~y[known]).sum()) >= 1:
        evaluation = _evaluate(y[known], oof[known], model.threshold)
    predicted = oof >= model.threshold
    notsure = [item for item, k, p, t in zip(tag.items, known, predicted, y, strict=True) if k and p != t]
    values = {item: float(p) for item, k, p in zip(tag.items, known, oof, strict=True) if k}
    return TagRun(model, evaluation, values, notsure)


def macro(evaluations: list[TagEvaluation]) -> dict[str, float]:
    """Unweighted means over tags (a rare tag counts as much as a common one); zeros when none."""
    if not evaluations:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    return {
        name: math.fsum(getattr(e, name) for e in evaluations) / len(evaluations)
        for name in ("precision", "recall", "f1")
    }
