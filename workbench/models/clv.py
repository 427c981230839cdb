"""Customer value: BG/NBD (repeat orders, P(alive), churn risk) + Gamma-Gamma (spend) = CLV.

Estimators follow the scikit-learn contract: ``__init__`` stores settings, ``fit`` sets the
trailing-underscore attributes. Fitting runs on weighted sufficient statistics
(:mod:`workbench.models.summary`), prediction on the distinct ``(frequency, recency, T)`` rows,
so neither grows with the number of customers; the model library sits behind
:mod:`workbench.models.backends`. :class:`~workbench.models.value.CustomerValueModel` combines
the two into per-customer scores.

What happens when a fit cannot be trusted (each case raises a :class:`ModelWarning`, is
listed in ``warnings_`` and written to metrics.json; the output never holds NaN):

1. the library optimiser does not converge (on the Online Retail demo lifetimes' BG/NBD
   fails in days, weeks and months because the optimum lies at ``a -> 0``): the same
   likelihood is maximised with bounded L-BFGS-B (``method_`` says so); parameters that ran
   off towards 0 or infinity are named in ``at_boundary_`` and explained in a warning;
2. too few customers (< ``min_customers``) or repeat buyers (< ``min_repeat_customers``), or
   both optimisers fail: **NBD fallback**, a gamma-Poisson model without dropout whose prior
   mean is the pooled repeat rate ``sum(x) / sum(T)`` and whose prior weight is one average
   customer age; P(alive) is then reported as P(at least one order within the horizon);
3. Gamma-Gamma with too few positive repeat spends, a failed fit or ``q <= 1`` (mean spend
   undefined): **spend fallback**, the customer's mean spend shrunk toward the store's mean spend
   per order day with one pseudo-order, ``(x m + m_store) / (x + 1)``.
"""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np
import pandas as pd

from workbench.models.backends import FitFailedError, ModelBackend, get_backend
from workbench.models.bgnbd import FitResult

log = logging.getLogger(__name__)


class ModelWarning(UserWarning):
    """A customer model fell back to a simpler estimate or sits at a parameter boundary."""


def _warn(store: list[str], message: str) -> None:
    """Record a fit warning (for metrics.json) and raise it as a :class:`ModelWarning`."""
    store.append(message)
    warnings.warn(message, ModelWarning, stacklevel=3)


class BGNBDModel:
    """BG/NBD repeat-purchase model with a bounded-optimiser and an NBD fallback.

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters (lifetimes' ``penalizer_coef``).
    backend : str or ModelBackend
        Library for the fit and predictions (``lifetimes`` or ``scipy``).
    fallback_backend : str or ModelBackend
        Used when ``backend`` does not converge (bounded L-BFGS-B by default).
    min_customers, min_repeat_customers : int
        Below these counts the BG/NBD is not fitted (NBD fallback).

    Attributes
    ----------
    params_ : dict
        ``r, alpha, a, b`` (BG/NBD) or ``r, alpha`` (NBD fallback); alpha in the fit's unit.
    kind_ : {"bgnbd", "nbd_fallback"}
    method_ : str
        How the parameters were obtained.
    log_likelihood_ : float or None
        Total log-likelihood of the fitted BG/NBD.
    at_boundary_ : list of str
        Parameters on the edge of the bounded optimiser's box.
    warnings_ : list of str
    n_customers_, n_repeat_customers_, n_rows_ : int
        Customers, repeat buyers and weighted rows fitted.
    fit_seconds_ : float
    """

    def __init__(
        self,
        penalizer: float = 0.0,
        backend: str | ModelBackend = "lifetimes",
        fallback_backend: str | ModelBackend = "scipy",
        min_customers: int = 20,
        min_repeat_customers: int = 5,
    ) -> None:
        self.penalizer = penalizer
        self.backend = backend
        self.fallback_backend = fallback_backend
        self.min_customers = min_customers
        self.min_repeat_customers = min_repeat_customers

    def fit(self, stats: pd.DataFrame) -> BGNBDModel:
        """Fit on weighted rows with columns frequency, recency, T (one unit), weight."""
        started = time.perf_counter()
        x = stats["frequency"].to_numpy("float64")
        t_x = stats["recency"].to_numpy("float64")
        T = stats["T"].to_numpy("float64")
        w = stats["weight"].to_numpy("float64")
        self.warnings_: list[str] = []
        self.n_rows_ = len(stats)
        self.n_customers_ = int(w.sum())
        self.n_repeat_customers_ = int(w[x > 0].sum())
        self.at_boundary_: list[str] = []
        self.log_likelihood_: float | None = None
        result: FitResult | None = None
        if (
            self.n_customers_ < self.min_customers
            or self.n_repeat_customers_ < self.min_repeat_customers
        ):
            _warn(
                self.warnings_,
                f"BG/NBD not fitted: {self.n_customers_} customers of which "
                f"{self.n_repeat_customers_} repeat buyers (needs >= {self.min_customers} and "
                f">= {self.min_repeat_customers}); using the NBD fallback (pooled repeat rate, "
                "no dropout)",
            )
        else:
            result = self._fit_with_fallback(x, t_x, T, w)
        if result is None:
            self._fit_nbd(x, T, w)
        else:
            self.kind_ = "bgnbd"
            self.params_ = result.params
            self.method_ = result.method
            self.log_likelihood_ = result.log_likelihood
            self.at_boundary_ = result.at_boundary
            if result.at_boundary:
                _warn(self.warnings_, boundary_message(result.params, result.at_boundary))
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _fit_with_fallback(
        self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray
    ) -> FitResult | None:
        primary = get_backend(self.backend)
        try:
            return primary.fit_bgnbd(x, t_x, T, w, self.penalizer)
        except FitFailedError as exc:
            reason = str(exc)
        fallback = get_backend(self.fallback_backend)
        try:
            result = fallback.fit_bgnbd(x, t_x, T, w, self.penalizer)
        except FitFailedError as exc:
            _warn(self.warnings_, f"{reason}; {exc}; using the NBD fallback")
            return None
        result.method = f"{result.method} ({primary.name} did not converge)"
        _warn(
            self.warnings_,
            f"{reason}; fitted the same likelihood with {fallback.name} instead "
            f"(log-likelihood {result.log_likelihood:.1f})",
        )
        return result

    def _fit_nbd(self, x: np.ndarray, T: np.ndarray, w: np.ndarray) -> None:
        exposure = float(np.sum(w * T))
        rate = float(np.sum(w * x)) / exposure if exposure > 0 else 0.0
        prior_weight = exposure / float(w.sum()) if w.sum() > 0 else 1.0
        prior_weight = prior_weight if prior_weight > 0 else 1.0
        self.kind_ = "nbd_fallback"
        self.method_ = "NBD fallback: gamma-Poisson, pooled repeat rate, no dropout"
        self.params_ = {"r": rate * prior_weight, "alpha": prior_weight}

    def predict(
        self, t: float, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
    ) -> pd.DataFrame:
        """P(alive), expected repeat orders and P(no order) within ``t`` (model time unit).

        Returns
        -------
        pandas.DataFrame
            p_alive, expected_orders, p_no_order; finite everywhere.
        """
        x = np.asarray(frequency, dtype="float64")
        t_x = np.asarray(recency, dtype="float64")
        T = np.asarray(T, dtype="float64")
        r, alpha = self.params_["r"], self.params_["alpha"]
        if self.kind_ == "nbd_fallback":
            shape = r + x
            quiet = np.exp(shape * (np.log(alpha + T) - np.log(alpha + T + t)))
            expected = shape / (alpha + T) * t
            return pd.DataFrame(
                {"p_alive": 1 - quiet, "expected_orders": expected, "p_no_order": quiet}
            )
        backend = get_backend(self.backend)
        alive = np.clip(backend.bgnbd_p_alive(self.params_, x, t_x, T), 0.0, 1.0)
        expected = backend.bgnbd_expected(self.params_, t, x, t_x, T)
        quiet = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
        bad = ~np.isfinite(expected) | (expected < 0)
        if bad.any():
            # Upper bound ignoring dropout inside the window: P(alive) x E[lambda | x, T] x t.
            log.warning("BG/NBD expected orders not finite for %d rows; bounded instead", bad.sum())
            expected = np.where(bad, alive * (r + x) / (alpha + T) * t, expected)
        p_no = np.clip(1.0 - alive + alive * quiet, 0.0, 1.0)
        return pd.DataFrame({"p_alive": alive, "expected_orders": expected, "p_no_order": p_no})


class GammaGammaModel:
    """Gamma-Gamma spend per transaction, with a shrunk-mean fallback.

    Parameters
    ----------
    penalizer : float
        L2 penalty (lifetimes' ``penalizer_coef``).
    backend, fallback_backend : str or ModelBackend
        As for :class:`BGNBDModel`.
    min_repeat_customers : int
        Fewer repeat buyers with positive spend than this: spend fallback.

    Attributes
    ----------
    params_ : dict
        ``p, q, v`` (v in currency) or ``{"store_mean_spend": m}`` (fallback).
    kind_ : {"gamma_gamma", "spend_fallback"}
    method_ : str
    log_likelihood_ : float or None
    warnings_ : list of str
    n_customers_, n_rows_ : int
    store_mean_spend_ : float
        Net sales per order day in the store (currency).
    """

    def __init__(
        self,
        penalizer: float = 0.0,
        backend: str | ModelBackend = "lifetimes",
        fallback_backend: str | ModelBackend = "scipy",
        min_repeat_customers: int = 10,
    ) -> None:
        self.penalizer = penalizer
        self.backend = backend
        self.fallback_backend = fallback_backend
        self.min_repeat_customers = min_repeat_customers

    def fit(self, stats: pd.DataFrame, store_mean_spend: float) -> GammaGammaModel:
        """Fit on weighted rows (frequency > 0, monetary > 0, weight) of repeat buyers.

        Parameters
        ----------
        stats : pandas.DataFrame
            Output of :func:`workbench.models.summary.spend_statistics`.
        store_mean_spend : float
            Net sales per order day over the whole store (currency), for the fallback.
        """
        self.warnings_: list[str] = []
        self.store_mean_spend_ = max(float(store_mean_spend), 0.0)
        self.n_rows_ = len(stats)
        self.n_customers_ = int(stats["weight"].sum()) if len(stats) else 0
        self.log_likelihood_: float | None = None
        result = None
        if self.n_customers_ < self.min_repeat_customers:
            reason = (
                f"Gamma-Gamma not fitted: {self.n_customers_} repeat buyers with positive spend "
                f"(needs >= {self.min_repeat_customers})"
            )
        else:
            args = (
                stats["frequency"].to_numpy("float64"),
                stats["monetary"].to_numpy("float64"),
                stats["weight"].to_numpy("float64"),
                self.penalizer,
            )
            reason = ""
            for name in (self.backend, self.fallback_backend):
                try:
                    result = get_backend(name).fit_gamma_gamma(*args)
                    break
                except FitFailedError as exc:
                    reason += f"{exc}; "
            if result is not None and result.params["q"] <= 1:
                reason += f"Gamma-Gamma q = {result.params['q']:.3f} <= 1: mean spend undefined; "
                result = None
            elif result is not None and reason:
                result.method += " (primary backend did not converge)"
                _warn(self.warnings_, reason.rstrip("; "))
        if result is None:
            _warn(
                self.warnings_,
                f"{reason.rstrip('; ')}; using the spend fallback (own mean shrunk toward the "
                f"store mean {self.store_mean_spend_:.2f} per order day)",
            )
            self.kind_ = "spend_fallback"
            self.method_ = "spend fallback: (x m + store mean) / (x + 1)"
            self.params_ = {"store_mean_spend": self.store_mean_spend_}
        else:
            self.kind_ = "gamma_gamma"
            self.method_ = result.method
            self.params_ = result.params
            self.log_likelihood_ = result.log_likelihood
        return self

    def predict(self, frequency: np.ndarray, monetary: np.ndarray) -> np.ndarray:
        """Expected spend per future order day (currency), finite and >= 0."""
        x = np.asarray(frequency, dtype="float64")
        m = np.clip(np.asarray(monetary, dtype="float64"), 0.0, None)
        if self.kind_ == "spend_fallback":
            value = (x * m + self.store_mean_spend_) / (x + 1)
        else:
            value = get_backend(self.backend).gg_expected_spend(self.params_, x, m)
        return np.clip(np.nan_to_num(value, nan=self.store_mean_spend_), 0.0, None)


def boundary_message(params: dict[str, float], names: list[str]) -> str:
    """Explain a BG/NBD optimum at the edge of the parameter space in plain words."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    meaning = []
    if ("a" in names and a < 1) or ("b" in names and b > 1 and "a" not in names):
        meaning.append(
            f"the mean dropout probability after a purchase a/(a+b) = {a / (a + b):.2g}: "
            "customers practically never drop out (the NBD limit), so P(alive) is close to 1 "
            "and churn risk comes from the purchase rate"
        )
    elif {"a", "b"} <= set(names):
        meaning.append(f"every customer has the same dropout probability {a / (a + b):.3g}")
    if {"r", "alpha"} & set(names):
        meaning.append(
            f"purchase rates hardly vary between customers (mean {r / alpha:.3g} per time unit)"
        )
    return (
        f"BG/NBD optimum on the parameter boundary for {', '.join(names)} ({_fmt(params)}): "
        f"{'; '.join(meaning) or 'a limiting case of the model'}"
    )


def _fmt(params: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in params.items())
