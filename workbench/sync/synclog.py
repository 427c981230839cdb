"""The sync log in the run folder, for the report and for audits.

``<run>/sync/``:

- ``sync_log.json``: ``{"syncs": [...]}``, one entry per (non-dry) sync with its settings and
  the counts per destination x segment (total, to_add, to_update, to_remove, invalid,
  retrying, sent, accepted, rejected, match_rate, ...);
- ``operations.csv``: one row per request batch (sync_id, destination, segment, operation,
  batch, sent, accepted, rejected, requests, status, error, started_at, seconds, info),
  appended by every sync;
- ``changes/<sync_id>.parquet``: one row per member and operation (destination, segment,
  member_pk, operation, status, error).

Only customer ids, counts and masked reasons are written: no e-mail, phone, hashed identifier
or secret.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from workbench.secrets import REDACTOR

__all__ = ["OPERATION_COLUMNS", "SUMMARY_COLUMNS", "Journal", "sync_summary", "write_sync_log"]

#: Columns of :func:`sync_summary` rows (what the report shows).
SUMMARY_COLUMNS = (
    "synced_at",
    "destination",
    "type",
    "segment",
    "status",
    "total",
    "to_add",
    "to_update",
    "to_remove",
    "invalid",
    "sent",
    "accepted",
    "rejected",
    "match_rate",
    "match_rate_detail",
    "error",
)

OPERATION_COLUMNS = (
    "sync_id",
    "destination",
    "segment",
    "operation",
    "batch",
    "sent",
    "accepted",
    "rejected",
    "requests",
    "status",
    "error",
    "started_at",
    "seconds",
    "info",
)


@dataclass
class Journal:
    """Operations and member changes of one sync, kept in memory until the log is written."""

    sync_id: str
    operations: list[dict[str, Any]] = field(default_factory=list)
    changes: dict[str, list[Any]] = field(
        default_factory=lambda: {
            k: [] for k in ("destination", "segment", "member_pk", "operation", "status", "error")
        }
    )

    def operation(self, **row: Any) -> None:
        """Record one batch (keys of :data:`OPERATION_COLUMNS`)."""
        row = {"sync_id": self.sync_id, **row}
        if row.get("error"):
            row["error"] = REDACTOR.redact(str(row["error"]))
        row["info"] = json.dumps(row.get("info") or {}, sort_keys=True, default=str)
        self.operations.append(row)

    def member(
        self,
        destination: str,
        segment: str,
        member_pk: str,
        operation: str,
        status: str,
        error: str | None = None,
    ) -> None:
        """Record what happened to one member."""
        for key, value in (
            ("destination", destination),
            ("segment", segment),
            ("member_pk", member_pk),
            ("operation", operation),
            ("status", status),
            ("error", REDACTOR.redact(error) if error else None),
        ):
            self.changes[key].append(value)


def _atomic_json(path: Path, value: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def write_sync_log(run_dir: Path, journal: Journal, entry: dict[str, Any]) -> Path:
    """Append this sync to the run folder's log files; returns the ``sync`` folder."""
    folder = run_dir / "sync"
    (folder / "changes").mkdir(parents=True, exist_ok=True)
    changes = folder / "changes" / f"{journal.sync_id}.parquet"
    pq.write_table(pa.table(journal.changes, schema=_CHANGES_SCHEMA), changes)
    ops = folder / "operations.csv"
    new = not ops.exists()
    with open(ops, "a", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=OPERATION_COLUMNS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows(journal.operations)
    log_path = folder / "sync_log.json"
    log: dict[str, Any] = {"syncs": []}
    if log_path.exists():
        try:
            log = json.loads(log_path.read_text(encoding="utf-8"))
        except ValueError:
            log = {"syncs": []}
    entry = {
        **entry,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "operations_file": str(ops.relative_to(run_dir)),
        "changes_file": str(changes.relative_to(run_dir)),
    }
    log.setdefault("syncs", []).append(json.loads(REDACTOR.redact(json.dumps(entry, default=str))))
    _atomic_json(log_path, log)
    return folder


def sync_summary(run_dir: Path) -> list[dict[str, Any]]:
    """Latest outcome per destination x segment from ``<run>/sync/sync_log.json``.

    One row per pair (keys :data:`SUMMARY_COLUMNS`), from the most recent sync that touched
    it; an empty list when the run was never synced. Ready for ``pandas.DataFrame(rows)``.
    """
    path = Path(run_dir) / "sync" / "sync_log.json"
    if not path.exists():
        return []
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in json.loads(path.read_text(encoding="utf-8")).get("syncs", []):
        for name, dest in entry.get("destinations", {}).items():
            for segment, counts in dest.get("segments", {}).items():
                row = {k: counts.get(k) for k in SUMMARY_COLUMNS}
                row.update(
                    synced_at=entry.get("started_at"),
                    destination=name,
                    type=dest.get("type"),
                    segment=segment,
                    error=counts.get("error") or dest.get("error"),
                )
                latest[(name, segment)] = row
    return list(latest.values())


_CHANGES_SCHEMA = pa.schema(
    [
        ("destination", pa.string()),
        ("segment", pa.string()),
        ("member_pk", pa.string()),
        ("operation", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
    ]
)
