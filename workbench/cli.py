"""The ``workbench`` command line: one entry point, ``--help`` on every command.

Errors meant for users print one clear message (what, where, how to fix) and exit with the
code of their class (2 bad input, 3 locked run, 1 failed step); unexpected errors print one
line and keep the traceback in ``outputs/.logs/``.
"""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from workbench import config
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.params import Params
    from workbench.runner import RunResult

app = typer.Typer(
    help="Audience Workbench: customer segmentation for online shops.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
demo_app = typer.Typer(
    help="Run the shipped demo end to end, or generate synthetic data (demo synth).",
    invoke_without_command=True,
)
app.add_typer(demo_app, name="demo")

ParamsArg = Annotated[Path, typer.Argument(help="params YAML file, e.g. params/demo.yaml")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a key: --set models.horizon_days=60 (repeatable)"),
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="folder holding run folders (default outputs/)")
]
log = logging.getLogger("workbench")


def _echo(text: str) -> None:
    typer.echo(text)


def _load(params_path: Path, overrides: list[str] | None) -> Params:
    from workbench.params import load_params

    return load_params(params_path, overrides or [])


def format_result(values: Any, skip: tuple[str, ...] = (), depth: int = 3) -> str:
    """Nested results as indented ``key: value`` lines (long lists are summarised)."""
    lines: list[str] = []

    def walk(node: Any, indent: int, level: int) -> None:
        for key, value in node.items():
            if key in skip:
                continue
            pad = "  " * indent
            if isinstance(value, dict) and level < depth:
                lines.append(f"{pad}{key}:")
                walk(value, indent + 1, level + 1)
            elif isinstance(value, list) and len(value) > 6:
                lines.append(f"{pad}{key}: [{len(value)} items]")
            elif isinstance(value, float):
                lines.append(f"{pad}{key}: {value:.4g}")
            else:
                lines.append(f"{pad}{key}: {value}")

    walk(values, 0, 0)
    return "\n".join(lines)


def _print_run(result: RunResult) -> None:
    from workbench.ingest.pipeline import format_summary
    from workbench.notebook import read_json

    summary = read_json(result.run_dir / config.INGEST_SUMMARY)
    if summary:
        _echo(format_summary(summary))
    for step in result.steps:
        _echo(f"  step {step['name']:<12} {step['status']:<10} {step.get('seconds', 0):>7.1f} s")
    _echo(f"run {result.run_id} {result.status}: {result.run_dir}")


@app.command()
def run(
    params: ParamsArg,
    out: OutOpt = None,
    set_: SetOpt = None,
) -> None:
    """Execute the notebooks in order with papermill into one run folder."""
    from workbench.ingest.validate import validate_sources
    from workbench.runner import run as run_steps

    p = _load(params, set_)
    validate_sources(p)
    result = run_steps(p, out_root=out, params_source=str(params))
    _print_run(result)


@app.command()
def validate(params: ParamsArg, set_: SetOpt = None) -> None:
    """Check params, sources, column mappings and segment files without running models."""
    from workbench.ingest.validate import validate_sources

    p = _load(params, set_)
    _echo(f"params: {params} is valid (run_name {p.run_name!r}, engine {p.engine})")
    for line in validate_sources(p):
        _echo(line)
    _echo("ok")


@app.command()
def ingest(
    params: ParamsArg,
    out: Annotated[Path, typer.Option("--out", help="folder to write data/ and quarantine to")],
    set_: SetOpt = None,
) -> None:
    """Ingest the sources only (no notebooks): canonical tables, quarantine and summary."""
    from workbench.ingest.pipeline import format_summary
    from workbench.ingest.pipeline import ingest as run_ingest

    p = _load(params, set_)
    summary = run_ingest(p, out)
    _echo(format_summary(summary))


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise WorkbenchError(
            f"{value!r} is not a date", where=option, fix="write it as YYYY-MM-DD"
        ) from None


def _default_out(p: Params, out: Path | None, kind: str) -> Path:
    if out is not None:
        return out
    return config.OUTPUTS_DIR / kind / f"{p.run_name}_{datetime.now(UTC):%Y%m%dT%H%M%S}"


CutoffOpt = Annotated[str, typer.Option("--cutoff", help="last day the models see (YYYY-MM-DD)")]
EvalOutOpt = Annotated[
    Path | None, typer.Option("--out", help="folder for the results (default outputs/<kind>/...)")
]


@app.command()
def backtest(
    params: ParamsArg, cutoff: CutoffOpt, out: EvalOutOpt = None, set_: SetOpt = None
) -> None:
    """Fit the customer models as of a cutoff and compare with what customers did next."""
    from workbench.models.backtest import run_backtest

    p = _load(params, set_)
    folder = _default_out(p, out, "backtests")
    result = run_backtest(p, _date(cutoff, "--cutoff"), folder)
    _echo(format_result(result, skip=("params", "model")))
    _echo(f"written to {folder}")


@app.command("evaluate-interest")
def evaluate_interest(
    params: ParamsArg, cutoff: CutoffOpt, out: EvalOutOpt = None, set_: SetOpt = None
) -> None:
    """Train Interested-In up to a cutoff, score the next horizon, compare with baselines."""
    from workbench.models.interest_eval import run_interest_evaluation

    p = _load(params, set_)
    folder = _default_out(p, out, "interest_eval")
    result = run_interest_evaluation(p, _date(cutoff, "--cutoff"), folder)
    _echo(format_result(result))
    _echo(f"written to {folder}")


@app.command()
def sync(
    params: ParamsArg,
    segment: Annotated[str | None, typer.Option(help="only this segment")] = None,
    destination: Annotated[str | None, typer.Option(help="only this export (by name)")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="compute the diff, send nothing")
    ] = False,
    full: Annotated[bool, typer.Option("--full", help="rebuild: resend everything")] = False,
    run: Annotated[str | None, typer.Option("--run", help="run id (default: the latest)")] = None,
    out: OutOpt = None,
    set_: SetOpt = None,
) -> None:
    """Push the segments of the last run to the destinations in the params' exports."""
    from workbench.notebook import latest_run
    from workbench.rundiff import resolve_run
    from workbench.sync import run_sync

    p = _load(params, set_)
    if run is not None:
        run_dir = resolve_run(run, out)
    else:
        found = latest_run(p.run_name, out)
        if found is None:
            raise WorkbenchError(
                f"no finished run of {p.run_name!r} to sync",
                where=str(out or config.OUTPUTS_DIR),
                fix=f"run `workbench run {params}` first",
            )
        run_dir = found
    result = run_sync(
        p, run_dir, segment=segment, destination=destination, dry_run=dry_run, full=full
    )
    _echo(format_result(result))


@app.command()
def runs(out: OutOpt = None) -> None:
    """List past runs with status, period and timings."""
    from workbench.rundiff import list_runs

    table = list_runs(out)
    _echo(table.to_string(index=False) if len(table) else "no runs yet")


@app.command()
def diff(
    run_a: Annotated[str, typer.Argument(help="earlier run id or folder")],
    run_b: Annotated[str, typer.Argument(help="later run id or folder")],
    out: OutOpt = None,
) -> None:
    """Show what changed between two runs: label moves and segment membership."""
    from workbench.rundiff import diff_runs, format_diff, resolve_run

    _echo(format_diff(diff_runs(resolve_run(run_a, out), resolve_run(run_b, out))))


@demo_app.callback()
def demo(ctx: typer.Context, out: OutOpt = None) -> None:
    """Run the shipped demo (params/demo.yaml: UCI Online Retail) end to end."""
    if ctx.invoked_subcommand is not None:
        return
    from workbench.runner import run as run_steps

    p = _load(config.DEMO_PARAMS, None)
    from workbench.ingest.validate import validate_sources

    validate_sources(p)
    result = run_steps(p, out_root=out, params_source=str(config.DEMO_PARAMS))
    _print_run(result)


@demo_app.command("synth")
def synth(
    out: Annotated[Path, typer.Option("--out", help="output folder")],
    customers: Annotated[int, typer.Option("--customers", min=10, help="customers")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="random seed")] = 0,
    start: Annotated[
        str, typer.Option("--start", help="first day of the simulated window (YYYY-MM-DD)")
    ] = "2023-01-01",
    days: Annotated[int, typer.Option("--days", min=30, help="length of the window")] = 1095,
    events: Annotated[bool, typer.Option("--events/--no-events", help="web events")] = True,
    products: Annotated[
        int | None, typer.Option("--products", min=250, help="catalogue size (default 30,000)")
    ] = None,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", min=1000, help="customers held in memory at once")
    ] = 50_000,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
) -> None:
    """Generate a synthetic shop with planted ground truth (orders, products, customers, events)."""
    from workbench.synth import generate

    info = generate(
        customers=customers,
        seed=seed,
        out=out,
        start=date.fromisoformat(start),
        days=days,
        events=events,
        products=products,
        chunk_size=chunk_size,
        progress=not quiet,
    )
    for key, value in info.items():
        _echo(f"{key}: {value}")


def _log_unexpected(exc: BaseException) -> Path:
    logs = config.OUTPUTS_DIR / ".logs"
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"error-{datetime.now(UTC):%Y%m%dT%H%M%S}.log"
    path.write_text("".join(traceback.format_exception(exc)))
    return path


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn errors into one message and an exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("papermill", "traitlets", "py4j", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        app(args=argv, standalone_mode=False)
    except WorkbenchError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except SystemExit as exc:
        return int(exc.code or 0)
    except Exception as exc:  # noqa: BLE001 - the one place unexpected errors are reported
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            return 1
        path = _log_unexpected(exc)
        typer.echo(f"internal error: {type(exc).__name__}: {exc} (traceback: {path})", err=True)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
