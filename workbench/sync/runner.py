"""Sync every segment of one destination: diff, removals, then adds / updates, in batches.

State is committed after each acknowledged batch (one transaction); rejected members are
recorded as failed with the reason. A destination that stops answering (retries exhausted,
circuit open) or refuses the credentials is stopped, its members stay pending, and the
engine goes on with the next destination.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from datetime import UTC, datetime
from typing import Any

from workbench.secrets import REDACTOR
from workbench.sync.base import BatchResult, Destination, chunks
from workbench.sync.errors import ApiError, DestinationUnavailable, SyncConfigError
from workbench.sync.inputs import SyncInputs
from workbench.sync.plan import Desired, Invalid, Plan, Upsert, diff
from workbench.sync.settings import SyncSettings
from workbench.sync.state import StateStore
from workbench.sync.synclog import Journal

log = logging.getLogger(__name__)

__all__ = ["CrashHook", "DestinationSync"]

_STOPPERS = (DestinationUnavailable, SyncConfigError)


class CrashHook:
    """Test hook: SIGKILL the process after ``after`` committed batches (None = never)."""

    def __init__(self, after: int | None) -> None:
        self.after = after
        self.committed = 0

    def tick(self) -> None:
        """Count one committed batch; die when the count is reached."""
        self.committed += 1
        if self.after is not None and self.committed >= self.after:
            logging.shutdown()
            os.kill(os.getpid(), signal.SIGKILL)


def _fatal(exc: Exception) -> bool:
    return isinstance(exc, _STOPPERS) or (isinstance(exc, ApiError) and exc.is_config_problem)


class DestinationSync:
    """One destination in one sync run.

    Parameters
    ----------
    adapter : Destination
        The destination client.
    state : StateStore
        The state file.
    inputs : SyncInputs
        Segments and customers of the run folder.
    sync_id : str
        Id of this sync (``last_run_id`` in the state).
    journal : Journal
        Where operations and member changes are logged.
    """

    def __init__(
        self,
        adapter: Destination,
        state: StateStore,
        inputs: SyncInputs,
        *,
        sync_id: str,
        journal: Journal,
        settings: SyncSettings,
        crash: CrashHook,
        dry_run: bool,
        full: bool,
    ) -> None:
        self.adapter = adapter
        self.name = adapter.spec.name
        self.state = state
        self.inputs = inputs
        self.sync_id = sync_id
        self.journal = journal
        self.settings = settings
        self.crash = crash
        self.dry_run = dry_run
        self.full = full
        self.default_country = getattr(adapter.spec, "default_country", None)

    # ------------------------------------------------------------------ entry
    def run(self, segments: list[str]) -> dict[str, Any]:
        """Sync ``segments``; never raises for destination failures (see ``status``)."""
        result: dict[str, Any] = {
            "type": self.adapter.spec.type,
            "status": "dry_run" if self.dry_run else "ok",
            "error": None,
            "segments": {},
        }
        started = time.monotonic()
        try:
            if not self.dry_run:
                self.state.check_destination(self.name, self.adapter.fingerprint())
                self._reconcile(None, wait=False, counts=None)
            for segment in segments:
                counts = self._empty_counts(segment)
                result["segments"][segment] = counts
                self._segment(segment, counts)
        except Exception as exc:
            if not _fatal(exc):
                raise
            message = REDACTOR.redact(exc.message if hasattr(exc, "message") else str(exc))
            log.error("%s: destination stopped: %s", self.name, message)
            result["status"], result["error"] = "failed", message
            for segment in segments:
                counts = result["segments"].setdefault(segment, self._empty_counts(segment))
                if counts["status"] in {"ok", "pending"}:
                    counts["status"] = "failed" if counts["started"] else "skipped"
                    counts["error"] = message
        finally:
            result["requests"] = self.adapter.requests
            result["retries"] = self.adapter.client.retries if self.adapter.client else 0
            result["seconds"] = round(time.monotonic() - started, 3)
            self.adapter.close()
        if result["status"] == "ok" and any(
            c["status"] == "partial" for c in result["segments"].values()
        ):
            result["status"] = "partial"
        for counts in result["segments"].values():
            counts.pop("started", None)
        return result

    def _empty_counts(self, segment: str) -> dict[str, Any]:
        return {
            "total": len(self.inputs.members.get(segment, [])),
            "to_add": 0,
            "to_update": 0,
            "to_resend": 0,
            "to_remove": 0,
            "unchanged": 0,
            "invalid": 0,
            "retrying": 0,
            "failed_permanent": 0,
            "sent": 0,
            "accepted": 0,
            "rejected": 0,
            "pending": 0,
            "match_rate": None,
            "match_rate_detail": None,
            "requests": 0,
            "status": "pending",
            "error": None,
            "started": False,
        }

    # ------------------------------------------------------------------ one segment
    def _current(self, segment: str) -> dict[str, Desired | Invalid]:
        current: dict[str, Desired | Invalid] = {}
        for pk in self.inputs.members.get(segment, []):
            record = self.inputs.customers.get(pk)
            if record is None:
                current[pk] = Invalid("customer not in the customers table")
                continue
            ids = self.inputs.identifiers(pk, self.default_country)
            current[pk] = self.adapter.desired(record, ids)
        owners: dict[str, str] = {}
        for pk in sorted(current):  # two customers, one contact: the lowest id keeps it
            want = current[pk]
            if not isinstance(want, Desired):
                continue
            idents = self.adapter.identities(want)
            clash = next((i for i in idents if i in owners), None)
            if clash is None:
                owners.update(dict.fromkeys(idents, pk))
            else:
                kind = clash.split(":", 1)[0]
                current[pk] = Invalid(f"same {kind} as customer {owners[clash]}")
        return current

    def _segment(self, segment: str, counts: dict[str, Any]) -> None:
        requests_before = self.adapter.requests
        current = self._current(segment)
        if self.dry_run:
            fp_ok = self.state.fingerprint_matches(self.name, self.adapter.fingerprint())
            stored = self.state.load(self.name, segment) if fp_ok else {}
            plan = diff(
                current, stored, full=self.full, max_row_attempts=self.settings.max_row_attempts
            )
            counts.update(plan.counts(), status="dry_run")
            return
        counts["started"] = True
        known = self.state.remote_id(self.name, segment)
        remote = self.adapter.prepare(segment, known)
        if remote.remote_id != known:
            self.state.set_remote_id(self.name, segment, remote.remote_id)
        stored = self.state.load(self.name, segment)
        full = self.full or remote.recreated
        plan = diff(current, stored, full=full, max_row_attempts=self.settings.max_row_attempts)
        counts.update(plan.counts())
        log.info("%s / %s: %s", self.name, segment, plan.counts())
        self.state.record_plan(
            self.name,
            segment,
            self.sync_id,
            upserts=[(u.pk, u.target) for u in plan.upserts],
            leaving=[r.pk for r in plan.removals if r.leaving],
            invalid=plan.invalid,
        )
        for pk, reason in plan.invalid.items():
            self.journal.member(self.name, segment, pk, "none", "invalid", reason)
        if plan.dropped:
            self.state.commit_removals(
                self.name, segment, self.sync_id,
                accepted=plan.dropped, leaving=set(plan.dropped), rejected={},
            )  # fmt: skip
        counts["pending"] = len(plan.upserts) + len(plan.removals)
        try:
            if self.adapter.file_based:
                self._files(segment, plan, current, counts)
            elif full and self.adapter.supports_replace and plan.upserts:
                self._replace(segment, remote.remote_id, plan, counts)
            else:
                removed = self._removals(segment, remote.remote_id, plan, counts)
                blocked = plan.rekeyed - removed
                todo = [u for u in plan.upserts if u.pk not in blocked]
                counts["pending"] -= len(plan.upserts) - len(todo)
                self._upserts(segment, remote.remote_id, todo, counts)
            self._reconcile(segment, wait=True, counts=counts)
        finally:
            counts["requests"] = self.adapter.requests - requests_before
        counts["status"] = "partial" if counts["rejected"] else "ok"
        self._match_rate(segment, remote.remote_id, counts)
        counts["requests"] = self.adapter.requests - requests_before

    # ------------------------------------------------------------------ operations
    def _run_batch(
        self, operation: str, segment: str, batch_no: int, items: list[Any], call: Any
    ) -> BatchResult:
        started = datetime.now(UTC)
        t0 = time.monotonic()
        requests_before = self.adapter.requests
        try:
            result = call()
            status, error = ("partial" if result.rejected else "ok"), None
        except Exception as exc:
            if _fatal(exc) or not isinstance(exc, ApiError):
                self.journal.operation(
                    destination=self.name, segment=segment, operation=operation, batch=batch_no,
                    sent=len(items), accepted=0, rejected=0,
                    requests=self.adapter.requests - requests_before, status="failed",
                    error=getattr(exc, "message", str(exc)), started_at=started.isoformat(),
                    seconds=round(time.monotonic() - t0, 4),
                )  # fmt: skip
                raise
            result = BatchResult(rejected={i.pk: exc.detail for i in items})
            status, error = "rejected", exc.detail
        self.journal.operation(
            destination=self.name, segment=segment, operation=operation, batch=batch_no,
            sent=len(items), accepted=len(result.accepted), rejected=len(result.rejected),
            requests=self.adapter.requests - requests_before, status=status, error=error,
            started_at=started.isoformat(), seconds=round(time.monotonic() - t0, 4),
            info=result.info,
        )  # fmt: skip
        return result

    def _tally(
        self, segment: str, op_of: dict[str, str], result: BatchResult, counts: dict
    ) -> None:
        counts["sent"] += len(result.accepted) + len(result.rejected)
        counts["accepted"] += len(result.accepted)
        counts["rejected"] += len(result.rejected)
        counts["pending"] -= len(result.accepted) + len(result.rejected)
        for pk in result.accepted:
            self.journal.member(self.name, segment, pk, op_of[pk], "accepted")
        for pk, reason in result.rejected.items():
            self.journal.member(self.name, segment, pk, op_of[pk], "rejected", reason)

    def _removals(self, segment: str, remote: str, plan: Plan, counts: dict) -> set[str]:
        accepted: set[str] = set()
        leaving = {r.pk for r in plan.removals if r.leaving}
        limit = self.settings.batch(self.adapter.remove_limit)
        for n, batch in enumerate(chunks(plan.removals, limit, lambda r: len(r.refs)), start=1):
            result = self._run_batch(
                "remove", segment, n, batch, lambda b=batch: self.adapter.remove(segment, remote, b)
            )
            self.state.commit_removals(
                self.name, segment, self.sync_id,
                accepted=result.accepted, leaving=leaving, rejected=result.rejected,
            )  # fmt: skip
            self._tally(segment, {r.pk: "remove" for r in batch}, result, counts)
            accepted.update(result.accepted)
            self.crash.tick()
        return accepted

    def _upserts(self, segment: str, remote: str, todo: list[Upsert], counts: dict) -> None:
        limit = self.adapter.upsert_limit(len(todo))
        for n, batch in enumerate(chunks(todo, limit), start=1):
            result = self._run_batch(
                "upsert", segment, n, batch, lambda b=batch: self.adapter.upsert(segment, remote, b)
            )
            self.state.commit_upserts(
                self.name, segment, self.sync_id,
                accepted=result.accepted, rejected=result.rejected, jobs=result.jobs,
            )  # fmt: skip
            self._tally(segment, {u.pk: u.kind for u in batch}, result, counts)
            self.crash.tick()

    def _replace(self, segment: str, remote: str, plan: Plan, counts: dict) -> None:
        result = self._run_batch(
            "replace",
            segment,
            1,
            plan.upserts,
            lambda: self.adapter.replace(segment, remote, plan.upserts),
        )
        self.state.replace_all(
            self.name, segment, self.sync_id, accepted=result.accepted, rejected=result.rejected
        )
        self._tally(segment, {u.pk: u.kind for u in plan.upserts}, result, counts)
        leaving = [r.pk for r in plan.removals if r.leaving]
        for pk in leaving:
            self.journal.member(self.name, segment, pk, "remove", "accepted")
        counts["pending"] -= len(plan.removals)
        self.crash.tick()

    def _files(self, segment: str, plan: Plan, current: dict, counts: dict) -> None:
        every = [
            Upsert(pk, want.target, want.payload, "current")
            for pk, want in current.items()
            if isinstance(want, Desired)
        ]
        started, t0 = datetime.now(UTC), time.monotonic()
        removed, added = self.adapter.export(segment, plan.upserts, plan.removals, every)
        self.journal.operation(
            destination=self.name, segment=segment, operation="export", batch=1,
            sent=len(plan.upserts) + len(plan.removals),
            accepted=len(removed.accepted) + len(added.accepted),
            rejected=len(removed.rejected) + len(added.rejected), requests=0, status="ok",
            error=None, started_at=started.isoformat(), seconds=round(time.monotonic() - t0, 4),
            info={"files": [f"{segment}.csv", f"{segment}.add.csv", f"{segment}.remove.csv"]},
        )  # fmt: skip
        leaving = {r.pk for r in plan.removals if r.leaving}
        self.state.commit_removals(
            self.name, segment, self.sync_id,
            accepted=removed.accepted, leaving=leaving, rejected=removed.rejected,
        )  # fmt: skip
        self.state.commit_upserts(
            self.name, segment, self.sync_id, accepted=added.accepted, rejected=added.rejected
        )
        self._tally(segment, {r.pk: "remove" for r in plan.removals}, removed, counts)
        self._tally(segment, {u.pk: u.kind for u in plan.upserts}, added, counts)
        self.crash.tick()

    # ------------------------------------------------------------------ jobs, match rate
    def _reconcile(self, segment: str | None, *, wait: bool, counts: dict | None) -> None:
        deadline = time.monotonic() + (self.settings.job_timeout if wait else 0)
        for seg, job_id, _kind, members in self.state.open_jobs(self.name):
            if segment is not None and seg != segment:
                continue
            while True:
                rejected = self.adapter.job_rejections(job_id, members)
                if rejected is not None or time.monotonic() >= deadline:
                    break
                time.sleep(self.settings.job_poll_interval)
            if rejected is None:
                log.info("%s: job %s still running; reconciled next sync", self.name, job_id)
                continue
            self.state.close_job(self.name, job_id, rejected, self.sync_id)
            if rejected:
                log.warning("%s: job %s rejected %d members", self.name, job_id, len(rejected))
            for pk, reason in rejected.items():
                self.journal.member(self.name, seg, pk, "import", "rejected", reason)
            if counts is not None:
                counts["accepted"] -= len(rejected)
                counts["rejected"] += len(rejected)

    def _match_rate(self, segment: str, remote: str, counts: dict) -> None:
        try:
            rate, detail = self.adapter.match_rate(segment, remote, counts["total"])
        except (ApiError, DestinationUnavailable) as exc:
            log.warning("%s: match rate unavailable: %s", self.name, exc.message)
            return
        counts["match_rate"] = None if rate is None else round(rate, 4)
        counts["match_rate_detail"] = detail
