"""Throughput of a 100k-member diff sync against the local fake servers.

Runs, for Mailchimp, Klaviyo, Meta, Google (Data Manager) and the MagNews CSV route:

1. a first sync of N members (every member is an add),
2. an incremental sync (5% leave, 5% join, 1% change a synced field),
3. a no-change sync (the steady state: nothing to send),

and prints members/s and the number of HTTP requests per destination and phase. The fakes
run in a child process (threads, real sockets on 127.0.0.1, no added latency), so the figures
measure the client, the diff and the state file (plus the fakes' share of the CPU), not a
vendor's network.

Usage: ``python bench/sync.py [--members 100000]``.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

import psutil

from workbench.sync import SyncSettings, run_sync
from workbench.sync.testing import FakeGoogle, FakeKlaviyo, FakeMailchimp, FakeMeta
from workbench.sync.testing.runfolder import customers, make_params, write_run

KEYS = {"MC": "bench0123456789-us1", "KL": "pk_bench0123", "FB": "EAAB-bench", "GO": "ya29.bench"}


def _serve_fakes(conn: Connection) -> None:
    """Child process: run the four fakes, answer "sizes" and "stop" over ``conn``."""
    fakes = {
        "mailchimp": FakeMailchimp(KEYS["MC"], keep_bodies=False),
        "klaviyo": FakeKlaviyo(KEYS["KL"], keep_bodies=False),
        "meta": FakeMeta(KEYS["FB"], account="act_1", keep_bodies=False),
        "google": FakeGoogle(KEYS["GO"], account_id="1234567890", keep_bodies=False),
    }
    for fake in fakes.values():
        fake.start()
    fakes["mailchimp"].add_list("L1")
    fakes["google"].add_list("100")
    conn.send({name: fake.url for name, fake in fakes.items()})
    while (command := conn.recv()) != "stop":
        if command == "sizes":
            meta = fakes["meta"]
            conn.send(
                {
                    "mailchimp": len(fakes["mailchimp"].segment_emails("L1", "vip")),
                    "klaviyo": len(fakes["klaviyo"].list_external_ids("vip")),
                    "meta": len(meta.extern_ids(meta.audience_by_name("vip"))),
                    "google": fakes["google"].size("100"),
                }
            )
    for fake in fakes.values():
        fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.update({f"BENCH_{k}": v for k, v in KEYS.items()})
    n = args.members
    conn, child_conn = multiprocessing.Pipe()
    server = multiprocessing.get_context("fork").Process(target=_serve_fakes, args=(child_conn,))
    server.start()
    urls = conn.recv()
    params = make_params(
        [
            {"name": "mailchimp", "type": "mailchimp", "list_id": "L1",
             "api_key_env": "BENCH_MC", "base_url": urls["mailchimp"] + "/3.0"},
            {"name": "klaviyo", "type": "klaviyo", "api_key_env": "BENCH_KL",
             "base_url": urls["klaviyo"]},
            {"name": "meta", "type": "meta", "account_id": "1", "api_key_env": "BENCH_FB",
             "base_url": urls["meta"]},
            {"name": "google", "type": "google", "account_id": "1234567890", "audience_id": "100",
             "api_key_env": "BENCH_GO", "base_url": urls["google"]},
            {"name": "magnews", "type": "magnews_csv"},
        ]
    )  # fmt: skip
    settings = SyncSettings(job_poll_interval=0.05)
    people = customers(int(n * 1.05))
    ids = [p["customer_id"] for p in people]
    churn = n // 20
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "outputs"
        phases = [
            ("first sync", write_run(root / "r1", people, {"vip": ids[:n]})),
        ]
        for p in people[churn : churn + n // 100]:
            p["last_name"] = p["last_name"] + "x"
        phases.append(
            ("incremental", write_run(root / "r2", people, {"vip": ids[churn : n + churn]}))
        )
        phases.append(("no change", root / "r2"))
        print(f"members: {n:,}; incremental: -{churn:,} +{churn:,} ~{n // 100:,}")
        header = ("phase", "destination", "sent", "seconds", "members/s", "requests")
        print("{:<12} {:<11}{:>8}{:>9}{:>11}{:>10}".format(*header))
        for phase, run in phases:
            t0 = time.perf_counter()
            result = run_sync(params, run, settings=settings)
            wall = time.perf_counter() - t0
            for name, dest in result["destinations"].items():
                c = dest["segments"]["vip"]
                rate = c["sent"] / dest["seconds"] if dest["seconds"] and c["sent"] else 0
                secs, reqs = dest["seconds"], dest["requests"]
                print(f"{phase:<12} {name:<11}{c['sent']:>8,}{secs:>9.2f}{rate:>11,.0f}{reqs:>10}")
            print(
                f"{phase:<12} {'(all)':<11}{'':>8}{wall:>9.2f}  wall clock, reading the run folder"
            )
        rss = psutil.Process().memory_info().rss / 2**20
        print(f"client RSS after the run: {rss:,.0f} MiB")
        conn.send("sizes")
        print(f"destination sizes after the last sync (expected {n:,} each):", conn.recv())
    conn.send("stop")
    server.join(timeout=30)


if __name__ == "__main__":
    main()
