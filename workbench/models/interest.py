"""Interested In: what each customer is likely to buy next, per product, category, brand, keyword.

For every level that exists in the data, an :class:`~workbench.models.interest_model.InterestModel`
blends the customer's own purchases (time-decayed, repeat cadence), web events (cart > click >
search > view; searches matched to targets by terms), what similar customers bought (item-item
EASE / cosine) and the target's popularity (the fallback for customers without history), and
calibrates the blend into ``P(customer buys target within models.horizon_days)`` on a held-out
period before ``as_of``.

Outputs in the run folder:

- ``interest.parquet``: the ``interest.top_k`` most likely targets per customer and level
  (``customer_id, level, target, score, rank``);
- ``interest_model/``: what is needed to score *any* target for *every* customer
  (:func:`score_target`), so segments can say "interested in X with score >= s" or "the top N%
  most likely".

Public API: :func:`fit_interest`, :func:`score_target`, :func:`top_k_table`.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from workbench import engine
from workbench.errors import WorkbenchError
from workbench.models import interest_data as idata
from workbench.models import interest_parts
from workbench.models import interest_store as store
from workbench.models.interest_catalog import (
    ProductBuyers,
    TargetCatalog,
    available_levels,
    build_catalog,
    close_matches,
    read_products,
)
from workbench.models.interest_model import InterestModel
from workbench.models.interest_terms import match_queries

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from workbench.params import Params

log = logging.getLogger(__name__)

OUTPUT = "interest.parquet"
#: Largest dense customers x targets block scored at once in the top-k table.
BLOCK_CELLS = 20_000_000
OUTPUT_SCHEMA = interest_parts.OUTPUT_SCHEMA


class InterestTargetError(WorkbenchError):
    """A level or target that the saved Interested-In model does not know."""


def resolve_levels(requested: Sequence[str], products: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Requested levels that exist in the data, and those skipped (no such product attribute)."""
    have = available_levels(products)
    return [lvl for lvl in requested if lvl in have], [lvl for lvl in requested if lvl not in have]


def prepare_level(
    source: idata.InterestSource,
    products: pd.DataFrame,
    level: str,
    as_of: datetime,
    shared: idata.Shared | None = None,
) -> tuple[TargetCatalog, pd.DataFrame | None]:
    """The level's targets and its search-query matches, both from data up to ``as_of``.

    ``shared`` (one per ``source``) keeps what every level reads alike, the purchase pairs and
    the distinct search queries, so that the levels of a fit read them once.
    """
    shared = idata.Shared() if shared is None else shared
    buyers = shared.get(("buyers", as_of), lambda: ProductBuyers.compute(source.sales, as_of))
    catalog = build_catalog(level, products, source.sales, as_of, buyers=buyers)
    query_map = None
    if source.events is not None and "query" in source.events.columns:
        queries = shared.get(("queries", as_of), lambda: idata.search_queries(source.events, as_of))
        query_map = match_queries(queries, catalog.terms, catalog.size, popularity=catalog.buyers)
    return catalog, query_map


def iter_fits(
    source: idata.InterestSource,
    levels: Sequence[str],
    as_of: datetime,
    horizon_days: int,
    customers: pa.Array,
    *,
    known: np.ndarray | None = None,
    model_params: Mapping[str, Any] | None = None,
    progress: bool = False,
    fit_source: idata.InterestSource | None = None,
) -> Iterator[tuple[str, InterestModel]]:
    """Fit one :class:`InterestModel` per level as of ``as_of``, yielding each when fitted.

    A caller that saves or evaluates each model and then drops it holds one level's model at
    a time (at 1M customers the product level's alone is several GB). The targets and search
    matches come from ``source``; the models aggregate ``fit_source`` (default ``source``),
    e.g. ``source.restricted_to(customers)`` when ``customers`` is a sample: the fit is the
    same, its aggregates only read the sample's rows. Nothing later than ``as_of`` is read.
    The level-independent aggregates (known customers, customer activity) are computed once
    and shared by the levels (:class:`~workbench.models.interest_data.Shared`).
    """
    fit_source = source if fit_source is None else fit_source
    products = read_products(source.products, source.sales)
    shared = idata.Shared()  # what every level's fit reads alike, aggregated once
    targets = idata.Shared()  # and what their catalogues read alike (of ``source``)
    for i, level in enumerate(levels):
        # the last fit frees each shared aggregate once it has read it (at 3M customers the
        # purchase and browsing bases are several GB, held through its largest snapshot)
        shared.last_use = targets.last_use = i == len(levels) - 1
        catalog, query_map = prepare_level(source, products, level, as_of, targets)
        if catalog.size == 0:
            log.warning("%s level skipped: no target has enough buyers", level)
            continue
        model = InterestModel(level, horizon_days, **dict(model_params or {}))
        yield (
            level,
            model.fit(
                fit_source,
                catalog,
                customers,
                as_of,
                query_map=query_map,
                known=known,
                progress=progress,
                shared=shared,
            ),
        )
        del model


def fit_levels(
    source: idata.InterestSource,
    levels: Sequence[str],
    as_of: datetime,
    horizon_days: int,
    customers: pa.Array,
    **kwargs: Any,
) -> dict[str, InterestModel]:
    """Every level's model of :func:`iter_fits` at once (keyword arguments as there)."""
    return dict(iter_fits(source, levels, as_of, horizon_days, customers, **kwargs))


def fit_interest(
    params: Params,
    run_dir: Path,
    con: BaseBackend | None = None,
    *,
    as_of: date | datetime | None = None,
    model_params: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit every configured level, save ``interest_model/`` and write ``interest.parquet``.

    Parameters
    ----------
    params : Params
        Run parameters (``interest.levels``, ``interest.top_k``, ``models.horizon_days``).
    run_dir : Path
        Run folder holding ``data/*.parquet`` (written by ingest).
    con : ibis backend, optional
        Connection (default: the one ``params.engine`` asks for).
    as_of : date or datetime, optional
        Default ``params.as_of``, else the day of the last purchase in the data. A date means
        the end of that UTC day (as ``ctx.as_of`` in the notebooks).
    model_params : mapping, optional
        Extra :class:`InterestModel` parameters (e.g. ``calibration_customers``).
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        Per level: targets, customers, fit diagnostics; plus ``skipped`` levels and ``as_of``.
    """
    run_dir = Path(run_dir)
    con = con if con is not None else engine.connect_for(params, run_dir / "work")
    source = idata.InterestSource.from_run_dir(con, run_dir)
    chosen = as_of if as_of is not None else params.as_of
    when = idata.instant(chosen if chosen is not None else source.last_order_at().date())
    products = read_products(source.products, source.sales)
    levels, skipped = resolve_levels(params.interest.levels, products)
    for lvl in skipped:
        log.warning("interest level %r skipped: the products carry no such attribute", lvl)
    customers = idata.customer_ids(source, when, include_undated=True)
    folder = run_dir / store.MODEL_DIR
    # saved into a side folder that replaces the old model only once every level is saved, so
    # a failed fit leaves the previous model in place
    partial = run_dir / f".{store.MODEL_DIR}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    summary: dict[str, Any] = {"as_of": when.isoformat(), "skipped": skipped, "levels": {}}
    fits = iter_fits(
        source,
        levels,
        when,
        params.models.horizon_days,
        customers,
        model_params=model_params,
        progress=progress,
    )
    scratch = run_dir / f".{OUTPUT}.parts"
    shutil.rmtree(scratch, ignore_errors=True)
    k = params.interest.top_k
    background = _background_scoring(con, partial, k, scratch, params, len(customers), levels)
    try:
        for level, model in fits:  # saved once fitted: one level's model in memory at a time
            if not (partial / "customers.parquet").exists():
                store.save_customers(partial, customers, model.snapshot_.customer)
            store.save_model(model, partial)
            summary["levels"][level] = {
                "targets": model.catalog_.size,
                "customers": len(customers),
                "profile_entries": model.snapshot_.profile.nnz,
                **model.fit_info_,
            }
            del model
            if background is not None:  # its top-k is scored while the next level is fitted
                background.add(interest_parts.plan([level], len(customers)))
        started = time.perf_counter()
        if background is not None:
            pids = background.finish(progress)
            log.info("top-%d parts scored alongside the fits in processes %s", k, pids)
    except BaseException:
        if background is not None:
            background.close()
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    if folder.exists():
        shutil.rmtree(folder)
    if partial.exists():
        partial.rename(folder)
    if background is not None and background.parts:
        interest_parts.stitch(
            folder, store.levels_in(folder), background.parts, scratch, run_dir / OUTPUT
        )
    else:  # on Spark, in this process, or nothing fitted (top_k_table says so)
        top_k_table(
            run_dir,
            top_k=k,
            rebuild=True,
            progress=progress,
            con=con,
            workers=params.interest.scoring_workers,
        )
    # the top-k time after the last fit (with background scoring, most of it overlapped them)
    summary["top_k_seconds"] = round(time.perf_counter() - started, 1)
    return summary


def _background_scoring(
    con: BaseBackend,
    folder: Path,
    k: int,
    scratch: Path,
    params: Params,
    n_customers: int,
    levels: Sequence[str],
) -> interest_parts.BackgroundParts | None:
    """Worker processes that score each level's top-k while the next is fitted, or None.

    Used on DuckDB when the table is large enough for worker processes (as
    :func:`interest_parts.score_parts` decides) and there are at least two: one scores
    alongside the fits, all of them once the fits are done. On Spark the executors score the
    table after the fits (:func:`top_k_table`).
    """
    if con.name == "pyspark":
        return None
    workers = params.interest.scoring_workers or interest_parts.default_workers()
    if workers < 2 or n_customers * len(levels) < interest_parts.MIN_PARALLEL_ROWS:
        return None
    return interest_parts.BackgroundParts(
        folder, k, BLOCK_CELLS, scratch, workers, lanes_during=workers - 1
    )


def _folder(run_dir: Path) -> Path:
    folder = Path(run_dir) / store.MODEL_DIR
    if not (folder / "customers.parquet").exists():
        raise InterestTargetError(
            "no fitted Interested-In model in this run folder",
            where=str(folder),
            fix="run the interest step first (notebooks/02_interest.ipynb or fit_interest)",
        )
    return folder


def top_k_table(
    run_dir: Path,
    top_k: int | None = None,
    *,
    rebuild: bool = False,
    block_cells: int = BLOCK_CELLS,
    progress: bool = False,
    con: BaseBackend | None = None,
    workers: int | None = None,
) -> Path:
    """The per-customer top-k table ``run_dir/interest.parquet`` (built when missing).

    Parameters
    ----------
    run_dir : Path
        Run folder with ``interest_model/``.
    top_k : int, optional
        Targets per customer and level (default: the ``top_k`` it was last built with, else 10).
    rebuild : bool
        Rebuild even when the file exists.
    block_cells : int
        Largest dense customers x targets block scored at once.
    progress : bool
        Show progress bars.
    con : ibis backend, optional
        On a PySpark connection the customers are scored on the executors.
    workers : int, optional
        Scoring processes on this machine otherwise (see
        :func:`workbench.models.interest_parts.score_parts`).

    Returns
    -------
    Path
        ``run_dir/interest.parquet`` with columns ``customer_id, level, target, score, rank``
        (rank 1 = most likely; scores are calibrated probabilities).

    Notes
    -----
    The same pass stores, per level, each customer's expected number of targets bought within
    the horizon (the sum of the probabilities over all targets), which :func:`score_target`
    turns into the ``affinity`` column.
    """
    run_dir = Path(run_dir)
    out = run_dir / OUTPUT
    if out.exists() and not rebuild and top_k is None:
        return out
    folder = _folder(run_dir)
    k = top_k or 10
    levels = store.levels_in(folder)
    n = pq.ParquetFile(folder / "customers.parquet").metadata.num_rows
    parts = interest_parts.plan(levels, n)
    scratch = run_dir / f".{OUTPUT}.parts"
    shutil.rmtree(scratch, ignore_errors=True)
    done = interest_parts.score_parts(
        folder, parts, k, block_cells, scratch, con=con, workers=workers, progress=progress
    )
    log.info("top-%d table: %d parts scored in %s %s", k, len(parts), done["where"], done["pids"])
    interest_parts.stitch(folder, levels, parts, scratch, out)
    return out


def resolve_target(catalog: TargetCatalog, level: str, target: str) -> int:
    """Index of ``target`` in the catalogue: exact key, else a unique case-insensitive key or label.

    Raises
    ------
    InterestTargetError
        With close matches, when the target is unknown or ambiguous.
    """
    keys = pd.Index(catalog.targets.astype(str))
    if target in keys:
        return int(keys.get_loc(target))
    low = str(target).strip().lower()
    by_key = np.flatnonzero(keys.str.lower() == low)
    if len(by_key) == 1:
        return int(by_key[0])
    by_label = np.flatnonzero(pd.Index(catalog.labels.astype(str)).str.lower() == low)
    if len(by_label) == 1:
        return int(by_label[0])
    matches = close_matches(catalog, str(target))
    hint = f"close matches: {', '.join(repr(m) for m in matches)}" if matches else "no close match"
    raise InterestTargetError(
        f"unknown {level} target {target!r} ({hint})",
        where=f"interest level {level!r}",
        fix="use a target exactly as in interest.parquet / the products table; targets need at "
        "least one buyer before as_of",
    )


def score_target(
    run_dir: Path, level: str, target: str, *, block_rows: int = 200_000
) -> pd.DataFrame:
    """Rank every customer by the probability of buying one target within the horizon.

    Parameters
    ----------
    run_dir : Path
        Run folder with ``interest_model/``.
    level : str
        ``product``, ``category``, ``brand`` or ``keyword``.
    target : str
        Target key (product id, category path such as ``"Home > Kitchen"``, brand, keyword);
        a unique product name or a case-insensitive key is accepted too.
    block_rows : int
        Customers scored per block (memory grows with it, not with the number of targets).

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``score`` (calibrated probability), ``rank`` (1 = most likely, ties
        broken by the model's logit, then customer order) and ``percentile`` (in (0, 100]:
        100 = most likely; "top 5%" is ``percentile > 95``), sorted by rank; plus
        ``affinity``: the share of the customer's expected purchases at this level that go to
        the target (interest whatever the customer's overall activity; 0..1).

    Raises
    ------
    InterestTargetError
        When the level was not fitted or the target is unknown (the message lists close matches).
    """
    folder = _folder(Path(run_dir))
    fitted = store.levels_in(folder)
    if level not in fitted:
        raise InterestTargetError(
            f"level {level!r} was not fitted in this run (fitted: {', '.join(fitted) or 'none'})",
            where=str(folder),
            fix="pick a fitted level or add it to interest.levels",
        )
    model = store.load_model(folder, level)
    col = resolve_target(model.catalog_, level, target)
    customers = store.load_customers(folder)
    n = customers.num_rows
    logit = np.empty(n, np.float32)
    for start, prof, cust in store.iter_chunks(folder, level, block_rows, customers):
        logit[start : start + prof.n_rows] = model.logit_block(prof, cust, [col])[:, 0]
    order = np.argsort(-logit, kind="stable")
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(1, n + 1)
    score = model.blender_.probability(logit).astype(np.float64)
    frame = pd.DataFrame(
        {
            "customer_id": customers["customer_id"].to_pandas(),
            "score": score,
            "rank": rank,
            "percentile": 100.0 * (n - rank + 1) / n,
        }
    )
    expected_path = folder / level / store.EXPECTED
    if expected_path.exists():
        expected = np.load(expected_path)
        frame["affinity"] = np.where(expected > 0, score / np.maximum(expected, 1e-12), 0.0)
    return frame.iloc[order].reset_index(drop=True)
