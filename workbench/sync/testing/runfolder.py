"""Build small run folders and params by hand, for sync tests and the benchmark."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from workbench.params import Params, parse_params
from workbench.sync.settings import SyncSettings

__all__ = ["FAST", "customers", "make_params", "write_run"]

#: Settings for tests: tiny backoff, short timeouts, fast job polling.
FAST = SyncSettings(
    timeout=2.0,
    base_delay=0.001,
    max_delay=0.01,
    breaker_threshold=6,
    job_poll_interval=0.01,
    job_timeout=2.0,
)

_COUNTRIES = ("IT", "GB", "US", "DE", "FR")
_PHONES = {
    "IT": "333 {:07d}",
    "GB": "07911 {:06d}",
    "US": "({}) 555-{:04d}",
    "DE": "0151 {:08d}",
    "FR": "06 {:08d}",
}


def customers(n: int, *, start: int = 0, domain: str = "example.com") -> list[dict[str, Any]]:
    """``n`` synthetic customers ``c000000...`` with e-mail, phone, names, country, zip."""
    rows = []
    for i in range(start, start + n):
        country = _COUNTRIES[i % len(_COUNTRIES)]
        rows.append(
            {
                "customer_id": f"c{i:07d}",
                "email": f"User.{i}@{domain}",
                "phone": _PHONES[country].format(
                    *((201 + i // 10_000, i % 10_000) if country == "US" else (i,))
                ),
                "first_name": f"First{chr(65 + i % 26)}",
                "last_name": f"Last{chr(65 + (i // 26) % 26)}",
                "country": country,
                "zip": f"{10000 + i % 89999}",
                "language": "en",
                "subscribed": i % 3 != 0,
            }
        )
    return rows


def write_run(
    run_dir: Path,
    people: Iterable[Mapping[str, Any]],
    membership: Mapping[str, Iterable[str]],
    *,
    empty_segments: Iterable[str] = (),
) -> Path:
    """Write ``customers.parquet`` and ``segments/membership.parquet`` (+ empty segment CSVs)."""
    run_dir = Path(run_dir)
    (run_dir / "segments").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(list(people)), run_dir / "customers.parquet")
    segs, ids = [], []
    for seg, members in membership.items():
        for cid in members:
            segs.append(seg)
            ids.append(cid)
    table = pa.table(
        {"segment": pa.array(segs, pa.string()), "customer_id": pa.array(ids, pa.string())}
    )
    pq.write_table(table, run_dir / "segments" / "membership.parquet")
    for seg in empty_segments:
        (run_dir / "segments" / f"{seg}.csv").write_text("customer_id\n", encoding="utf-8")
    return run_dir


def make_params(exports: list[dict[str, Any]]) -> Params:
    """Minimal valid params with these ``exports`` entries."""
    raw = {"run_name": "sync_test", "data": {"orders": {"path": "orders.csv"}}, "exports": exports}
    return parse_params(raw)
