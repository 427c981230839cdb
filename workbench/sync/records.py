"""Bookkeeping tables of the sync state file: runs, targets, containers, asynchronous jobs.

Mixed into :class:`workbench.sync.state.StateStore`, which opens the connection and holds
the member rows.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["RecordsMixin", "now"]


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class RecordsMixin:
    """Runs, destination fingerprints, remote container ids and open jobs."""

    con: sqlite3.Connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: committed on success, rolled back on any exception."""
        self.con.execute("BEGIN IMMEDIATE")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def start_run(self, run_id: str, run_dir: Path, *, full: bool) -> None:
        """Record the start of a sync."""
        with self.transaction() as con:
            con.execute(
                "INSERT INTO runs(run_id, run_dir, started_at, status, full) VALUES (?,?,?,?,?)",
                (run_id, str(run_dir), now(), "running", int(full)),
            )

    def finish_run(self, run_id: str, status: str) -> None:
        """Record the end of a sync."""
        with self.transaction() as con:
            con.execute(
                "UPDATE runs SET finished_at = ?, status = ? WHERE run_id = ?",
                (now(), status, run_id),
            )

    def check_destination(self, destination: str, fingerprint: str) -> bool:
        """Register a destination's target (type and ids); forget its state if it changed.

        Returns
        -------
        bool
            True when an earlier, different target's state was discarded.
        """
        row = self.con.execute(
            "SELECT fingerprint FROM destinations WHERE destination = ?", (destination,)
        ).fetchone()
        if row is not None and row[0] == fingerprint:
            return False
        with self.transaction() as con:
            if row is not None:
                for table in ("members", "remotes", "jobs"):
                    con.execute(f"DELETE FROM {table} WHERE destination = ?", (destination,))
            con.execute(
                "INSERT OR REPLACE INTO destinations VALUES (?,?,?)",
                (destination, fingerprint, now()),
            )
        return row is not None

    def fingerprint_matches(self, destination: str, fingerprint: str) -> bool:
        """Whether the stored state belongs to this target (read-only, for dry runs)."""
        row = self.con.execute(
            "SELECT fingerprint FROM destinations WHERE destination = ?", (destination,)
        ).fetchone()
        return row is not None and row[0] == fingerprint

    def remote_id(self, destination: str, segment: str) -> str | None:
        """The destination-side id (list, static segment, audience) of a segment."""
        row = self.con.execute(
            "SELECT remote_id FROM remotes WHERE destination = ? AND segment = ?",
            (destination, segment),
        ).fetchone()
        return row[0] if row else None

    def set_remote_id(self, destination: str, segment: str, remote_id: str) -> None:
        """Remember the destination-side id of a segment (committed at once)."""
        with self.transaction() as con:
            con.execute(
                "INSERT OR REPLACE INTO remotes VALUES (?,?,?,?)",
                (destination, segment, remote_id, now()),
            )

    def open_jobs(self, destination: str) -> list[tuple[str, str, str, list[str]]]:
        """``(segment, job_id, kind, member_pks)`` of jobs not reconciled yet, oldest first."""
        rows = self.con.execute(
            "SELECT segment, job_id, kind, members FROM jobs WHERE destination = ? "
            "ORDER BY created_at",
            (destination,),
        ).fetchall()
        return [(seg, job, kind, json.loads(members)) for seg, job, kind, members in rows]
