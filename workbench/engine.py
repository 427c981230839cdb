"""The engine layer: the one place that opens an ibis connection and touches backend specifics.

Everything relational in the workbench is an ibis expression; this module decides whether it
runs on embedded DuckDB (default) or on PySpark (local mode or a cluster), and isolates the few
things that differ between them: reading raw files, writing and reading Parquet.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import tempfile
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.datatypes as dt
import pyarrow as pa

from workbench.errors import ParamsError, WorkbenchError

if TYPE_CHECKING:
    import pandas as pd
    from ibis.backends import BaseBackend

    from workbench.params import Params

log = logging.getLogger(__name__)

ENGINES = ("duckdb", "pyspark")


def connect(
    engine: str = "duckdb",
    *,
    database: str | Path | None = None,
    workdir: str | Path | None = None,
    memory_limit: str = "4GB",
    threads: int | None = None,
    spark_master: str = "local[2]",
    spark_driver_memory: str = "4g",
    spark_shuffle_partitions: int = 8,
    spark_conf: Mapping[str, str] | None = None,
) -> BaseBackend:
    """Open an ibis connection.

    Parameters
    ----------
    engine : {"duckdb", "pyspark"}
        Backend to use.
    database : path, optional
        DuckDB database file (None = in memory). Ignored for PySpark.
    workdir : path, optional
        Folder for spill files (DuckDB ``temp_directory``, Spark ``local.dir``).
    memory_limit : str
        DuckDB memory limit; work beyond it spills to ``workdir``.
    threads : int, optional
        DuckDB threads (default: all cores).
    spark_master, spark_driver_memory, spark_shuffle_partitions, spark_conf
        Spark session settings (an existing active session is reused); ``spark_conf`` holds
        any other Spark setting.

    Returns
    -------
    ibis.backends.BaseBackend
        The connection; timestamps are handled in UTC on both engines.
    """
    if engine == "duckdb":
        config: dict[str, Any] = {"memory_limit": memory_limit, "preserve_insertion_order": False}
        if threads:
            config["threads"] = threads
        if workdir is not None:
            Path(workdir).mkdir(parents=True, exist_ok=True)
            config["temp_directory"] = str(Path(workdir) / "duckdb_tmp")
        con = ibis.duckdb.connect(database=str(database) if database else ":memory:", **config)
        con.raw_sql("SET TimeZone = 'UTC'")
        return con
    if engine == "pyspark":
        session = spark_session(
            master=spark_master,
            driver_memory=spark_driver_memory,
            shuffle_partitions=spark_shuffle_partitions,
            local_dir=workdir,
            conf=spark_conf,
        )
        return ibis.pyspark.connect(session)
    raise ParamsError(
        f"unknown engine {engine!r}",
        where="engine",
        fix=f"use one of: {', '.join(ENGINES)}",
    )


def connect_for(params: Params, workdir: str | Path | None = None) -> BaseBackend:
    """Open the connection a params file asks for."""
    return connect(
        params.engine,
        workdir=workdir,
        memory_limit=params.ingest.memory_limit,
        spark_master=params.spark.master,
        spark_driver_memory=params.spark.driver_memory,
        spark_shuffle_partitions=params.spark.shuffle_partitions,
        spark_conf=params.spark.conf,
    )


_MEMORY_UNITS = {"": 1 / 2**20, "k": 1 / 1024, "m": 1, "g": 1024, "t": 1024**2}

#: A Spark result larger than the driver may collect: what happened, and what to do.
SPARK_RESULT_TOO_LARGE = (
    "a result collected from Spark to the driver is larger than spark.driver.maxResultSize"
)
SPARK_RESULT_FIX = (
    "give the driver more memory: spark.driver_memory in params (the result limit, "
    "spark.driver.maxResultSize, defaults to half of it; spark.conf can set it)"
)


def half_memory(size: str) -> str | None:
    """Half of a JVM memory size (``"8g"`` -> ``"4096m"``); None when it cannot be read."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)b?\s*", str(size).lower())
    if match is None:
        return None
    mb = int(int(match.group(1)) * _MEMORY_UNITS[match.group(2)]) // 2
    return f"{max(mb, 1)}m"


def arrow_batches(table: ibis.Table, batch_rows: int = 1_000_000) -> Iterator[pa.RecordBatch]:
    """The rows of ``table`` as Arrow record batches.

    DuckDB streams them. On PySpark, ibis collects through pandas (``toPandas``, then Arrow):
    twice the driver memory of the result and slow for tens of millions of rows. In local mode
    (driver and executors share the disk) the Spark DataFrame is written as Parquet to a
    scratch folder and read back batch by batch, so neither the driver JVM nor this process
    holds the whole result (:func:`_spark_local_batches`). On a cluster it is collected as
    Arrow directly (``DataFrame.toArrow``); a result above the driver's limit raises a
    :class:`WorkbenchError` that says how to raise it.
    """
    con = table._find_backend()
    if con.name != "pyspark":
        yield from table.to_pyarrow_batches(chunk_size=batch_rows)
        return
    con._run_pre_execute_hooks(table)  # registers memtables as temporary views
    frame = con.raw_sql(con.compile(table))
    context = frame.sparkSession.sparkContext
    if str(context.master).startswith("local"):
        yield from _spark_local_batches(frame, context.getConf().get("spark.local.dir"), batch_rows)
        return
    try:
        result = frame.toArrow()
    except Exception as exc:
        if "maxResultSize" in str(exc):
            raise WorkbenchError(
                SPARK_RESULT_TOO_LARGE,
                where="engine pyspark",
                fix=SPARK_RESULT_FIX,
            ) from None
        raise
    yield from result.to_batches(max_chunksize=batch_rows)


def _spark_local_batches(
    frame: Any, local_dir: str | None, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """A local Spark DataFrame's rows through Parquet files in a scratch folder (then removed).

    The part files are read in their partition order, so an ordered result keeps its order.
    At 3M customers the Interested-In step collected 75M-row aggregates with ``toArrow``: the
    driver JVM held the result while this process held it as Arrow and then as numpy arrays,
    and the two together exceeded 24 GB.
    """
    import pyarrow.parquet as pq

    # spark.local.dir may list several folders (comma-separated): the first holds the scratch
    first = str(local_dir or "").split(",")[0].strip()
    base = Path(first) if first else None
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="collect-", dir=base))
    try:
        target = scratch / "result"
        frame.write.mode("overwrite").parquet(target.resolve().as_uri())
        for path in sorted(target.glob("part-*.parquet")):
            yield from pq.ParquetFile(path).iter_batches(batch_size=batch_rows)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


#: JVM options of the Spark driver. In local mode the driver JVM shares the machine with this
#: process, whose numpy work (the Interested-In fits) peaks while the JVM is idle; G1 keeps the
#: heap it once grew (up to ``driver_memory``) unless told to give idle memory back: a periodic
#: collection every 10 s of idleness, and a heap shrunk to at most 30% free after a collection.
DRIVER_JAVA_OPTIONS = (
    "-Duser.timezone=UTC",
    "-XX:G1PeriodicGCInterval=10000",
    "-XX:MinHeapFreeRatio=10",
    "-XX:MaxHeapFreeRatio=30",
)


def driver_java_options(conf: Mapping[str, str] | None = None) -> str:
    """Driver ``extraJavaOptions``: :data:`DRIVER_JAVA_OPTIONS`, then the user's (which win)."""
    extra = str((conf or {}).get("spark.driver.extraJavaOptions", "")).strip()
    return " ".join([*DRIVER_JAVA_OPTIONS, *([extra] if extra else [])])


def spark_session(
    master: str = "local[2]",
    driver_memory: str = "4g",
    shuffle_partitions: int = 8,
    local_dir: str | Path | None = None,
    conf: Mapping[str, str] | None = None,
) -> Any:
    """Return the active Spark session, creating a quiet UTC one when there is none."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover - depends on the install
        raise ParamsError(
            "engine 'pyspark' needs PySpark, which is not installed",
            where="engine",
            fix="install the extra: pip install '.[spark]' (make test installs it), "
            "or use engine: duckdb",
        ) from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # Python workers (pandas UDFs) must run this interpreter, with the same packages, unless the
    # cluster says otherwise
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(master)
        .appName("audience-workbench")
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.driver.extraJavaOptions", driver_java_options(conf))
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
    )
    if local_dir is not None:
        builder = builder.config("spark.local.dir", str(Path(local_dir) / "spark_tmp"))
    half = half_memory(driver_memory)
    if half is not None:  # Spark's default (1g) is too small for 1M customers' aggregates
        builder = builder.config("spark.driver.maxResultSize", half)
    for key, value in (conf or {}).items():
        if key != "spark.driver.extraJavaOptions":  # appended to ours above
            builder = builder.config(key, str(value))
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def engine_name(con: BaseBackend) -> str:
    """``"duckdb"`` or ``"pyspark"`` for a connection."""
    return con.name


def read_csv(
    con: BaseBackend,
    path: str | Path,
    *,
    delimiter: str,
    encoding: str = "utf-8",
    header: bool = True,
) -> ibis.Table:
    """Read a CSV file (plain or gz) with every column as a string.

    Parsing happens afterwards as ibis expressions, so bad values become quarantined rows
    instead of a failed read. Without a header, columns are named ``column1`` .. ``columnN``.
    """
    path = str(path)
    if con.name == "duckdb":
        table = con.read_csv(
            path,
            all_varchar=True,
            delim=delimiter,
            header=header,
            quote='"',
            escape='"',
            encoding=encoding,
            strict_mode=False,
            null_padding=True,
        )
    else:
        table = con.read_csv(
            path,
            header=header,
            inferSchema=False,
            sep=delimiter,
            quote='"',
            escape='"',
            encoding=encoding,
            mode="PERMISSIVE",
        )
    if header:
        return table
    return table.rename({f"column{i + 1}": name for i, name in enumerate(table.columns)})


def read_parquet(con: BaseBackend, path: str | Path) -> ibis.Table:
    """Read a Parquet file or a folder of Parquet parts (as Spark writes them)."""
    path = Path(path)
    if con.name == "duckdb" and path.is_dir():
        return con.read_parquet(str(path / "**" / "*.parquet"))
    return con.read_parquet(str(path))


def read_jsonl(con: BaseBackend, path: str | Path) -> ibis.Table:
    """Read JSON Lines (plain or gz)."""
    if con.name == "duckdb":
        return con.read_json(str(path), format="newline_delimited")
    return con.read_json(str(path))


def write_parquet(expr: ibis.Table, path: str | Path, *, scratch: bool = False) -> Path:
    """Write a table expression to Parquet, streaming (no full materialisation in Python).

    DuckDB writes one file; Spark writes a folder of parts at the same path. Readers in this
    module and :func:`pyarrow.parquet.read_table` accept both. ``scratch=True`` (intermediate
    files read once and deleted) trades file size for speed: light compression.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    backend = expr._find_backend()
    if backend.name == "duckdb":
        compression = "lz4_raw" if scratch else "zstd"
        expr.to_parquet(str(path), compression=compression, row_group_size=250_000)
    else:
        expr.to_parquet(str(path), mode="overwrite", compression="lz4" if scratch else "snappy")
    return path


def checkpoint(table: ibis.Table, label: str = "checkpoint") -> ibis.Table:
    """``table`` computed once and kept by the engine, independent of what it was computed from.

    DuckDB: ibis' cache (a temporary table). PySpark: an eager ``localCheckpoint`` on disk
    (``DISK_ONLY``) registered as a temporary view, not Spark's cache. Spark's cache keeps a
    cached plan's lineage: a cache built on another cache is rebuilt when that one is released
    or refreshed before the first is loaded (``CacheManager.recacheBy*``), and at 3M customers
    the growth step failed inside such a rebuild (``NullPointerException`` in
    ``CachedRDDBuilder``). A checkpoint has no lineage to rebuild and holds no driver heap; its
    blocks are freed by Spark's context cleaner once the view is dropped, which happens when
    the returned table is garbage-collected.

    Parameters
    ----------
    table : ibis.Table
        Rows to materialise.
    label : str
        Part of the temporary view's name (Spark).

    Returns
    -------
    ibis.Table
        The materialised rows on the same connection.
    """
    con = table._find_backend()
    if con.name != "pyspark":
        return table.cache()
    from pyspark import StorageLevel

    con._run_pre_execute_hooks(table)  # registers memtables as temporary views
    session = con._session
    frame = session.sql(con.compile(table)).localCheckpoint(
        eager=True, storageLevel=StorageLevel.DISK_ONLY
    )
    name = f"_wb_{label}_{uuid.uuid4().hex[:12]}"
    frame.createOrReplaceTempView(name)
    out = con.table(name)
    weakref.finalize(out.op(), _drop_view, session, name)
    return out


def _drop_view(session: Any, name: str) -> None:
    """Drop a temporary view (a no-op once the session is stopped or Python is exiting)."""
    try:
        session.catalog.dropTempView(name)
    except Exception:  # finalizer: the session may be gone already
        if not sys.is_finalizing():
            log.debug("temporary view %s not dropped", name, exc_info=True)


#: Spark SQL type names of the ibis types :func:`map_batches` can return.
_SPARK_TYPES = {"string": "string", "float64": "double", "int64": "bigint", "boolean": "boolean"}


def map_batches(
    expr: ibis.Table,
    fn: Callable[[pd.DataFrame], pd.DataFrame],
    schema: Mapping[str, str],
    *,
    label: str = "mapped",
    batch_rows: int = 250_000,
    partitions: int | None = None,
) -> ibis.Table:
    """Apply a pandas function to a table batch by batch, where the engine runs.

    On PySpark the function runs on the executors (``DataFrame.mapInPandas``), so no more than
    one batch per task is ever in Python and nothing is collected to the driver; the result is
    a temporary view. On DuckDB it runs in this process over Arrow batches of ``batch_rows``
    rows and the result is a temporary table.

    Parameters
    ----------
    expr : ibis.Table
        Input rows.
    fn : callable
        ``pandas.DataFrame -> pandas.DataFrame`` with exactly the ``schema`` columns, one
        output row per input row or any other number (it must be picklable for Spark).
    schema : mapping of str to str
        Output column -> ibis type name (``string``, ``float64``, ``int64``, ``boolean``).
    label : str
        Part of the temporary table's name.
    batch_rows : int
        Rows per batch (DuckDB batches; Spark's Arrow batch size).
    partitions : int, optional
        Spark only: spread the input rows over this many tasks first (for a few heavy rows,
        such as one row per unit of work). Ignored on DuckDB.

    Returns
    -------
    ibis.Table
        The output rows on the same connection.
    """
    con = expr._find_backend()
    name = f"_wb_{label}_{uuid.uuid4().hex[:12]}"
    columns = list(schema)
    if con.name == "pyspark":
        session = con._session
        session.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_rows))
        spark_schema = ", ".join(f"`{c}` {_SPARK_TYPES[t]}" for c, t in schema.items())

        def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                yield fn(batch)[columns]

        frame = session.sql(con.compile(expr))
        if partitions:
            frame = frame.repartition(partitions)
        frame.mapInPandas(run, spark_schema).createOrReplaceTempView(name)
        return con.table(name)
    import pyarrow as pa

    arrow_schema = ibis.schema(dict(schema)).to_pyarrow()
    parts = [
        pa.Table.from_pandas(
            fn(batch.to_pandas())[columns], schema=arrow_schema, preserve_index=False
        )
        for batch in expr.to_pyarrow_batches(chunk_size=batch_rows)
    ]
    table = pa.concat_tables(parts) if parts else arrow_schema.empty_table()
    return con.create_table(name, table, temp=True)


# --- the few scalar functions whose names or format syntax differ between engines -------------


@ibis.udf.scalar.builtin(name="try_strptime")
def _duckdb_try_strptime(value: str, fmt: str) -> dt.timestamp:  # type: ignore[empty-body]
    """DuckDB ``try_strptime``."""


@ibis.udf.scalar.builtin(name="try_to_timestamp")
def _spark_try_to_timestamp(value: str, fmt: str) -> dt.timestamp:  # type: ignore[empty-body]
    """Spark ``try_to_timestamp``."""


@ibis.udf.scalar.builtin(name="timezone")
def _duckdb_timezone(zone: str, value: dt.timestamp) -> dt.Timestamp(timezone="UTC"):  # type: ignore[empty-body]
    """DuckDB ``timezone(zone, naive)``: a wall-clock time in ``zone`` as an instant."""


@ibis.udf.scalar.builtin(name="to_utc_timestamp")
def _spark_to_utc(value: dt.timestamp, zone: str) -> dt.Timestamp(timezone="UTC"):  # type: ignore[empty-body]
    """Spark ``to_utc_timestamp(naive, zone)``."""


_JAVA_FORMAT = {
    "%Y": "yyyy",
    "%y": "yy",
    "%m": "MM",
    "%d": "dd",
    "%H": "HH",
    "%I": "hh",
    "%M": "mm",
    "%S": "ss",
    "%f": "SSSSSS",
    "%p": "a",
    "%b": "MMM",
    "%B": "MMMM",
    "%z": "xx",
    "%Z": "z",
    "%j": "DDD",
}


def strftime_to_java(fmt: str) -> str:
    """Translate a strptime format (``%d/%m/%Y``) into a Java pattern (``dd/MM/yyyy``)."""
    out, literal, i = [], [], 0

    def flush() -> None:
        if literal:
            text = "".join(literal).replace("'", "''")
            out.append(f"'{text}'" if any(c.isalpha() for c in text) else text)
            literal.clear()

    while i < len(fmt):
        code = fmt[i : i + 2]
        if code in _JAVA_FORMAT:
            flush()
            out.append(_JAVA_FORMAT[code])
            i += 2
        elif code == "%%":
            literal.append("%")
            i += 2
        else:
            literal.append(fmt[i])
            i += 1
    flush()
    return "".join(out)


def try_strptime(backend: str, value: ibis.StringValue, fmt: str) -> ibis.TimestampValue:
    """Parse strings with a strptime format; unparseable values become NULL."""
    if backend == "duckdb":
        return _duckdb_try_strptime(value, fmt)
    return _spark_try_to_timestamp(value, strftime_to_java(fmt))


def localize(backend: str, value: ibis.TimestampValue, zone: str) -> ibis.TimestampValue:
    """Read a naive timestamp as wall-clock time in ``zone`` and return the UTC instant."""
    if backend == "duckdb":
        return _duckdb_timezone(zone, value)
    return _spark_to_utc(value, zone)


@ibis.udf.scalar.builtin(name="epoch")
def _duckdb_epoch(value: dt.Timestamp(timezone="UTC")) -> dt.float64:  # type: ignore[empty-body]
    """DuckDB ``epoch(timestamptz)``: seconds since 1970 (with the fraction)."""


def whole_epoch_seconds(
    value: ibis.TimestampValue, backend: str | None = None
) -> ibis.FloatingValue:
    """Whole seconds since 1970 of a UTC instant (float64), the same on every engine.

    ibis renders ``epoch_seconds()`` on DuckDB as ``EPOCH(CAST(ts AS TIMESTAMP))``: the cast of
    a ``TIMESTAMPTZ`` costs a time-zone computation per row (most of a decayed aggregate's
    time over millions of events). DuckDB's ``epoch`` reads the instant directly; Spark's
    ``unix_timestamp`` already drops the fraction. ``backend`` defaults to the column's.
    """
    backend = value._find_backend().name if backend is None else backend
    if backend == "duckdb":
        return _duckdb_epoch(value).floor().cast("float64")
    return value.epoch_seconds().cast("float64")


def trim(value: ibis.StringValue, backend: str) -> ibis.StringValue:
    r"""Remove leading and trailing whitespace, the same on every engine.

    Use this instead of ibis' ``strip()`` on PySpark: ibis 12 renders it as
    ``TRIM(' \t\n\r\v\f' FROM x)`` and Spark reads ``\v`` and ``\f`` as the letters v and f,
    so ``"view"`` becomes ``"iew"``. DuckDB's own trim is correct and much faster than a regex.
    """
    if backend == "duckdb":
        return value.strip()
    return value.re_replace(r"^\s+|\s+$", "")
