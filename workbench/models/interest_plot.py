"""Figures of the Interested-In model (seaborn): evaluation, score distribution, top targets.

Each ``plot_*`` function returns a matplotlib Figure and never shows it; :func:`plot_evaluation`
also writes the evaluation figure to a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from workbench.models.interest_summary import TopKSummary

SUBSET_LABELS = {"overall": "all pairs", "new_to_target": "new to target"}


def evaluation_frame(result: Mapping[str, Any]) -> pd.DataFrame:
    """Long table: level, scorer, subset and every metric (one row per combination)."""
    rows = []
    for level, res in result["levels"].items():
        for scorer, subsets in res["scorers"].items():
            for subset, values in subsets.items():
                rows.append(
                    {"level": level, "scorer": scorer, "subset": SUBSET_LABELS[subset], **values}
                )
    return pd.DataFrame(rows)


def evaluation_figure(result: Mapping[str, Any]) -> Figure:
    """Per level: ROC AUC and lift in the top 5% per scorer, and the model's reliability curve."""
    data = evaluation_frame(result)
    levels = list(result["levels"])
    fig, axes = plt.subplots(len(levels), 3, figsize=(14, 3.4 * len(levels)), squeeze=False)
    for i, level in enumerate(levels):
        sel = data[data["level"] == level]
        for ax, metric, title in (
            (axes[i, 0], "auc", "ROC AUC per target"),
            (axes[i, 1], "lift@5%", "lift in the top 5% of customers"),
        ):
            sns.barplot(sel, x="scorer", y=metric, hue="subset", ax=ax)
            ax.set_title(f"{level}: {title}")
            ax.set_xlabel("")
            ax.tick_params(axis="x", rotation=25)
            ax.legend(title=None, fontsize="small")
        axes[i, 0].axhline(0.5, color="grey", lw=0.8, ls="--")
        axes[i, 1].axhline(1.0, color="grey", lw=0.8, ls="--")
        ax = axes[i, 2]
        curves = result["levels"][level].get("reliability", {}).get("model", {})
        top = 0.0
        for subset, curve in curves.items():
            frame = pd.DataFrame(curve)
            if frame.empty:
                continue
            ax.plot(
                frame["mean_predicted"], frame["observed"], marker="o", label=SUBSET_LABELS[subset]
            )
            top = max(top, frame["mean_predicted"].max(), frame["observed"].max())
        ax.plot([0, top or 1], [0, top or 1], color="grey", lw=0.8, ls="--")
        ax.set_title(f"{level}: calibration (deciles of predictions)")
        ax.set_xlabel("predicted probability")
        ax.set_ylabel("observed rate")
        ax.legend(fontsize="small")
    fig.suptitle(
        f"Interested In, cutoff {str(result['cutoff'])[:10]}, horizon {result['horizon_days']} days"
    )
    fig.tight_layout()
    return fig


def plot_evaluation(result: Mapping[str, Any], path: Path, dpi: int = 110) -> Path:
    """Write :func:`evaluation_figure` as PNG and return the path."""
    fig = evaluation_figure(result)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_score_distribution(summary: TopKSummary) -> Figure:
    """Distribution of the calibrated scores of each customer's top target and of all top-k rows.

    Drawn from the pre-binned counts of :func:`~workbench.models.interest_summary.summarise_top_k`
    (80 weighted points per level instead of every top-k row).
    """
    levels = summary.levels
    fig, axes = plt.subplots(1, len(levels), figsize=(4.5 * len(levels), 3.4), squeeze=False)
    for ax, level in zip(axes[0], levels, strict=True):
        sns.histplot(
            summary.level_histogram(level),
            x="score",
            weights="customers",
            hue="which",
            bins=list(summary.edges[level]),
            element="step",
            ax=ax,
            log_scale=(False, True),
        )
        ax.set_title(f"{level}: P(buy within horizon)")
        ax.set_xlabel("calibrated score")
    fig.tight_layout()
    return fig


def plot_top_targets(
    summary: TopKSummary, labels: Mapping[str, Mapping[str, str]] | None = None
) -> Figure:
    """Targets most often in customers' top 3, per level (from :class:`TopKSummary`)."""
    levels = summary.levels
    n = max(1, int(summary.top_targets.groupby("level").size().max()) if levels else 1)
    fig, axes = plt.subplots(
        1, len(levels), figsize=(5.5 * len(levels), 0.3 * n + 1.5), squeeze=False
    )
    for ax, level in zip(axes[0], levels, strict=True):
        counts = summary.top_targets[summary.top_targets["level"] == level].copy()
        names = (labels or {}).get(level, {})
        counts["name"] = [
            f"{t} {names[t][:28]}" if t in names and names[t] != t else t for t in counts["target"]
        ]
        sns.barplot(counts, y="name", x="customers", ax=ax, color="tab:blue")
        ax.set_title(f"{level}: most frequent top-3 targets")
        ax.set_ylabel("")
        ax.set_xlabel("customers with the target in their top 3")
    fig.tight_layout()
    return fig
