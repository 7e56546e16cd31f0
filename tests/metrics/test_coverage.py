"""Empirical coverage of AUROC intervals on patient-clustered data (simulation).

Each simulated study has 100 patients with 4 images each; a patient's images
share the label and a patient effect (intra-class correlation of the scores
about 0.9), as repeated views of one patient do. Every positive-negative pair
comes from two different patients, so the expected AUROC is exactly the
population value ``Phi(d / sqrt(2 (1 + sigma_e^2)))``.

The cluster bootstrap and Obuchowski's clustered DeLong variance must cover
the true AUROC about 95 % of the time; the row bootstrap, which treats the 400
images as independent, must clearly under-cover (its intervals are about half
as wide as they should be). With 1000 studies the Monte Carlo standard error
of a coverage near 95 % is 0.7 percentage points; the percentile bootstrap
with 100 clusters is known to cover slightly less than nominal (about 94 %
here), so the bounds allow 0.915 (three standard errors below that).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.special import ndtr

from claimladder._core import spawn
from claimladder.metrics import roc_auc

N_STUDIES = 1000
N_PATIENTS = 100
PER_PATIENT = 4
SHIFT = 1.2
NOISE_SD = 0.35
TRUE_AUC = float(ndtr(SHIFT / math.sqrt(2 * (1 + NOISE_SD**2))))


def _study(rng: np.random.Generator):
    label = rng.random(N_PATIENTS) < 0.5
    effect = rng.normal(size=N_PATIENTS)
    patient = np.repeat(np.arange(N_PATIENTS), PER_PATIENT)
    y = label[patient].astype(int)
    s = SHIFT * y + effect[patient] + NOISE_SD * rng.normal(size=patient.size)
    return y, s, patient


@pytest.mark.slow
def test_cluster_methods_cover_and_row_bootstrap_does_not():
    hits = {"cluster": 0, "row": 0, "delong": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for child in spawn(20240601, N_STUDIES):
            data_rng, boot_rng = spawn(child, 2)
            y, s, patient = _study(data_rng)
            cluster = roc_auc(y, s, groups=patient, n_resamples=300, rng=boot_rng)
            row = roc_auc(y, s, n_resamples=300, rng=boot_rng)
            delong = roc_auc(y, s, groups=patient, method="delong")
            for key, est in (("cluster", cluster), ("row", row), ("delong", delong)):
                hits[key] += est.ci.low <= TRUE_AUC <= est.ci.high
    coverage = {key: value / N_STUDIES for key, value in hits.items()}
    assert 0.915 <= coverage["cluster"] <= 0.985, coverage
    assert 0.915 <= coverage["delong"] <= 0.985, coverage
    assert coverage["row"] <= 0.80, coverage
    assert coverage["cluster"] - coverage["row"] >= 0.15, coverage
