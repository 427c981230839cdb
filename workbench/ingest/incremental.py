"""Incremental ingest: reuse the last run's canonical rows of append-only Parquet folders.

A monthly job usually reads a folder that only grows: one new Parquet file of order lines (or
web events) per day or month. With ``ingest.incremental: true``, a table whose source is such
a folder is ingested by reading only the files the previous run did not see; the previous run's
clean rows and quarantined rows of that table are carried over unchanged.

The previous run is the latest succeeded run of the same ``run_name`` next to the run folder
(``outputs/<run_name>_<as_of>/``). Its rows are reused only when all of these hold, otherwise
the table is ingested in full and the summary says why:

- the table is ``orders`` or ``events`` (products and customers are snapshots, not logs);
- the source is a folder of Parquet files (a single file that grew cannot be split);
- the table's source params (mapping, rules, currency) are the same as in that run;
- every file that run read is still there with the same SHA-256 (nothing edited or removed).

Order lines of the new files that repeat a line already ingested (the ``duplicate_line`` keys
of :func:`workbench.ingest.normalise.order_line_keys`) are quarantined as ``duplicate_line``:
the line ingested first stays, as a full ingest keeps the earliest one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.dataset as ds
import pyarrow.parquet as pq

from workbench import config
from workbench.notebook import read_json
from workbench.rundiff import previous_run

if TYPE_CHECKING:
    from workbench.params import Params, Source

log = logging.getLogger(__name__)

#: Tables that are logs (rows only ever appended), so earlier rows can be reused.
APPEND_ONLY = ("orders", "events")


def spec_digest(params: Params, name: str) -> str:
    """SHA-256 of everything that decides how a table's rows are normalised and checked."""
    spec: Source = getattr(params.data, name)
    payload = {"spec": spec.model_dump(mode="json"), "currency": params.currency}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass
class Reuse:
    """The previous run's rows of one table, and the files still to read."""

    run: Path
    report: dict[str, Any]
    new_files: list[Path]

    @property
    def data(self) -> Path:
        """The previous run's canonical table."""
        return self.run / config.RUN_DATA / f"{self.report['table']}.parquet"

    def note(self) -> dict[str, Any]:
        """What the ingest summary records about the reuse."""
        return {
            "from_run": self.run.name,
            "files_reused": len(self.report.get("files", [])),
            "files_new": len(self.new_files),
            "rows_reused": self.report.get("rows_kept", 0),
        }


def plan(
    params: Params, name: str, run_dir: Path, files: list[dict[str, Any]]
) -> tuple[Reuse | None, str]:
    """Whether (and how) table ``name`` can reuse the previous run; the reason when not.

    Parameters
    ----------
    params : Params
        This run's parameters.
    name : str
        Canonical table name.
    run_dir : Path
        This run's (temporary) folder; the previous runs are its siblings.
    files : list of dict
        Digests (``path``, ``bytes``, ``sha256``) of the files the source holds now.
    """
    spec = getattr(params.data, name)
    if name not in APPEND_ONLY:
        return None, f"{name} is a snapshot table, not a log"
    if spec.format == "sql" or not spec.path or not Path(spec.path).is_dir():
        return None, "the source is not a folder of Parquet files"
    previous = previous_run(Path(run_dir), params.run_name, "9999-12-31")
    if previous is None:
        return None, f"no earlier succeeded run of {params.run_name!r} next to this one"
    report = (read_json(previous / config.INGEST_SUMMARY).get("tables") or {}).get(name)
    if not report or not (previous / config.RUN_DATA / f"{name}.parquet").exists():
        return None, f"run {previous.name} has no {name} table"
    if report.get("spec_sha256") != spec_digest(params, name):
        return None, f"the data.{name} params changed since run {previous.name}"
    now = {f["path"]: f["sha256"] for f in files}
    changed = [f["path"] for f in report.get("files", []) if now.get(f["path"]) != f["sha256"]]
    if changed:
        return None, f"{len(changed)} file(s) read by run {previous.name} changed or went away"
    seen = {f["path"] for f in report.get("files", [])}
    new = [Path(f["path"]) for f in files if f["path"] not in seen]
    return Reuse(previous, report, new), ""


def link_files(files: list[Path], folder: Path) -> Path:
    """A scratch folder holding (hard links to, else copies of) ``files``; returns it."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for i, path in enumerate(files):
        target = folder / f"{i:06d}_{path.name}"
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
    return folder


def previous_quarantine(reuse: Reuse, out: Path) -> Path | None:
    """The previous run's quarantined rows of the table, streamed to ``out`` (None if none)."""
    source = reuse.run / config.QUARANTINE
    if not source.exists() or not sum(reuse.report.get("quarantined", {}).values()):
        return None
    scanner = ds.dataset(source, format="parquet").scanner(
        filter=ds.field("table") == reuse.report["table"], batch_size=200_000
    )
    with pq.ParquetWriter(out, scanner.projected_schema, compression="zstd") as writer:
        for batch in scanner.to_batches():
            if batch.num_rows:
                writer.write_batch(batch)
    return out


def merge_counts(old: dict[str, int], new: dict[str, int]) -> dict[str, int]:
    """Per-key sums, largest first."""
    out = dict(old)
    for key, value in new.items():
        out[key] = out.get(key, 0) + value
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))
