"""Membership diff against the previous run of the same ``run_name``.

The previous run is the latest *succeeded* run folder of the same ``run_name`` other than the
current one (by ``finished_at`` in its manifest). A rerun of the same period replaces its own
folder, so the folder of the current period (``<run_name>_<as_of>``) is never "previous".
Run folders live in the runner's output root: the parent of the run folder (headless runs are
built in ``<out_root>/.tmp-*``; finished ones are ``<out_root>/<run_id>``), or ``outputs/``
for the interactive lab folder ``outputs/lab/<run_name>``.

Files (per segment, under ``<run>/segments/diff/``): ``<segment>.added.csv``,
``<segment>.removed.csv``, ``<segment>.stayed.csv`` (column ``customer_id``); counts per
segment in ``segments/analytics/diff.csv``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from workbench import config
from workbench.notebook import read_json

__all__ = ["DIFF_DIR", "membership_diff", "output_root", "previous_run", "write_diff"]

log = logging.getLogger(__name__)

DIFF_DIR = Path("segments") / "diff"
MEMBERSHIP = Path("segments") / "membership.parquet"


def output_root(run_dir: Path) -> Path:
    """The folder holding the run folders of ``run_dir``'s runner."""
    run_dir = Path(run_dir).resolve()
    if run_dir.parent.name == "lab":
        return run_dir.parent.parent
    return run_dir.parent


def previous_run(run_dir: Path, run_name: str, current_id: str | None = None) -> Path | None:
    """The latest succeeded run of ``run_name`` other than ``run_dir`` and ``current_id``.

    Parameters
    ----------
    run_dir : Path
        The current run folder (a ``.tmp-*`` folder during a headless run).
    run_name : str
        The params' ``run_name``.
    current_id : str, optional
        The current run id (``<run_name>_<as_of date>``): its finished folder is the one this
        run replaces, so it is skipped.
    """
    run_dir = Path(run_dir).resolve()
    best: tuple[str, Path] | None = None
    for manifest in output_root(run_dir).glob(f"{run_name}_*/{config.MANIFEST}"):
        folder = manifest.parent.resolve()
        if folder == run_dir or folder.name == current_id:
            continue
        info = read_json(manifest)
        if info.get("status") != "succeeded" or not (folder / MEMBERSHIP).exists():
            continue
        key = info.get("finished_at", "")
        if best is None or key > best[0]:
            best = (key, folder)
    return best[1] if best else None


def _by_segment(table: pa.Table) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    segs = table.column("segment").to_pylist()
    ids = pc.cast(table.column("customer_id"), pa.string()).to_pylist()
    for seg, cid in zip(segs, ids, strict=True):
        out.setdefault(seg, set()).add(cid)
    return out


def membership_diff(
    current: pa.Table, previous: pa.Table | None, segments: list[str]
) -> dict[str, dict[str, list[str]]]:
    """Per segment: sorted ``added``, ``removed`` and ``stayed`` customer ids.

    A segment absent from the previous run has every member added.
    """
    now = _by_segment(current)
    before = _by_segment(previous) if previous is not None else {}
    out = {}
    for seg in segments:
        a, b = now.get(seg, set()), before.get(seg, set())
        out[seg] = {
            "added": sorted(a - b),
            "removed": sorted(b - a),
            "stayed": sorted(a & b),
        }
    return out


def write_diff(
    run_dir: Path,
    current: pa.Table,
    segments: list[str],
    run_name: str,
    current_id: str | None = None,
) -> pd.DataFrame:
    """Compare with the previous run and write the diff files; returns the counts.

    Returns
    -------
    pandas.DataFrame
        segment, previous_run (folder name, empty when there is none), previous, current,
        added, removed, stayed.
    """
    run_dir = Path(run_dir)
    prev_dir = previous_run(run_dir, run_name, current_id)
    previous = pq.read_table(prev_dir / MEMBERSHIP) if prev_dir is not None else None
    if prev_dir is None:
        log.info("no previous run of %r: every member counts as added", run_name)
    diff = membership_diff(current, previous, segments)
    folder = run_dir / DIFF_DIR
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for seg, parts in diff.items():
        for kind, ids in parts.items():
            pd.DataFrame({"customer_id": ids}).to_csv(folder / f"{seg}.{kind}.csv", index=False)
        rows.append(
            {
                "segment": seg,
                "previous_run": prev_dir.name if prev_dir is not None else "",
                "previous": len(parts["removed"]) + len(parts["stayed"]),
                "current": len(parts["added"]) + len(parts["stayed"]),
                "added": len(parts["added"]),
                "removed": len(parts["removed"]),
                "stayed": len(parts["stayed"]),
            }
        )
    return pd.DataFrame(
        rows,
        columns=["segment", "previous_run", "previous", "current", "added", "removed", "stayed"],
    )
