"""Tables of the report, each computed from a file of the run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from workbench import config
from workbench.notebook import read_json

LABEL_ORDER = {
    "life_cycle": ["just_ordered", "active", "slipping_away", "lost"],
    "importance": ["vip", "loyal", "frequent", "one_time"],
    "price_sensitivity": ["cheap", "average", "expensive"],
    "behaviour_trend": ["rising", "stable", "falling"],
}


def styled(table: pd.DataFrame, percent: tuple[str, ...] = (), decimals: int = 2) -> Any:
    """A table ready to display: no index, text left-aligned, numbers formatted.

    Integers get thousands separators, floats ``decimals`` places, ``percent`` columns a %.
    """
    formats: dict[str, Any] = {}
    for col in table.columns:
        if col in percent:
            formats[col] = "{:.1%}"
        elif pd.api.types.is_integer_dtype(table[col]):
            formats[col] = "{:,}"
        elif pd.api.types.is_float_dtype(table[col]):
            formats[col] = f"{{:,.{decimals}f}}"
    text = [
        c
        for c in table.columns
        if table[c].dtype == object or pd.api.types.is_string_dtype(table[c])
    ]
    return (
        table.style.format(formats, na_rep="-")
        .hide(axis="index")
        .set_properties(subset=text, **{"text-align": "left"})
        .set_table_styles([{"selector": "th", "props": [("text-align", "left")]}])
    )


def headline_table(head: dict[str, Any], currency: str) -> pd.DataFrame:
    """The headline figures as rows: this window, the one before, and the change."""
    names = {
        "active_customers": "active customers (ordered in the window)",
        "orders": "orders",
        "net_revenue": f"net revenue ({currency})",
        "aov": f"average order value ({currency})",
        "orders_per_active_customer": "orders per active customer",
    }
    rows = []
    for key, name in names.items():
        growth = head["growth"].get(key)
        rows.append(
            {
                "figure": name,
                f"last {head['window_days']} days": head["current"][key],
                f"{head['window_days']} days before": head["previous"][key],
                "change": f"{growth:+.1%}" if growth is not None else "n/a",
            }
        )
    return pd.DataFrame(rows)


def label_distribution(metrics: dict[str, Any], label: str) -> pd.DataFrame:
    """Customers and revenue per label value (from ``metrics.json``), in a fixed order."""
    dist = metrics.get("labels", {}).get("distribution", {}).get(label, {})
    order = [v for v in LABEL_ORDER.get(label, []) if v in dist] + [
        v for v in dist if v not in LABEL_ORDER.get(label, [])
    ]
    return pd.DataFrame(
        [
            {
                label: value,
                "customers": dist[value]["customers"],
                "share of customers": dist[value]["share_customers"],
                "share of revenue": dist[value]["share_revenue"],
            }
            for value in order
        ]
    )


def _short(value: Any) -> str:
    """Floats to 4 significant digits for reading (metrics.json keeps full precision)."""
    if isinstance(value, float) and not isinstance(value, bool):
        return f"{value:.4g}"
    return str(value)


def threshold_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """The rule and data-driven thresholds behind every label."""
    rows = []
    for label, values in metrics.get("labels", {}).get("thresholds", {}).items():
        rule = values.get("rule", "")
        numbers = {
            k: v for k, v in values.items() if k != "rule" and isinstance(v, (int, float, str))
        }
        rows.append(
            {
                "label": label,
                "rule": rule,
                "thresholds": ", ".join(f"{k} = {_short(v)}" for k, v in numbers.items()),
            }
        )
    return pd.DataFrame(rows, columns=["label", "rule", "thresholds"])


def model_fit_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Fitted CLV models: method, parameters, log-likelihood, customers, warnings."""
    clv = metrics.get("clv", {})
    rows = []
    for key in ("bgnbd", "gamma_gamma"):
        fit = clv.get(key)
        if not fit:
            continue
        rows.append(
            {
                "model": {"bgnbd": "BG/NBD (repeat orders)", "gamma_gamma": "Gamma-Gamma (spend)"}[
                    key
                ],
                "method": fit.get("method"),
                "parameters": ", ".join(f"{k} = {v:.4g}" for k, v in fit.get("params", {}).items()),
                "log-likelihood": round(fit.get("log_likelihood", float("nan")), 2),
                "customers": fit.get("customers"),
                "rows fitted (weighted)": fit.get("weighted_rows"),
                "at boundary": ", ".join(fit.get("at_boundary", []) or []) or "-",
            }
        )
    return pd.DataFrame(rows)


def holdout_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Backtest inside the run: per Life Cycle label, who ordered in the following horizon."""
    hold = metrics.get("holdout", {})
    rows = []
    for value in LABEL_ORDER["life_cycle"]:
        rec = hold.get("life_cycle", {}).get(value)
        if rec:
            rows.append(
                {
                    "life_cycle at cutoff": value,
                    "customers": rec["customers"],
                    "ordered in horizon": rec["share_ordered"],
                    "predicted P(order)": rec["mean_p_order"],
                    "predicted orders": rec["predicted_orders"],
                    "actual orders": rec["actual_orders"],
                }
            )
    return pd.DataFrame(rows)


def holdout_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """Headline backtest numbers: cutoff, AUCs, predicted vs actual totals."""
    hold = metrics.get("holdout", {})
    totals = hold.get("totals", {})
    return {
        "cutoff": hold.get("cutoff"),
        "horizon_days": hold.get("horizon_days"),
        "auc_p_alive": hold.get("auc", {}).get("p_alive"),
        "auc_p_order": hold.get("auc", {}).get("p_order"),
        "auc_p_alive_repeat_buyers": hold.get("auc_repeat_buyers", {}).get("p_alive"),
        "orders_ratio": totals.get("orders_ratio"),
        "revenue_ratio": totals.get("revenue_ratio"),
        "life_cycle_monotonic": hold.get("life_cycle_monotonic"),
    }


def sync_table(run_dir: Path) -> pd.DataFrame:
    """Sync results per destination and segment, when the run was synced."""
    log = read_json(run_dir / "sync" / "sync_log.json")
    rows = log.get("results", []) if isinstance(log, dict) else []
    return pd.DataFrame(rows)


def run_steps(run_dir: Path) -> pd.DataFrame:
    """Steps of the run with their timings (from ``manifest.json`` when written)."""
    manifest = read_json(run_dir / config.MANIFEST)
    return pd.DataFrame(manifest.get("steps", []), columns=["name", "status", "seconds"])
