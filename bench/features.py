"""Benchmark the customer summary and the BG/NBD fit at 1M customers / ~10M order lines.

In one run, each contender in its own process (so peak RSS is its own):

- ``ours``: :func:`workbench.models.summary.rfm_summary` (ibis on DuckDB over the Parquet file);
- ``pandas``: a plain pandas groupby computing the same summary;
- ``lifetimes``: ``lifetimes.utils.summary_data_from_transaction_data``;
- ``fit``: BG/NBD (lifetimes, through our adapter) on weighted sufficient statistics vs the plain
  per-customer fit, and the largest parameter difference between them;
- ``full``: :func:`workbench.models.customers.build_customers` (features, CLV, labels) plus
  writing customers.parquet: the design target "1M customers in minutes".

Data: the synthetic shop (``workbench.synth``) ingested with our pipeline, cached under
``.bench/`` (git-ignored). Run with ``nice .venv/bin/python bench/features.py``; results are
printed and written to ``.bench/features.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import resource
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

log = logging.getLogger("bench.features")
ROOT = Path(__file__).resolve().parent.parent


def _peak_rss_mb() -> float:
    """Peak resident memory of this process image (VmHWM: reset at exec, unlike ru_maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def prepare(folder: Path, customers: int, seed: int) -> tuple[Path, date]:
    """Generate and ingest the synthetic shop once; returns the orders file and the as-of day."""
    from workbench.ingest.pipeline import ingest
    from workbench.params import load_params
    from workbench.synth import generate

    shop, run = folder / "shop", folder / "run"
    orders = run / "data" / "orders.parquet"
    if not orders.exists():
        if not (shop / "params.yaml").exists():  # a shop may be shared (e.g. a symlink)
            log.info("generating %s customers into %s", customers, shop)
            generate(customers, seed, shop, events=False, progress=True)
        log.info("ingesting %s", shop)
        ingest(load_params(shop / "params.yaml"), run, progress=True)
    truth = json.loads((shop / "truth" / "truth.json").read_text())
    return orders, date.fromisoformat(truth["end"][:10]) - timedelta(days=1)


def step_ours(orders: Path, as_of: date, out: Path) -> dict[str, Any]:
    from workbench import engine
    from workbench.models.features import end_of_day
    from workbench.models.summary import rfm_summary, sufficient_statistics

    con = engine.connect("duckdb", threads=2)
    started = time.perf_counter()
    table = engine.read_parquet(con, orders)
    summary = rfm_summary(table, end_of_day(as_of), "days").to_pandas()
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    stats = sufficient_statistics(rfm_summary(table, end_of_day(as_of), "weeks"), "weeks")
    grouping = time.perf_counter() - started
    summary.to_parquet(out / "ours.parquet")
    stats.to_parquet(out / "stats.parquet")
    return {
        "seconds": seconds,
        "sufficient_statistics_seconds": grouping,
        "customers": len(summary),
        "weighted_rows": len(stats),
    }


def _sales_frame(orders: Path):
    import pandas as pd

    df = pd.read_parquet(orders, columns=["customer_id", "ordered_at", "revenue", "is_return"])
    df = df.loc[~df["is_return"]]
    return df.assign(revenue=df["revenue"].astype("float64"))


def step_pandas(orders: Path, as_of: date, out: Path) -> dict[str, Any]:
    import pandas as pd

    started = time.perf_counter()
    df = _sales_frame(orders)
    read = time.perf_counter() - started
    day = df["ordered_at"].dt.tz_convert("UTC").dt.floor("D")
    per_day = df.assign(day=day).groupby(["customer_id", "day"], sort=True)["revenue"].sum()
    per_day = per_day.reset_index()
    g = per_day.groupby("customer_id", sort=False)
    first = g["day"].transform("min")
    rep = per_day.loc[per_day["day"] > first]
    end = pd.Timestamp(as_of, tz="UTC")
    summary = pd.DataFrame(
        {
            "frequency": g.size() - 1,
            "recency": (g["day"].max() - g["day"].min()).dt.days.astype("float64"),
            "T": (end - g["day"].min()).dt.days.astype("float64"),
        }
    )
    summary["monetary"] = rep.groupby("customer_id")["revenue"].mean()
    summary["monetary"] = summary["monetary"].fillna(0.0)
    seconds = time.perf_counter() - started
    summary.rename_axis("customer_id").reset_index().to_parquet(out / "pandas.parquet")
    return {"seconds": seconds, "read_seconds": read, "customers": len(summary)}


def step_lifetimes(orders: Path, as_of: date, out: Path) -> dict[str, Any]:
    from lifetimes.utils import summary_data_from_transaction_data

    started = time.perf_counter()
    df = _sales_frame(orders)
    df["ordered_at"] = df["ordered_at"].dt.tz_convert("UTC").dt.tz_localize(None)
    read = time.perf_counter() - started
    summary = summary_data_from_transaction_data(
        df,
        "customer_id",
        "ordered_at",
        monetary_value_col="revenue",
        observation_period_end=str(as_of),
        freq="D",
    )
    seconds = time.perf_counter() - started
    summary.rename_axis("customer_id").reset_index().to_parquet(out / "lifetimes.parquet")
    return {"seconds": seconds, "read_seconds": read, "customers": len(summary)}


def step_fit(orders: Path, as_of: date, out: Path) -> dict[str, Any]:
    import pandas as pd

    from workbench.models.clv import BGNBDModel
    from workbench.models.summary import coarsen_statistics

    stats = pd.read_parquet(out / "stats.parquet")
    ours = pd.read_parquet(out / "ours.parquet")
    BGNBDModel().fit(stats.head(2_000))  # warm up: imports, autograd tracing
    per_customer = pd.DataFrame(
        {
            "frequency": ours["frequency"],
            "recency": ours["recency"] / 7,
            "T": ours["T"] / 7,
            "weight": 1.0,
        }
    )
    coarse, how = coarsen_statistics(stats, 100_000, "weeks")  # below the default bound
    fits = {}
    for name, rows in (("weighted", stats), ("coarsened", coarse), ("per_customer", per_customer)):
        started = time.perf_counter()
        model = BGNBDModel().fit(rows)
        fits[name] = {
            "seconds": time.perf_counter() - started,
            "rows": len(rows),
            "params": model.params_,
            "method": model.method_,
            "log_likelihood": model.log_likelihood_,
        }
    plain = fits["per_customer"]["params"]
    for name in ("weighted", "coarsened"):
        fits[name]["max_relative_param_difference"] = max(
            abs(fits[name]["params"][k] - plain[k]) / abs(plain[k]) for k in plain
        )
    fits["coarsened"]["grouping"] = how
    return fits


def step_full(orders: Path, as_of: date, out: Path) -> dict[str, Any]:
    from workbench import engine
    from workbench.models.customers import build_customers
    from workbench.models.features import end_of_day

    con = engine.connect("duckdb", threads=2, workdir=out / "work")
    started = time.perf_counter()
    data = orders.parent
    models = build_customers(
        engine.read_parquet(con, orders),
        end_of_day(as_of),
        customers=engine.read_parquet(con, data / "customers.parquet"),
    )
    engine.write_parquet(models.table, out / "customers.parquet")
    return {
        "seconds": time.perf_counter() - started,
        "customers": models.metrics["customers"],
        "bgnbd_method": models.metrics["clv"]["bgnbd"]["method"],
    }


STEPS = {
    "ours": step_ours,
    "pandas": step_pandas,
    "lifetimes": step_lifetimes,
    "fit": step_fit,
    "full": step_full,
}


def _child(name: str, orders: Path, as_of: date, out: Path, queue: mp.Queue) -> None:
    logging.basicConfig(level=logging.WARNING)
    result = STEPS[name](orders, as_of, out)
    result["peak_rss_mb"] = _peak_rss_mb()
    queue.put(result)


def run_step(name: str, orders: Path, as_of: date, out: Path) -> dict[str, Any]:
    """Run one step in a fresh process; returns its figures (with its own peak RSS)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, orders, as_of, out, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def agreement(out: Path, orders: Path) -> dict[str, Any]:
    """Largest differences between the three summaries (same customers, same definitions).

    Monetary is compared on customers without returns: ours scales the mean repeat spend by
    the share of sales not returned, lifetimes and the plain groupby ignore returns.
    """
    import numpy as np
    import pandas as pd

    frames = {
        n: pd.read_parquet(out / f"{n}.parquet").set_index("customer_id").sort_index()
        for n in ("ours", "pandas", "lifetimes")
    }
    lines = pd.read_parquet(orders, columns=["customer_id", "is_return"])
    returned = set(lines.loc[lines["is_return"], "customer_id"])
    ref = frames["ours"]
    clean = ~ref.index.isin(list(returned))
    result: dict[str, Any] = {"customers_without_returns": int(clean.sum())}
    for name in ("pandas", "lifetimes"):
        other = frames[name].reindex(ref.index)
        monetary = other["monetary"] if "monetary" in other else other["monetary_value"]
        result[name] = {
            "same_customers": bool(frames[name].index.equals(ref.index)),
            **{
                f"max_abs_diff_{col}": float(np.nanmax(np.abs(ref[col] - other[col])))
                for col in ("frequency", "recency", "T")
            },
            "max_abs_diff_monetary": float(
                np.nanmax(np.abs(ref["monetary"][clean] - monetary[clean]))
            ),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, default=None, help="cache folder (.bench/...)")
    parser.add_argument("--steps", nargs="*", default=list(STEPS), choices=list(STEPS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    folder = args.data or ROOT / ".bench" / f"synth_{args.customers}"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "results"
    out.mkdir(exist_ok=True)
    orders, as_of = prepare(folder, args.customers, args.seed)
    import pyarrow.parquet as pq

    lines = pq.ParquetFile(orders).metadata.num_rows
    results: dict[str, Any] = {
        "customers": args.customers,
        "order_lines": lines,
        "as_of": str(as_of),
        "cpus": os.cpu_count(),
    }
    for name in args.steps:
        log.info("step %s", name)
        results[name] = run_step(name, orders, as_of, out)
        log.info("step %s: %s", name, results[name])
    if {"ours", "pandas", "lifetimes"} <= set(args.steps):
        results["agreement"] = agreement(out, orders)
        ours = results["ours"]
        results["ratios"] = {
            f"{name}_vs_ours": {
                "time": results[name]["seconds"] / ours["seconds"],
                "peak_rss": results[name]["peak_rss_mb"] / ours["peak_rss_mb"],
            }
            for name in ("pandas", "lifetimes")
        }
    (ROOT / ".bench").mkdir(exist_ok=True)
    (ROOT / ".bench" / "features.json").write_text(json.dumps(results, indent=2, default=str))
    sys.stdout.write(report(results) + "\n")
    return 0


def report(results: dict[str, Any]) -> str:
    """The figures as a few readable lines."""
    lines = [
        f"{results['customers']:,} customers, {results['order_lines']:,} order lines, "
        f"{results['cpus']} CPUs"
    ]
    for name in ("ours", "pandas", "lifetimes"):
        if name in results:
            r = results[name]
            lines.append(
                f"  summary {name:<10} {r['seconds']:8.1f} s  peak RSS {r['peak_rss_mb']:8.0f} MB"
            )
    for key, r in results.get("ratios", {}).items():
        lines.append(f"  {key}: {r['time']:.1f}x time, {r['peak_rss']:.1f}x peak RSS")
    if "fit" in results:
        f = results["fit"]
        plain = f["per_customer"]
        lines.append(f"  BG/NBD fit per customer: {plain['rows']:,} rows {plain['seconds']:.1f} s")
        for name in ("weighted", "coarsened"):
            r = f[name]
            lines.append(
                f"  BG/NBD fit {name}: {r['rows']:,} rows {r['seconds']:.1f} s "
                f"({plain['seconds'] / r['seconds']:.1f}x faster), largest relative parameter "
                f"difference {r['max_relative_param_difference']:.1e} {r.get('grouping', '')}"
            )
    if "full" in results:
        f = results["full"]
        lines.append(
            f"  build_customers + customers.parquet: {f['seconds']:.1f} s, peak RSS "
            f"{f['peak_rss_mb']:.0f} MB ({f['bgnbd_method']})"
        )
    if "agreement" in results:
        lines.append(f"  agreement with ours: {json.dumps(results['agreement'])}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
