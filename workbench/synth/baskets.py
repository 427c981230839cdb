"""Order lines: each planted order value becomes products x quantity x unit price.

Filling an order (vectorised over all orders of a block, one candidate per round):

1. draw a candidate product through the customer's affinities and a quantity (cheap products
   come in larger quantities);
2. keep it when the running list-price total stays within ``z * (1 + OVERSHOOT)``, else skip
   it (the order stays open); close the order once its list total reaches ``z``;
3. after ``max_candidates`` rounds, an order still short of ``z`` (or empty) gets one more
   line: the product of the category of its cheapest candidate priced closest above the gap
   (or enough units of the dearest one);
4. repeated products in an order are merged into one line;
5. unit price = list price * ``z / list total``, rounded to cents: an order-level discount of at
   most ``1 - 1 / (1 + OVERSHOOT)`` (20%) in all but a few orders in step 3.

So every order total equals the planted ``z`` up to the cent rounding of the unit prices:
``|sum(quantity * unit_price) - z| <= 0.005 * units``; the planted values are the order totals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.synth.affinity import Affinities, draw_products
from workbench.synth.catalog import Catalog
from workbench.synth.settings import SynthSettings

#: After the first 3 candidates, each further one looks this much lower in the price range.
CHEAPER = 0.6
#: How far an order's list-price total may exceed its planted value before the candidate is
#: skipped; the order-level discount stays within 1 - 1 / (1 + OVERSHOOT).
OVERSHOOT = 0.25


@dataclass(frozen=True)
class Lines:
    """Order lines of a block (sales and returns), sorted by order then line number.

    Attributes
    ----------
    order : np.ndarray
        Block-local order index per line.
    line_no : np.ndarray
        Line number within the order, from 1 (returns continue after the sales lines).
    product, quantity, unit_price : np.ndarray
        Product index, signed quantity (negative for returns), unit price (EUR, cents).
    time : np.ndarray
        Days since the window start (the order's time; later for returns).
    returned : np.ndarray
        Whether the line is a return.
    """

    order: np.ndarray
    line_no: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    unit_price: np.ndarray
    time: np.ndarray
    returned: np.ndarray


def _quantity(rng: np.random.Generator, price: np.ndarray) -> np.ndarray:
    return 1 + rng.poisson(0.15 + 1.5 * np.exp(-price / 4.0))


def fill_orders(
    rng: np.random.Generator,
    order_customer: np.ndarray,
    order_value: np.ndarray,
    aff: Affinities,
    cat: Catalog,
    s: SynthSettings,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sales lines for orders of planted values (see the module docstring).

    Returns
    -------
    order, line_no, product, quantity, unit_price : np.ndarray
        One entry per line, sorted by order then line number.
    """
    n = len(order_value)
    total = np.zeros(n)
    cheapest = np.full(n, -1, dtype=np.int64)
    cheapest_price = np.full(n, np.inf)
    open_ = np.arange(n)
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []
    for step in range(s.max_candidates):
        if not open_.size:
            break
        product, _ = draw_products(
            rng,
            aff,
            cat,
            order_customer[open_],
            s.line_mix,
            noise=s.price_noise,
            cheaper=CHEAPER ** max(0, step - 2),
        )
        price = cat.price[product]
        qty = _quantity(rng, price)
        cheaper = price < cheapest_price[open_]
        cheapest[open_[cheaper]] = product[cheaper]
        cheapest_price[open_[cheaper]] = price[cheaper]
        take = total[open_] + qty * price <= order_value[open_] * (1 + OVERSHOOT)
        kept.append((open_[take], product[take], qty[take], step))
        total[open_[take]] += qty[take] * price[take]
        open_ = open_[total[open_] < order_value[open_]]

    # short of z (or empty): one more line, the product of the cheapest candidate's category
    # priced closest above the gap (units of the dearest one when none is dear enough)
    short = np.flatnonzero(total < order_value)
    gap = order_value[short] - total[short]
    filler = cat.priced_at_least(cat.leaf[cheapest[short]], gap)
    units = np.ceil(gap / cat.price[filler]).astype(np.int64)
    kept.append((short, filler, units, s.max_candidates))
    order = np.concatenate([k[0] for k in kept])
    product = np.concatenate([k[1] for k in kept])
    qty = np.concatenate([k[2] for k in kept]).astype(np.int64)
    step_of = np.concatenate([np.full(k[0].size, k[3]) for k in kept])

    # merge repeated products of an order into the first line that holds them
    srt = np.lexsort((step_of, order))
    order, product, qty = order[srt], product[srt], qty[srt]
    key = order * np.int64(cat.size) + product
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    qty = np.bincount(inverse, weights=qty).astype(np.int64)
    keep = np.sort(first)
    qty = qty[inverse[keep]]
    order, product = order[keep], product[keep]
    price = cat.price[product]

    list_total = np.bincount(order, weights=qty * price, minlength=n)
    factor = order_value / list_total
    unit_price = np.maximum(np.round(price * factor[order], 2), 0.01)
    starts = np.searchsorted(order, order)
    line_no = np.arange(len(order)) - starts + 1
    return order, line_no, product, qty, unit_price


def add_returns(
    rng: np.random.Generator,
    order: np.ndarray,
    line_no: np.ndarray,
    product: np.ndarray,
    quantity: np.ndarray,
    unit_price: np.ndarray,
    order_time: np.ndarray,
    days: float,
    rate: float,
) -> Lines:
    """Sales lines plus the returns of a share ``rate`` of them.

    A returned line gets an extra line in the same order: the next free line number, status
    returned, negative quantity (all units, or some of several), same unit price, 2-30+ days
    after the order. Returns that would fall after the window are not observed.
    """
    ret = np.flatnonzero(rng.random(len(order)) < rate)
    q = quantity[ret]
    back = np.where(q > 1, 1 + rng.binomial(np.maximum(q - 1, 0), 0.7), 1)
    t_ret = order_time[order[ret]] + 2.0 + rng.exponential(10.0, ret.size)
    seen = t_ret < days
    ret, back, t_ret = ret[seen], back[seen], t_ret[seen]
    r_order = order[ret]
    n_sales = np.bincount(order, minlength=len(order_time))
    rank = np.arange(ret.size) - np.searchsorted(r_order, r_order)
    r_line = n_sales[r_order] + rank + 1

    all_order = np.concatenate([order, r_order])
    all_line = np.concatenate([line_no, r_line])
    srt = np.lexsort((all_line, all_order))
    return Lines(
        order=all_order[srt],
        line_no=all_line[srt],
        product=np.concatenate([product, product[ret]])[srt],
        quantity=np.concatenate([quantity, -back])[srt],
        unit_price=np.concatenate([unit_price, unit_price[ret]])[srt],
        time=np.concatenate([order_time[order], t_ret])[srt],
        returned=np.concatenate([np.zeros(len(order), bool), np.ones(ret.size, bool)])[srt],
    )
