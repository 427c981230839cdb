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
from typing import Annotated

import typer

from workbench import config
from workbench.errors import WorkbenchError

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


def _load(params_path: Path, overrides: list[str] | None):
    from workbench.params import load_params

    return load_params(params_path, overrides or [])


def _print_run(result) -> None:
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
