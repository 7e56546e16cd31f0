import json
import re

import jsonschema
import pandas as pd
import pytest
from typer.testing import CliRunner

from claimladder import Evidence, evidence_schema
from claimladder.cli import app

runner = CliRunner()


def test_demo_end_to_end(demo_run):
    out, result = demo_run
    assert result.returncode == 0, result.stderr
    assert "Highest rung reached" in result.stdout
    assert str(out / "report.html") in result.stdout.replace("\n", "")
    evidence = json.loads((out / "evidence.json").read_text())
    jsonschema.validate(evidence, evidence_schema())
    checks = {f["check"]: f for f in evidence["findings"]}
    assert {"cohort.flow", "cohort.table1", "cohort.missingness", "cohort.partitions",
            "cohort.image_files", "internal.roc_auc", "internal.operating_point",
            "leakage.patient_overlap", "leakage.metadata_label", "leakage.filename_label",
            "leakage.dicom_phi", "leakage.pixel_markers", "internal.performance_by_partition",
            "external.auroc_drop", "bias.auroc_gap", "bias.subgroup_table", "calibration.ece",
            "calibration.reliability", "calibration.abstention", "utility.metadata_baseline",
            "utility.net_benefit", "utility.triage", "labels.agreement",
            "shortcuts.border_only", "shortcuts.masking", "robustness.gaussian_noise"} <= set(checks)
    auroc = checks["internal.roc_auc"]["estimate"]
    assert auroc["ci_low"] <= auroc["value"] <= auroc["ci_high"]
    assert auroc["n_clusters"] < auroc["n"]  # clustered by patient, several images each
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html
    assert not re.search(r"(src|href)=\"https?://", html)  # nothing fetched from the network
    assert (out / "summary.md").read_text().startswith("# ")


def test_demo_never_writes_patient_ids(demo_run):
    out, _ = demo_run
    cohort = pd.read_csv(out / "study" / "cohort.csv", dtype=str)
    html = (out / "report.html").read_text()
    text = (out / "evidence.json").read_text()
    for pid in cohort["patient_id"].unique()[:50]:
        assert pid not in html and f'"{pid}"' not in text


def _verify(study_dir, tmp_path, *args):
    return runner.invoke(app, ["verify", str(study_dir / "study.toml"), "--out",
                               str(tmp_path / "out"), *args])


def test_verify_runs_on_user_data_and_exits_by_verdict(study_copy, tmp_path):
    result = _verify(study_copy, tmp_path, "--rungs", "0,1")
    evidence = Evidence.from_json((tmp_path / "out" / "evidence.json").read_text())
    failed = any(v.status == "fail" for v in evidence.verdicts)
    assert result.exit_code == (1 if failed else 0), result.output


def _assert_user_error(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    for fragment in fragments:
        assert fragment in text, text


def _edit_csv(path, func):
    table = pd.read_csv(path, dtype={"image_id": str, "patient_id": str})
    func(table).to_csv(path, index=False)


def test_missing_column(study_copy, tmp_path):
    _edit_csv(study_copy / "cohort.csv", lambda t: t.rename(columns={"patient_id": "patient"}))
    _assert_user_error(_verify(study_copy, tmp_path), "cohort.csv", "'patient_id'",
                       "Did you mean 'patient'?", "[data.columns]")


def test_duplicated_image_id(study_copy, tmp_path):
    def dup(t):
        t.loc[5, "image_id"] = t.loc[2, "image_id"]
        return t
    _edit_csv(study_copy / "cohort.csv", dup)
    _assert_user_error(_verify(study_copy, tmp_path), "image_id must be unique", "lines 4, 7")


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (lambda t: t.assign(score=t["score"].where(t.index != 3)), ["missing (NaN)", "line 5"]),
        (lambda t: t.assign(score=t["score"].where(t.index != 0, 3.2)), ["[0, 1]", "line 2"]),
        (lambda t: t.iloc[10:], ["have no prediction", "run the model on those images"]),
        (lambda t: pd.concat([t, t.iloc[[0]].assign(image_id="GHOST-1")]), ["not in",
                                                                           "GHOST-1"]),
    ],
    ids=["nan-score", "score-out-of-range", "missing-predictions", "unknown-id"],
)
def test_bad_predictions(study_copy, tmp_path, edit, fragments):
    _edit_csv(study_copy / "predictions.csv", edit)
    _assert_user_error(_verify(study_copy, tmp_path), "predictions.csv", *fragments)


def test_mistyped_spec_key(study_copy, tmp_path):
    spec = study_copy / "study.toml"
    spec.write_text(spec.read_text().replace("confidence_level", "confidence_levle"))
    _assert_user_error(_verify(study_copy, tmp_path), "study.toml",
                       "Did you mean 'confidence_level'?")


def test_missing_files(study_copy, tmp_path):
    (study_copy / "cohort.csv").unlink()
    _assert_user_error(_verify(study_copy, tmp_path), "cohort.csv")
    _assert_user_error(runner.invoke(app, ["verify", str(tmp_path / "nope.toml")]),
                       "study spec not found")


def test_bad_rungs_option(study_copy, tmp_path):
    _assert_user_error(_verify(study_copy, tmp_path, "--rungs", "1,x"), "--rungs")


def test_corrupt_image_becomes_a_finding(study_copy, tmp_path):
    cohort = pd.read_csv(study_copy / "cohort.csv", dtype=str)
    row = cohort[(cohort["split"] == "test") & (cohort["quality"] == "good")].iloc[0]
    victim = study_copy / row["path"]
    victim.write_bytes(victim.read_bytes()[:200])
    result = _verify(study_copy, tmp_path, "--rungs", "0,1")
    assert result.exit_code in (0, 1), result.output
    evidence = json.loads((tmp_path / "out" / "evidence.json").read_text())
    finding = next(f for f in evidence["findings"] if f["check"] == "cohort.image_files")
    assert finding["status"] == "warn"
    assert row["image_id"] in finding["examples"]
    assert row["path"] in json.dumps(finding["table"])


def test_failed_run_keeps_previous_report(study_copy, tmp_path):
    assert _verify(study_copy, tmp_path, "--rungs", "0").exit_code in (0, 1)
    before = (tmp_path / "out" / "report.html").read_bytes()
    _edit_csv(study_copy / "predictions.csv", lambda t: t.iloc[5:])
    assert _verify(study_copy, tmp_path).exit_code == 2
    assert (tmp_path / "out" / "report.html").read_bytes() == before


def test_init_writes_a_valid_spec(study_copy, tmp_path):
    target = tmp_path / "study.toml"
    result = runner.invoke(app, ["init", str(study_copy / "cohort.csv"), "--out", str(target)])
    assert result.exit_code == 0, result.output
    text = target.read_text()
    assert 'patient_id = "patient_id"' in text and 'acquired_at = "study_date"' in text
    again = runner.invoke(app, ["init", str(study_copy / "cohort.csv"), "--out", str(target)])
    _assert_user_error(again, "already exists", "--force")


def test_report_rerenders_without_recomputing(demo_run, tmp_path):
    out, _ = demo_run
    result = runner.invoke(app, ["report", str(out / "evidence.json"), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report.html").read_text() == (out / "report.html").read_text()


def test_split_command_writes_a_patient_disjoint_manifest(study_copy, tmp_path):
    out = tmp_path / "split.json"
    result = runner.invoke(app, ["split", str(study_copy / "cohort.csv"), "--by", "patient",
                                 "--test-size", "0.25", "--out", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out.with_suffix(".csv"), dtype=str)
    sides = table.groupby("patient_id")["partition"].nunique()
    assert (sides == 1).all()
    assert set(table["partition"]) == {"development", "internal_test"}
    bad = runner.invoke(app, ["split", str(study_copy / "cohort.csv"), "--by", "sight"])
    _assert_user_error(bad, "sight")


def test_seal_is_verified_and_logged_on_every_run(study_copy, tmp_path):
    result = runner.invoke(app, ["seal", str(study_copy / "study.toml"), "internal_test"])
    assert result.exit_code == 0, result.output

    def provenance():
        runner.invoke(app, ["verify", str(study_copy / "study.toml"), "--out",
                            str(tmp_path / "out"), "--rungs", "0"])
        data = json.loads((tmp_path / "out" / "evidence.json").read_text())
        return {f["check"]: f for f in data["findings"] if f["check"].startswith("provenance")}

    first = provenance()
    assert first["provenance.sealed_test_set"]["status"] == "pass"
    assert "1 time" in first["provenance.sealed_access"]["message"]
    assert "2 time" in provenance()["provenance.sealed_access"]["message"]
    # Relabel one sealed case: the seal no longer matches and the run says so.
    cohort = pd.read_csv(study_copy / "cohort.csv", dtype=str)
    row = cohort.index[(cohort["split"] == "test") & (cohort["site"] == "A")
                       & (cohort["quality"] == "good") & (cohort["view"] != "LL")][0]
    cohort.loc[row, "label"] = "1" if cohort.loc[row, "label"] == "0" else "0"
    cohort.to_csv(study_copy / "cohort.csv", index=False)
    tampered = provenance()["provenance.sealed_test_set"]
    assert tampered["status"] == "fail" and "1" in tampered["message"]
    again = runner.invoke(app, ["seal", str(study_copy / "study.toml"), "internal_test"])
    _assert_user_error(again, "exist")


@pytest.fixture(scope="module")
def audit_demo(tmp_path_factory):
    """A small planted demo study (128 px) for `claimladder audit`."""
    from claimladder.datasets import make_demo_study

    return make_demo_study(tmp_path_factory.mktemp("audit") / "study", n_patients=80, rng=0)


def _outputs(out):
    return {name: (out / name).read_text() for name in ("evidence.json", "report.html",
                                                        "summary.md")}


@pytest.mark.slow
def test_audit_cohort_runs_the_leakage_checks_alone(audit_demo, tmp_path):
    out = tmp_path / "audit"
    result = runner.invoke(app, ["audit", "--cohort", str(audit_demo.cohort_path),
                                 "--split-column", "split", "--out", str(out)])
    assert result.exit_code == 1, result.output  # the planted leaks fail
    texts = _outputs(out)
    evidence = json.loads(texts["evidence.json"])
    jsonschema.validate(evidence, evidence_schema())
    checks = {f["check"]: f["status"] for f in evidence["findings"]}
    assert set(checks) == {"leakage.patient_overlap", "leakage.metadata_label",
                           "leakage.filename_label", "leakage.dicom_phi",
                           "leakage.near_duplicates", "leakage.pixel_markers",
                           "leakage.burned_in_text"}
    assert checks["leakage.filename_label"] == "fail" and checks["leakage.dicom_phi"] == "fail"
    assert {f["rung"] for f in evidence["findings"]} == {1}
    cohort = pd.read_csv(audit_demo.cohort_path, dtype=str)
    images = evidence["provenance"]["inputs"]["images"]
    assert images["count"] == len(cohort) and images["unreadable"] == 0
    assert evidence["provenance"]["audit"]["partitions"] == {
        "calib": "calibration", "external": "external", "test": "internal_test",
        "train": "development"}
    for pid in cohort["patient_id"].unique()[:50]:
        assert all(f'"{pid}"' not in t and f">{pid}<" not in t for t in texts.values())
    assert "leakage.near_duplicates" in result.output


@pytest.mark.slow
def test_audit_dicom_folder_shows_no_phi_values(tmp_path):
    import glob
    import os
    import site

    from claimladder.io import dicom_header_index

    folders = [f for root in site.getsitepackages()
               for f in glob.glob(os.path.join(root, "deid_data", "data", "ultrasounds"))]
    if not folders:
        pytest.skip("deid-data not installed (pip install deid-data)")
    out = tmp_path / "audit"
    result = runner.invoke(app, ["audit", "--dicom", folders[0], "--out", str(out)])
    assert result.exit_code == 1, result.output  # birth dates in the headers: dicom_phi fails
    texts = _outputs(out)
    evidence = json.loads(texts["evidence.json"])
    jsonschema.validate(evidence, evidence_schema())
    checks = {f["check"]: f["status"] for f in evidence["findings"]}
    assert checks["leakage.dicom_phi"] == "fail"
    assert checks["leakage.metadata_label"] == "not_evaluable"  # no labels in headers
    assert checks["leakage.burned_in_text"] in ("warn", "not_evaluable")
    headers = dicom_header_index(folders[0])
    values = set()
    for column in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber",
                   "InstitutionName", "ReferringPhysicianName", "StudyInstanceUID"):
        if column in headers.columns:
            values.update(str(v) for v in headers[column].dropna() if len(str(v)) >= 4)
    assert values
    for value in values:
        assert all(value not in t for t in texts.values()), value


@pytest.mark.parametrize(("args", "fragments"), [
    ([], ["exactly one of --cohort", "--dicom"]),
    (["--cohort", "c.csv", "--dicom", "."], ["exactly one of --cohort"]),
    (["--dicom", ".", "--split-column", "split"], ["apply to --cohort only"]),
], ids=["neither", "both", "dicom-with-cohort-options"])
def test_audit_usage_errors(args, fragments, tmp_path):
    _assert_user_error(runner.invoke(app, ["audit", *args, "--out", str(tmp_path)]), *fragments)


def test_audit_input_errors(audit_demo, tmp_path):
    cohort = str(audit_demo.cohort_path)
    _assert_user_error(runner.invoke(app, ["audit", "--cohort", cohort, "--split-column",
                                           "splitt", "--out", str(tmp_path)]),
                       "'splitt'", "Did you mean 'split'")
    _assert_user_error(runner.invoke(app, ["audit", "--cohort", cohort, "--split-column",
                                           "site", "--out", str(tmp_path)]),
                       "'A'", "name no partition kind")
    _assert_user_error(runner.invoke(app, ["audit", "--cohort", cohort, "--label", "lable",
                                           "--out", str(tmp_path)]), "--label", "'lable'")
    _assert_user_error(runner.invoke(app, ["audit", "--cohort", str(tmp_path / "none.csv"),
                                           "--out", str(tmp_path)]), "none.csv")
    _assert_user_error(runner.invoke(app, ["audit", "--dicom", str(tmp_path / "nope"),
                                           "--out", str(tmp_path)]), "is not a folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    _assert_user_error(runner.invoke(app, ["audit", "--dicom", str(empty), "--out",
                                           str(tmp_path)]), "no readable DICOM file")
