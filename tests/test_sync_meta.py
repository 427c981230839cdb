"""Meta custom-audience client against the local fake (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from workbench.exports.identifiers import sha256_hex
from workbench.sync import SyncError, run_sync
from workbench.sync.testing import FakeMeta
from workbench.sync.testing.runfolder import FAST, customers, make_params, write_run

TOKEN = "EAAB-test-token-0123456789"


@pytest.fixture
def meta(monkeypatch):
    monkeypatch.setenv("META_TEST_TOKEN", TOKEN)
    with FakeMeta(TOKEN, account="act_42") as fake:
        yield fake


def params(fake, **extra):
    entry = {"name": "fb", "type": "meta", "account_id": "42", "api_key_env": "META_TEST_TOKEN"}
    return make_params([{**entry, "base_url": fake.url, **extra}])


def sync(fake, run, tmp_path, **kw):
    kw.setdefault("settings", FAST)
    return run_sync(params(fake), run, state_path=tmp_path / "state.sqlite", **kw)


def counts(result, seg="vip"):
    return result["destinations"]["fb"]["segments"][seg]


def payload_rows(request):
    return json.loads(request.body["payload"])["data"]


def test_adds_removals_and_identity_change(meta, tmp_path):
    people = customers(20)
    ids = [p["customer_id"] for p in people]
    first = sync(meta, write_run(tmp_path / "r1", people, {"vip": ids[:15]}), tmp_path)
    audience = meta.audience_by_name("vip")
    assert audience and meta.extern_ids(audience) == set(ids[:15])
    assert counts(first)["match_rate"] == pytest.approx(int(15 * 0.95) / 15, abs=1e-3)
    create = meta.calls("POST", "customaudiences")[0].body
    assert create["customer_file_source"] == "USER_PROVIDED_ONLY" and create["subtype"] == "CUSTOM"
    row = payload_rows(meta.calls("POST", "/users$")[0])[0]
    assert row[0] == sha256_hex("user.0@example.com") and row[-1] == "c0000000"
    assert all("access_token" in (r.body or r.query) for r in meta.requests)
    assert not any("access_token" in r.query for r in meta.requests if r.method != "GET")

    people[1]["email"] = "changed@example.com"  # new hashed row: delete old, add new
    second = sync(meta, write_run(tmp_path / "r2", people, {"vip": ids[:10] + ids[15:]}), tmp_path)
    c = counts(second)
    assert (c["to_add"], c["to_update"], c["to_remove"]) == (5, 1, 5)
    assert meta.extern_ids(audience) == set(ids[:10] + ids[15:])
    emails = {r[0] for r in meta.audiences[audience]["rows"]}
    assert sha256_hex("user.1@example.com") not in emails
    assert sha256_hex("changed@example.com") in emails
    assert meta.calls("DELETE", "/users$")  # removals went first
    assert meta.requests.index(meta.calls("DELETE")[0]) < meta.requests.index(
        meta.calls("POST", "/users$")[-1]
    )


def test_batches_split_at_10000(meta, tmp_path):
    people = customers(10_001)
    run = write_run(tmp_path / "r1", people, {"vip": [p["customer_id"] for p in people]})
    result = sync(meta, run, tmp_path)
    assert [len(payload_rows(r)) for r in meta.calls("POST", "/users$")] == [10_000, 1]
    assert counts(result)["accepted"] == 10_001


def test_full_sync_replaces_the_audience_in_one_session(meta, tmp_path):
    people = customers(10)
    ids = [p["customer_id"] for p in people]
    sync(meta, write_run(tmp_path / "r1", people, {"vip": ids}), tmp_path)
    audience = meta.audience_by_name("vip")
    meta.audiences[audience]["rows"].add(("f" * 64, "", "", "", "", "", "stray"))  # added by hand
    settings = dataclasses.replace(FAST, max_batch=4)
    result = sync(
        meta,
        write_run(tmp_path / "r2", people, {"vip": ids[:9]}),
        tmp_path,
        full=True,
        settings=settings,
    )
    sessions = [json.loads(r.body["session"]) for r in meta.calls("POST", "/usersreplace$")]
    assert [s["batch_seq"] for s in sessions] == [1, 2, 3]
    assert [s["last_batch_flag"] for s in sessions] == [False, False, True]
    assert len({s["session_id"] for s in sessions}) == 1
    assert meta.extern_ids(audience) == set(ids[:9])  # stray row and the leaver are gone
    assert counts(result)["accepted"] == 9 and not meta.calls("DELETE")


def test_throttle_codes_and_transient_errors_are_retried(meta, tmp_path):
    throttled = {"error": {"message": "User request limit reached", "type": "OAuthException",
                           "code": 17, "error_subcode": 2446079, "fbtrace_id": "x"}}  # fmt: skip
    meta.inject(status=400, body=throttled, path="/users$")
    meta.inject(status=500, path="/users$")  # code 2, is_transient
    meta.inject(kind="timeout", path="/users$", delay=0.5, apply=True)
    people = customers(5)
    settings = dataclasses.replace(FAST, timeout=0.2)
    result = sync(
        meta,
        write_run(tmp_path / "r1", people, {"vip": [p["customer_id"] for p in people]}),
        tmp_path,
        settings=settings,
    )
    assert counts(result)["accepted"] == 5 and result["destinations"]["fb"]["retries"] == 3
    assert len(meta.audiences[meta.audience_by_name("vip")]["rows"]) == 5


def test_invalid_entry_samples_reject_those_members(meta, tmp_path):
    people = customers(5)
    meta.reject = {sha256_hex("user.3@example.com")}
    result = sync(
        meta,
        write_run(tmp_path / "r1", people, {"vip": [p["customer_id"] for p in people]}),
        tmp_path,
    )
    c = counts(result)
    assert (c["accepted"], c["rejected"], c["status"]) == (4, 1, "partial")
    meta.reject = set()
    again = sync(
        meta,
        write_run(tmp_path / "r2", people, {"vip": [p["customer_id"] for p in people]}),
        tmp_path,
    )
    assert counts(again)["retrying"] == 1 and counts(again)["accepted"] == 1


def test_bad_token_stops_the_destination_with_a_clear_message(meta, tmp_path, monkeypatch):
    monkeypatch.setenv("META_TEST_TOKEN", "wrong-token-value")
    people = customers(3)
    with pytest.raises(SyncError) as info:
        sync(
            meta,
            write_run(tmp_path / "r1", people, {"vip": [p["customer_id"] for p in people]}),
            tmp_path,
        )
    dest = info.value.result["destinations"]["fb"]
    assert dest["status"] == "failed" and "code 190" in dest["error"]
    assert "wrong-token-value" not in str(info.value) and len(meta.requests) == 1
