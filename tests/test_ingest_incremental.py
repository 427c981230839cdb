"""Incremental ingest: reusing the last run's rows gives exactly what a full ingest gives."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench import config
from workbench.ingest.pipeline import ingest
from workbench.params import load_params


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A synthetic shop whose orders and events are folders of monthly-ish Parquet files."""
    from workbench.synth import generate

    root = tmp_path_factory.mktemp("incremental")
    generate(300, 3, root / "src", days=400, progress=False, return_rate=0.05)
    orders = pq.read_table(root / "src" / "orders.parquet").to_pandas()
    events = pq.read_table(root / "src" / "events.parquet").to_pandas()
    cut = orders["ordered_at"].max() - pd.Timedelta(days=30)
    parts = {
        "orders": (orders, "ordered_at", pq.read_schema(root / "src" / "orders.parquet")),
        "events": (events, "occurred_at", pq.read_schema(root / "src" / "events.parquet")),
    }
    files = {}
    for name, (frame, col, schema) in parts.items():
        old, new = frame[frame[col] <= cut], frame[frame[col] > cut]
        if name == "orders":  # a line of the old file repeated in the new one
            new = pd.concat([new, old.iloc[[5]]])
        files[name] = {}
        for part, rows in (("old", old), ("new", new)):
            path = root / "parts" / name / f"{part}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            files[name][part] = pa.Table.from_pandas(rows, schema=schema, preserve_index=False)
    return root, files


def _params(root, incremental: bool):
    folder = root / "parts"
    return load_params(
        root / "src" / "params.yaml",
        [
            f"data.orders.path={folder / 'orders'}",
            f"data.events.path={folder / 'events'}",
            f"ingest.incremental={str(incremental).lower()}",
        ],
    )


def _write(root, files, parts) -> None:
    for name, by_part in files.items():
        folder = root / "parts" / name
        for old in folder.glob("*.parquet"):
            old.unlink()
        for part in parts:
            pq.write_table(by_part[part], folder / f"{part}.parquet")


def _publish(run_dir, run_name: str, as_of: str) -> None:
    """Mark a folder as a succeeded run, as the runner does."""
    manifest = {"run_name": run_name, "status": "succeeded", "as_of": as_of}
    (run_dir / config.MANIFEST).write_text(json.dumps(manifest))


def _table(run_dir, name: str) -> pd.DataFrame:
    frame = pq.read_table(run_dir / "data" / f"{name}.parquet").to_pandas()
    return frame.sort_values(list(frame.columns), ignore_index=True)


def _last_month(root, files, out):
    """The previous run: the old files only, ingested and published under ``out``."""
    _write(root, files, ["old"])
    first = out / "synth_2025-01-01"
    ingest(_params(root, True), first, progress=False)
    _publish(first, "synth", "2025-01-01")
    return first


def test_incremental_ingest_equals_a_full_ingest(shop):
    root, files = shop
    out = root / "outputs"
    first = _last_month(root, files, out)

    _write(root, files, ["old", "new"])
    inc_dir = out / "synth_2025-02-01"
    summary = ingest(_params(root, True), inc_dir, progress=False)
    full_dir = root / "full"
    full = ingest(_params(root, False), full_dir, progress=False)

    for name in ("orders", "events"):
        note = summary["incremental"][name]
        assert note["from_run"] == first.name and note["files_reused"] == 1
        assert note["files_new"] == 1 and note["rows_reused"] > 0
        pd.testing.assert_frame_equal(_table(inc_dir, name), _table(full_dir, name))
    for name in ("products", "customers"):
        assert summary["incremental"][name]["full_ingest"]
        pd.testing.assert_frame_equal(_table(inc_dir, name), _table(full_dir, name))
    assert summary["quarantined"] == full["quarantined"]
    assert summary["quarantined"]["orders.duplicate_line"] >= 1  # the repeat across files
    for name in ("orders", "events"):
        a, b = summary["tables"][name], full["tables"][name]
        assert (a["rows_read"], a["rows_kept"]) == (b["rows_read"], b["rows_kept"])
        assert a["facts"] == b["facts"]
    quarantine = [
        pq.read_table(d / config.QUARANTINE).to_pandas().drop(columns="source")
        for d in (inc_dir, full_dir)
    ]
    key = ["table", "reason", "order_id", "customer_id", "ordered_at", "product_id"]
    key = [k for k in key if k in quarantine[0].columns]
    left, right = (q.sort_values(key, ignore_index=True)[key] for q in quarantine)
    pd.testing.assert_frame_equal(left, right)

    # no new file at all: everything is reused as it is
    _publish(inc_dir, "synth", "2025-02-01")
    again = out / ".tmp-synth-again"
    repeat = ingest(_params(root, True), again, progress=False)
    assert repeat["incremental"]["orders"]["files_new"] == 0
    assert repeat["quarantined"] == full["quarantined"]
    pd.testing.assert_frame_equal(_table(again, "orders"), _table(full_dir, "orders"))


def test_an_edited_file_forces_a_full_ingest(shop):
    root, files = shop
    out = root / "outputs_edit"
    _last_month(root, files, out)
    edited = files["orders"]["old"].slice(0, files["orders"]["old"].num_rows - 3)
    pq.write_table(edited, root / "parts" / "orders" / "old.parquet")
    summary = ingest(_params(root, True), out / ".tmp-edit", progress=False)
    assert "changed or went away" in summary["incremental"]["orders"]["full_ingest"]
    assert summary["incremental"]["events"]["files_new"] == 0
    assert summary["tables"]["orders"]["rows_read"] == edited.num_rows
    # a changed rule invalidates the reuse too
    params = _params(root, True).model_copy(update={"currency": "USD"})
    again = ingest(params, out / ".tmp-currency", progress=False)
    assert "params changed" in again["incremental"]["events"]["full_ingest"]
    shutil.rmtree(out)
