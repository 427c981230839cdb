"""The whole monthly run at scale: per-step wall time and peak RSS, DuckDB vs Spark local.

Usage::

    nice .venv/bin/python bench/pipeline.py --customers 100000 1000000 [3000000] \\
        [--engines duckdb pyspark] [--set key=value ...]

For each size it generates (once, cached under ``.bench/pipeline_<customers>/shop``, with web
events) a synthetic shop, then runs ``workbench run <shop>/params.yaml`` per engine in a child
process, exactly as a scheduled job would (every notebook with papermill, one run folder). It
samples the resident memory of the whole process tree (runner, notebook kernels, the Spark JVM)
every 0.5 s, reads the per-step timings from ``manifest.json``, and prints one table: customers
x engine x step, seconds, and the tree's peak RSS. When both engines ran on a size, their
outputs are compared with :func:`workbench.parity.compare_runs`.

Results go to ``.bench/pipeline.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

log = logging.getLogger("bench.pipeline")
ROOT = Path(__file__).resolve().parent.parent


def prepare(folder: Path, customers: int, seed: int) -> Path:
    """Generate the synthetic shop once; returns its params file."""
    shop = folder / "shop"
    params = shop / "params.yaml"
    if not params.exists():
        from workbench.synth import generate

        log.info("generating %s customers into %s", f"{customers:,}", shop)
        started = time.perf_counter()
        generate(customers, seed, shop, events=True, progress=True)
        log.info("generated in %.0f s", time.perf_counter() - started)
    return params


class TreeMemory:
    """Peak resident memory of a process and all its descendants, sampled in a thread.

    Each notebook step runs in its own kernel process, so the peak is also kept per kernel,
    in the order the kernels appeared (``kernel_peaks_mb``): step i is the i-th kernel.
    """

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.root = psutil.Process(pid)
        self.every = every
        self.peak_mb = 0.0
        self.kernel_peaks_mb: dict[int, float] = {}
        self._is_kernel: dict[int, bool] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _kernel(self, proc: psutil.Process) -> bool:
        if proc.pid not in self._is_kernel:
            try:
                self._is_kernel[proc.pid] = "ipykernel" in " ".join(proc.cmdline())
            except psutil.Error:
                return False
        return self._is_kernel[proc.pid]

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for proc in procs:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    continue
            mb = total / 2**20
            self.peak_mb = max(self.peak_mb, mb)
            for proc in procs:
                if self._kernel(proc):
                    self.kernel_peaks_mb[proc.pid] = max(self.kernel_peaks_mb.get(proc.pid, 0), mb)
            self._stop.wait(self.every)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_pipeline(params: Path, out: Path, engine: str, overrides: list[str]) -> dict[str, Any]:
    """``workbench run`` in a child process; wall time, tree peak RSS and step timings."""
    args = [str(ROOT / ".venv" / "bin" / "workbench"), "run", str(params), "--out", str(out)]
    for item in [f"engine={engine}", *overrides]:
        args += ["--set", item]
    log.info("running %s", " ".join(args))
    started = time.perf_counter()
    with open(out.parent / f"run_{engine}.log", "w") as fh:
        proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
        with TreeMemory(proc.pid) as mem:
            code = proc.wait()
    seconds = time.perf_counter() - started
    runs = sorted(out.glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)
    manifest = json.loads(runs[-1].read_text()) if runs else {}
    return {
        "exit_code": code,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(mem.peak_mb),
        "run_dir": str(runs[-1].parent) if runs else None,
        "steps": {s["name"]: s.get("seconds") for s in manifest.get("steps", [])},
        "step_peak_rss_mb": {
            s["name"]: round(mb)
            for s, mb in zip(manifest.get("steps", []), mem.kernel_peaks_mb.values(), strict=False)
        },
        "status": manifest.get("status"),
    }


def table(results: dict[str, Any]) -> str:
    """customers x engine rows, one column per step."""
    steps: list[str] = []
    for by_engine in results["runs"].values():
        for r in by_engine.values():
            steps += [s for s in r["steps"] if s not in steps]
    head = f"{'customers':>10} {'engine':<8} " + " ".join(f"{s:>12}" for s in steps)
    lines = [head + f" {'total s':>9} {'peak RSS MB':>12} {'status':>10}"]
    for size, by_engine in results["runs"].items():
        for engine, r in by_engine.items():
            cells = " ".join(f"{r['steps'].get(s) or 0:>12.1f}" for s in steps)
            lines.append(
                f"{int(size):>10,} {engine:<8} {cells} {r['seconds']:>9.1f} "
                f"{r['peak_rss_mb']:>12,} {r['status'] or 'failed':>10}"
            )
    lines.append("peak RSS MB per step (the whole process tree while the step's kernel ran):")
    for size, by_engine in results["runs"].items():
        for engine, r in by_engine.items():
            peaks = r.get("step_peak_rss_mb", {})
            cells = " ".join(f"{peaks.get(s, 0):>12,}" for s in steps)
            lines.append(f"{int(size):>10,} {engine:<8} {cells}")
    for size, parity in results.get("parity", {}).items():
        verdict = "same outputs" if parity["same"] else "; ".join(parity["mismatches"][:3])
        lines.append(f"parity {int(size):,}: {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--engines", nargs="+", default=["duckdb"], choices=["duckdb", "pyspark"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out_file = ROOT / ".bench" / "pipeline.json"
    results: dict[str, Any] = (
        json.loads(out_file.read_text()) if out_file.exists() else {"runs": {}, "parity": {}}
    )
    results["cpus"] = os.cpu_count()
    results["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    for customers in args.customers:
        folder = ROOT / ".bench" / f"pipeline_{customers}"
        params = prepare(folder, customers, args.seed)
        by_engine = results["runs"].setdefault(str(customers), {})
        for engine in args.engines:
            by_engine[engine] = run_pipeline(
                params, folder / f"outputs_{engine}", engine, args.overrides
            )
            log.info("%s %s: %s", customers, engine, by_engine[engine])
            out_file.parent.mkdir(exist_ok=True)
            out_file.write_text(json.dumps(results, indent=1))
        runs = {e: r.get("run_dir") for e, r in by_engine.items()}
        if runs.get("duckdb") and runs.get("pyspark"):
            from workbench.parity import compare_runs

            report = compare_runs(Path(runs["duckdb"]), Path(runs["pyspark"]))
            results["parity"][str(customers)] = {
                "same": report.same,
                "mismatches": report.mismatches,
                "max_abs_diff": report.max_abs_diff,
            }
        out_file.write_text(json.dumps(results, indent=1))
    sys.stdout.write(table(results) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
