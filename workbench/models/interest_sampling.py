"""The calibration sample of the Interested-In blender and its features.

The held-out period has ``customers x targets`` pairs, far too many to fit on. The sample
keeps, for up to ``calibration_customers`` customers known at the start of the period, every
target they bought or browsed before it and every target they bought in it (weight 1), plus
``negatives`` random other targets each, weighted by the inverse of their sampling rate so that
weighted sums over the sample estimate sums over all pairs without bias.
"""

from __future__ import annotations

import numpy as np

from workbench.models import interest_features as feat
from workbench.models.interest_itemitem import ItemItem


def chunk_rows(n_targets: int, block_cells: int) -> int:
    """Customers per dense block of ``n_targets`` columns within ``block_cells`` cells."""
    return max(1, block_cells // max(n_targets, 1))


def sample_customers(known: np.ndarray, customers: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted rows of the calibration customers: up to ``customers``, uniformly among ``known``.

    Drawn before the period's snapshot is built, so that snapshot aggregates the browsing of
    these customers only (nothing else of it is read, see :func:`calibration_sample`).
    """
    candidates = np.flatnonzero(known)
    if len(candidates) > customers:
        candidates = np.sort(rng.choice(candidates, customers, replace=False))
    return candidates


def calibration_sample(
    snap: feat.Snapshot,
    pos_rows: np.ndarray,
    pos_cols: np.ndarray,
    *,
    candidates: np.ndarray,
    negatives: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns, weights and labels of the calibration sample.

    Only the profile entries and customer vectors of ``candidates`` are read (the snapshot's
    browsing may be limited to them), plus the purchase-based target features.

    Parameters
    ----------
    snap : Snapshot
        Features at the start of the held-out period.
    pos_rows, pos_cols : numpy.ndarray
        Customer x target pairs bought in the period.
    candidates : numpy.ndarray
        Sorted rows of the sampled customers (:func:`sample_customers`).
    negatives : int
        Random targets drawn per customer.
    rng : numpy.random.Generator
        Random stream (the one :func:`sample_customers` drew from).
    """
    m = snap.profile.n_targets
    chosen = np.zeros(len(snap.known), bool)
    chosen[candidates] = True
    prof_rows = snap.profile.rows()
    sel = chosen[prof_rows]
    keys_prof = prof_rows[sel].astype(np.int64) * m + snap.profile.indices[sel]
    psel = chosen[pos_rows]
    keys_pos = pos_rows[psel].astype(np.int64) * m + pos_cols[psel]
    special = np.union1d(keys_prof, keys_pos)
    n_special = np.bincount((special // m).astype(np.int64), minlength=len(chosen))
    draw_rows = np.repeat(candidates, negatives).astype(np.int64)
    draw_keys = draw_rows * m + rng.integers(0, m, len(draw_rows))
    fresh = ~np.isin(draw_keys, special)
    draw_keys, draw_rows = draw_keys[fresh], draw_rows[fresh]
    kept = np.bincount(draw_rows, minlength=len(chosen))
    rest = m - n_special
    w_draw = rest[draw_rows] / np.maximum(kept[draw_rows], 1)
    keys = np.r_[special, draw_keys]
    weight = np.r_[np.ones(len(special)), w_draw]
    y = np.isin(keys, keys_pos).astype(np.int8)
    return (keys // m).astype(np.int64), (keys % m).astype(np.int64), weight, y


def sample_features(
    snap: feat.Snapshot, rows: np.ndarray, cols: np.ndarray, horizon_days: float
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray | None]]:
    """Profile, customer and target features of the sample pairs (item-item apart).

    Returns the features and, per feature, the rows where it applies (None = all rows).
    """
    m = snap.profile.n_targets
    prof = snap.profile
    pf = feat.pair_features(prof, horizon_days)
    prof_keys = prof.rows().astype(np.int64) * m + prof.indices
    keys = rows * m + cols
    at = np.searchsorted(prof_keys, keys)
    at = np.minimum(at, max(len(prof_keys) - 1, 0))
    found = prof_keys[at] == keys if len(prof_keys) else np.zeros(len(keys), bool)
    features: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray | None] = {}
    for name in feat.PAIR_FEATURES:
        features[name] = np.where(found, pf[name][at], 0.0).astype(np.float32)
        masks[name] = found
    cust = feat.customer_features(snap.customer)
    for name in feat.CUSTOMER_FEATURES:
        features[name], masks[name] = cust[name][rows], None
    tgt = feat.target_features(snap.target)
    for name in feat.TARGET_FEATURES:
        features[name], masks[name] = tgt[name][cols], None
    return features, masks


def sample_cf(
    snap: feat.Snapshot, itemitem: ItemItem, rows: np.ndarray, cols: np.ndarray
) -> dict[str, np.ndarray]:
    """Item-item scores of the sample pairs (:meth:`ItemItem.score_pairs`).

    Only the sampled pairs are scored, not every target of every sampled customer: at 1M
    customers and 30,000 products that is about a million pairs instead of 600M cells.
    """
    uniq = np.unique(rows)
    X = feat.cf_input(snap.profile.take(uniq))
    dense, tail = itemitem.score_pairs(X, np.searchsorted(uniq, rows), cols)
    return dict(zip(feat.CF_FEATURES, (dense, tail), strict=True))
