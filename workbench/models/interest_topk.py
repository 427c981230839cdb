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

Both parts run as compiled loops over one customer row at a time (:func:`_fused_rows` for the
head, :func:`_fused_tail` for the tail candidates), so no rows x targets or rows x candidates
array is written; :meth:`TopK._tail_numpy` is the array version of the tail, kept as the
reference the tests compare with (and used when the interpolations cannot be compiled).
"""

from __future__ import annotations

from collections.abc import Mapping

import numba
import numpy as np
from scipy import sparse

from workbench.models import interest_features as feat
from workbench.models.interest_blend import MIN_PROBABILITY
from workbench.models.interest_model import InterestModel
from workbench.models.interp import Interpolator, interp_into

GRID_POINTS = 4096


def _dense_top_k(logit: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    top = np.argpartition(-logit, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(logit, top, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(vals, order, axis=1)


@numba.njit(nogil=True, cache=True)
def _fused_rows(
    cf: np.ndarray,
    shape_tables: tuple,
    cf_sparse0: np.float32,
    target: np.ndarray,
    cust: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    contrib: np.ndarray,
    where: np.ndarray,
    cal_tables: tuple,
    floor: float,
    top: np.ndarray,
    vals: np.ndarray,
    expected: np.ndarray,
) -> None:
    """Logits, top-k and expected purchases of a dense block, one row at a time.

    The logit of cell ``(r, j)`` is :meth:`InterestModel.logit_block`'s, in its order of
    float32 additions: ``g_cf_dense(cf) + g_cf_sparse(0) + target[j] + cust[r]``, plus the
    row's profile contributions. Each row's best ``k`` (ties to the lower column) go to
    ``top``/``vals`` and the float64 sum of its calibrated probabilities to ``expected``, so
    no ``rows x columns`` logit or probability array is ever written.
    """
    n, m = cf.shape
    k = top.shape[1]
    xp, fp, slopes, start, inv = shape_tables
    cxp, cfp, cslopes, cstart, cinv = cal_tables
    logit = np.empty(m, np.float32)
    prob = np.empty(m, np.float32)
    for r in range(n):
        interp_into(cf[r], xp, fp, slopes, start, inv, logit, -np.inf)
        c = cust[r]
        for j in range(m):
            logit[j] = ((logit[j] + cf_sparse0) + target[j]) + c
        for e in range(indptr[r], indptr[r + 1]):
            q = where[indices[e]]
            if q >= 0:
                logit[q] += contrib[e]
        interp_into(logit, cxp, cfp, cslopes, cstart, cinv, prob, floor)
        total = 0.0
        for j in range(m):
            total += np.float64(prob[j])
        expected[r] = total
        filled = 0
        for j in range(m):
            v = logit[j]
            if filled == k and v <= vals[r, k - 1]:
                continue
            p = filled if filled < k else k - 1
            while p > 0 and vals[r, p - 1] < v:  # equal values keep the lower column first
                vals[r, p] = vals[r, p - 1]
                top[r, p] = top[r, p - 1]
                p -= 1
            vals[r, p] = v
            top[r, p] = j
            if filled < k:
                filled += 1


@numba.njit(nogil=True, cache=True)
def _insert(top: np.ndarray, vals: np.ndarray, r: int, filled: int, col: int, v: float) -> int:
    """Put ``(col, v)`` into row ``r``'s best-first list (after equal values); returns its fill."""
    k = top.shape[1]
    if filled == k and not v > vals[r, k - 1]:
        return filled
    p = filled if filled < k else k - 1
    while p > 0 and vals[r, p - 1] < v:
        vals[r, p] = vals[r, p - 1]
        top[r, p] = top[r, p - 1]
        p -= 1
    vals[r, p] = v
    top[r, p] = col
    return filled + 1 if filled < k else k


@numba.njit(nogil=True, cache=True)
def _fused_tail(
    indptr: np.ndarray,
    indices: np.ndarray,
    bought: np.ndarray,
    pair: np.ndarray,
    where: np.ndarray,
    w_indptr: np.ndarray,
    w_indices: np.ndarray,
    w_data: np.ndarray,
    tail: np.ndarray,
    tail_terms: np.ndarray,
    best_pos: np.ndarray,
    cust: np.ndarray,
    g_dense0: np.float32,
    zero_cf: np.float32,
    sparse_tables: tuple,
    cal_tables: tuple,
    floor_p: float,
    head_cols: np.ndarray,
    head_vals: np.ndarray,
    floor: np.ndarray,
    top: np.ndarray,
    vals: np.ndarray,
    expected: np.ndarray,
) -> None:
    """The tail candidates of :meth:`TopK.block`, one customer row at a time.

    Per row: the cosine scores (the row's bought targets times their tail weights, summed in
    float32 in the order of ``cf_input(profile) @ tail_weights``), then the three candidate
    groups of the numpy version in its order (A: scored tail targets outside the profile, B:
    the row's tail profile entries, C: the best-terms tail targets in neither), each adding
    ``P(logit) - P(base logit)`` to ``expected`` and entering the top-k after the head's best
    (A and B only from the head's k-th logit up). Identical to the numpy version, ties
    included, without its candidates x rows arrays.
    """
    n = indptr.shape[0] - 1
    mt = tail.shape[0]
    acc = np.zeros(mt, np.float32)
    seen = np.zeros(mt, np.bool_)
    in_b = np.zeros(mt, np.bool_)
    touched = np.empty(mt, np.int64)
    kh = head_cols.shape[1]
    sxp, sfp, sslopes, sstart, sinv = sparse_tables
    cxp, cfp, cslopes, cstart, cinv = cal_tables
    for r in range(n):
        nt = 0
        lo, hi = indptr[r], indptr[r + 1]
        for e in range(lo, hi):
            if bought[e]:
                t = indices[e]
                for q in range(w_indptr[t], w_indptr[t + 1]):
                    p = w_indices[q]
                    if not seen[p]:
                        seen[p] = True
                        touched[nt] = p
                        nt += 1
                    acc[p] += w_data[q]
        pos = np.sort(touched[:nt])
        nb = 0
        for e in range(lo, hi):
            p = where[indices[e]]
            if p >= 0:
                in_b[p] = True
                nb += 1
        filled = 0
        for j in range(kh):
            top[r, j] = head_cols[r, j]
            vals[r, j] = head_vals[r, j]
            filled += 1
        c = cust[r]
        f = floor[r]
        # A: scored tail targets outside the row's profile
        na = 0
        a_pos = np.empty(nt, np.int64)
        a_cf = np.empty(nt, np.float32)
        for i in range(nt):
            p = pos[i]
            if acc[p] != 0 and not in_b[p]:
                a_pos[na] = p
                a_cf[na] = acc[p]
                na += 1
        # B: the row's tail profile entries (their cosine score, 0 when none)
        b_pos = np.empty(nb, np.int64)
        b_cf = np.empty(nb, np.float32)
        b_pair = np.empty(nb, np.float32)
        i = 0
        for e in range(lo, hi):
            p = where[indices[e]]
            if p >= 0:
                b_pos[i] = p
                b_cf[i] = acc[p]
                b_pair[i] = pair[e]
                i += 1
        for group in range(2):
            gp = a_pos[:na] if group == 0 else b_pos
            gcf = a_cf[:na] if group == 0 else b_cf
            g = gp.shape[0]
            shape = np.empty(g, np.float32)
            interp_into(gcf, sxp, sfp, sslopes, sstart, sinv, shape, -np.inf)
            logit = np.empty(g, np.float32)
            base0 = np.empty(g, np.float32)
            for i in range(g):
                base = c + tail_terms[gp[i]]
                v = base + (g_dense0 + shape[i])
                if group == 1:
                    v = v + b_pair[i]
                logit[i] = v
                base0[i] = base + zero_cf
            prob = np.empty(g, np.float32)
            prob0 = np.empty(g, np.float32)
            interp_into(logit, cxp, cfp, cslopes, cstart, cinv, prob, floor_p)
            interp_into(base0, cxp, cfp, cslopes, cstart, cinv, prob0, floor_p)
            total = 0.0
            for i in range(g):
                total += np.float64(prob[i]) - np.float64(prob0[i])
            expected[r] += total
            for i in range(g):
                if logit[i] >= f:
                    filled = _insert(top, vals, r, filled, tail[gp[i]], logit[i])
        # C: the best-terms tail targets that are in neither group
        for i in range(best_pos.shape[0]):
            p = best_pos[i]
            if not (seen[p] and acc[p] != 0) and not in_b[p]:
                v = (c + tail_terms[p]) + zero_cf
                filled = _insert(top, vals, r, filled, tail[p], v)
        for i in range(nt):
            acc[touched[i]] = 0
            seen[touched[i]] = False
        for e in range(lo, hi):
            p = where[indices[e]]
            if p >= 0:
                in_b[p] = False


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
        # the EASE block (every target when the catalogue fits in it)
        self.head_terms = model.target_terms(self.head)
        self.head_where = ii.dense_position()
        self.fused = _fusable(model)
        if self.dense:
            return
        b = model.blender_
        self.g_dense0 = float(b.shape("cf_dense", np.zeros(1))[0])
        self.zero_cf = float(
            b.shape("cf_dense", np.zeros(1))[0] + b.shape("cf_sparse", np.zeros(1))[0]
        )
        self.tail_terms = model.target_terms(self.tail)
        order = np.argsort(-self.tail_terms, kind="stable")
        self.best_pos = np.sort(order[: self.k])
        self.best_tail = self.tail[self.best_pos]
        self.where = np.full(m, -1, np.int64)
        self.where[self.tail] = np.arange(len(self.tail))
        self.tail_weights = ii.sparse_weights_.tocsc()[:, self.tail].tocsr()
        # sum over tail targets of P(customer terms x + target terms + g(0)), as a function of
        # x; constant outside the calibration curve's range, so the grid spans just that
        base = self.tail_terms + self.zero_cf
        lo = float(b.iso_x_.min() - base.max() - 1.0)
        hi = float(b.iso_x_.max() - base.min() + 1.0)
        self.grid = np.linspace(lo, hi, GRID_POINTS)
        self.grid_sum = np.array([b.probability(x + base).sum(dtype=np.float64) for x in self.grid])

    def _head(
        self,
        profile: feat.Profile,
        customer: Mapping[str, np.ndarray],
        cols: np.ndarray | None,
        pair: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-k positions in ``cols`` (None = every target), logits, and expected purchases.

        ``cols`` is the EASE block (or None when it holds every target). With compiled
        interpolation tables the block goes through :func:`_fused_rows` (the logits are the
        same float32 values as :meth:`InterestModel.logit_block`'s; ties rank the lower
        column first); otherwise through the logit array and ``argpartition``.
        """
        model, b = self.model, self.model.blender_
        kk = min(self.k, len(self.head_terms))
        if self.fused is None:
            logit = model.logit_block(profile, customer, cols)
            top, vals = _dense_top_k(logit, kk)
            return top, vals, b.probability(logit).sum(axis=1, dtype=np.float64)
        n = profile.n_rows
        dense = model.snapshot_.itemitem.score_head(feat.cf_input(profile))
        if pair is None:
            pair = model.pair_terms(profile) if profile.nnz else np.zeros(0, np.float32)
        top = np.zeros((n, kk), np.int64)
        vals = np.full((n, kk), -np.inf, np.float32)
        expected = np.zeros(n, np.float64)
        shape_tables, cal_tables = self.fused
        _fused_rows(
            dense,
            shape_tables,
            np.float32(b.shape("cf_sparse", np.zeros(1, np.float32))[0]),
            self.head_terms,
            model.customer_terms(customer),
            profile.indptr.astype(np.int64),
            profile.indices.astype(np.int64),
            pair.astype(np.float32),
            self.head_where,
            cal_tables,
            float(MIN_PROBABILITY),
            top,
            vals,
            expected,
        )
        return top, vals, expected

    def block(
        self, profile: feat.Profile, customer: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-k target indices and logits (``rows x k``, best first) and expected purchases."""
        if self.dense:
            return self._head(profile, customer, None)
        model = self.model
        pair = model.pair_terms(profile) if profile.nnz else np.zeros(0, np.float32)
        h_top, h_vals, expected = self._head(profile, customer, self.head, pair)
        cust32 = model.customer_terms(customer)
        expected += np.interp(cust32.astype(np.float64), self.grid, self.grid_sum)
        # only candidates at least as good as the k-th head target can enter the top k
        n = profile.n_rows
        floor = h_vals[:, -1] if h_vals.shape[1] >= self.k else np.full(n, -np.inf, np.float32)
        tables = self._tail_tables()
        if tables is None:
            return self._tail_numpy(profile, pair, cust32, h_top, h_vals, floor, expected)
        top = np.zeros((n, self.k), np.int64)
        vals = np.full((n, self.k), -np.inf, np.float32)
        w = self.tail_weights
        sparse_tables, cal_tables = tables
        _fused_tail(
            profile.indptr.astype(np.int64),
            profile.indices.astype(np.int64),
            profile.values["own_long"] > 0,
            pair.astype(np.float32),
            self.where,
            w.indptr.astype(np.int64),
            w.indices.astype(np.int64),
            w.data.astype(np.float32),
            self.tail,
            self.tail_terms,
            self.best_pos.astype(np.int64),
            cust32,
            np.float32(self.g_dense0),
            np.float32(self.zero_cf),
            sparse_tables,
            cal_tables,
            float(MIN_PROBABILITY),
            self.head[h_top],
            h_vals,
            floor.astype(np.float32),
            top,
            vals,
            expected,
        )
        return top, vals, expected

    def _tail_tables(self) -> tuple | None:
        """Interpolation tables of ``g_cf_sparse`` and the calibration, or None (numpy)."""
        b = self.model.blender_
        if self.fused is None:
            return None
        if "cf_sparse" in b.coef_:
            shape = b._interpolator("cf_sparse", b.knots_["cf_sparse"], b.coef_["cf_sparse"])
            if not shape.compiled:
                return None
            sparse_tables = shape.tables
        else:  # no cf_sparse term: a shape that is 0 everywhere
            sparse_tables = Interpolator(np.array([0.0, 1.0]), np.zeros(2)).tables
        return sparse_tables, self.fused[1]

    def _tail_numpy(
        self,
        profile: feat.Profile,
        pair: np.ndarray,
        cust32: np.ndarray,
        h_top: np.ndarray,
        h_vals: np.ndarray,
        floor: np.ndarray,
        expected: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The tail candidates by array operations (when the interpolations are not compiled).

        The reference for :func:`_fused_tail`, which gives the same results (tests).
        """
        b = self.model.blender_
        n = profile.n_rows
        # tail candidates, each (customer, tail target) once: B = the profile entries (they
        # carry pair terms), A = the other cosine scores, C = the best tail targets for
        # everyone that are in neither (their logit is the base logit). Keys are
        # row * tail size + tail position.
        mt = len(self.tail)
        cos = sparse.csr_matrix(feat.cf_input(profile) @ self.tail_weights)
        cos.sort_indices()
        a_rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(cos.indptr))
        a_keys = a_rows * mt + cos.indices
        a_cf = cos.data
        in_tail = self.where >= 0
        prof_tail = in_tail[profile.indices]
        b_rows = profile.rows().astype(np.int64)[prof_tail]
        b_keys = b_rows * mt + self.where[profile.indices[prof_tail]]
        order = np.argsort(b_keys, kind="stable")
        b_rows, b_keys = b_rows[order], b_keys[order]
        b_pair = pair[prof_tail][order]
        b_in_a, a_at = _find(a_keys, b_keys)
        b_cf = np.where(b_in_a, a_cf[a_at], 0.0) if len(a_keys) else np.zeros(len(b_keys))
        a_keep = np.ones(len(a_keys), bool)
        a_keep[a_at[b_in_a]] = False
        c_rows = np.repeat(np.arange(n, dtype=np.int64), len(self.best_pos))
        c_keys = c_rows * mt + np.tile(self.best_pos, n)
        c_keep = ~(_find(a_keys, c_keys)[0] | _find(b_keys, c_keys)[0])
        a_rows, a_keys, a_cf = a_rows[a_keep], a_keys[a_keep], a_cf[a_keep]
        c_rows, c_keys = c_rows[c_keep], c_keys[c_keep]

        def logits(
            rows: np.ndarray, keys: np.ndarray, cf: np.ndarray
        ) -> tuple[np.ndarray, np.ndarray]:
            base = cust32[rows] + self.tail_terms[keys % mt]
            return base + (self.g_dense0 + b.shape("cf_sparse", cf.astype(np.float32))), base

        a_logit, a_base = logits(a_rows, a_keys, a_cf)
        b_logit, b_base = logits(b_rows, b_keys, b_cf)
        b_logit = b_logit + b_pair.astype(np.float32)
        c_logit = cust32[c_rows] + self.tail_terms[c_keys % mt] + np.float32(self.zero_cf)
        for rows, logit, base in ((a_rows, a_logit, a_base), (b_rows, b_logit, b_base)):
            expected += np.bincount(
                rows,
                weights=b.probability(logit).astype(np.float64)
                - b.probability(base + np.float32(self.zero_cf)),
                minlength=n,
            )
        cand_rows, cand_keys, cand_vals = [], [], []
        for rows, keys, logit in ((a_rows, a_keys, a_logit), (b_rows, b_keys, b_logit)):
            ok = logit >= floor[rows]
            cand_rows.append(rows[ok])
            cand_keys.append(keys[ok])
            cand_vals.append(logit[ok])
        cand_rows.append(c_rows)
        cand_keys.append(c_keys)
        cand_vals.append(c_logit)
        t_rows = np.concatenate(cand_rows)
        t_cols = self.tail[np.concatenate(cand_keys) % mt]
        t_vals = np.concatenate(cand_vals).astype(np.float32)
        # merge head top-k and tail candidates, keep the best k per customer
        all_rows = np.r_[np.repeat(np.arange(n), h_top.shape[1]), t_rows]
        all_cols = np.r_[self.head[h_top.ravel()], t_cols]
        all_vals = np.r_[h_vals.ravel(), t_vals]
        order = np.lexsort((-all_vals, all_rows))
        all_rows, all_cols, all_vals = all_rows[order], all_cols[order], all_vals[order]
        start = np.searchsorted(all_rows, np.arange(n))
        pick = (start[:, None] + np.arange(self.k)[None, :]).ravel()
        return (
            all_cols[pick].reshape(n, self.k),
            all_vals[pick].reshape(n, self.k),
            expected,
        )


def _fusable(model: InterestModel) -> tuple | None:
    """The interpolation tables :func:`_fused_rows` needs, or None (then numpy scores)."""
    b = model.blender_
    if "cf_dense" not in b.coef_:
        return None
    shape = b._interpolator("cf_dense", b.knots_["cf_dense"], b.coef_["cf_dense"])
    cal = b._interpolator("_calibration", b.iso_x_, b.iso_y_)
    if not (shape.compiled and cal.compiled):
        return None
    return shape.tables, cal.tables


def _find(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether each of ``keys`` is in ``sorted_keys``, and its position there."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), bool), np.zeros(len(keys), np.int64)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[at] == keys, at
