"""The metadata-only baseline on the demo study: the planted metadata leak is found.

The planted demo makes the ``priority`` field depend on the label (urgent for
70 % of positives, 15 % of negatives) and the prevalence differ by site; the
clean control has neither, so metadata alone should not predict the label.
About 520 images (300 patients) keep the internal test partition near 80
images; seeds 0-3 were checked by hand (planted AUROC lower bound 0.55-0.71,
clean intervals all containing 0.5).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from claimladder.datasets import make_demo_study
from claimladder.metrics import roc_auc
from claimladder.utility import fit_metadata_baseline

pytestmark = pytest.mark.slow  # two demo studies: about 10 s on a loaded 2-core machine

COLUMNS = ["site", "priority", "view", "age", "sex"]


def _metadata_auroc(root, clean: bool):
    demo = make_demo_study(root, n_patients=300, image_size=64, clean=clean, rng=0)
    cohort = pd.read_csv(demo.cohort_path)
    internal = cohort["site"].isin(["A", "B"])
    development = (internal & (cohort["split"] == "train")).to_numpy()
    test = (internal & (cohort["split"] == "test")).to_numpy()
    scores = fit_metadata_baseline(cohort, cohort["label"], columns=COLUMNS,
                                   train_mask=development, groups=cohort["patient_id"], rng=0)
    assert np.all(np.isfinite(scores))
    return roc_auc(cohort["label"][test], scores[test], groups=cohort["patient_id"][test],
                   n_resamples=1000, rng=0)


def test_planted_metadata_predict_the_label(tmp_path):
    est = _metadata_auroc(tmp_path, clean=False)
    assert est.ci.low > 0.5


def test_clean_metadata_do_not(tmp_path):
    est = _metadata_auroc(tmp_path, clean=True)
    assert est.ci.low <= 0.5 <= est.ci.high
