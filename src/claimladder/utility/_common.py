"""Small pieces shared by the utility checks."""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__: list[str] = []

#: Most example ids a finding lists.
MAX_EXAMPLES = 10


def feature_matrix(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_features: int,
                   n_clusters: int) -> sparse.csr_array:
    """Sparse (features x clusters) sums for a metrics-engine Statistic, duplicates added."""
    mt = sparse.coo_array((np.asarray(values, dtype=np.float64),
                           (np.asarray(rows, dtype=np.intp), np.asarray(cols, dtype=np.intp))),
                          shape=(n_features, n_clusters)).tocsr()
    mt.sum_duplicates()
    return sparse.csr_array(mt)
