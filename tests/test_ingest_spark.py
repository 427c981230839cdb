"""The same input gives the same canonical tables and quarantine on DuckDB and PySpark."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from workbench import engine
from workbench.ingest.pipeline import ingest
from workbench.params import load_params

from .conftest import GOOD_ROWS

pytestmark = pytest.mark.spark


def _table(path) -> pd.DataFrame:
    df = pq.read_table(path).to_pandas()
    for col in df.columns:
        if str(df[col].dtype).startswith("datetime64"):
            df[col] = df[col].astype("datetime64[us, UTC]")
        elif df[col].dtype == object:
            df[col] = df[col].map(
                lambda v: float(v) if v is not None and hasattr(v, "as_tuple") else v
            )
    return df.sort_values(list(df.columns), ignore_index=True)


def test_duckdb_and_spark_ingest_agree(tmp_path, write_csv, write_params, spark):
    write_csv(
        [
            *GOOD_ROWS,
            "C1001,C1,2024-02-02T10:00:00+01:00,P1,-1,3.50",
            "1004,17850.0,2024-02-03,P2,1,10.00",
            "1005,,2024-02-03,P2,1,10.00",
            "1006,C2,junk,P2,1,10.00",
            "1007,C2,2024-02-04,P2,0,10.00",
            GOOD_ROWS[0],
        ]
    )
    write_csv(
        ["P1,Mug,Home > Kitchen,Acme,3.5", "P1,dup,X,Y,1"],
        name="products.csv",
        header="product_id,name,category,brand,price",
    )
    write_csv(
        ["C1,a@x.com,yes", "C2,b@y.com,no"],
        name="customers.csv",
        header="customer_id,email,subscribed",
    )
    write_csv(
        ["C1,2024-01-04 10:00,view,P1,", "C2,2024-01-04 10:02,search,,mug", "C2,x,view,P1,"],
        name="events.csv",
        header="customer_id,occurred_at,event_type,product_id,query",
    )
    params = load_params(
        write_params(
            data={
                "orders": {"path": "orders.csv", "cancel_prefix": "C"},
                "products": {"path": "products.csv"},
                "customers": {"path": "customers.csv"},
                "events": {"path": "events.csv"},
            }
        )
    )
    duck = ingest(params, tmp_path / "duck", progress=False)
    con = engine.ibis.pyspark.connect(spark)
    sprk = ingest(
        params.model_copy(update={"engine": "pyspark"}), tmp_path / "spark", con=con, progress=False
    )
    for name in ("orders", "products", "customers", "events"):
        assert duck["tables"][name]["quarantined"] == sprk["tables"][name]["quarantined"], name
        pd.testing.assert_frame_equal(
            _table(tmp_path / "duck" / "data" / f"{name}.parquet"),
            _table(tmp_path / "spark" / "data" / f"{name}.parquet"),
            check_dtype=False,
        )
    qd = _table(tmp_path / "duck" / "quarantine.parquet")
    qs = _table(tmp_path / "spark" / "quarantine.parquet")
    pd.testing.assert_frame_equal(qd.drop(columns="source"), qs.drop(columns="source"))
    assert duck["tables"]["orders"]["facts"] == sprk["tables"]["orders"]["facts"]


def test_orders_from_a_spark_catalog_table_equal_the_file_ingest(
    tmp_path, write_csv, write_params, spark
):
    """``format: table`` reads a metastore table where it is, with the file ingest's result."""
    orders = write_csv([*GOOD_ROWS, "1005,,2024-02-03,P2,1,10.00", "1006,C2,junk,P2,1,10.00"])
    source = tmp_path / "orders_table"
    spark.read.option("header", True).csv(str(orders)).write.parquet(str(source))
    spark.sql(f"CREATE DATABASE IF NOT EXISTS shop LOCATION '{tmp_path / 'shop.db'}'")
    spark.sql("DROP TABLE IF EXISTS shop.order_lines")
    spark.sql(f"CREATE TABLE shop.order_lines USING parquet LOCATION '{source}'")
    con = engine.ibis.pyspark.connect(spark)
    try:
        by_file = load_params(write_params("file.yaml", data={"orders": {"path": str(source)}}))
        by_table = load_params(
            write_params(
                "table.yaml", data={"orders": {"format": "table", "table": "shop.order_lines"}}
            )
        )
        files = ingest(
            by_file.model_copy(update={"engine": "pyspark"}),
            tmp_path / "f",
            con=con,
            progress=False,
        )
        table = ingest(
            by_table.model_copy(update={"engine": "pyspark"}),
            tmp_path / "t",
            con=con,
            progress=False,
        )
    finally:
        spark.sql("DROP TABLE IF EXISTS shop.order_lines")
        spark.sql("DROP DATABASE IF EXISTS shop CASCADE")
    assert table["tables"]["orders"]["quarantined"] == files["tables"]["orders"]["quarantined"]
    assert sum(table["tables"]["orders"]["quarantined"].values()) == 2
    assert table["tables"]["orders"]["source"] == "catalog table shop.order_lines (data.orders)"
    pd.testing.assert_frame_equal(
        _table(tmp_path / "f" / "data" / "orders.parquet"),
        _table(tmp_path / "t" / "data" / "orders.parquet"),
    )
    assert len(_table(tmp_path / "t" / "data" / "orders.parquet")) == len(GOOD_ROWS)
