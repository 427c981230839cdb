"""A tiny hand-made shop whose segment members are known by construction (tests, docs).

Six customers (``A`` .. ``F``), three products, a handful of order lines and web events,
``as_of`` = 2024-06-30. The docstring of each frame says who does what, so a test can state
the expected members of any condition by reading it.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from workbench.notebook import end_of_day
from workbench.segments.data import SegmentData, TableInterest, upload

__all__ = ["AS_OF", "tiny_data", "tiny_frames", "write_tiny_run"]

AS_OF = end_of_day(date(2024, 6, 30))


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def tiny_frames() -> dict[str, pd.DataFrame]:
    """Frames: customers (customers.parquet shape), orders, products, events, interest.

    Who is who:

    - A: VIP, slipping away, subscribed, en, GB; bought P1 (mug, 10.00) x3 on 2024-06-28 and
      P2 (hose, 50.00) on 2023-05-01; viewed P3 on 2024-06-29; 5 orders.
    - B: loyal, active, not subscribed, de, DE; bought P3 (puzzle, 25.00) on 2024-05-15;
      searched "jigsaw" on 2024-06-25; 2 orders.
    - C: one-time, lost, subscribed, en, US; bought P2 on 2023-01-10; no web events.
    - D: frequent, just ordered, subscribed, fr, FR; bought P1 x1 on 2024-06-30 and returned a
      P3 line; carted P2 on 2024-06-26; 3 orders.
    - E: one-time, lost, subscribed, missing language, GB; bought P1 on 2022-12-01;
      viewed P1 on 2024-06-27 (active on site, not ordering this week).
    - F: vip, active, subscribed, en, IT; bought P2 x2 on 2024-04-01 at 45.00.
    """
    customers = pd.DataFrame(
        {
            "customer_id": list("ABCDEF"),
            "first_order_at": [_ts(t) for t in ("2022-06-01", "2023-08-01", "2023-01-10",
                                                 "2024-01-05", "2022-12-01", "2023-11-11")],
            "last_order_at": [_ts(t) for t in ("2024-06-28", "2024-05-15", "2023-01-10",
                                                "2024-06-30", "2022-12-01", "2024-04-01")],
            "orders": [5, 2, 1, 3, 1, 4],
            "revenue": [400.0, 60.0, 50.0, 35.0, 10.0, 300.0],
            "aov": [80.0, 30.0, 50.0, 11.67, 10.0, 75.0],
            "recency_days": [2, 46, 537, 0, 577, 90],
            "frequency": [4, 1, 0, 2, 0, 3],
            "tenure_days": [760, 334, 537, 177, 577, 232],
            "mean_interval_days": [189.0, 288.0, None, 88.0, None, 47.0],
            "p_alive": [0.55, 0.8, 1.0, 0.95, 1.0, 0.7],
            "churn_risk": [0.6, 0.5, 0.97, 0.3, 0.99, 0.4],
            "expected_orders_90d": [0.9, 0.5, 0.03, 1.2, 0.01, 1.1],
            "predicted_clv_90d": [120.0, 15.0, 1.0, 14.0, 0.1, 90.0],
            "life_cycle": ["slipping_away", "active", "lost", "just_ordered", "lost", "active"],
            "importance": ["vip", "loyal", "one_time", "frequent", "one_time", "vip"],
            "price_sensitivity": ["expensive", "average", "average", "cheap", "cheap", "average"],
            "behaviour_trend": ["falling", "stable", "stable", "rising", "stable", "stable"],
            "last_active_at": [_ts(t) for t in ("2024-06-29", "2024-06-25", "2023-01-10",
                                                 "2024-06-30", "2024-06-27", "2024-04-01")],
            "email": ["ada@example.com", "bert@example.de", "cleo@gmail.com", None,
                      "eve@example.co.uk", "fabio@example.it"],
            "phone": ["07911 123456", None, "(212) 555-0100", "06 12345678", None, "333 1234567"],
            "first_name": ["Ada", "Bert", "Cleo", "Didier", "Eve", "Fabio"],
            "last_name": ["Lovelace", "Brecht", "Jones", "Durand", "Smith", "Rossi"],
            "country": ["GB", "DE", "US", "FR", "GB", "IT"],
            "zip": ["SW1A 1AA", "10115", "94016-1234", "75001", "EC1A 1BB", "20121"],
            "language": ["en", "de", "en", "fr", None, "en"],
            "subscribed": [True, False, True, True, True, True],
            "created_at": [_ts(t) for t in ("2022-05-30", "2023-07-30", "2023-01-09",
                                             "2024-01-01", "2022-11-30", "2023-11-10")],
        }
    )  # fmt: skip
    orders = pd.DataFrame(
        [
            ("o1", "A", "2024-06-28 10:00", "P1", 3.0, 10.0, False),
            ("o2", "A", "2023-05-01 09:00", "P2", 1.0, 50.0, False),
            ("o3", "B", "2024-05-15 12:00", "P3", 1.0, 25.0, False),
            ("o4", "C", "2023-01-10 08:00", "P2", 1.0, 50.0, False),
            ("o5", "D", "2024-06-30 18:00", "P1", 1.0, 10.0, False),
            ("o6", "D", "2024-06-20 18:00", "P3", -1.0, 25.0, True),
            ("o7", "E", "2022-12-01 11:00", "P1", 1.0, 10.0, False),
            ("o8", "F", "2024-04-01 15:00", "P2", 2.0, 45.0, False),
            ("o9", "F", "2024-07-02 15:00", "P1", 5.0, 10.0, False),  # after as_of: ignored
        ],
        columns=["order_id", "customer_id", "ordered_at", "product_id", "quantity",
                 "unit_price", "is_return"],
    )  # fmt: skip
    orders["ordered_at"] = pd.to_datetime(orders["ordered_at"], utc=True)
    orders["revenue"] = orders["quantity"] * orders["unit_price"]
    orders["line_no"] = 1
    for col in ("product_name", "product_category", "product_brand"):
        orders[col] = pd.Series([None] * len(orders), dtype="string")
    products = pd.DataFrame(
        {
            "product_id": ["P1", "P2", "P3"],
            "name": ["Blue Mugs", "Garden Hose", "Jigsaw Puzzle"],
            "category": ["Home > Kitchen > Mugs", "Home > Garden", "Toys > Puzzles"],
            "brand": ["Acme", "Zen Nest", "Acme"],
            "price": [10.0, 50.0, 25.0],
            "colour": ["red", "green", "red"],
        }
    )
    events = pd.DataFrame(
        [
            ("A", "2024-06-29 08:00", "view", "P3", None),
            ("B", "2024-06-25 20:00", "search", None, "Jigsaw puzzles"),
            ("D", "2024-06-26 07:00", "cart", "P2", None),
            ("E", "2024-06-27 21:00", "view", "P1", None),
            ("E", "2024-06-27 21:01", "view", "P1", None),
            ("C", "2024-07-05 10:00", "view", "P1", None),  # after as_of: ignored
        ],
        columns=["customer_id", "occurred_at", "event_type", "product_id", "query"],
    )
    events["occurred_at"] = pd.to_datetime(events["occurred_at"], utc=True)
    interest = pd.DataFrame(
        [
            ("A", "brand", "Acme", 0.40, 1),
            ("B", "brand", "Acme", 0.30, 1),
            ("C", "brand", "Acme", 0.05, 1),
            ("F", "brand", "Zen Nest", 0.50, 1),
            ("F", "brand", "Acme", 0.10, 2),
            ("B", "category", "Toys", 0.60, 1),
            ("E", "keyword", "mug", 0.25, 1),
        ],
        columns=["customer_id", "level", "target", "score", "rank"],
    )
    return {
        "customers": customers,
        "orders": orders,
        "products": products,
        "events": events,
        "interest": interest,
    }


def tiny_data(con, frames: dict[str, pd.DataFrame] | None = None) -> SegmentData:
    """The tiny shop as :class:`SegmentData` on ``con`` (DuckDB or PySpark)."""
    frames = frames or tiny_frames()
    tables = {k: upload(con, frames[k], k) for k in ("customers", "orders", "products", "events")}
    return SegmentData(
        con=con,
        customers=tables["customers"],
        as_of=AS_OF,
        horizon_days=90,
        orders=tables["orders"],
        products=tables["products"],
        events=tables["events"],
        interest=TableInterest(frames["interest"], len(frames["customers"])),
    )


def write_tiny_run(run_dir: Path, frames: dict[str, pd.DataFrame] | None = None) -> Path:
    """Write the tiny shop as a run folder (customers.parquet, data/*, interest.parquet)."""
    frames = frames or tiny_frames()
    run_dir = Path(run_dir)
    (run_dir / "data").mkdir(parents=True, exist_ok=True)
    frames["customers"].to_parquet(run_dir / "customers.parquet", index=False)
    frames["interest"].to_parquet(run_dir / "interest.parquet", index=False)
    for name in ("orders", "products", "events"):
        frames[name].to_parquet(run_dir / "data" / f"{name}.parquet", index=False)
    attributes = ["customer_id", "email", "phone", "first_name", "last_name", "country", "zip",
                  "language", "subscribed", "created_at"]  # fmt: skip
    frames["customers"][attributes].to_parquet(run_dir / "data" / "customers.parquet", index=False)
    last = datetime(2024, 6, 30, 18, tzinfo=UTC).isoformat()
    (run_dir / "ingest_summary.json").write_text(json.dumps({"last_order_at": last}))
    return run_dir
