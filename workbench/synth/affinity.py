"""Planted per-customer affinities and the drawing of products through them.

Every customer has 1-5 favourite leaf categories (half of the extra ones in the same top
category as the first, so tastes cluster the way item-item models expect) and 1-2 favourite
brands (mostly brands sold in a favourite category). Weights sum to 1 per level. Affinities
never change over a customer's life, so what was bought before a cutoff predicts what is bought
after it. Browsing uses flattened weights (square roots), so weak favourites are browsed
relatively more than they are bought: customers look at favourite targets before buying them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from workbench.synth.catalog import Catalog
from workbench.synth.settings import SynthSettings

MAX_CATEGORIES = 5
MAX_BRANDS = 2
#: Routes an order line or a browsing session takes to a product.
ROUTE_CATEGORY, ROUTE_BRAND, ROUTE_NOISE = 0, 1, 2


@dataclass(frozen=True)
class Affinities:
    """Favourite leaves and brands of a block of customers (``-1`` / weight 0 = unused slot).

    Attributes
    ----------
    leaf, leaf_weight : np.ndarray
        ``(n, MAX_CATEGORIES)`` leaf indices and weights, heaviest first.
    brand, brand_weight : np.ndarray
        ``(n, MAX_BRANDS)`` brand indices and weights, heaviest first.
    price_level : np.ndarray
        Price quantile per customer, 0 (cheap) .. 1 (expensive).
    """

    leaf: np.ndarray
    leaf_weight: np.ndarray
    brand: np.ndarray
    brand_weight: np.ndarray
    price_level: np.ndarray


def _merge_duplicates(idx: np.ndarray, weight: np.ndarray) -> None:
    """Fold repeated indices in a row into their first slot (in place)."""
    k = idx.shape[1]
    for j in range(1, k):
        for i in range(j):
            dup = (idx[:, j] == idx[:, i]) & (idx[:, j] >= 0)
            weight[dup, i] += weight[dup, j]
            weight[dup, j] = 0.0
            idx[dup, j] = -1


def _sort_by_weight(idx: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-weight, axis=1, kind="stable")
    return np.take_along_axis(idx, order, 1), np.take_along_axis(weight, order, 1)


def _leaf_in_top(rng: np.random.Generator, cat: Catalog, top_of: np.ndarray) -> np.ndarray:
    """A leaf drawn by popularity among the leaves of the same top category as ``top_of``."""
    tops = np.array([p.split(" > ", 1)[0] for p in cat.leaf_paths])
    first = np.r_[0, np.flatnonzero(tops[1:] != tops[:-1]) + 1]
    group = np.searchsorted(first, top_of, side="right") - 1
    cum = np.r_[0.0, np.cumsum(cat.leaf_pop)]
    last = np.r_[first[1:], len(tops)]
    lo, hi = cum[first[group]], cum[last[group]]
    leaf = np.searchsorted(cum, lo + rng.random(len(top_of)) * (hi - lo), side="right") - 1
    return np.clip(leaf, first[group], last[group] - 1)


def draw_affinities(
    rng: np.random.Generator, cat: Catalog, price_level: np.ndarray, s: SynthSettings
) -> Affinities:
    """Draw the favourites of ``len(price_level)`` customers.

    Parameters
    ----------
    rng : numpy.random.Generator
        The block's affinity stream.
    cat : Catalog
        The catalogue (leaf popularity, brands of products).
    price_level : np.ndarray
        Planted price level per customer (kept with the affinities).
    s : SynthSettings
        Uses ``fav_categories_mean`` and ``second_brand_share``.
    """
    n = len(price_level)
    k = 1 + np.minimum(rng.poisson(s.fav_categories_mean, n), MAX_CATEGORIES - 1)
    leaf = cat.popular_leaf(rng.random((n, MAX_CATEGORIES)))
    same_top = _leaf_in_top(rng, cat, np.repeat(leaf[:, 0], MAX_CATEGORIES)).reshape(n, -1)
    clustered = rng.random((n, MAX_CATEGORIES)) < 0.5
    clustered[:, 0] = False
    leaf = np.where(clustered, same_top, leaf)
    used = np.arange(MAX_CATEGORIES)[None, :] < k[:, None]
    leaf = np.where(used, leaf, -1)
    weight = np.where(used, rng.gamma(1.0, 1.0, (n, MAX_CATEGORIES)), 0.0)
    _merge_duplicates(leaf, weight)
    weight /= weight.sum(axis=1, keepdims=True)
    leaf, weight = _sort_by_weight(leaf, weight)

    # brands: of a product in the top favourite leaf (70%) or anywhere by popularity
    own = rng.random(n) < 0.7
    src_leaf = np.where(own, leaf[:, 0], cat.popular_leaf(rng.random(n)))
    b1 = cat.brand_idx[cat.in_leaf(src_leaf, rng.random(n))]
    pick = _categorical(rng, weight)
    b2 = cat.brand_idx[cat.in_leaf(leaf[np.arange(n), pick], rng.random(n))]
    has2 = rng.random(n) < s.second_brand_share
    brand = np.stack([b1, np.where(has2, b2, -1)], axis=1).astype(np.int64)
    w1 = rng.beta(4.0, 2.0, n)
    bweight = np.stack([np.where(has2, w1, 1.0), np.where(has2, 1 - w1, 0.0)], axis=1)
    _merge_duplicates(brand, bweight)
    brand, bweight = _sort_by_weight(brand, bweight)
    return Affinities(leaf, weight, brand, bweight, price_level)


def _categorical(rng: np.random.Generator, weight: np.ndarray) -> np.ndarray:
    """One column index per row of ``weight`` (rows sum to 1)."""
    cum = np.cumsum(weight, axis=1)
    u = rng.random(len(weight))[:, None] * cum[:, -1:]
    return np.minimum((u >= cum).sum(axis=1), weight.shape[1] - 1)


def price_quantile(rng: np.random.Generator, level: np.ndarray, noise: float) -> np.ndarray:
    """Price quantiles around ``level``: probit-scale noise, uniform marginal."""
    z = special.ndtri(np.clip(level, 1e-9, 1 - 1e-9)) + noise * rng.standard_normal(len(level))
    return special.ndtr(z / np.sqrt(1 + noise**2))


def draw_products(
    rng: np.random.Generator,
    aff: Affinities,
    cat: Catalog,
    customer: np.ndarray,
    mix: tuple[float, float, float],
    *,
    browse: bool = False,
    noise: float = 0.6,
    cheaper: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one product per entry of ``customer`` through its affinities.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream.
    aff : Affinities
        Favourites of the block.
    cat : Catalog
        The catalogue.
    customer : np.ndarray
        Block-local customer index per draw.
    mix : tuple of float
        Probabilities of the category, brand and noise routes.
    browse : bool
        Use flattened (square-root) favourite weights, as browsing does.
    noise : float
        Price noise around the customer's price level (probit scale).
    cheaper : float
        Factor in (0, 1] on the price quantile; below 1 moves to cheaper products.

    Returns
    -------
    product, route : np.ndarray
        Product index and the route taken (``ROUTE_*``) per draw.
    """
    m = len(customer)
    route = np.searchsorted(np.cumsum(mix)[:-1], rng.random(m), side="right")
    lw, bw = aff.leaf_weight[customer], aff.brand_weight[customer]
    if browse:
        lw, bw = np.sqrt(lw), np.sqrt(bw)
        lw /= lw.sum(axis=1, keepdims=True)
        bw /= bw.sum(axis=1, keepdims=True)
    fav_leaf = aff.leaf[customer, _categorical(rng, lw)]
    fav_brand = aff.brand[customer, _categorical(rng, bw)]
    leaf = np.where(route == ROUTE_NOISE, cat.popular_leaf(rng.random(m)), fav_leaf)
    u = price_quantile(rng, aff.price_level[customer], noise) * cheaper
    product = np.where(
        route == ROUTE_BRAND, cat.of_brand(fav_brand, u), cat.in_leaf(np.maximum(leaf, 0), u)
    )
    return product, route
