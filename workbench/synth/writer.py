"""Output files of the generator: Parquet schemas, streaming writers, params.yaml, truth.json."""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

UTC_US = pa.timestamp("us", tz="UTC")

ORDERS = pa.schema(
    [
        ("order_id", pa.string()),
        ("line_no", pa.int64()),
        ("customer_id", pa.string()),
        ("ordered_at", UTC_US),
        ("product_id", pa.string()),
        ("quantity", pa.int64()),
        ("unit_price", pa.float64()),
        ("currency", pa.string()),
        ("status", pa.string()),
    ]
)
PRODUCTS = pa.schema(
    [
        ("product_id", pa.string()),
        ("name", pa.string()),
        ("category", pa.string()),
        ("brand", pa.string()),
        ("price", pa.float64()),
    ]
)
CUSTOMERS = pa.schema(
    [
        ("customer_id", pa.string()),
        ("email", pa.string()),
        ("phone", pa.string()),
        ("first_name", pa.string()),
        ("last_name", pa.string()),
        ("country", pa.string()),
        ("zip", pa.string()),
        ("language", pa.string()),
        ("subscribed", pa.bool_()),
        ("created_at", UTC_US),
    ]
)
EVENTS = pa.schema(
    [
        ("customer_id", pa.string()),
        ("occurred_at", UTC_US),
        ("event_type", pa.string()),
        ("product_id", pa.string()),
        ("query", pa.string()),
    ]
)
TRUTH_CUSTOMERS = pa.schema(
    [
        ("customer_id", pa.string()),
        ("birth_at", UTC_US),
        ("lam", pa.float64()),
        ("p_drop", pa.float64()),
        ("dropout_at", UTC_US),
        ("alive_at_end", pa.bool_()),
        ("mean_spend", pa.float64()),
        ("price_level", pa.float64()),
    ]
)
TRUTH_AFFINITY = pa.schema(
    [
        ("customer_id", pa.string()),
        ("level", pa.string()),
        ("target", pa.string()),
        ("weight", pa.float64()),
    ]
)

#: Output file (relative to the output folder) -> schema, for the streamed tables.
STREAMED: dict[str, pa.Schema] = {
    "orders.parquet": ORDERS,
    "customers.parquet": CUSTOMERS,
    "events.parquet": EVENTS,
    "truth/customers.parquet": TRUTH_CUSTOMERS,
    "truth/affinity.parquet": TRUTH_AFFINITY,
}
PARAMS_FILE = "params.yaml"
TRUTH_FILE = "truth/truth.json"


class TableWriters:
    """One Parquet writer per streamed table; each chunk of customers adds a row group.

    Parameters
    ----------
    out : Path
        Output folder.
    events : bool
        Whether ``events.parquet`` is written.
    """

    def __init__(self, out: Path, events: bool = True) -> None:
        self.out = Path(out)
        self.rows: dict[str, int] = {}
        self._writers: dict[str, pq.ParquetWriter] = {}
        (self.out / "truth").mkdir(parents=True, exist_ok=True)
        for name, schema in STREAMED.items():
            if name == "events.parquet" and not events:
                continue
            self._writers[name] = pq.ParquetWriter(self.out / name, schema, compression="zstd")
            self.rows[name] = 0

    def write(self, name: str, table: pa.Table) -> None:
        """Append ``table`` (cast to the contract schema) to the file ``name``."""
        writer = self._writers[name]
        writer.write_table(table.select(writer.schema.names).cast(writer.schema))
        self.rows[name] += table.num_rows

    def close(self) -> None:
        """Finish every file."""
        for writer in self._writers.values():
            writer.close()

    def __enter__(self) -> TableWriters:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def write_products(out: Path, table: pa.Table) -> Path:
    """Write ``products.parquet``."""
    path = Path(out) / "products.parquet"
    pq.write_table(table.cast(PRODUCTS), path, compression="zstd")
    return path


def params_document(events: bool) -> dict[str, Any]:
    """The params file for the generated folder (paths relative to the file's own folder)."""

    def source(name: str, columns: list[str], **extra: Any) -> dict[str, Any]:
        return {"path": f"{name}.parquet", "columns": {c: c for c in columns}, **extra}

    return {
        "run_name": "synth",
        "as_of": None,
        "engine": "duckdb",
        "currency": "EUR",
        "data": {
            "orders": source("orders", ORDERS.names, return_statuses=["returned"]),
            "products": source("products", PRODUCTS.names),
            "customers": source("customers", CUSTOMERS.names),
            "events": source("events", EVENTS.names) if events else None,
        },
        "models": {"horizon_days": 90},
        "interest": {"levels": ["product", "category", "brand", "keyword"], "top_k": 10},
        "segments": [],
        "exports": [],
    }


def write_params(out: Path, events: bool) -> Path:
    """Write ``params.yaml`` (accepted by ``workbench run DIR/params.yaml``)."""
    path = Path(out) / PARAMS_FILE
    header = (
        "# Synthetic shop written by workbench.synth.generate; planted truth in truth/.\n"
        "# Relative paths resolve against this file's folder. No segments: add segment files\n"
        "# with --set segments=<folder>.\n"
    )
    path.write_text(header + yaml.safe_dump(params_document(events), sort_keys=False))
    return path


def write_truth(out: Path, truth: dict[str, Any]) -> Path:
    """Write ``truth/truth.json``."""
    path = Path(out) / TRUTH_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(truth, indent=2) + "\n")
    return path
