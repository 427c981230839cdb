"""Every source format, the other canonical tables, and the shipped demo files."""

from __future__ import annotations

import gzip
import json
import sqlite3

import duckdb
import pandas as pd
import pytest

from workbench import engine
from workbench.errors import InputDataError, ParamsError
from workbench.ingest.pipeline import format_summary, ingest
from workbench.params import load_params

from .conftest import GOOD_ROWS, ORDERS_HEADER

ORDERS_DF = pd.DataFrame(
    [r.split(",") for r in GOOD_ROWS], columns=ORDERS_HEADER.split(",")
).astype({"quantity": int, "unit_price": float})


def _orders(run) -> pd.DataFrame:
    return pd.read_parquet(run / "data" / "orders.parquet").sort_values(["order_id", "product_id"])


def _check_good_orders(run) -> None:
    got = _orders(run)
    assert got.order_id.tolist() == ["1001", "1001", "1002", "1003"]
    assert got.revenue.map(float).tolist() == [7.0, 10.0, 3.5, 5.0]
    assert str(got.ordered_at.dtype) == "datetime64[us, UTC]"


def test_gzip_csv(tmp_path, write_params):
    with gzip.open(tmp_path / "orders.csv.gz", "wt") as fh:
        fh.write("\n".join([ORDERS_HEADER, *GOOD_ROWS]) + "\n")
    ingest(load_params(write_params(data={"orders": {"path": "orders.csv.gz"}})), tmp_path / "run")
    _check_good_orders(tmp_path / "run")


def test_parquet_with_typed_columns(tmp_path, write_params):
    df = ORDERS_DF.assign(ordered_at=pd.to_datetime(ORDERS_DF.ordered_at))  # naive timestamps
    df.to_parquet(tmp_path / "orders.parquet")
    params = write_params(data={"orders": {"path": "orders.parquet"}})
    ingest(load_params(params), tmp_path / "run")
    _check_good_orders(tmp_path / "run")


def test_parquet_typed_bad_rows_are_quarantined_with_their_values_as_text(tmp_path, write_params):
    df = ORDERS_DF.assign(ordered_at=pd.to_datetime(ORDERS_DF.ordered_at, utc=True))
    bad = df.iloc[:2].assign(order_id=["2001", "2002"])
    bad.loc[bad.index[0], "ordered_at"] = pd.NaT  # typed column, no text to trim
    bad.loc[bad.index[1], "unit_price"] = -1.25
    pd.concat([df, bad], ignore_index=True).to_parquet(tmp_path / "orders.parquet")
    params = write_params(data={"orders": {"path": "orders.parquet"}})
    summary = ingest(load_params(params), tmp_path / "run")
    _check_good_orders(tmp_path / "run")
    assert summary["tables"]["orders"]["quarantined"] == {
        "missing_timestamp": 1,
        "negative_price": 1,
    }
    q = pd.read_parquet(tmp_path / "run" / "quarantine.parquet").set_index("order_id")
    assert q.loc["2001", "reason"] == "missing_timestamp" and pd.isna(q.loc["2001", "ordered_at"])
    assert q.loc["2002", "unit_price"] == "-1.25"
    assert q.loc["2002", "ordered_at"].startswith(str(df.ordered_at.iloc[1].date()))
    assert q.loc["2002", "quantity"] == str(df.quantity.iloc[1])


def test_parquet_folder(tmp_path, write_params):
    (tmp_path / "parts").mkdir()
    ORDERS_DF.iloc[:2].to_parquet(tmp_path / "parts" / "a.parquet")
    ORDERS_DF.iloc[2:].to_parquet(tmp_path / "parts" / "b.parquet")
    params = write_params(data={"orders": {"path": "parts", "format": "parquet"}})
    ingest(load_params(params), tmp_path / "run")
    _check_good_orders(tmp_path / "run")


def test_json_lines(tmp_path, write_params):
    with open(tmp_path / "orders.jsonl", "w") as fh:
        for rec in ORDERS_DF.to_dict("records"):
            fh.write(json.dumps(rec) + "\n")
    ingest(load_params(write_params(data={"orders": {"path": "orders.jsonl"}})), tmp_path / "run")
    _check_good_orders(tmp_path / "run")


def test_duckdb_file(tmp_path, write_params):
    con = duckdb.connect(str(tmp_path / "shop.duckdb"))
    con.register("df", ORDERS_DF)
    con.execute("CREATE TABLE lines AS SELECT * FROM df")
    con.close()
    params = write_params(data={"orders": {"path": "shop.duckdb", "table": "lines"}})
    ingest(load_params(params), tmp_path / "run")
    _check_good_orders(tmp_path / "run")


def test_catalog_table_of_the_connection(tmp_path, write_params):
    """``format: table`` reads a table the engine's catalog holds (here the caller's DuckDB)."""
    con = engine.connect("duckdb")
    con.create_table("order_lines", ORDERS_DF)
    params = write_params(data={"orders": {"format": "table", "table": "order_lines"}})
    summary = ingest(load_params(params), tmp_path / "run", con=con)
    _check_good_orders(tmp_path / "run")
    assert summary["tables"]["orders"]["source"] == "catalog table order_lines (data.orders)"


def test_catalog_table_missing_says_which_tables_exist(tmp_path, write_params):
    con = engine.connect("duckdb")
    con.create_table("order_lines", ORDERS_DF)
    params = write_params(data={"orders": {"format": "table", "table": "orderlines"}})
    with pytest.raises(InputDataError) as err:
        ingest(load_params(params), tmp_path / "run", con=con)
    message = str(err.value)
    assert message.startswith("data.orders.table: the duckdb catalog has no table 'orderlines'")
    assert "did you mean 'order_lines'? tables there: order_lines" in message
    assert "format: duckdb" in message
    assert not (tmp_path / "run" / "data" / "orders.parquet").exists()


@pytest.mark.parametrize(
    "source", [{"format": "table"}, {"format": "table", "table": "t", "path": "x.parquet"}]
)
def test_catalog_table_params_need_a_table_and_no_path(tmp_path, write_params, source):
    with pytest.raises(ParamsError, match="format 'table' needs 'table'"):
        load_params(write_params(data={"orders": source}))


def test_sql_query_on_database_url(tmp_path, write_params, monkeypatch):
    db = tmp_path / "shop.sqlite"
    with sqlite3.connect(db) as con:
        ORDERS_DF.to_sql("order_lines", con, index=False)
    monkeypatch.setenv("SHOP_DB_URL", f"sqlite:///{db}")
    params = write_params(
        data={
            "orders": {
                "format": "sql",
                "url_env": "SHOP_DB_URL",
                "query": "SELECT * FROM order_lines WHERE quantity > 0",
            }
        }
    )
    summary = ingest(load_params(params), tmp_path / "run")
    _check_good_orders(tmp_path / "run")
    assert "sqlite" not in json.dumps(summary)  # the URL (a secret) is never recorded


def test_sql_url_env_missing(tmp_path, write_params, monkeypatch):
    monkeypatch.delenv("NOPE_URL", raising=False)
    params = write_params(data={"orders": {"format": "sql", "url_env": "NOPE_URL", "query": "x"}})
    with pytest.raises(InputDataError, match="NOPE_URL"):
        ingest(load_params(params), tmp_path / "run")


def test_products_customers_events(tmp_path, write_csv, write_params):
    write_csv(GOOD_ROWS)
    write_csv(
        [
            "P1,Mug, Home > Kitchen > Mugs ,Acme,3.5,blue",
            "P1,Mug dup,X,Y,1,red",
            ",nameless,X,Y,1,z",
        ],
        name="products.csv",
        header="product_id,name,category,brand,price,Colour",
    )
    write_csv(
        ["C1, Ada@Example.COM ,Ada,yes,2023-01-01", "C2,bob@example.com,Bob,0,garbage"],
        name="customers.csv",
        header="customer_id,email,first_name,newsletter,signup",
    )
    write_csv(
        [
            "C1,2024-01-04 10:00,page_view,P1,",
            "C1,2024-01-04 10:01,add_to_cart,P1,",
            "C2,2024-01-04 10:02,search,,coffee mug",
            "C2,2024-01-04 10:03,wishlist,P1,",
        ],
        name="events.csv",
        header="customer_id,ts,type,product_id,query",
    )
    params = write_params(
        data={
            "orders": {"path": "orders.csv"},
            "products": {"path": "products.csv"},
            "customers": {
                "path": "customers.csv",
                "columns": {"subscribed": "newsletter", "created_at": "signup"},
            },
            "events": {
                "path": "events.csv",
                "columns": {"occurred_at": "ts", "event_type": "type"},
                "event_types": {"page_view": "view", "add_to_cart": "cart"},
            },
        }
    )
    summary = ingest(load_params(params), tmp_path / "run")
    data = tmp_path / "run" / "data"
    products = pd.read_parquet(data / "products.parquet")
    assert products.to_dict("records") == [
        {
            "product_id": "P1",
            "name": "Mug",
            "category": "Home > Kitchen > Mugs",
            "brand": "Acme",
            "price": products.price.iloc[0],
            "colour": "blue",
        }
    ]
    assert summary["tables"]["products"]["quarantined"] == {
        "duplicate_product": 1,
        "missing_product_id": 1,
    }
    customers = pd.read_parquet(data / "customers.parquet").set_index("customer_id").sort_index()
    assert customers.loc["C1", "email"] == "ada@example.com"
    assert customers.subscribed.tolist() == [True, False]
    assert summary["tables"]["customers"]["nulled"] == {"created_at": 1}
    events = pd.read_parquet(data / "events.parquet")
    assert sorted(events.event_type) == ["cart", "search", "view"]
    assert summary["tables"]["events"]["quarantined"] == {"unknown_event_type": 1}
    text = format_summary(summary)
    assert "events: 4 rows read, 3 kept, 1 quarantined" in text


def test_quarantine_combines_tables_and_keeps_raw_values(tmp_path, write_csv, write_params):
    write_csv([*GOOD_ROWS, "1009,,2024-01-05,P1,1,2.0"])
    write_csv(["P1,Mug", "P1,Again"], name="products.csv", header="product_id,name")
    params = write_params(
        data={"orders": {"path": "orders.csv"}, "products": {"path": "products.csv"}}
    )
    ingest(load_params(params), tmp_path / "run")
    q = pd.read_parquet(tmp_path / "run" / "quarantine.parquet")
    assert sorted(q.table) == ["orders", "products"]
    row = q[q.table == "orders"].iloc[0]
    assert (
        row.reason == "missing_customer_id" and row.order_id == "1009" and row.unit_price == "2.0"
    )
    assert q[q.table == "products"].iloc[0]["name"] == "Mug"  # "Again" (smaller) is kept


def test_demo_online_retail(project_root, tmp_path):
    summary = ingest(load_params(project_root / "params" / "demo.yaml"), tmp_path, progress=False)
    orders = summary["tables"]["orders"]
    assert orders["rows_read"] == 541_909
    assert orders["rows_read"] == orders["rows_kept"] + sum(orders["quarantined"].values())
    assert orders["quarantined"]["missing_customer_id"] == 135_080
    assert orders["quarantined"]["quantity_outlier"] == 4  # two huge orders and their cancellations
    assert orders["quarantined"]["non_product_line"] > 1_000
    assert orders["facts"]["return_lines"] > 8_000
    assert orders["facts"]["customers"] == 4_333
    assert summary["last_order_at"].startswith("2011-12-09")
    q = pd.read_parquet(tmp_path / "quarantine.parquet")
    assert len(q) == summary["quarantined_total"]
    products = pd.read_parquet(tmp_path / "data" / "products.parquet")
    assert products.name.notna().mean() > 0.99


def test_cdnow_sample(project_root, tmp_path):
    summary = ingest(load_params(project_root / "params" / "cdnow.yaml"), tmp_path, progress=False)
    orders = summary["tables"]["orders"]
    assert orders["rows_read"] == orders["rows_kept"] == 6_919
    assert orders["facts"]["customers"] == 2_357
    got = pd.read_parquet(tmp_path / "data" / "orders.parquet")
    assert round(got.revenue.map(float).sum(), 2) == orders["facts"]["net_revenue"]


def test_staged_rows_keep_raw_text_only_where_it_is_read():
    """Bad rows keep every raw value (the quarantine shows them); good rows keep only the raw
    text of an optional value that did not parse (the 'nulled' counts); the rest is blanked."""
    import ibis

    from workbench.ingest import normalise as nz
    from workbench.ingest.pipeline import _raw_where_needed

    raw_id, raw_d = f"{nz.RAW_PREFIX}customer_id", f"{nz.RAW_PREFIX}discount"
    table = ibis.memtable(
        pd.DataFrame(
            {
                "customer_id": ["a", None, "c"],
                "discount": [1.0, 2.0, None],
                raw_id: ["a", " ", "c"],
                raw_d: ["1", "2", "x"],
                nz.REASON: [None, "missing_customer_id", None],
            }
        )
    )
    out = _raw_where_needed(table, {"discount": raw_d}).to_pyarrow()
    assert out[raw_id].to_pylist() == [None, " ", None]
    assert out[raw_d].to_pylist() == [None, "2", "x"]
    assert out["customer_id"].to_pylist() == ["a", None, "c"]
