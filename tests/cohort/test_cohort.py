import numpy as np
import pandas as pd
import pytest

from claimladder import AlignmentError, CohortSchemaError, StudySpecError
from claimladder.cohort import (
    Cohort,
    ColumnRoles,
    apply_flow,
    align_scores,
    assign_partitions,
    evaluate_rule,
    load_cohort,
    load_predictions,
    missingness,
    table_one,
)


@pytest.fixture
def table():
    return pd.DataFrame({
        "image_id": ["i1", "i2", "i3", "i4", "i5", "i6"],
        "patient_id": ["p1", "p1", "p2", "p3", "p4", "p5"],
        "label": [1, 0, 1, 0, np.nan, 0],
        "age": [40, 41, 12, 70, 55, np.nan],
        "sex": ["F", "F", "M", None, "M", "F"],
        "site": ["A", "A", "B", "B", "C", "C"],
        "split": ["train", "train", "test", "test", "ext", "ext"],
    })


@pytest.fixture
def cohort(table):
    return Cohort(table=table, roles=ColumnRoles(site="site", attributes=("age", "sex")))


def test_missing_role_column_names_file_and_suggests(table):
    with pytest.raises(CohortSchemaError) as info:
        Cohort(table=table, roles=ColumnRoles(patient_id="patientid"), source="cohort.csv")
    message = str(info.value)
    assert "cohort.csv" in message and "'patientid'" in message
    assert "Did you mean 'patient_id'?" in message and "[data.columns]" in message


def test_duplicated_image_id_lists_ids_and_lines(table):
    table.loc[3, "image_id"] = "i1"
    with pytest.raises(CohortSchemaError, match=r"'i1'.*lines 2, 5"):
        Cohort(table=table, roles=ColumnRoles())


def test_missing_patient_id_names_lines(table):
    table.loc[2, "patient_id"] = None
    with pytest.raises(CohortSchemaError, match="line 4"):
        Cohort(table=table, roles=ColumnRoles())


def test_positive_label_absent(table):
    with pytest.raises(CohortSchemaError, match="positive_label"):
        Cohort(table=table, roles=ColumnRoles(), positive_label="yes")


def test_flow_counts_every_exclusion(cohort):
    flow = apply_flow(cohort, include=["age >= 18"], exclude=["site == 'C'"])
    steps = flow.steps.set_index("step")
    assert steps.loc["source cohort", "n_images"] == 6
    assert steps.loc["no reference label", "n_images_removed"] == 1  # i5
    assert steps.loc["include: age >= 18", "n_images_removed"] == 2  # i3 (12), i6 (NaN age)
    assert steps.loc["exclude: site == 'C'", "n_images_removed"] == 0  # i5, i6 already gone
    assert flow.included.image_ids.tolist() == ["i1", "i2", "i4"]
    assert sorted(flow.excluded["image_id"]) == ["i3", "i5", "i6"]
    assert flow.steps["n_images_removed"].sum() + flow.included.n_images == 6


def test_rule_errors_are_spec_errors(cohort):
    with pytest.raises(StudySpecError, match="Did you mean 'age'"):
        evaluate_rule(cohort.table, "agee >= 18", context="[cohort] include[0]")
    with pytest.raises(StudySpecError, match="cannot be evaluated"):
        evaluate_rule(cohort.table, "age >=", context="[cohort] include[0]")
    with pytest.raises(StudySpecError, match="true/false"):
        evaluate_rule(cohort.table, "age + 1", context="[cohort] include[0]")


def test_partitions_and_overlap(cohort):
    parts = assign_partitions(cohort, development="split == 'train'",
                              internal_test="split == 'test' or image_id == 'i1'",
                              external={"site_C": "site == 'C'"})
    assert parts.kinds == {"development": "development", "internal_test": "internal_test",
                           "site_C": "external"}
    assert parts.overlaps().to_dict("records") == [
        {"first": "development", "second": "internal_test", "n_images": 1}]
    assert not parts.unassigned.any()


def test_table_one_and_missingness(cohort):
    parts = {"train": cohort.table["split"].eq("train").to_numpy()}
    t1 = table_one(cohort, parts)
    sex_all = t1[(t1.variable == "sex") & (t1.partition == "all")].set_index("level")
    assert sex_all.loc["F", "n"] == 3 and sex_all.loc["missing", "n"] == 1
    age_train = t1[(t1.variable == "age") & (t1.partition == "train")].iloc[0]
    assert age_train["mean"] == pytest.approx(40.5)
    assert age_train["sd"] == pytest.approx(np.std([40, 41], ddof=1))
    miss = missingness(cohort, parts).set_index(["column", "partition"])
    assert miss.loc[("age", "all"), "n_missing"] == 1
    assert miss.loc[("label", "all"), "fraction"] == pytest.approx(1 / 6)


def test_load_cohort_keeps_ids_as_strings(tmp_path):
    path = tmp_path / "cohort.csv"
    path.write_text("image_id,patient_id,label\n007,001,1\n008,001,0\n")
    cohort = load_cohort(path)
    assert cohort.image_ids.tolist() == ["007", "008"]
    assert cohort.patient_ids.tolist() == ["001", "001"]


@pytest.fixture
def pred_file(tmp_path):
    def write(text):
        path = tmp_path / "predictions.csv"
        path.write_text(text)
        return path
    return write


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ("i1,0.2\ni2,nan\n", r"1 missing \(NaN\).*line 3"),
        ("i1,0.2\ni2,1.7\n", r"\[0, 1\].*line 3.*logits"),
        ("i1,0.2\ni2,high\n", "non-numeric"),
        ("i1,0.2\ni1,0.3\n", "repeats"),
    ],
    ids=["nan", "out-of-range", "text", "duplicate"],
)
def test_bad_predictions(pred_file, rows, match):
    with pytest.raises(CohortSchemaError, match=match):
        load_predictions(pred_file("image_id,score\n" + rows))


def test_alignment_errors(cohort, pred_file):
    preds = load_predictions(pred_file("image_id,score\ni1,0.1\ni2,0.2\nzz,0.3\n"))
    with pytest.raises(AlignmentError, match="not in"):
        align_scores(cohort, preds)
    preds = load_predictions(pred_file("image_id,score\ni1,0.1\ni2,0.2\n"))
    with pytest.raises(AlignmentError, match="4 included image"):
        align_scores(cohort, preds)
    sub = cohort.subset(cohort.table["image_id"].isin(["i2", "i1"]).to_numpy())
    assert align_scores(sub, preds).tolist() == [0.1, 0.2]


def test_several_models_need_a_candidate(cohort, pred_file):
    preds = load_predictions(pred_file("image_id,score,model\ni1,0.1,a\ni1,0.2,b\n"))
    sub = cohort.subset(cohort.table["image_id"].eq("i1").to_numpy())
    with pytest.raises(AlignmentError, match="candidate_model"):
        align_scores(sub, preds)
    assert align_scores(sub, preds, model="b").tolist() == [0.2]
    with pytest.raises(AlignmentError, match="Did you mean 'b'"):
        align_scores(sub, preds, model="bb")
