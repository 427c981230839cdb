"""Benchmark Interested In at 1M customers: fit time, scoring time and peak RSS per step.

Data: the synthetic shop (``workbench.synth``, with web events and the default 30,000-product
catalogue) ingested with our pipeline, cached under ``.bench/interest_<customers>/``
(git-ignored). Each step runs in a fresh process, so its peak RSS is its own:

- ``fit_<level>``: one level fitted as of the last day (calibration on the horizon before it,
  item-item model, profiles) and saved to ``interest_model/``;
- ``top_k``: ``top_k_table`` over every customer and fitted level (``interest.parquet``);
- ``score_target``: one audience query per level (every customer ranked for one target).

Run with ``nice .venv/bin/python bench/interest.py``; results are printed and written to
``.bench/interest.json``.
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
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

log = logging.getLogger("bench.interest")
ROOT = Path(__file__).resolve().parent.parent
LEVELS = ("category", "brand", "keyword", "product")


def _peak_rss_mb() -> float:
    """Peak resident memory of this process image (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def prepare(folder: Path, customers: int, seed: int) -> Path:
    """Generate (with events) and ingest the synthetic shop once; returns the run folder."""
    from workbench.ingest.pipeline import ingest
    from workbench.params import load_params
    from workbench.synth import generate

    shop, run = folder / "shop", folder / "run"
    if not (run / "data" / "events.parquet").exists():
        if not (shop / "params.yaml").exists():  # a shop may be shared (e.g. a symlink)
            log.info("generating %s customers into %s", customers, shop)
            generate(customers, seed, shop, events=True, progress=True)
        log.info("ingesting %s", shop)
        ingest(load_params(shop / "params.yaml"), run, progress=True)
    return run


def _params(run: Path, levels: list[str]) -> Any:
    from workbench.params import load_params

    return load_params(
        run.parent / "shop" / "params.yaml", [f"interest.levels=[{','.join(levels)}]"]
    )


def step_fit(run: Path, level: str) -> dict[str, Any]:
    from workbench import engine
    from workbench.models import interest_data as idata
    from workbench.models import interest_store as store
    from workbench.models.interest import fit_levels

    con = engine.connect("duckdb", threads=2, workdir=run / "work", memory_limit="8GB")
    started = time.perf_counter()
    source = idata.InterestSource.from_run_dir(con, run)
    as_of = idata.instant(source.last_order_at().date())
    customers = idata.customer_ids(source, as_of)
    model = fit_levels(source, [level], as_of, 90, customers)[level]
    fit_seconds = time.perf_counter() - started
    folder = run / store.MODEL_DIR
    if not (folder / "customers.parquet").exists():
        store.save_customers(folder, customers, model.snapshot_.customer)
    store.save_model(model, folder)
    return {
        "seconds": time.perf_counter() - started,
        "fit_seconds": fit_seconds,
        "customers": len(customers),
        "targets": model.catalog_.size,
        "profile_entries": model.snapshot_.profile.nnz,
        "ease_targets": len(model.snapshot_.itemitem.dense_index_),
        "cosine_weights": int(model.snapshot_.itemitem.sparse_weights_.nnz),
        "calibration_rows": model.fit_info_["calibration_rows"],
        "l2_share": model.fit_info_["itemitem_l2_share"],
    }


def step_top_k(run: Path, level: str | None = None) -> dict[str, Any]:
    from workbench.models.interest import top_k_table

    started = time.perf_counter()
    path = top_k_table(run, top_k=10, rebuild=True)
    import pyarrow.parquet as pq

    return {
        "seconds": time.perf_counter() - started,
        "rows": pq.ParquetFile(path).metadata.num_rows,
    }


def step_score_target(run: Path, level: str | None = None) -> dict[str, Any]:
    import pandas as pd

    from workbench.models.interest import score_target

    top = pd.read_parquet(run / "interest.parquet", columns=["level", "target", "rank"])
    out = {}
    for lvl in top["level"].unique():
        target = top[(top["level"] == lvl) & (top["rank"] == 1)]["target"].mode()[0]
        started = time.perf_counter()
        frame = score_target(run, lvl, target)
        out[lvl] = {"target": target, "seconds": time.perf_counter() - started, "rows": len(frame)}
    return out


def _child(name: str, run: Path, level: str | None, queue: mp.Queue) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    step = {"fit": step_fit, "top_k": step_top_k, "score_target": step_score_target}[name]
    result = step(run, level)
    result["peak_rss_mb"] = _peak_rss_mb()
    queue.put(result)


def run_step(name: str, run: Path, level: str | None = None) -> dict[str, Any]:
    """Run one step in a fresh process; returns its figures (with its own peak RSS)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, run, level, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--levels", nargs="*", default=list(LEVELS), choices=list(LEVELS))
    parser.add_argument("--prepare-only", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    folder = ROOT / ".bench" / f"interest_{args.customers}"
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    run = prepare(folder, args.customers, args.seed)
    prepare_seconds = time.perf_counter() - started
    if args.prepare_only:
        return 0
    import pyarrow.parquet as pq

    results: dict[str, Any] = {
        "customers": args.customers,
        "order_lines": pq.ParquetFile(run / "data" / "orders.parquet").metadata.num_rows,
        "events": pq.ParquetFile(run / "data" / "events.parquet").metadata.num_rows,
        "products": pq.ParquetFile(run / "data" / "products.parquet").metadata.num_rows,
        "cpus": os.cpu_count(),
        "prepare_seconds": prepare_seconds,
        "fit": {},
    }
    import shutil

    shutil.rmtree(run / "interest_model", ignore_errors=True)
    for level in args.levels:
        log.info("fit %s", level)
        results["fit"][level] = run_step("fit", run, level)
        log.info("fit %s: %s", level, results["fit"][level])
    for name in ("top_k", "score_target"):
        log.info("step %s", name)
        results[name] = run_step(name, run)
        log.info("step %s: %s", name, results[name])
    (ROOT / ".bench").mkdir(exist_ok=True)
    (ROOT / ".bench" / "interest.json").write_text(json.dumps(results, indent=2, default=str))
    sys.stdout.write(report(results) + "\n")
    return 0


def report(results: dict[str, Any]) -> str:
    """The figures as a few readable lines."""
    lines = [
        f"{results['customers']:,} customers, {results['order_lines']:,} order lines, "
        f"{results['events']:,} events, {results['products']:,} products, {results['cpus']} CPUs"
    ]
    for level, r in results["fit"].items():
        lines.append(
            f"  fit {level:<9} {r['targets']:>7,} targets  {r['fit_seconds']:7.1f} s "
            f"(+save {r['seconds'] - r['fit_seconds']:.1f} s)  peak RSS {r['peak_rss_mb']:7.0f} MB"
            f"  profile {r['profile_entries']:,} entries, EASE {r['ease_targets']:,} targets"
        )
    t = results["top_k"]
    lines.append(
        f"  top_k (all levels) {t['seconds']:7.1f} s  {t['rows']:,} rows  "
        f"peak RSS {t['peak_rss_mb']:7.0f} MB"
    )
    s = results["score_target"]
    for level, r in s.items():
        if isinstance(r, dict):
            lines.append(
                f"  score_target {level:<9} {r['seconds']:6.1f} s  {r['rows']:,} customers"
            )
    lines.append(f"  score_target peak RSS {s['peak_rss_mb']:.0f} MB")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
