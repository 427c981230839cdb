"""Honest temporal evaluation of Interested In against simple baselines.

``run_interest_evaluation(params, cutoff, out_dir)`` fits the model exactly as a run with
``as_of = cutoff`` would (calibration on the horizon before the cutoff, nothing after it is
read), then labels every customer x target with the purchases in ``(cutoff, cutoff + horizon]``.
Customers evaluated: those known at the cutoff (an order, event or dated sign-up before it);
above ``interest.evaluation_customers`` of them, the levels are fitted and scored on a random
sample of that size (the history of the others is not used, which can only hurt the model).

Scorers, all computed from data up to the cutoff:

- ``model``: the Interested-In model (ranked by its logit, probabilities for calibration);
- ``random``: uniform random scores;
- ``heaviest_buyers``: the customer's number of order days (per customer: ties by popularity);
- ``bought_before``: recency-weighted purchases of the target (decayed occasions, half-life
  120 days; per customer: ties by popularity);
- ``popularity``: share of customers who bought the target in the horizon before the cutoff
  (the same for every customer; also a probability, so it gets a Brier score).

Metrics (see :mod:`workbench.models.interest_metrics`) are reported ``overall`` and for
``new_to_target`` customer x target pairs (the customer never bought the target before the
cutoff): per-target ranking of customers averaged over targets weighted by buyers, per-customer
top-10, and calibration.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from workbench import config, engine
from workbench.models import interest_data as idata
from workbench.models import interest_metrics as im
from workbench.models.interest import iter_fits, resolve_levels
from workbench.models.interest_catalog import read_products
from workbench.models.interest_model import InterestModel, chunk_rows

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from workbench.params import Params

log = logging.getLogger(__name__)

OUTPUT = "interest_eval.json"
FIGURE = "interest_eval.png"
SCORERS = ("model", "random", "heaviest_buyers", "bought_before", "popularity")
SUBSETS = ("overall", "new_to_target")
PROBABILISTIC = ("model", "popularity")


class _Scores:
    """Model and baseline scores of a block of sampled customers x targets."""

    def __init__(self, model: InterestModel, rows: np.ndarray, rng: np.random.Generator) -> None:
        snap = model.snapshot_
        self.model, self.rows, self.rng = model, rows, rng
        prof = snap.profile.take(rows)
        self.profile = prof
        self.customer = {k: v[rows] for k, v in snap.customer.items()}
        m = prof.n_targets
        recent = (snap.profile.values["own_long"] > 0) & (
            snap.profile.values["last_age"] <= model.horizon_days
        )
        n_known = max(int(snap.known.sum()), 1)
        self.popularity = (
            np.bincount(snap.profile.indices, weights=recent, minlength=m) / n_known
        ).astype(np.float32)
        self.heavy = self.customer["order_days"].astype(np.float32)
        self.bought = prof.matrix((prof.values["own_long"] > 0).astype(np.float32)).tocsr()
        self.recency = prof.matrix(prof.values["own_mid"]).tocsr()

    def block(self, lo: int, hi: int, cols: np.ndarray | None) -> dict[str, Any]:
        """Scores (primary, secondary, probability) per scorer for sample rows ``lo:hi``."""
        prof = self.profile.slice(lo, hi)
        cust = {k: v[lo:hi] for k, v in self.customer.items()}
        logit = self.model.logit_block(prof, cust, cols)
        shape = logit.shape
        sel = slice(None) if cols is None else cols
        pop = self.popularity[sel][None, :]
        bought = self.bought[lo:hi][:, sel].toarray() > 0
        out = {
            "model": (logit, None, self.model.blender_.probability(logit)),
            "random": (self.rng.random(shape, dtype=np.float32), None, None),
            "heaviest_buyers": (np.broadcast_to(self.heavy[lo:hi, None], shape), pop, None),
            "bought_before": (self.recency[lo:hi][:, sel].toarray(), pop, None),
            "popularity": (np.broadcast_to(pop, shape), None, np.broadcast_to(pop, shape)),
        }
        return {"scores": out, "bought": bought}


def evaluate_model(
    model: InterestModel,
    labels: dict[str, np.ndarray],
    *,
    max_customers: int = 20_000,
    max_targets: int = 1_000,
    k: int = im.TOP_K,
    random_state: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Metrics of a fitted model and the baselines against label pairs.

    Parameters
    ----------
    model : InterestModel
        Fitted with ``as_of = cutoff``.
    labels : dict of numpy.ndarray
        ``row`` and ``target_idx`` of purchases in ``(cutoff, cutoff + horizon]``.
    max_customers : int
        Customers sampled (at random) among those known at the cutoff.
    max_targets : int
        Targets with the most buyers evaluated in the per-target ranking.
    k : int
        Cut-off of the per-customer metrics.
    random_state : int
        Seed of the samples and of tie-breaking.
    progress : bool
        Show progress bars.
    """
    rng = np.random.default_rng(random_state)
    snap = model.snapshot_
    m = snap.profile.n_targets
    rows = np.flatnonzero(snap.known)
    if len(rows) > max_customers:
        rows = np.sort(rng.choice(rows, max_customers, replace=False))
    pos_in_sample = np.full(snap.profile.n_rows, -1, np.int64)
    pos_in_sample[rows] = np.arange(len(rows))
    lr = pos_in_sample[labels["row"]]
    keep = lr >= 0
    from scipy import sparse

    Y = sparse.csr_matrix(
        (np.ones(int(keep.sum()), bool), (lr[keep], labels["target_idx"][keep])),
        shape=(len(rows), m),
    )
    Y.sum_duplicates()
    Y.data[:] = True
    scores = _Scores(model, rows, rng)
    buyers = np.asarray((Y > 0).sum(axis=0)).ravel()
    targets = np.flatnonzero(buyers > 0)
    targets = targets[np.argsort(-buyers[targets], kind="stable")][:max_targets]
    per_target = {(s, sub): im.TargetAverager() for s in SCORERS for sub in SUBSETS}
    step = max(1, chunk_rows(len(rows), model.block_cells))
    for i in tqdm(range(0, len(targets), step), desc="per target", disable=not progress):
        cols = np.sort(targets[i : i + step])
        blk = scores.block(0, len(rows), cols)
        yb = Y[:, cols].toarray()
        for j in range(len(cols)):
            new = ~blk["bought"][:, j]
            for s, (primary, _, _) in blk["scores"].items():
                col = primary[:, j]
                per_target[s, "overall"].add(im.column_metrics(col, yb[:, j], rng), yb[:, j].sum())
                per_target[s, "new_to_target"].add(
                    im.column_metrics(col[new], yb[new, j], rng), yb[new, j].sum()
                )
    per_customer = {(s, sub): im.CustomerAverager(k) for s in SCORERS for sub in SUBSETS}
    reliab: dict[tuple[str, str], im.Reliability] = {}
    step = chunk_rows(m, model.block_cells // 4)
    for lo in tqdm(range(0, len(rows), step), desc="per customer", disable=not progress):
        hi = min(len(rows), lo + step)
        blk = scores.block(lo, hi, None)
        yb = Y[lo:hi].toarray()
        new = ~blk["bought"]
        for s, (primary, secondary, prob) in blk["scores"].items():
            top_all = im.topk_rows(primary, secondary, None, rng, k)
            per_customer[s, "overall"].add(top_all, yb)
            top_new = im.topk_rows(primary, secondary, ~new, rng, k)
            per_customer[s, "new_to_target"].add(top_new, yb, new)
            if prob is None:
                continue
            for sub, mask in (("overall", None), ("new_to_target", new)):
                if (s, sub) not in reliab:
                    sample = prob if mask is None else prob[mask]
                    reliab[s, sub] = im.Reliability(im.decile_edges(np.ravel(sample)))
                reliab[s, sub].add(prob, yb, mask)
    result: dict[str, Any] = {
        "customers": len(rows),
        "customers_known": int(snap.known.sum()),
        "targets": m,
        "targets_evaluated": len(targets),
        "label_pairs": int(Y.nnz),
        "label_pairs_new_to_target": int(Y.nnz - Y.multiply(scores.bought).nnz),
        "base_rate": float(Y.nnz / max(len(rows) * m, 1)),
        "scorers": {},
        "reliability": {},
    }
    for s in SCORERS:
        result["scorers"][s] = {}
        for sub in SUBSETS:
            values = {**per_target[s, sub].result(), **per_customer[s, sub].result()}
            rel = reliab.get((s, sub))
            values["brier"] = rel.brier() if rel else None
            result["scorers"][s][sub] = values
            if rel is not None:
                result["reliability"].setdefault(s, {})[sub] = rel.curve()
    return result


def evaluation_cutoff(
    params: Params, as_of: datetime, first_order_at: datetime | None
) -> tuple[date | None, str]:
    """The cutoff of the run's honest evaluation, or None and why it is skipped.

    Parameters
    ----------
    params : Params
        Run parameters (``interest.evaluate``, ``models.horizon_days``).
    as_of : datetime
        The run's instant.
    first_order_at : datetime or None
        The first order line's time (None: no orders).

    Returns
    -------
    tuple
        ``(cutoff, "")`` (``as_of - horizon``) when the run evaluates, else ``(None, reason)``.
    """
    horizon = timedelta(days=params.models.horizon_days)
    cutoff = (as_of - horizon).date()
    if not params.interest.evaluate:
        return None, (
            "evaluation off (interest.evaluate: false); run `workbench evaluate-interest "
            f"PARAMS --cutoff {cutoff}` on its own schedule"
        )
    if first_order_at is None or first_order_at.date() >= cutoff - horizon:
        return None, (
            f"not enough history before {cutoff}: the evaluation needs two horizons of orders"
        )
    return cutoff, ""


def run_interest_evaluation(
    params: Params,
    cutoff: date,
    out_dir: Path,
    *,
    progress: bool = True,
    con: BaseBackend | None = None,
    model_params: Mapping[str, Any] | None = None,
    max_customers: int = 20_000,
    max_targets: int = 1_000,
    random_state: int = 0,
) -> dict[str, Any]:
    """Train on history up to ``cutoff``, label with the next horizon, compare with baselines.

    Parameters
    ----------
    params : Params
        Run parameters (``interest.levels``, ``models.horizon_days``, the data sources).
    cutoff : date
        Last day of training history (its end, UTC); labels are purchases in the
        ``models.horizon_days`` after it.
    out_dir : Path
        Folder for ``interest_eval.json`` and ``interest_eval.png``; the canonical tables are
        read from ``out_dir/data`` (ingested there first when missing).
    progress : bool
        Show progress bars.
    con : ibis backend, optional
        Connection (default: the one ``params.engine`` asks for).
    model_params : mapping, optional
        Extra :class:`InterestModel` parameters.
    max_customers, max_targets, random_state
        See :func:`evaluate_model`.

    Returns
    -------
    dict
        What ``interest_eval.json`` holds: settings and, per level, every metric per scorer,
        ``overall`` and ``new_to_target``, plus reliability curves.
    """
    out_dir = Path(out_dir)
    if not (out_dir / config.RUN_DATA / "orders.parquet").exists():
        from workbench.ingest.pipeline import ingest

        ingest(params, out_dir, progress=progress)
    con = con if con is not None else engine.connect_for(params, out_dir / "work")
    source = idata.InterestSource.from_run_dir(con, out_dir)
    as_of = idata.instant(cutoff)
    horizon = params.models.horizon_days
    end = as_of + timedelta(days=horizon)
    last = source.last_order_at()
    products = read_products(source.products, source.sales)
    levels, skipped = resolve_levels(params.interest.levels, products)
    customers = idata.customer_ids(source, as_of, include_undated=False)
    known = len(customers)
    customers = sample_customers(customers, params.interest.evaluation_customers, random_state)
    fit_source = source.restricted_to(customers) if len(customers) < known else source
    fits = iter_fits(
        source,
        levels,
        as_of,
        horizon,
        customers,
        model_params=model_params,
        progress=progress,
        fit_source=fit_source,
    )
    result: dict[str, Any] = {
        "cutoff": as_of.isoformat(),
        "label_window": [as_of.isoformat(), end.isoformat()],
        "label_window_complete": bool(last >= end - timedelta(days=1)),
        "horizon_days": horizon,
        "engine": params.engine,
        "customers_at_cutoff": known,
        "customers_fitted": len(customers),
        "skipped_levels": skipped,
        "definitions": _definitions(),
        "levels": {},
    }
    if not result["label_window_complete"]:
        log.warning("the data end (%s) is inside the label window: labels are partial", last)
    for level, model in fits:  # evaluated as soon as fitted: one level's model at a time
        pairs = idata.label_pairs(fit_source.sales, model.catalog_.product_map, as_of, end)
        labels = idata.to_arrays(pairs, customers, ["target_idx"])
        result["levels"][level] = {
            **evaluate_model(
                model,
                labels,
                max_customers=max_customers,
                max_targets=max_targets,
                random_state=random_state,
                progress=progress,
            ),
            "fit": model.fit_info_,
        }
        del model, labels  # before the next level is fitted
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / OUTPUT).write_text(json.dumps(result, indent=1, default=str))
    if result["levels"]:
        from workbench.models.interest_plot import plot_evaluation

        plot_evaluation(result, out_dir / FIGURE)
    return result


def sample_customers(customers: pa.Array, limit: int | None, random_state: int = 0) -> pa.Array:
    """At most ``limit`` of the sorted ``customers``, drawn at random, still sorted."""
    if limit is None or len(customers) <= limit:
        return customers
    rng = np.random.default_rng(random_state)
    pick = np.sort(rng.choice(len(customers), limit, replace=False))
    log.info(
        "evaluation fitted on %d of %d customers (interest.evaluation_customers)",
        limit,
        len(customers),
    )
    return customers.take(pa.array(pick))


def _definitions() -> dict[str, str]:
    return {
        "auc": "per target, customers ranked by score; mean over targets weighted by buyers",
        "average_precision": "per target, ties broken at random; buyer-weighted mean",
        "precision@q": "share of buyers among the top q of customers per target",
        "lift@q": "precision@q / the target's base rate",
        "recall@k": "per customer: targets bought among the top k / targets bought",
        "precision@k": "per customer: targets bought among the top k / k",
        "ndcg@k": "per customer, binary gains",
        "brier": "mean squared error of the probability over customer x target pairs",
        "new_to_target": "pairs where the customer never bought the target before the cutoff; "
        "per customer, targets bought before are not ranked",
        "bought_before": "decayed purchase occasions of the target (half-life 120 days)",
        "heaviest_buyers": "order days before the cutoff",
        "popularity": "share of known customers who bought the target in the horizon before "
        "the cutoff",
    }


def summary_table(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flat rows (level, subset, scorer, metrics...) of an evaluation result, for tables."""
    rows = []
    for level, res in result["levels"].items():
        for scorer, subsets in res["scorers"].items():
            for subset, values in subsets.items():
                rows.append({"level": level, "subset": subset, "scorer": scorer, **values})
    return rows
