"""Reading aggregated path files in ChannelAttribution's layout."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from touchpoint.errors import InvalidInput, NotFound
from touchpoint.journeys.pathdata import PathData, read_path_file


def test_semicolon_csv_with_arrow_separator(tmp_path: Path) -> None:
    f = tmp_path / "paths.csv"
    f.write_text(
        "path;total_conversions;total_conversion_value;total_null\n"
        "eta > iota > alpha;1;10.5;0\n"
        "iota ;0;0;3\n"
        " alpha>alpha ;2;7;1\n"
    )
    data = read_path_file(
        f,
        conversions_column="total_conversions",
        value_column="total_conversion_value",
        nulls_column="total_null",
    )
    assert data.channels == ["alpha", "eta", "iota"]
    assert data.path_strings() == ["eta > iota > alpha", "iota", "alpha > alpha"]
    assert list(data.conversions) == [1, 0, 2]
    assert list(data.value) == [10.5, 0, 7]
    assert list(data.nulls) == [0, 3, 1]


def test_custom_separator_and_missing_optional_columns(tmp_path: Path) -> None:
    f = tmp_path / "paths.csv"
    f.write_text("path,conversions\na;b;;c,2\nb,1\n")
    data = read_path_file(f, sep=";")
    assert data.path_strings(">") == ["a>b>c", "b"]
    assert list(data.nulls) == [0, 0] and list(data.value) == [0, 0]


def test_parquet(tmp_path: Path) -> None:
    f = tmp_path / "paths.parquet"
    pq.write_table(pa.table({"path": ["x > y"], "conversions": [3], "value": [9.0], "nulls": [1]}), f)
    assert read_path_file(f).path_strings() == ["x > y"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("route,conversions\na,1\n", "no column 'path'"),
        ("path,conversions\na,-1\n", "conversions of path 1"),
        ("path,conversions\n>,1\n", "path 1 has no channels"),
        ("path,conversions\na,many\n", "not numeric"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(InvalidInput, match=message):
        read_path_file(f)


def test_missing_file() -> None:
    with pytest.raises(NotFound, match="does not exist"):
        read_path_file("/nonexistent/paths.csv")


def test_from_lists_validates() -> None:
    with pytest.raises(InvalidInput, match="nulls has 1 entries for 2 paths"):
        PathData.from_lists([["a"], ["b"]], nulls=[1])
