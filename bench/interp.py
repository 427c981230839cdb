"""The blender's interpolation (calibration curve, shape functions) against ``numpy.interp``.

Every (customer, target) cell of the top-k table goes through the isotonic calibration curve
(about 260 knots on the 1M synthetic shop) and a few shape functions (about 7 knots). The
values are logits in no particular order, as in a customers x targets block.

Usage::

    nice .venv/bin/python bench/interp.py [--cells 20000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from workbench.models.interp import Interpolator


def best(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.normal(-6.0, 2.0, args.cells).astype(np.float32)
    print(f"{args.cells:,} float32 values; best of {args.repeat}")
    print(f"{'knots':>6} {'numpy.interp s':>15} {'Interpolator s':>15} {'ratio':>6} equal")
    for knots in (7, 260, 2000):
        xp = np.sort(rng.normal(-6.0, 2.0, knots))
        fp = np.sort(rng.random(knots))
        fast = Interpolator(xp, fp)
        fast(x[:10])  # compile (or load the cached kernel) outside the timing
        t_np = best(lambda xp=xp, fp=fp: np.interp(x, xp, fp), args.repeat)
        t_fast = best(lambda fast=fast: fast(x), args.repeat)
        same = np.array_equal(fast(x), np.interp(x, xp, fp))
        print(f"{knots:>6} {t_np:>15.3f} {t_fast:>15.3f} {t_np / t_fast:>5.1f}x {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
