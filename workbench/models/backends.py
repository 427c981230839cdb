"""The adapter between our customer-value models and a model library.

:class:`~workbench.models.clv.BGNBDModel` and :class:`~workbench.models.clv.GammaGammaModel`
only talk to a :class:`ModelBackend`: fit on weighted sufficient statistics, then conditional
predictions from the fitted parameters. Two backends ship:

- ``lifetimes`` (default): ``lifetimes.BetaGeoFitter`` / ``GammaGammaFitter`` 0.11.3;
- ``scipy``: our own likelihoods (:mod:`workbench.models.bgnbd`, :mod:`.gamma_gamma`) with a
  bounded L-BFGS-B optimiser; also the fallback when a library fit does not converge.

Swapping the library means writing one more class with these five methods.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import ClassVar, Protocol

import numpy as np
import pandas as pd

from workbench.models import bgnbd, gamma_gamma
from workbench.models.bgnbd import FitResult, degenerate


class FitFailedError(RuntimeError):
    """The backend's optimiser did not converge (the message says why)."""


class ModelBackend(Protocol):
    """What a model library must provide (time in one unit, money in currency)."""

    name: str

    def fit_bgnbd(
        self,
        frequency: np.ndarray,
        recency: np.ndarray,
        T: np.ndarray,
        weights: np.ndarray,
        penalizer: float,
    ) -> FitResult:
        """Fit BG/NBD on weighted rows; raise :class:`FitFailedError` when it fails."""

    def bgnbd_p_alive(
        self, params: dict[str, float], frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """P(alive | x, t_x, T)."""

    def bgnbd_expected(
        self,
        params: dict[str, float],
        t: float,
        frequency: np.ndarray,
        recency: np.ndarray,
        T: np.ndarray,
    ) -> np.ndarray:
        """Expected repeat purchases in (T, T + t]."""

    def fit_gamma_gamma(
        self, frequency: np.ndarray, monetary: np.ndarray, weights: np.ndarray, penalizer: float
    ) -> FitResult:
        """Fit Gamma-Gamma on weighted rows; raise :class:`FitFailedError` when it fails."""

    def gg_expected_spend(
        self, params: dict[str, float], frequency: np.ndarray, monetary: np.ndarray
    ) -> np.ndarray:
        """Expected spend per transaction (currency)."""


def _optimiser_message(out: io.StringIO) -> str:
    """The ``message:`` line scipy printed through lifetimes, as `` (scipy: ...)``."""
    for line in out.getvalue().splitlines():
        if line.strip().startswith("message:"):
            return f" (scipy: {line.split(':', 1)[1].strip()})"
    return ""


def _boundary(params: dict[str, float], scale_key: str, scale: float) -> list[str]:
    """Degenerate parameters, judged on the scale the bounded optimiser uses."""
    scaled = dict(params)
    if scale > 0:
        scaled[scale_key] *= scale
    return degenerate(scaled)


class LifetimesBackend:
    """The ``lifetimes`` 0.11 fitters (Nelder-Mead/BFGS on log-parameters, autograd)."""

    name: ClassVar[str] = "lifetimes"

    def fit_bgnbd(
        self,
        frequency: np.ndarray,
        recency: np.ndarray,
        T: np.ndarray,
        weights: np.ndarray,
        penalizer: float,
    ) -> FitResult:
        """Fit with ``lifetimes.BetaGeoFitter`` (its console output is swallowed)."""
        from lifetimes import BetaGeoFitter
        from lifetimes.utils import ConvergenceError

        fitter = BetaGeoFitter(penalizer_coef=penalizer)
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitter.fit(frequency, recency, T, weights=weights)
        except ConvergenceError:
            raise FitFailedError(
                f"lifetimes BetaGeoFitter did not converge{_optimiser_message(out)}"
            ) from None
        except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
            raise FitFailedError(f"lifetimes BetaGeoFitter failed: {exc}") from exc
        params = {k: float(v) for k, v in fitter.params_.items()}
        if not all(np.isfinite(v) and v > 0 for v in params.values()):
            raise FitFailedError(f"lifetimes BetaGeoFitter returned invalid parameters {params}")
        return FitResult(
            params=params,
            log_likelihood=bgnbd.log_likelihood(params, frequency, recency, T, weights),
            converged=True,
            at_boundary=_boundary(params, "alpha", 10.0 / float(np.max(T))),
            method="lifetimes.BetaGeoFitter",
        )

    def bgnbd_p_alive(
        self, params: dict[str, float], frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """``BetaGeoFitter.conditional_probability_alive`` with the given parameters."""
        fitter = self._bg(params)
        return np.asarray(fitter.conditional_probability_alive(frequency, recency, T), "float64")

    def bgnbd_expected(
        self,
        params: dict[str, float],
        t: float,
        frequency: np.ndarray,
        recency: np.ndarray,
        T: np.ndarray,
    ) -> np.ndarray:
        """``BetaGeoFitter.conditional_expected_number_of_purchases_up_to_time``."""
        fitter = self._bg(params)
        with np.errstate(all="ignore"):
            value = fitter.conditional_expected_number_of_purchases_up_to_time(
                t, np.asarray(frequency), np.asarray(recency), np.asarray(T)
            )
        return np.asarray(value, dtype="float64")

    def fit_gamma_gamma(
        self, frequency: np.ndarray, monetary: np.ndarray, weights: np.ndarray, penalizer: float
    ) -> FitResult:
        """Fit with ``lifetimes.GammaGammaFitter``."""
        from lifetimes import GammaGammaFitter
        from lifetimes.utils import ConvergenceError

        fitter = GammaGammaFitter(penalizer_coef=penalizer)
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitter.fit(frequency, monetary, weights=weights)
        except ConvergenceError:
            raise FitFailedError(
                f"lifetimes GammaGammaFitter did not converge{_optimiser_message(out)}"
            ) from None
        except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
            raise FitFailedError(f"lifetimes GammaGammaFitter failed: {exc}") from exc
        params = {k: float(v) for k, v in fitter.params_.items()}
        if not all(np.isfinite(v) and v > 0 for v in params.values()):
            raise FitFailedError(f"lifetimes GammaGammaFitter returned invalid parameters {params}")
        return FitResult(
            params=params,
            log_likelihood=gamma_gamma.log_likelihood(params, frequency, monetary, weights),
            converged=True,
            at_boundary=_boundary(params, "v", 1.0 / float(np.median(monetary))),
            method="lifetimes.GammaGammaFitter",
        )

    def gg_expected_spend(
        self, params: dict[str, float], frequency: np.ndarray, monetary: np.ndarray
    ) -> np.ndarray:
        """``GammaGammaFitter.conditional_expected_average_profit``."""
        from lifetimes import GammaGammaFitter

        fitter = GammaGammaFitter()
        fitter.params_ = pd.Series(params)
        m = np.clip(np.asarray(monetary, dtype="float64"), 0.0, None)
        value = fitter.conditional_expected_average_profit(np.asarray(frequency, "float64"), m)
        return np.asarray(value, dtype="float64")

    @staticmethod
    def _bg(params: dict[str, float]):
        from lifetimes import BetaGeoFitter

        fitter = BetaGeoFitter()
        fitter.params_ = pd.Series({k: params[k] for k in bgnbd.PARAM_NAMES})
        return fitter


class ScipyBackend:
    """Our own likelihoods with a bounded L-BFGS-B optimiser (no model library needed)."""

    name: ClassVar[str] = "scipy"

    def fit_bgnbd(
        self,
        frequency: np.ndarray,
        recency: np.ndarray,
        T: np.ndarray,
        weights: np.ndarray,
        penalizer: float,
    ) -> FitResult:
        """:func:`workbench.models.bgnbd.fit_bounded`."""
        result = bgnbd.fit_bounded(frequency, recency, T, weights, penalizer=penalizer)
        if not np.isfinite(result.log_likelihood):
            raise FitFailedError(f"bounded BG/NBD fit ended at a non-finite likelihood: {result}")
        return result

    def bgnbd_p_alive(
        self, params: dict[str, float], frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """:func:`workbench.models.bgnbd.p_alive`."""
        return bgnbd.p_alive(params, frequency, recency, T)

    def bgnbd_expected(
        self,
        params: dict[str, float],
        t: float,
        frequency: np.ndarray,
        recency: np.ndarray,
        T: np.ndarray,
    ) -> np.ndarray:
        """:func:`workbench.models.bgnbd.expected_purchases`."""
        return bgnbd.expected_purchases(params, t, frequency, recency, T)

    def fit_gamma_gamma(
        self, frequency: np.ndarray, monetary: np.ndarray, weights: np.ndarray, penalizer: float
    ) -> FitResult:
        """:func:`workbench.models.gamma_gamma.fit_bounded`."""
        result = gamma_gamma.fit_bounded(frequency, monetary, weights, penalizer=penalizer)
        if not np.isfinite(result.log_likelihood):
            raise FitFailedError(
                f"bounded Gamma-Gamma fit ended at a non-finite likelihood: {result}"
            )
        return result

    def gg_expected_spend(
        self, params: dict[str, float], frequency: np.ndarray, monetary: np.ndarray
    ) -> np.ndarray:
        """:func:`workbench.models.gamma_gamma.expected_spend`."""
        return gamma_gamma.expected_spend(params, frequency, monetary)


BACKENDS: dict[str, type] = {"lifetimes": LifetimesBackend, "scipy": ScipyBackend}


def get_backend(name: str | ModelBackend) -> ModelBackend:
    """A backend instance from its name (``lifetimes`` or ``scipy``), or the object itself."""
    if not isinstance(name, str):
        return name
    try:
        return BACKENDS[name]()
    except KeyError:
        raise ValueError(
            f"unknown model backend {name!r}; use one of {', '.join(BACKENDS)}"
        ) from None
