"""Greedy patient-to-bin assignment that balances bin sizes and strata.

Every splitter that draws at random (k-fold, hold-out, nested partitions) reduces to
one problem: put whole patients into bins whose image counts per stratum approach
target proportions. The greedy rule used here is the classic "largest first" bin
packing with a squared-deviation cost:

* patients are shuffled by ``rng`` and then sorted by their number of images, largest
  first (the shuffle decides the order among patients of equal size);
* each patient goes to the bin whose cost ``sum_s (count_bs - target_bs)^2 +
  (size_b - target_size_b)^2`` grows least when the patient's images are added;
  ties go to the bin with fewer images, then the lower index.

An empty bin never costs more than a non-empty one for the same patient, so with
equal targets the first ``k`` patients open ``k`` distinct bins and no fold is empty
whenever there are at least ``k`` patients.
"""

from __future__ import annotations

import numpy as np

__all__ = ["assign_patients"]

_TIE = 1e-9


def assign_patients(
    patients: np.ndarray,
    strata: np.ndarray,
    proportions: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Bin index of every row; all rows of a patient share the bin.

    Parameters
    ----------
    patients : numpy.ndarray, shape (n_rows,)
        Patient id of each row.
    strata : numpy.ndarray of int, shape (n_rows,)
        Stratum code of each row (a single code when not stratifying).
    proportions : numpy.ndarray, shape (n_bins,)
        Target share of the images in each bin; sums to 1. A zero share keeps a bin empty.
    rng : numpy.random.Generator
        Decides the order among patients of equal size.

    Returns
    -------
    numpy.ndarray of int, shape (n_rows,)
    """
    proportions = np.asarray(proportions, dtype=float)
    _, patient_index = np.unique(patients, return_inverse=True)
    patient_index = patient_index.ravel()
    n_patients = int(patient_index.max()) + 1 if len(patient_index) else 0
    n_strata = int(strata.max()) + 1 if len(strata) else 1
    per_patient = np.zeros((n_patients, n_strata), dtype=float)
    np.add.at(per_patient, (patient_index, strata), 1.0)
    sizes = per_patient.sum(axis=1)

    order = rng.permutation(n_patients)
    order = order[np.argsort(-sizes[order], kind="stable")]

    target = proportions[:, None] * per_patient.sum(axis=0)[None, :]
    target_size = proportions * float(len(patients))
    counts = np.zeros_like(target)
    filled = np.zeros(len(proportions), dtype=float)
    closed = proportions <= 0
    bin_of_patient = np.empty(n_patients, dtype=np.int64)
    for p in order:
        add = per_patient[p]
        size = sizes[p]
        cost = ((2.0 * (counts - target) + add) * add).sum(axis=1)
        cost += size * (2.0 * (filled - target_size) + size)
        cost[closed] = np.inf
        candidates = np.flatnonzero(cost <= cost.min() + _TIE)
        chosen = candidates[np.argmin(filled[candidates])]
        bin_of_patient[p] = chosen
        counts[chosen] += add
        filled[chosen] += size
    return bin_of_patient[patient_index]
