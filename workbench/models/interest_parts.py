"""The top-k table scored in parts: ranges of customers, in worker processes or on Spark.

Scoring every customer against every target is the Interested-In step's largest cost after the
fit, and it is independent per customer. :func:`score_parts` splits each level's customers into
ranges of :data:`PART_ROWS` rows and scores them

- on Spark (``engine: pyspark``): one task per range on the executors
  (:func:`workbench.engine.map_batches`), so no customer is scored in the driver;
- on DuckDB: in ``workers`` processes of this machine (one range at a time each), or in this
  process when ``workers`` is 1.

Each range is written to its own Parquet file (and its expected-purchases vector to a ``.npy``)
in a scratch folder of the run; :func:`stitch` then streams them, in level and row order, into
``interest.parquet``. The executors therefore need the run folder on storage they share with
the driver (always true in local mode; on a cluster, put ``outputs/`` on a shared filesystem).
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, as_completed, wait
from dataclasses import dataclass
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from workbench.models import interest_store as store
from workbench.models.interest_model import chunk_rows
from workbench.models.interest_topk import TopK

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

#: Customers per part (one task or one worker job).
PART_ROWS = 100_000
#: Below this many customer rows (summed over levels) the parts are scored in this process.
MIN_PARALLEL_ROWS = 200_000
OUTPUT_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("level", pa.string()),
        ("target", pa.string()),
        ("score", pa.float64()),
        ("rank", pa.int32()),
    ]
)
_RESULT_SCHEMA = {"level": "string", "start": "int64", "rows": "int64", "pid": "int64"}
#: Per process: loaded rankers and customers tables (a worker scores many parts of a level).
_CACHE: dict[tuple[str, ...], Any] = {}


@dataclass(frozen=True)
class Part:
    """Customer rows ``[start, stop)`` of one level."""

    level: str
    start: int
    stop: int

    @property
    def name(self) -> str:
        """File stem of the part's outputs."""
        return f"{self.level}-{self.start:012d}"


def plan(levels: Sequence[str], n_customers: int, part_rows: int | None = None) -> list[Part]:
    """Every level's customer rows cut into ranges of ``part_rows`` (default :data:`PART_ROWS`)."""
    part_rows = PART_ROWS if part_rows is None else part_rows
    return [
        Part(level, lo, min(n_customers, lo + part_rows))
        for level in levels
        for lo in range(0, n_customers, part_rows)
    ]


def _customers(folder: Path) -> tuple[pa.Table, pa.Array]:
    """The saved customers table and its ids as one array (read once per process)."""
    key = ("customers", str(folder), str((folder / "customers.parquet").stat().st_mtime_ns))
    if key not in _CACHE:
        _CACHE.clear()
        table = store.load_customers(folder)
        _CACHE[key] = (table, table["customer_id"].combine_chunks())
    return _CACHE[key]


def _ranker(folder: Path, level: str, k: int) -> TopK:
    stamp = str((folder / level / "model.json").stat().st_mtime_ns)
    key = ("ranker", str(folder), level, str(k), stamp)
    if key not in _CACHE:
        for old in [c for c in _CACHE if c[0] == "ranker"]:
            del _CACHE[old]
        _CACHE[key] = TopK(store.load_model(folder, level), k)
    return _CACHE[key]


def score_part(folder: Path, part: Part, k: int, block_cells: int, scratch: Path) -> int:
    """Score one part; writes ``scratch/<part>.parquet`` and ``.npy``; returns its rows."""
    folder, scratch = Path(folder), Path(scratch)
    customers, ids = _customers(folder)
    ranker = _ranker(folder, part.level, k)
    model = ranker.model
    targets = pa.array(model.catalog_.targets.astype(str), pa.string())
    kk = ranker.k
    step = chunk_rows(len(ranker.head) if not ranker.dense else len(targets), block_cells)
    expected = np.zeros(part.stop - part.start, np.float64)
    written = 0
    tmp = scratch / f".{part.name}.{uuid.uuid4().hex[:8]}.parquet"
    with pq.ParquetWriter(tmp, OUTPUT_SCHEMA, compression="zstd") as writer:
        chunks = store.iter_chunks(
            folder, part.level, step, customers, start=part.start, stop=part.stop
        )
        for lo, prof, cust in chunks:
            top, vals, exp = ranker.block(prof, cust)
            n = len(top)
            expected[lo - part.start : lo - part.start + n] = exp
            rows = np.repeat(np.arange(lo, lo + n), kk)
            writer.write_table(
                pa.table(
                    {
                        "customer_id": ids.take(pa.array(rows)),
                        "level": pa.array([part.level] * (n * kk), pa.string()),
                        "target": targets.take(pa.array(top.ravel())),
                        "score": pa.array(model.blender_.probability(vals).ravel(), pa.float64()),
                        "rank": pa.array(np.tile(np.arange(1, kk + 1, dtype=np.int32), n)),
                    },
                    schema=OUTPUT_SCHEMA,
                )
            )
            written += n * kk
    np.save(scratch / f"{part.name}.npy", expected)
    tmp.replace(scratch / f"{part.name}.parquet")
    return written


def _score_batch(
    batch: pd.DataFrame, folder: str, k: int, block_cells: int, scratch: str
) -> pd.DataFrame:
    """``map_batches`` function: score the parts listed in ``batch`` (level, start, stop)."""
    rows = [
        score_part(
            Path(folder), Part(r.level, int(r.start), int(r.stop)), k, block_cells, Path(scratch)
        )
        for r in batch.itertuples(index=False)
    ]
    return pd.DataFrame(
        {"level": batch["level"], "start": batch["start"], "rows": rows, "pid": os.getpid()}
    )


def default_workers() -> int:
    """One scoring process per CPU, at most 4 (each holds one level's model and a block)."""
    return max(1, min(4, os.cpu_count() or 1))


def score_parts(
    folder: Path,
    parts: Sequence[Part],
    k: int,
    block_cells: int,
    scratch: Path,
    *,
    con: BaseBackend | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Score every part.

    Parameters
    ----------
    folder : Path
        The ``interest_model/`` folder.
    parts : sequence of Part
        From :func:`plan`.
    k, block_cells : int
        Targets per customer; largest dense block scored at once.
    scratch : Path
        Folder for the parts' files.
    con : ibis backend, optional
        A PySpark connection scores the parts on its executors.
    workers : int, optional
        Processes on DuckDB (default :func:`default_workers`; parts of small shops are scored
        in this process).
    progress : bool
        Show a progress bar (processes and this process).

    Returns
    -------
    dict
        ``where`` (``spark``, ``processes`` or ``this process``) and the ``pids`` of the
        processes that scored.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    if con is not None and con.name == "pyspark":
        pids = _on_spark(con, folder, parts, k, block_cells, scratch)
        return {"where": "spark", "pids": pids}
    job: Callable[[Part], tuple[int, int]] = partial(
        _score_one, folder=folder, k=k, block_cells=block_cells, scratch=scratch
    )
    workers = default_workers() if workers is None else workers
    total_rows = sum(p.stop - p.start for p in parts)
    bar = tqdm(total=len(parts), desc=f"top {k}", unit="part", disable=not progress)
    if workers <= 1 or len(parts) <= 1 or total_rows < MIN_PARALLEL_ROWS:
        try:
            for p in parts:
                job(p)
                bar.update()
        finally:
            bar.close()
            _CACHE.clear()  # the kernel does not keep a level's model after the table is built
        return {"where": "this process", "pids": [os.getpid()]}
    pids = set()
    with ProcessPoolExecutor(min(workers, len(parts)), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(job, p) for p in parts]
        for f in as_completed(futures):
            pids.add(f.result()[1])
            bar.update()
    bar.close()
    return {"where": "processes", "pids": sorted(pids)}


class BackgroundParts:
    """Top-k parts scored in worker processes while the caller goes on (fits the next level).

    :func:`workbench.models.interest.fit_interest` adds each level's parts as soon as the level
    is saved. While the fits run (one core's worth of numpy, DuckDB's threads in bursts) at
    most ``lanes_during`` parts are scored at a time; :meth:`finish` raises that to
    ``workers`` for what is left. A thread in this process hands a waiting part to each lane
    that frees up. The parts' files are the same as :func:`score_parts` writes.

    Parameters
    ----------
    folder : Path
        The folder the models are saved in (read by the workers).
    k, block_cells : int
        Targets per customer; largest dense block scored at once.
    scratch : Path
        Folder for the parts' files.
    workers : int
        Processes (and parts at a time) once :meth:`finish` is called.
    lanes_during : int
        Parts at a time before that.
    """

    def __init__(
        self,
        folder: Path,
        k: int,
        block_cells: int,
        scratch: Path,
        workers: int,
        lanes_during: int = 1,
    ) -> None:
        scratch.mkdir(parents=True, exist_ok=True)
        self._job = partial(
            _score_one, folder=folder, k=k, block_cells=block_cells, scratch=scratch
        )
        self._pool = ProcessPoolExecutor(max(1, workers), mp_context=get_context("spawn"))
        self._workers = max(1, workers)
        self._limit = max(1, min(lanes_during, self._workers))
        self._pending: deque[Part] = deque()
        self._running: dict[Future, Part] = {}
        self._done: list[tuple[int, int]] = []
        self._error: BaseException | None = None
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._feed, name="top-k parts", daemon=True)
        self._thread.start()
        self.parts: list[Part] = []

    def add(self, parts: Sequence[Part]) -> None:
        """Queue parts (scored in the order given, after those queued before)."""
        with self._cond:
            self._raise_failure()
            self.parts.extend(parts)
            self._pending.extend(parts)
            self._cond.notify_all()

    def _feed(self) -> None:
        while True:
            with self._cond:
                while self._pending and len(self._running) < self._limit and not self._error:
                    part = self._pending.popleft()
                    self._running[self._pool.submit(self._job, part)] = part
                if self._closing and not self._running and (not self._pending or self._error):
                    self._cond.notify_all()
                    return
                running = list(self._running)
                if not running:
                    self._cond.wait(0.5)
                    continue
            finished, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
            with self._cond:
                for f in finished:
                    self._running.pop(f)
                    if f.cancelled():
                        continue
                    if f.exception() is None:
                        self._done.append(f.result())
                    elif self._error is None:
                        self._error = f.exception()
                self._cond.notify_all()

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def finish(self, progress: bool = False) -> list[int]:
        """Score what is left on every worker; returns the pids that scored (raises a failure)."""
        bar = tqdm(total=len(self.parts), desc="top-k parts", unit="part", disable=not progress)
        try:
            with self._cond:
                self._limit = self._workers
                self._closing = True
                self._cond.notify_all()
                while self._thread.is_alive() and not self._error:
                    bar.update(len(self._done) - bar.n)
                    self._cond.wait(0.5)
            self._thread.join()
            bar.update(len(self._done) - bar.n)
            self._raise_failure()
            return sorted({pid for _, pid in self._done})
        finally:
            bar.close()
            self.close()

    def close(self) -> None:
        """Stop: parts not started are dropped, the workers end."""
        with self._cond:
            self._pending.clear()
            self._closing = True
            self._cond.notify_all()
        self._pool.shutdown(wait=True, cancel_futures=True)


def _score_one(
    part: Part, *, folder: Path, k: int, block_cells: int, scratch: Path
) -> tuple[int, int]:
    return score_part(folder, part, k, block_cells, scratch), os.getpid()


def _on_spark(
    con: BaseBackend, folder: Path, parts: Sequence[Part], k: int, block_cells: int, scratch: Path
) -> list[int]:
    import ibis

    from workbench import engine

    frame = pd.DataFrame(
        {
            "level": [p.level for p in parts],
            "start": [p.start for p in parts],
            "stop": [p.stop for p in parts],
        }
    )
    table = con.create_view(f"_wb_parts_{uuid.uuid4().hex[:12]}", ibis.memtable(frame))
    fn = partial(
        _score_batch, folder=str(folder), k=k, block_cells=block_cells, scratch=str(scratch)
    )
    done = engine.map_batches(
        table, fn, _RESULT_SCHEMA, label="topk", batch_rows=1, partitions=len(parts)
    ).to_pyarrow()
    if done.num_rows != len(parts):
        raise RuntimeError(f"Spark scored {done.num_rows} of {len(parts)} top-k parts")
    return sorted(set(done.column("pid").to_pylist()))


def stitch(
    folder: Path, levels: Sequence[str], parts: Sequence[Part], scratch: Path, out: Path
) -> None:
    """Stream the parts into ``out`` (level, then customer row order); removes ``scratch``.

    Also saves each level's expected purchases (``interest_model/<level>/expected.npy``).
    """
    n = max((p.stop for p in parts), default=0)
    tmp = out.with_suffix(".parquet.tmp")
    with pq.ParquetWriter(tmp, OUTPUT_SCHEMA, compression="zstd") as writer:
        for level in levels:
            expected = np.zeros(n, np.float64)
            for p in sorted((p for p in parts if p.level == level), key=lambda p: p.start):
                file = pq.ParquetFile(scratch / f"{p.name}.parquet")
                for i in range(file.num_row_groups):
                    writer.write_table(file.read_row_group(i))
                expected[p.start : p.stop] = np.load(scratch / f"{p.name}.npy")
            np.save(folder / level / store.EXPECTED, expected)
    tmp.replace(out)
    shutil.rmtree(scratch, ignore_errors=True)
