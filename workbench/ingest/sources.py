"""Open an input source as an ibis table: format, encoding and delimiter detection.

File-level problems (missing file, empty file, header only, undecodable bytes, a required
column that is not there) raise :class:`~workbench.errors.InputDataError` with the file, the
column and a hint; row-level problems are left to :mod:`workbench.ingest.normalise`.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import gzip
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import ibis

from workbench import engine
from workbench.errors import InputDataError
from workbench.ingest.tables import TableSpec

if TYPE_CHECKING:
    from ibis.backends import BaseBackend

    from workbench.params import Source

log = logging.getLogger(__name__)

SAMPLE_BYTES = 1 << 20
_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".duckdb": "duckdb",
    ".ddb": "duckdb",
}
_DELIMITERS = ",;\t|"


@dataclass
class OpenedSource:
    """A source opened as an ibis table, with what was detected about it.

    Attributes
    ----------
    table : ibis.Table
        The source rows; CSV columns are all strings.
    mapping : dict
        Canonical column -> source column, for the columns present.
    attributes : dict
        Extra attribute name -> source column (products, customers).
    label : str
        Human name of the source (file path or query) for messages.
    detected : dict
        What was detected (format, encoding, delimiter, transcoded).
    """

    table: ibis.Table
    mapping: dict[str, str]
    attributes: dict[str, str]
    label: str
    files: list[Path] = field(default_factory=list)
    detected: dict[str, str] = field(default_factory=dict)


def detect_format(path: Path) -> str:
    """Guess the format of a source from its name (``.gz`` is looked through)."""
    if path.is_dir():
        return "parquet"
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = _SUFFIX_FORMATS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise InputDataError(
            f"cannot tell the file format from the name {path.name!r}",
            where=str(path),
            fix="set data.<table>.format to one of csv, parquet, jsonl, duckdb",
        )
    return fmt


def _open_bytes(path: Path) -> io.BufferedIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_sample(path: Path, size: int = SAMPLE_BYTES) -> bytes:
    """The first ``size`` bytes of a file, decompressed when it is gzip."""
    try:
        with _open_bytes(path) as fh:
            return fh.read(size)
    except (OSError, EOFError) as exc:
        raise InputDataError(f"cannot read the file ({exc})", where=str(path)) from None


def detect_encoding(sample: bytes, path: Path) -> str:
    """Detect the text encoding of a sample: BOMs first, then UTF-8, then charset-normalizer."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample[:4096]:
        raise InputDataError(
            "the file contains NUL bytes: it looks binary, not like CSV text",
            where=str(path),
            fix="check the path and format (e.g. format: parquet for Parquet files)",
        )
    try:
        # the sample may end inside a multi-byte character: ignore an incomplete tail
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    if best is None:
        raise InputDataError(
            "cannot detect the text encoding (not UTF-8, and no other encoding fits)",
            where=str(path),
            fix="set data.<table>.encoding, e.g. encoding: cp1252",
        )
    # Single-byte code pages are hard to tell apart on short samples. Windows-1252 (Excel's
    # Western default, a superset of Latin-1's printable range) wins when the guess is another
    # single-byte Latin page and the bytes are valid in it; other encodings must be declared.
    single_byte = best.encoding.startswith(("cp125", "iso8859", "latin", "mac_"))
    if single_byte and best.encoding != "cp1252":
        try:
            sample.decode("cp1252")
            return "cp1252"
        except UnicodeDecodeError:
            pass
    return best.encoding


def _decode(sample: bytes, encoding: str, path: Path) -> str:
    try:
        return codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
    except (UnicodeDecodeError, LookupError) as exc:
        raise InputDataError(
            f"the file cannot be decoded as {encoding} ({exc})",
            where=str(path),
            fix="set data.<table>.encoding to the file's real encoding (e.g. utf-8, cp1252)",
        ) from None


def detect_delimiter(text: str) -> str:
    """The most likely delimiter among ``, ; TAB |`` from the first lines of a CSV."""
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=_DELIMITERS).delimiter
    except csv.Error:
        header = lines[0]
        counts = {d: header.count(d) for d in _DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def transcode_to_utf8(path: Path, encoding: str, out: Path) -> Path:
    """Stream a text file into UTF-8 (bounded memory), for engines that read UTF-8 only."""
    out.parent.mkdir(parents=True, exist_ok=True)
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with _open_bytes(path) as src, open(out, "w", encoding="utf-8", newline="") as dst:
            while chunk := src.read(1 << 22):
                dst.write(decoder.decode(chunk))
            dst.write(decoder.decode(b"", final=True))
    except UnicodeDecodeError as exc:
        out.unlink(missing_ok=True)
        raise InputDataError(
            f"the file is not valid {encoding} at byte {exc.start} of a block ({exc.reason})",
            where=str(path),
            fix="set data.<table>.encoding to the file's real encoding",
        ) from None
    return out


def _csv_source(
    con: BaseBackend, path: Path, spec: Source, workdir: Path, table_name: str
) -> tuple[ibis.Table, dict[str, str]]:
    if path.stat().st_size == 0:
        raise InputDataError(
            "the file is empty (0 bytes)", where=str(path), fix="export the data again"
        )
    sample = read_sample(path)
    if not sample.strip():
        raise InputDataError("the file holds only blank space", where=str(path))
    encoding = spec.encoding or detect_encoding(sample, path)
    text = _decode(sample, encoding, path)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    complete = len(sample) < SAMPLE_BYTES
    if complete and len(lines) < (2 if spec.header else 1):
        raise InputDataError(
            "the file has a header line but no data rows",
            where=str(path),
            fix="check the export: the file should hold at least one row below the header",
        )
    if spec.delimiter == "whitespace":
        out = _whitespace_to_csv(path, encoding, workdir / f"{table_name}.ws.csv", spec.header)
        detected = {"format": "csv", "encoding": encoding, "delimiter": "whitespace"}
        return engine.read_csv(con, out, delimiter=","), detected
    sniffed = detect_delimiter(text)
    delimiter = spec.delimiter or sniffed
    header = next(csv.reader([lines[0]], delimiter=delimiter))
    if len(header) == 1 and sniffed != delimiter:
        alt = next(csv.reader([lines[0]], delimiter=sniffed))
        if len(alt) > 1:
            raise InputDataError(
                f"with delimiter {delimiter!r} the header is a single column "
                f"({lines[0][:80]!r}), but it splits into {len(alt)} columns with {sniffed!r}",
                where=str(path),
                fix=f"set data.{table_name}.delimiter to {sniffed!r} (or remove it to detect)",
            )
    detected = {"format": "csv", "encoding": encoding, "delimiter": delimiter}
    norm = codecs.lookup(encoding).name
    read_path = path
    if norm not in {"utf-8", "ascii"}:
        read_path = transcode_to_utf8(path, encoding, workdir / f"{table_name}.utf8.csv")
        detected["transcoded_from"] = encoding
        log.info("%s: transcoded from %s to UTF-8", path, encoding)
    table = engine.read_csv(con, read_path, delimiter=delimiter, header=spec.header)
    return table, detected


def _whitespace_to_csv(path: Path, encoding: str, out: Path, header: bool) -> Path:
    """Stream a whitespace-separated text file into a comma-separated UTF-8 copy."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        _open_bytes(path) as raw,
        io.TextIOWrapper(raw, encoding=encoding, newline="") as src,
        open(out, "w", encoding="utf-8", newline="") as dst,
    ):
        writer = csv.writer(dst)
        first = True
        for line in src:
            fields = line.split()
            if not fields:
                continue
            if first and not header:
                writer.writerow([f"column{i + 1}" for i in range(len(fields))])
            first = False
            writer.writerow(fields)
    return out


def _stage_query(spec: Source, workdir: Path, table_name: str) -> Path:
    """Run a SQL query on a database URL and stream the result into a Parquet file."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    import sqlalchemy as sa

    from workbench.secrets import REDACTOR, resolve_secret

    url = resolve_secret(
        spec.url_env,
        where=f"data.{table_name}.url_env",
        kind="database URL",
        error=InputDataError,
    )
    out = workdir / f"{table_name}.query.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    try:
        eng = sa.create_engine(url)
        with eng.connect() as conn:
            for chunk in pd.read_sql(sa.text(spec.query or ""), conn, chunksize=200_000):
                batch = pa.Table.from_pandas(chunk.astype("string"), preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(out, batch.schema)
                writer.write_table(batch)
    except sa.exc.SQLAlchemyError as exc:
        raise InputDataError(
            f"the SQL query failed: {REDACTOR.redact(str(exc).splitlines()[0])}",
            where=f"data.{table_name}.query",
            fix="check the query and the database URL (the URL itself is never printed)",
        ) from None
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise InputDataError("the SQL query returned no rows", where=f"data.{table_name}.query")
    return out


def _duckdb_file_source(
    con: BaseBackend, path: Path, spec: Source, workdir: Path, table_name: str
) -> ibis.Table:
    import duckdb

    if not (spec.table or spec.query):
        raise InputDataError(
            "a DuckDB file source needs 'table' or 'query'",
            where=f"data.{table_name}",
            fix="add table: <name> (or query: SELECT ...)",
        )
    query = spec.query or f'SELECT * FROM "{spec.table}"'
    out = workdir / f"{table_name}.duckdb.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        src = duckdb.connect(str(path), read_only=True)
        try:
            src.execute(f"COPY ({query}) TO '{out}' (FORMAT parquet)")
        finally:
            src.close()
    except duckdb.Error as exc:
        raise InputDataError(
            f"cannot read from the DuckDB file: {str(exc).splitlines()[0]}",
            where=f"{path} ({spec.table or spec.query})",
        ) from None
    return engine.read_parquet(con, out)


def _suggest(name: str, candidates: list[str]) -> str:
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered:
        return f"did you mean {lowered[name.lower()]!r}? "
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def _missing_table_errors() -> tuple[type[Exception], ...]:
    """What ibis and Spark raise for a table or database the catalog does not hold."""
    from ibis.common.exceptions import TableNotFound

    try:
        from pyspark.errors import AnalysisException
    except ImportError:
        return (TableNotFound,)
    return (TableNotFound, AnalysisException)


def _catalog_table(con: BaseBackend, name: str, *, where: str) -> ibis.Table:
    """A table or view of the engine's catalog: ``table`` or ``database.table``.

    On Spark this is the session's catalog (on a cluster, its metastore), so order lines that
    already live in a warehouse table are read where they are, without an export to files.

    Parameters
    ----------
    con : ibis backend
        Connection from :func:`workbench.engine.connect`.
    name : str
        Table name, optionally qualified by its database (``sales.order_lines``).
    where : str
        The params key that names the table, for the error message.

    Raises
    ------
    InputDataError
        When the catalog holds no such table; the message suggests the closest name and lists
        the tables it does hold.
    """
    missing = _missing_table_errors()
    database, _, table = name.rpartition(".")
    try:
        return con.table(table, database=database or None)
    except missing as exc:
        try:
            known = sorted(con.list_tables(database=database or None))
        except missing:  # the database itself is not there
            known = []
        listed = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
        raise InputDataError(
            f"the {con.name} catalog has no table {name!r} ({type(exc).__name__})",
            where=where,
            fix=_suggest(table, known)
            + (f"tables there: {listed}. " if known else "no tables found there. ")
            + "On Spark, name a table or view of the session's catalog (database.table); "
            "on DuckDB, read a DuckDB file with format: duckdb, path and table",
        ) from None


def _example_row(table: ibis.Table) -> str:
    try:
        row = table.limit(1).to_pyarrow().to_pylist()
    except Exception:  # noqa: BLE001 - only decorates an error message
        return ""
    return f" An example row: {row[0]}" if row else ""


def resolve_mapping(
    table: ibis.Table, spec: Source, tspec: TableSpec, label: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Match canonical columns to source columns, failing clearly on a missing one.

    Returns
    -------
    mapping : dict
        Canonical -> source column for every canonical column found.
    attributes : dict
        Extra attribute -> source column (only for tables that carry attributes).
    """
    available = list(table.columns)
    unknown = [c for c in spec.columns if c not in tspec.columns and not tspec.extra_attributes]
    if unknown:
        raise InputDataError(
            f"unknown canonical column(s) {', '.join(map(repr, unknown))} in the mapping",
            where=f"data.{tspec.name}.columns",
            fix=f"map only these names: {', '.join(tspec.columns)}",
        )
    mapping: dict[str, str] = {}
    attributes: dict[str, str] = {}
    for canon in tspec.columns:
        src = spec.columns.get(canon, canon)
        if src in available:
            mapping[canon] = src
        elif canon in spec.defaults and canon not in spec.columns:
            continue
        elif canon in spec.columns or canon in tspec.required:
            what = (
                f"required column {canon!r} is missing"
                if canon not in spec.columns
                else f"column {canon!r} is mapped to source column {src!r}, which is not there"
            )
            raise InputDataError(
                f"{what}. The source has: {', '.join(available[:30])}.{_example_row(table)}",
                where=f"{label} (data.{tspec.name}.columns.{canon})",
                fix=f"{_suggest(src, available)}map it with data.{tspec.name}.columns.{canon}: "
                "<source column name>",
            )
    for group in tspec.one_of:
        if not any(c in mapping or c in spec.defaults for c in group):
            raise InputDataError(
                f"none of the columns {' / '.join(group)} is there; one is needed. "
                f"The source has: {', '.join(available[:30])}.{_example_row(table)}",
                where=f"{label} (data.{tspec.name}.columns)",
                fix=f"map one of them, e.g. data.{tspec.name}.columns.{group[0]}: <source column>",
            )
    if tspec.extra_attributes:
        used = set(mapping.values())
        for canon, src in spec.columns.items():
            if canon not in tspec.columns:
                if src not in available:
                    raise InputDataError(
                        f"attribute {canon!r} is mapped to source column {src!r}, "
                        "which is not there",
                        where=f"{label} (data.{tspec.name}.columns.{canon})",
                        fix=f"{_suggest(src, available)}available: {', '.join(available[:30])}",
                    )
                attributes[canon] = src
                used.add(src)
        for src in available:
            name = re.sub(r"[^0-9a-z]+", "_", src.strip().lower()).strip("_")
            if src not in used and name and name not in tspec.columns and name not in attributes:
                attributes[name] = src
    return mapping, attributes


def open_source(
    con: BaseBackend, table_name: str, spec: Source, tspec: TableSpec, workdir: Path
) -> OpenedSource:
    """Open one configured source and resolve its column mapping.

    Parameters
    ----------
    con : ibis backend
        Connection from :func:`workbench.engine.connect`.
    table_name : str
        Canonical table name (for messages).
    spec : Source
        The source's params.
    tspec : TableSpec
        The canonical table contract.
    workdir : Path
        Scratch folder for staged or transcoded copies.
    """
    files: list[Path] = []
    detected: dict[str, str] = {}
    if spec.format == "sql":
        staged = _stage_query(spec, workdir, table_name)
        table = engine.read_parquet(con, staged)
        label = f"SQL query of data.{table_name}"
        detected["format"] = "sql"
    elif spec.format == "table":
        table = _catalog_table(con, spec.table or "", where=f"data.{table_name}.table")
        label = f"catalog table {spec.table} (data.{table_name})"
        detected["format"] = "table"
    else:
        path = Path(spec.path or "")
        label = str(path)
        if not path.exists():
            parent = path.parent
            near = (
                difflib.get_close_matches(path.name, [p.name for p in parent.iterdir()], n=1)
                if parent.is_dir()
                else []
            )
            raise InputDataError(
                "file not found",
                where=f"data.{table_name}.path = {path}",
                fix=(f"did you mean {near[0]!r}? " if near else "")
                + "relative paths are resolved against the project root (the folder of params/)",
            )
        files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
        fmt = detect_format(path) if spec.format == "auto" else spec.format
        detected["format"] = fmt
        if fmt == "csv":
            table, detected = _csv_source(con, path, spec, workdir, table_name)
        elif fmt == "parquet":
            if not files:
                raise InputDataError("the folder holds no .parquet files", where=str(path))
            table = engine.read_parquet(con, path)
        elif fmt == "jsonl":
            if path.stat().st_size == 0:
                raise InputDataError("the file is empty (0 bytes)", where=str(path))
            table = engine.read_jsonl(con, path)
        else:
            table = _duckdb_file_source(con, path, spec, workdir, table_name)
    mapping, attributes = resolve_mapping(table, spec, tspec, label)
    return OpenedSource(
        table=table,
        mapping=mapping,
        attributes=attributes,
        label=label,
        files=files,
        detected=detected,
    )
