"""A Spark Connect server as the warehouse (``sc://127.0.0.1:PORT?warehouse=DIR``): the server (tests/conftest.py
``spark_connect``, started from pyspark's own jars) runs Spark and writes the Parquet tables; this process holds a
remote session per warehouse, beside the session's local Spark. The parity tests run on it too
(tests/engines/test_parity.py, engine ``spark-connect``); here, every kind of write in one transaction, a failed
transaction rolled back, and the rows found again by a new remote session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from tests.conftest import SparkConnect
from tests.engines.test_adapter_operations import KEYED, _kv, _overrides, _state
from tests.engines.test_spark_recovery import _sources

from touchpoint.warehouse import Warehouse


def _everything(wh: Warehouse) -> dict[str, Any]:
    names = wh.to_arrow(wh.table("sources").name).to_pylist()
    overrides = wh.to_arrow(wh.table("identity_overrides").id_value).to_pylist()
    return {"sources": sorted(names), KEYED: _state(wh), "identity_overrides": sorted(overrides)}


def test_writes_commit_roll_back_and_are_read_again_by_a_new_remote_session(
    spark_connect: SparkConnect, tmp_path: Path
) -> None:
    folder = tmp_path / "lake"
    url = spark_connect.warehouse_url(folder)
    with Warehouse.open(url) as wh:
        assert type(wh.spark).__module__ == "pyspark.sql.connect.session"  # Spark runs in the server
        with wh.write() as tx:
            assert tx.append("sources", _sources("a", "b", "c")) == 3
            assert tx.insert_new(KEYED, _kv(["k1", "k2"], ["1", "2"])) == 2
            assert tx.upsert(KEYED, _kv(["k2", "k3"], ["two", "3"]), ["key"]) == 2
            tx.update(KEYED, {"status": "one"}, key="key", value="k1")
            tx.delete("sources", "name", ["b"])
            assert tx.replace("identity_overrides", _overrides("x", "y")) == 2
            t = wh.table("identity_overrides")  # rows computed from the table they replace
            assert tx.replace("identity_overrides", t.mutate(id_value=t.id_value + "!")) == 2
        committed = _everything(wh)
        assert committed == {
            "sources": ["a", "c"],
            KEYED: {"k1": "one", "k2": "two", "k3": "3"},
            "identity_overrides": ["x!", "y!"],
        }

        with pytest.raises(KeyError, match="stop"), wh.write() as tx:
            tx.replace("sources", _sources("only"))
            tx.append("identity_overrides", _overrides("z"))
            tx.delete(KEYED)
            assert wh.count(KEYED) == 0  # readers see a transaction in progress (docs/scaling.md)
            raise KeyError("stop")
        assert _everything(wh) == committed  # the server reads the files put back
        assert os.listdir(folder / ".tp_transactions") == []
        assert os.listdir(wh.scratch_folder) == []  # the rows staged for each rewrite are gone

    with Warehouse.open(url) as again:  # a new remote session: the tables registered again over their files
        assert _everything(again) == committed
    assert pq.read_table(folder / "sources", columns=["name"]).column("name").to_pylist() in (["a", "c"], ["c", "a"])


def test_rows_from_python_with_no_rows_keep_their_columns(spark_connect: SparkConnect, tmp_path: Path) -> None:
    # a remote session cannot infer a schema from an empty Arrow table (CANNOT_INFER_EMPTY_SCHEMA); an identity
    # rebuild with no refused link staged exactly that (tests/engines/test_parity.py, engine spark-connect)
    import ibis
    import pyarrow as pa

    empty = pa.table({"src": pa.array([], pa.int64()), "reason": pa.array([], pa.string())})
    with Warehouse.open(spark_connect.warehouse_url(tmp_path / "lake")) as wh:
        got = wh.to_arrow(ibis.memtable(empty))
        assert got.num_rows == 0 and got.schema.names == ["src", "reason"]
        assert [str(t) for t in got.schema.types] == ["int64", "string"]
