"""Web events (view, click, search, cart) driven by the same affinities as the purchases.

Three kinds of sessions, all vectorised over a block of customers:

- **purchase sessions**, minutes before each order: per bought line a view, often a click and
  a cart event, plus views of alternatives in the same category; sometimes a search first;
- **research sessions**, hours to days before an order, around the categories of its lines:
  browsing is denser before purchases;
- **browsing sessions**, a Poisson process over the customer's life (from a month before the
  first order to shortly after dropout, or to the end of the window), anchored on products drawn
  through flattened affinities: weak favourites are browsed before they are ever bought.

A search event carries a ``query`` (words of a product's category, brand or name) and no
product; every other event carries a product and no query.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.synth.affinity import Affinities, draw_products, price_quantile
from workbench.synth.catalog import QUERIES_PER_PRODUCT, Catalog
from workbench.synth.settings import SynthSettings

#: Event type codes and their names in the output.
EVENT_TYPES = ("view", "click", "search", "cart")
VIEW, CLICK, SEARCH, CART = range(4)
MINUTE = 1.0 / 1440.0


@dataclass(frozen=True)
class Events:
    """Events of a block: block-local customer, time in days, type code, product, query.

    ``product`` and ``query`` are -1 where absent; ``query`` indexes ``Catalog.queries``.
    """

    customer: np.ndarray
    time: np.ndarray
    kind: np.ndarray
    product: np.ndarray
    query: np.ndarray

    @staticmethod
    def concat(parts: list[Events]) -> Events:
        """All parts in one."""
        return Events(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in Events.__dataclass_fields__)
        )


def _ev(
    customer: np.ndarray,
    time: np.ndarray,
    kind: int | np.ndarray,
    product: np.ndarray | None,
    query: np.ndarray | None = None,
) -> Events:
    n = len(customer)
    return Events(
        customer=customer,
        time=time,
        kind=np.broadcast_to(np.asarray(kind, dtype=np.int8), (n,)).copy(),
        product=np.asarray(product, dtype=np.int64) if product is not None else np.full(n, -1),
        query=np.asarray(query, dtype=np.int64) if query is not None else np.full(n, -1),
    )


def _search(
    rng: np.random.Generator, customer: np.ndarray, time: np.ndarray, product: np.ndarray
) -> Events:
    query = product * QUERIES_PER_PRODUCT + rng.integers(0, QUERIES_PER_PRODUCT, len(product))
    return _ev(customer, time, SEARCH, None, query)


def _sessions(
    rng: np.random.Generator,
    customer: np.ndarray,
    start: np.ndarray,
    anchor: np.ndarray,
    size: np.ndarray,
    aff: Affinities,
    cat: Catalog,
    s: SynthSettings,
    cart_share: float,
) -> Events:
    """Sessions of ``size`` product events from ``start``, around an anchor product.

    The first event views the anchor; later ones view, click or cart products of the anchor's
    category at the customer's price level. A share ``search_share`` of sessions opens with a
    search for the anchor.
    """
    sess = np.repeat(np.arange(len(customer)), size)
    first = np.r_[0, np.cumsum(size)[:-1]]
    k = np.arange(len(sess)) - first[sess]
    gaps = rng.exponential(2.0 * MINUTE, len(sess))
    cum = np.cumsum(gaps)
    time = start[sess] + cum - (cum - gaps)[first][sess]
    cust = customer[sess]
    other = cat.in_leaf(cat.leaf[anchor[sess]], price_quantile(rng, aff.price_level[cust], 0.8))
    product = np.where(k == 0, anchor[sess], other)
    u = rng.random(len(sess))
    kind = np.where(u < cart_share, CART, np.where(u < cart_share + 0.3, CLICK, VIEW))
    kind = np.where(k == 0, VIEW, kind)
    searched = rng.random(len(customer)) < s.search_share
    parts = [
        _ev(cust, time, kind, product),
        _search(rng, customer[searched], start[searched], anchor[searched]),
    ]
    return Events.concat(parts)


def purchase_events(
    rng: np.random.Generator,
    order_customer: np.ndarray,
    order_time: np.ndarray,
    line_order: np.ndarray,
    line_product: np.ndarray,
    aff: Affinities,
    cat: Catalog,
    s: SynthSettings,
) -> Events:
    """Purchase sessions (minutes before each order) and research sessions (days before).

    Parameters
    ----------
    rng : numpy.random.Generator
        The block's event stream.
    order_customer, order_time : np.ndarray
        Per order: block-local customer and time (days).
    line_order, line_product : np.ndarray
        Per sales line: order index and product.
    aff : Affinities
        Favourites and price levels of the block.
    cat : Catalog
        The catalogue.
    s : SynthSettings
        Uses ``alt_views``, ``search_share`` and ``research_sessions``.
    """
    n_orders = len(order_time)
    length = (5.0 + rng.exponential(15.0, n_orders)) * MINUTE
    t0 = order_time - length
    cust = order_customer[line_order]
    # per line: view, often a click, then cart, in that order inside the session
    frac = np.sort(rng.random((len(line_order), 3)), axis=1)
    when = t0[line_order][:, None] + frac * length[line_order][:, None]
    clicked = rng.random(len(line_order)) < 0.6
    parts = [
        _ev(cust, when[:, 0], VIEW, line_product),
        _ev(cust[clicked], when[clicked, 1], CLICK, line_product[clicked]),
        _ev(cust, when[:, 2], CART, line_product),
    ]
    alt = np.repeat(np.arange(len(line_order)), rng.poisson(s.alt_views, len(line_order)))
    alt_product = cat.in_leaf(
        cat.leaf[line_product[alt]], price_quantile(rng, aff.price_level[cust[alt]], 0.8)
    )
    alt_time = t0[line_order[alt]] + rng.random(alt.size) * length[line_order[alt]]
    parts.append(_ev(cust[alt], alt_time, VIEW, alt_product))
    first_line = np.searchsorted(line_order, np.arange(n_orders))
    searched = np.flatnonzero(rng.random(n_orders) < s.search_share)
    parts.append(
        _search(rng, order_customer[searched], t0[searched], line_product[first_line[searched]])
    )

    # research sessions: a few days before the order, around one of its lines
    research = np.repeat(np.arange(n_orders), rng.poisson(s.research_sessions, n_orders))
    n_lines = np.bincount(line_order, minlength=n_orders)
    pick = first_line[research] + (rng.random(research.size) * n_lines[research]).astype(int)
    start = order_time[research] - 0.05 - rng.exponential(4.0, research.size)
    size = 1 + rng.poisson(1.5, research.size)
    parts.append(
        _sessions(rng, order_customer[research], start, line_product[pick], size, aff, cat, s, 0.05)
    )
    return Events.concat(parts)


def browse_events(
    rng: np.random.Generator,
    birth: np.ndarray,
    dropout: np.ndarray,
    lam: np.ndarray,
    days: float,
    aff: Affinities,
    cat: Catalog,
    s: SynthSettings,
) -> Events:
    """Browsing sessions not tied to an order (see the module docstring).

    The session rate is ``browse_rate`` scaled by the square root of the customer's purchase
    rate relative to the mean (``r / alpha``), bounded to 0.2-4 times.
    """
    n = len(birth)
    lo = np.maximum(birth - rng.exponential(30.0, n), 0.0)
    hi = np.where(np.isnan(dropout), days, np.minimum(dropout + rng.exponential(14.0, n), days))
    rate = s.browse_rate * np.clip(np.sqrt(lam / (s.r / s.alpha)), 0.2, 4.0)
    count = rng.poisson(rate * (hi - lo))
    customer = np.repeat(np.arange(n), count)
    start = lo[customer] + rng.random(customer.size) * (hi - lo)[customer]
    anchor, _ = draw_products(rng, aff, cat, customer, s.line_mix, browse=True, noise=s.price_noise)
    size = 1 + rng.poisson(2.0, customer.size)
    return _sessions(rng, customer, start, anchor, size, aff, cat, s, 0.05)


def block_events(purchase_parts: Events, browse_parts: Events, days: float) -> Events:
    """Both kinds of events inside the window, sorted by customer then time."""
    ev = Events.concat([purchase_parts, browse_parts])
    seen = (ev.time >= 0) & (ev.time < days)
    ev = Events(*(getattr(ev, f)[seen] for f in Events.__dataclass_fields__))
    order = np.lexsort((ev.time, ev.customer))
    return Events(*(getattr(ev, f)[order] for f in Events.__dataclass_fields__))
