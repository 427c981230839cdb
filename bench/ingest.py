"""Ingest throughput and peak memory: the workbench vs plain pandas on the same CSV.

Usage::

    .venv/bin/python bench/ingest.py [--lines 1000000 10000000] [--workdir .bench/ingest]

For each size it writes a synthetic order-lines CSV (about 1% missing customer ids, 2%
cancellations, 0.5% duplicated lines, a few bad dates and zero prices), then measures, each in a
fresh subprocess so peak RSS is the process's own:

- ``workbench``: ``workbench.ingest.pipeline.ingest`` (DuckDB, streaming, quarantine written);
- ``pandas``: ``pandas.read_csv`` + the same cleaning (types, UTC, reasons, duplicates) in memory.

It prints rows/s, seconds and peak RSS for both, and their ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]


def make_csv(path: Path, lines: int) -> Path:
    """Write ``lines`` synthetic order lines with realistic dirt (DuckDB, streaming)."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(
        f"""
        COPY (
          SELECT
            CASE WHEN i % 50 = 7 THEN 'C' ELSE '' END || (i // 3)::VARCHAR AS order_id,
            CASE WHEN i % 100 = 3 THEN NULL
                 ELSE ((hash(i // 3) % 1000000) + 1)::VARCHAR || '.0' END AS customer_id,
            CASE WHEN i % 100000 = 5 THEN 'not a date'
                 ELSE strftime(TIMESTAMP '2023-01-01' + INTERVAL (i // 3 * 37 % 86400000) SECOND,
                               '%Y-%m-%d %H:%M:%S') END AS ordered_at,
            'P' || (hash(i) % 20000)::VARCHAR AS product_id,
            CASE WHEN i % 50 = 7 THEN -1 ELSE 1 + (i % 5) END AS quantity,
            CASE WHEN i % 20000 = 11 THEN '0' ELSE round(1 + (hash(i) % 5000) / 100.0, 2)::VARCHAR
                 END AS unit_price,
            'United Kingdom' AS country
          FROM range({lines}) t(i)
          UNION ALL
          SELECT (i // 3)::VARCHAR, ((hash(i // 3) % 1000000) + 1)::VARCHAR || '.0',
                 strftime(TIMESTAMP '2023-01-01' + INTERVAL (i // 3 * 37 % 86400000) SECOND,
                          '%Y-%m-%d %H:%M:%S'),
                 'P' || (hash(i) % 20000)::VARCHAR, 1 + (i % 5),
                 round(1 + (hash(i) % 5000) / 100.0, 2)::VARCHAR, 'United Kingdom'
          FROM range({lines // 200}) t(i) WHERE i % 50 != 7 AND i % 100 != 3
        ) TO '{path}' (HEADER, DELIMITER ',')
        """
    )
    return path


WORKBENCH = """
import json, resource, sys, time
from pathlib import Path
from workbench.params import parse_params
from workbench.ingest.pipeline import ingest
csv, out, limit = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
params = parse_params({"run_name": "bench", "currency": "GBP", "ingest": {"memory_limit": limit},
                       "data": {"orders": {"path": csv, "cancel_prefix": "C",
                                           "columns": {"customer_country": "country"}}}})
t0, c0 = time.perf_counter(), time.process_time()
summary = ingest(params, out, progress=False)
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
rep = summary["tables"]["orders"]
print(json.dumps({"seconds": seconds, "cpu": cpu, "rows": rep["rows_read"],
                  "kept": rep["rows_kept"], "quarantined": rep["quarantined"],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PANDAS = """
import json, resource, sys, time
import numpy as np, pandas as pd
csv, out = sys.argv[1], sys.argv[2]
t0, c0 = time.perf_counter(), time.process_time()
df = pd.read_csv(csv, dtype=str, keep_default_na=False)
n = len(df)
cust = df.customer_id.str.strip().replace("", np.nan).str.replace(r"\\.0+$", "", regex=True)
ts = pd.to_datetime(df.ordered_at, errors="coerce", utc=True)
qty = pd.to_numeric(df.quantity, errors="coerce")
price = pd.to_numeric(df.unit_price, errors="coerce")
reason = pd.Series(None, index=df.index, dtype=object)
for name, cond in [("missing_customer_id", cust.isna()), ("bad_timestamp", ts.isna()),
                   ("bad_quantity", qty.isna()), ("bad_price", price.isna()),
                   ("zero_quantity", qty == 0), ("negative_price", price < 0),
                   ("zero_price", price == 0)]:
    reason = reason.where(reason.notna() | ~cond, name)
clean = pd.DataFrame({"order_id": df.order_id, "customer_id": cust, "ordered_at": ts,
                      "product_id": df.product_id, "quantity": qty, "unit_price": price})
dup = clean.duplicated() & reason.isna()
reason = reason.where(~dup, "duplicate_line")
is_return = clean.order_id.str.startswith("C") | (clean.quantity < 0)
clean["quantity"] = np.where(is_return, -clean.quantity.abs(), clean.quantity)
clean["revenue"] = clean.quantity.abs() * clean.unit_price * np.where(is_return, -1, 1)
clean["is_return"] = is_return
good = reason.isna()
clean[good].to_parquet(out + ".orders.parquet")
df[~good].assign(reason=reason[~good]).to_parquet(out + ".quarantine.parquet")
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"seconds": seconds, "cpu": cpu, "rows": n, "kept": int(good.sum()),
                  "quarantined": reason[~good].value_counts().to_dict(),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(code: str, csv: Path, out: Path, *extra: str) -> dict:
    """Run one measurement in a fresh interpreter and return its JSON line."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(csv), str(out), *extra],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    """Run the benchmark for each size and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--workdir", type=Path, default=ROOT / ".bench" / "ingest")
    parser.add_argument(
        "--memory-limit",
        default="4GB",
        help="DuckDB memory limit of the workbench ingest (params ingest.memory_limit); "
        "peak RSS follows it, work beyond it spills to disk",
    )
    args = parser.parse_args()
    rows = []
    for lines in args.lines:
        csv = make_csv(args.workdir / f"orders_{lines}.csv", lines)
        mb = csv.stat().st_size / 1e6
        wb = measure(WORKBENCH, csv, args.workdir / f"wb_{lines}", args.memory_limit)
        pdm = measure(PANDAS, csv, args.workdir / f"pd_{lines}")
        assert wb["rows"] == pdm["rows"], (wb["rows"], pdm["rows"])
        rows.append((lines, mb, wb, pdm))
        print(f"\n{wb['rows']:,} lines ({mb:,.0f} MB CSV), DuckDB memory limit {args.memory_limit}")
        for name, m in (("workbench (DuckDB)", wb), ("pandas read_csv+clean", pdm)):
            print(
                f"  {name:<22} {m['seconds']:8.1f} s (cpu {m['cpu']:6.1f} s)"
                f"  {m['rows'] / m['seconds']:>12,.0f} rows/s"
                f"  peak RSS {m['peak_rss_mb']:8,.0f} MB  kept {m['kept']:,}"
            )
        print(
            f"  ratio pandas/workbench: time x{pdm['seconds'] / wb['seconds']:.2f}, "
            f"cpu x{pdm['cpu'] / wb['cpu']:.2f}, "
            f"peak RSS x{pdm['peak_rss_mb'] / wb['peak_rss_mb']:.2f}"
        )
        print(f"  workbench quarantine: {wb['quarantined']}")


if __name__ == "__main__":
    main()
