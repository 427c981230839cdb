"""Widgets for the fields of one condition, and the choices the data offers for them.

Each field of a condition model gets a :class:`FieldInput`: an ipywidget plus the conversion
between the widget's value and the field's YAML value (``None`` = not set, the default
applies). :class:`BuilderOptions` holds what dropdowns offer (label values, customer columns,
languages, countries, categories, brands, interest levels and targets), read from the data.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import ipywidgets as widgets
import yaml

from workbench.segments import conditions as c
from workbench.segments.check import DataVocabulary
from workbench.segments.data import ModelInterest, SegmentData, TableInterest

__all__ = ["BuilderOptions", "FieldInput", "field_inputs"]

MAX_OPTIONS = 2000
EVENT_TYPES = ("view", "click", "search", "cart")
OPERATORS = typing.get_args(c.Operator)


@dataclass
class BuilderOptions:
    """What the builder's dropdowns and tag inputs offer (all optional)."""

    columns: list[str] = field(default_factory=list)
    values: dict[str, list[str]] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)
    brands: list[str] = field(default_factory=list)
    product_attributes: list[str] = field(default_factory=list)
    levels: list[str] = field(default_factory=list)
    targets: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, data: SegmentData | None) -> BuilderOptions:
        """Collect the options from the data (empty options without data)."""
        if data is None:
            return cls()
        vocab = DataVocabulary.of(data)
        out = cls(
            columns=list(vocab.customer_columns),
            brands=list(vocab.brands),
            product_attributes=list(vocab.product_attributes),
        )
        levels: set[str] = set()
        for path in vocab.categories:
            parts = [p.strip() for p in str(path).split(">") if p.strip()]
            levels.update(parts)
            levels.update(" > ".join(parts[: i + 1]) for i in range(len(parts)))
        out.categories = sorted(levels)
        for column in ("language", "country"):
            if column in vocab.customer_columns:
                col = data.customers[column]
                frame = data.customers.select(v=col.cast("string")).distinct().limit(MAX_OPTIONS)
                out.values[column] = sorted(frame.to_pandas()["v"].dropna())
        if data.interest is not None:
            out.levels = data.interest.levels()
            out.targets = {lvl: _targets(data, lvl) for lvl in out.levels}
        return out


def _targets(data: SegmentData, level: str) -> list[str]:
    source = data.interest
    if isinstance(source, TableInterest):
        return source._targets(level)[:MAX_OPTIONS]
    if isinstance(source, ModelInterest):
        import pandas as pd

        from workbench.models import interest_store as store

        path = source.run_dir / store.MODEL_DIR / level / "targets.parquet"
        frame = pd.read_parquet(path, columns=["target", "buyers"])
        frame = frame.sort_values("buyers", ascending=False).head(MAX_OPTIONS)
        return sorted(frame["target"].astype(str))
    return []


class FieldInput:
    """One condition field as a widget.

    Parameters
    ----------
    name : str
        Field name.
    kind : str
        ``choices`` (several of fixed options), ``tags`` (list of texts), ``choice`` (one of
        fixed options), ``combo`` (a text with suggestions), ``bool``, ``date`` or ``yaml`` (a
        number, mapping or list written as YAML).
    options : list, optional
        Options or suggestions.
    default : Any
        The field's default: shown as unset.
    """

    def __init__(self, name: str, kind: str, options: list | None = None, default: Any = None):
        self.name, self.kind, self.default = name, kind, default
        options = list(options or [])
        layout = widgets.Layout(width="auto")
        style = {"description_width": "initial"}
        args: dict[str, Any] = {"description": name, "layout": layout, "style": style}
        if kind == "choices":
            self.widget = widgets.SelectMultiple(options=options, rows=min(6, len(options)), **args)
        elif kind == "tags":
            self.widget = widgets.TagsInput(allowed_tags=options, allow_duplicates=False)
        elif kind == "choice":
            self.widget = widgets.Dropdown(options=[None, *options], **args)
        elif kind == "combo":
            self.widget = widgets.Combobox(options=options, ensure_option=False, **args)
        elif kind == "bool":
            self.widget = widgets.Dropdown(options=[("true", True), ("false", False)], **args)
        elif kind == "date":
            self.widget = widgets.DatePicker(**args)
        else:
            self.widget = widgets.Text(placeholder="unset", **args)
        self.box = (
            widgets.HBox([widgets.Label(name), self.widget]) if kind == "tags" else self.widget
        )

    def get(self) -> Any:
        """The field's YAML value, or None when unset."""
        value = self.widget.value
        if self.kind in ("choices", "tags"):
            return list(value) or None
        if self.kind in ("combo", "yaml"):
            text = (value or "").strip()
            if not text:
                return None
            return yaml.safe_load(text) if self.kind == "yaml" else text
        return value

    def set(self, value: Any) -> None:
        """Show a field value (None or the default clears it)."""
        if value is not None and self.default is not None and value == self.default:
            value = None
        if self.kind in ("choices", "tags"):
            items = list(value or [])
            if self.kind == "tags" and self.widget.allowed_tags:
                extra = [v for v in items if v not in self.widget.allowed_tags]
                self.widget.allowed_tags = [*self.widget.allowed_tags, *extra]
            self.widget.value = tuple(items) if self.kind == "choices" else items
        elif self.kind == "choice":
            if value is not None and value not in self.widget.options:
                self.widget.options = [*self.widget.options, value]
            self.widget.value = value
        elif self.kind == "combo":
            self.widget.value = "" if value is None else str(value)
        elif self.kind == "yaml":
            self.widget.value = "" if value is None else _yaml_text(value)
        elif self.kind == "date":
            self.widget.value = value if isinstance(value, date) else None
        else:
            self.widget.value = True if value is None else bool(value)

    def observe(self, callback: typing.Callable[[Any], None]) -> None:
        """Call ``callback`` when the value changes."""
        self.widget.observe(callback, names="value")


def _yaml_text(value: Any) -> str:
    plain = c._plain(value)
    if isinstance(plain, dict | list):
        return yaml.safe_dump(plain, default_flow_style=True, width=1000).strip()
    return str(plain)


def _kind(cls: type[c.Condition], name: str, opts: BuilderOptions) -> tuple[str, list]:
    """Widget kind and options of a field."""
    if name == "values" and issubclass(cls, c.LabelCondition):
        annotation = cls.model_fields["values"].annotation
        inner = typing.get_args(annotation)[0]
        return "choices", list(typing.get_args(inner))
    if name == "values" and issubclass(cls, c.ValuesCondition):
        return "tags", opts.values.get(cls.column, [])
    simple = {
        "since": ("date", []),
        "until": ("date", []),
        "before": ("date", []),
        "event_types": ("choices", list(EVENT_TYPES)),
        "op": ("choice", list(OPERATORS)),
        "level": ("choice", opts.levels or ["product", "category", "brand", "keyword"]),
        "target": ("combo", sorted({t for ts in opts.targets.values() for t in ts})),
        "column": ("choice", opts.columns),
        "category": ("tags", opts.categories),
        "brand": ("tags", opts.brands),
        "product": ("tags", []),
        "keyword": ("tags", []),
        "query": ("tags", []),
    }
    if cls is c.SubscribedCondition:
        return "bool", []
    return simple.get(name, ("yaml", []))


def field_inputs(cls: type[c.Condition], opts: BuilderOptions) -> dict[str, FieldInput]:
    """One :class:`FieldInput` per field of a condition class."""
    out = {}
    for name, info in cls.model_fields.items():
        kind, options = _kind(cls, name, opts)
        default = None if info.is_required() else info.default
        out[name] = FieldInput(name, kind, options, default)
    return out
