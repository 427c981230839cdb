"""Mailchimp client against the local fake (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import dataclasses
import time

import pytest

from workbench.sync import run_sync
from workbench.sync.state import StateStore
from workbench.sync.testing import FakeMailchimp
from workbench.sync.testing.runfolder import FAST, customers, make_params, write_run

KEY = "0123456789abcdef-us9"


@pytest.fixture
def mc(monkeypatch):
    monkeypatch.setenv("MC_TEST_KEY", KEY)
    with FakeMailchimp(KEY) as fake:
        fake.add_list("L1")
        yield fake


def params(fake: FakeMailchimp):
    entry = {"name": "news", "type": "mailchimp", "list_id": "L1", "api_key_env": "MC_TEST_KEY"}
    return make_params([{**entry, "base_url": fake.url + "/3.0"}])


def sync(fake, run, tmp_path, **kw):
    kw.setdefault("settings", FAST)
    return run_sync(params(fake), run, state_path=tmp_path / "state.sqlite", **kw)


def emails(people, ids):
    by_id = {p["customer_id"]: p["email"].lower() for p in people}
    return {by_id[i] for i in ids}


def counts(result, dest="news", seg="vip"):
    return result["destinations"][dest]["segments"][seg]


def test_adds_updates_removals(mc, tmp_path):
    people = customers(30)
    ids = [p["customer_id"] for p in people]
    first = sync(mc, write_run(tmp_path / "r1", people, {"vip": ids[:20]}), tmp_path)
    assert counts(first)["to_add"] == 20 and counts(first)["accepted"] == 20
    assert mc.segment_emails("L1", "vip") == emails(people, ids[:20])
    assert mc.member("L1", people[0]["email"])["merge_fields"] == {
        "FNAME": "FirstA",
        "LNAME": "LastA",
    }
    # subscribed=False customers are added as transactional, never as subscribed
    assert mc.member("L1", people[0]["email"])["status"] == "transactional"
    assert mc.member("L1", people[1]["email"])["status"] == "subscribed"

    people[1]["first_name"] = "Grace"  # merge-field update
    people[2]["email"] = "new.address@example.com"  # identity change: remove old, add new
    second_ids = ids[:15] + ids[20:25]
    second = sync(mc, write_run(tmp_path / "r2", people, {"vip": second_ids}), tmp_path)
    c = counts(second)
    assert (c["to_add"], c["to_update"], c["to_remove"], c["unchanged"]) == (5, 2, 5, 13)
    assert mc.segment_emails("L1", "vip") == emails(people, second_ids)
    assert mc.member("L1", people[1]["email"])["merge_fields"]["FNAME"] == "Grace"
    assert "user.2@example.com" in {m["email_address"] for m in mc.lists["L1"].members.values()}

    before = len(mc.requests)
    third = sync(mc, write_run(tmp_path / "r3", people, {"vip": second_ids}), tmp_path)
    assert counts(third)["unchanged"] == 20 and counts(third)["sent"] == 0
    writes = [r for r in mc.requests[before:] if r.method != "GET"]
    assert writes == []  # nothing changed, nothing sent


def test_batches_split_at_500(mc, tmp_path):
    people = customers(1201)
    run = write_run(tmp_path / "r1", people, {"vip": [p["customer_id"] for p in people]})
    result = sync(mc, run, tmp_path)
    assert counts(result)["accepted"] == 1201
    batch_sizes = [len(r.body["members"]) for r in mc.calls("POST", r"^/3\.0/lists/L1$")]
    segment_sizes = [len(r.body["members_to_add"]) for r in mc.calls("POST", r"/segments/\d+$")]
    assert batch_sizes == [500, 500, 201] and segment_sizes == [500, 500, 201]
    assert len(mc.segment_emails("L1", "vip")) == 1201
    # removals are chunked at 500 too
    sync(mc, write_run(tmp_path / "r2", people, {"vip": []}, empty_segments=["vip"]), tmp_path)
    removes = [r.body.get("members_to_remove") for r in mc.calls("POST", r"/segments/\d+$")]
    assert [len(x) for x in removes if x] == [500, 500, 201]
    assert mc.segment_emails("L1", "vip") == set()


def test_429_retry_after_is_honoured(mc, tmp_path):
    fault = mc.inject(status=429, path=r"^/3\.0/lists/L1$", headers={"Retry-After": "1"})
    people = customers(5)
    t0 = time.monotonic()
    result = sync(
        mc,
        write_run(tmp_path / "r1", people, {"vip": [p["customer_id"] for p in people]}),
        tmp_path,
    )
    assert time.monotonic() - t0 >= 1.0  # waited as told, not the 1 ms backoff
    assert fault.hits == 1 and counts(result)["accepted"] == 5
    assert result["destinations"]["news"]["retries"] == 1


def test_500s_are_retried(mc, tmp_path):
    mc.inject(status=500, path=r"/segments/\d+$", times=2)
    people = customers(5)
    result = sync(
        mc,
        write_run(tmp_path / "r1", people, {"vip": [p["customer_id"] for p in people]}),
        tmp_path,
    )
    assert counts(result)["accepted"] == 5 and result["destinations"]["news"]["retries"] == 2


def test_timeout_replay_is_idempotent(mc, tmp_path):
    # the first batch call is processed but its answer never arrives: the retry must not
    # duplicate or lose anyone (update_existing=false -> ERROR_CONTACT_EXISTS -> PUT)
    mc.inject(kind="timeout", path=r"^/3\.0/lists/L1$", delay=0.6, apply=True)
    people = customers(8)
    ids = [p["customer_id"] for p in people]
    settings = dataclasses.replace(FAST, timeout=0.25)
    result = sync(mc, write_run(tmp_path / "r1", people, {"vip": ids}), tmp_path, settings=settings)
    assert counts(result)["accepted"] == 8 and counts(result)["rejected"] == 0
    assert mc.segment_emails("L1", "vip") == emails(people, ids)
    assert len(mc.lists["L1"].members) == 8
    assert len(mc.calls("PUT")) == 8  # replay answered "exists": upserted by PUT instead


def test_partial_errors_recorded_then_retried_next_run(mc, tmp_path):
    people = customers(6)
    ids = [p["customer_id"] for p in people]
    mc.reject = {"user.3@example.com"}
    mc.reject_segment = {"user.4@example.com"}
    run = write_run(tmp_path / "r1", people, {"vip": ids})
    result = sync(mc, run, tmp_path)
    c = counts(result)
    assert (c["accepted"], c["rejected"], c["status"]) == (4, 2, "partial")
    with StateStore(tmp_path / "state.sqlite") as store:
        rows = store.load("news", "vip")
    assert rows["c0000003"].state == "failed" and "looks fake" in rows["c0000003"].last_error
    assert "user.3@" not in rows["c0000003"].last_error  # reasons are masked
    assert rows["c0000004"].last_error == "Member is in compliance state"
    mc.reject, mc.reject_segment = set(), set()
    again = sync(mc, run, tmp_path)
    assert counts(again)["retrying"] == 2 and counts(again)["accepted"] == 2
    assert mc.segment_emails("L1", "vip") == emails(people, ids)


def test_never_more_than_10_requests_in_flight(monkeypatch, tmp_path):
    monkeypatch.setenv("MC_TEST_KEY", KEY)
    with FakeMailchimp(KEY, latency=0.02) as fake:
        fake.add_list("L1")
        people = customers(40)
        ids = [p["customer_id"] for p in people]
        sync(fake, write_run(tmp_path / "r1", people, {"vip": ids}), tmp_path)
        for p in people:
            p["last_name"] = "Changed"
        settings = dataclasses.replace(FAST, concurrency=32)
        result = sync(
            fake, write_run(tmp_path / "r2", people, {"vip": ids}), tmp_path, settings=settings
        )
        assert counts(result)["to_update"] == 40 and len(fake.calls("PUT")) == 40
        assert 1 < fake.max_in_flight <= 10
        assert not fake.calls(path=".*", method=None) or all(r.status != 429 for r in fake.requests)


def test_customers_sharing_an_email_are_one_contact(mc, tmp_path):
    people = customers(4)
    people[3]["email"] = people[1]["email"].upper()  # same address, another customer id
    ids = [p["customer_id"] for p in people]
    first = sync(mc, write_run(tmp_path / "r1", people, {"vip": ids}), tmp_path)
    c = counts(first)
    assert (c["accepted"], c["invalid"]) == (3, 1)
    with StateStore(tmp_path / "state.sqlite") as store:
        assert store.load("news", "vip")["c0000003"].last_error == "same email as customer c0000001"
    # the first owner leaves: the other customer keeps the contact in the segment
    second = sync(
        mc, write_run(tmp_path / "r2", people, {"vip": [ids[0], ids[2], ids[3]]}), tmp_path
    )
    assert counts(second)["to_remove"] == 1 and counts(second)["to_add"] == 1
    assert "user.1@example.com" in mc.segment_emails("L1", "vip")
