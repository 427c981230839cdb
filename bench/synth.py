"""Benchmark: generate a synthetic shop (default 1M customers) and report rows, time and memory.

nice -n 10 .venv/bin/python bench/synth.py                      # temp dir, removed after
nice -n 10 .venv/bin/python bench/synth.py --out data/synth_1m  # keep it (git-ignored)
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from workbench.synth import generate


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="keep the data here")
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--no-events", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    tmp = None
    out = args.out
    if out is None:
        tmp = Path(tempfile.mkdtemp(prefix="synth_bench_"))
        out = tmp / "shop"
    try:
        t0 = time.perf_counter()
        summary = generate(
            args.customers,
            args.seed,
            out,
            events=not args.no_events,
            progress=not args.no_progress,
            chunk_size=args.chunk_size,
        )
        seconds = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows = summary["rows"]
        total = sum(rows.values())
        print(f"synth bench: {args.customers:,} customers, seed {args.seed}, out {out}")
        for name, n in rows.items():
            print(f"  {name:<16} {n:>14,} rows")
        print(f"  {'total':<16} {total:>14,} rows")
        print(f"  seconds          {seconds:>14.1f}")
        print(f"  rows/s           {total / seconds:>14,.0f}")
        print(f"  order lines/s    {rows['orders'] / seconds:>14,.0f}")
        print(f"  peak RSS         {peak_mb:>14,.0f} MB")
        print(f"  on disk          {_size(out) / 2**20:>14,.0f} MB")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
