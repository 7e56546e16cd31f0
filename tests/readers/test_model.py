"""Standalone model versus the readers' average."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from claimladder import AlignmentError
from claimladder.readers import ReaderStudy, load_readings, model_vs_readers, or_hillis
from reference import mrmc_reference as ref


def _model(study, seed, noise=0.5):
    rng = np.random.default_rng(seed)
    return study.truth * 1.3 + rng.normal(scale=noise, size=study.n_cases)


@pytest.mark.parametrize("covariance", ["jackknife", "delong"])
def test_matches_reference(study_factory, covariance):
    study = study_factory(21, n_readers=4, n_neg=10, n_pos=9, ratings=5)
    model = _model(study, 0)
    mine = model_vs_readers(study, model_scores=model, covariance=covariance)
    oracle = ref.model_vs_readers(study.truth, list(study.scores[0]), model, method=covariance)
    assert mine.difference.value == pytest.approx(oracle["difference"], rel=1e-12)
    assert mine.model_auc.value == pytest.approx(oracle["model_auc"], rel=1e-12)
    row = mine.rrrc.differences.iloc[0]
    assert row["std_error"] == pytest.approx(oracle["se"], rel=1e-9)
    assert mine.ddf == pytest.approx(oracle["ddf"], rel=1e-9)
    assert mine.p_value == pytest.approx(oracle["p"], rel=1e-8)
    assert mine.frrc.differences["std_error"].iloc[0] == pytest.approx(oracle["frrc_se"],
                                                                       rel=1e-9)
    assert mine.rrfc.differences["std_error"].iloc[0] == pytest.approx(oracle["rrfc_se"],
                                                                       rel=1e-9)
    np.testing.assert_allclose(mine.per_reader["std_error"], oracle["per_reader_se"],
                               rtol=1e-9)


@pytest.mark.parametrize("covariance", ["jackknife", "delong"])
def test_equals_two_modality_or_with_model_as_second_modality(study_factory, covariance):
    """1T-RRRC == OR-Hillis where every reader's second-modality rating is the model's."""
    study = study_factory(22, n_readers=5, n_neg=14, n_pos=11)
    model = _model(study, 1)
    mine = model_vs_readers(study, model_scores=model, covariance=covariance)
    twin = ReaderStudy(case_ids=study.case_ids, reader_ids=study.reader_ids,
                       modalities=("unaided", "model"), truth=study.truth,
                       scores=np.stack([study.scores[0],
                                        np.broadcast_to(model, study.scores[0].shape)]))
    two = or_hillis(twin, modalities=("unaided", "model"), covariance=covariance)
    assert mine.difference.value == pytest.approx(two.difference.value, rel=1e-12)
    assert (mine.difference.ci.low, mine.difference.ci.high) == pytest.approx(
        (two.difference.ci.low, two.difference.ci.high), rel=1e-9)
    for analysis in ("RRRC", "FRRC", "RRFC"):
        a = {"RRRC": mine.rrrc, "FRRC": mine.frrc, "RRFC": mine.rrfc}[analysis]
        b = two.test(analysis)
        assert a.f_statistic == pytest.approx(b.f_statistic, rel=1e-9), analysis
        assert a.ddf == pytest.approx(b.ddf, rel=1e-9), analysis
        assert a.p_value == pytest.approx(b.p_value, rel=1e-8), analysis
    np.testing.assert_allclose(mine.per_reader["std_error"], two.per_reader["std_error"],
                               rtol=1e-9)
    # The reader average and its single-modality interval are those of the OR analysis.
    single = two.rrrc.modality_auc.set_index("modality").loc["unaided"]
    assert mine.reader_auc.value == pytest.approx(single["auc"], rel=1e-12)
    assert mine.reader_auc.ci.low == pytest.approx(single["ci_low"], rel=1e-9)


def test_alignment_by_case_id(study_factory):
    study = study_factory(23)
    model = _model(study, 2)
    keyed = dict(zip(study.case_ids, model, strict=True))
    shuffled = pd.Series(keyed).sample(frac=1.0, random_state=0)
    a = model_vs_readers(study, model_scores=model)
    b = model_vs_readers(study, model_scores=shuffled)
    assert a.difference.value == b.difference.value
    with pytest.raises(AlignmentError, match="no value for 1 case"):
        model_vs_readers(study, model_scores={k: v for k, v in list(keyed.items())[1:]})
    with pytest.raises(AlignmentError, match="shape"):
        model_vs_readers(study, model_scores=model[:-1])
    with pytest.raises(ValueError, match="Did you mean 'unaided'"):
        model_vs_readers(study, model_scores=model, modality="unaide")


def test_model_equal_to_a_reader_is_that_reader(vandyke):
    """A "model" equal to reader 0's ratings has that reader's AUROC and zero contrast."""
    from claimladder.metrics import roc_auc

    model = vandyke.scores[0, 0]
    result = model_vs_readers(vandyke, model_scores=model, modality="trt0")
    assert result.model_auc.value == pytest.approx(roc_auc(vandyke.truth, model).value)
    pr = result.per_reader.set_index("reader_id")
    assert pr.iloc[0]["estimate"] == 0
    assert np.isnan(pr.iloc[0]["statistic"])  # no variance in a difference with itself


def test_table_input(vandyke_frame):
    frame = vandyke_frame[vandyke_frame.modality == "trt0"]
    study = load_readings(frame)
    model = {str(c): float(s) for c, s in zip(study.case_ids, study.scores[0, 3], strict=True)}
    result = model_vs_readers(frame, model_scores=model, modality="trt0")
    assert result.n_readers == 5 and result.n_cases == 114
