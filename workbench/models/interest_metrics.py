"""Ranking and calibration metrics of the Interested-In evaluation.

Per-target ranking of customers (one column of a customers x targets block):

- ROC AUC with tied scores counted as half (Mann-Whitney);
- average precision, precision and lift in the top ``q`` of customers (``q`` = 1, 5, 10%),
  with ties in the score broken at random (a constant scorer gets the base rate, in
  expectation); lift = precision / base rate of the column.

Targets are averaged with weights = their number of buyers (in the subset evaluated).

Per-customer top-k (one row): ``recall@k`` = hits / targets bought, ``precision@k`` = hits / k,
``NDCG@k`` with binary gains; averaged over customers who bought at least one target. Ties are
broken by a secondary score, then at random.

Calibration: Brier score and a reliability curve (mean predicted vs observed rate per bin of
predicted probability, bins at deciles of the predictions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

FRACTIONS = (0.01, 0.05, 0.10)
TOP_K = 10


def _pct(q: float) -> str:
    return f"{round(q * 100)}%"


def target_metric_names(fractions: Sequence[float] = FRACTIONS) -> list[str]:
    """Names of the per-target metrics, in output order."""
    names = ["auc", "average_precision"]
    for q in fractions:
        names += [f"precision@{_pct(q)}", f"lift@{_pct(q)}"]
    return names


def column_metrics(
    score: np.ndarray,
    label: np.ndarray,
    rng: np.random.Generator,
    fractions: Sequence[float] = FRACTIONS,
) -> dict[str, float] | None:
    """Ranking metrics of one target's customers (None when all or none bought).

    Parameters
    ----------
    score : numpy.ndarray
        Scores of the customers (higher = more likely).
    label : numpy.ndarray
        Whether each customer bought.
    rng : numpy.random.Generator
        Breaks ties.
    fractions : sequence of float
        Top shares of customers for precision and lift.
    """
    y = np.asarray(label, dtype=bool)
    n, npos = len(y), int(y.sum())
    if npos == 0 or npos == n:
        return None
    s = np.asarray(score, dtype=np.float64)
    perm = rng.permutation(n)
    order = perm[np.argsort(-s[perm], kind="stable")]  # descending, ties in random order
    sd, yd = s[order], y[order]
    # AUC = P(pos > neg) + P(pos = neg) / 2, from tie groups of the sorted scores
    group = np.r_[0, np.cumsum(sd[1:] != sd[:-1])]
    neg_in = np.bincount(group, weights=~yd)
    pos_in = np.bincount(group, weights=yd)
    neg_below = neg_in[::-1].cumsum()[::-1] - neg_in
    auc = float((pos_in * (neg_below + neg_in / 2)).sum() / (npos * (n - npos)))
    hits = np.cumsum(yd)
    at = np.flatnonzero(yd)
    ap = float(np.mean(hits[at] / (at + 1)))
    base = npos / n
    out = {"auc": auc, "average_precision": ap}
    for q in fractions:
        top = max(1, math.ceil(q * n))
        prec = hits[top - 1] / top
        out[f"precision@{_pct(q)}"] = float(prec)
        out[f"lift@{_pct(q)}"] = float(prec / base)
    return out


class TargetAverager:
    """Accumulates per-target metrics and averages them weighted by buyers."""

    def __init__(self, fractions: Sequence[float] = FRACTIONS) -> None:
        self.names = target_metric_names(fractions)
        self.sums = dict.fromkeys(self.names, 0.0)
        self.weight = 0.0
        self.targets = 0

    def add(self, metrics: dict[str, float] | None, buyers: int) -> None:
        """Add one target's metrics with its number of buyers."""
        if metrics is None:
            return
        for k in self.names:
            self.sums[k] += metrics[k] * buyers
        self.weight += buyers
        self.targets += 1

    def result(self) -> dict[str, float | int | None]:
        """Buyer-weighted averages plus ``targets`` and ``buyers`` counted."""
        out: dict[str, float | int | None] = {
            k: (self.sums[k] / self.weight if self.weight else None) for k in self.names
        }
        out["targets"] = self.targets
        out["buyers"] = int(self.weight)
        return out


def topk_rows(
    primary: np.ndarray,
    secondary: np.ndarray | None,
    exclude: np.ndarray | None,
    rng: np.random.Generator,
    k: int = TOP_K,
) -> np.ndarray:
    """Column indices of the top ``k`` per row, best first.

    Ties in ``primary`` are broken by ``secondary`` (one value per column, higher first), then
    at random.
    """
    p = np.array(primary, dtype=np.float64)
    if exclude is not None:
        p[exclude] = -np.inf
    m = p.shape[1]
    k = min(k, m)
    jitter = rng.random(m)
    if secondary is None:
        tie = np.argsort(np.argsort(jitter))
    else:
        sec = np.ravel(np.asarray(secondary, np.float64))
        tie = np.argsort(np.lexsort((jitter, sec)))
    tie = tie / m  # in [0, 1), higher = preferred among equal primary values
    part = np.argpartition(-p, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(p, part, axis=1).min(axis=1)[:, None]
    key = np.where(p > kth, 3.0 + tie, np.where(p == kth, 1.0 + tie, -1.0))
    top = np.argpartition(-key, k - 1, axis=1)[:, :k]
    order = np.lexsort((-tie[top], -np.take_along_axis(p, top, axis=1)), axis=1)
    return np.take_along_axis(top, order, axis=1)


class CustomerAverager:
    """Accumulates per-customer recall, precision and NDCG at ``k``."""

    def __init__(self, k: int = TOP_K) -> None:
        self.k = k
        self.sums = {f"recall@{k}": 0.0, f"precision@{k}": 0.0, f"ndcg@{k}": 0.0}
        self.customers = 0
        self.discount = 1.0 / np.log2(np.arange(2, k + 2))

    def add(self, top: np.ndarray, relevant: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Add a block: ``top`` (rows x k column indices), ``relevant`` (rows x targets bool).

        ``valid`` marks columns a row may rank (None = all); rows without a relevant column are
        skipped.
        """
        rel = relevant if valid is None else relevant & valid
        n_rel = rel.sum(axis=1)
        rows = np.flatnonzero(n_rel > 0)
        if len(rows) == 0:
            return
        hit = np.take_along_axis(rel[rows], top[rows], axis=1)
        hits = hit.sum(axis=1)
        k = self.k
        dcg = (hit * self.discount[None, : hit.shape[1]]).sum(axis=1)
        ideal = np.cumsum(self.discount)[np.minimum(n_rel[rows], k) - 1]
        self.sums[f"recall@{k}"] += float((hits / n_rel[rows]).sum())
        self.sums[f"precision@{k}"] += float((hits / k).sum())
        self.sums[f"ndcg@{k}"] += float((dcg / ideal).sum())
        self.customers += len(rows)

    def result(self) -> dict[str, float | int | None]:
        """Means over the customers added, plus their count."""
        out: dict[str, float | int | None] = {
            name: (s / self.customers if self.customers else None) for name, s in self.sums.items()
        }
        out["customers"] = self.customers
        return out


class Reliability:
    """Brier score and a reliability curve accumulated over blocks of predictions.

    Parameters
    ----------
    edges : numpy.ndarray
        Inner bin edges of the predicted probability (e.g. deciles of a sample).
    """

    def __init__(self, edges: np.ndarray) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        nb = len(self.edges) + 1
        self.count = np.zeros(nb)
        self.pred = np.zeros(nb)
        self.obs = np.zeros(nb)
        self.sq = 0.0
        self.n = 0

    def add(self, prob: np.ndarray, label: np.ndarray, mask: np.ndarray | None = None) -> None:
        """Add predictions and outcomes (``mask`` selects the pairs to count)."""
        p = np.asarray(prob, dtype=np.float64)
        y = np.asarray(label, dtype=np.float64)
        if mask is not None:
            p, y = p[mask], y[mask]
        else:
            p, y = p.ravel(), y.ravel()
        b = np.searchsorted(self.edges, p, side="right")
        nb = len(self.count)
        self.count += np.bincount(b, minlength=nb)
        self.pred += np.bincount(b, weights=p, minlength=nb)
        self.obs += np.bincount(b, weights=y, minlength=nb)
        self.sq += float(((p - y) ** 2).sum())
        self.n += len(p)

    def brier(self) -> float | None:
        """Mean squared error of the probabilities."""
        return self.sq / self.n if self.n else None

    def curve(self) -> list[dict[str, float]]:
        """Per non-empty bin: ``mean_predicted``, ``observed`` rate and ``pairs``."""
        out = []
        for c, p, o in zip(self.count, self.pred, self.obs, strict=True):
            if c:
                out.append(
                    {"mean_predicted": float(p / c), "observed": float(o / c), "pairs": int(c)}
                )
        return out


def decile_edges(sample: np.ndarray) -> np.ndarray:
    """Inner edges of ten equal-count bins of ``sample`` (duplicates collapse)."""
    if len(sample) == 0:
        return np.zeros(0)
    return np.unique(np.quantile(np.asarray(sample, dtype=np.float64), np.linspace(0.1, 0.9, 9)))
