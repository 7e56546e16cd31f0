"""Reader-study findings (rung 6) and the deployment setting (rung 0) in the ladder."""

from __future__ import annotations

import json
import math
import sys
import textwrap
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

from claimladder import ClaimladderError, Status, StudySpecError, evidence_schema
from claimladder.ladder import load_study, run_ladder
from claimladder.ladder._deployment import predictive_values, standardized_difference
from claimladder.readers import load_readings, or_hillis

TESTS = str(Path(__file__).resolve().parents[1])
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from reference import mrmc_reference as ref

N_PATIENTS = 160


def _cohort(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = N_PATIENTS
    label = (rng.random(n) < 0.3).astype(int)
    cohort = pd.DataFrame({
        "image_id": [f"IMG{k:04d}" for k in range(n)],
        "patient_id": [f"P{k // 2:04d}" for k in range(n)],  # two images per patient
        "label": label,
        "split": np.where(np.arange(n) % 2 == 0, "train", "test"),
        "age": np.round(rng.normal(55, 12, n)).astype(int),
        "sex": rng.choice(["F", "M"], n),
        "manufacturer": rng.choice(["Acme", "Borealis"], n),
    })
    score = 1 / (1 + np.exp(-(2.0 * label - 1 + rng.normal(size=n))))
    predictions = pd.DataFrame({"image_id": cohort["image_id"], "model": "m", "score": score})
    return cohort, predictions


def _readings(cohort: pd.DataFrame, seed: int = 1, *, decisions: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    test = cohort[cohort["split"] == "test"]
    y = test["label"].to_numpy()
    case = rng.normal(size=len(test))
    rows = []
    for reader in range(4):
        for modality, gain in (("unaided", 1.0), ("aided", 1.8)):
            latent = gain * y + case + rng.normal(size=len(test))
            score = np.round(100 / (1 + np.exp(-latent)))
            frame = pd.DataFrame({"case_id": test["image_id"].to_numpy(),
                                  "reader_id": f"R{reader}", "modality": modality,
                                  "score": score})
            if decisions:
                frame["decision"] = (score >= 50).astype(int)
                frame["time_s"] = np.round(rng.gamma(8, 5, len(test)), 1)
            rows.append(frame)
    return pd.concat(rows, ignore_index=True)


SPEC = """
[claim]
statement = "The model detects X"
[data]
cohort = "cohort.csv"
predictions = "predictions.csv"
[data.columns]
manufacturer = "manufacturer"
attributes = ["age", "sex"]
[partitions]
development = "split == 'train'"
internal_test = "split == 'test'"
[metrics]
n_resamples = 200
"""


def _study(tmp_path, extra: str = "", *, readings: pd.DataFrame | None = None):
    cohort, predictions = _cohort()
    cohort.to_csv(tmp_path / "cohort.csv", index=False)
    predictions.to_csv(tmp_path / "predictions.csv", index=False)
    if readings is None:
        readings = _readings(cohort)
    readings.to_csv(tmp_path / "readers.csv", index=False)
    path = tmp_path / "study.toml"
    path.write_text(SPEC + textwrap.dedent(extra))
    return load_study(path), cohort


def _findings(evidence, prefix):
    return {(f.check, f.params.get("partition")): f for f in evidence.findings
            if f.check.startswith(prefix)}


READERS = '\n[readers]\ntable = "readers.csv"\n'


def test_reader_findings_in_rung_6(tmp_path):
    study, cohort = _study(tmp_path, READERS)
    evidence = run_ladder(study, rungs=[6])
    found = _findings(evidence, "readers.")
    assert {c for c, _ in found} == {"readers.mrmc_auroc", "readers.per_reader",
                                     "readers.model_vs_readers", "readers.decision_changes",
                                     "readers.reading_time"}
    mrmc = found[("readers.mrmc_auroc", None)]
    # the ladder's numbers are or_hillis's on the cohort's truth, and the plain oracle's
    truth = dict(zip(cohort["image_id"], cohort["label"], strict=True))
    study_r = load_readings(tmp_path / "readers.csv", truth)
    direct = or_hillis(study_r)
    assert mrmc.estimate.value == pytest.approx(direct.difference.value, rel=1e-12)
    oracle = ref.or_analysis(study_r.truth, [[study_r.scores[i, j] for j in range(4)]
                                             for i in range(2)], method="jackknife")
    assert mrmc.estimate.value == pytest.approx(oracle["difference"], rel=1e-9)
    assert mrmc.params["p_value"] == pytest.approx(oracle["RRRC"]["p"], rel=1e-8)
    assert mrmc.params["ddf"] == pytest.approx(oracle["RRRC"]["ddf"], rel=1e-9)
    assert mrmc.status is Status.PASS and mrmc.plots[0].kind == "forest"
    per_reader = found[("readers.per_reader", None)]
    assert len(per_reader.plots[0].data) == 8  # 4 readers x 2 modalities
    assert found[("readers.decision_changes", None)].estimate.is_defined
    jsonschema.validate(json.loads(evidence.to_json()), evidence_schema())


def test_aided_worse_fails(tmp_path):
    cohort, _ = _cohort()
    readings = _readings(cohort)
    swapped = readings["modality"].map({"unaided": "aided", "aided": "unaided"})
    study, _ = _study(tmp_path, READERS, readings=readings.assign(modality=swapped))
    found = _findings(run_ladder(study, rungs=[6]), "readers.")
    mrmc = found[("readers.mrmc_auroc", None)]
    assert mrmc.estimate.ci.high < 0 and mrmc.status is Status.FAIL


def test_reader_options_and_missing_decisions(tmp_path):
    cohort, _ = _cohort()
    readings = _readings(cohort, decisions=False).rename(columns={"reader_id": "rdr"})
    readings["modality"] = readings["modality"].map({"unaided": "A", "aided": "B"})
    extra = READERS + 'modalities = ["A", "B"]\n[readers.columns]\nreader_id = "rdr"\n'
    study, _ = _study(tmp_path, extra, readings=readings)
    found = _findings(run_ladder(study, rungs=[6]), "readers.")
    assert found[("readers.decision_changes", None)].status is Status.NOT_EVALUABLE
    assert found[("readers.mrmc_auroc", None)].params["second"] == "B"


@pytest.mark.parametrize(("extra", "match"), [
    ('\n[readers]\ntable = "nope.csv"\n', "does not exist"),
    (READERS + 'modalities = ["unaided", "with_ai"]\n', "has no modality 'with_ai'"),
    (READERS + 'modalitie = ["a", "b"]\n', "Did you mean 'modalities'"),
    (READERS + 'covariance = "bootstrap"\n', "'jackknife' or 'delong'"),
], ids=["missing-file", "modality", "typo", "covariance"])
def test_reader_spec_errors(tmp_path, extra, match):
    with pytest.raises(StudySpecError, match=match):
        study, _ = _study(tmp_path, extra)
        run_ladder(study, rungs=[6])


def test_reader_cases_outside_the_cohort_are_a_user_error(tmp_path):
    cohort, _ = _cohort()
    readings = _readings(cohort)
    readings.loc[readings["case_id"] == readings["case_id"].iloc[0], "case_id"] = "GHOST"
    study, _ = _study(tmp_path, READERS, readings=readings)
    with pytest.raises(ClaimladderError, match="GHOST"):
        run_ladder(study, rungs=[6])


def test_no_reader_or_deployment_section_adds_nothing(tmp_path):
    study, _ = _study(tmp_path)
    evidence = run_ladder(study, rungs=[0, 6])
    assert not [f for f in evidence.findings if f.check.startswith(("readers.", "deployment."))]


# -- deployment ----------------------------------------------------------------------------


def test_smd_formulas():
    # Austin (2009) eq. 1 and 2, by hand
    assert standardized_difference(60, 10, 50, 20) == pytest.approx(10 / math.sqrt(250))
    assert standardized_difference(1, 0, 1, 0) == 0
    assert standardized_difference(2, 0, 1, 0) == math.inf
    from claimladder.ladder._deployment import _proportion_smd

    assert _proportion_smd(0.4, 0.6) == pytest.approx(-0.2 / math.sqrt((0.24 + 0.24) / 2))


def _loop_pv(y, call, groups, prevalence, n_resamples, rng):
    """Plain loop over bootstrap replicates: draw patients, recount, apply Bayes."""
    patients = np.unique(groups)
    rows = {p: np.flatnonzero(groups == p) for p in patients}
    out = []
    for _ in range(n_resamples):
        idx = np.concatenate([rows[p] for p in rng.choice(patients, size=len(patients))])
        yy, cc = y[idx], call[idx]
        se = (cc & yy).sum() / yy.sum()
        sp = (~cc & ~yy).sum() / (~yy).sum()
        out.append(se * prevalence / (se * prevalence + (1 - sp) * (1 - prevalence)))
    return np.quantile(out, [0.025, 0.975])


def test_predictive_values_bayes_clusters_and_loop_reference():
    rng = np.random.default_rng(3)
    n = 400
    y = rng.random(n) < 0.3
    call = np.where(y, rng.random(n) < 0.8, rng.random(n) < 0.15)
    groups = np.arange(n).astype(str)
    pv = predictive_values(y, call, groups, prevalence=0.05, n_resamples=4000,
                           confidence_level=0.95, rng=0)
    se, sp = call[y].mean(), 1 - call[~y].mean()
    assert pv["sensitivity"].value == pytest.approx(se)
    assert pv["ppv"].value == pytest.approx(se * 0.05 / (se * 0.05 + (1 - sp) * 0.95))
    assert pv["npv"].value == pytest.approx(sp * 0.95 / (sp * 0.95 + (1 - se) * 0.05))
    for e in pv.values():
        assert e.ci.low <= e.value <= e.ci.high
    low, high = _loop_pv(y, call, groups, 0.05, 4000, np.random.default_rng(1))
    assert pv["ppv"].ci.low == pytest.approx(low, abs=0.02)
    assert pv["ppv"].ci.high == pytest.approx(high, abs=0.02)
    # two identical images per patient: the patient bootstrap gives the same replicates
    twice = predictive_values(np.repeat(y, 2), np.repeat(call, 2), np.repeat(groups, 2),
                              prevalence=0.05, n_resamples=500, confidence_level=0.95, rng=7)
    once = predictive_values(y, call, groups, prevalence=0.05, n_resamples=500,
                             confidence_level=0.95, rng=7)
    for name in once:
        assert twice[name].ci == once[name].ci and twice[name].n_clusters == n


DEPLOYMENT = """
[deployment]
prevalence = 0.05
scanner_vendors = ["Acme", "Borealis", "Cygnus"]
site_types = ["emergency"]
site_type_column = "site_type"
[deployment.numeric]
age = {mean = 75, sd = 10}
[deployment.categories]
sex = {F = 0.5, M = 0.5}
"""


def test_deployment_mismatches_reach_not_validated_for(tmp_path):
    cohort, _ = _cohort()
    study, _ = _study(tmp_path, DEPLOYMENT)
    cohort.assign(site_type="inpatient").to_csv(tmp_path / "cohort.csv", index=False)
    evidence = run_ladder(study, rungs=[0])
    found = _findings(evidence, "deployment.")
    chars = found[("deployment.characteristics", None)]
    assert chars.status is Status.WARN
    age = chars.table[chars.table["variable"] == "age"].iloc[0]
    test = cohort[cohort["split"] == "test"]["age"]
    assert age["smd"] == pytest.approx(standardized_difference(test.mean(), test.std(), 75, 10))
    coverage = found[("deployment.coverage", None)]
    assert coverage.status is Status.WARN
    assert set(coverage.table.loc[~coverage.table["covered"], "value"]) == {"Cygnus",
                                                                           "emergency"}
    prevalence = found[("deployment.prevalence", None)]
    observed = cohort.loc[test.index, "label"].mean()
    assert prevalence.estimate.value == pytest.approx(observed / 0.05)
    assert prevalence.status is Status.WARN
    pv = found[("deployment.predictive_values", "internal_test")]
    assert pv.params["deployment_prevalence"] == 0.05
    nvf = evidence.not_validated_for
    assert any("age" in e and "SMD" in e for e in nvf)
    assert any("'Cygnus'" in e for e in nvf) and any("'emergency'" in e for e in nvf)
    assert any("prevalence 5.0%" in e for e in nvf)
    jsonschema.validate(json.loads(evidence.to_json()), evidence_schema())


def test_matching_deployment_is_quiet_and_ppv_criterion_applies(tmp_path):
    cohort, _ = _cohort()
    test = cohort[cohort["split"] == "test"]
    f = round(float((test["sex"] == "F").mean()), 3)
    extra = f"""
    [deployment]
    prevalence = {test['label'].mean():.3f}
    scanner_vendors = ["Acme", "Borealis"]
    [deployment.numeric]
    age = {{mean = {test['age'].mean():.2f}, sd = {test['age'].std():.2f}}}
    [deployment.categories]
    sex = {{F = {f}, M = {1 - f:.3f}}}
    [criteria]
    deployment.min_ppv = 0.99
    """
    study, _ = _study(tmp_path, extra)
    evidence = run_ladder(study, rungs=[0])
    found = _findings(evidence, "deployment.")
    for check in ("deployment.characteristics", "deployment.coverage", "deployment.prevalence"):
        assert found[(check, None)].status is Status.PASS, check
    assert not [e for e in evidence.not_validated_for if e.startswith("deployment")]
    pv = found[("deployment.predictive_values", "internal_test")]
    assert pv.status is Status.FAIL and pv.criterion == "PPV >= 0.99"


def test_reference_cohort_and_spec_errors(tmp_path):
    reference = pd.DataFrame({"age": np.full(50, 80), "sex": ["F"] * 50,
                              "manufacturer": ["Cygnus"] * 50,
                              "label": [1] * 5 + [0] * 45})
    reference.to_csv(tmp_path / "reference.csv", index=False)
    study, _ = _study(tmp_path, '\n[deployment]\nreference_cohort = "reference.csv"\n')
    found = _findings(run_ladder(study, rungs=[0]), "deployment.")
    table = found[("deployment.characteristics", None)].table
    assert set(table["source"]) == {"reference cohort"} and {"age", "sex"} <= set(
        table["variable"])
    assert found[("deployment.prevalence", None)].params["deployment_prevalence"] == 0.1
    assert found[("deployment.coverage", None)].status is Status.WARN
    for extra, match in [
        ("\n[deployment]\nprevalence = 1.5\n", "prevalence in \\(0, 1\\)"),
        ("\n[deployment.categories]\nsex = {F = 0.7, M = 0.7}\n", "fractions summing to 1"),
        ("\n[deployment.numeric]\nagee = {mean = 1, sd = 1}\n", "Did you mean 'age'"),
        ("\n[deployment]\nsite_types = ['ed']\n", "site_type_column"),
    ]:
        with pytest.raises(StudySpecError, match=match):
            study, _ = _study(tmp_path, extra)
            run_ladder(study, rungs=[0])
