"""BG/NBD mathematics in numpy: weighted likelihood, bounded fit, conditional predictions.

Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science 24(2):
a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)`` while alive and drops out after
each purchase with probability ``p ~ Beta(a, b)``. Inputs per customer: ``x`` repeat
purchases, ``t_x`` time of the last purchase and ``T`` age, both measured from the first
purchase in one time unit (days, weeks, ...); ``alpha`` is in that unit.

This module is the library-independent implementation the adapter in
:mod:`workbench.models.backends` falls back to, and the likelihood the bounded optimiser uses.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, expit, gammaln, hyp2f1

PARAM_NAMES = ("r", "alpha", "a", "b")
#: Box for every parameter in the bounded fit (the optimiser works on their logarithms).
LOWER, UPPER = 1e-6, 1e6
#: A fitted parameter below / above these (time rescaled so that max T = 10) has run off to
#: 0 or infinity: the likelihood is flat there and the optimum is a limit of the model.
DEGENERATE_LOW, DEGENERATE_HIGH = 1e-3, 1e3


def degenerate(scaled_params: dict[str, float]) -> list[str]:
    """Names of parameters that ran off towards 0 or infinity (see ``DEGENERATE_LOW``)."""
    return [
        name
        for name, value in scaled_params.items()
        if not DEGENERATE_LOW <= value <= DEGENERATE_HIGH
    ]


@dataclass
class FitResult:
    """A maximum-likelihood fit.

    Attributes
    ----------
    params : dict
        Parameter name -> value (``alpha`` in the data's time unit).
    log_likelihood : float
        Total weighted log-likelihood at ``params``.
    converged : bool
        Whether the optimiser reported success.
    at_boundary : list of str
        Parameters that ran off towards 0 or infinity (:func:`degenerate`).
    method : str
        How the fit was obtained.
    message : str
        The optimiser's message.
    """

    params: dict[str, float]
    log_likelihood: float
    converged: bool
    at_boundary: list[str] = field(default_factory=list)
    method: str = ""
    message: str = ""


def _arrays(*values: object) -> list[np.ndarray]:
    return [np.asarray(v, dtype="float64") for v in values]


def log_likelihood(
    params: dict[str, float] | np.ndarray,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray | None = None,
) -> float:
    """Total weighted BG/NBD log-likelihood (FHL 2005, eq. 6).

    Parameters
    ----------
    params : dict or array
        ``r, alpha, a, b`` (alpha in the time unit of ``recency`` and ``T``).
    frequency, recency, T : array
        Repeat purchases, time of last purchase, age (same unit).
    weights : array, optional
        Customers per row (default 1).
    """
    r, alpha, a, b = (params[k] for k in PARAM_NAMES) if isinstance(params, dict) else params
    x, t_x, T = _arrays(frequency, recency, T)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype="float64")
    return float(np.sum(w * _row_log_likelihood(r, alpha, a, b, x, t_x, T)))


def _row_log_likelihood(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.where(
        x > 0,
        np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    return a1 + a2 + np.logaddexp(a3, a4)


def fit_bounded(
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    penalizer: float = 0.0,
    starts: tuple[tuple[float, float, float, float], ...] = (
        (1.0, 1.0, 1.0, 1.0),
        (0.5, 1.0, 0.5, 2.0),
        (2.0, 1.0, 0.1, 1.0),
    ),
) -> FitResult:
    """Maximise the BG/NBD likelihood with L-BFGS-B inside the box ``[1e-6, 1e6]``.

    Time is rescaled so that the largest ``T`` is 10 (as lifetimes does) and the optimiser
    works on log-parameters; several starting points are tried and the best kept. An optimum on
    the box edge (typically ``a -> 0``: no dropout after purchases, i.e. the NBD model) is
    reported in ``at_boundary`` instead of raising.

    Parameters
    ----------
    frequency, recency, T : array
        Sufficient statistics (time in one unit).
    weights : array, optional
        Customers per row.
    penalizer : float
        L2 penalty on the parameters (lifetimes' ``penalizer_coef``, per customer).
    starts : tuple
        Starting parameter values ``(r, alpha, a, b)`` in the scaled time unit.
    """
    x, t_x, T = _arrays(frequency, recency, T)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype="float64")
    scale = 10.0 / float(np.max(T)) if np.max(T) > 0 else 1.0
    ts_x, ts_T = t_x * scale, T * scale
    total = float(w.sum())

    def objective(theta: np.ndarray) -> float:
        r, alpha, a, b = np.exp(theta)
        ll = np.sum(w * _row_log_likelihood(r, alpha, a, b, x, ts_x, ts_T))
        value = -ll / total + penalizer * float(np.sum(np.exp(2 * theta)))
        return float(value) if np.isfinite(value) else 1e300

    bounds = [(np.log(LOWER), np.log(UPPER))] * 4
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for start in starts:
            res = minimize(
                objective,
                np.log(np.asarray(start, dtype="float64")),
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9},
            )
            if best is None or res.fun < best.fun:
                best = res
    assert best is not None
    r, alpha, a, b = np.exp(best.x)
    params = {"r": float(r), "alpha": float(alpha / scale), "a": float(a), "b": float(b)}
    at_boundary = degenerate(dict(zip(PARAM_NAMES, np.exp(best.x), strict=True)))
    return FitResult(
        params=params,
        log_likelihood=log_likelihood(params, x, t_x, T, w),
        converged=bool(best.success),
        at_boundary=at_boundary,
        method="bounded L-BFGS-B on the BG/NBD likelihood",
        message=str(best.message),
    )


def p_alive(
    params: dict[str, float], frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(alive at T | x, t_x, T); 1 for customers without repeat purchases (model property)."""
    r, alpha, a, b = (params[k] for k in PARAM_NAMES)
    x, t_x, T = _arrays(frequency, recency, T)
    log_odds_dead = (r + x) * np.log((alpha + T) / (alpha + t_x)) + np.log(
        a / (b + np.maximum(x, 1) - 1)
    )
    return np.where(x > 0, expit(-log_odds_dead), 1.0)


def p_no_purchase(
    params: dict[str, float],
    t: float,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    alive: np.ndarray | None = None,
) -> np.ndarray:
    """P(no purchase in (T, T + t] | history) = 1 - P(alive) + P(alive) ((a+T)/(a+T+t))^(r+x).

    A living customer can only drop out right after a purchase, so the window is empty exactly
    when the customer is dead or the Poisson clock does not tick; ``t`` is in the model unit.
    """
    r, alpha = params["r"], params["alpha"]
    x, _, T = _arrays(frequency, recency, T)
    alive = p_alive(params, x, recency, T) if alive is None else alive
    quiet = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
    return np.clip(1.0 - alive + alive * quiet, 0.0, 1.0)


def expected_purchases(
    params: dict[str, float], t: float, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """E[purchases in (T, T + t] | history] (FHL 2005, eq. 10); ``t`` in the model unit.

    Uses Euler's transformation of the hypergeometric function when the direct series
    overflows, and nudges ``a`` off the removable singularity at ``a = 1``.
    """
    r, alpha, a, b = (params[k] for k in PARAM_NAMES)
    if abs(a - 1.0) < 1e-7:
        a = 1.0 + 1e-7
    x, t_x, T = _arrays(frequency, recency, T)
    A, B, C = r + x, b + x, a + b + x - 1
    z = t / (alpha + T + t)
    with np.errstate(all="ignore"):
        ln_hyp = np.log(hyp2f1(A, B, C, z))
        alt = np.log(hyp2f1(C - A, C - B, C, z)) + (C - A - B) * np.log1p(-z)
        ln_hyp = np.where(np.isfinite(ln_hyp), ln_hyp, alt)
        first = (a + b + x - 1) / (a - 1)
        second = -np.expm1(ln_hyp + (r + x) * np.log((alpha + T) / (alpha + T + t)))
        denominator = 1 + (x > 0) * (a / (b + np.maximum(x, 1) - 1)) * np.exp(
            (r + x) * np.log((alpha + T) / (alpha + t_x))
        )
        value = first * second / denominator
    return value
