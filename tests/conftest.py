"""Shared fixtures: small input files, params files, the CLI, a local Spark session."""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path
from typing import Any

import pytest
import yaml

from workbench import config

ORDERS_HEADER = "order_id,customer_id,ordered_at,product_id,quantity,unit_price"
GOOD_ROWS = [
    "1001,C1,2024-01-05 10:00:00,P1,2,3.50",
    "1001,C1,2024-01-05 10:00:00,P2,1,10.00",
    "1002,C2,2024-01-06 11:30:00,P1,1,3.50",
    "1003,C1,2024-02-01 09:15:00,P3,4,1.25",
]


@pytest.fixture
def project_root() -> Path:
    return config.PROJECT_DIR


@pytest.fixture
def write_csv(tmp_path: Path):
    """Write text lines to a file in tmp_path (with an encoding) and return its path."""

    def _write(
        lines: list[str],
        name: str = "orders.csv",
        header: str | None = ORDERS_HEADER,
        encoding: str = "utf-8",
    ) -> Path:
        path = tmp_path / name
        body = "\n".join(([header] if header is not None else []) + lines) + "\n"
        path.write_bytes(body.encode(encoding))
        return path

    return _write


@pytest.fixture
def write_params(tmp_path: Path):
    """Write a params YAML file with the given ``data`` sources; returns its path."""

    def _write(name: str = "params.yaml", **values: Any) -> Path:
        raw = {"run_name": "test", "currency": "EUR", **values}
        path = tmp_path / name
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return path

    return _write


@pytest.fixture
def run_cli(capsys):
    """Run ``workbench`` in-process; returns (exit code, stdout, stderr)."""
    from workbench.cli import main

    def _run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for the whole test session."""
    pytest.importorskip("pyspark")
    from workbench.engine import spark_session

    return spark_session(master="local[2]", driver_memory="2g", shuffle_partitions=2)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """Every notebook on params/smoke.yaml (DuckDB), once per test session."""
    from workbench import runner
    from workbench.params import load_params

    out = tmp_path_factory.mktemp("smoke_outputs")
    params = load_params(config.PARAMS_DIR / "smoke.yaml")
    return runner.run(params, out_root=out, params_source="params/smoke.yaml")
