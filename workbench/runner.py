"""Headless runs: execute the notebooks in order with papermill into one run folder.

A run is built in a temporary folder under ``outputs/`` and renamed to ``outputs/<run_id>``
only when every step succeeded, so readers never see half a run and a failed run leaves the
previous outputs intact. A failed run's folder (with the executed notebook showing the error)
moves to ``outputs/failed/``. A lock file per ``run_name`` stops two runs from overlapping.

Exit codes: 0 success, 1 a step failed, 2 invalid params or input, 3 another run holds the lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import platform
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from workbench import config, engine
from workbench.errors import RunLockedError, StepFailedError, WorkbenchError
from workbench.notebook import read_json, write_json_atomic
from workbench.params import Params, dump_params, redact

log = logging.getLogger(__name__)

#: Notebooks of a run, in order; those not (yet) in notebooks/ are skipped.
STEPS = ("01_ingest", "02_features", "02_interest", "03_segments", "04_report")
#: The step whose executed notebook becomes ``report.html``.
REPORT_STEP = "04_report"
#: Packages whose versions go into the manifest.
VERSIONED = (
    "audience-workbench",
    "pandas",
    "numpy",
    "scipy",
    "scikit-learn",
    "lifetimes",
    "ibis-framework",
    "duckdb",
    "pyspark",
    "pyarrow",
    "papermill",
    "seaborn",
    "pydantic",
)


@dataclass
class RunResult:
    """Outcome of one run."""

    run_id: str
    run_dir: Path
    status: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def steps_available(notebooks_dir: Path = config.NOTEBOOKS_DIR) -> list[Path]:
    """The notebooks a run executes, in order."""
    return [notebooks_dir / f"{s}.ipynb" for s in STEPS if (notebooks_dir / f"{s}.ipynb").exists()]


@contextmanager
def run_lock(out_root: Path, run_name: str) -> Iterator[Path]:
    """Hold an exclusive, non-blocking lock for ``run_name``; the OS frees it if we die."""
    locks = out_root / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    path = locks / f"{run_name}.lock"
    fh = open(path, "a+")  # held for the whole run
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip()
        fh.close()
        raise RunLockedError(
            f"another run of {run_name!r} is in progress ({holder or 'pid unknown'})",
            where=str(path),
            fix="wait for it to finish; the lock is released automatically when it ends",
        ) from None
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {datetime.now(UTC).isoformat(timespec='seconds')}")
        fh.flush()
        yield path
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape a run's results."""
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def run_id_for(params: Params, run_dir: Path) -> str:
    """``<run_name>_<as_of date>``: one folder per period, so a rerun replaces it."""
    from workbench.notebook import RunContext

    try:
        return RunContext(params=params, run_dir=run_dir).run_id
    except WorkbenchError:  # no ingest summary (no ingest step): the day of the run
        return f"{params.run_name}_{datetime.now(UTC).date().isoformat()}"


def _inputs(run_dir: Path) -> dict[str, Any]:
    summary = read_json(run_dir / config.INGEST_SUMMARY)
    return {
        name: {
            "source": rep.get("source"),
            "files": rep.get("files", []),
            "rows_read": rep.get("rows_read"),
            "rows_kept": rep.get("rows_kept"),
            "rows_quarantined": sum(rep.get("quarantined", {}).values()),
        }
        for name, rep in summary.get("tables", {}).items()
    }


def _swap_into_place(tmp: Path, final: Path) -> None:
    """Replace ``final`` by ``tmp`` with renames only (each atomic on one file system)."""
    old = None
    if final.exists():
        old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _execute(notebook: Path, output: Path, parameters: dict[str, Any]) -> None:
    import papermill as pm

    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    pm.execute_notebook(
        str(notebook),
        str(output),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(config.PROJECT_DIR),
        progress_bar=False,
        log_output=False,
        request_save_on_cell_execute=False,
    )


def _step_error(exc: Exception, step: str) -> WorkbenchError:
    """Turn a notebook failure into one clear message; user errors keep their own."""
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    if ename in {"InputDataError", "ParamsError", "SegmentSpecError"}:
        err = WorkbenchError(evalue)
        err.exit_code = 2
        return err
    if "spark.driver.maxResultSize" in str(evalue):  # the JVM's text is a long stack trace
        return StepFailedError(
            f"{ename}: {engine.SPARK_RESULT_TOO_LARGE}",
            where=f"step {step}",
            fix=engine.SPARK_RESULT_FIX,
        )
    return StepFailedError(f"{ename}: {evalue}", where=f"step {step}")


def run(
    params: Params,
    *,
    out_root: Path | None = None,
    notebooks: list[Path] | None = None,
    params_source: str | None = None,
) -> RunResult:
    """Execute every step for ``params`` and publish the run folder.

    Parameters
    ----------
    params : Params
        Validated parameters.
    out_root : Path, optional
        Folder holding run folders (default ``outputs/``).
    notebooks : list of Path, optional
        Notebooks to execute (default :func:`steps_available`).
    params_source : str, optional
        Path of the params file, recorded in the manifest.

    Raises
    ------
    RunLockedError
        Another run with the same ``run_name`` holds the lock.
    StepFailedError, WorkbenchError
        A step failed; the run folder moved to ``out_root/failed/``.
    """
    out_root = Path(out_root or config.OUTPUTS_DIR)
    out_root.mkdir(parents=True, exist_ok=True)
    notebooks = notebooks if notebooks is not None else steps_available()
    with run_lock(out_root, params.run_name):
        tmp = out_root / f".tmp-{params.run_name}-{uuid.uuid4().hex[:8]}"
        (tmp / "notebooks").mkdir(parents=True)
        (tmp / config.RESOLVED_PARAMS).write_text(dump_params(params))
        started = datetime.now(UTC)
        manifest: dict[str, Any] = {
            "run_name": params.run_name,
            "status": "running",
            "started_at": started.isoformat(timespec="seconds"),
            "params_file": params_source,
            "params": redact(params.model_dump(mode="json")),
            "engine": params.engine,
            "versions": package_versions(),
            "host": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "steps": [],
        }
        parameters = params.notebook_parameters(tmp)
        for nb in notebooks:
            step = {"name": nb.stem, "notebook": f"notebooks/{nb.name}", "status": "running"}
            manifest["steps"].append(step)
            t0 = time.perf_counter()
            log.info("step %s ...", nb.stem)
            try:
                _execute(nb, tmp / "notebooks" / nb.name, parameters)
            except Exception as exc:  # noqa: BLE001 - reported and re-raised as a user error
                step.update(status="failed", seconds=round(time.perf_counter() - t0, 2))
                error = _step_error(exc, nb.stem)
                step["error"] = error.message
                _fail(tmp, out_root, params, manifest, started)
                raise error from None
            step.update(status="succeeded", seconds=round(time.perf_counter() - t0, 2))
            log.info("step %s done in %.1f s", nb.stem, step["seconds"])
            write_json_atomic(tmp / config.MANIFEST, manifest)
        report = tmp / "notebooks" / f"{REPORT_STEP}.ipynb"
        if report.exists():
            from workbench.report.render import render_html

            render_html(report, tmp / "report.html", title=f"{params.run_name}: segment report")
        shutil.rmtree(tmp / "work", ignore_errors=True)
        run_id = run_id_for(params, tmp)
        finished = datetime.now(UTC)
        manifest.update(
            run_id=run_id,
            status="succeeded",
            finished_at=finished.isoformat(timespec="seconds"),
            seconds=round((finished - started).total_seconds(), 2),
            as_of=run_id.rsplit("_", 1)[1],
            inputs=_inputs(tmp),
        )
        write_json_atomic(tmp / config.MANIFEST, manifest)
        final = out_root / run_id
        _swap_into_place(tmp, final)
        return RunResult(run_id, final, "succeeded", manifest["steps"], manifest)


def _fail(
    tmp: Path, out_root: Path, params: Params, manifest: dict[str, Any], started: datetime
) -> Path:
    finished = datetime.now(UTC)
    manifest.update(
        status="failed",
        finished_at=finished.isoformat(timespec="seconds"),
        seconds=round((finished - started).total_seconds(), 2),
    )
    write_json_atomic(tmp / config.MANIFEST, manifest)
    shutil.rmtree(tmp / "work", ignore_errors=True)
    failed = out_root / "failed" / f"{params.run_name}_{started:%Y%m%dT%H%M%S}"
    failed.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, failed)
    log.error("run failed; executed notebooks kept in %s", failed)
    return failed
