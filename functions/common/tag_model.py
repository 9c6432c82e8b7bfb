"""A tag's stored model: what training writes into a run's ``model.json`` and tagging reads back.

Three kinds (why each, and how they are fitted: ``functions/train/learner.py``): ``no_positives``
answers 0; ``centroid`` scores a row by its cosine to the positives' centroid minus that to the
rest, standardised and squashed (``centroid_probability``); ``lightgbm`` runs its booster on the
columns it was fitted on, plus, for dense rows, the cosines to its prototypes. ``predict`` gives a
probability per row; the tag applies at or above ``threshold``. LightGBM is imported only when a
LightGBM model predicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

FORMAT_VERSION = 1
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
    _booster: Any = field(
        default=None, init=False, repr=False, compare=False
    )  # lightgbm.Booster, loaded once

    def predict(self, X: Any) -> np.ndarray:
        rows = X.shape[0]
        if self.kind == "no_positives" or rows == 0:
            return np.zeros(rows, dtype=np.float64)
        if self.kind == "centroid":
            return self._centroid_predict(as_csr(X))
        if self._booster is None:
            import lightgbm  # only lightgbm models need it

            self._booster = lightgbm.Booster(model_str=self.booster)
        rows = as_csr(X)[:, self.columns].toarray()
        if self.prototypes is not None:
            rows = np.hstack([rows, similarities(unit_dense(X), np.asarray(self.prototypes))])
        return np.asarray(self._booster.predict(rows), dtype=np.float64)

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
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TagModel:
        if doc.get("version") != FORMAT_VERSION:
            raise ValueError(f"unsupported tag model version {doc.get('version')}")
        direction = doc.get("direction")
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


def centroid_probability(scores: np.ndarray, offset: float, spread: float) -> np.ndarray:
    z = (scores - offset) / spread
    return 1.0 / (1.0 + np.exp(-CENTROID_SLOPE * (z - CENTROID_Z)))
