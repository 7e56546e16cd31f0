import textwrap

import pytest

from claimladder import StudySpecError
from claimladder.ladder import guess_roles, load_study, write_study_template

MINIMAL = """
[claim]
statement = "The model detects X"
[data]
cohort = "cohort.csv"
[partitions]
internal_test = "split == 'test'"
"""


def _write(tmp_path, text):
    path = tmp_path / "study.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_minimal_study_gets_defaults(tmp_path):
    study = load_study(_write(tmp_path, MINIMAL))
    assert study.metrics == {"primary": "roc_auc", "threshold": 0.5, "confidence_level": 0.95,
                             "n_resamples": 2000, "seed": 0}
    assert study.criterion("external", "max_auroc_drop") == 0.05
    assert study.cohort_path == tmp_path / "cohort.csv"
    assert study.roles.image_id == "image_id" and study.positive_label == 1
    assert len(study.spec_sha256) == 64


def test_criteria_override_defaults(tmp_path):
    study = load_study(_write(tmp_path, MINIMAL + "[criteria]\nexternal.max_auroc_drop = 0.1\n"))
    assert study.criterion("external", "max_auroc_drop") == 0.1
    assert study.criterion("bias", "min_group_size") == 30


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ("[metrcs]\nseed = 1\n", r"unknown key 'metrcs' in the top level\. Did you mean 'metrics'"),
        ("[metrics]\nconfidence_levl = 0.9\n", "Did you mean 'confidence_level'"),
        ("[metrics]\nconfidence_level = 1.5\n", r"confidence_level must be a number in \(0, 1\)"),
        ("[metrics]\nthreshold = 'high'\n", "threshold must be a probability"),
        ("[criteria]\nexternal.max_auroc_dorp = 0.1\n", "Did you mean 'max_auroc_drop'"),
        ("[partitions.external]\nsite_C = 3\n", "site_C must be a row filter"),
    ],
    ids=["section", "key", "range", "type", "criterion", "external"],
)
def test_spec_errors_name_the_key(tmp_path, extra, match):
    with pytest.raises(StudySpecError, match=match) as info:
        load_study(_write(tmp_path, MINIMAL + extra))
    assert "study.toml" in str(info.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(StudySpecError, match="not found.*claimladder init"):
        load_study(tmp_path / "nope.toml")
    with pytest.raises(StudySpecError, match="not valid TOML"):
        load_study(_write(tmp_path, "[claim\nstatement = 1"))
    with pytest.raises(StudySpecError, match=r"required `statement = \.\.\.` under \[claim\]"):
        load_study(_write(tmp_path, "[claim]\n[data]\ncohort='c.csv'\n"))
    with pytest.raises(StudySpecError, match="no test partition"):
        load_study(_write(tmp_path, "[claim]\nstatement='x'\n[data]\ncohort='c.csv'\n"))


def test_guess_roles_and_template_round_trip(tmp_path):
    import pandas as pd

    columns = ["ImageID", "PatientID", "Finding", "Hospital", "StudyDate", "Age", "Sex",
               "reader_1", "reader_2", "split"]
    roles = guess_roles(columns)
    assert roles["image_id"] == "ImageID" and roles["patient_id"] == "PatientID"
    assert roles["label"] == "Finding" and roles["site"] == "Hospital"
    assert roles["acquired_at"] == "StudyDate"
    assert roles["annotators"] == ["reader_1", "reader_2"]
    assert roles["attributes"] == ["Age", "Sex"]
    table = pd.DataFrame({c: ["x"] for c in columns}).assign(split="train")
    text = write_study_template("cohort.csv", table)
    study = load_study(_write(tmp_path, text))  # the template itself is a valid spec
    assert study.roles.label == "Finding"
    assert study.partitions["development"] == "split == 'train'"
