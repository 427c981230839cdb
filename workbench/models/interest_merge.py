"""Profile entries of several row-sorted parts merged into CSR by one compiled pass per row.

:meth:`workbench.models.interest_features.Profile.from_entries` puts the entries of its parts
(purchases, browsed products, searches) in row and target order and sums the repeats. Its
general path sorts int64 keys of all entries at once, which at 3M customers holds five
entry-sized int64 arrays besides the inputs (about 9 GB for the product level's 190M entries).
The parts that :func:`~workbench.models.interest_features.build_snapshot` builds are sorted by
row, so a merge row by row needs no keys at all: a first pass counts each row's distinct
targets, a second pass of the same kernel sums each row's entries into a per-target scratch
(float64, in part order and then entry order, the order the general path sums in) and writes
them in target order as float32. Memory beyond inputs and output: a few arrays of ``n_targets``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
from numba.typed import List

__all__ = ["merge_sorted_parts", "mergeable"]


def mergeable(parts: Sequence[dict[str, np.ndarray]], n_rows: int, n_targets: int) -> bool:
    """Whether :func:`merge_sorted_parts` applies: int32 sorted rows and targets, float32 values."""
    if not parts:
        return False
    for p in parts:
        row, target = p["row"], p["target_idx"]
        if row.dtype != np.int32 or target.dtype != np.int32 or len(row) != len(target):
            return False
        if any(v.dtype != np.float32 for k, v in p.items() if k not in ("row", "target_idx")):
            return False
        if len(row) and (row[0] < 0 or row[-1] >= n_rows or np.any(row[1:] < row[:-1])):
            return False
        if len(target) and (target.min() < 0 or target.max() >= n_targets):
            return False
    return True


def merge_sorted_parts(
    n_rows: int,
    n_targets: int,
    parts: Sequence[dict[str, np.ndarray]],
    columns: Sequence[str],
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """CSR ``indptr``, ``indices`` (int32, sorted per row) and float32 ``columns`` of the sum.

    Parameters
    ----------
    n_rows, n_targets : int
        Shape.
    parts : sequence of dict
        ``row`` (int32, non-decreasing), ``target_idx`` (int32) and float32 value columns
        (a column a part lacks counts as 0); see :func:`mergeable`.
    columns : sequence of str
        Value columns of the result.
    """
    rows = List([p["row"] for p in parts])
    targets = List([p["target_idx"] for p in parts])
    empty, empty_i = np.zeros(0, np.float32), np.zeros(0, np.int32)
    values = List([p.get(c, empty) for p in parts for c in columns])
    n_cols = len(columns)
    indptr = np.zeros(n_rows + 1, np.int64)
    none = List([np.zeros(0, np.float32) for _ in columns])
    _merge(n_rows, n_targets, n_cols, rows, targets, values, indptr, empty_i, none, False)
    np.cumsum(indptr, out=indptr)
    nnz = int(indptr[-1])
    indices = np.empty(nnz, np.int32)
    out = List([np.empty(nnz, np.float32) for _ in columns])
    _merge(n_rows, n_targets, n_cols, rows, targets, values, indptr, indices, out, True)
    return indptr, indices, dict(zip(columns, out, strict=True))


@numba.njit(cache=True, nogil=True)
def _row_end(row, at, p, r):  # pragma: no cover - compiled
    """End of part ``p``'s entries of row ``r`` (they start at ``at[p]``); moves ``at[p]`` there."""
    i = at[p]
    while i < len(row) and row[i] == r:
        i += 1
    at[p] = i
    return i


@numba.njit(cache=True, nogil=True)
def _merge(
    n_rows, n_targets, n_cols, rows, targets, values, indptr, indices, out, write
):  # pragma: no cover - compiled
    """Per row, the distinct targets of all parts: counted, or summed and written.

    With ``write`` false the count goes to ``indptr[r + 1]``; with ``write`` true the sums are
    written in target order from ``indptr[r]`` on.
    """
    n_parts = len(rows)
    at = np.zeros(n_parts, np.int64)
    slot = np.full(n_targets, -1, np.int64)
    seen = np.empty(n_targets, np.int64)
    acc = np.zeros((n_targets, n_cols), np.float64)
    for r in range(n_rows):
        k = 0
        for p in range(n_parts):
            tg = targets[p]
            lo = at[p]
            for i in range(lo, _row_end(rows[p], at, p, r)):
                t = tg[i]
                s = slot[t]
                if s < 0:
                    s = k
                    slot[t] = k
                    seen[k] = t
                    k += 1
                    if write:
                        acc[s, :] = 0.0
                if write:
                    for c in range(n_cols):
                        v = values[p * n_cols + c]
                        if len(v):
                            acc[s, c] += v[i]
        if not write:
            indptr[r + 1] = k
            for j in range(k):
                slot[seen[j]] = -1
            continue
        order = np.argsort(seen[:k])
        base = indptr[r]
        for j in range(k):
            s = order[j]
            t = seen[s]
            indices[base + j] = t
            for c in range(n_cols):
                out[c][base + j] = np.float32(acc[s, c])
            slot[t] = -1
