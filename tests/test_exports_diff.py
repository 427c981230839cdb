"""Membership diff against the previous run of the same run_name."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from workbench.exports.diff import membership_diff, output_root, previous_run, write_diff


def _run(root, name, finished, members, status="succeeded"):
    folder = root / name
    (folder / "segments").mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"status": status, "finished_at": finished}))
    segs = [s for s, ids in members.items() for _ in ids]
    ids = [i for _, group in members.items() for i in group]
    table = pa.table({"segment": pa.array(segs, pa.string()), "customer_id": pa.array(ids)})
    pq.write_table(table, folder / "segments" / "membership.parquet")
    return folder


def test_previous_run_skips_current_period_failed_and_other_names(tmp_path):
    out = tmp_path / "outputs"
    may = _run(out, "smoke_2024-05-31", "2024-06-01T02:00:00", {"vip": ["A"]})
    _run(out, "smoke_2024-06-30", "2024-07-01T02:00:00", {"vip": ["B"]})  # being rerun
    _run(out, "smoke_2024-04-30", "2024-05-01T02:00:00", {"vip": ["C"]})
    _run(out, "smoke_2024-06-15", "2024-06-16T02:00:00", {"vip": ["D"]}, status="failed")
    _run(out, "other_2024-06-20", "2024-06-21T02:00:00", {"vip": ["E"]})
    tmp_run = out / ".tmp-smoke-1a2b3c4d"
    tmp_run.mkdir()
    assert output_root(tmp_run) == out.resolve()
    assert previous_run(tmp_run, "smoke", "smoke_2024-06-30") == may.resolve()
    # without the current id, the latest finished run is the previous one
    assert previous_run(tmp_run, "smoke").name == "smoke_2024-06-30"
    # the lab folder looks in outputs/
    lab = out / "lab" / "smoke"
    lab.mkdir(parents=True)
    assert output_root(lab) == out.resolve()
    assert previous_run(lab, "smoke", "smoke_2024-06-30") == may.resolve()
    assert previous_run(tmp_run, "nothing") is None


def test_membership_diff_counts():
    now = pa.table({"segment": ["vip", "vip", "new"], "customer_id": ["A", "B", "Z"]})
    before = pa.table({"segment": ["vip", "vip", "gone"], "customer_id": ["B", "C", "Y"]})
    diff = membership_diff(now, before, ["vip", "new", "gone"])
    assert diff["vip"] == {"added": ["A"], "removed": ["C"], "stayed": ["B"]}
    assert diff["new"] == {"added": ["Z"], "removed": [], "stayed": []}
    assert diff["gone"] == {"added": [], "removed": ["Y"], "stayed": []}
    first = membership_diff(now, None, ["vip"])
    assert first["vip"]["added"] == ["A", "B"]


def test_write_diff_files(tmp_path):
    out = tmp_path / "outputs"
    _run(out, "smoke_2024-05-31", "2024-06-01T02:00:00", {"vip": ["A", "B"], "lost": ["C"]})
    current = out / ".tmp-smoke-ffff0000"
    current.mkdir()
    members = pa.table({"segment": ["vip", "vip", "lost"], "customer_id": ["B", "D", "C"]})
    counts = write_diff(current, members, ["vip", "lost"], "smoke", "smoke_2024-06-30")
    assert counts.to_dict("records") == [
        {"segment": "vip", "previous_run": "smoke_2024-05-31", "previous": 2, "current": 2,
         "added": 1, "removed": 1, "stayed": 1},
        {"segment": "lost", "previous_run": "smoke_2024-05-31", "previous": 1, "current": 1,
         "added": 0, "removed": 0, "stayed": 1},
    ]  # fmt: skip
    folder = current / "segments" / "diff"
    assert list(pd.read_csv(folder / "vip.added.csv")["customer_id"]) == ["D"]
    assert list(pd.read_csv(folder / "vip.removed.csv")["customer_id"]) == ["A"]
    assert list(pd.read_csv(folder / "lost.stayed.csv")["customer_id"]) == ["C"]
    assert pd.read_csv(folder / "lost.added.csv").empty
