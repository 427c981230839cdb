"""run_sync across destinations: dry runs, configuration errors, isolation, logs, CSV route."""

from __future__ import annotations

import csv
import dataclasses
import json
import socket
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from workbench.sync import SyncConfigError, SyncError, SyncInputError, run_sync, sync_summary
from workbench.sync.testing import FakeGoogle, FakeKlaviyo, FakeMailchimp, FakeMeta
from workbench.sync.testing.runfolder import FAST, customers, make_params, write_run

KEYS = {
    "MC_KEY": "mc0123456789-us5",
    "KL_KEY": "pk_0123456789abc",
    "FB_TOKEN": "EAAB0123456789",
    "GO_TOKEN": "ya29.0123456789",
}


@pytest.fixture
def fakes(monkeypatch):
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    mc, kl = FakeMailchimp(KEYS["MC_KEY"]), FakeKlaviyo(KEYS["KL_KEY"])
    fb, go = (
        FakeMeta(KEYS["FB_TOKEN"], account="act_7"),
        FakeGoogle(KEYS["GO_TOKEN"], account_id="99"),
    )
    for fake in (mc, kl, fb, go):
        fake.start()
    mc.add_list("L1")
    go.add_list("555")
    yield {"mc": mc, "kl": kl, "fb": fb, "go": go}
    for fake in (mc, kl, fb, go):
        fake.stop()


def exports(f, **overrides):
    entries = [
        {"name": "mc", "type": "mailchimp", "list_id": "L1", "api_key_env": "MC_KEY",
         "base_url": f["mc"].url + "/3.0"},
        {"name": "kl", "type": "klaviyo", "api_key_env": "KL_KEY", "base_url": f["kl"].url},
        {"name": "fb", "type": "meta", "account_id": "7", "api_key_env": "FB_TOKEN",
         "base_url": f["fb"].url},
        {"name": "go", "type": "google", "account_id": "99", "audience_id": "555",
         "segments": ["vip"], "api_key_env": "GO_TOKEN", "base_url": f["go"].url},
        {"name": "magnews", "type": "magnews_csv", "columns": ["first_name", "country"]},
        {"name": "files", "type": "csv"},
    ]  # fmt: skip
    return [{**e, **overrides.get(e["name"], {})} for e in entries]


def sync(params, run, tmp_path, **kw):
    kw.setdefault("settings", FAST)
    return run_sync(params, run, state_path=tmp_path / "state.sqlite", **kw)


@pytest.fixture
def run1(tmp_path):
    people = customers(40)
    ids = [p["customer_id"] for p in people]
    return write_run(tmp_path / "outputs" / "r1", people, {"vip": ids[:30]})


def test_dry_run_sends_nothing_writes_nothing_then_shows_the_diff(fakes, run1, tmp_path):
    params = make_params(exports(fakes))
    result = sync(params, run1, tmp_path, dry_run=True)
    assert all(fake.requests == [] for fake in fakes.values())
    assert not (run1 / "sync").exists() and not (tmp_path / "state.sqlite").exists()
    assert set(result["destinations"]) == {
        "mc",
        "kl",
        "fb",
        "go",
        "magnews",
    }  # csv file export skipped
    for dest in result["destinations"].values():
        assert dest["status"] == "dry_run" and dest["segments"]["vip"]["to_add"] == 30
    sync(params, run1, tmp_path)
    sent = {name: len(fake.requests) for name, fake in fakes.items()}
    people = customers(40)
    ids = [p["customer_id"] for p in people]
    run2 = write_run(tmp_path / "outputs" / "r2", people, {"vip": ids[5:35]})
    preview = sync(params, run2, tmp_path, dry_run=True)
    for dest in preview["destinations"].values():
        c = dest["segments"]["vip"]
        assert (c["to_add"], c["to_remove"], c["unchanged"]) == (5, 5, 25)
    assert {name: len(fake.requests) for name, fake in fakes.items()} == sent


def test_dry_run_needs_no_secrets(fakes, run1, tmp_path, monkeypatch):
    for name in KEYS:
        monkeypatch.delenv(name)
    result = sync(make_params(exports(fakes)), run1, tmp_path, dry_run=True)
    assert result["destinations"]["mc"]["segments"]["vip"]["to_add"] == 30


def test_names_are_checked_before_anything_is_sent(fakes, run1, tmp_path):
    params = make_params(exports(fakes))
    cases = [
        ({"destination": "nope"}, "unknown destination 'nope'"),
        ({"destination": "files"}, "file export"),
        ({"segment": "nope"}, "unknown segment 'nope'"),
    ]
    for kwargs, message in cases:
        with pytest.raises(SyncConfigError, match=message) as info:
            sync(params, run1, tmp_path, **kwargs)
        assert info.value.fix
    bad = make_params(exports(fakes, mc={"segments": ["vip", "ghost"]}))
    with pytest.raises(SyncConfigError, match="ghost") as info:
        sync(bad, run1, tmp_path)
    assert info.value.where == "exports[mc].segments"
    assert all(fake.requests == [] for fake in fakes.values())
    with pytest.raises(SyncInputError, match="membership"):
        sync(params, tmp_path, tmp_path)


def test_missing_secret_names_the_variable_and_dotenv_is_read(fakes, run1, tmp_path, monkeypatch):
    monkeypatch.delenv("MC_KEY")
    monkeypatch.chdir(tmp_path)
    params = make_params(exports(fakes))
    with pytest.raises(SyncConfigError) as info:
        sync(params, run1, tmp_path, destination="mc")
    assert "MC_KEY" in info.value.message and ".env" in info.value.fix
    assert fakes["mc"].requests == []
    (tmp_path / ".env").write_text(f"MC_KEY={KEYS['MC_KEY']}\n", encoding="utf-8")
    result = sync(params, run1, tmp_path, destination="mc")
    assert result["destinations"]["mc"]["segments"]["vip"]["accepted"] == 30


def test_one_failing_destination_does_not_stop_the_others(fakes, run1, tmp_path):
    fakes["mc"].inject(status=500, times=10_000)
    params = make_params(exports(fakes))
    settings = dataclasses.replace(FAST, max_attempts=5, breaker_threshold=3)
    with pytest.raises(SyncError) as info:
        sync(params, run1, tmp_path, settings=settings)
    result = info.value.result
    assert result["destinations"]["mc"]["status"] == "failed"
    assert "consecutive failures" in result["destinations"]["mc"]["error"]
    assert len(fakes["mc"].requests) == 3  # circuit opened: no hammering
    for name in ("kl", "fb", "go", "magnews"):
        assert result["destinations"][name]["status"] == "ok"
    assert fakes["kl"].list_external_ids("vip") and fakes["go"].size("555") == 30
    assert "mc" in info.value.message and info.value.fix
    # the destination comes back: everything pending is sent, the others send nothing
    fakes["mc"].faults.clear()
    before = {n: len(f.requests) for n, f in fakes.items()}
    again = sync(params, run1, tmp_path, settings=settings)
    assert again["destinations"]["mc"]["segments"]["vip"]["accepted"] == 30
    assert len(fakes["mc"].segment_emails("L1", "vip")) == 30
    for name in ("kl", "go"):
        writes = [r for r in fakes[name].requests[before[name] :] if r.method != "GET"]
        assert writes == []


def test_unreachable_api_is_reported_after_retries(run1, tmp_path, monkeypatch):
    monkeypatch.setenv("MC_KEY", KEYS["MC_KEY"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    entry = {"name": "mc", "type": "mailchimp", "list_id": "L1", "api_key_env": "MC_KEY"}
    params = make_params([{**entry, "base_url": f"http://127.0.0.1:{port}/3.0"}])
    with pytest.raises(SyncError) as info:
        sync(params, run1, tmp_path)
    assert "connection failed" in info.value.message
    assert info.value.result["destinations"]["mc"]["segments"]["vip"]["status"] == "failed"


def test_sync_log_in_the_run_folder(fakes, run1, tmp_path):
    sync(make_params(exports(fakes)), run1, tmp_path)
    log = json.loads((run1 / "sync" / "sync_log.json").read_text())
    entry = log["syncs"][-1]
    assert entry["destinations"]["fb"]["segments"]["vip"]["accepted"] == 30
    assert entry["destinations"]["fb"]["segments"]["vip"]["match_rate"] is not None
    with open(run1 / "sync" / "operations.csv", encoding="utf-8") as fh:
        ops = list(csv.DictReader(fh))
    assert {o["destination"] for o in ops} == {"mc", "kl", "fb", "go", "magnews"}
    assert all(o["status"] == "ok" and o["sync_id"] == entry["sync_id"] for o in ops)
    changes = pq.read_table(run1 / entry["changes_file"]).to_pylist()
    assert len([c for c in changes if c["destination"] == "mc"]) == 30
    summary = sync_summary(run1)
    assert {(r["destination"], r["segment"]) for r in summary} == {
        (d, "vip") for d in ("mc", "kl", "fb", "go", "magnews")
    }
    assert all(r["accepted"] == 30 and r["status"] == "ok" for r in summary)
    text = "".join(p.read_text(errors="ignore") for p in (run1 / "sync").glob("*.*"))
    assert "@example.com" not in text  # no plaintext PII in the logs


def test_csv_route_writes_full_add_and_remove_files(fakes, run1, tmp_path):
    params = make_params(exports(fakes))
    sync(params, run1, tmp_path, destination="magnews")
    folder = run1 / "sync" / "magnews"
    rows = list(csv.DictReader(open(folder / "vip.csv", encoding="utf-8")))
    assert len(rows) == 30 and list(rows[0]) == ["email", "first_name", "country", "segment"]
    assert rows[0] == {
        "email": "user.0@example.com",
        "first_name": "FirstA",
        "country": "IT",
        "segment": "vip",
    }
    people = customers(40)
    ids = [p["customer_id"] for p in people]
    run2 = write_run(tmp_path / "outputs" / "r2", people, {"vip": ids[2:32]})
    sync(params, run2, tmp_path, destination="magnews")
    folder2 = run2 / "sync" / "magnews"
    adds = [r["email"] for r in csv.DictReader(open(folder2 / "vip.add.csv", encoding="utf-8"))]
    removes = [
        r["email"] for r in csv.DictReader(open(folder2 / "vip.remove.csv", encoding="utf-8"))
    ]
    assert adds == ["user.30@example.com", "user.31@example.com"]
    assert removes == ["user.0@example.com", "user.1@example.com"]


def test_emptied_segment_and_changed_target(fakes, run1, tmp_path):
    params = make_params(exports(fakes))
    sync(params, run1, tmp_path, destination="mc")
    empty = write_run(tmp_path / "outputs" / "r2", customers(40), {}, empty_segments=["vip"])
    result = sync(params, empty, tmp_path, destination="mc")
    assert result["destinations"]["mc"]["segments"]["vip"]["to_remove"] == 30
    assert fakes["mc"].segment_emails("L1", "vip") == set()
    # pointing the export at another audience starts over there (state of L1 is discarded)
    fakes["mc"].add_list("L2")
    moved = make_params(exports(fakes, mc={"list_id": "L2"}))
    result = sync(moved, run1, tmp_path, destination="mc")
    assert result["destinations"]["mc"]["segments"]["vip"]["to_add"] == 30
    assert len(fakes["mc"].segment_emails("L2", "vip")) == 30


def test_default_state_lives_beside_the_run_folders(fakes, run1, tmp_path):
    result = run_sync(make_params(exports(fakes)), run1, destination="magnews", settings=FAST)
    assert Path(result["state_path"]) == (tmp_path / "outputs" / ".sync" / "state.sqlite").resolve()
    assert Path(result["state_path"]).exists()


def test_reads_spark_style_parquet_folders(fakes, tmp_path):
    import pyarrow as pa

    people = customers(6)
    run = tmp_path / "outputs" / "spark"
    (run / "customers.parquet").mkdir(parents=True)
    (run / "segments" / "membership.parquet").mkdir(parents=True)
    for i, part in enumerate((people[:3], people[3:])):
        pq.write_table(pa.Table.from_pylist(part), run / "customers.parquet" / f"part-{i}.parquet")
        members = pa.table(
            {"segment": ["vip"] * len(part), "customer_id": [p["customer_id"] for p in part]}
        )
        pq.write_table(members, run / "segments" / "membership.parquet" / f"part-{i}.parquet")
    result = sync(make_params(exports(fakes)), run, tmp_path, destination="mc")
    assert result["destinations"]["mc"]["segments"]["vip"]["accepted"] == 6
