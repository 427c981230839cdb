"""The Interested-In estimator of one level: signals -> calibrated probability of buying a target.

Fitting follows the temporal contract of the run (``H`` = ``horizon_days``):

1. features as of ``as_of - H`` (profiles, item-item model, popularity, activity);
2. labels: the customer x target purchases in ``(as_of - H, as_of]``;
3. the :class:`~workbench.models.interest_blend.Blender` learns how to weigh the signals and
   maps its logit to calibrated probabilities on a sample of that period: up to
   ``calibration_customers`` customers known at ``as_of - H``, with every target they bought
   or browsed, every target they bought in the period, and ``negatives`` random other targets
   (weighted by the inverse sampling rate, so the fit is unbiased);
4. features are recomputed as of ``as_of`` (the item-item model refitted on all history) and
   the fitted blender scores them: ``P(buy target within H days after as_of)``.

Nothing after ``as_of`` is read. Scoring is chunked over customers (:meth:`logit_block`), with
chunk sizes chosen so a dense ``customers x targets`` block stays under ``block_cells`` cells.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import BaseEstimator
from sklearn.metrics import roc_auc_score
from tqdm.auto import tqdm

from workbench.models import interest_data as idata
from workbench.models import interest_features as feat
from workbench.models import interest_sampling as sampling
from workbench.models.interest_blend import Blender
from workbench.models.interest_catalog import TargetCatalog
from workbench.models.interest_itemitem import ItemItem
from workbench.models.interest_sampling import chunk_rows

log = logging.getLogger(__name__)


class InterestModel(BaseEstimator):
    """Calibrated probability that a customer buys a target of one level within the horizon.

    Parameters
    ----------
    level : str
        ``product``, ``category``, ``brand`` or ``keyword``.
    horizon_days : int
        Prediction horizon (days) and length of the held-out calibration period.
    calibration_customers : int
        Most customers sampled for the blender fit.
    negatives : int
        Random not-bought targets drawn per sampled customer.
    event_weights : mapping, optional
        Weight per event type (default cart 4 > click 2 > search 1.5 > view 1).
    itemitem : mapping, optional
        Parameters of :class:`~workbench.models.interest_itemitem.ItemItem`
        (``max_dense``, ``neighbours``, ``l2``...).
    C : float or None
        Inverse L2 penalty of the blender (None = chosen on held-out customers).
    l2_shares : tuple of float
        EASE penalties (relative to the mean buyers per target) tried when ``itemitem`` sets
        neither ``l2`` nor ``l2_share``: the one whose item-item score best ranks the
        calibration period's new-to-target purchases (weighted ROC AUC) is used.
    block_cells : int
        Largest dense ``customers x targets`` block scored at once.
    random_state : int
        Seed of the calibration sample.

    Attributes
    ----------
    catalog_ : TargetCatalog
        Targets.
    customers_ : pyarrow.Array
        Customer ids, the row order.
    blender_ : Blender
        Fitted signal weights and calibration curve.
    snapshot_ : Snapshot
        Features as of ``as_of_`` (what scoring uses).
    as_of_ : datetime
        Instant the scores look from.
    fit_info_ : dict
        Diagnostics of the fit (sample sizes, held-out log loss and base rate).
    """

    def __init__(
        self,
        level: str,
        horizon_days: int = 90,
        *,
        calibration_customers: int = 20_000,
        negatives: int = 20,
        event_weights: Mapping[str, float] | None = None,
        itemitem: Mapping[str, Any] | None = None,
        C: float | None = None,
        l2_shares: tuple[float, ...] = (0.5, 4.0, 30.0),
        block_cells: int = 20_000_000,
        random_state: int = 0,
    ) -> None:
        self.level = level
        self.horizon_days = horizon_days
        self.calibration_customers = calibration_customers
        self.negatives = negatives
        self.event_weights = event_weights
        self.itemitem = itemitem
        self.C = C
        self.l2_shares = l2_shares
        self.block_cells = block_cells
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        source: idata.InterestSource,
        catalog: TargetCatalog,
        customers: pa.Array,
        as_of: datetime,
        *,
        query_map: pd.DataFrame | None = None,
        known: np.ndarray | None = None,
        progress: bool = False,
        shared: idata.Shared | None = None,
    ) -> InterestModel:
        """Fit on the held-out period before ``as_of`` and compute the features as of ``as_of``.

        Parameters
        ----------
        source : InterestSource
            Canonical tables.
        catalog : TargetCatalog
            Targets of ``level``.
        customers : pyarrow.Array
            Sorted ids of the customers to score.
        as_of : datetime
            The instant scores look from; nothing later is read.
        query_map : pandas.DataFrame, optional
            Search query -> target matches.
        known : numpy.ndarray, optional
            Which customers exist at ``as_of`` (default: all).
        progress : bool
            Show a progress bar over the fit's five stages (their wall times are in
            ``fit_info_["stage_seconds"]`` either way).
        shared : Shared, optional
            Level-independent aggregates shared with the other levels' fits on the same
            ``source`` and ``customers`` (see :func:`workbench.models.interest.iter_fits`).
        """
        started = time.perf_counter()
        stage = _Stages(f"fit {self.level}", progress)
        shared = idata.Shared() if shared is None else shared
        as_of = idata.instant(as_of)
        start = as_of - timedelta(days=self.horizon_days)
        n = len(customers)
        source = source.keyed(customers)  # aggregates group by the customer's row
        known_now = np.ones(n, bool) if known is None else np.asarray(known, bool)
        known_then = known_now & shared.get(
            ("known", start), lambda: _known_mask(source, customers, start)
        )
        ii_params = dict(self.itemitem or {})
        tune = not ({"l2", "l2_share"} & set(ii_params)) and len(self.l2_shares) > 1
        if tune:
            ii_params["l2_share"] = self.l2_shares[0]
        kwargs = {
            "query_map": query_map,
            "event_weights": self.event_weights,
            "itemitem": ii_params,
            "shared": shared,
        }
        rng = np.random.default_rng(self.random_state)
        sampled = sampling.sample_customers(known_then, self.calibration_customers, rng)
        # browsing as of the period's start is read for the sampled customers only
        browse_rows = sampled if len(sampled) < known_then.sum() else None
        snap0 = feat.build_snapshot(
            source, catalog, customers, known_then, start, browse_rows=browse_rows, **kwargs
        )
        stage.done("period_start_snapshot")
        labels = idata.to_arrays(
            idata.label_pairs(source.sales, catalog.product_map, start, as_of),
            customers,
            ["target_idx"],
        )
        keep = known_then[labels["row"]]
        rows, cols, weight, y = sampling.calibration_sample(
            snap0,
            labels["row"][keep],
            labels["target_idx"][keep],
            candidates=sampled,
            negatives=self.negatives,
            rng=rng,
        )
        features, masks = sampling.sample_features(snap0, rows, cols, self.horizon_days)
        stage.done("calibration_sample")
        self.l2_auc_: dict[str, float] = {}
        if tune:
            snap0.itemitem, share, self.l2_auc_ = self._choose_l2(
                snap0, rows, cols, y, weight, features["bought"]
            )
            kwargs["itemitem"] = {**ii_params, "l2_share": share}
        features.update(sampling.sample_cf(snap0, snap0.itemitem, rows, cols))
        masks.update(dict.fromkeys(feat.CF_FEATURES))
        stage.done("itemitem_penalty")
        self.blender_ = Blender(C=self.C, random_state=self.random_state).fit(
            features, masks, y, weight, groups=rows
        )
        p = self.blender_.probability(self._sample_logit(features, masks))
        eps = 1e-7
        logloss = -np.average(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps), weights=weight)
        self.fit_info_ = {
            "calibration_period": [start.isoformat(), as_of.isoformat()],
            "calibration_customers": len(np.unique(rows)),
            "calibration_rows": len(rows),
            "calibration_positives": int(y.sum()),
            "held_out_base_rate": float(np.average(y, weights=weight)),
            "held_out_mean_prediction": float(np.average(p, weights=weight)),
            "held_out_log_loss": float(logloss),
            "itemitem_l2": float(snap0.itemitem.l2_),
            "itemitem_dense_targets": len(snap0.itemitem.dense_index_),
            "itemitem_l2_share": kwargs["itemitem"].get("l2_share"),
            "itemitem_l2_auc": self.l2_auc_,
            "blender_C": self.blender_.C_,
        }
        stage.done("blender")
        del snap0
        self.catalog_ = catalog
        self.customers_ = customers
        self.as_of_ = as_of
        self.snapshot_ = feat.build_snapshot(source, catalog, customers, known_now, as_of, **kwargs)
        stage.done("as_of_snapshot")
        self.fit_info_["stage_seconds"] = stage.close()
        self.fit_info_["fit_seconds"] = round(time.perf_counter() - started, 1)
        log.info("%s model fitted: %s", self.level, self.fit_info_)
        return self

    def _choose_l2(
        self,
        snap: feat.Snapshot,
        rows: np.ndarray,
        cols: np.ndarray,
        y: np.ndarray,
        weight: np.ndarray,
        bought: np.ndarray,
    ) -> tuple[ItemItem, float, dict[str, float]]:
        """The EASE penalty whose scores best rank new-to-target purchases of the period."""
        new = bought == 0
        fitted = snap.itemitem
        in_dense = np.isin(cols, fitted.dense_index_)
        sel = new & in_dense
        if not (y[sel].any() and (y[sel] == 0).any()):
            return fitted, float(self.l2_shares[0]), {}
        scores: dict[str, float] = {}
        best = (-1.0, fitted, float(self.l2_shares[0]))
        X = feat.cf_input(snap.profile)
        for share in self.l2_shares:
            model = fitted if share == self.l2_shares[0] else fitted.with_l2_share(X, share)
            cf = sampling.sample_cf(snap, model, rows[sel], cols[sel])["cf_dense"]
            auc = float(roc_auc_score(y[sel], cf, sample_weight=weight[sel]))
            scores[str(share)] = auc
            if auc > best[0]:
                best = (auc, model, float(share))
        log.info("%s item-item penalty: AUC by l2_share %s", self.level, scores)
        return best[1], best[2], scores

    def _sample_logit(
        self, features: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray | None]
    ) -> np.ndarray:
        b = self.blender_
        logit = np.full(len(next(iter(features.values()))), b.intercept_, np.float64)
        for name, x in features.items():
            g = b.shape(name, x)
            mask = masks.get(name)
            logit += g if mask is None else np.where(mask, g, 0.0)
        return logit

    # -------------------------------------------------------------- scoring
    def logit_block(
        self, profile: feat.Profile, customer: Mapping[str, np.ndarray], columns: Any = None
    ) -> np.ndarray:
        """Blender logits of a block of customers for targets ``columns`` (default all).

        Parameters
        ----------
        profile : Profile
            The customers' profile rows (all their entries).
        customer : mapping of str to numpy.ndarray
            Raw customer vectors of the same rows (``orders_decayed``, ...).
        columns : array-like of int, optional
            Target indices.

        Returns
        -------
        numpy.ndarray
            ``rows x columns`` float32 logits.
        """
        b = self.blender_
        m = profile.n_targets
        cols = np.arange(m) if columns is None else np.asarray(columns, dtype=np.int64)
        ii = self.snapshot_.itemitem
        dense, tail = ii.score(feat.cf_input(profile), None if columns is None else cols)
        logit = b.shape("cf_dense", dense)
        if tail.any():
            logit += b.shape("cf_sparse", tail)
        else:
            logit += b.shape("cf_sparse", np.zeros(1, np.float32))[0]
        logit += self.target_terms(cols)[None, :]
        logit += self.customer_terms(customer)[:, None]
        if profile.nnz:
            where = np.full(m, -1, np.int64)
            where[cols] = np.arange(len(cols))
            pos = where[profile.indices]
            entries = np.flatnonzero(pos >= 0)  # the pair terms of the scored columns only
            contrib = self.pair_terms(profile, entries)
            logit[profile.rows()[entries], pos[entries]] += contrib
        return logit

    def target_terms(self, columns: np.ndarray) -> np.ndarray:
        """Intercept plus the target features' contributions, per target (float32)."""
        b = self.blender_
        tgt = feat.target_features(self.snapshot_.target)
        out = np.full(len(columns), b.intercept_, np.float32)
        for name in feat.TARGET_FEATURES:
            out += b.shape(name, tgt[name][columns])
        return out

    def customer_terms(self, customer: Mapping[str, np.ndarray]) -> np.ndarray:
        """The customer features' contributions, per customer row (float32)."""
        b = self.blender_
        cust = feat.customer_features(customer)
        out = np.zeros(len(cust["activity"]), np.float32)
        for name in feat.CUSTOMER_FEATURES:
            out += b.shape(name, cust[name])
        return out

    def pair_terms(self, profile: feat.Profile, entries: np.ndarray | None = None) -> np.ndarray:
        """The profile features' contributions, per profile entry (or per one of ``entries``)."""
        b = self.blender_
        pf = feat.pair_features(profile, self.horizon_days, entries)
        out = np.zeros(profile.nnz if entries is None else len(entries), np.float32)
        for name in feat.PAIR_FEATURES:
            out += b.shape(name, pf[name])
        return out

    def iter_blocks(
        self, columns: Any = None, *, progress: bool = False
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Logits of all customers in row blocks: yields ``(first_row, logits)``."""
        snap = self.snapshot_
        ncols = snap.profile.n_targets if columns is None else len(np.atleast_1d(columns))
        step = chunk_rows(ncols, self.block_cells)
        n = snap.profile.n_rows
        for start in tqdm(
            range(0, n, step), desc=f"score {self.level}", disable=not progress, unit="block"
        ):
            stop = min(n, start + step)
            cust = {k: v[start:stop] for k, v in snap.customer.items()}
            yield start, self.logit_block(snap.profile.slice(start, stop), cust, columns)

    def predict_proba(self, rows: np.ndarray, columns: Any = None) -> np.ndarray:
        """Calibrated probabilities of customers ``rows`` for targets ``columns``."""
        rows = np.asarray(rows, dtype=np.int64)
        snap = self.snapshot_
        cust = {k: v[rows] for k, v in snap.customer.items()}
        return self.blender_.probability(self.logit_block(snap.profile.take(rows), cust, columns))


class _Stages:
    """Wall time per stage of a fit, with an optional progress bar over the stages."""

    COUNT = 5

    def __init__(self, desc: str, progress: bool) -> None:
        self.bar = tqdm(total=self.COUNT, desc=desc, disable=not progress, unit="stage")
        self.seconds: dict[str, float] = {}
        self.mark = time.perf_counter()

    def done(self, name: str) -> None:
        """Close the stage ``name`` (timed from the previous one)."""
        now = time.perf_counter()
        self.seconds[name] = round(now - self.mark, 1)
        self.mark = now
        self.bar.set_postfix_str(name)
        self.bar.update()

    def close(self) -> dict[str, float]:
        """Close the bar; the seconds per stage."""
        self.bar.close()
        return dict(self.seconds)


def _known_mask(source: idata.InterestSource, customers: pa.Array, as_of: datetime) -> np.ndarray:
    """Which of ``customers`` are known at ``as_of`` (dated activity only)."""
    import pyarrow.compute as pc

    ids = idata.customer_ids(source, as_of, include_undated=False)
    return pc.is_in(customers, value_set=ids).to_numpy(zero_copy_only=False)
