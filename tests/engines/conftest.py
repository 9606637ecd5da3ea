"""The engine tests' Spark cases: PySpark leaves each result's loopback socket to the garbage collector
(``pyspark.util._load_from_socket``: "closed when garbage-collected"), which warns ResourceWarning, an
error in this suite. Ignored for the tests that run on Spark only, so a leak anywhere else still fails."""

from __future__ import annotations

import pytest

SPARK_SOCKETS = pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_spark = callspec is not None and "spark" in callspec.params.values()
        if on_spark or "spark" in item.keywords:
            item.add_marker(SPARK_SOCKETS)
