"""What segments are evaluated on: the run folder's tables as ibis expressions, and interest scores.

:class:`SegmentData` holds the customer table (one row per customer: the segment universe),
the canonical order lines, products and web events, the ``as_of`` instant, and an
:class:`InterestScores` source. Order lines and events get the product attributes (name,
category, brand, any extra product column) from the products table, falling back to the
attributes carried on the order lines.
"""

from __future__ import annotations

import difflib
import logging
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import ibis
import pandas as pd

from workbench import engine

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from workbench.notebook import RunContext

log = logging.getLogger(__name__)

#: Prefix of extra product attributes joined onto order lines and events.
ATTR = "attr__"
#: Product columns with a canonical counterpart on the order lines.
PRODUCT_BASICS = {"name": "product_name", "category": "product_category", "brand": "product_brand"}


def ts_literal(value: datetime) -> ibis.TimestampScalar:
    """A UTC timestamp literal (comparable with the canonical timestamp columns)."""
    return ibis.literal(value, type="timestamp('UTC')")


def upload(con: BaseBackend, frame: pd.DataFrame, label: str) -> ibis.Table:
    """A pandas frame as a temporary table of ``con`` (DuckDB temp table, Spark temp view).

    ibis 12 cannot create temporary tables on PySpark, and memtables are not registered
    inside cached Spark plans, so Spark gets a session temp view.
    """
    name = f"_wb_seg_{label}_{uuid.uuid4().hex[:10]}"
    if con.name == "pyspark":
        con._session.createDataFrame(frame).createOrReplaceTempView(name)
        return con.table(name)
    return con.create_table(name, frame, temp=True)


class InterestScores(Protocol):
    """Where Interested-In conditions get their members from."""

    def levels(self) -> list[str]:
        """Levels that can be asked for."""

    def unknown_target(self, level: str, target: str) -> str | None:
        """None when the target exists, else a message with close matches."""

    def members(
        self, level: str, target: str, min_score: float | None, top_share: float | None
    ) -> pd.DataFrame:
        """Customers (column ``customer_id``) with score >= min_score or in the top share."""


class ModelInterest:
    """Scores from the run's fitted Interested-In model (every customer, any target).

    Uses :func:`workbench.models.interest.score_target`; results are cached per target.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self._scores: dict[tuple[str, str], Any] = {}

    def levels(self) -> list[str]:
        """Fitted levels."""
        from workbench.models import interest_store as store

        return store.levels_in(self.run_dir / store.MODEL_DIR)

    def unknown_target(self, level: str, target: str) -> str | None:
        """Resolve the target in the level's catalogue; the model's message when unknown."""
        from workbench.models.interest import InterestTargetError, resolve_target

        if level not in self.levels():
            return f"level {level!r} was not fitted (fitted: {', '.join(self.levels()) or 'none'})"
        try:
            resolve_target(self.catalog(level), level, target)
        except InterestTargetError as exc:
            return exc.what
        return None

    def catalog(self, level: str) -> Any:
        """The level's target catalogue (keys, labels, buyers), without the model weights."""
        from workbench.models import interest_store as store
        from workbench.models.interest_catalog import TargetCatalog

        key = ("catalog", level)
        if key not in self._scores:
            path = self.run_dir / store.MODEL_DIR / level / "targets.parquet"
            frame = pd.read_parquet(path, columns=["target", "label", "buyers"])
            self._scores[key] = TargetCatalog(
                level=level,
                targets=frame["target"].astype(object).to_numpy(),
                labels=frame["label"].astype(object).to_numpy(),
                buyers=frame["buyers"].to_numpy(),
                product_map=pd.DataFrame({"product_id": [], "target_idx": []}),
                terms=pd.DataFrame({"target_idx": [], "term": []}),
            )
        return self._scores[key]

    def scores(self, level: str, target: str) -> pd.DataFrame:
        """customer_id, score, rank, percentile for every customer (cached)."""
        from workbench.models.interest import score_target

        key = (level, target)
        if key not in self._scores:
            self._scores[key] = score_target(self.run_dir, level, target)
        return self._scores[key]

    def members(
        self, level: str, target: str, min_score: float | None, top_share: float | None
    ) -> pd.DataFrame:
        """Customers above the score, or within the top share by rank."""
        frame = self.scores(level, target)
        if min_score is not None:
            keep = frame["score"] >= min_score
        else:
            keep = frame["rank"] <= math.ceil(float(top_share or 0) * len(frame))
        return frame.loc[keep, ["customer_id"]].reset_index(drop=True)


class TableInterest:
    """Scores from a top-k table (``interest.parquet``: customer_id, level, target, score).

    Used when the run has no ``interest_model/`` (and in tests). A customer outside a target's
    top k has no score for it and is taken to be below every listed one, so ``min_score`` and
    ``top_share`` are exact for scores inside the top-k lists.

    Parameters
    ----------
    table : pandas.DataFrame
        The top-k rows.
    n_customers : int
        Customers in the universe (``top_share`` is a share of them).
    """

    def __init__(self, table: pd.DataFrame, n_customers: int) -> None:
        self.table = table
        self.n_customers = n_customers

    def levels(self) -> list[str]:
        """Levels present in the table."""
        return sorted(self.table["level"].astype(str).unique())

    def _targets(self, level: str) -> list[str]:
        rows = self.table[self.table["level"] == level]
        return sorted(rows["target"].astype(str).unique())

    def unknown_target(self, level: str, target: str) -> str | None:
        """None when the target is listed; else a message with close matches."""
        if level not in self.levels():
            return f"level {level!r} is not in the interest table ({', '.join(self.levels())})"
        targets = self._targets(level)
        if target in targets:
            return None
        lower = {t.lower(): t for t in targets}
        if target.lower() in lower:
            return None
        close = difflib.get_close_matches(target, targets, n=5, cutoff=0.6)
        hint = f"close matches: {', '.join(repr(c) for c in close)}" if close else "no close match"
        return f"unknown {level} target {target!r} ({hint})"

    def members(
        self, level: str, target: str, min_score: float | None, top_share: float | None
    ) -> pd.DataFrame:
        """Customers above the score, or the top share of all customers by score."""
        rows = self.table[self.table["level"] == level]
        match = rows["target"].astype(str)
        if target not in set(match):
            match = match.str.lower()
            target = target.lower()
        rows = rows[match == target].sort_values("score", ascending=False, kind="stable")
        if min_score is not None:
            rows = rows[rows["score"] >= min_score]
        else:
            rows = rows.head(math.ceil(float(top_share or 0) * self.n_customers))
        return rows[["customer_id"]].drop_duplicates().reset_index(drop=True)


@dataclass
class SegmentData:
    """The tables a segment is evaluated on.

    Attributes
    ----------
    con : BaseBackend
        The ibis connection every table lives in.
    customers : ibis.Table
        One row per customer (customers.parquet columns): the universe of every segment.
    as_of : datetime
        Timezone-aware instant windows are relative to (end of the ``as_of`` day).
    horizon_days : int
        The run's horizon (names ``predicted_clv_<h>d`` and ``expected_orders_<h>d``).
    orders, products, events : ibis.Table, optional
        Canonical tables; conditions that need a missing one fail with a clear message.
    interest : InterestScores, optional
        Source of Interested-In members.
    """

    con: BaseBackend
    customers: ibis.Table
    as_of: datetime
    horizon_days: int = 90
    orders: ibis.Table | None = None
    products: ibis.Table | None = None
    events: ibis.Table | None = None
    interest: InterestScores | None = None
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_run(
        cls, con: BaseBackend, run_dir: Path, as_of: datetime, horizon_days: int
    ) -> SegmentData:
        """Read a run folder: customers.parquet, data/*.parquet and the interest scores."""
        run_dir = Path(run_dir)

        def table(path: Path) -> ibis.Table | None:
            return engine.read_parquet(con, path) if path.exists() else None

        customers = engine.read_parquet(con, run_dir / "customers.parquet")
        data = cls(
            con=con,
            customers=customers,
            as_of=as_of,
            horizon_days=horizon_days,
            orders=table(run_dir / "data" / "orders.parquet"),
            products=table(run_dir / "data" / "products.parquet"),
            events=table(run_dir / "data" / "events.parquet"),
        )
        data.interest = interest_source(run_dir, lambda: data.n_customers)
        return data

    @classmethod
    def from_context(cls, ctx: RunContext) -> SegmentData:
        """The data of a notebook's run context."""
        return cls.from_run(ctx.con, ctx.run_dir, ctx.as_of, ctx.params.models.horizon_days)

    @property
    def n_customers(self) -> int:
        """Customers in the universe."""
        if "n" not in self._cache:
            self._cache["n"] = int(self.customers.count().to_pyarrow().as_py())
        return self._cache["n"]

    def column(self, name: str) -> str:
        """The customer-table column for a name (``predicted_clv`` -> ``predicted_clv_90d``)."""
        if name in ("predicted_clv", "expected_orders"):
            return f"{name}_{self.horizon_days}d"
        return name

    def with_as_of(self, as_of: datetime, customers: ibis.Table) -> SegmentData:
        """The same sources seen from another instant (for growth over time)."""
        return SegmentData(
            con=self.con,
            customers=customers,
            as_of=as_of,
            horizon_days=self.horizon_days,
            orders=self.orders,
            products=self.products,
            events=self.events,
            interest=self.interest,
            _cache={k: v for k, v in self._cache.items() if k != "n"},
        )

    def product_attributes(self) -> ibis.Table | None:
        """product_id and every other product column prefixed ``attr__`` (None: no products)."""
        if self.products is None:
            return None
        cols = [c for c in self.products.columns if c != "product_id"]
        return self.products.select(
            _pid=self.products.product_id, **{f"{ATTR}{c}": self.products[c] for c in cols}
        )

    def _with_products(self, table: ibis.Table) -> ibis.Table:
        attrs = self.product_attributes()
        if attrs is None:
            extra = {
                f"{ATTR}{short}": table[long] if long in table.columns else ibis.null("string")
                for short, long in PRODUCT_BASICS.items()
            }
            return table.mutate(**extra)
        joined = table.left_join(attrs, table.product_id == attrs._pid).drop("_pid")
        fills = {
            f"{ATTR}{short}": joined[f"{ATTR}{short}"].fill_null(joined[long])
            for short, long in PRODUCT_BASICS.items()
            if long in joined.columns and f"{ATTR}{short}" in joined.columns
        }
        missing = {
            f"{ATTR}{short}": (joined[long] if long in joined.columns else ibis.null("string"))
            for short, long in PRODUCT_BASICS.items()
            if f"{ATTR}{short}" not in joined.columns
        }
        return joined.mutate(**fills, **missing)

    def purchase_lines(self) -> ibis.Table:
        """Non-return order lines up to ``as_of`` with product attributes (``attr__*``)."""
        if self.orders is None:
            raise LookupError("orders")
        lines = self.orders.filter(
            (self.orders.ordered_at <= ts_literal(self.as_of)) & ~self.orders.is_return
        )
        return self._with_products(lines)

    def web_events(self, with_products: bool = False) -> ibis.Table:
        """Web events up to ``as_of`` (with product attributes when asked)."""
        if self.events is None:
            raise LookupError("events")
        events = self.events.filter(self.events.occurred_at <= ts_literal(self.as_of))
        return self._with_products(events) if with_products else events


def interest_source(run_dir: Path, n_customers: Any) -> InterestScores | None:
    """The run's interest scores: the fitted model, else the top-k table, else None.

    Parameters
    ----------
    run_dir : Path
        The run folder.
    n_customers : callable
        Returns the number of customers (only called for the top-k fallback).
    """
    run_dir = Path(run_dir)
    if (run_dir / "interest_model" / "customers.parquet").exists():
        return ModelInterest(run_dir)
    path = run_dir / "interest.parquet"
    if path.exists():
        log.warning(
            "no interest_model/ in %s: Interested-In conditions use the top-k table only", run_dir
        )
        return TableInterest(pd.read_parquet(path), n_customers())
    return None
