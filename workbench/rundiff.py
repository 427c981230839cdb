"""Past runs: list them, and say what changed between two (label moves, segment membership).

Used by ``workbench runs``, ``workbench diff RUN_A RUN_B`` and the report ("since the
previous run").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from workbench import config
from workbench.errors import WorkbenchError
from workbench.notebook import read_json

LABELS = ("life_cycle", "importance", "price_sensitivity", "behaviour_trend")
NEW, GONE = "(new)", "(gone)"


def list_runs(out_root: Path | None = None) -> pd.DataFrame:
    """Run folders under ``out_root`` (and ``failed/``) with status, period and timings."""
    out_root = Path(out_root or config.OUTPUTS_DIR)
    rows = []
    folders = [p for p in out_root.glob("*/") if not p.name.startswith((".", "lab", "failed"))]
    folders += list((out_root / "failed").glob("*/"))
    for folder in folders:
        manifest = read_json(folder / config.MANIFEST)
        if not manifest:
            continue
        steps = manifest.get("steps", [])
        failed = [s["name"] for s in steps if s.get("status") == "failed"]
        rows.append(
            {
                "run": folder.name if folder.parent == out_root else f"failed/{folder.name}",
                "status": manifest.get("status"),
                "as_of": manifest.get("as_of"),
                "engine": manifest.get("engine"),
                "started_at": manifest.get("started_at"),
                "seconds": manifest.get("seconds"),
                "steps": len(steps),
                "failed_step": failed[0] if failed else None,
            }
        )
    columns = ["run", "status", "as_of", "engine", "started_at", "seconds", "steps", "failed_step"]
    return pd.DataFrame(rows, columns=columns).sort_values("started_at", ignore_index=True)


def previous_run(run_dir: Path, run_name: str, as_of: str) -> Path | None:
    """The latest succeeded run of ``run_name`` before ``as_of`` (ISO date), next to ``run_dir``.

    ``run_dir`` may be the temporary folder of a run in progress: its siblings are the
    published runs.
    """
    best: tuple[str, Path] | None = None
    for manifest in run_dir.parent.glob(f"{run_name}_*/{config.MANIFEST}"):
        info = read_json(manifest)
        other = info.get("as_of") or ""
        if manifest.parent == run_dir or info.get("status") != "succeeded" or other >= as_of:
            continue
        if best is None or other > best[0]:
            best = (other, manifest.parent)
    return best[1] if best else None


def resolve_run(ref: str | Path, out_root: Path | None = None) -> Path:
    """A run folder from a run id (``demo_2011-12-09``) or a path."""
    out_root = Path(out_root or config.OUTPUTS_DIR)
    for candidate in (Path(ref), out_root / str(ref)):
        if (candidate / config.MANIFEST).is_file():
            return candidate
    known = ", ".join(list_runs(out_root)["run"].tolist()[-8:]) or "none"
    raise WorkbenchError(
        f"no run folder {str(ref)!r}",
        where=str(out_root),
        fix=f"pass a run id or folder; recent runs: {known} (see `workbench runs`)",
    )


def _customers(run_dir: Path) -> pd.DataFrame:
    path = run_dir / "customers.parquet"
    if not path.exists():
        raise WorkbenchError(
            "the run has no customers.parquet", where=str(run_dir), fix="use a finished run"
        )
    cols = ["customer_id", *LABELS]
    df = pd.read_parquet(path)
    return df[[c for c in cols if c in df.columns]]


def label_flows(before: pd.DataFrame, after: pd.DataFrame, label: str) -> pd.DataFrame:
    """Customers per (label before, label after); ``(new)`` / ``(gone)`` for entries and exits.

    Parameters
    ----------
    before, after : DataFrame
        customer_id and ``label`` columns of the earlier and later run.
    label : str
        The label column, e.g. ``life_cycle``.

    Returns
    -------
    DataFrame
        Columns ``from``, ``to``, ``customers``, largest flows first.
    """
    merged = before[["customer_id", label]].merge(
        after[["customer_id", label]], on="customer_id", how="outer", suffixes=("_a", "_b")
    )
    flows = (
        merged.assign(
            **{
                "from": merged[f"{label}_a"].astype(object).fillna(NEW),
                "to": merged[f"{label}_b"].astype(object).fillna(GONE),
            }
        )
        .groupby(["from", "to"], as_index=False)
        .size()
        .rename(columns={"size": "customers"})
    )
    return flows.sort_values("customers", ascending=False, ignore_index=True)


def _membership(run_dir: Path) -> pd.DataFrame:
    path = run_dir / "segments" / "membership.parquet"
    if not path.exists():
        return pd.DataFrame(columns=["segment", "customer_id"])
    return pd.read_parquet(path, columns=["segment", "customer_id"])


def membership_changes(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Per segment: members before and after, added, removed, stayed."""
    rows = []
    for segment in sorted(set(before.segment) | set(after.segment)):
        a = set(before.loc[before.segment == segment, "customer_id"])
        b = set(after.loc[after.segment == segment, "customer_id"])
        rows.append(
            {
                "segment": segment,
                "before": len(a),
                "after": len(b),
                "added": len(b - a),
                "removed": len(a - b),
                "stayed": len(a & b),
            }
        )
    columns = ["segment", "before", "after", "added", "removed", "stayed"]
    return pd.DataFrame(rows, columns=columns)


def diff_runs(run_a: Path, run_b: Path) -> dict[str, Any]:
    """What changed from ``run_a`` to ``run_b``.

    Returns
    -------
    dict
        ``customers`` (counts), ``labels`` (label -> flows DataFrame), ``segments``
        (membership changes DataFrame).
    """
    a, b = _customers(run_a), _customers(run_b)
    labels = {lab: label_flows(a, b, lab) for lab in LABELS if lab in a and lab in b}
    ids_a, ids_b = set(a.customer_id), set(b.customer_id)
    return {
        "runs": [run_a.name, run_b.name],
        "customers": {
            "before": len(ids_a),
            "after": len(ids_b),
            "new": len(ids_b - ids_a),
            "gone": len(ids_a - ids_b),
        },
        "labels": labels,
        "segments": membership_changes(_membership(run_a), _membership(run_b)),
    }


def format_diff(diff: dict[str, Any], top: int = 12) -> str:
    """A readable text version of :func:`diff_runs`."""
    c = diff["customers"]
    lines = [
        f"{diff['runs'][0]} -> {diff['runs'][1]}",
        f"customers: {c['before']:,} -> {c['after']:,} ({c['new']:,} new, {c['gone']:,} gone)",
    ]
    for label, flows in diff["labels"].items():
        moved = flows[flows["from"] != flows["to"]]
        lines.append(f"{label}: {int(moved.customers.sum()):,} customers changed label")
        for row in moved.head(top).itertuples(index=False):
            lines.append(f"    {row[0]:>15} -> {row[1]:<15} {row[2]:>8,}")
    seg = diff["segments"]
    if len(seg):
        lines.append("segments (before -> after: +added -removed):")
        for row in seg.itertuples(index=False):
            lines.append(
                f"    {row.segment:<32} {row.before:>8,} -> {row.after:<8,} "
                f"+{row.added:,} -{row.removed:,}"
            )
    return "\n".join(lines)
