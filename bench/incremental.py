"""Incremental vs full ingest of a monthly job whose orders and events are folders of Parquet.

Usage::

    nice .venv/bin/python bench/incremental.py [--shop .bench/pipeline_1000000/shop] [--days 30]

Splits the synthetic shop's orders and events at ``--days`` before the last order into an
"old" and a "new" file per table (cached under ``.bench/incremental/``), ingests the old files
once as the previous month's run, then times, each in a fresh subprocess (peak RSS is its own):

- ``full``: ``ingest`` of both files with ``ingest.incremental: false``;
- ``incremental``: the same with ``ingest.incremental: true`` (reads only the new files).

It checks that both give the same canonical tables and quarantine counts, and prints seconds,
peak RSS and the speed-up. Results go to ``.bench/incremental.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("WB_BENCH_WORK", ROOT / ".bench" / "incremental"))

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from workbench.ingest.pipeline import ingest
    from workbench.params import load_params
    params_file, run_dir, incremental, parts = sys.argv[1:5]
    params = load_params(params_file, [
        f"data.orders.path={parts}/orders", f"data.events.path={parts}/events",
        f"ingest.incremental={incremental}",
    ])
    t = time.perf_counter()
    summary = ingest(params, run_dir, progress=False)
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "summary": summary}, default=str))
    """
)


def split(shop: Path, days: int) -> Path:
    """Old / new Parquet files per table (DuckDB, streaming)."""
    import duckdb

    parts = WORK / f"parts_{days}d"
    if (parts / "events" / "new.parquet").exists():
        return parts
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cut = con.execute(
        f"SELECT (max(ordered_at) - INTERVAL {days} DAY)::VARCHAR FROM '{shop / 'orders.parquet'}'"
    ).fetchone()[0]
    for name, col in (("orders", "ordered_at"), ("events", "occurred_at")):
        (parts / name).mkdir(parents=True, exist_ok=True)
        src = shop / f"{name}.parquet"
        for part, cond in (
            ("old", f"{col} <= $cut::TIMESTAMPTZ"),
            ("new", f"{col} > $cut::TIMESTAMPTZ"),
        ):
            con.execute(
                f"COPY (SELECT * FROM '{src}' WHERE {cond}) TO '{parts / name / part}.parquet' "
                "(FORMAT parquet, COMPRESSION zstd)",
                {"cut": cut},
            )
    return parts


def child(params: Path, run_dir: Path, incremental: bool, parts: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(params), str(run_dir), str(incremental).lower(), parts],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shop", type=Path, default=ROOT / ".bench/pipeline_1000000/shop")
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args(argv)
    params = args.shop / "params.yaml"
    if not params.exists():  # the shop bench/pipeline.py generates for 1M customers
        from workbench.synth import generate

        generate(1_000_000, 1, args.shop, events=True, progress=True)
    parts = split(args.shop, args.days)
    outputs = WORK / "outputs"
    shutil.rmtree(outputs, ignore_errors=True)
    new_files = [parts / n / "new.parquet" for n in ("orders", "events")]
    hidden = [p.with_suffix(".hidden") for p in new_files]
    for p, h in zip(new_files, hidden, strict=True):
        p.rename(h)
    try:
        previous = outputs / "synth_previous"
        child(params, previous, True, parts)
        (previous / "manifest.json").write_text(
            json.dumps({"run_name": "synth", "status": "succeeded", "as_of": "0001-01-01"})
        )
    finally:
        for p, h in zip(new_files, hidden, strict=True):
            h.rename(p)
    full = child(params, WORK / "full", False, parts)
    inc = child(params, outputs / ".tmp-synth-now", True, parts)
    same = (
        full["summary"]["quarantined"] == inc["summary"]["quarantined"]
        and full["summary"]["tables"]["orders"]["facts"]
        == inc["summary"]["tables"]["orders"]["facts"]
        and all(
            full["summary"]["tables"][n]["rows_kept"] == inc["summary"]["tables"][n]["rows_kept"]
            for n in ("orders", "events")
        )
    )
    rows = {n: full["summary"]["tables"][n]["rows_kept"] for n in ("orders", "events")}
    new_rows = {n: inc["summary"]["incremental"][n] for n in ("orders", "events")}
    result = {
        "shop": str(args.shop),
        "days_new": args.days,
        "rows": rows,
        "incremental": new_rows,
        "full": {k: full[k] for k in ("seconds", "peak_rss_mb")},
        "incremental_run": {k: inc[k] for k in ("seconds", "peak_rss_mb")},
        "speedup": full["seconds"] / inc["seconds"],
        "same_outputs": same,
    }
    (ROOT / ".bench" / "incremental.json").write_text(json.dumps(result, indent=1))
    print(f"orders {rows['orders']:,} lines, events {rows['events']:,}; new: last {args.days} days")
    for name in ("full", "incremental_run"):
        r = result[name]
        print(f"{name:<16} {r['seconds']:8.1f} s {r['peak_rss_mb']:8,.0f} MB")
    print(f"speed-up {result['speedup']:.1f}x; same tables and quarantine: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
