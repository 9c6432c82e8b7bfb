"""A tag's stored model: what training writes into a run's ``model.json`` and tagging reads back.

Four kinds (why each, and how they are fitted: ``functions/train/learner.py``): ``no_positives``
answers 0; ``centroid`` scores a row by its cosine to the positives' centroid minus that to the
rest, standardised and squashed (``centroid_probability``); ``lightgbm`` runs its booster on the
columns it was fitted on, plus, for dense rows, the cosines to its prototypes; ``linear`` (logistic
regression) is a weighted sum of the L2-normalised row's columns. The last two give a score that
``calibration`` (Platt scaling: slope and offset of a sigmoid) turns into a probability. ``predict``
gives a probability per row; the tag applies at or above ``threshold``. A row with no feature at
all (an empty text) gets 0 from every kind: nothing in it can carry a tag. LightGBM is imported
only when a LightGBM model predicts.

Format 2 added ``linear``, ``weights``, ``intercept`` and ``calibration``; format 1 models (no
calibration) are still read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
CENTROID_Z = 2.0
CENTROID_SLOPE = 2.0  # z = 1 -> 0.12, z = 2 -> 0.5, z = 3 -> 0.88


@dataclass
class TagModel:
    tag_id: int
    kind: str
    threshold: float
    booster: str | None = None  # lightgbm: model_to_string()
    columns: list[int] | None = None  # lightgbm: the input columns the booster sees, in order
    direction: dict[int, float] | None = None  # centroid: column -> weight (sparse)
    offset: float = 0.0  # centroid: mean score of the items that are not explicit positives
    spread: float = 1.0  # centroid: their standard deviation
    prototypes: list[list[float]] | None = None  # lightgbm on dense rows: positive and negative centroids
    weights: list[float] | None = None  # linear: one weight per entry of ``columns``
    intercept: float = 0.0  # linear
    calibration: tuple[float, float] | None = None  # lightgbm, linear: p = sigmoid(slope * score + offset)
    _booster: Any = field(
        default=None, init=False, repr=False, compare=False
    )  # lightgbm.Booster, loaded once
    _weights: Any = field(
        default=None, init=False, repr=False, compare=False
    )  # linear: the weights as a sparse column, built once

    def predict(self, X: Any) -> np.ndarray:
        matrix = as_csr(X)
        if self.kind == "no_positives" or matrix.shape[0] == 0:
            return np.zeros(matrix.shape[0], dtype=np.float64)
        if self.kind == "centroid":
            probabilities = self._centroid_predict(matrix)
        elif self.calibration is None:  # a format 1 LightGBM model: its own probabilities
            probabilities = self._booster_predict(X, raw=False)
        else:
            slope, offset = self.calibration
            probabilities = sigmoid(slope * self.score(X) + offset)
        probabilities[np.diff(matrix.indptr) == 0] = 0.0  # an empty row: nothing to tag
        return probabilities

    def score(self, X: Any) -> np.ndarray:
        """The uncalibrated score of a ``lightgbm`` (log-odds) or ``linear`` model (its margin)."""
        if self.kind == "linear":
            return self._linear_score(as_csr(X))
        return self._booster_predict(X, raw=True)

    def _linear_score(self, X: sp.csr_matrix) -> np.ndarray:
        # The weights as a sparse column over all of X's columns, built once: one sparse product
        # touches only the rows' own entries (20 tags: 21k texts/s; slicing the model's columns out
        # of X first: 17k/s).
        if self._weights is None or self._weights.shape[0] != X.shape[1]:
            columns = np.asarray(self.columns, dtype=np.int64)
            self._weights = sp.csr_matrix(
                (
                    np.asarray(self.weights, dtype=np.float64),
                    (columns, np.zeros(len(columns), dtype=np.int64)),
                ),
                shape=(X.shape[1], 1),
            )
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return np.asarray((X @ self._weights).toarray()).ravel() / norms + self.intercept

    def _booster_predict(self, X: Any, raw: bool) -> np.ndarray:
        if self._booster is None:
            import lightgbm  # only lightgbm models need it

            self._booster = lightgbm.Booster(model_str=self.booster)
        rows = as_csr(X)[:, self.columns].toarray()
        if self.prototypes is not None:
            rows = np.hstack([rows, similarities(unit_dense(X), np.asarray(self.prototypes))])
        return np.asarray(self._booster.predict(rows, raw_score=raw), dtype=np.float64)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "tag_id": self.tag_id,
            "kind": self.kind,
            "threshold": self.threshold,
            "booster": self.booster,
            "columns": self.columns,
            # JSON keys are strings; parallel lists keep the numbers numbers
            "direction": None
            if self.direction is None
            else {"columns": list(self.direction), "weights": list(self.direction.values())},
            "offset": self.offset,
            "spread": self.spread,
            "prototypes": self.prototypes,
            "weights": self.weights,
            "intercept": self.intercept,
            "calibration": None if self.calibration is None else list(self.calibration),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TagModel:
        if doc.get("version") not in READABLE_VERSIONS:
            raise ValueError(f"unsupported tag model version {doc.get('version')}")
        direction = doc.get("direction")
        calibration = doc.get("calibration")
        return cls(
            tag_id=int(doc["tag_id"]),
            kind=str(doc["kind"]),
            threshold=float(doc["threshold"]),
            booster=doc.get("booster"),
            columns=doc.get("columns"),
            direction=None
            if direction is None
            else dict(zip(map(int, direction["columns"]), map(float, direction["weights"]), strict=True)),
            offset=float(doc.get("offset", 0.0)),
            spread=float(doc.get("spread", 1.0)),
            prototypes=doc.get("prototypes"),
            weights=doc.get("weights"),
            intercept=float(doc.get("intercept", 0.0)),
            calibration=None if calibration is None else (float(calibration[0]), float(calibration[1])),
        )

    def _centroid_predict(self, X: sp.csr_matrix) -> np.ndarray:
        direction = self.direction or {}
        if not direction:
            return np.zeros(X.shape[0])
        columns = np.fromiter(direction.keys(), dtype=np.int64, count=len(direction))
        weights = np.fromiter(direction.values(), dtype=np.float64, count=len(direction))
        scores = np.asarray(unit_rows(X)[:, columns] @ weights, dtype=np.float64).ravel()
        return centroid_probability(scores, self.offset, self.spread)


def as_csr(X: Any) -> sp.csr_matrix:
    return X if sp.isspmatrix_csr(X) else sp.csr_matrix(X, dtype=np.float32)


def unit_rows(X: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ X)


def unit_dense(X: Any) -> np.ndarray:
    rows = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return rows / norms


def similarities(unit: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """Each row's cosine to the positive and the negative prototype, and their difference."""
    scores = unit @ prototypes.T
    return np.column_stack([scores, scores[:, 0] - scores[:, 1]])


def sigmoid(values: np.ndarray) -> np.ndarray:
    return np.asarray(expit(values), dtype=np.float64)


def centroid_probability(scores: np.ndarray, offset: float, spread: float) -> np.ndarray:
    z = (scores - offset) / spread
    return sigmoid(CENTROID_SLOPE * (z - CENTROID_Z))
