"""Headless runs: atomic run folders, manifest, reruns, failures, the lock, exit codes."""

from __future__ import annotations

import hashlib
import json

import nbformat
import pytest

from workbench import config, runner
from workbench.errors import RunLockedError, WorkbenchError
from workbench.params import load_params

from .conftest import GOOD_ROWS

pytestmark = pytest.mark.notebook
INGEST = [config.NOTEBOOKS_DIR / "01_ingest.ipynb"]


@pytest.fixture
def tiny_params(write_csv, write_params):
    write_csv(GOOD_ROWS)
    return write_params(data={"orders": {"path": "orders.csv"}}, exports=[])


def _run(params_path, out, **kw):
    return runner.run(load_params(params_path), out_root=out, notebooks=INGEST, **kw)


def test_run_folder_and_manifest(tiny_params, tmp_path):
    out = tmp_path / "outputs"
    result = _run(tiny_params, out, params_source=str(tiny_params))
    assert result.run_id == "test_2024-02-01"  # run name + as_of (the last order date)
    run_dir = out / "test_2024-02-01"
    assert result.run_dir == run_dir
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [run_dir.name]
    assert not list(out.glob(".tmp-*"))
    for name in (
        "manifest.json",
        "quarantine.parquet",
        "ingest_summary.json",
        "params.yaml",
        "metrics.json",
        "data/orders.parquet",
        "notebooks/01_ingest.ipynb",
    ):
        assert (run_dir / name).exists(), name
    assert not (run_dir / "work").exists()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    assert manifest["run_id"] == result.run_id and manifest["as_of"] == "2024-02-01"
    assert [s["name"] for s in manifest["steps"]] == ["01_ingest"]
    assert manifest["steps"][0]["seconds"] > 0
    versions = set(manifest["versions"])
    assert {"python", "pandas", "ibis-framework", "duckdb", "lifetimes"} <= versions
    file_info = manifest["inputs"]["orders"]["files"][0]
    src = tmp_path / "orders.csv"
    assert file_info["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert manifest["inputs"]["orders"]["rows_read"] == 4
    executed = nbformat.read(run_dir / "notebooks" / "01_ingest.ipynb", as_version=4)
    assert any(c.get("outputs") for c in executed.cells if c.cell_type == "code")


def test_rerun_replaces_the_period_atomically(tiny_params, tmp_path):
    out = tmp_path / "outputs"
    first = _run(tiny_params, out)
    (first.run_dir / "marker").write_text("old")
    second = _run(tiny_params, out)
    assert second.run_dir == first.run_dir
    assert not (second.run_dir / "marker").exists()
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == [first.run_id]


def test_failed_step_keeps_previous_outputs(tiny_params, write_csv, tmp_path):
    out = tmp_path / "outputs"
    good = _run(tiny_params, out)
    before = (good.run_dir / "manifest.json").read_text()
    write_csv(["1,C1,garbage,P1,1,2.0", "2,C1,junk,P1,1,2.0"])  # every date unreadable
    with pytest.raises(WorkbenchError) as err:
        _run(tiny_params, out)
    assert err.value.exit_code == 2
    assert "bad_timestamp" in err.value.message
    assert (good.run_dir / "manifest.json").read_text() == before  # untouched
    failed = list((out / "failed").iterdir())
    assert len(failed) == 1
    manifest = json.loads((failed[0] / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "bad_timestamp" in manifest["steps"][0]["error"]
    nb = nbformat.read(failed[0] / "notebooks" / "01_ingest.ipynb", as_version=4)
    assert any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
    assert not list(out.glob(".tmp-*"))


def test_lock_refuses_overlapping_runs(tiny_params, tmp_path, run_cli):
    out = tmp_path / "outputs"
    with runner.run_lock(out, "test"):
        with pytest.raises(RunLockedError, match="in progress"):
            _run(tiny_params, out)
        code, _, err = run_cli("run", tiny_params, "--out", out)
    assert code == 3
    assert "another run of 'test' is in progress" in err
    assert not [p for p in out.iterdir() if not p.name.startswith(".")]


def test_cli_run_with_bad_input_exits_2_without_output(write_csv, write_params, tmp_path, run_cli):
    write_csv(GOOD_ROWS, header="order_id,client,ordered_at,product_id,quantity,unit_price")
    params = write_params(data={"orders": {"path": "orders.csv"}})
    out = tmp_path / "outputs"
    code, stdout, err = run_cli("run", params, "--out", out)
    assert code == 2
    assert err.startswith("error: ") and "required column 'customer_id' is missing" in err
    assert "Traceback" not in err + stdout
    assert not out.exists() or not [p for p in out.iterdir() if not p.name.startswith(".")]
