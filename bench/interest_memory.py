"""Where the Interested-In step's memory goes: ``fit_interest`` with a per-second sampler.

Usage::

    # a run folder of bench/pipeline.py (ingest + features done), e.g. at 3M customers
    nice .venv/bin/python bench/interest_memory.py \\
        --run .bench/pipeline_3000000/outputs_duckdb/synth_2025-12-30 --out .bench/mem_3m.tsv

Refits the run folder's interest model (``interest_model/`` and ``interest.parquet`` are
rewritten, with the same result). Every second it writes one line to ``--out``: seconds since
the start, the RSS (MB) of the process tree, per-process RSS (``pid:MB``) and the last
``workbench`` frames of the main thread's stack, so a peak can be traced to the stage that
made it. At the end it prints the peak line, the wall time and each level's stage seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
import traceback
from pathlib import Path

import psutil

from workbench.models.interest import fit_interest
from workbench.params import load_params


def _sample(out: Path, stop: threading.Event, interval: float) -> None:
    main_id = threading.main_thread().ident
    me = psutil.Process()
    start = time.time()
    with out.open("w", buffering=1) as f:
        while not stop.is_set():
            rss = []
            for proc in [me, *me.children(recursive=True)]:
                try:
                    rss.append((proc.pid, proc.memory_info().rss >> 20))
                except psutil.Error:
                    continue
            frame = sys._current_frames().get(main_id)
            stack = traceback.extract_stack(frame) if frame is not None else []
            names = [
                f"{Path(s.filename).stem}.{s.name}" for s in stack if "workbench" in s.filename
            ]
            procs = " ".join(f"{pid}:{mb}" for pid, mb in rss)
            total = sum(mb for _, mb in rss)
            f.write(f"{time.time() - start:.1f}\t{total}\t{procs}\t{' > '.join(names[-4:])}\n")
            stop.wait(interval)


def main() -> None:
    """Fit the interest model of ``--run`` while sampling; print the peak and the stage times."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="run folder (with params.yaml)")
    parser.add_argument("--out", type=Path, required=True, help="samples (TSV)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    params = load_params(args.run / "params.yaml")
    stop = threading.Event()
    sampler = threading.Thread(target=_sample, args=(args.out, stop, args.interval), daemon=True)
    sampler.start()
    started = time.perf_counter()
    summary = fit_interest(params, args.run, progress=False)
    seconds = round(time.perf_counter() - started, 1)
    stop.set()
    sampler.join()
    lines = [line.rstrip("\n").split("\t") for line in args.out.open()]
    peak = max(lines, key=lambda r: int(r[1]))
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": int(peak[1]),
                "peak_at_s": float(peak[0]),
                "peak_processes": peak[2],
                "peak_stack": peak[3] if len(peak) > 3 else "",
                "stage_seconds": {k: v.get("stage_seconds") for k, v in summary["levels"].items()},
                "top_k_seconds": summary.get("top_k_seconds"),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
