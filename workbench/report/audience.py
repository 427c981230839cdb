"""Report tables for segments and Interested In, each read from a file of the run folder.

The segments step writes ``segments/summary.csv`` and ``segments/analytics/*.parquet``; the
Interested-In step writes ``interest_eval.json``. Nothing here recomputes a figure: the
functions only select, rename and order what those files hold, so the report shows exactly
what the run computed (and what the tests of the analytics and evaluation check).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from workbench.models.interest_plot import SUBSET_LABELS
from workbench.notebook import read_json
from workbench.segments.outputs import ANALYTICS_DIR, SEGMENTS_DIR

__all__ = [
    "ANALYTICS",
    "BASELINES",
    "EVAL_METRICS",
    "analytics_table",
    "exported_files",
    "interest_table",
    "interest_verdict",
    "membership_changes",
    "segment_names",
    "segment_table",
]

#: Folder of the segment analytics tables in a run.
ANALYTICS = Path(ANALYTICS_DIR)
#: Interested-In scorers compared with the model, in the order the evaluation writes them
#: (``interest_eval.SCORERS`` after the model; not imported: it pulls in the model stack).
BASELINES = ("random", "heaviest_buyers", "bought_before", "popularity")
#: Metrics of the evaluation shown in the report.
EVAL_METRICS = ("auc", "average_precision", "lift@5%", "recall@10", "ndcg@10", "brier")
_SUMMARY_NAMES = {
    "segment": "segment",
    "customers": "customers",
    "share": "share of customers",
    "revenue_share": "share of revenue",
    "orders": "orders",
    "aov": "AOV",
    "order_frequency": "orders per customer",
    "avg_clv": "avg predicted CLV",
    "churn_risk": "avg churn risk",
    "avg_clv_vs_store": "CLV vs store",
    "churn_risk_vs_store": "churn risk vs store",
}
#: Columns of :func:`segment_table` shown as percentages.
SEGMENT_PERCENT = ("share of customers", "share of revenue", "avg churn risk")


def _summary(run_dir: Path) -> pd.DataFrame | None:
    path = Path(run_dir) / SEGMENTS_DIR / "summary.csv"
    if not path.exists():
        return None
    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"segment": str})


def segment_names(run_dir: Path) -> list[str]:
    """The run's segments in file order (from ``segments/summary.csv``; empty without it)."""
    summary = _summary(run_dir)
    if summary is None:
        return []
    return [str(s) for s in summary.loc[summary["scope"] == "segment", "segment"]]


def segment_table(run_dir: Path, currency: str = "") -> pd.DataFrame:
    """Every segment and the store (first row, "All customers") from ``summary.csv``.

    Parameters
    ----------
    run_dir : Path
        The run folder.
    currency : str
        Appended to the money column names.

    Returns
    -------
    pandas.DataFrame
        segment, customers, shares of customers and revenue, orders, AOV, orders per
        customer, average predicted CLV and churn risk, and CLV / churn risk vs the store.
        Empty when the run has no segments step.
    """
    summary = _summary(run_dir)
    if summary is None:
        return pd.DataFrame(columns=list(_SUMMARY_NAMES.values()))
    frame = summary[list(_SUMMARY_NAMES)].copy()
    frame.loc[summary["scope"] == "store", "segment"] = "All customers"
    names = dict(_SUMMARY_NAMES)
    if currency:
        names["aov"] = f"AOV ({currency})"
        names["avg_clv"] = f"avg predicted CLV ({currency})"
    frame["customers"] = frame["customers"].astype("int64")
    frame["orders"] = frame["orders"].astype("int64")
    return frame.rename(columns=names)


def analytics_table(run_dir: Path, name: str) -> pd.DataFrame | None:
    """One table of ``segments/analytics`` (active, growth, matrix, overlap, diff), or None."""
    path = Path(run_dir) / ANALYTICS / f"{name}.parquet"
    return pd.read_parquet(path) if path.exists() else None


def membership_changes(run_dir: Path) -> pd.DataFrame:
    """Per segment: members in the previous run and now, added, removed, stayed.

    Returns
    -------
    pandas.DataFrame
        Empty when the run has no diff table.
    """
    diff = analytics_table(run_dir, "diff")
    columns = ["segment", "previous", "current", "added", "removed", "stayed"]
    if diff is None:
        return pd.DataFrame(columns=columns)
    return diff[columns].reset_index(drop=True)


def exported_files(run_dir: Path) -> pd.DataFrame:
    """Member and export files of the run, with their rows and the segment's change.

    Every CSV under ``segments/`` (but the diff and analytics folders) and ``exports/`` is
    listed; ``rows`` is counted in the file, ``added`` / ``removed`` come from the
    membership diff of the segment the file holds.
    """
    run_dir = Path(run_dir)
    names = set(segment_names(run_dir))
    changes = membership_changes(run_dir).set_index("segment")
    rows = []
    for folder in (SEGMENTS_DIR, "exports"):
        base = run_dir / folder
        if not base.exists():
            continue
        for path in sorted(base.rglob("*.csv")):
            rel = path.relative_to(run_dir)
            if rel.parts[1] in {"diff", "analytics"} or path.name == "summary.csv":
                continue
            with open(path, "rb") as fh:
                lines = sum(1 for _ in fh)
            segment = path.stem if path.stem in names else ""
            change = changes.loc[segment] if segment in changes.index else None
            rows.append(
                {
                    "file": str(rel),
                    "segment": segment,
                    "rows": max(lines - 1, 0),
                    "added": int(change["added"]) if change is not None else None,
                    "removed": int(change["removed"]) if change is not None else None,
                }
            )
    frame = pd.DataFrame(rows, columns=["file", "segment", "rows", "added", "removed"])
    for col in ("added", "removed"):
        frame[col] = frame[col].astype("Int64")
    return frame


def _evaluation(run_dir: Path) -> dict[str, Any]:
    return read_json(Path(run_dir) / "interest_eval.json")


def interest_table(run_dir: Path) -> pd.DataFrame:
    """The Interested-In evaluation: per level, subset and scorer, the headline metrics.

    Returns
    -------
    pandas.DataFrame
        level, subset (all pairs / new to target), scorer (model first, then the
        baselines) and :data:`EVAL_METRICS`; empty when the run has no evaluation.
    """
    result = _evaluation(run_dir)
    rows = []
    for level, res in result.get("levels", {}).items():
        for subset, label in SUBSET_LABELS.items():
            for scorer in ("model", *BASELINES):
                values = res.get("scorers", {}).get(scorer, {}).get(subset)
                if values is None:
                    continue
                rows.append(
                    {
                        "level": level,
                        "subset": label,
                        "scorer": scorer,
                        **{m: values.get(m) for m in EVAL_METRICS},
                    }
                )
    return pd.DataFrame(rows, columns=["level", "subset", "scorer", *EVAL_METRICS])


def interest_verdict(run_dir: Path) -> pd.DataFrame:
    """Per level and subset: whether the model beats every baseline on AUC and lift@5%.

    Returns
    -------
    pandas.DataFrame
        level, subset, model AUC, best baseline AUC (and which), model lift@5%, best
        baseline lift@5%, and ``beats every baseline`` (both metrics strictly higher).
    """
    table = interest_table(run_dir)
    rows = []
    for (level, subset), part in table.groupby(["level", "subset"], sort=False):
        model = part[part["scorer"] == "model"]
        base = part[part["scorer"] != "model"]
        if model.empty or base.empty:
            continue
        m = model.iloc[0]
        best_auc = base.loc[base["auc"].astype(float).idxmax()]
        best_lift = base.loc[base["lift@5%"].astype(float).idxmax()]
        rows.append(
            {
                "level": level,
                "subset": subset,
                "model AUC": m["auc"],
                "best baseline AUC": best_auc["auc"],
                "baseline (AUC)": best_auc["scorer"],
                "model lift@5%": m["lift@5%"],
                "best baseline lift@5%": best_lift["lift@5%"],
                "baseline (lift)": best_lift["scorer"],
                "beats every baseline": bool(
                    m["auc"] > best_auc["auc"] and m["lift@5%"] > best_lift["lift@5%"]
                ),
            }
        )
    return pd.DataFrame(rows)
