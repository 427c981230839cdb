"""Profile entries of several row-sorted parts merged into CSR by compiled passes over the rows.

:meth:`workbench.models.interest_features.Profile.from_entries` puts the entries of its parts
(purchases, browsed products, searches) in row and target order and sums the repeats. Its
general path sorts int64 keys of all entries at once, which at 3M customers holds five
entry-sized int64 arrays besides the inputs (about 9 GB for the product level's 190M entries).
The parts that :func:`~workbench.models.interest_features.build_snapshot` builds are sorted by
row, so a merge row by row needs no keys at all: a first pass counts each row's distinct
targets, a second pass of the same kernel writes them in target order and gives each entry its
position in the result; each value column is then summed there (float64, in part order and
then entry order, the order the general path sums in) and stored as float32. Memory beyond
inputs and output: one position per entry (int32 below 2**31 entries) and one float64 column
at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
from numba.typed import List

__all__ = ["merge_sorted_parts", "mergeable"]

#: Inputs with fewer entries than this give each entry an int32 position in the result (the
#: result has no more entries than its inputs); more take int64.
INT32_POSITIONS_BELOW = int(np.iinfo(np.int32).max)


def mergeable(parts: Sequence[dict[str, np.ndarray]], n_rows: int, n_targets: int) -> bool:
    """Whether :func:`merge_sorted_parts` applies: int32 sorted rows and targets, float32 values."""
    if not parts:
        return False
    for p in parts:
        row, target = p["row"], p["target_idx"]
        if row.dtype != np.int32 or target.dtype != np.int32 or len(row) != len(target):
            return False
        values = [v for k, v in p.items() if k not in ("row", "target_idx")]
        if any(v.dtype != np.float32 or len(v) != len(row) for v in values):
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
    *,
    consume: bool = False,
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
    consume : bool
        Remove each input array from its part once read (its memory is released as the
        result is built).
    """
    rows = List([p["row"] for p in parts])
    targets = List([p["target_idx"] for p in parts])
    # the result has at most as many entries as the inputs: int32 positions below 2**31
    total = sum(len(p["row"]) for p in parts)
    position = np.int32 if total < INT32_POSITIONS_BELOW else np.int64
    dests = List([np.empty(len(p["row"]), position) for p in parts])
    indptr = np.zeros(n_rows + 1, np.int64)
    empty = np.zeros(0, np.int32)
    _place(n_rows, n_targets, rows, targets, indptr, empty, dests, False)  # counts per row
    np.cumsum(indptr, out=indptr)
    indices = np.empty(int(indptr[-1]), np.int32)
    _place(n_rows, n_targets, rows, targets, indptr, indices, dests, True)
    del rows, targets
    if consume:
        for p in parts:
            del p["row"], p["target_idx"]
    distinct = [_distinct(dest) for dest in dests]
    values = {}
    for name in columns:
        carriers = [i for i, p in enumerate(parts) if p.get(name) is not None]
        if len(carriers) == 1 and distinct[carriers[0]]:  # each entry is its own sum
            out = np.zeros(len(indices), np.float32)
            _scatter_set(out, dests[carriers[0]], parts[carriers[0]][name])
        else:  # summed in float64 in part and entry order, as the general path
            acc = np.zeros(len(indices), np.float64)
            for i in carriers:
                _scatter_add(acc, dests[i], parts[i][name])
            out = acc.astype(np.float32)
            del acc
        values[name] = out
        if consume:
            for i in carriers:
                del parts[i][name]
    return indptr, indices, values


@numba.njit(cache=True, nogil=True)
def _row_end(row, at, p, r):  # pragma: no cover - compiled
    """End of part ``p``'s entries of row ``r`` (they start at ``at[p]``); moves ``at[p]`` there."""
    i = at[p]
    while i < len(row) and row[i] == r:
        i += 1
    at[p] = i
    return i


@numba.njit(cache=True, nogil=True)
def _place(
    n_rows, n_targets, rows, targets, indptr, indices, dests, write
):  # pragma: no cover - compiled
    """Per row, the distinct targets of all parts: counted, or placed.

    With ``write`` false each row's count goes to ``indptr[r + 1]``. With ``write`` true the
    row's targets are written in order from ``indptr[r]`` on, and each entry's position there
    goes to ``dests``.
    """
    n_parts = len(rows)
    at = np.zeros(n_parts, np.int64)
    lo = np.zeros(n_parts, np.int64)
    slot = np.full(n_targets, -1, np.int64)
    seen = np.empty(n_targets, np.int64)
    for r in range(n_rows):
        k = 0
        for p in range(n_parts):
            tg = targets[p]
            lo[p] = at[p]
            for i in range(lo[p], _row_end(rows[p], at, p, r)):
                t = tg[i]
                if slot[t] < 0:
                    slot[t] = k
                    seen[k] = t
                    k += 1
        if write:
            row_targets = seen[:k]
            if k > 32:
                row_targets.sort()
            else:  # insertion sort: most rows hold a few dozen targets
                for j in range(1, k):
                    t = row_targets[j]
                    q = j - 1
                    while q >= 0 and row_targets[q] > t:
                        row_targets[q + 1] = row_targets[q]
                        q -= 1
                    row_targets[q + 1] = t
            base = indptr[r]
            for j in range(k):
                indices[base + j] = row_targets[j]
                slot[row_targets[j]] = base + j
            for p in range(n_parts):
                tg, dest = targets[p], dests[p]
                for i in range(lo[p], at[p]):
                    dest[i] = slot[tg[i]]
        else:
            indptr[r + 1] = k
        for j in range(k):
            slot[seen[j]] = -1


@numba.njit(cache=True, nogil=True)
def _scatter_add(acc, dest, values):  # pragma: no cover - compiled
    for i in range(len(values)):
        acc[dest[i]] += values[i]


@numba.njit(cache=True, nogil=True)
def _scatter_set(out, dest, values):  # pragma: no cover - compiled
    for i in range(len(values)):
        out[dest[i]] = values[i]


@numba.njit(cache=True, nogil=True)
def _distinct(dest):  # pragma: no cover - compiled
    """Whether no two entries of a part go to one position (a part's positions increase)."""
    for i in range(1, len(dest)):
        if dest[i] <= dest[i - 1]:
            return False
    return True
