"""Diff-sync state: what each destination holds, per segment x destination x member.

One SQLite file (default ``outputs/.sync/state.sqlite``) outlives run folders. Table
``members`` is keyed by ``(destination, segment, member_pk)``; ``member_pk`` is the workbench
``customer_id``, never an e-mail. Columns:

====================  =====================================================================
``state``             ``pending_add`` / ``pending_update`` / ``pending_remove`` (planned, not
                      yet acknowledged) · ``synced`` · ``failed`` (rejected, retried next run)
                      · ``invalid`` (no usable identifier, never sent) · ``removed``
``dest_key``          identity the destination acknowledged (Mailchimp subscriber hash,
                      Klaviyo external id, Meta / Google checksum of the hashed row)
``dest_ref``          JSON the destination needs to remove the member later (Mailchimp
                      e-mail, Klaviyo profile id, Meta / Google hashed identifiers)
``checksum``          SHA-256 of the synced fields as acknowledged
``want_*``            key / ref / checksum last sent and not (yet) acknowledged: a crash
                      after sending leaves them, so the next run can still remove them
``attempts``,         rejections in a row, the last reason, the sync that touched the row
``last_error``,
``last_run_id``
====================  =====================================================================

Every write is one transaction: the plan of a run, then one per acknowledged batch. A killed
process therefore loses at most the batch in flight, whose members are still ``pending_*`` and
are sent again (with idempotent primitives) by the next run.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.sync.errors import SyncConfigError
from workbench.sync.records import RecordsMixin
from workbench.sync.records import now as _now

try:  # POSIX advisory lock: one sync per state file at a time
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["MemberState", "StateStore", "Target"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS members (
    destination TEXT NOT NULL,
    segment TEXT NOT NULL,
    member_pk TEXT NOT NULL,
    state TEXT NOT NULL,
    dest_key TEXT,
    dest_ref TEXT,
    checksum TEXT,
    want_key TEXT,
    want_ref TEXT,
    want_checksum TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_run_id TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (destination, segment, member_pk)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS destinations (
    destination TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS remotes (
    destination TEXT NOT NULL, segment TEXT NOT NULL, remote_id TEXT NOT NULL,
    updated_at TEXT NOT NULL, PRIMARY KEY (destination, segment)
);
CREATE TABLE IF NOT EXISTS jobs (
    destination TEXT NOT NULL, segment TEXT NOT NULL, job_id TEXT NOT NULL, kind TEXT NOT NULL,
    run_id TEXT, members TEXT NOT NULL, created_at TEXT NOT NULL,
    PRIMARY KEY (destination, job_id)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, run_dir TEXT, started_at TEXT NOT NULL, finished_at TEXT,
    status TEXT, full INTEGER NOT NULL DEFAULT 0
);
"""


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def _dump(ref: Mapping[str, Any] | None) -> str | None:
    return None if ref is None else _CANONICAL.encode(ref)


def _load(text: str | None) -> dict[str, Any] | None:
    return None if text is None else json.loads(text)


@dataclass(frozen=True)
class MemberState:
    """One stored row of ``members`` (refs kept as JSON text, decoded on demand)."""

    member_pk: str
    state: str
    dest_key: str | None
    dest_ref_json: str | None
    checksum: str | None
    want_key: str | None
    want_ref_json: str | None
    want_checksum: str | None
    attempts: int
    last_error: str | None
    last_run_id: str | None

    @property
    def dest_ref(self) -> dict[str, Any] | None:
        """The acknowledged removal ref."""
        return _load(self.dest_ref_json)

    @property
    def want_ref(self) -> dict[str, Any] | None:
        """The ref last sent and not acknowledged."""
        return _load(self.want_ref_json)

    @property
    def acknowledged(self) -> bool:
        """Whether the destination acknowledged a version of this member that it still holds."""
        return self.dest_ref_json is not None

    def removal_refs(self) -> list[dict[str, Any]]:
        """Refs to remove: the acknowledged one, plus one sent but never acknowledged."""
        refs = [_load(self.dest_ref_json)] if self.dest_ref_json is not None else []
        in_flight = self.state in {"pending_add", "pending_update"}
        if (
            self.want_ref_json is not None
            and in_flight
            and self.want_ref_json != self.dest_ref_json
        ):
            refs.append(_load(self.want_ref_json))
        return refs


@dataclass(frozen=True)
class Target:
    """What one member should look like at the destination (key, ref, checksum)."""

    key: str
    ref: dict[str, Any]
    checksum: str


class StateStore(RecordsMixin):
    """The SQLite state file; one instance per sync process (it holds an exclusive lock).

    Parameters
    ----------
    path : Path or None
        The SQLite file; its folder is created when missing. None = an empty in-memory
        store (dry runs before the first sync).

    Raises
    ------
    SyncConfigError
        When another sync process holds the file.
    """

    def __init__(self, path: Path | None) -> None:
        if path is None:  # in memory: dry runs without a state file
            self.path = None
            self._lock_file = None
            self.con = sqlite3.connect(":memory:", isolation_level=None)
            self.con.executescript(_SCHEMA)
            return
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.path.with_name(self.path.name + ".lock"), "a+")
        if fcntl is not None:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._lock_file.close()
                raise SyncConfigError(
                    "another sync is using this state file",
                    where=str(self.path),
                    fix="wait for the other sync to finish (only one sync may run at a time)",
                ) from None
        self.con = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.con.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a killed process never loses a committed batch; only an OS crash or
        # power loss may drop the last commits, whose members are then re-sent (idempotently)
        self.con.execute("PRAGMA synchronous=NORMAL")
        self.con.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database and release the lock."""
        self.con.close()
        if self._lock_file is not None:
            self._lock_file.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close_job(
        self, destination: str, job_id: str, rejected: Mapping[str, str], run_id: str
    ) -> None:
        """Mark a finished job's rejected members failed and forget the job (one transaction)."""
        with self.transaction() as con:
            row = con.execute(
                "SELECT segment FROM jobs WHERE destination = ? AND job_id = ?",
                (destination, job_id),
            ).fetchone()
            if row is not None:
                self._fail(con, destination, row[0], run_id, rejected, clear_ack=True)
            con.execute(
                "DELETE FROM jobs WHERE destination = ? AND job_id = ?", (destination, job_id)
            )

    # ------------------------------------------------------------------ members
    def load(self, destination: str, segment: str) -> dict[str, MemberState]:
        """Every stored member of one segment at one destination."""
        rows = self.con.execute(
            "SELECT member_pk, state, dest_key, dest_ref, checksum, want_key, want_ref, "
            "want_checksum, attempts, last_error, last_run_id FROM members "
            "WHERE destination = ? AND segment = ?",
            (destination, segment),
        )
        return {r[0]: MemberState(*r) for r in rows}

    def counts(self, destination: str, segment: str) -> dict[str, int]:
        """Number of members per state."""
        rows = self.con.execute(
            "SELECT state, count(*) FROM members WHERE destination = ? AND segment = ? "
            "GROUP BY state",
            (destination, segment),
        )
        return dict(rows.fetchall())

    def record_plan(
        self,
        destination: str,
        segment: str,
        run_id: str,
        *,
        upserts: Iterable[tuple[str, Target]],
        leaving: Iterable[str],
        invalid: Mapping[str, str],
    ) -> None:
        """Mark what this run is about to send (one transaction, before any request)."""
        now = _now()
        with self.transaction() as con:
            con.executemany(
                "INSERT INTO members(destination, segment, member_pk, state, want_key, want_ref,"
                " want_checksum, last_run_id, updated_at) VALUES (?,?,?,'pending_add',?,?,?,?,?) "
                "ON CONFLICT DO UPDATE SET state = CASE WHEN members.dest_ref IS NULL "
                "THEN 'pending_add' ELSE 'pending_update' END, want_key = excluded.want_key, "
                "want_ref = excluded.want_ref, want_checksum = excluded.want_checksum, "
                "last_run_id = excluded.last_run_id, updated_at = excluded.updated_at",
                (
                    (destination, segment, pk, t.key, _dump(t.ref), t.checksum, run_id, now)
                    for pk, t in upserts
                ),
            )
            con.executemany(
                "UPDATE members SET state = 'pending_remove', last_run_id = ?, updated_at = ? "
                "WHERE destination = ? AND segment = ? AND member_pk = ?",
                ((run_id, now, destination, segment, pk) for pk in leaving),
            )
            con.executemany(
                "INSERT INTO members(destination, segment, member_pk, state, last_error, "
                "last_run_id, updated_at) VALUES (?,?,?,'invalid',?,?,?) ON CONFLICT DO UPDATE "
                "SET state = 'invalid', last_error = excluded.last_error, want_key = NULL, "
                "want_ref = NULL, want_checksum = NULL, last_run_id = excluded.last_run_id, "
                "updated_at = excluded.updated_at",
                ((destination, segment, pk, reason, run_id, now) for pk, reason in invalid.items()),
            )

    def commit_removals(
        self,
        destination: str,
        segment: str,
        run_id: str,
        *,
        accepted: Iterable[str],
        leaving: set[str],
        rejected: Mapping[str, str],
    ) -> None:
        """Record one acknowledged removal batch (one transaction).

        Members that left the segment become ``removed``; members removed only to be re-keyed
        (new e-mail, new hashed identifiers) or because they became invalid keep their state
        and lose their acknowledged identity.
        """
        now = _now()
        accepted = list(accepted)
        with self.transaction() as con:
            con.executemany(
                "UPDATE members SET state = 'removed', dest_key = NULL, dest_ref = NULL, "
                "checksum = NULL, want_key = NULL, want_ref = NULL, want_checksum = NULL, "
                "attempts = 0, last_error = NULL, last_run_id = ?, updated_at = ? "
                "WHERE destination = ? AND segment = ? AND member_pk = ?",
                ((run_id, now, destination, segment, pk) for pk in accepted if pk in leaving),
            )
            con.executemany(
                "UPDATE members SET dest_key = NULL, dest_ref = NULL, checksum = NULL, "
                "last_run_id = ?, updated_at = ? "
                "WHERE destination = ? AND segment = ? AND member_pk = ?",
                ((run_id, now, destination, segment, pk) for pk in accepted if pk not in leaving),
            )
            self._fail(con, destination, segment, run_id, rejected, clear_ack=False)

    def commit_upserts(
        self,
        destination: str,
        segment: str,
        run_id: str,
        *,
        accepted: Mapping[str, Target],
        rejected: Mapping[str, str],
        jobs: Iterable[tuple[str, list[str]]] = (),
    ) -> None:
        """Record one acknowledged add / update batch (one transaction).

        ``jobs`` (asynchronous jobs the batch started, with their members) are recorded in
        the same transaction, so a crash cannot lose a job that must be reconciled.
        """
        now = _now()
        with self.transaction() as con:
            con.executemany(
                "INSERT OR REPLACE INTO jobs VALUES (?,?,?,?,?,?,?)",
                (
                    (destination, segment, job, "import", run_id, json.dumps(members), now)
                    for job, members in jobs
                ),
            )
            con.executemany(
                "UPDATE members SET state = 'synced', dest_key = ?, dest_ref = ?, checksum = ?, "
                "want_key = NULL, want_ref = NULL, want_checksum = NULL, attempts = 0, "
                "last_error = NULL, last_run_id = ?, updated_at = ? "
                "WHERE destination = ? AND segment = ? AND member_pk = ?",
                (
                    (t.key, _dump(t.ref), t.checksum, run_id, now, destination, segment, pk)
                    for pk, t in accepted.items()
                ),
            )
            self._fail(con, destination, segment, run_id, rejected, clear_ack=False)

    def replace_all(
        self,
        destination: str,
        segment: str,
        run_id: str,
        *,
        accepted: Mapping[str, Target],
        rejected: Mapping[str, str],
    ) -> None:
        """Record a full replace (Meta ``usersreplace``) in one transaction.

        The destination now holds exactly ``accepted``; everything else is gone.
        """
        now = _now()
        with self.transaction() as con:
            con.execute(
                "UPDATE members SET state = CASE WHEN state = 'invalid' THEN 'invalid' "
                "ELSE 'removed' END, dest_key = NULL, dest_ref = NULL, checksum = NULL, "
                "want_key = NULL, want_ref = NULL, want_checksum = NULL, last_run_id = ?, "
                "updated_at = ? WHERE destination = ? AND segment = ?",
                (run_id, now, destination, segment),
            )
        self.commit_upserts(destination, segment, run_id, accepted=accepted, rejected=rejected)

    @staticmethod
    def _fail(
        con: sqlite3.Connection,
        destination: str,
        segment: str,
        run_id: str,
        rejected: Mapping[str, str],
        *,
        clear_ack: bool,
    ) -> None:
        ack = "dest_key = NULL, dest_ref = NULL, checksum = NULL, " if clear_ack else ""
        con.executemany(
            f"UPDATE members SET state = 'failed', {ack}attempts = attempts + 1, "
            "last_error = ?, last_run_id = ?, updated_at = ? "
            "WHERE destination = ? AND segment = ? AND member_pk = ?",
            (
                (reason[:500], run_id, _now(), destination, segment, pk)
                for pk, reason in rejected.items()
            ),
        )
