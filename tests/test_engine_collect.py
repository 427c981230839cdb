"""Collecting results: Arrow batches on both engines, Spark's result-size limit, the message."""

from __future__ import annotations

from pathlib import Path

import ibis
import pandas as pd
import pyarrow as pa
import pytest

from workbench import engine, runner
from workbench.errors import StepFailedError
from workbench.segments.data import upload


@pytest.mark.parametrize(
    ("size", "half"),
    [("8g", "4096m"), ("4096m", "2048m"), ("2G", "1024m"), ("512mb", "256m"), ("1t", "524288m")],
)
def test_half_memory(size, half):
    assert engine.half_memory(size) == half


def test_half_memory_of_an_unreadable_size_is_none():
    assert engine.half_memory("lots") is None


def test_driver_java_options_put_the_users_last():
    assert engine.driver_java_options() == " ".join(engine.DRIVER_JAVA_OPTIONS)
    mine = engine.driver_java_options(
        {"spark.driver.extraJavaOptions": " -XX:MaxHeapFreeRatio=50 "}
    )
    assert mine.startswith("-Duser.timezone=UTC ") and mine.endswith(" -XX:MaxHeapFreeRatio=50")


@pytest.mark.spark
def test_the_driver_jvm_runs_with_the_options_that_return_idle_heap(spark):
    # the JVM's own command line (what a local driver shares the machine with is bounded by it)
    args = list(
        spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments()
    )
    assert set(engine.DRIVER_JAVA_OPTIONS) <= set(args)
    assert spark._jvm.java.util.TimeZone.getDefault().getID() == "UTC"


def _grouped(con) -> ibis.Table:
    frame = pd.DataFrame({"customer_id": [f"c{i % 7}" for i in range(50)], "x": range(50)})
    names = ibis.memtable(pa.table({"customer_id": [f"c{i}" for i in range(5)], "k": range(5)}))
    table = upload(con, frame, "collect")
    joined = table.inner_join(names, "customer_id")
    return joined.group_by("k").aggregate(n=joined.count(), total=joined.x.sum()).order_by("k")


def _collected(table: ibis.Table) -> pd.DataFrame:
    batches = list(engine.arrow_batches(table, batch_rows=2))
    assert all(b.num_rows <= 2 for b in batches)
    return pa.Table.from_batches(batches).to_pandas().sort_values("k").reset_index(drop=True)


def test_arrow_batches_on_duckdb():
    got = _collected(_grouped(ibis.duckdb.connect()))
    assert got["n"].tolist() == [8, 7, 7, 7, 7] and got["total"].tolist() == [
        sum(range(0, 50, 7)),
        *[sum(range(k, 50, 7)) for k in range(1, 5)],
    ]


@pytest.mark.spark
def test_arrow_batches_on_spark_equal_duckdb(spark):
    # the result limit is half the driver memory (the tests' session has 2g); Spark fixes it
    # when the context starts, so a result above it cannot be provoked here
    assert spark.conf.get("spark.driver.maxResultSize") == "1024m"
    on_spark = _collected(_grouped(ibis.pyspark.connect(spark)))
    on_duck = _collected(_grouped(ibis.duckdb.connect()))
    pd.testing.assert_frame_equal(on_spark, on_duck, check_dtype=False)


@pytest.mark.spark
def test_local_spark_results_stream_through_parquet_in_order(spark, tmp_path):
    # local mode: written as Parquet and read back batch by batch (no driver-side collect);
    # an ordered result keeps its order across the part files, the scratch folder goes away
    import tempfile

    con = ibis.pyspark.connect(spark)
    frame = pd.DataFrame({"customer_id": [f"c{i:03d}" for i in range(300)], "x": range(300)})
    table = upload(con, frame.sample(frac=1.0, random_state=1), "ordered")
    ordered = table.order_by(ibis.desc("x"))
    before = set(Path(tempfile.gettempdir()).glob("collect-*"))
    batches = list(engine.arrow_batches(ordered, batch_rows=7))
    assert all(b.num_rows <= 7 for b in batches) and len(batches) > 40
    got = pa.Table.from_batches(batches).to_pandas()
    assert got["x"].tolist() == list(range(299, -1, -1))
    assert got["customer_id"].tolist() == [f"c{i:03d}" for i in range(299, -1, -1)]
    assert set(Path(tempfile.gettempdir()).glob("collect-*")) == before
    empty = list(engine.arrow_batches(table.filter(table.x < 0)))
    assert sum(b.num_rows for b in empty) == 0


@pytest.mark.spark
def test_the_scratch_goes_to_the_first_of_several_local_dirs(spark, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    frame = spark.createDataFrame(pd.DataFrame({"x": range(5)}))
    batches = engine._spark_local_batches(frame, f"{first}, {second}", batch_rows=2)
    assert next(batches).num_rows == 2
    assert [p.name[:8] for p in first.iterdir()] == ["collect-"] and not second.exists()
    assert sum(b.num_rows for b in batches) == 3 and list(first.iterdir()) == []


def test_step_error_on_a_spark_result_limit_says_how_to_fix():
    class Failure(Exception):
        ename = "Py4JJavaError"
        evalue = (
            "An error occurred while calling o326.getResult.\n"
            "Caused by: org.apache.spark.SparkException: Job aborted due to stage failure: "
            "Total size of serialized results of 5 tasks (1079.2 MiB) is bigger than "
            "spark.driver.maxResultSize (1024.0 MiB)\n\tat org.apache.spark.scheduler..."
        )

    err = runner._step_error(Failure(), "02_interest")
    assert isinstance(err, StepFailedError)
    assert "at org.apache" not in err.message
    assert "spark.driver_memory" in err.message and err.where == "step 02_interest"
