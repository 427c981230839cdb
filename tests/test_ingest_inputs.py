"""Bad input: each case fails with one specific message, or is quarantined with a reason."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from workbench.errors import InputDataError, ParamsError
from workbench.ingest.pipeline import ingest
from workbench.params import load_params

from .conftest import GOOD_ROWS, ORDERS_HEADER


def _ingest(params_path: Path, tmp_path: Path):
    params = load_params(params_path)
    run_dir = tmp_path / "run"
    summary = ingest(params, run_dir, progress=False)
    return summary, run_dir


def _orders(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "data" / "orders.parquet")


def _quarantine(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "quarantine.parquet")


def _no_run_output(tmp_path: Path) -> bool:
    run = tmp_path / "run"
    return (
        not (run / "data" / "orders.parquet").exists() and not (run / "quarantine.parquet").exists()
    )


def test_good_file_round_trip(write_csv, write_params, tmp_path):
    write_csv(GOOD_ROWS)
    summary, run = _ingest(write_params(data={"orders": {"path": "orders.csv"}}), tmp_path)
    orders = _orders(run)
    assert len(orders) == 4
    assert summary["tables"]["orders"]["quarantined"] == {}
    assert str(orders.ordered_at.dtype) == "datetime64[us, UTC]"
    assert sorted(orders.revenue.map(float)) == [3.5, 5.0, 7.0, 10.0]
    assert summary["tables"]["orders"]["facts"]["orders"] == 3


def test_missing_required_column(write_csv, write_params, tmp_path):
    write_csv(
        ["1,C1,2024-01-05,P1,2"], header="order_id,customer_id,ordered_at,product_id,quantity"
    )
    with pytest.raises(InputDataError) as err:
        _ingest(write_params(data={"orders": {"path": "orders.csv"}}), tmp_path)
    msg = err.value.message
    assert "none of the columns unit_price / amount is there" in msg
    assert "orders.csv" in msg and "An example row" in msg
    assert _no_run_output(tmp_path)


def test_unmappable_column_name(write_csv, write_params, tmp_path):
    write_csv(GOOD_ROWS, header="InvoiceNo,customer_id,ordered_at,product_id,quantity,unit_price")
    params = write_params(
        data={"orders": {"path": "orders.csv", "columns": {"order_id": "InvoiceN"}}}
    )
    with pytest.raises(InputDataError) as err:
        _ingest(params, tmp_path)
    msg = err.value.message
    assert "mapped to source column 'InvoiceN', which is not there" in msg
    assert "did you mean 'InvoiceNo'" in msg
    assert "data.orders.columns.order_id" in msg


def test_unknown_canonical_name_in_mapping(write_csv, write_params, tmp_path):
    write_csv(GOOD_ROWS)
    params = write_params(
        data={"orders": {"path": "orders.csv", "columns": {"price": "unit_price"}}}
    )
    with pytest.raises(InputDataError, match="unknown canonical column"):
        _ingest(params, tmp_path)


def test_empty_file(tmp_path, write_params):
    (tmp_path / "orders.csv").write_bytes(b"")
    with pytest.raises(InputDataError, match=r"the file is empty \(0 bytes\)"):
        _ingest(write_params(data={"orders": {"path": "orders.csv"}}), tmp_path)
    assert _no_run_output(tmp_path)


def test_header_only(write_csv, write_params, tmp_path):
    write_csv([])
    with pytest.raises(InputDataError, match="header line but no data rows"):
        _ingest(write_params(data={"orders": {"path": "orders.csv"}}), tmp_path)


def test_wrong_delimiter(write_csv, write_params, tmp_path):
    write_csv(GOOD_ROWS)
    params = write_params(data={"orders": {"path": "orders.csv", "delimiter": ";"}})
    with pytest.raises(InputDataError) as err:
        _ingest(params, tmp_path)
    assert "splits into 6 columns with ','" in err.value.message
    assert "data.orders.delimiter" in err.value.message


def test_semicolon_file_detected_with_decimal_comma(write_csv, write_params, tmp_path):
    rows = [r.replace(",", ";") for r in GOOD_ROWS]
    rows = [r.replace("3.50", "3,50").replace("1.25", "1,25") for r in rows]
    write_csv(rows, header=ORDERS_HEADER.replace(",", ";"))
    summary, run = _ingest(write_params(data={"orders": {"path": "orders.csv"}}), tmp_path)
    assert summary["tables"]["orders"]["detected"]["delimiter"] == ";"
    assert sorted(_orders(run).unit_price.map(float)) == [1.25, 3.5, 3.5, 10.0]


def test_non_utf8_file_is_detected_and_transcoded(write_csv, write_params, tmp_path):
    rows = [
        "1,C1,2024-01-05,P1,1,£3.50",
        "2,Café Müller,2024-01-06,P2,1,2.00",
        "3,Ærø Åse,2024-01-07,P3,1,1.00",
    ]
    write_csv(rows, encoding="cp1252")
    summary, run = _ingest(write_params(data={"orders": {"path": "orders.csv"}}), tmp_path)
    detected = summary["tables"]["orders"]["detected"]
    assert detected["transcoded_from"].lower().replace("-", "") in {
        "cp1252",
        "windows1252",
        "latin1",
        "iso88591",
    }
    orders = _orders(run)
    assert set(orders.customer_id) == {"C1", "Café Müller", "Ærø Åse"}
    assert float(orders.loc[orders.order_id == "1", "unit_price"].iloc[0]) == 3.5


def test_wrong_declared_encoding(write_csv, write_params, tmp_path):
    write_csv(["1,Café,2024-01-05,P1,1,3.50"], encoding="cp1252")
    params = write_params(data={"orders": {"path": "orders.csv", "encoding": "utf-8"}})
    with pytest.raises(InputDataError, match="cannot be decoded as utf-8"):
        _ingest(params, tmp_path)


def test_unparseable_dates_some_rows_quarantined(write_csv, write_params, tmp_path):
    write_csv([*GOOD_ROWS, "1004,C3,not a date,P1,1,2.00", "1005,C3,2024-13-45,P1,1,2.00"])
    summary, run = _ingest(write_params(data={"orders": {"path": "orders.csv"}}), tmp_path)
    assert summary["tables"]["orders"]["quarantined"] == {"bad_timestamp": 2}
    q = _quarantine(run)
    assert sorted(q.ordered_at) == ["2024-13-45", "not a date"]
    assert set(q.reason) == {"bad_timestamp"} and set(q.table) == {"orders"}


def test_unparseable_dates_all_rows_fail_clearly(write_csv, write_params, tmp_path):
    write_csv(["1,C1,05/01/2024 10:00,P1,1,2.0", "2,C2,06/01/2024 11:00,P1,1,2.0"])
    with pytest.raises(InputDataError) as err:
        _ingest(write_params(data={"orders": {"path": "orders.csv"}}), tmp_path)
    msg = err.value.message
    assert "bad_timestamp" in msg and "'05/01/2024 10:00'" in msg
    assert "timestamp_format" in msg
    assert _no_run_output(tmp_path)


def test_timestamp_format_and_timezone(write_csv, write_params, tmp_path):
    write_csv(["1,C1,05/07/2024 10:00,P1,1,2.0"])
    params = write_params(
        data={
            "orders": {
                "path": "orders.csv",
                "timestamp_format": "%d/%m/%Y %H:%M",
                "timezone": "Europe/Copenhagen",
            }
        }
    )
    _, run = _ingest(params, tmp_path)
    assert _orders(run).ordered_at.iloc[0] == pd.Timestamp("2024-07-05 08:00", tz="UTC")


def test_mixed_time_zones_become_utc(write_csv, write_params, tmp_path):
    write_csv(
        [
            "1,C1,2024-03-01T10:00:00+01:00,P1,1,2.0",
            "2,C1,2024-03-01T10:00:00Z,P1,1,2.0",
            "3,C1,2024-03-01 10:00:00-05:00,P1,1,2.0",
            "4,C1,2024-03-01 10:00:00,P1,1,2.0",
        ]
    )
    params = write_params(data={"orders": {"path": "orders.csv", "timezone": "Europe/Paris"}})
    _, run = _ingest(params, tmp_path)
    got = _orders(run).set_index("order_id").ordered_at.sort_index()
    assert got.tolist() == [
        pd.Timestamp("2024-03-01 09:00", tz="UTC"),
        pd.Timestamp("2024-03-01 10:00", tz="UTC"),
        pd.Timestamp("2024-03-01 15:00", tz="UTC"),
        pd.Timestamp("2024-03-01 09:00", tz="UTC"),  # naive: wall clock in Europe/Paris
    ]


def test_duplicated_order_lines_with_line_numbers(write_csv, write_params, tmp_path):
    header = ORDERS_HEADER + ",line"
    rows = [
        "1,C1,2024-01-05,P1,1,2.0,1",
        "1,C1,2024-01-05,P1,1,2.0,1",
        "1,C1,2024-01-05,P1,1,2.0,2",
    ]
    write_csv(rows, header=header)
    params = write_params(data={"orders": {"path": "orders.csv", "columns": {"line_no": "line"}}})
    summary, run = _ingest(params, tmp_path)
    assert summary["tables"]["orders"]["quarantined"] == {"duplicate_line": 1}
    assert sorted(_orders(run).line_no) == [1, 2]


def test_exact_duplicates_without_line_numbers(write_csv, write_params, tmp_path):
    write_csv([GOOD_ROWS[0], GOOD_ROWS[0], GOOD_ROWS[0], GOOD_ROWS[1]])
    summary, run = _ingest(write_params(data={"orders": {"path": "orders.csv"}}), tmp_path)
    assert summary["tables"]["orders"]["quarantined"] == {"duplicate_line": 2}
    assert len(_orders(run)) == 2


def test_negative_and_zero_prices_and_zero_quantity(write_csv, write_params, tmp_path):
    rows = [
        *GOOD_ROWS,
        "9,C1,2024-01-05,P1,1,-2.0",
        "10,C1,2024-01-05,P1,1,0",
        "11,C1,2024-01-05,P1,0,2.0",
    ]
    write_csv(rows)
    summary, run = _ingest(write_params(data={"orders": {"path": "orders.csv"}}), tmp_path)
    assert summary["tables"]["orders"]["quarantined"] == {
        "negative_price": 1,
        "zero_price": 1,
        "zero_quantity": 1,
    }
    assert summary["tables"]["orders"]["rows_read"] == 7
    assert summary["tables"]["orders"]["rows_kept"] == 4
    assert len(_quarantine(run)) == 3


def test_customer_ids_as_floats(write_csv, write_params, tmp_path):
    write_csv(
        [
            "1,17850.0,2024-01-05,P1,1,2.0",
            "2,17850,2024-01-06,P1,1,2.0",
            "3, 12346.00 ,2024-01-06,P1,1,2.0",
        ]
    )
    _, run = _ingest(write_params(data={"orders": {"path": "orders.csv"}}), tmp_path)
    assert sorted(set(_orders(run).customer_id)) == ["12346", "17850"]


def test_path_does_not_exist(write_params, tmp_path):
    (tmp_path / "orders_2024.csv").write_text(ORDERS_HEADER + "\n")
    with pytest.raises(InputDataError) as err:
        _ingest(write_params(data={"orders": {"path": "orders_2O24.csv"}}), tmp_path)
    msg = err.value.message
    assert "file not found" in msg and "orders_2O24.csv" in msg
    assert "did you mean 'orders_2024.csv'" in msg


def test_unknown_engine(write_params):
    with pytest.raises(ParamsError, match="engine"):
        load_params(write_params(data={"orders": {"path": "o.csv"}}, engine="postgres"))


def test_cancellations_are_negative_revenue_not_orders(write_csv, write_params, tmp_path):
    write_csv([*GOOD_ROWS, "C1001,C1,2024-01-07,P1,-1,3.50", "1006,C2,2024-01-08,P1,1,3.50"])
    params = write_params(data={"orders": {"path": "orders.csv", "cancel_prefix": "C"}})
    summary, run = _ingest(params, tmp_path)
    orders = _orders(run)
    ret = orders[orders.is_return]
    assert ret.order_id.tolist() == ["C1001"]
    assert float(ret.revenue.iloc[0]) == -3.5 and ret.quantity.iloc[0] == -1
    facts = summary["tables"]["orders"]["facts"]
    assert facts["orders"] == 4  # the cancellation is not an order
    assert facts["return_lines"] == 1


def test_status_column_marks_returns_with_positive_quantity(write_csv, write_params, tmp_path):
    header = ORDERS_HEADER + ",state"
    write_csv(["1,C1,2024-01-05,P1,2,3.0,paid", "1,C1,2024-01-09,P1,2,3.0,Returned"], header=header)
    params = write_params(data={"orders": {"path": "orders.csv", "columns": {"status": "state"}}})
    _, run = _ingest(params, tmp_path)
    orders = _orders(run).sort_values("ordered_at")
    assert orders.quantity.tolist() == [2, -2]
    assert orders.revenue.map(float).tolist() == [6.0, -6.0]


def test_fees_outliers_and_currencies(write_csv, write_params, tmp_path):
    header = ORDERS_HEADER + ",cur"
    rows = [
        "1,C1,2024-01-05,P1,2,3.0,EUR",
        "1,C1,2024-01-05,POST,1,5.0,EUR",
        "2,C2,2024-01-05,P1,50000,1.0,EUR",
        "3,C3,2024-01-05,P1,1,10.0,usd",
        "4,C3,2024-01-05,P1,1,10.0,JPY",
    ]
    write_csv(rows, header=header)
    params = write_params(
        data={
            "orders": {
                "path": "orders.csv",
                "columns": {"currency": "cur"},
                "exclude_products": ["POST"],
                "max_quantity": 1000,
                "fx_rates": {"USD": 0.9},
            }
        }
    )
    summary, run = _ingest(params, tmp_path)
    assert summary["tables"]["orders"]["quarantined"] == {
        "non_product_line": 1,
        "quantity_outlier": 1,
        "unknown_currency": 1,
    }
    orders = _orders(run).set_index("order_id")
    assert float(orders.loc["3", "revenue"]) == 9.0 and orders.loc["3", "currency"] == "USD"


def test_missing_customer_ids_quarantined(write_csv, write_params, tmp_path):
    write_csv([*GOOD_ROWS, "7,,2024-01-05,P1,1,2.0", "8,  ,2024-01-05,P1,1,2.0"])
    summary, _ = _ingest(write_params(data={"orders": {"path": "orders.csv"}}), tmp_path)
    assert summary["tables"]["orders"]["quarantined"] == {"missing_customer_id": 2}


def test_mostly_missing_customers_fails(write_csv, write_params, tmp_path):
    write_csv(["1,,2024-01-05,P1,1,2.0", "2,,2024-01-05,P1,1,2.0", "3,C1,2024-01-05,P1,1,2.0"])
    with pytest.raises(InputDataError, match="missing_customer_id"):
        _ingest(write_params(data={"orders": {"path": "orders.csv"}}), tmp_path)
