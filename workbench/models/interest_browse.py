"""Browsing signal of every level from two level-independent aggregates.

A level's browsing entry for customer ``c`` and target ``t`` sums, over ``c``'s events up to
the instant, the event's weight times its decay: product events (view, click, cart) reach
``t`` through the level's product map, searches through its query matches (match weight x
search weight). The sum is linear, so it can be taken in two steps:

1. per customer x product and per customer x search query (:class:`BrowseBase`; one events
   scan per instant, shared by every level of a fit);
2. per level, two sparse products: ``customer x product`` times ``product x target`` (the
   product map) plus ``customer x query`` times ``query x target`` (the match weights).

At 1M customers the one-step aggregate of the product level had 63M customer x product
groups from 88M rows (38M of them search matches: a query matches about 13 products), and
each of the four levels scanned the 53M events again. The two-step form aggregates 50M
product events into 25M groups and 3M searches into 2.8M groups, once, and the per-level
products run in scipy. The sums are the same up to float64 rounding (test: equal to
:func:`interest_data.event_pairs` to 1e-12 on DuckDB and Spark).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import sparse

from workbench.models import interest_data as idata


@dataclass
class BrowseBase:
    """Customer x product and customer x query browsing sums at one instant.

    Attributes
    ----------
    products : pandas.Index
        Product ids (the columns of ``by_product``).
    queries : pandas.Index
        Normalised search queries (the columns of ``by_query``).
    by_product, by_query : dict of scipy.sparse.csr_matrix
        Per half-life key, ``customers x products`` (type weight x decay) and
        ``customers x queries`` (decayed counts), float64.
    search_weight : float
        Weight of one search.
    """

    products: pd.Index
    queries: pd.Index
    by_product: dict[str, sparse.csr_matrix]
    by_query: dict[str, sparse.csr_matrix]
    search_weight: float

    @classmethod
    def compute(
        cls,
        events: ibis.Table,
        customers: pa.Array,
        as_of: datetime,
        half_lives: Mapping[str, float],
        weights: Mapping[str, float] | None = None,
    ) -> BrowseBase:
        """Aggregate ``events`` up to ``as_of`` (rows of ``customers``; others dropped)."""
        weights = dict(idata.EVENT_WEIGHTS if weights is None else weights)
        n = len(customers)
        products = idata.browsed_products(events, as_of, weights)
        table = idata.product_browse(events, products, as_of, half_lives, weights)
        arrays = idata.to_arrays(
            table, customers, ["pidx", *half_lives], ints=("pidx",), float_dtype=np.float64
        )
        by_product = _csr(arrays, "pidx", (n, len(products)), half_lives)
        search_weight = float(weights.get("search", 0.0))
        queries: list[str] = []
        if search_weight > 0 and "query" in events.columns:
            queries = idata.search_queries(events, as_of)
        by_query = {k: sparse.csr_matrix((n, len(queries))) for k in half_lives}
        if queries:
            table = idata.query_browse(events, queries, as_of, half_lives)
            arrays = idata.to_arrays(
                table, customers, ["qidx", *half_lives], ints=("qidx",), float_dtype=np.float64
            )
            by_query = _csr(arrays, "qidx", (n, len(queries)), half_lives)
        return cls(
            pd.Index(np.asarray(products.to_pylist(), dtype=object)),
            pd.Index(np.asarray(queries, dtype=object)),
            by_product,
            by_query,
            search_weight,
        )

    def parts(
        self,
        product_map: pd.DataFrame,
        query_map: pd.DataFrame | None,
        n_targets: int,
        dtype: type = np.float32,
    ) -> list[dict[str, np.ndarray]]:
        """A level's browsing entries: profile parts (``row``, ``target_idx``, float32 sums).

        Parameters
        ----------
        product_map : pandas.DataFrame
            ``product_id``, ``target_idx`` of the level.
        query_map : pandas.DataFrame, optional
            ``query``, ``target_idx``, ``weight``: the level's search matches.
        n_targets : int
            Targets of the level.
        dtype : numpy dtype
            Type of the returned sums (float32 for a profile).
        """
        to_targets = key_targets(self.products, product_map, "product_id", n_targets)
        out = _entries({k: m @ to_targets for k, m in self.by_product.items()}, dtype)
        if query_map is not None and len(query_map) and len(self.queries):
            weight = query_map["weight"].to_numpy(np.float64) * self.search_weight
            matches = key_targets(self.queries, query_map, "query", n_targets, weight)
            out += _entries({k: m @ matches for k, m in self.by_query.items()}, dtype)
        return out


def key_targets(
    index: pd.Index,
    mapping: pd.DataFrame,
    key: str,
    n_targets: int,
    values: np.ndarray | None = None,
) -> sparse.csr_matrix:
    """A ``len(index) x n_targets`` matrix from a key -> target table.

    Each row of ``mapping`` puts its entry of ``values`` (default 1) at its ``key``'s position
    in ``index`` and its ``target_idx``; keys outside ``index`` are left out, repeated (key,
    target) rows summed.
    """
    pos = index.get_indexer(mapping[key].astype(str))
    ok = pos >= 0
    data = np.ones(int(ok.sum())) if values is None else np.asarray(values, np.float64)[ok]
    return sparse.csr_matrix(
        (data, (pos[ok], mapping["target_idx"].to_numpy()[ok])), shape=(len(index), n_targets)
    )


def _csr(
    arrays: dict[str, np.ndarray], col: str, shape: tuple[int, int], names: Mapping[str, float]
) -> dict[str, sparse.csr_matrix]:
    """One CSR matrix per value column of an aggregate's arrays (one structure, built once)."""
    order = sparse.csr_matrix(
        (np.arange(1, len(arrays["row"]) + 1, dtype=np.float64), (arrays["row"], arrays[col])),
        shape=shape,
    )
    pos = order.data.astype(np.int64) - 1  # each entry's position in the arrays
    return {
        k: sparse.csr_matrix((arrays[k][pos], order.indices, order.indptr), shape=shape)
        for k in names
    }


def _entries(mats: dict[str, sparse.csr_matrix], dtype: type) -> list[dict[str, np.ndarray]]:
    """Profile parts of same-shaped matrices: one part when they share their entries."""
    for m in mats.values():
        m.sort_indices()
    first = next(iter(mats.values()))
    same = all(
        np.array_equal(m.indptr, first.indptr) and np.array_equal(m.indices, first.indices)
        for m in mats.values()
    )
    groups = [mats] if same else [{k: m} for k, m in mats.items()]
    out = []
    for group in groups:
        m = next(iter(group.values()))
        rows = np.repeat(np.arange(m.shape[0], dtype=np.int32), np.diff(m.indptr))
        part = {"row": rows, "target_idx": m.indices.astype(np.int32)}
        part.update({k: g.data.astype(dtype) for k, g in group.items()})
        out.append(part)
    return out
