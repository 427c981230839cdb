"""L2-penalised logistic regression on a hat-basis design, by L-BFGS on a compiled objective.

The blender's design has a fixed shape: each feature puts two adjacent basis columns in every
row it applies to (values ``1 - frac`` and ``frac``, :func:`interest_blend.hat_design`). A CSR
matrix stores that as two (index, value) entries of 12 bytes each, and scikit-learn's
``LogisticRegression(solver="lbfgs")`` passes over it twice per evaluation (``X @ w``, then
``X.T @ g``), single-threaded: at 1M customers the blender's fits spent about 90 s there.

:class:`HatDesign` keeps per row and feature the left knot (int16, -1 where the feature does
not apply) and ``frac`` (float64, the same value the CSR entry is built from), and
:func:`fit_logistic` minimises scikit-learn's own objective (``LinearModelLoss`` with
``HalfBinomialLoss``: the weighted mean log loss plus ``||w||^2 / (2 C sum(w_i))``, intercept
not penalised) with the same L-BFGS-B call and options. One compiled pass per evaluation
computes the logits, the loss and the gradient, split into a fixed number of row chunks that
run on the available threads: the sums do not depend on the thread count, so a fit is
reproducible on any machine. The tests check the loss and gradient against scikit-learn's
to rounding and the fitted models against ``LogisticRegression``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numba
import numpy as np
from scipy import optimize, sparse

log = logging.getLogger(__name__)

#: Row chunks of one evaluation (summed in this order, whatever the number of threads).
CHUNKS = 16


class HatDesign:
    """A hat-basis design: per row and feature, a left knot and the fraction towards the next.

    Parameters
    ----------
    knot : numpy.ndarray
        ``rows x features`` int16: the left knot's index within the feature's knots, -1 where
        the feature does not apply to the row.
    frac : numpy.ndarray
        ``rows x features`` float64: the weight ``frac`` of the right knot (``1 - frac`` goes
        to the left one); 0 for single-knot features.
    offsets : numpy.ndarray
        First column of each feature (int64), then the number of columns.
    """

    def __init__(self, knot: np.ndarray, frac: np.ndarray, offsets: np.ndarray) -> None:
        self.knot = np.ascontiguousarray(knot, dtype=np.int16)
        self.frac = np.ascontiguousarray(frac, dtype=np.float64)
        self.offsets = np.asarray(offsets, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the equivalent matrix."""
        return self.knot.shape[0], int(self.offsets[-1])

    def to_csr(self) -> sparse.csr_matrix:
        """The same design as a CSR matrix (for tests and comparisons)."""
        rows, feats = np.nonzero(self.knot >= 0)
        col = self.offsets[feats] + self.knot[rows, feats]
        fr = self.frac[rows, feats]
        return sparse.csr_matrix(
            (np.r_[1.0 - fr, fr], (np.r_[rows, rows], np.r_[col, col + 1])),
            shape=(self.shape[0], self.shape[1] + 1),
        )[:, : self.shape[1]]

    def raw(self, coef: np.ndarray, intercept: float, rows: np.ndarray | None = None) -> np.ndarray:
        """Logits ``intercept + X[rows] @ coef`` (float64)."""
        rows = self._rows(rows)
        w = np.r_[np.asarray(coef, np.float64), 0.0, float(intercept)]
        return _raw(self.knot, self.frac, self.offsets, rows, w)

    def _rows(self, rows: np.ndarray | None) -> np.ndarray:
        if rows is None:
            return np.arange(self.shape[0], dtype=np.int64)
        return np.asarray(rows, dtype=np.int64)


@numba.njit(nogil=True, cache=True, inline="always")
def _half_binomial(y: float, raw: float) -> tuple[float, float]:
    """Loss and gradient of ``HalfBinomialLoss`` (scikit-learn's branches, in float64)."""
    if raw <= 0:
        e = math.exp(raw)
        if raw <= -37:
            loss = e - y * raw
        else:
            loss = math.log1p(e) - y * raw
        grad = ((1 - y) * e - y) / (1 + e)
    else:
        e = math.exp(-raw)
        if raw <= 18:
            loss = math.log1p(e) + (1 - y) * raw
        else:
            loss = e + (1 - y) * raw
        grad = ((1 - y) - y * e) / (1 + e)
    return loss, grad


@numba.njit(nogil=True, cache=True, inline="always")
def _row_raw(knot: np.ndarray, frac: np.ndarray, offsets: np.ndarray, r: int, w: np.ndarray):
    raw = w[w.shape[0] - 1]
    for f in range(knot.shape[1]):
        j = knot[r, f]
        if j >= 0:
            c = offsets[f] + j
            fr = frac[r, f]
            raw += (1.0 - fr) * w[c] + fr * w[c + 1]
    return raw


@numba.njit(nogil=True, cache=True, parallel=True)
def _raw(
    knot: np.ndarray, frac: np.ndarray, offsets: np.ndarray, rows: np.ndarray, w: np.ndarray
) -> np.ndarray:
    out = np.empty(rows.shape[0], np.float64)
    for i in numba.prange(rows.shape[0]):
        out[i] = _row_raw(knot, frac, offsets, rows[i], w)
    return out


@numba.njit(nogil=True, cache=True, parallel=True)
def _loss_grad(
    knot: np.ndarray,
    frac: np.ndarray,
    offsets: np.ndarray,
    rows: np.ndarray,
    y: np.ndarray,
    sw: np.ndarray,
    w: np.ndarray,
) -> tuple[float, np.ndarray]:
    """Sum of weighted losses and their gradient (columns, a pad, the intercept last)."""
    n = rows.shape[0]
    p = w.shape[0]
    losses = np.zeros(CHUNKS, np.float64)
    grads = np.zeros((CHUNKS, p), np.float64)
    for chunk in numba.prange(CHUNKS):
        lo = chunk * n // CHUNKS
        hi = (chunk + 1) * n // CHUNKS
        g = grads[chunk]
        total = 0.0
        for i in range(lo, hi):
            r = rows[i]
            loss, grad = _half_binomial(y[r], _row_raw(knot, frac, offsets, r, w))
            total += sw[r] * loss
            gi = sw[r] * grad
            g[p - 1] += gi
            for f in range(knot.shape[1]):
                j = knot[r, f]
                if j >= 0:
                    c = offsets[f] + j
                    fr = frac[r, f]
                    g[c] += (1.0 - fr) * gi
                    g[c + 1] += fr * gi
        losses[chunk] = total
    out = np.zeros(p, np.float64)
    loss = 0.0
    for chunk in range(CHUNKS):
        loss += losses[chunk]
        for c in range(p):
            out[c] += grads[chunk, c]
    return loss, out


def objective(
    design: HatDesign,
    y: np.ndarray,
    sample_weight: np.ndarray,
    C: float,
    rows: np.ndarray | None = None,
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """scikit-learn's lbfgs objective: ``f(coef + [intercept]) -> (loss, gradient)``."""
    rows = design._rows(rows)
    y = np.asarray(y, dtype=np.float64)
    sw = np.asarray(sample_weight, dtype=np.float64)
    sw_sum = float(sw[rows].sum())
    l2 = 1.0 / (C * sw_sum)
    m = design.shape[1]
    args = (design.knot, design.frac, design.offsets, rows, y, sw)

    def f(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = np.r_[theta[:m], 0.0, theta[m]]
        loss, grad = _loss_grad(*args, w)
        coef = theta[:m]
        value = loss / sw_sum + 0.5 * l2 * float(coef @ coef)
        out = np.empty(m + 1)
        out[:m] = grad[:m] / sw_sum + l2 * coef
        out[m] = grad[m + 1] / sw_sum
        return value, out

    return f


def fit_logistic(
    design: HatDesign,
    y: np.ndarray,
    sample_weight: np.ndarray,
    C: float,
    *,
    rows: np.ndarray | None = None,
    start: tuple[np.ndarray, float] | None = None,
    max_iter: int = 1000,
    tol: float = 1e-5,
) -> tuple[np.ndarray, float]:
    """Coefficients and intercept of the penalised logistic regression on ``design[rows]``.

    The same problem and L-BFGS-B options as ``LogisticRegression(C=C, tol=tol,
    max_iter=max_iter)`` with ``sample_weight`` (``maxls`` 50, ``ftol`` 64 eps), started at
    zero or at ``start`` (a warm start).
    """
    m = design.shape[1]
    theta = np.zeros(m + 1) if start is None else np.r_[start[0], start[1]].astype(np.float64)
    res = optimize.minimize(
        objective(design, y, sample_weight, C, rows),
        theta,
        method="L-BFGS-B",
        jac=True,
        options={"maxiter": max_iter, "maxls": 50, "gtol": tol, "ftol": 64 * np.finfo(float).eps},
    )
    if not res.success:
        log.warning("logistic fit (C=%g) stopped after %d iterations: %s", C, res.nit, res.message)
    return np.asarray(res.x[:m]), float(res.x[m])
