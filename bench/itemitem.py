"""An inner loop of the Interested-In fit at 1M-customer scale, against its alternative.

- **Cosine neighbours** of the long tail (:meth:`ItemItem._cosine`): top-k per target from
  co-buyer counts in a compiled loop over each target's buyers, against the two versions it
  replaced: sparse co-buyer blocks (``X'X[:, block]`` by scipy, then ``lexsort``) and, before
  that, a dense ``targets x block`` slice per block of tail targets, then ``argpartition``.

Inputs are random but shaped like the 1M synthetic shop: 1M customers, 30,000 products with a
Zipf-like popularity, 9.4M purchases.

Usage::

    nice .venv/bin/python bench/itemitem.py [--customers 1000000] [--targets 30000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from scipy import sparse

from workbench.models.interest_itemitem import ItemItem

#: Cells of one similarity block in the replaced versions.
BLOCK_CELLS = 20_000_000


def _blocked(
    X: sparse.csc_matrix,
    tail: np.ndarray,
    select: Callable[[np.ndarray, sparse.spmatrix], tuple[np.ndarray, ...]],
) -> sparse.csc_matrix:
    """The replaced versions' frame: co-buyer counts ``X'X[:, block]`` per block of tail
    targets, each block's neighbours picked by ``select(block, counts)`` as (rows, cols,
    weights)."""
    Xt = X.T.tocsr()
    n = X.shape[1]
    block = max(1, BLOCK_CELLS // max(n, 1))
    parts = [
        select(tail[start : start + block], Xt @ X[:, tail[start : start + block]])
        for start in range(0, len(tail), block)
    ]
    rows, cols, vals = (np.concatenate(p) for p in zip(*parts, strict=True))
    return sparse.csc_matrix((vals, (rows, cols)), shape=(n, n), dtype=np.float32)


def dense_cosine(
    ii: ItemItem, X: sparse.csc_matrix, buyers: np.ndarray, tail: np.ndarray
) -> sparse.csc_matrix:
    """The first implementation: a dense similarity slice per block, then ``argpartition``."""
    norm = np.sqrt(np.maximum(buyers, 1)).astype(np.float64)
    k = ii.neighbours

    def select(cols_b: np.ndarray, co_b: sparse.spmatrix) -> tuple[np.ndarray, ...]:
        co = co_b.toarray()
        co[cols_b, np.arange(len(cols_b))] = 0.0
        sim = co / (norm[:, None] * norm[cols_b][None, :] + ii.shrink)
        top = np.argpartition(-sim, k - 1, axis=0)[:k]
        val = np.take_along_axis(sim, top, axis=0)
        keep = val > 0
        cols = np.broadcast_to(cols_b[None, :], top.shape)[keep]
        return top[keep], cols, val[keep].astype(np.float32)

    return _blocked(X, tail, select)


def sparse_block_cosine(
    ii: ItemItem, X: sparse.csc_matrix, buyers: np.ndarray, tail: np.ndarray
) -> sparse.csc_matrix:
    """The second: sparse co-buyer counts per block of tail targets, then ``lexsort``."""
    norm = np.sqrt(np.maximum(buyers, 1)).astype(np.float64)
    k = ii.neighbours

    def select(cols_b: np.ndarray, co_b: sparse.spmatrix) -> tuple[np.ndarray, ...]:
        co = co_b.tocoo()
        r, c, v = co.row, co.col, co.data.astype(np.float64)
        off = r != cols_b[c]
        r, c, v = r[off], c[off], v[off]
        sim = v / (norm[r] * norm[cols_b[c]] + ii.shrink)
        order = np.lexsort((r, -sim, c))
        r, c, sim = r[order], c[order], sim[order]
        first = np.searchsorted(c, np.arange(len(cols_b)))
        rank = np.arange(len(c)) - first[c]
        keep = (rank < k) & (sim > 0)
        return r[keep].astype(np.int64), cols_b[c[keep]], sim[keep].astype(np.float32)

    return _blocked(X, tail, select)


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - started


def bench_cosine(rng: np.random.Generator, n_rows: int, n: int, purchases: int) -> str:
    p = 1 / np.arange(1, n + 1) ** 0.9
    r = rng.integers(0, n_rows, purchases)
    c = rng.choice(n, purchases, p=p / p.sum())
    X = sparse.csr_matrix((np.ones(purchases, np.float32), (r, c)), shape=(n_rows, n))
    X.data[:] = 1.0
    Xc = X.tocsc()
    buyers = np.asarray(X.sum(axis=0)).ravel()
    tail = np.sort(np.argsort(-buyers)[4000:])
    ii = ItemItem()
    new, t_new = _timed(ii._cosine, X, buyers, tail[:10])  # compiles the loop
    new, t_new = _timed(ii._cosine, X, buyers, tail)
    blocks, t_blocks = _timed(sparse_block_cosine, ii, Xc, buyers, tail)
    old, t_old = _timed(dense_cosine, ii, Xc, buyers, tail)
    new, old = new.tocsc(), old.tocsc()
    identical = (
        np.array_equal(new.indptr, blocks.indptr)
        and np.array_equal(new.indices, blocks.indices)
        and np.array_equal(new.data, blocks.data)
    )
    same = all(
        np.allclose(
            np.sort(new.data[new.indptr[j] : new.indptr[j + 1]]),
            np.sort(old.data[old.indptr[j] : old.indptr[j + 1]]),
            rtol=1e-6,
        )
        for j in tail
    )
    return (
        f"cosine tail ({len(tail):,} targets, {X.nnz:,} purchases): compiled {t_new:.1f} s, "
        f"sparse blocks {t_blocks:.1f} s ({t_blocks / t_new:.1f}x), dense slices "
        f"{t_old:.1f} s ({t_old / t_new:.1f}x); {new.nnz:,} weights, identical to the "
        f"sparse blocks: {identical}, same neighbour values as the dense slices (ties "
        f"aside): {same}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--targets", type=int, default=30_000)
    parser.add_argument("--purchases", type=int, default=9_400_000)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    sys.stdout.write(bench_cosine(rng, args.customers, args.targets, args.purchases) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
