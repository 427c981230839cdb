"""Targets of each Interested-In level and how products map onto them.

- ``product``: one target per product id.
- ``category``: every prefix of a product's category path, so a buyer of
  ``"Home > Kitchen > Mugs"`` is a buyer of ``"Home"``, ``"Home > Kitchen"`` and the leaf.
- ``brand``: the product's brand.
- ``keyword``: the terms of the product's name (see :mod:`workbench.models.interest_terms`).

A target is kept when at least ``min_buyers`` distinct customers bought it up to ``as_of``.
The distinct (customer, product) pairs come from one ibis query (the same code on DuckDB and
Spark), read once for all levels (:class:`ProductBuyers`); each level's count is then a compiled
pass over them. The product table is a dimension table (its size does not grow with customers),
so it is read into pandas here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import ibis
import numba
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from workbench import engine
from workbench.models.interest_terms import term_pairs, tokenize

log = logging.getLogger(__name__)

LEVELS = ("product", "category", "brand", "keyword")
PATH_SEPARATOR = " > "
#: Default minimum number of distinct buyers for a target to be modelled, per level.
MIN_BUYERS = {"product": 1, "category": 1, "brand": 1, "keyword": 5}


def category_prefixes(path: str | None) -> list[str]:
    """All prefixes of a category path, shortest first (``"A > B"`` -> ``["A", "A > B"]``)."""
    if path is None or (isinstance(path, float) and np.isnan(path)):
        return []
    parts = [p.strip() for p in str(path).split(">")]
    parts = [p for p in parts if p]
    return [PATH_SEPARATOR.join(parts[: i + 1]) for i in range(len(parts))]


@dataclass(frozen=True)
class TargetCatalog:
    """The targets of one level.

    Attributes
    ----------
    level : str
        ``product``, ``category``, ``brand`` or ``keyword``.
    targets : numpy.ndarray
        Target keys (object array of str), indexed by ``target_idx``.
    labels : numpy.ndarray
        Readable label per target (the product name at product level, else the key).
    buyers : numpy.ndarray
        Distinct buyers per target up to the catalogue's ``as_of``.
    product_map : pandas.DataFrame
        Columns ``product_id`` (str), ``target_idx`` (int64): which targets a product counts for.
    terms : pandas.DataFrame
        Columns ``target_idx``, ``term``: words searches are matched on.
    """

    level: str
    targets: np.ndarray
    labels: np.ndarray
    buyers: np.ndarray
    product_map: pd.DataFrame
    terms: pd.DataFrame

    @property
    def size(self) -> int:
        """Number of targets."""
        return len(self.targets)

    def frame(self) -> pd.DataFrame:
        """One row per target: ``target_idx``, ``target``, ``label``, ``buyers``."""
        return pd.DataFrame(
            {
                "target_idx": np.arange(self.size, dtype="int64"),
                "target": pd.array(self.targets, dtype="string"),
                "label": pd.array(self.labels, dtype="string"),
                "buyers": self.buyers.astype("int64"),
            }
        )


def read_products(products: ibis.Table | None, sales: ibis.Table) -> pd.DataFrame:
    """Products as pandas: the products table plus ids that occur only on order lines."""
    cols = ["product_id", "name", "category", "brand"]
    if products is not None:
        present = [c for c in cols if c in products.columns]
        frame = products.select(*present).to_pyarrow().to_pandas()
        for c in cols:
            if c not in frame:
                frame[c] = None
    else:
        frame = pd.DataFrame({c: pd.Series([], dtype="object") for c in cols})
    sold = sales.select("product_id").distinct().to_pyarrow().column(0).to_pylist()
    extra = sorted(set(sold) - set(frame["product_id"]))
    if extra:
        frame = pd.concat([frame, pd.DataFrame({"product_id": extra})], ignore_index=True).astype(
            {"product_id": "object"}
        )
    return frame.drop_duplicates("product_id").reset_index(drop=True)


def available_levels(products: pd.DataFrame) -> list[str]:
    """Levels for which the products carry data (``product`` is always available)."""
    out = ["product"]
    if products["category"].notna().any():
        out.append("category")
    if products["brand"].notna().any():
        out.append("brand")
    if products["name"].notna().any():
        out.append("keyword")
    return out


def _candidate_map(level: str, products: pd.DataFrame) -> pd.DataFrame:
    """``(product_id, target)`` rows for every candidate target of the level."""
    pid = products["product_id"].astype(str).tolist()
    if level == "product":
        return pd.DataFrame({"product_id": pid, "target": pid})
    if level == "category":
        rows = [
            (p, prefix)
            for p, path in zip(pid, products["category"], strict=True)
            for prefix in category_prefixes(path)
        ]
        return pd.DataFrame(rows, columns=["product_id", "target"])
    if level == "brand":
        brand = products["brand"].astype("string").str.strip()
        keep = brand.notna() & (brand != "")
        return pd.DataFrame(
            {"product_id": np.asarray(pid, dtype=object)[keep.to_numpy()], "target": brand[keep]}
        )
    if level == "keyword":
        pairs = term_pairs(pid, products["name"].where(products["name"].notna(), None))
        return pairs.rename(columns={"key": "product_id", "term": "target"})
    raise ValueError(f"unknown interest level {level!r}; use one of {LEVELS}")


@dataclass(frozen=True)
class ProductBuyers:
    """Who bought which product up to an instant: distinct (customer, product) pairs.

    Read once for every level of a fit. A level's distinct buyers per target are then one
    compiled pass over the pairs (:meth:`per_target`). One ibis join and distinct count per
    level took about 23 s for the four levels at 1M customers, measured while another job used
    the machine (the keyword level joins every order line with each term of its product).

    Attributes
    ----------
    as_of : datetime
        Purchases at or before this instant.
    products : pandas.Index
        Product ids (str) that were bought.
    indptr : numpy.ndarray
        Per customer (in no particular order), where its pairs start in ``product_code``.
    product_code : numpy.ndarray
        Position in ``products`` of each pair's product (int32), grouped by customer.
    """

    as_of: datetime
    products: pd.Index
    indptr: np.ndarray
    product_code: np.ndarray

    @classmethod
    def compute(cls, sales: ibis.Table, as_of: datetime) -> ProductBuyers:
        """The pairs of ``sales`` (``customer_id``, ``product_id``, ``ordered_at``) to ``as_of``."""
        past = sales.filter(
            sales.ordered_at <= ibis.literal(as_of, type="timestamp('UTC')"),
            sales.customer_id.notnull(),
            sales.product_id.notnull(),
        )
        pairs = past.select("customer_id", product_id=past.product_id.cast("string")).distinct()
        table = pa.Table.from_batches(
            list(engine.arrow_batches(pairs)), schema=pairs.schema().to_pyarrow()
        )
        customer = pc.dictionary_encode(table["customer_id"].combine_chunks())
        customer = customer.indices.to_numpy(zero_copy_only=False)
        product = pc.dictionary_encode(table["product_id"].combine_chunks())
        code = product.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        order = np.argsort(customer, kind="stable")
        counts = np.bincount(customer)
        return cls(
            as_of,
            pd.Index(np.asarray(product.dictionary.to_pylist(), dtype=object)),
            np.r_[0, np.cumsum(counts)].astype(np.int64),
            code[order],
        )

    def per_target(self, candidates: pd.DataFrame) -> pd.Series:
        """Distinct buyers of each candidate target (``product_id``, ``target`` rows), by target.

        A customer counts once for a target however many of its products they bought.
        """
        codes, uniques = pd.factorize(candidates["target"])
        pos = self.products.get_indexer(candidates["product_id"].astype(str))
        ok = pos >= 0
        order = np.argsort(pos[ok], kind="stable")
        product, target = pos[ok][order], codes[ok][order].astype(np.int32)
        starts = np.searchsorted(product, np.arange(len(self.products) + 1)).astype(np.int64)
        out = _distinct_buyers(self.indptr, self.product_code, starts, target, len(uniques))
        return pd.Series(out, index=pd.Index(uniques, dtype=object))


@numba.njit(cache=True, nogil=True)
def _distinct_buyers(indptr, product_code, starts, target, n_targets):  # pragma: no cover
    """Per target, the customers with a pair whose product maps to it (each counted once)."""
    count = np.zeros(n_targets, np.int64)
    last = np.full(n_targets, -1, np.int64)  # the last customer counted for the target
    for c in range(len(indptr) - 1):
        for i in range(indptr[c], indptr[c + 1]):
            p = product_code[i]
            for j in range(starts[p], starts[p + 1]):
                t = target[j]
                if last[t] != c:
                    last[t] = c
                    count[t] += 1
    return count


def build_catalog(
    level: str,
    products: pd.DataFrame,
    sales: ibis.Table,
    as_of: datetime,
    *,
    min_buyers: int | None = None,
    buyers: ProductBuyers | None = None,
) -> TargetCatalog:
    """The targets of ``level`` bought by at least ``min_buyers`` customers up to ``as_of``.

    Parameters
    ----------
    level : str
        ``product``, ``category``, ``brand`` or ``keyword``.
    products : pandas.DataFrame
        From :func:`read_products`.
    sales : ibis.Table
        Non-return order lines (``customer_id``, ``product_id``, ``ordered_at``).
    as_of : datetime
        Only purchases at or before this instant count as support.
    min_buyers : int, optional
        Default :data:`MIN_BUYERS` of the level.
    buyers : ProductBuyers, optional
        The pairs of ``sales`` up to ``as_of``, when already read (e.g. for another level).

    Returns
    -------
    TargetCatalog
    """
    min_buyers = MIN_BUYERS[level] if min_buyers is None else min_buyers
    candidates = _candidate_map(level, products).drop_duplicates()
    if buyers is None:
        buyers = ProductBuyers.compute(sales, as_of)
    elif buyers.as_of != as_of:
        raise ValueError(f"the buyers are as of {buyers.as_of}, the catalogue as of {as_of}")
    buyers = buyers.per_target(candidates)
    keep = buyers[buyers >= max(min_buyers, 1)]
    targets = np.asarray(sorted(keep.index), dtype=object)
    index = pd.Index(targets)
    pm = candidates[candidates["target"].isin(index)]
    product_map = pd.DataFrame(
        {
            "product_id": pm["product_id"].astype(str).to_numpy(),
            "target_idx": index.get_indexer(pm["target"]).astype("int64"),
        }
    )
    if level == "product":
        names = products.set_index(products["product_id"].astype(str))["name"]
        labels = names.reindex(targets).fillna(pd.Series(targets, index=targets)).to_numpy(object)
        text = labels
    elif level == "category":
        labels = targets
        text = np.asarray([t.split(PATH_SEPARATOR)[-1] for t in targets], dtype=object)
    else:
        labels = targets
        text = targets
    terms = term_pairs([str(i) for i in range(len(targets))], text)
    terms = pd.DataFrame(
        {"target_idx": terms["key"].astype("int64").to_numpy(), "term": terms["term"]}
    )
    log.info("%s level: %d targets (%d candidates)", level, len(targets), len(buyers))
    return TargetCatalog(
        level=level,
        targets=targets,
        labels=np.asarray(labels, dtype=object),
        buyers=keep.reindex(targets).to_numpy(dtype="int64"),
        product_map=product_map,
        terms=terms,
    )


def close_matches(catalog: TargetCatalog, text: str, n: int = 5) -> list[str]:
    """Targets whose key or label resembles ``text`` (for "did you mean" messages)."""
    import difflib

    keys = [str(t) for t in catalog.targets]
    found = difflib.get_close_matches(text, keys, n=n, cutoff=0.6)
    labels = {
        str(lbl).lower(): str(t) for t, lbl in zip(catalog.targets, catalog.labels, strict=True)
    }
    for lbl in difflib.get_close_matches(text.lower(), list(labels), n=n, cutoff=0.6):
        key = labels[lbl]
        shown = key if key.lower() == lbl else f"{key} ({lbl})"
        if key not in found and shown not in found:
            found.append(shown)
    words = set(tokenize(text))
    if len(found) < n and words:
        hits = [
            str(t)
            for t, lbl in zip(catalog.targets, catalog.labels, strict=True)
            if words & set(tokenize(str(lbl)))
        ]
        found += [h for h in hits if h not in found][: n - len(found)]
    return found[:n]
