"""Which feature columns a tag's learner sees: those whose mean differs most between its classes."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def select_columns(rows: sp.csr_matrix, y: np.ndarray, limit: int) -> np.ndarray:
    """The (at most ``limit``) columns whose mean differs most between the positive and negative
    rows, in column order. Chosen from the labels of the fit at hand only (inside each fold), so
    out-of-fold scores stay honest."""
    gap = np.abs(np.asarray(rows[y].mean(axis=0)).ravel() - np.asarray(rows[~y].mean(axis=0)).ravel())
    useful = np.flatnonzero(gap)
    if len(useful) > limit:
        useful = useful[np.argsort(-gap[useful], kind="stable")[:limit]]
    # no column tells the classes apart: keep one so the learner still fits (a constant model)
    return np.sort(useful) if len(useful) else np.zeros(1, dtype=np.int64)
