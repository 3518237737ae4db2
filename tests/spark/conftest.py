"""One local Spark session for the Spark tests: two cores, few shuffle partitions, no UI.

The tests' tables have thousands of rows, so compiling code costs more than running it: the
JVM stops at its quick compiler and Spark interprets whole stages (measured: the first build of
the three tables 21 s → 12 s on a loaded two-core machine). Settings for tests only; a real
build keeps Spark's defaults.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from pipelines.features.spark_session import SparkSettings, spark_session

TEST_SPARK = SparkSettings(
    master="local[2]",
    app_name="risk-tests",
    shuffle_partitions=2,
    conf={
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        "spark.sql.codegen.wholeStage": "false",
        "spark.ui.showConsoleProgress": "false",
    },
)


# A Spark test that has not finished in this long is stuck, not slow (the slowest takes about
# a minute on two loaded cores): it fails with its stack instead of holding CI to its limit.
SPARK_TEST_TIMEOUT_S = 600


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.timeout(SPARK_TEST_TIMEOUT_S))


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    with spark_session(TEST_SPARK) as session:
        yield session
