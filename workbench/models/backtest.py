"""Backtest: ingest, fit every customer model as of a cutoff, compare with the next horizon.

``workbench backtest PARAMS --cutoff DATE [--out DIR]`` calls :func:`run_backtest`. The cutoff
is the end of that UTC day; the holdout is the ``params.models.horizon_days`` days after it.
Written to the output folder: ``data/*.parquet`` (the ingest), ``backtest.json`` (the metrics
returned) and ``backtest.png`` (Life Cycle shares and calibration by frequency).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
from tqdm.auto import tqdm

from workbench import config, engine
from workbench.errors import InputDataError
from workbench.models.evaluation import evaluate_holdout
from workbench.models.features import end_of_day

if TYPE_CHECKING:
    from workbench.params import Params

log = logging.getLogger(__name__)

BACKTEST_JSON = "backtest.json"
BACKTEST_FIGURE = "backtest.png"


def run_backtest(
    params: Params, cutoff: date, out_dir: Path, *, progress: bool = True
) -> dict[str, Any]:
    """Fit the customer models as of ``cutoff`` and score them on the following horizon.

    Parameters
    ----------
    params : Params
        Validated run parameters (sources, engine, ``models.horizon_days``).
    cutoff : date
        Last day the models see (UTC; orders up to the end of that day).
    out_dir : Path
        Folder for the ingested tables, ``backtest.json`` and ``backtest.png``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        The content of ``backtest.json``: ``cutoff``, ``horizon_days``,
        ``holdout_days_observed``, per Life Cycle label the share that ordered within the
        horizon (``life_cycle``, ``life_cycle_monotonic``), ``auc`` of p_alive and of
        1 - churn_risk for "orders again within the horizon", predicted vs actual repeat
        orders and revenue (``totals``, ``per_frequency``), ``model`` (fit diagnostics and
        label thresholds), ``timings`` (seconds).

    Raises
    ------
    InputDataError
        When the cutoff leaves no customer before it or no day of data after it.
    """
    from workbench.ingest.pipeline import ingest

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    horizon = params.models.horizon_days
    steps = tqdm(total=3, desc="backtest", unit="step", disable=not progress)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    con = engine.connect_for(params, out_dir / "work")
    summary = ingest(params, out_dir, con=con, progress=False)
    timings["ingest"] = round(time.perf_counter() - started, 2)
    steps.update()

    data = out_dir / config.RUN_DATA
    orders = engine.read_parquet(con, data / "orders.parquet")
    customers = _optional(con, data / "customers.parquet")
    events = _optional(con, data / "events.parquet")
    first, last = summary.get("first_order_at"), summary.get("last_order_at")
    if first and date.fromisoformat(first[:10]) > cutoff:
        raise InputDataError(
            f"the cutoff {cutoff} is before the first order ({first[:10]})",
            where="--cutoff",
            fix="choose a cutoff inside the order history",
        )
    if last and date.fromisoformat(last[:10]) <= cutoff:
        raise InputDataError(
            f"the cutoff {cutoff} leaves no data after it (last order {last[:10]})",
            where="--cutoff",
            fix=f"choose a cutoff at least {horizon} days before the last order",
        )

    started = time.perf_counter()
    evaluation = evaluate_holdout(
        orders, end_of_day(cutoff), horizon, customers=customers, events=events
    )
    timings["fit_and_score"] = round(time.perf_counter() - started, 2)
    steps.update()

    result = {
        **evaluation.metrics,
        "params": {"run_name": params.run_name, "engine": params.engine},
        "model": evaluation.models.metrics,
        "timings": timings,
    }
    (out_dir / BACKTEST_JSON).write_text(json.dumps(result, indent=2, default=str))
    from workbench.models.figures import plot_backtest

    fig = plot_backtest(result)
    fig.savefig(out_dir / BACKTEST_FIGURE, dpi=110)
    plt.close(fig)
    steps.update()
    steps.close()
    log.info(
        "backtest %s: AUC p_alive %s, P(order) %s; predicted/actual orders %s",
        cutoff,
        result["auc"]["p_alive"],
        result["auc"]["p_order"],
        result["totals"]["orders_ratio"],
    )
    return result


def _optional(con: Any, path: Path) -> Any:
    return engine.read_parquet(con, path) if path.exists() else None
