"""Compare the outputs of two run folders: the same data on two engines must give the same run.

Used by the engine parity test (DuckDB vs PySpark on the same params) and ``bench/pipeline.py``.
Labels, ids and counts must be identical; floating-point columns may differ by rounding only:
``atol`` for probabilities and ``rtol`` for money and other unbounded values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

__all__ = ["ParityReport", "compare_runs"]

#: Columns that are probabilities: compared with an absolute tolerance.
PROBABILITIES = ("p_alive", "churn_risk", "score")


@dataclass
class ParityReport:
    """Differences between two runs (empty ``mismatches`` = the same outputs).

    Attributes
    ----------
    mismatches : list of str
        One line per differing file or column, saying what differs and by how much.
    checked : dict
        Rows compared per file.
    max_abs_diff : dict
        Largest absolute difference per floating-point column (``file:column``).
    """

    mismatches: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    max_abs_diff: dict[str, float] = field(default_factory=dict)

    @property
    def same(self) -> bool:
        """True when nothing differs beyond the tolerances."""
        return not self.mismatches


def _read(path: Path, keys: list[str]) -> pd.DataFrame | None:
    if not path.exists():
        return None
    frame = pq.read_table(path).to_pandas()
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def _compare_frames(
    name: str,
    a: pd.DataFrame,
    b: pd.DataFrame,
    report: ParityReport,
    atol: float,
    rtol: float,
) -> None:
    if list(a.columns) != list(b.columns):
        report.mismatches.append(f"{name}: columns {list(a.columns)} vs {list(b.columns)}")
        return
    if len(a) != len(b):
        report.mismatches.append(f"{name}: {len(a)} rows vs {len(b)}")
        return
    report.checked[name] = len(a)
    for col in a.columns:
        x, y = a[col], b[col]
        if pd.api.types.is_float_dtype(x) and pd.api.types.is_float_dtype(y):
            xv, yv = x.to_numpy(float), y.to_numpy(float)
            if not np.array_equal(np.isnan(xv), np.isnan(yv)):
                report.mismatches.append(f"{name}:{col}: missing values differ")
                continue
            ok = ~np.isnan(xv)
            diff = np.abs(xv[ok] - yv[ok])
            worst = float(diff.max()) if diff.size else 0.0
            report.max_abs_diff[f"{name}:{col}"] = worst
            limit = atol if col in PROBABILITIES else atol + rtol * np.abs(xv[ok])
            if (diff > limit).any():
                report.mismatches.append(
                    f"{name}:{col}: {(diff > limit).sum()} values differ (largest {worst:.3g})"
                )
        else:
            same = (x.astype("string") == y.astype("string")).fillna(False) | (x.isna() & y.isna())
            if not bool(same.all()):
                report.mismatches.append(f"{name}:{col}: {(~same).sum()} values differ")


def compare_runs(
    run_a: Path, run_b: Path, *, atol: float = 1e-9, rtol: float = 1e-9
) -> ParityReport:
    """Compare customers, interest scores and segment membership of two run folders.

    Parameters
    ----------
    run_a, run_b : Path
        Run folders (``outputs/<run_id>``).
    atol : float
        Absolute tolerance of probabilities (and the floor of every float comparison).
    rtol : float
        Relative tolerance of the other floating-point columns.

    Returns
    -------
    ParityReport
    """
    report = ParityReport()
    files = {
        "customers.parquet": ["customer_id"],
        "interest.parquet": ["level", "customer_id", "rank"],
        "segments/membership.parquet": ["segment", "customer_id"],
    }
    for rel, keys in files.items():
        a, b = _read(Path(run_a) / rel, keys), _read(Path(run_b) / rel, keys)
        if a is None and b is None:
            continue
        if a is None or b is None:
            report.mismatches.append(f"{rel}: only in {'b' if a is None else 'a'}")
            continue
        _compare_frames(rel, a, b, report, atol, rtol)
    return report
