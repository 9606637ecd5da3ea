"""Spark warehouse URLs: what each names, and the locations refused with a hint (no Spark is started)."""

from __future__ import annotations

import pytest

from touchpoint.errors import WarehouseError
from touchpoint.warehouse.spark_engine import parse_url


def test_a_local_url_names_its_directory_and_threads(tmp_path: object) -> None:
    settings = parse_url(f"spark+local://{tmp_path}?threads=2&partitions=4")
    assert (settings["master"], settings["warehouse"], settings["partitions"]) == ("local[2]", str(tmp_path), "4")
    assert parse_url(f"spark://m:7077?warehouse=file://{tmp_path}")["warehouse"] == str(tmp_path)


@pytest.mark.parametrize("location", ["hdfs://nn/touchpoint", "s3a://bucket/touchpoint"])
def test_a_location_that_is_not_a_directory_here_is_refused_with_the_fix(location: str) -> None:
    with pytest.raises(WarehouseError, match="not a directory on this machine") as info:
        parse_url(f"spark://master:7077?warehouse={location}")
    assert "mounts at the same path" in (info.value.hint or "")


def test_a_cluster_url_without_a_location_is_refused() -> None:
    with pytest.raises(WarehouseError, match="names no warehouse location"):
        parse_url("sc://host:15002")
