"""Building blocks of segment conditions: the frozen spec base, dates, windows, product filters.

Time windows are relative to the run's ``as_of`` (the end of that UTC day): ``within_days: 7``
means the ``as_of`` day and the six days before it.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

__all__ = [
    "Bounds",
    "Condition",
    "IsoDate",
    "Operator",
    "ProductFilter",
    "Scalar",
    "Spec",
    "StrList",
    "Window",
]

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: Any) -> Any:
    """Accept a date or a ``YYYY-MM-DD`` string; anything else is a clear error."""
    if isinstance(value, datetime):
        raise ValueError(f"{value.isoformat()!r} is not a date in the format YYYY-MM-DD")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date in the format YYYY-MM-DD")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


def _as_list(value: Any) -> Any:
    """A scalar where a list is allowed becomes a one-item list."""
    if isinstance(value, str | int | float | bool):
        return [value]
    return value


StrList = Annotated[tuple[str, ...], BeforeValidator(_as_list)]


class Spec(BaseModel):
    """Base of every spec model: frozen, unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(Spec):
    """A leaf of the ``where`` tree.

    Class attributes
    ----------------
    key : str
        The YAML name (``life_cycle``, ``have_purchased``, ...).
    shorthand : str or None
        Field a non-mapping body fills (``life_cycle: [lost]`` -> ``values``).
    help : str
        One line for the builder and the docs.
    """

    key: ClassVar[str] = ""
    shorthand: ClassVar[str | None] = None
    help: ClassVar[str] = ""

    def body(self) -> Any:
        """The YAML body: the shorthand value when the condition has one, else its fields."""
        data = _plain(self.model_dump(exclude_defaults=True, exclude_none=True))
        if self.shorthand is not None and set(data) <= {self.shorthand}:
            return data.get(self.shorthand)
        return data


def _plain(value: Any) -> Any:
    """Tuples to lists (YAML-safe), recursively."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


Operator = Literal["eq", "ne", "in", "not_in", "gt", "ge", "lt", "le", "contains", "is_null"]
Scalar = str | int | float | bool | IsoDate


class Window(Spec):
    """When something happened, relative to ``as_of`` or between dates (all optional, ANDed).

    ``within_days`` N: in the N days ending on the ``as_of`` day; ``older_than_days`` N: N or
    more days before ``as_of``; ``since`` / ``until``: on or after / on or before a date;
    ``before``: strictly before a date.
    """

    within_days: int | None = Field(None, ge=1)
    older_than_days: int | None = Field(None, ge=0)
    since: IsoDate | None = None
    until: IsoDate | None = None
    before: IsoDate | None = None

    @model_validator(mode="after")
    def _window(self) -> Window:
        if self.until is not None and self.before is not None:
            raise ValueError("give 'until' (inclusive) or 'before' (exclusive), not both")
        end = self.until or self.before
        if self.since is not None and end is not None and self.since > end:
            raise ValueError(f"impossible window: since {self.since} is after {end}")
        if self.since is not None and self.before is not None and self.since == self.before:
            raise ValueError(f"impossible window: since {self.since} and before the same day")
        if (
            self.within_days is not None
            and self.older_than_days is not None
            and self.older_than_days >= self.within_days
        ):
            raise ValueError("impossible window: older_than_days >= within_days")
        return self

    def has_window(self) -> bool:
        """Whether any time bound is set."""
        return any(getattr(self, f) is not None for f in Window.model_fields)


class ProductFilter(Spec):
    """Which products count (all given filters must hold; none = any product).

    ``category`` matches any level of the category path, case-insensitively: ``Kitchen``
    matches ``Home > Kitchen > Mugs``, and so does ``Home > Kitchen``. ``keyword`` matches a
    word in the product name. ``attributes`` maps product columns to a value or a list.
    """

    product: StrList | None = None
    category: StrList | None = None
    brand: StrList | None = None
    keyword: StrList | None = None
    attributes: dict[str, Scalar | list[Scalar]] | None = None

    def has_product_filter(self) -> bool:
        """Whether any product filter is set."""
        return any(getattr(self, f) is not None for f in ProductFilter.model_fields)


class Bounds(Spec):
    """Numeric bounds with comparison operators (e.g. ``{lt: 30}`` = under 30)."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Bounds:
        lows = [v for v in (self.gt, self.ge) if v is not None]
        highs = [v for v in (self.lt, self.le) if v is not None]
        if not lows and not highs:
            raise ValueError("give at least one of gt, ge, lt, le")
        if lows and highs and max(lows) > min(highs):
            raise ValueError("impossible bounds: the lower bound is above the upper bound")
        return self
