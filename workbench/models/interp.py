"""Piecewise-linear interpolation on fixed knots, equal to :func:`numpy.interp` bit for bit.

The Interested-In blender turns every (customer, target) cell into a probability through an
isotonic calibration curve (a few hundred knots) and its feature shapes (a few knots each).
At 1M customers the top-k table evaluates about 10^10 such cells; ``numpy.interp`` (a binary
search per value, with branch misses on unordered input) was half of that step's time.

:class:`Interpolator` precomputes, for a uniform grid of cells over the knots' range, the knot
segment where each cell starts; a value then finds its segment with one multiplication and a
step or two, in a compiled (numba) loop. The arithmetic is numpy's own (the same slope, the
same ``slope * (x - xp[j]) + fp[j]``, the same handling of knots, ends and NaN), so the results
are identical to ``numpy.interp(x, xp, fp)``; the tests compare them bit for bit.
``python bench/interp.py`` measures both.
"""

from __future__ import annotations

import numba
import numpy as np

#: Grid cells over the knots' range (a knot segment lookup table of this many int64).
CELLS = 8192


@numba.njit(nogil=True, cache=True)
def _interp(
    x: np.ndarray,
    xp: np.ndarray,
    fp: np.ndarray,
    slopes: np.ndarray,
    start: np.ndarray,
    inv: float,
    out: np.ndarray,
    floor: float,
) -> np.ndarray:
    n = xp.shape[0]
    cells = start.shape[0]
    lo = xp[0]
    hi = xp[n - 1]
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        if v != v:  # NaN stays NaN
            r = v
        elif v < lo:
            r = fp[0]
        elif v >= hi:
            r = fp[n - 1]
        else:
            c = int((v - lo) * inv)
            if c >= cells:
                c = cells - 1
            j = start[c]
            while j > 0 and xp[j] > v:
                j -= 1
            while xp[j + 1] <= v:
                j += 1
            if xp[j] == v:
                r = fp[j]
            else:
                r = slopes[j] * (v - xp[j]) + fp[j]
                if r != r:  # as numpy: try from the other end, then a flat segment
                    r = slopes[j] * (v - xp[j + 1]) + fp[j + 1]
                    if r != r and fp[j] == fp[j + 1]:
                        r = fp[j]
        if r < floor:
            r = floor
        out[i] = r
    return out


#: The compiled loop itself, for other compiled code: ``interp_into(x, *tables, out, floor)``
#: with ``tables`` from :attr:`Interpolator.tables` writes ``max(interp(x), floor)`` into
#: ``out`` (cast to its dtype, as :meth:`Interpolator.__call__` does).
interp_into = _interp


class Interpolator:
    """``numpy.interp(x, xp, fp)`` for many ``x`` on the same knots.

    Parameters
    ----------
    xp, fp : array-like
        Knots (increasing) and values, as for :func:`numpy.interp`.
    cells : int
        Grid cells of the segment lookup table.
    """

    def __init__(self, xp: np.ndarray, fp: np.ndarray, cells: int = CELLS) -> None:
        self.xp = np.ascontiguousarray(xp, dtype=np.float64)
        self.fp = np.ascontiguousarray(fp, dtype=np.float64)
        if self.xp.shape != self.fp.shape or self.xp.ndim != 1:
            raise ValueError("xp and fp must be 1-d arrays of the same length")
        self.compiled = len(self.xp) >= 2 and bool(np.all(np.diff(self.xp) > 0))
        if not self.compiled:  # a single knot or repeated knots: numpy itself
            return
        with np.errstate(divide="ignore", invalid="ignore"):
            self.slopes = np.diff(self.fp) / np.diff(self.xp)
        lo, hi = self.xp[0], self.xp[-1]
        self.inv = cells / (hi - lo)
        left = lo + np.arange(cells) / self.inv
        self.start = np.clip(np.searchsorted(self.xp, left, "right") - 1, 0, len(self.xp) - 2)

    def __call__(
        self, x: np.ndarray, *, floor: float = -np.inf, dtype: type = np.float64
    ) -> np.ndarray:
        """Interpolated values of ``x`` (any shape), at least ``floor``, as ``dtype``."""
        arr = np.asarray(x)
        if not self.compiled or arr.dtype not in (np.float32, np.float64):
            out = np.interp(arr, self.xp, self.fp)
            return np.maximum(out, floor).astype(dtype, copy=False)
        flat = np.ascontiguousarray(arr).reshape(-1)
        out = np.empty(flat.shape[0], dtype=dtype)
        _interp(flat, self.xp, self.fp, self.slopes, self.start, self.inv, out, float(floor))
        return out.reshape(arr.shape)

    @property
    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
        """``(xp, fp, slopes, start, inv)``: the arguments compiled code passes to ``_interp``."""
        if not self.compiled:
            raise ValueError("a single or repeated knot: numpy.interp evaluates it")
        return self.xp, self.fp, self.slopes, self.start, self.inv
