"""The synthetic catalogue: category tree, brands, products with names and lognormal prices.

Products are drawn "by price level": within a leaf category (or a brand), products are sorted
by price and a quantile ``u`` in (0, 1) picks the product whose popularity-weighted price CDF
interval holds ``u``. A cheap customer (small ``u``) buys the cheap end of every category.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from workbench.synth import vocab
from workbench.synth.settings import SynthSettings

#: Leaf ``k``'s prices map to keys ``k * PRICE_SPAN + price`` (prices stay below it).
PRICE_SPAN = 1e6
#: Queries a search for a product can use (see :func:`_queries`).
QUERIES_PER_PRODUCT = 4


@dataclass(frozen=True)
class Catalog:
    """Products and the lookup structures used to draw them.

    Attributes
    ----------
    product_id, name, category, brand : pa.Array
        Product columns (strings), one entry per product, in product order.
    price : np.ndarray
        List price per product, EUR, 2 decimals.
    leaf, brand_idx : np.ndarray
        Leaf index and brand index per product.
    leaf_paths, brand_names : list of str
        Full category path per leaf, name per brand (brands without products included).
    leaf_pop : np.ndarray
        Share of demand per leaf (sums to 1).
    queries : pa.Array
        Search queries, ``QUERIES_PER_PRODUCT`` per product, product-major.
    """

    product_id: pa.Array
    name: pa.Array
    category: pa.Array
    brand: pa.Array
    price: np.ndarray
    leaf: np.ndarray
    brand_idx: np.ndarray
    leaf_paths: list[str]
    brand_names: list[str]
    leaf_pop: np.ndarray
    queries: pa.Array
    _leaf_order: np.ndarray
    _leaf_key: np.ndarray
    _brand_order: np.ndarray
    _brand_key: np.ndarray
    _pop_cum: np.ndarray
    _price_order: np.ndarray
    _price_key: np.ndarray

    @property
    def size(self) -> int:
        """Number of products."""
        return len(self.price)

    def table(self) -> pa.Table:
        """The products table of the output contract."""
        return pa.table(
            {
                "product_id": self.product_id,
                "name": self.name,
                "category": self.category,
                "brand": self.brand,
                "price": pa.array(self.price, pa.float64()),
            }
        )

    def in_leaf(self, leaf: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Products at price quantile ``u`` of leaf categories ``leaf`` (vectorised)."""
        return self._leaf_order[np.searchsorted(self._leaf_key, leaf + _open(u))]

    def of_brand(self, brand: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Products at price quantile ``u`` among the products of brands ``brand``."""
        return self._brand_order[np.searchsorted(self._brand_key, brand + _open(u))]

    def priced_at_least(self, leaf: np.ndarray, amount: np.ndarray) -> np.ndarray:
        """Cheapest product of each leaf priced at least ``amount`` (else the leaf's dearest)."""
        pos = np.searchsorted(self._price_key, leaf * PRICE_SPAN + amount)
        dearest = np.searchsorted(self._price_key, (leaf + 1) * PRICE_SPAN) - 1
        return self._price_order[np.minimum(pos, dearest)]

    def popular_leaf(self, u: np.ndarray) -> np.ndarray:
        """Leaves drawn by popularity, ``u`` uniform in (0, 1)."""
        return np.minimum(np.searchsorted(self._pop_cum, u), len(self.leaf_pop) - 1)


def _open(u: np.ndarray) -> np.ndarray:
    return np.clip(u, 1e-9, 1 - 1e-9)


def _sorted_cdf_keys(
    group: np.ndarray, price: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Order by (group, price) and the key ``group + popularity CDF within group``."""
    order = np.lexsort((price, group))
    g, w = group[order], weight[order]
    cum = np.cumsum(w)
    starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    totals = np.add.reduceat(w, starts)
    before = np.repeat(cum[starts] - w[starts], np.diff(np.r_[starts, len(g)]))
    within = (cum - before) / np.repeat(totals, np.diff(np.r_[starts, len(g)]))
    ends = np.r_[starts[1:], len(g)] - 1
    within[ends] = 1.0
    return order, g.astype(np.float64) + within


def _round_price(x: np.ndarray) -> np.ndarray:
    """Shop-like prices: x.99 above 5 EUR, x.49 / x.99 below; never under 0.49."""
    big = np.floor(x) + 0.99
    small = np.floor(x * 2) / 2 + 0.49
    return np.round(np.maximum(np.where(x >= 5, big, small), 0.49), 2)


def _allocate(total: int, share: np.ndarray, minimum: int) -> np.ndarray:
    """Integer counts summing to ``total``, proportional to ``share``, each >= ``minimum``."""
    free = total - minimum * len(share)
    raw = share / share.sum() * free
    counts = np.floor(raw).astype(np.int64)
    rest = free - counts.sum()
    counts[np.argsort(counts - raw, kind="stable")[:rest]] += 1
    return counts + minimum


def _brands(
    rng: np.random.Generator, n: int, tops: list[str]
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    pool = vocab.brand_name_pool()
    names = [pool[i] for i in np.sort(rng.choice(len(pool), size=min(n, len(pool)), replace=False))]
    n = len(names)
    home = np.zeros((n, len(tops)), dtype=bool)
    home[np.arange(n), rng.integers(0, len(tops), n)] = True
    second = rng.random(n) < 0.3
    home[np.flatnonzero(second), rng.integers(0, len(tops), second.sum())] = True
    pop = rng.lognormal(0.0, 1.0, n)
    premium = rng.lognormal(0.0, 0.25, n)
    return names, home, pop, premium


def _names(
    rng: np.random.Generator, top: list[str], leaf: list[str], brand: list[str]
) -> list[str]:
    n = len(top)
    two = rng.random(n) < 0.4
    with_brand = rng.random(n) < 0.35
    with_variant = rng.random(n) < 0.7
    d1, d2, var = rng.random(n), rng.random(n), rng.random(n)
    out = []
    for i in range(n):
        words = vocab.DESCRIPTORS[top[i]]
        k = int(d1[i] * len(words))
        parts = [brand[i]] if with_brand[i] else []
        parts.append(words[k])
        if two[i]:
            parts.append(words[(k + 1 + int(d2[i] * (len(words) - 1))) % len(words)])
        parts.append(leaf[i])
        if with_variant[i]:
            variants = vocab.VARIANTS[top[i]]
            parts.append(variants[int(var[i] * len(variants))])
        out.append(" ".join(parts))
    return out


def _queries(names: list[str], leaf: list[str], brand: list[str], top: list[str]) -> list[str]:
    """Per product: leaf name, brand, descriptor + leaf, brand + leaf (all lower case)."""
    out = []
    for name, lf, br, tp in zip(names, leaf, brand, top, strict=True):
        descriptor = next((d for d in vocab.DESCRIPTORS[tp] if d in name), "")
        out += [lf, br, f"{descriptor} {lf}".strip(), f"{br} {lf}"]
    return [q.lower() for q in out]


def build_catalog(rng: np.random.Generator, settings: SynthSettings) -> Catalog:
    """Generate the catalogue.

    Parameters
    ----------
    rng : numpy.random.Generator
        The catalogue's own random stream.
    settings : SynthSettings
        Uses ``products`` and ``brands``.

    Returns
    -------
    Catalog
        Products (ids ``P000001``...), leaf and brand lookups.
    """
    leaves = vocab.leaf_paths()
    tops = list(vocab.TAXONOMY)
    leaf_top = np.array([tops.index(t) for t, _ in leaves])
    leaf_pop = rng.lognormal(0.0, 1.0, len(leaves))
    leaf_pop /= leaf_pop.sum()
    leaf_median = np.array([vocab.TOP_PRICE[t] for t, _ in leaves]) * rng.lognormal(
        0.0, 0.45, len(leaves)
    )
    brand_names, brand_home, brand_pop, brand_premium = _brands(rng, settings.brands, tops)

    if settings.products < len(leaves):
        raise ValueError(
            f"products must be at least {len(leaves)} (one per leaf category), "
            f"got {settings.products}"
        )
    minimum = min(20, settings.products // len(leaves))
    counts = _allocate(settings.products, np.sqrt(leaf_pop), minimum=minimum)
    leaf = np.repeat(np.arange(len(leaves)), counts)
    n = len(leaf)
    # brand: among the brands at home in the leaf's top category, by brand popularity
    brand = np.empty(n, dtype=np.int64)
    for t in range(len(tops)):
        rows = np.flatnonzero(leaf_top[leaf] == t)
        cand = np.flatnonzero(brand_home[:, t])
        if cand.size == 0:
            cand = np.arange(len(brand_names))
        w = brand_pop[cand] / brand_pop[cand].sum()
        pick = np.searchsorted(np.cumsum(w), rng.random(rows.size))
        brand[rows] = cand[np.minimum(pick, cand.size - 1)]
    price = _round_price(leaf_median[leaf] * brand_premium[brand] * rng.lognormal(0.0, 0.5, n))
    # popularity within leaf: Zipf over a random rank
    rank = np.empty(n)
    for lf in range(len(leaves)):
        rows = np.flatnonzero(leaf == lf)
        rank[rows] = rng.permutation(rows.size) + 1
    weight = rank**-0.9

    top_names = [tops[t] for t in leaf_top[leaf]]
    leaf_names = [leaves[lf][1].rsplit(" > ", 1)[1] for lf in leaf]
    brand_list = [brand_names[b] for b in brand]
    names = _names(rng, top_names, leaf_names, brand_list)
    leaf_order, leaf_key = _sorted_cdf_keys(leaf, price, weight)
    brand_order, brand_key = _sorted_cdf_keys(brand, price, weight)
    price_order = np.lexsort((price, leaf))
    width = max(6, len(str(n)))
    return Catalog(
        product_id=pa.array([f"P{i + 1:0{width}d}" for i in range(n)], pa.string()),
        name=pa.array(names, pa.string()),
        category=pa.array([leaves[lf][1] for lf in leaf], pa.string()),
        brand=pa.array(brand_list, pa.string()),
        price=price,
        leaf=leaf.astype(np.int32),
        brand_idx=brand.astype(np.int32),
        leaf_paths=[p for _, p in leaves],
        brand_names=brand_names,
        leaf_pop=leaf_pop,
        queries=pa.array(_queries(names, leaf_names, brand_list, top_names), pa.string()),
        _leaf_order=leaf_order,
        _leaf_key=leaf_key,
        _brand_order=brand_order,
        _brand_key=brand_key,
        _pop_cum=np.cumsum(leaf_pop),
        _price_order=price_order,
        _price_key=leaf[price_order] * PRICE_SPAN + price[price_order],
    )
