"""Targets of each Interested-In level and how products map onto them.

- ``product``: one target per product id.
- ``category``: every prefix of a product's category path, so a buyer of
  ``"Home > Kitchen > Mugs"`` is a buyer of ``"Home"``, ``"Home > Kitchen"`` and the leaf.
- ``brand``: the product's brand.
- ``keyword``: the terms of the product's name (see :mod:`workbench.models.interest_terms`).

A target is kept when at least ``min_buyers`` distinct customers bought it up to ``as_of``
(counted with an ibis query, so the same code runs on DuckDB and Spark). The product table is a
dimension table (its size does not grow with customers), so it is read into pandas here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import ibis
import numpy as np
import pandas as pd

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


def _buyers_per_target(sales: ibis.Table, candidates: pd.DataFrame) -> pd.Series:
    """Distinct buyers per candidate target (ibis: one join and one aggregate)."""
    codes, uniques = pd.factorize(candidates["target"])
    pmap = ibis.memtable(
        pd.DataFrame({"product_id": candidates["product_id"].astype(str), "code": codes})
    )
    joined = sales.select("customer_id", "product_id").join(pmap, "product_id")
    counts = joined.group_by("code").aggregate(buyers=joined.customer_id.nunique())
    table = counts.to_pyarrow()
    out = np.zeros(len(uniques), dtype="int64")
    out[np.asarray(table["code"])] = np.asarray(table["buyers"])
    return pd.Series(out, index=pd.Index(uniques, dtype=object))


def build_catalog(
    level: str,
    products: pd.DataFrame,
    sales: ibis.Table,
    as_of: datetime,
    *,
    min_buyers: int | None = None,
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

    Returns
    -------
    TargetCatalog
    """
    min_buyers = MIN_BUYERS[level] if min_buyers is None else min_buyers
    candidates = _candidate_map(level, products).drop_duplicates()
    past = sales.filter(sales.ordered_at <= ibis.literal(as_of, type="timestamp('UTC')"))
    buyers = _buyers_per_target(past, candidates)
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
