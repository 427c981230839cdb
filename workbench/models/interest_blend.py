"""The blender: an additive logistic model over the Interested-In signals, then calibration.

``logit(c, t) = b + sum_f g_f(x_f(c, t))`` where every shape function ``g_f`` is piecewise
linear between knots at quantiles of the feature (a logistic regression on "hat" basis
functions). Evaluating a shape function is one interpolation (an
:class:`~workbench.models.interp.Interpolator`, equal to ``np.interp``), so the logit of a dense
customers x targets block costs a few passes over the block whatever the number of knots.
Profile features (bought, browsed, ...) only enter for customer x target entries that exist;
absent entries contribute nothing.

The logit ranks; probabilities come from an isotonic regression of the outcome on the logit,
fitted on the same held-out period with the true sample weights (random negatives are
subsampled). The logistic regression itself is fitted with class-balanced weights: it only has
to rank, and balancing keeps the rare buyers from vanishing in the averaged loss. It is
scikit-learn's L2-penalised logistic regression, minimised by the same L-BFGS call on a
compiled objective over a compact hat-basis design (:mod:`workbench.models.logistic`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression

from workbench.models.interp import Interpolator
from workbench.models.logistic import HatDesign, fit_logistic

#: Quantiles the knots of every shape function are placed at (duplicates collapse).
#: The outer knots sit at the 1st and 99th percentiles: values beyond are clamped, so a few
#: extreme customers cannot bend a shape function.
KNOT_QUANTILES = (0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99)
#: Inverse penalties tried when ``C`` is None (chosen on held-out customers).
C_GRID = (0.01, 0.1, 1.0)
#: Smallest calibrated probability (isotonic fits can reach 0 where no buyer was seen).
MIN_PROBABILITY = 1e-6


def knots_for(x: np.ndarray, quantiles: tuple[float, ...] = KNOT_QUANTILES) -> np.ndarray:
    """Distinct quantiles of ``x`` (float64, at least one value)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return np.zeros(1)
    return np.unique(np.quantile(x, quantiles))


def hat_columns(x: np.ndarray, knots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left knot of each value (clamped to the knot range) and its fraction towards the next.

    A single knot: index 0 and fraction 0 for every value.
    """
    x = np.clip(np.asarray(x, dtype=np.float64), knots[0], knots[-1])
    if len(knots) == 1:
        return np.zeros(len(x), np.int64), np.zeros(len(x))
    j = np.clip(np.searchsorted(knots, x, side="right") - 1, 0, len(knots) - 2)
    return j, (x - knots[j]) / (knots[j + 1] - knots[j])


def hat_design(x: np.ndarray, knots: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Piecewise-linear ("hat") basis of ``x``: two ``(row, column, value)`` entries per value.

    Values outside the knot range are clamped, so the shape function is flat beyond it.
    """
    rows = np.arange(len(x))
    j, frac = hat_columns(x, knots)
    if len(knots) == 1:
        return rows, j, np.ones(len(x))
    return np.r_[rows, rows], np.r_[j, j + 1], np.r_[1.0 - frac, frac]


def balanced_weights(y: np.ndarray, sample_weight: np.ndarray) -> np.ndarray:
    """Weights giving buyers and non-buyers the same total, with mean 1.

    The logistic regression only has to rank (the isotonic step calibrates with the true
    weights); balancing the classes keeps the rare positives from vanishing in the averaged
    loss and lets the solver converge.
    """
    w = np.asarray(sample_weight, dtype=np.float64)
    pos = np.asarray(y, dtype=bool)
    out = np.empty_like(w)
    for mask in (pos, ~pos):
        total = w[mask].sum()
        out[mask] = w[mask] / total * 0.5 * len(w) if total > 0 else 0.0
    return out


class Blender(BaseEstimator):
    """Additive piecewise-linear logistic model with isotonic calibration.

    Parameters
    ----------
    C : float or None
        Inverse L2 penalty of the logistic regression (on class-balanced weights with mean 1);
        None = the value of ``C_grid`` with the lowest log loss on ``validation_share`` of the
        customers, held out.
    C_grid : tuple of float
        Candidates for ``C``.
    validation_share : float
        Share of customers held out to choose ``C``.
    max_iter : int
        Solver iterations.
    random_state : int
        Seed of the validation split.

    Attributes
    ----------
    features_ : list of str
        Feature names in design order.
    knots_ : dict of numpy.ndarray
        Knots per feature.
    coef_ : dict of numpy.ndarray
        Shape-function value at each knot, per feature.
    intercept_ : float
        Logit intercept.
    C_ : float
        The penalty used.
    validation_ : dict
        Held-out log loss per candidate ``C`` (empty when ``C`` was given).
    iso_x_, iso_y_ : numpy.ndarray
        Isotonic calibration curve (logit -> probability), interpolated linearly.
    """

    def __init__(
        self,
        C: float | None = None,
        C_grid: tuple[float, ...] = C_GRID,
        validation_share: float = 0.3,
        max_iter: int = 1000,
        random_state: int = 0,
    ) -> None:
        self.C = C
        self.C_grid = C_grid
        self.validation_share = validation_share
        self.max_iter = max_iter
        self.random_state = random_state

    def _design(
        self,
        features: Mapping[str, np.ndarray],
        masks: Mapping[str, np.ndarray | None],
        n: int,
    ) -> HatDesign:
        knot = np.full((n, len(self.features_)), -1, np.int16)
        frac = np.zeros((n, len(self.features_)), np.float64)
        offsets = [0]
        for f, name in enumerate(self.features_):
            knots = self.knots_[name]
            mask = masks.get(name)
            x = features[name]
            j, fr = hat_columns(x if mask is None else x[mask], knots)
            where = slice(None) if mask is None else np.flatnonzero(mask)
            knot[where, f] = j
            frac[where, f] = fr
            offsets.append(offsets[-1] + len(knots))
        return HatDesign(knot, frac, np.asarray(offsets))

    def fit(
        self,
        features: Mapping[str, np.ndarray],
        masks: Mapping[str, np.ndarray | None],
        y: np.ndarray,
        sample_weight: np.ndarray,
        groups: np.ndarray | None = None,
    ) -> Blender:
        """Fit shape functions and the calibration curve.

        Parameters
        ----------
        features : mapping of str to numpy.ndarray
            One value per sample row and feature.
        masks : mapping of str to numpy.ndarray or None
            Rows where a feature applies (None = all rows); elsewhere it contributes 0.
        y : numpy.ndarray
            1 when the customer bought the target in the held-out period.
        sample_weight : numpy.ndarray
            Row weights (inverse sampling rates).
        groups : numpy.ndarray, optional
            Customer of each row (the validation split keeps customers whole).
        """
        n = len(y)
        y = np.asarray(y, dtype=np.int8)
        self.features_, self.knots_ = [], {}
        for name in features:
            mask = masks.get(name)
            knots = knots_for(features[name] if mask is None else features[name][mask])
            if mask is None and len(knots) == 1:
                continue  # constant: the intercept carries it
            self.features_.append(name)
            self.knots_[name] = knots
        design = self._design(features, masks, n)
        balanced = balanced_weights(y, sample_weight)
        self.validation_ = {}
        start = None
        if self.C is None:
            self.C_, start = self._choose_C(design, y, balanced, groups)
        else:
            self.C_ = float(self.C)
        coef, self.intercept_ = fit_logistic(
            design, y, balanced, self.C_, start=start, max_iter=self.max_iter
        )
        self.coef_ = {}
        offset = 0
        for name in self.features_:
            k = len(self.knots_[name])
            self.coef_[name] = coef[offset : offset + k].astype(np.float64)
            offset += k
        logit = design.raw(coef, self.intercept_)
        iso = IsotonicRegression(y_min=MIN_PROBABILITY, y_max=1.0, out_of_bounds="clip")
        iso.fit(logit, y, sample_weight=sample_weight)
        self.iso_x_ = np.asarray(iso.X_thresholds_, dtype=np.float64)
        self.iso_y_ = np.asarray(iso.y_thresholds_, dtype=np.float64)
        return self

    def _choose_C(
        self,
        design: HatDesign,
        y: np.ndarray,
        weight: np.ndarray,
        groups: np.ndarray | None,
    ) -> tuple[float, tuple[np.ndarray, float] | None]:
        """The ``C`` with the lowest held-out log loss, and its solution (a warm start)."""
        rng = np.random.default_rng(self.random_state)
        groups = np.arange(len(y)) if groups is None else np.asarray(groups)
        uniq = np.unique(groups)
        held = rng.random(len(uniq)) < self.validation_share
        val = np.isin(groups, uniq[held])
        if not (y[val].any() and y[~val].any()):
            return self.C_grid[len(self.C_grid) // 2], None
        train, held_rows = np.flatnonzero(~val), np.flatnonzero(val)
        best, best_loss, best_fit = self.C_grid[0], np.inf, None
        fit = None
        # strongest penalty first, each fit starting from the previous solution
        for C in sorted(self.C_grid):
            fit = fit_logistic(design, y, weight, C, rows=train, start=fit, max_iter=self.max_iter)
            p = np.clip(expit(design.raw(*fit, held_rows)), 1e-12, 1 - 1e-12)
            yv = y[val]
            loss = -np.average(yv * np.log(p) + (1 - yv) * np.log(1 - p), weights=weight[val])
            self.validation_[C] = float(loss)
            if loss < best_loss:
                best, best_loss, best_fit = C, loss, fit
        return float(best), best_fit

    def _interpolator(self, key: str, xp: np.ndarray, fp: np.ndarray) -> Interpolator:
        """The cached :class:`Interpolator` of ``(xp, fp)`` (rebuilt when they are new arrays)."""
        cache = self.__dict__.setdefault("_interpolators", {})
        hit = cache.get(key)
        if hit is None or hit[0] is not xp or hit[1] is not fp:
            hit = cache[key] = (xp, fp, Interpolator(xp, fp))
        return hit[2]

    def shape(self, name: str, x: np.ndarray) -> np.ndarray:
        """The contribution ``g_name(x)`` of a feature (same shape as ``x``, float32)."""
        if name not in self.coef_:
            return np.zeros(np.shape(x), np.float32)
        g = self._interpolator(name, self.knots_[name], self.coef_[name])
        return g(x, dtype=np.float32)

    def probability(self, logit: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for logits (same shape, float32)."""
        iso = self._interpolator("_calibration", self.iso_x_, self.iso_y_)
        return iso(logit, floor=MIN_PROBABILITY, dtype=np.float32)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready parameters (see :meth:`from_dict`)."""
        return {
            "C": self.C_,
            "C_grid": list(self.C_grid),
            "validation": {str(k): v for k, v in self.validation_.items()},
            "max_iter": self.max_iter,
            "random_state": self.random_state,
            "features": self.features_,
            "knots": {k: v.tolist() for k, v in self.knots_.items()},
            "coef": {k: v.tolist() for k, v in self.coef_.items()},
            "intercept": self.intercept_,
            "iso_x": self.iso_x_.tolist(),
            "iso_y": self.iso_y_.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Blender:
        """Rebuild a fitted blender from :meth:`to_dict` output."""
        out = cls(C=float(data["C"]), max_iter=int(data["max_iter"]))  # type: ignore[arg-type]
        out.C_ = out.C  # type: ignore[assignment]
        out.C_grid = tuple(data.get("C_grid", C_GRID))  # type: ignore[arg-type]
        out.validation_ = dict(data.get("validation", {}))  # type: ignore[call-overload]
        out.random_state = int(data["random_state"])  # type: ignore[arg-type]
        out.features_ = list(data["features"])  # type: ignore[call-overload]
        out.knots_ = {k: np.asarray(v) for k, v in data["knots"].items()}  # type: ignore[attr-defined]
        out.coef_ = {k: np.asarray(v) for k, v in data["coef"].items()}  # type: ignore[attr-defined]
        out.intercept_ = float(data["intercept"])  # type: ignore[arg-type]
        out.iso_x_ = np.asarray(data["iso_x"], dtype=np.float64)
        out.iso_y_ = np.asarray(data["iso_y"], dtype=np.float64)
        return out
