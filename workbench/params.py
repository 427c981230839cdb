"""Run parameters: ``params/*.yaml`` validated into a frozen pydantic model.

Every key is checked before anything runs: unknown keys and bad values are rejected with the
key's dotted path and a hint (the closest valid key, or the allowed values).
"""

from __future__ import annotations

import difflib
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workbench.errors import ParamsError

Engine = Literal["duckdb", "pyspark"]
SourceFormat = Literal["auto", "csv", "parquet", "jsonl", "duckdb", "sql", "table"]
EventType = Literal["view", "click", "search", "cart"]
InterestLevel = Literal["product", "category", "brand", "keyword"]
ExportType = Literal[
    "csv",
    "google_customer_match_file",
    "meta_audience_file",
    "magnews_csv",
    "mailchimp",
    "klaviyo",
    "meta",
    "google",
]


class StrictModel(BaseModel):
    """Base for all params sections: frozen, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(StrictModel):
    """Where one input table comes from and how its columns map to canonical names.

    Relative ``path`` values are resolved against the project root (the folder holding
    ``params/``) when the params file is loaded.
    """

    path: str | None = None
    format: SourceFormat = "auto"
    table: str | None = Field(
        None,
        description="table name inside a DuckDB file (format duckdb), or a table or view of "
        "the engine's catalog, optionally 'database.table' (format table: e.g. a Spark "
        "metastore table on a cluster)",
    )
    query: str | None = Field(None, description="SQL query (format sql or duckdb)")
    url_env: str | None = Field(
        None, description="environment variable holding the database URL (format sql)"
    )
    columns: dict[str, str] = Field(
        default_factory=dict, description="canonical column name -> source column name"
    )
    delimiter: str | None = Field(
        None, description="CSV delimiter (one character, or 'whitespace'); null = detect"
    )
    header: bool = Field(True, description="CSV has a header line; false = columns column1..N")
    defaults: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="canonical column -> constant used when the source has no such column",
    )
    encoding: str | None = Field(None, description="CSV encoding; null = detect")
    timestamp_format: str | None = Field(
        None, description="strptime format of date columns; null = ISO 8601"
    )
    timezone: str = Field("UTC", description="zone of timestamps written without an offset")

    @model_validator(mode="after")
    def _location(self) -> Source:
        if self.format == "sql":
            if not (self.query and self.url_env):
                raise ValueError("format 'sql' needs both 'query' and 'url_env'")
        elif self.format == "table":
            if not self.table or self.path:
                raise ValueError(
                    "format 'table' needs 'table' (a catalog table, optionally "
                    "'database.table') and no 'path'"
                )
        elif not self.path:
            raise ValueError(
                "'path' is required (or use format: sql with query and url_env, or format: "
                "table with table)"
            )
        if (
            self.delimiter is not None
            and len(self.delimiter) != 1
            and self.delimiter != "whitespace"
        ):
            raise ValueError(
                f"delimiter must be one character or 'whitespace', got {self.delimiter!r}"
            )
        return self


class OrdersSource(Source):
    """The order-lines source, with the rules that decide what counts as an order."""

    cancel_prefix: str | None = Field(
        None, description="order ids starting with this are cancellations (e.g. 'C')"
    )
    return_statuses: list[str] = Field(
        default_factory=lambda: ["cancelled", "canceled", "returned", "refunded", "return"],
        description="status values (case-insensitive) that mark a cancellation or return",
    )
    exclude_products: list[str] = Field(
        default_factory=list,
        description="product ids that are fees, postage or adjustments, not merchandise",
    )
    max_quantity: float | None = Field(
        None, gt=0, description="lines with |quantity| above this are quarantined as outliers"
    )
    keep_zero_price: bool = Field(
        False, description="keep zero-price lines as purchases (free items) instead of quarantine"
    )
    fx_rates: dict[str, float] = Field(
        default_factory=dict, description="currency -> rate into the run currency"
    )
    dedupe: bool = Field(True, description="quarantine repeated identical order lines")


class EventsSource(Source):
    """The web-events source."""

    event_types: dict[str, EventType] = Field(
        default_factory=dict, description="source event name -> view | click | search | cart"
    )


class DataParams(StrictModel):
    """The input tables; only ``orders`` is required."""

    orders: OrdersSource
    products: Source | None = None
    customers: Source | None = None
    events: EventsSource | None = None


class IngestParams(StrictModel):
    """Limits that turn row-level problems into a run failure."""

    max_reject_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="fail when more than this share of a table's rows is rejected for one "
        "parse reason (bad timestamp, bad number): the mapping or format is likely wrong",
    )
    memory_limit: str = Field("4GB", description="DuckDB memory limit; larger work spills")
    incremental: bool = Field(
        False,
        description="orders / events read from a folder of Parquet files: reuse the last "
        "succeeded run's rows and read only files it did not see (workbench/ingest/"
        "incremental.py says when it falls back to a full ingest)",
    )


class SparkParams(StrictModel):
    """Options for ``engine: pyspark``."""

    master: str = "local[2]"
    driver_memory: str = "4g"
    shuffle_partitions: int = Field(8, ge=1)
    #: Any other Spark setting, e.g. ``spark.executor.memory: 8g`` on a cluster.
    conf: dict[str, str] = Field(default_factory=dict)


class ModelParams(StrictModel):
    """Customer-model settings."""

    horizon_days: int = Field(90, ge=1, le=3650)


class InterestParams(StrictModel):
    """Interested-In settings."""

    levels: list[InterestLevel] = Field(default_factory=lambda: ["product", "category", "brand"])
    top_k: int = Field(10, ge=1, le=1000)
    #: The honest evaluation refits every level as of ``as_of - horizon``; above this many
    #: customers it fits and scores a random sample of them (None = every customer), so its
    #: cost stops growing with the shop. A smaller training set can only make it pessimistic.
    evaluation_customers: int | None = Field(200_000, ge=1000)
    #: Run the honest evaluation in every monthly run. ``false`` leaves it to
    #: ``workbench evaluate-interest`` on its own schedule (e.g. quarterly): at 1M customers
    #: it is the largest part of the Interested-In step after the fits.
    evaluate: bool = True
    #: Processes scoring the top-k table on DuckDB (None: one per CPU, at most 4); on Spark
    #: the executors score it.
    scoring_workers: int | None = Field(None, ge=1, le=64)


class ExportSpec(StrictModel):
    """One export destination (see docs/design.md, section 7)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    type: ExportType
    segments: list[str] | None = None
    columns: list[str] | None = None
    list_id: str | None = None
    audience_id: str | None = None
    account_id: str | None = None
    audience_ids: dict[str, str] | None = Field(
        None, description="segment -> destination list / audience / user-list id"
    )
    api_key_env: str | None = Field(
        None, description="name of the environment variable holding the secret (never the value)"
    )
    base_url: str | None = Field(None, description="API root; set for proxies and test servers")
    merge_fields: dict[str, str] | None = Field(
        None, description="Mailchimp merge tag -> customer column (default FNAME, LNAME)"
    )
    status_if_new: Literal["subscribed", "transactional", "pending"] | None = Field(
        None, description="Mailchimp status for new contacts (default: from `subscribed`)"
    )
    revision: str = Field("2026-07-15", description="Klaviyo API revision")
    api_version: str = Field("v25.0", description="Meta Graph API version")
    account_type: str = Field("GOOGLE_ADS", description="Google Data Manager account type")
    login_account_id: str | None = Field(None, description="Google manager (login) account")
    consent: Literal["granted", "denied", "from_subscribed"] | None = Field(
        None, description="Google consent sent with members (null: not sent)"
    )
    default_country: str | None = Field(
        None, description="ISO country for phones of customers without a country"
    )


class Params(StrictModel):
    """All parameters of one run."""

    run_name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    as_of: date | None = None
    engine: Engine = "duckdb"
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    data: DataParams
    ingest: IngestParams = Field(default_factory=IngestParams)
    spark: SparkParams = Field(default_factory=SparkParams)
    models: ModelParams = Field(default_factory=ModelParams)
    interest: InterestParams = Field(default_factory=InterestParams)
    segments: str | list[str] = "params/segments/"
    exports: list[ExportSpec] = Field(default_factory=list)

    @field_validator("exports")
    @classmethod
    def _unique_exports(cls, value: list[ExportSpec]) -> list[ExportSpec]:
        names = [e.name for e in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"export names must be unique, repeated: {', '.join(dupes)}")
        return value

    def notebook_parameters(self, run_dir: Path) -> dict[str, Any]:
        """Parameters papermill injects into every notebook: the params keys plus ``run_dir``."""
        values = self.model_dump(mode="json")
        values["run_dir"] = str(run_dir)
        return values


#: Keys of every notebook's ``parameters`` cell besides the params keys.
RUNTIME_PARAMETERS = ("run_dir",)


def project_root_for(params_path: Path) -> Path:
    """The folder relative paths in a params file are resolved against.

    The parent of the ``params/`` folder the file lives in, else the file's own folder.
    """
    params_path = params_path.resolve()
    for parent in params_path.parents:
        if parent.name == "params":
            return parent.parent
    return params_path.parent


def _apply_override(raw: dict[str, Any], assignment: str) -> None:
    if "=" not in assignment:
        raise ParamsError(
            f"override {assignment!r} is not of the form key=value",
            where="--set",
            fix="write e.g. --set models.horizon_days=60",
        )
    key, _, text = assignment.partition("=")
    value = yaml.safe_load(text) if text.strip() else None
    node: Any = raw
    parts = key.strip().split(".")
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part) if isinstance(node, dict) else None
        if nxt is None:
            nxt = {}
            node[part] = nxt
        if not isinstance(nxt, dict):
            raise ParamsError(
                f"cannot set a key below {'.'.join(parts[: i + 1])!r}, which is not a mapping",
                where=f"--set {assignment}",
            )
        node = nxt
    node[parts[-1]] = value


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """Field names valid at the parent of ``loc`` in the params model (for hints)."""
    model: Any = Params
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = _model_of(field.annotation)
    return list(getattr(model, "model_fields", {}))


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _format_loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in {"function-after[_location()]", "function-after[_unique_exports()]"}:
            continue
        else:
            text += f".{part}" if text else str(part)
    return text


def format_validation_error(exc: ValidationError, source: str) -> ParamsError:
    """Turn a pydantic error into one readable message listing every bad key."""
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "function" in p))
        path = _format_loc(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            valid = _fields_at(loc)
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            lines.append(f"{path}: unknown key; {hint}valid keys here: {', '.join(valid)}")
        elif err["type"] == "missing":
            lines.append(f"{path}: required key is missing")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{path}: {msg} (got {err.get('input')!r})")
    return ParamsError(
        "invalid parameters:\n  " + "\n  ".join(lines),
        where=source,
        fix="correct the keys above (docs/params.md lists every key)",
    )


def _resolve_paths(raw: dict[str, Any], root: Path) -> None:
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    for spec in data.values():
        if isinstance(spec, dict) and isinstance(spec.get("path"), str):
            path = Path(spec["path"]).expanduser()
            if not path.is_absolute() and "://" not in spec["path"]:
                spec["path"] = str((root / path).resolve())
    seg = raw.get("segments")
    if isinstance(seg, str):
        raw["segments"] = str((root / seg).resolve()) if not Path(seg).is_absolute() else seg
    elif isinstance(seg, list):
        raw["segments"] = [
            str((root / s).resolve()) if isinstance(s, str) and not Path(s).is_absolute() else s
            for s in seg
        ]


def parse_params(
    raw: dict[str, Any], *, source: str = "params", root: Path | None = None
) -> Params:
    """Validate a params mapping.

    Parameters
    ----------
    raw : dict
        The mapping as read from YAML (it is modified: relative paths are resolved).
    source : str
        Name shown in error messages (usually the file path).
    root : Path, optional
        Folder relative paths are resolved against; None leaves them as they are.
    """
    if root is not None:
        _resolve_paths(raw, root)
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise format_validation_error(exc, source) from None


def load_params(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Params:
    """Read, override and validate a params file.

    Parameters
    ----------
    path : str or Path
        The YAML file.
    overrides : list of str
        ``key=value`` assignments (dotted keys, YAML values) applied before validation.

    Raises
    ------
    ParamsError
        When the file is missing, is not YAML, or any key is invalid.
    """
    path = Path(path)
    if not path.is_file():
        raise ParamsError(
            "params file not found",
            where=str(path),
            fix=f"pass an existing file, e.g. one of: {', '.join(_known_params())}",
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ParamsError(f"not valid YAML ({getattr(exc, 'problem', exc)})", where=where) from None
    if not isinstance(raw, dict):
        raise ParamsError("a params file must be a YAML mapping of keys", where=str(path))
    for assignment in overrides:
        _apply_override(raw, assignment)
    return parse_params(raw, source=str(path), root=project_root_for(path))


def _known_params() -> list[str]:
    from workbench.config import PARAMS_DIR

    return sorted(f"params/{p.name}" for p in PARAMS_DIR.glob("*.yaml")) or ["params/demo.yaml"]


def dump_params(params: Params) -> str:
    """Params as YAML (paths resolved), as written into a run folder."""
    return yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


_SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password)$", re.IGNORECASE)


def redact(values: Any) -> Any:
    """Copy of a params mapping with anything that looks like a secret value replaced.

    Keys ending in ``_env`` hold the *name* of an environment variable and are kept.
    """
    if isinstance(values, dict):
        return {
            k: ("***" if _SECRET_KEY.search(str(k)) and v else redact(v)) for k, v in values.items()
        }
    if isinstance(values, list):
        return [redact(v) for v in values]
    return values
