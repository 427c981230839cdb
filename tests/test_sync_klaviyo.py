"""Klaviyo client against the local fake (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import dataclasses
import time

import httpx
import pytest

from workbench.sync import run_sync
from workbench.sync.klaviyo import KlaviyoClient
from workbench.sync.retry import RateLimiter
from workbench.sync.state import StateStore
from workbench.sync.testing import FakeKlaviyo
from workbench.sync.testing.runfolder import FAST, customers, make_params, write_run

KEY = "pk_test_0123456789abcdef"


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("KL_TEST_KEY", KEY)


def params(fake):
    entry = {"name": "kl", "type": "klaviyo", "api_key_env": "KL_TEST_KEY", "base_url": fake.url}
    return make_params([entry])


def sync(fake, run, tmp_path, **kw):
    kw.setdefault("settings", FAST)
    return run_sync(params(fake), run, state_path=tmp_path / "state.sqlite", **kw)


def counts(result, seg="vip"):
    return result["destinations"]["kl"]["segments"][seg]


def test_adds_updates_removals_small_diffs(env, tmp_path):
    with FakeKlaviyo(KEY) as kl:
        people = customers(12)
        ids = [p["customer_id"] for p in people]
        first = sync(kl, write_run(tmp_path / "r1", people, {"vip": ids[:10]}), tmp_path)
        assert counts(first)["accepted"] == 10
        assert kl.list_external_ids("vip") == set(ids[:10])
        assert len(kl.calls("POST", "/api/profile-import")) == 10
        assert all(r.headers["revision"] == "2026-07-15" for r in kl.requests)
        assert all(r.headers["authorization"] == f"Klaviyo-API-Key {KEY}" for r in kl.requests)
        profile = next(
            p for p in kl.profiles.values() if p["attributes"]["external_id"] == "c0000001"
        )
        assert profile["attributes"]["phone_number"] == "+447911000001"
        assert profile["attributes"]["location"] == {"country": "GB", "zip": "10001"}

        people[0]["last_name"] = "Hopper"
        second = sync(kl, write_run(tmp_path / "r2", people, {"vip": ids[:7] + ids[10:]}), tmp_path)
        c = counts(second)
        assert (c["to_add"], c["to_update"], c["to_remove"]) == (2, 1, 3)
        assert kl.list_external_ids("vip") == set(ids[:7] + ids[10:])
        assert not kl.calls("GET", "/api/profiles")  # ids known from profile-import
        hopper = next(
            p for p in kl.profiles.values() if p["attributes"]["external_id"] == "c0000000"
        )
        assert hopper["attributes"]["last_name"] == "Hopper"


def test_bulk_jobs_split_at_10000_and_removal_by_external_id(env, tmp_path):
    with FakeKlaviyo(KEY) as kl:
        people = customers(10_001)
        ids = [p["customer_id"] for p in people]
        settings = dataclasses.replace(FAST, klaviyo_bulk_min=1)
        result = sync(
            kl, write_run(tmp_path / "r1", people, {"vip": ids}), tmp_path, settings=settings
        )
        jobs = kl.calls("POST", "/api/profile-bulk-import-jobs")
        sizes = [len(r.body["data"]["attributes"]["profiles"]["data"]) for r in jobs]
        assert sizes == [10_000, 1] and counts(result)["accepted"] == 10_001
        assert len(kl.list_external_ids("vip")) == 10_001
        # 1500 leave: ids unknown after bulk import -> looked up by external_id, removed in 1000s
        result = sync(
            kl, write_run(tmp_path / "r2", people, {"vip": ids[1500:]}), tmp_path, settings=settings
        )
        assert counts(result)["to_remove"] == 1500
        deletes = kl.calls("DELETE", r"/relationships/profiles$")
        assert [len(r.body["data"]) for r in deletes] == [1000, 500]
        assert len(kl.calls("GET", "^/api/profiles$")) == 15
        assert kl.list_external_ids("vip") == set(ids[1500:])


def test_server_throttle_429_retry_after_is_honoured(env, tmp_path):
    with FakeKlaviyo(KEY, limits={"list": (1, 150), "import": (75, 750), "read": (10, 150)}) as kl:
        people = customers(6)
        ids = [p["customer_id"] for p in people]
        sync(kl, write_run(tmp_path / "r1", people, {"vip": ids[:3]}), tmp_path)
        t0 = time.monotonic()
        result = sync(kl, write_run(tmp_path / "r2", people, {"vip": ids[3:]}), tmp_path)
        # removal then add hit the 1/s list burst: the second waits for Retry-After
        assert any(r.status == 429 for r in kl.requests)
        assert time.monotonic() - t0 >= 0.9
        assert counts(result)["accepted"] == 6 and kl.list_external_ids("vip") == set(ids[3:])


def test_ratelimit_remaining_zero_pauses_the_limiter():
    client = KlaviyoClient("kl", "http://127.0.0.1:9", FAST)
    limiter = RateLimiter([(100, 1.0)])
    headers = {"RateLimit-Limit": "150", "RateLimit-Remaining": "0", "RateLimit-Reset": "0.2"}
    client.observe(httpx.Response(200, headers=headers), limiter)
    t0 = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - t0 >= 0.15
    client.close()


def test_500s_and_timeouts_are_retried(env, tmp_path):
    with FakeKlaviyo(KEY) as kl:
        kl.inject(status=503, path="/api/profile-import", times=2)
        kl.inject(kind="timeout", path="/relationships/profiles", delay=0.5, apply=True)
        people = customers(4)
        ids = [p["customer_id"] for p in people]
        settings = dataclasses.replace(FAST, timeout=0.2)
        result = sync(
            kl, write_run(tmp_path / "r1", people, {"vip": ids}), tmp_path, settings=settings
        )
        assert counts(result)["accepted"] == 4 and result["destinations"]["kl"]["retries"] == 3
        assert kl.list_external_ids("vip") == set(ids)
        assert len(kl.profiles) == 4  # replays did not create duplicates


def test_invalid_profile_rejected_with_jsonapi_reason(env, tmp_path):
    with FakeKlaviyo(KEY) as kl:
        people = customers(3)
        kl.reject = {"user.1@example.com"}
        result = sync(
            kl,
            write_run(tmp_path / "r1", people, {"vip": [p["customer_id"] for p in people]}),
            tmp_path,
        )
        assert (counts(result)["accepted"], counts(result)["rejected"]) == (2, 1)
        with StateStore(tmp_path / "state.sqlite") as store:
            row = store.load("kl", "vip")["c0000001"]
        assert row.state == "failed" and "/data/attributes/email" in row.last_error


def test_bulk_import_errors_reconciled_now_or_next_run(env, tmp_path):
    with FakeKlaviyo(KEY, job_delay=0.4) as kl:
        people = customers(8)
        ids = [p["customer_id"] for p in people]
        kl.reject = {"user.2@example.com"}
        settings = dataclasses.replace(FAST, klaviyo_bulk_min=1, job_timeout=0.05)
        run = write_run(tmp_path / "r1", people, {"vip": ids})
        first = sync(kl, run, tmp_path, settings=settings)
        assert counts(first)["accepted"] == 8  # acknowledged at 202, job still running
        with StateStore(tmp_path / "state.sqlite") as store:
            assert len(store.open_jobs("kl")) == 1
        time.sleep(0.45)
        kl.reject = set()
        second = sync(kl, run, tmp_path, settings=settings)  # reconciles the job first
        with StateStore(tmp_path / "state.sqlite") as store:
            assert store.open_jobs("kl") == []
        assert counts(second)["to_add"] == 1 and counts(second)["retrying"] == 1
        assert kl.list_external_ids("vip") == set(ids)
        errors = kl.calls("GET", "/import-errors$")
        assert errors and errors[0].query["page[size]"] == ["100"]
