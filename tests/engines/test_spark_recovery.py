"""A Spark warehouse has one writer process, and a transaction a killed writer left half done is rolled back.

Parquet has no transactions: the adapter links a table's files aside before it first changes the table and
marks the transaction done by renaming its folder. The next writable open puts back the tables of every
folder not marked done (the caller never saw that transaction commit), ignores a table whose links were
still being made (it was not changed yet), and drops the folders of committed ones. A second process that
opens the warehouse for writing meanwhile is refused with the holder named; readers may open it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest
from tests.conftest import spark_warehouse_url

from touchpoint.errors import WarehouseError
from touchpoint.warehouse import Warehouse
from touchpoint.warehouse.spark_engine import _recover_transactions

_SOURCES = pa.schema(
    [
        ("name", pa.string()),
        ("write_key_hash", pa.string()),
        ("key_prefix", pa.string()),
        ("created_at", pa.timestamp("us")),
    ]
)


def _sources(*names: str) -> pa.Table:
    at = datetime(2026, 3, 1)
    return pa.table(
        {
            "name": list(names),
            "write_key_hash": ["h"] * len(names),
            "key_prefix": ["k"] * len(names),
            "created_at": [at] * len(names),
        },
        schema=_SOURCES,
    )


_KILLED_WRITER = """
import sys, time
from datetime import date, datetime
import pyarrow as pa
from touchpoint.warehouse import Warehouse
wh = Warehouse.open(sys.argv[1])
with wh.write() as tx:
    tx.replace("sources", pa.table({"name": ["only"], "write_key_hash": ["h"], "key_prefix": ["k"],
                                    "created_at": [datetime(2026, 3, 2)]}))
    tx.append("spend", pa.table({"date": [date(2026, 3, 2)], "channel": ["search"], "campaign": [""],
                                 "amount": [10.0]}))
    print("rewritten", flush=True)
    time.sleep(600)
"""


def test_a_killed_writers_transaction_is_rolled_back_and_a_second_writer_refused(
    spark_session: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "spark"
    url = spark_warehouse_url(spark_session, folder)
    wh = Warehouse.open(url)
    try:
        wh.append("sources", _sources("a", "b", "c"))
    finally:
        wh.close()

    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None
        line = writer.stdout.readline()
        assert line.strip() == "rewritten", writer.stderr.read() if writer.stderr else line

        with pytest.raises(WarehouseError) as refused:
            Warehouse.open(url)
        assert f"PID {writer.pid}" in str(refused.value) and "one process writes" in str(refused.value)

        reader = Warehouse.open(url, read_only=True)  # readers are not isolated: they see the rewrite in progress
        try:
            assert sorted(reader.to_arrow(reader.table("sources").name).to_pylist()) == ["only"]
        finally:
            reader.close()
        assert os.listdir(folder / ".tp_transactions"), "a reader's open removed the writer's links"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.communicate(timeout=60)

    wh = Warehouse.open(url)  # the writer is gone: its lock with it, and its transaction rolled back
    try:
        assert sorted(wh.to_arrow(wh.table("sources").name).to_pylist()) == ["a", "b", "c"]
        assert wh.count("spend") == 0
        assert os.listdir(folder / ".tp_transactions") == []
        wh.append("sources", _sources("d"))  # and this process writes now
        assert wh.count("sources") == 4
    finally:
        wh.close()


def _folder_with(path: Path, files: dict[str, bytes]) -> None:
    path.mkdir(parents=True)
    for name, data in files.items():
        (path / name).write_bytes(data)


def test_recovery_restores_unfinished_transactions_only(tmp_path: Path) -> None:
    """File level: an unfinished transaction's tables are put back, a table still being linked aside
    (``*.partial``: not changed yet) and a committed transaction (``*.done``) are left as they are."""
    root = tmp_path / "wh"
    _folder_with(root / "a", {"part-new.parquet": b"new"})  # rewritten by the unfinished transaction
    _folder_with(root / "b", {"part-b.parquet": b"b", "part-b2.parquet": b"b2"})  # being linked when killed
    _folder_with(root / "c", {"part-c-new.parquet": b"c new"})  # rewritten by a committed transaction
    tx = root / ".tp_transactions"
    _folder_with(tx / "t1" / "a", {"part-old.parquet": b"old"})
    _folder_with(tx / "t1" / "b.partial", {"part-b.parquet": b"b"})
    _folder_with(tx / "t2.done" / "c", {"part-c-old.parquet": b"c old"})

    _recover_transactions(str(root))
    _recover_transactions(str(root))  # idempotent

    assert sorted(os.listdir(root / "a")) == ["part-old.parquet"]
    assert (root / "a" / "part-old.parquet").read_bytes() == b"old"
    assert sorted(os.listdir(root / "b")) == ["part-b.parquet", "part-b2.parquet"]
    assert sorted(os.listdir(root / "c")) == ["part-c-new.parquet"]
    assert os.listdir(tx) == []
