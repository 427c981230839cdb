"""Generate a synthetic shop with planted ground truth, streamed to Parquet in chunks.

Randomness: the catalogue draws from ``SeedSequence(seed, spawn_key=(0,))``; customers come in
fixed blocks of ``block_size`` and block ``k`` draws from ``SeedSequence(seed, spawn_key=(1,
k))`` (one child stream per part: purchases, affinities, lines, events, attributes). Chunks group
whole blocks for writing only, so the data depend on the seed and the settings, never on the
chunk size; events never change the orders (their own stream).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from workbench.synth import writer
from workbench.synth.affinity import Affinities, draw_affinities
from workbench.synth.baskets import Lines, add_returns, fill_orders
from workbench.synth.catalog import Catalog, build_catalog
from workbench.synth.customers import customer_ids, customer_table, id_width
from workbench.synth.events import (
    EVENT_TYPES,
    Events,
    block_events,
    browse_events,
    purchase_events,
)
from workbench.synth.process import Purchases, simulate_block
from workbench.synth.settings import BGNBD_KEYS, GAMMA_GAMMA_KEYS, SynthSettings

log = logging.getLogger(__name__)

#: Child streams of a block's SeedSequence.
STREAMS = ("purchases", "affinities", "lines", "events", "attributes")
US_PER_DAY = 86_400_000_000
ORDER_ID_WIDTH = 9
STATUSES = pa.array(["completed", "returned"], pa.string())


@dataclass(frozen=True)
class Window:
    """The observation window: ``start`` (UTC midnight) and its length in days."""

    start: datetime
    days: int

    @property
    def end(self) -> datetime:
        """End of the window (exclusive)."""
        return self.start + timedelta(days=self.days)

    @property
    def start_us(self) -> int:
        """Start in microseconds since the epoch."""
        return int(self.start.timestamp()) * 1_000_000

    def to_us(self, t: np.ndarray) -> np.ndarray:
        """Days since the start -> microseconds since the epoch."""
        return self.start_us + np.round(t * US_PER_DAY).astype(np.int64)

    def timestamps(self, t: np.ndarray) -> pa.Array:
        """Days since the start -> UTC timestamps (NaN -> null)."""
        missing = np.isnan(t)
        us = self.to_us(np.where(missing, 0.0, t))
        return pa.array(us, writer.UTC_US, mask=missing)


def block_streams(seed: int, block: int) -> dict[str, np.random.Generator]:
    """The random generators of customer block ``block``."""
    children = np.random.SeedSequence(seed, spawn_key=(1, block)).spawn(len(STREAMS))
    return {name: np.random.default_rng(c) for name, c in zip(STREAMS, children, strict=True)}


def catalog_stream(seed: int) -> np.random.Generator:
    """The catalogue's random generator."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))


@dataclass
class Block:
    """Everything drawn for one block of customers (block-local indices)."""

    first: int
    purchases: Purchases
    affinities: Affinities
    lines: Lines
    events: Events | None
    attributes: np.random.Generator


def simulate(
    seed: int, block: int, first: int, n: int, days: int, cat: Catalog, s: SynthSettings, ev: bool
) -> Block:
    """Draw block ``block`` (customers ``first .. first + n - 1``, 0-based)."""
    rng = block_streams(seed, block)
    pur = simulate_block(rng["purchases"], n, days, s)
    aff = draw_affinities(rng["affinities"], cat, pur.price_level, s)
    order, line_no, product, qty, price = fill_orders(
        rng["lines"], pur.order_customer, pur.order_value, aff, cat, s
    )
    lines = add_returns(
        rng["lines"], order, line_no, product, qty, price, pur.order_time, days, s.return_rate
    )
    events = None
    if ev:
        e = rng["events"]
        bought = purchase_events(e, pur.order_customer, pur.order_time, order, product, aff, cat, s)
        browsed = browse_events(e, pur.birth, pur.dropout, pur.lam, days, aff, cat, s)
        events = block_events(bought, browsed, days)
    return Block(first, pur, aff, lines, events, rng["attributes"])


def _order_ids(pur: Purchases, first_order: int) -> pa.Array:
    """Order ids numbered in time order within the block, after ``first_order``."""
    rank = np.empty(len(pur.order_time), dtype=np.int64)
    rank[np.argsort(pur.order_time, kind="stable")] = np.arange(len(rank))
    numbers = (first_order + rank + 1).tolist()
    return pa.array([f"O{k:0{ORDER_ID_WIDTH}d}" for k in numbers], pa.string())


def _tables(
    blk: Block, first_order: int, cat: Catalog, win: Window, width: int, digits: int
) -> dict[str, pa.Table]:
    pur, aff, lines = blk.purchases, blk.affinities, blk.lines
    n = len(pur.birth)
    numbers = np.arange(blk.first + 1, blk.first + n + 1)
    ids = customer_ids(numbers, width)
    order_ids = _order_ids(pur, first_order)
    line_idx = pa.array(lines.order)
    out = {
        "orders.parquet": pa.table(
            {
                "order_id": order_ids.take(line_idx),
                "line_no": pa.array(lines.line_no, pa.int64()),
                "customer_id": ids.take(pa.array(pur.order_customer[lines.order])),
                "ordered_at": pa.array(win.to_us(lines.time), writer.UTC_US),
                "product_id": cat.product_id.take(pa.array(lines.product)),
                "quantity": pa.array(lines.quantity, pa.int64()),
                "unit_price": pa.array(lines.unit_price, pa.float64()),
                "currency": pa.repeat(pa.scalar("EUR"), len(lines.order)),
                "status": STATUSES.take(pa.array(lines.returned.astype(np.int8))),
            }
        ),
        "customers.parquet": customer_table(
            blk.attributes, ids, numbers, win.to_us(pur.birth), digits
        ),
        "truth/customers.parquet": pa.table(
            {
                "customer_id": ids,
                "birth_at": win.timestamps(pur.birth),
                "lam": pur.lam,
                "p_drop": pur.p_drop,
                "dropout_at": win.timestamps(pur.dropout),
                "alive_at_end": pur.alive_at_end,
                "mean_spend": pur.mean_spend,
                "price_level": pur.price_level,
            }
        ),
        "truth/affinity.parquet": _affinity_table(ids, aff, cat),
    }
    if blk.events is not None:
        ev = blk.events
        out["events.parquet"] = pa.table(
            {
                "customer_id": ids.take(pa.array(ev.customer)),
                "occurred_at": pa.array(win.to_us(ev.time), writer.UTC_US),
                "event_type": pa.array(EVENT_TYPES, pa.string()).take(pa.array(ev.kind)),
                "product_id": cat.product_id.take(pa.array(ev.product, mask=ev.product < 0)),
                "query": cat.queries.take(pa.array(ev.query, mask=ev.query < 0)),
            }
        )
    return out


def _affinity_table(ids: pa.Array, aff: Affinities, cat: Catalog) -> pa.Table:
    parts = []
    for level, idx, weight, names in (
        ("category", aff.leaf, aff.leaf_weight, cat.leaf_paths),
        ("brand", aff.brand, aff.brand_weight, cat.brand_names),
    ):
        cust, slot = np.nonzero(idx >= 0)
        parts.append(
            pa.table(
                {
                    "customer_id": ids.take(pa.array(cust)),
                    "level": pa.repeat(pa.scalar(level), cust.size),
                    "target": pa.array(names, pa.string()).take(pa.array(idx[cust, slot])),
                    "weight": pa.array(weight[cust, slot], pa.float64()),
                }
            )
        )
    return pa.concat_tables(parts)


def _truth(
    seed: int, customers: int, win: Window, s: SynthSettings, events: bool, rows: dict[str, int]
) -> dict[str, Any]:
    settings = s.as_dict()
    return {
        "generator": "workbench.synth",
        "seed": seed,
        "customers": customers,
        "start": win.start.isoformat(),
        "end": win.end.isoformat(),
        "days": win.days,
        "time_unit": "days",
        "currency": "EUR",
        "bgnbd": {k: settings.pop(k) for k in BGNBD_KEYS},
        "gamma_gamma": {k: settings.pop(k) for k in GAMMA_GAMMA_KEYS},
        "settings": {**settings, "events": events},
        "rows": rows,
        "notes": {
            "bgnbd": "first purchase at birth_at; Poisson(lam) purchases while active; after "
            "each repeat purchase inactive with probability p_drop (none after the first "
            "purchase, as in the BG/NBD likelihood); dropout_at = that purchase's time",
            "gamma_gamma": "nu ~ Gamma(q, rate v); order value z ~ Gamma(p, rate nu); "
            "mean_spend = p / nu. Order totals (completed lines) equal z up to the cent "
            "rounding of unit prices: |error| <= 0.005 EUR per unit",
            "affinity": "weights sum to 1 per customer and level; an order line follows a "
            "favourite category, a favourite brand or popularity with probabilities line_mix",
            "price_level": "quantile (0 cheap .. 1 dear) of the popularity-weighted price "
            "distribution of a category at which the customer buys (probit noise price_noise); "
            "Gaussian-copula correlation spend_price_corr with the mean_spend quantile",
            "unit_price": "list price times an order-level discount factor in (0.8, 1] for "
            "99% of lines, so that order totals meet the planted values",
            "events": "purchase sessions minutes before each order, research sessions days "
            "before, browsing sessions over the customer's life with flattened favourite "
            "weights (favourites are browsed before they are bought)",
            "returns": "returned lines repeat the sold line with negative quantity, a later "
            "timestamp and status 'returned'; they do not change order totals above",
        },
    }


def generate(
    customers: int,
    seed: int,
    out: Path,
    *,
    start: date = date(2023, 1, 1),
    days: int = 1095,
    events: bool = True,
    progress: bool = True,
    r: float | None = None,
    alpha: float | None = None,
    a: float | None = None,
    b: float | None = None,
    p: float | None = None,
    q: float | None = None,
    v: float | None = None,
    products: int | None = None,
    brands: int | None = None,
    return_rate: float | None = None,
    chunk_size: int = 50_000,
    settings: SynthSettings | None = None,
) -> dict[str, Any]:
    """Generate a synthetic online shop with planted ground truth.

    Parameters
    ----------
    customers : int
        Number of customers (all of them buy at least once).
    seed : int
        Random seed; the same seed and settings give identical files.
    out : Path
        Output folder (created; files in it are overwritten).
    start : date
        First day of the observation window (UTC midnight).
    days : int
        Window length in days; nothing is observed after ``start + days``.
    events : bool
        Write web events (``events.parquet``).
    progress : bool
        Show a tqdm progress bar over chunks.
    r, alpha, a, b : float, optional
        BG/NBD parameters (days); default from :class:`SynthSettings`.
    p, q, v : float, optional
        Gamma-Gamma parameters (EUR); default from :class:`SynthSettings`.
    products, brands : int, optional
        Catalogue size.
    return_rate : float, optional
        Share of order lines returned later.
    chunk_size : int
        Customers generated and written per step (rounded up to whole blocks); bounds memory,
        never changes the data.
    settings : SynthSettings, optional
        Every other knob (explicit arguments above take precedence).

    Returns
    -------
    dict
        ``rows`` per table, ``seconds``, ``paths`` of the written files, ``customers``, ``seed``.
    """
    if customers < 1:
        raise ValueError(f"customers must be >= 1, got {customers}")
    if days < 30:
        raise ValueError(f"days must be >= 30, got {days}")
    s = SynthSettings.build(
        settings,
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        p=p,
        q=q,
        v=v,
        products=products,
        brands=brands,
        return_rate=return_rate,
    )
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not events:
        (out / "events.parquet").unlink(missing_ok=True)
    win = Window(datetime(start.year, start.month, start.day, tzinfo=UTC), days)
    cat = build_catalog(catalog_stream(seed), s)
    writer.write_products(out, cat.table())

    n_blocks = -(-customers // s.block_size)
    per_chunk = max(1, -(-chunk_size // s.block_size))
    width, digits = id_width(customers), max(4, len(str(customers)))
    next_order = 0
    bar = tqdm(total=-(-n_blocks // per_chunk), unit="chunk", desc="synth", disable=not progress)
    with writer.TableWriters(out, events=events) as files:
        for chunk_start in range(0, n_blocks, per_chunk):
            pieces: dict[str, list[pa.Table]] = {}
            for k in range(chunk_start, min(chunk_start + per_chunk, n_blocks)):
                first = k * s.block_size
                n = min(s.block_size, customers - first)
                blk = simulate(seed, k, first, n, days, cat, s, events)
                for name, table in _tables(blk, next_order, cat, win, width, digits).items():
                    pieces.setdefault(name, []).append(table)
                next_order += len(blk.purchases.order_time)
            for name, tables in pieces.items():
                files.write(name, pa.concat_tables(tables))
            bar.update(1)
            bar.set_postfix(lines=files.rows["orders.parquet"])
        rows = dict(files.rows)
    bar.close()
    rows["products.parquet"] = cat.size
    truth = _truth(seed, customers, win, s, events, rows)
    paths = {
        **{name: out / name for name in rows},
        "params": writer.write_params(out, events),
        "truth": writer.write_truth(out, truth),
    }
    seconds = time.perf_counter() - t0
    log.info("synth: %s customers, %s rows in %.1f s", customers, rows, seconds)
    return {
        "customers": customers,
        "seed": seed,
        "rows": {name.removesuffix(".parquet").replace("/", "_"): n for name, n in rows.items()},
        "seconds": round(seconds, 2),
        "paths": {k.removesuffix(".parquet").replace("/", "_"): str(v) for k, v in paths.items()},
    }
