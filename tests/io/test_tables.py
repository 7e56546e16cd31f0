"""read_table: CSV/TSV/gzip/Parquet, dtype passthrough, and error messages."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from claimladder._core import TableReadError
from claimladder.io import TABLE_EXTENSIONS, read_table

CSV = "image_id,patient_id,age,label\nimg1,007,54,1\nimg2,012,61,0\nimg3,007,,1\n"


def test_csv(tmp_path):
    path = tmp_path / "cohort.csv"
    path.write_text(CSV)
    table = read_table(path)
    assert list(table.columns) == ["image_id", "patient_id", "age", "label"]
    assert table["label"].tolist() == [1, 0, 1]
    assert table["patient_id"].tolist() == [7, 12, 7]  # pandas' own parsing, untouched
    assert table["age"].isna().tolist() == [False, False, True]


def test_dtype_passthrough_keeps_leading_zeros(tmp_path):
    path = tmp_path / "cohort.csv"
    path.write_text(CSV)
    table = read_table(path, dtype={"patient_id": str})
    assert table["patient_id"].tolist() == ["007", "012", "007"]
    everything = read_table(path, dtype=str)
    assert everything["label"].tolist() == ["1", "0", "1"]


@pytest.mark.parametrize("name", ["cohort.tsv", "cohort.TSV"])
def test_tsv(tmp_path, name):
    (tmp_path / name).write_text(CSV.replace(",", "\t"))
    pd.testing.assert_frame_equal(
        read_table(tmp_path / name, dtype={"patient_id": str}),
        pd.read_csv(tmp_path / name, sep="\t", dtype={"patient_id": str}),
    )


@pytest.mark.parametrize(("name", "sep"), [("c.csv.gz", ","), ("c.tsv.gz", "\t")])
def test_gzip(tmp_path, name, sep):
    (tmp_path / name).write_bytes(gzip.compress(CSV.replace(",", sep).encode()))
    table = read_table(tmp_path / name, dtype={"patient_id": str})
    assert table["patient_id"].tolist() == ["007", "012", "007"]
    assert table.shape == (3, 4)


@pytest.mark.parametrize("name", ["p.parquet", "p.pq"])
def test_parquet_round_trip(tmp_path, name):
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame(
        {"image_id": ["a", "b"], "patient_id": ["007", "012"], "score": [0.25, 0.75]}
    )
    frame.to_parquet(tmp_path / name, engine="pyarrow")
    pd.testing.assert_frame_equal(read_table(tmp_path / name), frame)
    converted = read_table(tmp_path / name, dtype={"score": "float32"})
    assert converted["score"].dtype == "float32"


def test_parquet_dtype_errors(tmp_path):
    pytest.importorskip("pyarrow")
    pd.DataFrame({"a": ["x"]}).to_parquet(tmp_path / "p.parquet")
    with pytest.raises(TableReadError, match=r"p\.parquet.*dtype.*columns are \['a'\]"):
        read_table(tmp_path / "p.parquet", dtype={"b": str})
    with pytest.raises(TableReadError, match="dtype"):
        read_table(tmp_path / "p.parquet", dtype={"a": "int64"})


def test_header_only_csv_is_an_empty_table(tmp_path):
    (tmp_path / "h.csv").write_text("image_id,label\n")
    table = read_table(tmp_path / "h.csv")
    assert table.shape == (0, 2)


def test_missing_file(tmp_path):
    with pytest.raises(TableReadError, match=r"nope\.csv.*does not exist.*Check the path"):
        read_table(tmp_path / "nope.csv")


def test_directory(tmp_path):
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(TableReadError, match="directory"):
        read_table(tmp_path / "d.csv")


def test_empty_file(tmp_path):
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(TableReadError, match=r"e\.csv.*empty.*header row"):
        read_table(tmp_path / "e.csv")


@pytest.mark.parametrize(
    "text",
    [
        "a,b\n1,2,3\n4,5\n",  # pandas would silently shift this row into an index
        "a,b\n1,2\n3,4,5\n",
    ],
    ids=["first-row", "later-row"],
)
def test_row_with_too_many_fields(tmp_path, text):
    (tmp_path / "r.csv").write_text(text)
    first = r"more fields than the header \(line 2: 3 fields, not 2\)"
    with pytest.raises(TableReadError, match=rf"r\.csv.*({first}|Expected 2 fields in line 3)"):
        read_table(tmp_path / "r.csv")


def test_unbalanced_quote(tmp_path):
    (tmp_path / "q.csv").write_text('a,b\n"1,2\n')
    with pytest.raises(TableReadError, match=r"q\.csv.*cannot be parsed.*quotes"):
        read_table(tmp_path / "q.csv")


def test_wrong_encoding(tmp_path):
    (tmp_path / "l.csv").write_bytes("name,site\nJosé,Málaga\n".encode("latin-1"))
    with pytest.raises(TableReadError, match=r"l\.csv.*utf-8.*encoding='latin-1'"):
        read_table(tmp_path / "l.csv")
    assert read_table(tmp_path / "l.csv", encoding="latin-1")["name"].tolist() == ["José"]


def test_dtype_that_does_not_fit(tmp_path):
    (tmp_path / "t.csv").write_text("age\n54\nunknown\n")
    with pytest.raises(TableReadError, match=r"t\.csv.*dtype"):
        read_table(tmp_path / "t.csv", dtype={"age": "int64"})


def test_truncated_gzip(tmp_path):
    data = gzip.compress((CSV * 200).encode())
    (tmp_path / "t.csv.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(TableReadError, match=r"t\.csv\.gz"):
        read_table(tmp_path / "t.csv.gz")


def test_corrupt_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    (tmp_path / "c.parquet").write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(TableReadError, match=r"c\.parquet.*Parquet"):
        read_table(tmp_path / "c.parquet")
    (tmp_path / "z.parquet").write_bytes(b"")
    with pytest.raises(TableReadError, match=r"z\.parquet"):
        read_table(tmp_path / "z.parquet")


def test_unknown_extension_lists_supported(tmp_path):
    (tmp_path / "cohort.xlsx").write_bytes(b"PK")
    with pytest.raises(TableReadError) as info:
        read_table(tmp_path / "cohort.xlsx")
    message = str(info.value)
    assert "cohort.xlsx" in message and "'.xlsx'" in message
    for ext in TABLE_EXTENSIONS:
        assert ext in message


def test_typo_extension_suggests(tmp_path):
    (tmp_path / "cohort.cvs").write_text(CSV)
    with pytest.raises(TableReadError, match=r"Did you mean '\.csv'"):
        read_table(tmp_path / "cohort.cvs")


def test_missing_pyarrow_names_the_extra(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *args, **kwargs)

    (tmp_path / "p.parquet").write_bytes(b"")
    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(TableReadError, match=r"pip install 'claimladder\[parquet\]'"):
        read_table(tmp_path / "p.parquet")
