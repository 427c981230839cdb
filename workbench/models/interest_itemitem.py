"""Item-item collaborative filtering on the customer x target matrix ("similar customers bought").

Two closed-form models share the work, so memory stays bounded whatever the catalogue size:

- **EASE** (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data") on the
  ``max_dense`` targets with the most buyers: ``P = (X'X + lambda I)^-1``,
  ``B = -P / diag(P)`` with a zero diagonal. This is a dense ``max_dense x max_dense`` matrix
  (``max_dense = 4000`` is 64 MB in float32; the inversion needs about 4x that, transiently).
- **Item-item cosine** for every other target (the long tail of products): the ``neighbours``
  most similar targets per target, their co-buyer counts gathered one target at a time
  through its buyers' purchases (a compiled loop), so no ``targets x targets`` matrix, dense
  or sparse, ever exists. Similarities are shrunk towards zero
  for targets with few buyers: ``c_ij / (sqrt(n_i n_j) + shrink)``.

A customer's score for target ``j`` is ``x_c . B[:, j]``: a weighted sum over the targets the
customer bought. The two parts are returned separately because their scales differ; the
Interested-In blender weighs them with separate coefficients.
"""

from __future__ import annotations

import logging

import numba
import numpy as np
from scipy import sparse
from scipy.linalg import lapack
from sklearn.base import BaseEstimator

log = logging.getLogger(__name__)


class ItemItem(BaseEstimator):
    """EASE on the head of the catalogue, pruned cosine on the tail.

    Parameters
    ----------
    l2 : float or None
        EASE ridge penalty ``lambda``; None = ``l2_share`` times the mean diagonal of ``X'X``
        (the mean number of buyers per target), floored at 1.
    l2_share : float
        Penalty relative to the mean buyers per target when ``l2`` is None.
    max_dense : int
        Most targets in the dense EASE block (the rest use cosine neighbours).
    neighbours : int
        Cosine neighbours kept per tail target.
    shrink : float
        Cosine shrinkage (in buyers).
    block_cells : int
        Not used by the fit any more (the cosine neighbours are found one target at a time,
        in memory that grows with the catalogue only); accepted so that parameters saved by
        earlier versions still load.

    Attributes
    ----------
    n_targets_ : int
        Number of targets (columns of ``X``).
    dense_index_ : numpy.ndarray
        Targets in the EASE block (sorted).
    dense_weights_ : numpy.ndarray
        EASE weights, ``(len(dense_index_), len(dense_index_))`` float32, zero diagonal.
    sparse_weights_ : scipy.sparse.csc_matrix
        ``n_targets x n_targets`` cosine weights; only columns outside the EASE block are set.
    l2_ : float
        The EASE penalty used.
    """

    def __init__(
        self,
        l2: float | None = None,
        l2_share: float = 0.5,
        max_dense: int = 4000,
        neighbours: int = 100,
        shrink: float = 10.0,
        block_cells: int = 20_000_000,
    ) -> None:
        self.l2 = l2
        self.l2_share = l2_share
        self.max_dense = max_dense
        self.neighbours = neighbours
        self.shrink = shrink
        self.block_cells = block_cells

    def fit(self, X: sparse.spmatrix) -> ItemItem:
        """Learn the weights from a customer x target matrix (any non-zero = bought).

        Parameters
        ----------
        X : scipy.sparse matrix
            ``n_customers x n_targets``.

        Returns
        -------
        ItemItem
            self
        """
        X = _bought(X)
        n = X.shape[1]
        buyers = np.bincount(X.indices, minlength=n)
        self.n_targets_ = n
        if n <= self.max_dense:
            dense = np.arange(n)
        else:
            dense = np.sort(np.argsort(-buyers, kind="stable")[: self.max_dense])
        self.dense_index_ = dense.astype(np.int64)
        self.gram_ = self._gram(X)
        self.dense_weights_, self.l2_ = self._ease(self.gram_)
        tail = np.setdiff1d(np.arange(n), dense)
        self.sparse_weights_ = self._cosine(X, buyers, tail)
        log.info(
            "item-item: EASE on %d targets (lambda %.1f), cosine on %d targets (%d weights)",
            len(dense),
            self.l2_,
            len(tail),
            self.sparse_weights_.nnz,
        )
        return self

    def with_l2_share(self, X: sparse.spmatrix, l2_share: float) -> ItemItem:
        """A copy refitted with another EASE penalty share, reusing the cosine tail.

        Only the dense EASE block depends on the penalty, so trying several penalties costs
        one Gram inversion each, not a refit of the (often larger) cosine neighbours; the
        Gram matrix itself is the one :meth:`fit` computed (``gram_``), when still held.

        Parameters
        ----------
        X : scipy.sparse matrix
            The matrix this model was fitted on.
        l2_share : float
            New penalty relative to the mean buyers per target (``l2`` is cleared).

        Returns
        -------
        ItemItem
            A new fitted model; ``self`` is unchanged.
        """
        other = ItemItem(**{**self.get_params(), "l2": None, "l2_share": l2_share})
        other.n_targets_ = self.n_targets_
        other.dense_index_ = self.dense_index_
        gram = getattr(self, "gram_", None)
        other.gram_ = self._gram(_bought(X)) if gram is None else gram
        other.dense_weights_, other.l2_ = other._ease(other.gram_)
        other.sparse_weights_ = self.sparse_weights_
        return other

    def _gram(self, X: sparse.csr_matrix) -> np.ndarray:
        """``X'X`` of the EASE block (co-buyer counts, float32), from the purchase indicators."""
        return _dense_gram(
            X.indptr.astype(np.int64),
            X.indices.astype(np.int64),
            self.dense_position(),
            len(self.dense_index_),
        )

    def dense_position(self) -> np.ndarray:
        """Per target, its position in the EASE block (``dense_index_``), -1 outside it."""
        where = np.full(self.n_targets_, -1, dtype=np.int64)
        where[self.dense_index_] = np.arange(len(self.dense_index_))
        return where

    def _ease(self, gram: np.ndarray) -> tuple[np.ndarray, float]:
        diag = np.diag(gram).astype(np.float64)
        if len(diag) == 0:
            return np.zeros((0, 0), np.float32), float(self.l2 or 1.0)
        l2 = float(self.l2) if self.l2 is not None else max(1.0, self.l2_share * diag.mean())
        gram = gram.copy()
        gram[np.diag_indices_from(gram)] += l2
        precision = _spd_inverse(gram)
        del gram
        weights = precision / (-np.diag(precision))[None, :]
        np.fill_diagonal(weights, 0.0)
        return weights.astype(np.float32), l2

    def _cosine(
        self, X: sparse.csr_matrix, buyers: np.ndarray, tail: np.ndarray
    ) -> sparse.csc_matrix:
        """The ``neighbours`` most similar targets of every tail target (:func:`_neighbours`)."""
        n = X.shape[1]
        if len(tail) == 0:
            return sparse.csc_matrix((n, n), dtype=np.float32)
        by_target = X.tocsc()
        by_target.sort_indices()
        norm = np.sqrt(np.maximum(buyers, 1)).astype(np.float64)
        indptr, indices, data = _neighbours(
            X.indptr.astype(np.int64),
            X.indices.astype(np.int64),
            by_target.indptr.astype(np.int64),
            by_target.indices.astype(np.int64),
            np.asarray(tail, dtype=np.int64),
            norm,
            float(self.shrink),
            int(self.neighbours),
        )
        counts = np.zeros(n, np.int64)
        counts[tail] = np.diff(indptr)
        return sparse.csc_matrix(
            (data, indices, np.r_[0, np.cumsum(counts)]), shape=(n, n), dtype=np.float32
        )

    def score(
        self, X: sparse.spmatrix, columns: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores of customers (rows of ``X``) for targets ``columns`` (default: all).

        Parameters
        ----------
        X : scipy.sparse matrix
            ``rows x n_targets`` customer input (purchase indicators or weights).
        columns : numpy.ndarray, optional
            Target indices to score.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            EASE part and cosine part, each ``rows x len(columns)`` float32 (zero where the
            part does not cover a target).
        """
        X = sparse.csr_matrix(X, dtype=np.float32)
        n_dense = len(self.dense_index_)
        if columns is None:
            cols = np.arange(self.n_targets_)
        else:
            cols = np.asarray(columns, dtype=np.int64)
        where = self.dense_position()
        pos = where[cols]
        in_dense = pos >= 0
        dense_out = np.zeros((X.shape[0], len(cols)), dtype=np.float32)
        Xd = X[:, self.dense_index_] if n_dense < self.n_targets_ else X
        if Xd.nnz and in_dense.all() and n_dense == len(cols) and (pos == np.arange(n_dense)).all():
            dense_out[:] = Xd @ self.dense_weights_
        elif Xd.nnz and in_dense.any():
            dense_out[:, in_dense] = Xd @ self.dense_weights_[:, pos[in_dense]]
        sparse_out = np.zeros_like(dense_out)
        if self.sparse_weights_.nnz and not in_dense.all():
            tail_cols = cols[~in_dense]
            sparse_out[:, ~in_dense] = (X @ self.sparse_weights_[:, tail_cols]).toarray()
        return dense_out, sparse_out

    def score_head(self, X: sparse.spmatrix) -> np.ndarray:
        """The EASE part of :meth:`score` for every target of the EASE block, in its order.

        ``rows x len(dense_index_)`` float32: the same product as :meth:`score`, without its
        zero-filled copies for targets outside the block.
        """
        X = sparse.csr_matrix(X, dtype=np.float32)
        if len(self.dense_index_) < self.n_targets_:
            X = X[:, self.dense_index_]
        if not X.nnz:
            return np.zeros((X.shape[0], len(self.dense_index_)), np.float32)
        return np.ascontiguousarray(X @ self.dense_weights_, dtype=np.float32)

    def score_pairs(
        self, X: sparse.spmatrix, rows: np.ndarray, cols: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The scores of :meth:`score` at the pairs ``(rows[i], cols[i])`` only.

        A calibration sample needs a few dozen targets per customer, not all of them: each
        pair's score is the sum, over the targets its customer bought, of one weight, so the
        cost grows with the pairs times the customer's purchases instead of with the
        customers times the whole catalogue (one compiled loop, :func:`_pair_scores`).
        Sums are accumulated in float64 (:meth:`score` sums in float32), so the two agree to
        float32 rounding.

        Parameters
        ----------
        X : scipy.sparse matrix
            Customer input, as for :meth:`score`.
        rows, cols : numpy.ndarray
            Row of ``X`` and target index of each pair.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            EASE part and cosine part per pair (float32; zero where the part does not cover
            the target).
        """
        X = sparse.csr_matrix(X, dtype=np.float32)
        where = self.dense_position()
        weights = sparse.csc_matrix(self.sparse_weights_, dtype=np.float32)
        weights.sort_indices()
        return _pair_scores(
            X.indptr.astype(np.int64),
            X.indices.astype(np.int64),
            X.data,
            np.asarray(rows, dtype=np.int64),
            np.asarray(cols, dtype=np.int64),
            where,
            np.ascontiguousarray(self.dense_weights_, dtype=np.float32),
            weights.indptr.astype(np.int64),
            weights.indices.astype(np.int64),
            weights.data,
        )


@numba.njit(nogil=True, cache=True)
def _pair_scores(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    where: np.ndarray,
    dense: np.ndarray,
    w_indptr: np.ndarray,
    w_indices: np.ndarray,
    w_data: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """EASE and cosine scores of ``(rows[i], cols[i])`` (CSR input, CSC cosine weights)."""
    n = len(rows)
    dense_out = np.zeros(n, np.float32)
    sparse_out = np.zeros(n, np.float32)
    for i in range(n):
        r, j = rows[i], cols[i]
        p = where[j]
        total = 0.0
        if p >= 0:  # EASE: the weights of the bought dense targets towards j
            for e in range(indptr[r], indptr[r + 1]):
                q = where[indices[e]]
                if q >= 0:
                    total += data[e] * dense[q, p]
            dense_out[i] = total
        else:  # cosine: column j's neighbours (sorted) met by the bought targets
            lo, hi = w_indptr[j], w_indptr[j + 1]
            if hi > lo:
                for e in range(indptr[r], indptr[r + 1]):
                    at = lo + np.searchsorted(w_indices[lo:hi], indices[e])
                    if at < hi and w_indices[at] == indices[e]:
                        total += data[e] * w_data[at]
                sparse_out[i] = total
    return dense_out, sparse_out


def _bought(X: sparse.spmatrix) -> sparse.csr_matrix:
    """1.0 where ``X`` is non-zero; stored zeros (a profile's browse-only entries) are dropped."""
    X = sparse.csr_matrix(X, dtype=np.float64, copy=True)
    X.eliminate_zeros()
    X.sort_indices()
    X.data[:] = 1.0
    return X


@numba.njit(nogil=True, cache=True)
def _dense_gram(
    indptr: np.ndarray, indices: np.ndarray, where: np.ndarray, size: int
) -> np.ndarray:
    """Co-occurrence counts of the targets mapped by ``where`` (>= 0) over the rows of a CSR."""
    gram = np.zeros((size, size), np.float32)
    for r in range(len(indptr) - 1):
        for a in range(indptr[r], indptr[r + 1]):
            p = where[indices[a]]
            if p < 0:
                continue
            for b in range(indptr[r], indptr[r + 1]):
                q = where[indices[b]]
                if q >= 0:
                    gram[p, q] += 1.0
    return gram


@numba.njit(nogil=True, cache=True)
def _neighbours(
    indptr: np.ndarray,
    indices: np.ndarray,
    t_indptr: np.ndarray,
    t_indices: np.ndarray,
    tail: np.ndarray,
    norm: np.ndarray,
    shrink: float,
    k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cosine neighbours of each tail target: co-buyers counted through its buyers' rows.

    For target ``j``, ``c_ij`` (customers who bought both) is accumulated over the CSR rows
    of ``j``'s buyers (CSC ``t_indptr``/``t_indices``); similarities are
    ``c_ij / (norm_i norm_j + shrink)``, the ``k`` largest positive ones are kept, ties to the
    lower target index, in increasing target order (a CSC column).
    """
    n = len(t_indptr) - 1
    count = np.zeros(n, np.float64)
    seen = np.zeros(n, np.bool_)
    touched = np.empty(n, np.int64)
    out_ptr = np.zeros(len(tail) + 1, np.int64)
    cap = max(1, len(tail) * min(k, n))
    out_idx = np.empty(cap, np.int64)
    out_val = np.empty(cap, np.float32)
    pos = 0
    for t in range(len(tail)):
        j = tail[t]
        m = 0
        for a in range(t_indptr[j], t_indptr[j + 1]):
            c = t_indices[a]
            for b in range(indptr[c], indptr[c + 1]):
                i = indices[b]
                if i == j:
                    continue
                if not seen[i]:
                    seen[i] = True
                    touched[m] = i
                    m += 1
                count[i] += 1.0
        cand = np.sort(touched[:m])
        sim = np.empty(m, np.float64)
        for q in range(m):
            i = cand[q]
            sim[q] = count[i] / (norm[i] * norm[j] + shrink)
            count[i] = 0.0
            seen[i] = False
        order = np.argsort(-sim, kind="mergesort")  # stable: ties keep the lower index
        keep = 0
        while keep < min(k, m) and sim[order[keep]] > 0:
            keep += 1
        best = np.sort(order[:keep])
        for q in range(keep):
            out_idx[pos + q] = cand[best[q]]
            out_val[pos + q] = sim[best[q]]
        pos += keep
        out_ptr[t + 1] = pos
    return out_ptr, out_idx[:pos], out_val[:pos]


def _spd_inverse(gram: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix by Cholesky (float32, else float64)."""
    for potrf, potri, dtype in (
        (lapack.spotrf, lapack.spotri, np.float32),
        (lapack.dpotrf, lapack.dpotri, np.float64),
    ):
        chol, info = potrf(gram.astype(dtype, copy=False), lower=False, overwrite_a=False)
        if info == 0:
            inv, info = potri(chol, lower=False, overwrite_c=True)
            if info == 0:
                upper = np.triu(inv)
                return upper + np.triu(upper, 1).T
    raise np.linalg.LinAlgError("the item-item Gram matrix is not positive definite")
