"""The command line: help everywhere, validate, clear errors and exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import GOOD_ROWS


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["run", "--help"],
        ["validate", "--help"],
        ["ingest", "--help"],
        ["demo", "--help"],
        ["demo", "synth", "--help"],
    ],
)
def test_help(run_cli, args):
    code, out, _ = run_cli(*args)
    assert code == 0
    assert "Usage" in out


def test_validate_demo(run_cli, project_root):
    code, out, err = run_cli("validate", project_root / "params" / "demo.yaml")
    assert code == 0, err
    assert "orders:" in out and "InvoiceNo" in out and out.strip().endswith("ok")


def test_validate_reports_typo_with_exit_2(run_cli, write_params):
    params = write_params(data={"orders": {"path": "o.csv"}}, modles={"horizon_days": 3})
    code, _out, err = run_cli("validate", params)
    assert code == 2
    assert "modles: unknown key; did you mean 'models'" in err
    assert "Traceback" not in err


def test_validate_with_override(run_cli, write_csv, write_params):
    write_csv(GOOD_ROWS)
    params = write_params(data={"orders": {"path": "orders.csv"}})
    code, _, err = run_cli("validate", params, "--set", "engine=oracle")
    assert code == 2 and "engine:" in err


def test_ingest_command(run_cli, write_csv, write_params, tmp_path):
    write_csv([*GOOD_ROWS, "9,,2024-01-01,P1,1,1"])
    params = write_params(data={"orders": {"path": "orders.csv"}})
    code, out, _ = run_cli("ingest", params, "--out", tmp_path / "ing")
    assert code == 0
    assert "orders: 5 rows read, 4 kept, 1 quarantined" in out
    assert (tmp_path / "ing" / "quarantine.parquet").exists()


def test_console_script_exit_code(tmp_path):
    exe = __import__("pathlib").Path(sys.executable).parent / "workbench"
    proc = subprocess.run(
        [str(exe), "validate", str(tmp_path / "missing.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "params file not found" in proc.stderr
    assert "Traceback" not in proc.stderr
