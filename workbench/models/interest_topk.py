"""Per-customer top-k of the Interested-In model, dense or by candidates for large catalogues.

When every target is in the EASE block, a block of customers is scored against all targets
(``rows x targets`` logits) and the best ``k`` are kept per row.

For a catalogue larger than the EASE block (tens of thousands of products), scoring every
customer against every product would cost ``customers x products`` cells. Instead, per block:

- **head** targets (the EASE block) are scored densely;
- **tail** targets are scored only where they can rank high: where the customer's cosine
  neighbours give a score, where the customer bought or browsed them, and the ``k`` tail
  targets with the best target terms (every other tail target has exactly the logit
  ``customer terms + target terms + g(0)``, so none of them can beat those ``k``).

The expected number of targets bought (the sum of the probabilities over *all* targets, used
for the ``affinity`` column) is exact up to interpolation: the sum over tail targets without a
candidate entry is a function of the customer terms alone, tabulated once per level.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import sparse

from workbench.models import interest_features as feat
from workbench.models.interest_model import InterestModel

GRID_POINTS = 4096


def _dense_top_k(logit: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    top = np.argpartition(-logit, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(logit, top, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(vals, order, axis=1)


class TopK:
    """Top-k targets and expected purchases of blocks of customers, for one fitted level.

    Parameters
    ----------
    model : InterestModel
        Fitted (or loaded) model.
    k : int
        Targets kept per customer.
    """

    def __init__(self, model: InterestModel, k: int) -> None:
        self.model = model
        ii = model.snapshot_.itemitem
        m = ii.n_targets_
        self.k = min(k, m)
        self.head = ii.dense_index_
        self.tail = np.setdiff1d(np.arange(m), self.head)
        self.dense = len(self.tail) == 0
        if self.dense:
            return
        b = model.blender_
        self.zero_cf = float(
            b.shape("cf_dense", np.zeros(1))[0] + b.shape("cf_sparse", np.zeros(1))[0]
        )
        self.tail_terms = model.target_terms(self.tail)
        order = np.argsort(-self.tail_terms, kind="stable")
        self.best_tail = self.tail[order[: self.k]]
        self.tail_weights = ii.sparse_weights_.tocsc()[:, self.tail].tocsr()
        # sum over tail targets of P(customer terms x + target terms + g(0)), as a function of
        # x; constant outside the calibration curve's range, so the grid spans just that
        base = self.tail_terms + self.zero_cf
        lo = float(b.iso_x_.min() - base.max() - 1.0)
        hi = float(b.iso_x_.max() - base.min() + 1.0)
        self.grid = np.linspace(lo, hi, GRID_POINTS)
        self.grid_sum = np.array([b.probability(x + base).sum(dtype=np.float64) for x in self.grid])

    def block(
        self, profile: feat.Profile, customer: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-k target indices and logits (``rows x k``, best first) and expected purchases."""
        model, b = self.model, self.model.blender_
        if self.dense:
            logit = model.logit_block(profile, customer)
            top, vals = _dense_top_k(logit, self.k)
            return top, vals, b.probability(logit).sum(axis=1, dtype=np.float64)
        n, m = profile.n_rows, profile.n_targets
        head_logit = model.logit_block(profile, customer, self.head)
        h_top, h_vals = _dense_top_k(head_logit, min(self.k, len(self.head)))
        expected = b.probability(head_logit).sum(axis=1, dtype=np.float64)
        cust = model.customer_terms(customer).astype(np.float64)
        expected += np.interp(cust, self.grid, self.grid_sum)
        # tail candidates: cosine scores, profile entries, the best tail targets for everyone
        cos = sparse.csr_matrix(feat.cf_input(profile) @ self.tail_weights).tocoo()
        in_tail = np.zeros(m, bool)
        in_tail[self.tail] = True
        prof_rows = profile.rows().astype(np.int64)
        prof_tail = in_tail[profile.indices]
        keys = np.unique(
            np.concatenate(
                [
                    cos.row.astype(np.int64) * m + self.tail[cos.col],
                    prof_rows[prof_tail] * m + profile.indices[prof_tail],
                    (np.arange(n, dtype=np.int64)[:, None] * m + self.best_tail[None, :]).ravel(),
                ]
            )
        )
        rows, cols = keys // m, keys % m
        cos_keys = cos.row.astype(np.int64) * m + self.tail[cos.col]
        order = np.argsort(cos_keys)
        cos_keys, cos_vals = cos_keys[order], cos.data[order]
        cf = _lookup(cos_keys, cos_vals, keys)
        pair_keys = prof_rows * m + profile.indices
        pair = _lookup(pair_keys, model.pair_terms(profile), keys) if profile.nnz else 0.0
        where = np.full(m, -1, np.int64)
        where[self.tail] = np.arange(len(self.tail))
        terms = self.tail_terms[where[cols]]
        base = cust[rows] + terms + self.zero_cf
        logit = (
            cust[rows]
            + terms
            + b.shape("cf_dense", np.zeros(1))[0]
            + b.shape("cf_sparse", cf.astype(np.float32))
            + pair
        )
        expected += np.bincount(
            rows,
            weights=b.probability(logit).astype(np.float64) - b.probability(base),
            minlength=n,
        )
        # merge head top-k and tail candidates, keep the best k per customer
        all_rows = np.r_[np.repeat(np.arange(n), h_top.shape[1]), rows]
        all_cols = np.r_[self.head[h_top.ravel()], cols]
        all_vals = np.r_[h_vals.ravel(), logit.astype(np.float32)]
        order = np.lexsort((-all_vals, all_rows))
        all_rows, all_cols, all_vals = all_rows[order], all_cols[order], all_vals[order]
        start = np.searchsorted(all_rows, np.arange(n))
        pick = (start[:, None] + np.arange(self.k)[None, :]).ravel()
        return (
            all_cols[pick].reshape(n, self.k),
            all_vals[pick].reshape(n, self.k),
            expected,
        )


def _lookup(sorted_keys: np.ndarray, values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``values`` at ``keys`` (0 where a key is absent); ``sorted_keys`` must be sorted."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), np.float64)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    hit = sorted_keys[at] == keys
    return np.where(hit, np.asarray(values, dtype=np.float64)[at], 0.0)
