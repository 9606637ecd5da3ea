"""The engine tests' Spark cases: PySpark leaves each result's loopback socket to the garbage collector
(``pyspark.util._load_from_socket``: "closed when garbage-collected"), which warns ResourceWarning, an
error in this suite. Ignored for the tests that run on Spark only (a Spark parameter, or a fixture that
starts Spark), so a leak anywhere else still fails; each such test collects its garbage at teardown, so no
socket of it is left for a later test to meet."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

SPARK_SOCKETS = pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")
#: Starting Spark's JVM forks; on a worker that already ran the MMM's tests, JAX warns at every fork.
JAX_FORK = pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")


def _on_spark(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "spark" in callspec.params.values():
        return True
    fixtures = getattr(item, "fixturenames", ())
    return "spark" in item.keywords or "spark_session" in fixtures or "spark_connect" in fixtures


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _on_spark(item):
            item.add_marker(SPARK_SOCKETS)
            item.add_marker(JAX_FORK)


@pytest.fixture(autouse=True)
def _spark_sockets_collected(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if _on_spark(request.node):
        gc.collect()  # under the test's own filter: its sockets are closed now, not in another test
