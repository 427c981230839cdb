"""Gamma-Gamma spend model in numpy: weighted likelihood, bounded fit, conditional mean spend.

Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves", JMR 42(4); Hardie's note 025:
the spend of a customer's transactions is Gamma(p, nu) with ``nu ~ Gamma(q, v)``; inputs per
repeat buyer are ``x`` repeat transactions and their mean value ``m`` (currency). The expected
spend per transaction is ``(1 - w) p v / (q - 1) + w m`` with ``w = p x / (p x + q - 1)``,
defined for ``q > 1``.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln

from workbench.models.bgnbd import LOWER, UPPER, FitResult, degenerate

PARAM_NAMES = ("p", "q", "v")


def log_likelihood(
    params: dict[str, float] | np.ndarray,
    frequency: np.ndarray,
    monetary: np.ndarray,
    weights: np.ndarray | None = None,
) -> float:
    """Total weighted Gamma-Gamma log-likelihood of the mean spends (Hardie note 025, eq. 1a)."""
    p, q, v = (params[k] for k in PARAM_NAMES) if isinstance(params, dict) else params
    x = np.asarray(frequency, dtype="float64")
    m = np.asarray(monetary, dtype="float64")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype="float64")
    return float(np.sum(w * _rows(p, q, v, x, m)))


def _rows(p: float, q: float, v: float, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    return (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(v)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(x * m + v)
    )


def fit_bounded(
    frequency: np.ndarray,
    monetary: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    penalizer: float = 0.0,
) -> FitResult:
    """Maximise the Gamma-Gamma likelihood with L-BFGS-B on log-parameters in ``[1e-6, 1e6]``.

    Money is rescaled to a median of 1 for the optimisation (``v`` is scaled back).
    """
    x = np.asarray(frequency, dtype="float64")
    m = np.asarray(monetary, dtype="float64")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype="float64")
    scale = float(np.median(m)) or 1.0
    ms = m / scale
    total = float(w.sum())

    def objective(theta: np.ndarray) -> float:
        p, q, v = np.exp(theta)
        value = -np.sum(w * _rows(p, q, v, x, ms)) / total
        value += penalizer * float(np.sum(np.exp(2 * theta)))
        return float(value) if np.isfinite(value) else 1e300

    bounds = [(np.log(LOWER), np.log(UPPER))] * 3
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for start in ((1.0, 1.0, 1.0), (5.0, 3.0, 2.0), (0.5, 5.0, 5.0)):
            res = minimize(
                objective,
                np.log(start),
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9},
            )
            if best is None or res.fun < best.fun:
                best = res
    assert best is not None
    p, q, v = np.exp(best.x)
    params = {"p": float(p), "q": float(q), "v": float(v * scale)}
    at_boundary = degenerate(dict(zip(PARAM_NAMES, np.exp(best.x), strict=True)))
    return FitResult(
        params=params,
        log_likelihood=log_likelihood(params, x, m, w),
        converged=bool(best.success),
        at_boundary=at_boundary,
        method="bounded L-BFGS-B on the Gamma-Gamma likelihood",
        message=str(best.message),
    )


def expected_spend(
    params: dict[str, float], frequency: np.ndarray, monetary: np.ndarray
) -> np.ndarray:
    """E[spend per transaction | x, m] (currency); the population mean for ``x = 0``."""
    p, q, v = (params[k] for k in PARAM_NAMES)
    x = np.asarray(frequency, dtype="float64")
    m = np.clip(np.asarray(monetary, dtype="float64"), 0.0, None)
    weight = p * x / (p * x + q - 1)
    return (1 - weight) * (p * v / (q - 1)) + weight * m
