"""Persisting a fitted Interested-In model and scoring from disk in bounded memory.

Layout of ``run_dir/interest_model/`` (no pickles; Parquet, NumPy and JSON only)::

    customers.parquet          row, customer_id, orders_decayed, order_days, events_decayed
    <level>/model.json         estimator parameters, blender (shape functions, calibration),
                               as_of, fit diagnostics
    <level>/targets.parquet    target_idx, target, label, buyers, popularity, reach
    <level>/profile.parquet    row, target_idx and the raw profile columns, sorted by row
    <level>/itemitem.npz       EASE block and cosine weights
    <level>/expected.npy       per customer row: sum of the probabilities over all targets

Scoring reads the profile in row ranges (:func:`iter_chunks`), so memory grows with the
number of customers only through per-customer vectors, never with customers x targets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import sparse

from workbench.models import interest_features as feat
from workbench.models.interest_blend import Blender
from workbench.models.interest_catalog import TargetCatalog
from workbench.models.interest_itemitem import ItemItem
from workbench.models.interest_model import InterestModel

MODEL_DIR = "interest_model"
CUSTOMER_COLUMNS = ("orders_decayed", "order_days", "events_decayed")
PROFILE_ROW_GROUP = 1_000_000
#: Per level: expected number of targets bought per customer (written by ``top_k_table``).
EXPECTED = "expected.npy"


def save_customers(folder: Path, customers: pa.Array, vectors: dict[str, np.ndarray]) -> Path:
    """Write the customer ids and raw customer vectors shared by all levels."""
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "row": pa.array(np.arange(len(customers), dtype=np.int32)),
            "customer_id": customers,
            **{k: pa.array(vectors[k].astype(np.float32)) for k in CUSTOMER_COLUMNS},
        }
    )
    path = folder / "customers.parquet"
    pq.write_table(table, path, compression="zstd")
    return path


def save_model(model: InterestModel, folder: Path) -> Path:
    """Write one fitted level under ``folder/<level>/``; returns that folder."""
    out = folder / model.level
    out.mkdir(parents=True, exist_ok=True)
    snap = model.snapshot_
    params = {
        k: getattr(model, k)
        for k in (
            "level",
            "horizon_days",
            "calibration_customers",
            "negatives",
            "event_weights",
            "itemitem",
            "C",
            "l2_shares",
            "block_cells",
            "random_state",
        )
    }
    meta = {
        "params": params,
        "as_of": model.as_of_.isoformat(),
        "n_customers": snap.profile.n_rows,
        "blender": model.blender_.to_dict(),
        "fit_info": model.fit_info_,
    }
    (out / "model.json").write_text(json.dumps(meta, indent=1, default=str))
    targets = model.catalog_.frame()
    for k, v in snap.target.items():
        targets[k] = v
    targets.to_parquet(out / "targets.parquet", index=False)
    prof = snap.profile
    table = pa.table(
        {
            "row": pa.array(prof.rows()),
            "target_idx": pa.array(prof.indices.astype(np.int32)),
            **{k: pa.array(prof.values[k]) for k in feat.RAW_COLUMNS},
        }
    )
    # dictionaries for the integer keys only: the float columns hardly repeat, and building
    # (then abandoning) their dictionaries was half the write (the 1M shop's product profile,
    # 63M entries: 12.3 -> 5.7 s, 781 -> 693 MB)
    pq.write_table(
        table,
        out / "profile.parquet",
        row_group_size=PROFILE_ROW_GROUP,
        use_dictionary=["row", "target_idx"],
    )
    ii = snap.itemitem
    sw = ii.sparse_weights_.tocsc()
    np.savez(
        out / "itemitem.npz",
        dense_index=ii.dense_index_,
        dense_weights=ii.dense_weights_,
        sparse_data=sw.data,
        sparse_indices=sw.indices,
        sparse_indptr=sw.indptr,
        n_targets=np.array(ii.n_targets_),
        l2=np.array(ii.l2_),
    )
    return out


def levels_in(folder: Path) -> list[str]:
    """Levels saved under ``folder`` (in the order of :data:`interest_catalog.LEVELS`)."""
    from workbench.models.interest_catalog import LEVELS

    return [lvl for lvl in LEVELS if (folder / lvl / "model.json").exists()]


def load_customers(folder: Path) -> pa.Table:
    """The customers table of a saved model (row order)."""
    return pq.read_table(folder / "customers.parquet")


def load_model(folder: Path, level: str) -> InterestModel:
    """A saved level as an :class:`InterestModel` ready to score chunks from disk.

    The returned model holds the item-item weights, target features and blender; its snapshot
    has an empty profile (profiles are streamed by :func:`iter_chunks`).
    """
    path = folder / level
    meta = json.loads((path / "model.json").read_text())
    params = dict(meta["params"])
    model = InterestModel(params.pop("level"), **params)
    model.blender_ = Blender.from_dict(meta["blender"])
    model.fit_info_ = meta["fit_info"]
    model.as_of_ = datetime.fromisoformat(meta["as_of"])
    targets = pd.read_parquet(path / "targets.parquet")
    model.catalog_ = TargetCatalog(
        level=level,
        targets=targets["target"].astype(object).to_numpy(),
        labels=targets["label"].astype(object).to_numpy(),
        buyers=targets["buyers"].to_numpy(),
        product_map=pd.DataFrame({"product_id": [], "target_idx": []}),
        terms=pd.DataFrame({"target_idx": [], "term": []}),
    )
    with np.load(path / "itemitem.npz") as z:
        n = int(z["n_targets"])
        ii = ItemItem()
        ii.n_targets_ = n
        ii.dense_index_ = z["dense_index"]
        ii.dense_weights_ = z["dense_weights"]
        ii.sparse_weights_ = sparse.csc_matrix(
            (z["sparse_data"], z["sparse_indices"], z["sparse_indptr"]), shape=(n, n)
        )
        ii.l2_ = float(z["l2"])
    empty = feat.Profile(n, np.zeros(1, np.int64), np.zeros(0, np.int32), {})
    model.snapshot_ = feat.Snapshot(
        as_of=model.as_of_,
        known=np.zeros(0, bool),
        profile=empty,
        customer={},
        target={k: targets[k].to_numpy(np.float32) for k in feat.TARGET_FEATURES},
        itemitem=ii,
    )
    return model


def iter_chunks(
    folder: Path,
    level: str,
    rows_per_chunk: int,
    customers: pa.Table | None = None,
    *,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[tuple[int, feat.Profile, dict[str, np.ndarray]]]:
    """Stream a saved profile in blocks of whole customers.

    Parameters
    ----------
    folder : Path
        The ``interest_model/`` folder.
    level : str
        Saved level.
    rows_per_chunk : int
        Customers per block.
    customers : pyarrow.Table, optional
        The saved customers table (read when not given).
    start, stop : int
        Customer rows streamed (default: all). Only the profile's row groups that hold rows of
        this range are read, so parts of the table can be scored independently.

    Yields
    ------
    (int, Profile, dict)
        First row of the block, the block's profile, its raw customer vectors.
    """
    customers = load_customers(folder) if customers is None else customers
    vectors = {k: customers[k].to_numpy() for k in CUSTOMER_COLUMNS}
    n = customers.num_rows
    stop = n if stop is None else min(n, stop)
    n_targets = len(pq.read_table(folder / level / "targets.parquet", columns=["target_idx"]))
    reader = pq.ParquetFile(folder / level / "profile.parquet")
    groups = _row_groups(reader, start, stop)
    batches = reader.iter_batches(batch_size=PROFILE_ROW_GROUP, row_groups=groups)
    buffer: list[pa.RecordBatch] = []
    done = False
    for lo in range(start, stop, rows_per_chunk):
        hi = min(stop, lo + rows_per_chunk)
        while not done and (not buffer or _last_row(buffer[-1]) < hi):
            try:
                buffer.append(next(batches))
            except StopIteration:
                done = True
        table = pa.Table.from_batches(buffer, schema=reader.schema_arrow) if buffer else None
        rows = table["row"].to_numpy() if table is not None else np.zeros(0, np.int32)
        first = int(np.searchsorted(rows, lo))
        cut = int(np.searchsorted(rows, hi))
        part = table.slice(first, cut - first) if table is not None else None
        rest = table.slice(cut) if table is not None else None
        buffer = rest.to_batches() if rest is not None and rest.num_rows else []
        prow = rows[first:cut]
        indptr = np.searchsorted(prow, np.arange(lo, hi + 1)).astype(np.int64)
        values = {
            k: (part[k].to_numpy() if part is not None else np.zeros(0, np.float32))
            for k in feat.RAW_COLUMNS
        }
        idx = part["target_idx"].to_numpy() if part is not None else np.zeros(0, np.int32)
        profile = feat.Profile(n_targets, indptr, idx.astype(np.int32), values)
        yield lo, profile, {k: v[lo:hi] for k, v in vectors.items()}


def _row_groups(reader: pq.ParquetFile, start: int, stop: int) -> list[int]:
    """Row groups of a profile file that may hold customer rows in ``[start, stop)``."""
    meta = reader.metadata
    col = reader.schema_arrow.get_field_index("row")
    keep = []
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(col).statistics
        if stats is None or not stats.has_min_max or (stats.max >= start and stats.min < stop):
            keep.append(i)
    return keep


def _last_row(batch: pa.RecordBatch) -> int:
    return int(batch.column("row")[-1].as_py()) if batch.num_rows else -1


def model_summary(folder: Path, level: str) -> dict[str, Any]:
    """The ``model.json`` of a saved level."""
    return json.loads((folder / level / "model.json").read_text())
