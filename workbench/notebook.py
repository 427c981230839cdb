"""What a notebook needs to start: validated params, the run folder, a connection, shared metrics.

Every notebook's second cell is::

    from workbench.notebook import start
    ctx = start(globals())

The ``parameters`` cell above it declares the params keys (and ``run_dir``) as literals; papermill
overrides them in headless runs. Interactively ``run_dir = None`` means the lab folder
``outputs/lab/<run_name>``, seeded from the latest finished run when it is empty.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import config, engine
from workbench.errors import InputDataError
from workbench.params import RUNTIME_PARAMETERS, Params, parse_params

if TYPE_CHECKING:
    import ibis
    from ibis.backends import BaseBackend

log = logging.getLogger(__name__)


def end_of_day(day: date) -> datetime:
    """The last microsecond of ``day`` in UTC: the instant models look from."""
    return datetime.combine(day, time.max, tzinfo=UTC)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON file as a dict, or an empty dict when it does not exist."""
    return json.loads(path.read_text()) if path.is_file() else {}


def write_json_atomic(path: Path, values: Any) -> None:
    """Write JSON through a temporary file and a rename, so readers never see half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(values, indent=2, default=str, allow_nan=False))
    os.replace(tmp, path)


@dataclass
class RunContext:
    """The state a notebook works with.

    Attributes
    ----------
    params : Params
        Validated run parameters.
    run_dir : Path
        The run folder this notebook reads from and writes to.
    """

    params: Params
    run_dir: Path
    _con: BaseBackend | None = field(default=None, repr=False)

    @property
    def con(self) -> BaseBackend:
        """The ibis connection for ``params.engine`` (opened on first use)."""
        if self._con is None:
            self._con = engine.connect_for(self.params, self.run_dir / "work")
        return self._con

    def path(self, name: str) -> Path:
        """A path inside the run folder."""
        return self.run_dir / name

    def data_path(self, table: str) -> Path:
        """Path of a canonical table written by the ingest step."""
        return self.run_dir / config.RUN_DATA / f"{table}.parquet"

    def has_table(self, table: str) -> bool:
        """Whether the ingest step produced ``table``."""
        return self.data_path(table).exists()

    def table(self, table: str) -> ibis.Table:
        """A canonical table (orders, products, customers, events) as an ibis table."""
        path = self.data_path(table)
        if not path.exists():
            raise InputDataError(
                f"the run folder has no {table!r} table",
                where=str(path),
                fix="run notebooks/01_ingest.ipynb first (or `workbench run PARAMS`)",
            )
        return engine.read_parquet(self.con, path)

    @property
    def ingest_summary(self) -> dict[str, Any]:
        """The ingest step's summary (rows read, kept, quarantined per reason)."""
        return read_json(self.run_dir / config.INGEST_SUMMARY)

    @property
    def as_of_date(self) -> date:
        """The day models look from: ``params.as_of`` or the last order date in the data."""
        if self.params.as_of is not None:
            return self.params.as_of
        last = self.ingest_summary.get("last_order_at")
        if not last:
            raise InputDataError(
                "as_of is null and the ingest summary has no last order date",
                where=str(self.run_dir / config.INGEST_SUMMARY),
                fix="run the ingest step first, or set as_of in the params file",
            )
        return datetime.fromisoformat(last).astimezone(UTC).date()

    @property
    def run_id(self) -> str:
        """``<run_name>_<as_of date>``: the name the run folder gets when the run succeeds."""
        return f"{self.params.run_name}_{self.as_of_date.isoformat()}"

    @property
    def as_of(self) -> datetime:
        """End of :attr:`as_of_date` in UTC (orders up to and including that day count)."""
        return end_of_day(self.as_of_date)

    @property
    def metrics(self) -> dict[str, Any]:
        """The run's ``metrics.json`` as written so far."""
        return read_json(self.run_dir / "metrics.json")

    def update_metrics(self, section: str, values: dict[str, Any]) -> None:
        """Merge ``values`` into ``metrics.json`` under ``section`` (written atomically)."""
        metrics = self.metrics
        metrics[section] = {**metrics.get(section, {}), **values}
        write_json_atomic(self.run_dir / "metrics.json", metrics)


def lab_dir(run_name: str) -> Path:
    """The interactive working folder for a params' ``run_name``."""
    return config.OUTPUTS_DIR / "lab" / run_name


def latest_run(run_name: str, outputs: Path | None = None) -> Path | None:
    """The most recent finished run folder of ``run_name`` (by its manifest), if any."""
    outputs = outputs or config.OUTPUTS_DIR
    best: tuple[str, Path] | None = None
    for manifest in outputs.glob(f"{run_name}_*/{config.MANIFEST}"):
        info = read_json(manifest)
        if info.get("status") == "succeeded":
            key = info.get("finished_at", "")
            if best is None or key > best[0]:
                best = (key, manifest.parent)
    return best[1] if best else None


def _seed_lab(folder: Path, run_name: str) -> None:
    source = latest_run(run_name)
    if source is None or (folder / config.RUN_DATA).exists():
        return
    log.info("seeding %s from the latest run %s", folder, source.name)
    for item in source.iterdir():
        if item.name in {"notebooks", config.MANIFEST}:
            continue
        target = folder / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target)


def start(namespace: dict[str, Any]) -> RunContext:
    """Validate a notebook's parameters and open its run context.

    Parameters
    ----------
    namespace : dict
        The notebook's ``globals()``: the params keys and ``run_dir`` come from it.

    Returns
    -------
    RunContext
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    raw = {k: namespace[k] for k in Params.model_fields if k in namespace}
    params = parse_params(raw, source="notebook parameters", root=config.PROJECT_DIR)
    run_dir_value = namespace.get(RUNTIME_PARAMETERS[0])
    if run_dir_value:
        run_dir = Path(run_dir_value)
    else:
        run_dir = lab_dir(params.run_name)
        run_dir.mkdir(parents=True, exist_ok=True)
        _seed_lab(run_dir, params.run_name)
    run_dir.mkdir(parents=True, exist_ok=True)
    _figure_style()
    return RunContext(params=params, run_dir=run_dir)


def _figure_style() -> None:
    try:
        import seaborn as sns

        sns.set_theme(style="whitegrid", context="notebook")
    except ImportError:  # pragma: no cover - seaborn is a core dependency
        pass
