"""``run_sync``: push a run's segments to the configured destinations (diff sync).

Before anything is sent, every selected destination is checked (known names, ids, secrets);
then each destination is synced in turn by :class:`~workbench.sync.runner.DestinationSync`.
A failing destination is stopped (circuit breaker, retries exhausted, credentials refused)
without stopping the others; :class:`~workbench.sync.errors.SyncError` is raised at the end
when any destination failed, carrying the full result.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.secrets import redacting_logs, resolve_secret
from workbench.sync.base import Destination
from workbench.sync.csv_routes import CsvRouteDestination
from workbench.sync.errors import SyncConfigError, SyncError
from workbench.sync.google import GoogleDestination
from workbench.sync.inputs import SyncInputs, load_inputs
from workbench.sync.klaviyo import KlaviyoDestination
from workbench.sync.mailchimp import MailchimpDestination
from workbench.sync.meta import MetaDestination
from workbench.sync.runner import CrashHook, DestinationSync
from workbench.sync.settings import SyncSettings
from workbench.sync.state import StateStore
from workbench.sync.synclog import Journal, write_sync_log

if TYPE_CHECKING:
    from workbench.params import ExportSpec, Params

log = logging.getLogger(__name__)

__all__ = ["DESTINATIONS", "FILE_EXPORT_TYPES", "default_state_path", "run_sync"]

#: ExportSpec.type -> destination class of the types this module syncs.
DESTINATIONS: dict[str, type[Destination]] = {
    cls.types[0]: cls
    for cls in (
        MailchimpDestination,
        KlaviyoDestination,
        MetaDestination,
        GoogleDestination,
        CsvRouteDestination,
    )
}
#: Export types written as files by the run itself (``workbench.exports``), not synced.
FILE_EXPORT_TYPES = frozenset({"csv", "google_customer_match_file", "meta_audience_file"})


def default_state_path(run_dir: Path) -> Path:
    """``<outputs>/.sync/state.sqlite``: beside the run folders, so it outlives them."""
    return Path(run_dir).resolve().parent / ".sync" / "state.sqlite"


def _select(params: Params, destination: str | None) -> list[ExportSpec]:
    if destination is None:
        return [e for e in params.exports if e.type in DESTINATIONS]
    by_name = {e.name: e for e in params.exports}
    if destination not in by_name:
        names = ", ".join(sorted(by_name)) or "(none configured)"
        raise SyncConfigError(
            f"unknown destination {destination!r}",
            where="--destination",
            fix=f"use one of the export names in the params file: {names}",
        )
    spec = by_name[destination]
    if spec.type not in DESTINATIONS:
        synced = ", ".join(e.name for e in params.exports if e.type in DESTINATIONS)
        raise SyncConfigError(
            f"destination {destination!r} is a {spec.type} file export, written by each run",
            where="--destination",
            fix=f"sync one of: {synced or '(no API destinations configured)'}",
        )
    return [spec]


def _segments(
    specs: list[ExportSpec], inputs: SyncInputs, segment: str | None, destination: str | None
) -> dict[str, tuple[list[str], list[str]]]:
    """``export name -> (all its segments, segments of this sync)``."""
    if segment is not None and segment not in inputs.known:
        raise SyncConfigError(
            f"unknown segment {segment!r}",
            where="--segment",
            fix=f"use one of the run's segments: {', '.join(inputs.known) or '(none)'}",
        )
    out = {}
    for spec in specs:
        every = list(spec.segments) if spec.segments else list(inputs.known)
        unknown = [s for s in every if s not in inputs.known]
        if unknown:
            raise SyncConfigError(
                f"segment(s) {', '.join(unknown)} are not in this run",
                where=f"exports[{spec.name}].segments",
                fix=f"use the run's segments: {', '.join(inputs.known) or '(none)'}",
            )
        chosen = every if segment is None else [s for s in every if s == segment]
        out[spec.name] = (every, chosen)
    if segment is not None and not any(chosen for _, chosen in out.values()):
        target = f"destination {destination!r}" if destination else "any destination"
        raise SyncConfigError(
            f"segment {segment!r} is not exported to {target}",
            where="--segment",
            fix="add it to the export's segments list, or pick another segment",
        )
    return out


def run_sync(
    params: Params,
    run_dir: Path,
    *,
    segment: str | None = None,
    destination: str | None = None,
    dry_run: bool = False,
    full: bool = False,
    state_path: Path | None = None,
    settings: SyncSettings | None = None,
) -> dict[str, Any]:
    """Sync the segments of a run folder to the destinations in ``params.exports``.

    Parameters
    ----------
    params : Params
        Validated params; ``exports`` entries of type mailchimp, klaviyo, meta, google and
        magnews_csv are synced (file exports are written by the run itself).
    run_dir : Path
        The run folder (``segments/membership.parquet``, ``customers.parquet``).
    segment : str, optional
        Sync only this segment.
    destination : str, optional
        Sync only this export (by name).
    dry_run : bool
        Compute and return the diff; send and write nothing.
    full : bool
        Re-send every member (Meta: replace the audience with ``usersreplace``).
    state_path : Path, optional
        The SQLite state file; default :func:`default_state_path`.
    settings : SyncSettings, optional
        Timeouts, retries and batch caps (tests shrink the delays).

    Returns
    -------
    dict
        ``sync_id``, ``dry_run``, ``full``, ``state_path`` and ``destinations``: per export
        name its ``type``, ``status`` (ok / partial / failed / dry_run), ``error``,
        ``requests`` and ``segments``: per segment the counts ``total``, ``to_add``,
        ``to_update``, ``to_resend``, ``to_remove``, ``unchanged``, ``invalid``,
        ``retrying``, ``failed_permanent``, ``sent``, ``accepted``, ``rejected``,
        ``pending`` (not acknowledged), ``match_rate``, ``match_rate_detail``, ``requests``,
        ``status``, ``error``.

    Raises
    ------
    SyncConfigError
        Unknown segment or destination, missing ids, missing secret (nothing was sent).
    SyncInputError
        The run folder lacks the membership or customers table.
    SyncError
        After all destinations ran, when any of them failed (``.result`` holds the result).
    """
    settings = settings or SyncSettings()
    run_dir = Path(run_dir)
    specs = _select(params, destination)
    extra = {c for s in specs for c in (s.columns or [])}
    for spec in specs:
        extra.update((getattr(spec, "merge_fields", None) or {}).values())
    inputs = load_inputs(run_dir, extra)
    segments = _segments(specs, inputs, segment, destination)
    adapters: list[tuple[Destination, list[str]]] = []
    for spec in specs:
        every, chosen = segments[spec.name]
        if not chosen:
            continue
        cls = DESTINATIONS[spec.type]
        cls.check_config(spec, every)
        secret = None
        if cls.secret_kind and not dry_run:
            secret = resolve_secret(
                spec.api_key_env,
                where=f"exports[{spec.name}].api_key_env",
                kind=cls.secret_kind,
                error=SyncConfigError,
            )
        adapter = cls(spec, settings, secret=secret, run_dir=run_dir, segments=every)
        adapters.append((adapter, chosen))
    state_file = Path(state_path) if state_path else default_state_path(run_dir)
    sync_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    result: dict[str, Any] = {
        "sync_id": sync_id,
        "run_dir": str(run_dir),
        "dry_run": dry_run,
        "full": full,
        "state_path": str(state_file),
        "destinations": {},
    }
    journal = Journal(sync_id)
    crash = CrashHook(settings.crash_after_batches)
    started = datetime.now(UTC)
    use_memory = dry_run and not state_file.exists()
    try:
        store = StateStore(None if use_memory else state_file)
    except SyncConfigError:
        for adapter, _ in adapters:
            adapter.close()
        raise
    with redacting_logs(), store as state:
        if not dry_run:
            state.start_run(sync_id, run_dir, full=full)
        try:
            for adapter, chosen in adapters:
                runner = DestinationSync(
                    adapter, state, inputs, sync_id=sync_id, journal=journal,
                    settings=settings, crash=crash, dry_run=dry_run, full=full,
                )  # fmt: skip
                result["destinations"][adapter.spec.name] = runner.run(chosen)
        finally:
            for adapter, _ in adapters:
                adapter.close()
        failed = [n for n, d in result["destinations"].items() if d["status"] == "failed"]
        if not dry_run:
            state.finish_run(sync_id, "failed" if failed else "ok")
        result["seconds"] = round((datetime.now(UTC) - started).total_seconds(), 3)
        _log_summary(result)
        if not dry_run:
            entry = {k: v for k, v in result.items() if k != "run_dir"}
            entry["started_at"] = started.isoformat(timespec="seconds")
            write_sync_log(run_dir, journal, entry)
    if failed:
        errors = "; ".join(f"{n}: {result['destinations'][n]['error']}" for n in failed)
        raise SyncError(
            f"{len(failed)} of {len(result['destinations'])} destination(s) failed: {errors}",
            where=str(run_dir / "sync" / "sync_log.json"),
            fix="fix the cause and run the sync again: acknowledged members are not re-sent, "
            "pending ones are",
            result=result,
        )
    return result


def _log_summary(result: dict[str, Any]) -> None:
    mode = "dry run" if result["dry_run"] else "sync"
    for name, dest in result["destinations"].items():
        for seg, c in dest["segments"].items():
            log.info(
                "%s %s / %s: total=%d add=%d update=%d remove=%d invalid=%d retrying=%d "
                "sent=%d accepted=%d rejected=%d match_rate=%s status=%s",
                mode, name, seg, c["total"], c["to_add"], c["to_update"], c["to_remove"],
                c["invalid"], c["retrying"], c["sent"], c["accepted"], c["rejected"],
                c["match_rate"], c["status"],
            )  # fmt: skip
