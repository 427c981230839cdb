"""Segment files: the ``where`` tree (``all`` / ``any`` / ``not`` over conditions) and its YAML.

A segment file (``params/segments/*.yaml``, format in docs/design.md section 5 and
docs/segments.md)::

    name: vip_slipping
    description: VIPs who are slipping away
    where:
      all:
        - importance: [vip]
        - life_cycle: [slipping_away, lost]
    columns: [customer_id, email, predicted_clv]

is parsed by :func:`parse_segment` into a frozen :class:`SegmentSpec`. Every problem is
reported at once, each with the dotted path of the bad node and what was expected, e.g.
``where.all[1].life_cycle: 'slipping' is not one of just_ordered, active, slipping_away, lost``.
:func:`workbench.segments.files.to_yaml` writes a spec back; parsing its output gives an equal
spec.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from workbench.errors import SegmentSpecError
from workbench.segments.conditions import CONDITIONS, Condition, Spec

__all__ = [
    "All",
    "AnyOf",
    "Node",
    "Not",
    "SegmentSpec",
    "iter_conditions",
    "iter_paths",
    "parse_segment",
    "to_dict",
]

NAME = re.compile(r"^[A-Za-z0-9_-]+$")
TOP_LEVEL = ("name", "description", "where", "columns")
GROUPS = ("all", "any", "not")
DEFAULT_COLUMNS = ("customer_id",)


class All(Spec):
    """Every child holds."""

    items: tuple[Node, ...]


class AnyOf(Spec):
    """At least one child holds."""

    items: tuple[Node, ...]


class Not(Spec):
    """The child does not hold."""

    item: Node


Node = All | AnyOf | Not | Condition


class SegmentSpec(Spec):
    """One validated segment.

    Attributes
    ----------
    name : str
        File-name safe name (letters, digits, ``_``, ``-``): the CSV and sync key.
    description : str
    where : Node
        The condition tree.
    columns : tuple of str
        Columns of ``segments/<name>.csv`` (customer table columns; ``predicted_clv`` and
        ``expected_orders`` mean the run's horizon columns).
    """

    name: str
    description: str = ""
    where: Node
    columns: tuple[str, ...] = DEFAULT_COLUMNS


All.model_rebuild()
AnyOf.model_rebuild()
Not.model_rebuild()
SegmentSpec.model_rebuild()


# --- parsing -----------------------------------------------------------------------------------

_EXPECTED = {
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a text",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
}


def _close(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def _loc_text(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _literal_message(err: dict[str, Any]) -> str:
    expected = str(err.get("ctx", {}).get("expected", ""))
    options = ", ".join(o.strip().strip("'") for o in re.split(r",| or ", expected) if o.strip())
    return f"{err.get('input')!r} is not one of {options}"


def _message(err: dict[str, Any], model: type[Spec], loc: tuple[Any, ...]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        valid = _fields_at(model, loc)
        return f"unknown field; {_close(str(loc[-1]), valid)}valid fields: {', '.join(valid)}"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        return _literal_message(err)
    if kind in _EXPECTED:
        return f"{_EXPECTED[kind]}, got {err.get('input')!r}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if kind in {"too_short"} and not err.get("input"):
        return "empty; give at least one value"
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        return f"{msg[0].lower()}{msg[1:]} (got {err.get('input')!r})"
    return msg


def _fields_at(model: type[Spec], loc: tuple[Any, ...]) -> list[str]:
    """Field names valid where ``loc`` points (its parent), for "did you mean" hints."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = current.model_fields.get(part)
        current = _model_in(field.annotation) if field is not None else None
    return list(getattr(current, "model_fields", {}))


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, Spec):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _parse_condition(key: str, body: Any, path: str, errors: list[str]) -> Condition | None:
    cls = CONDITIONS[key]
    here = f"{path}.{key}"
    shorthand = False
    if isinstance(body, dict):
        data = body
    elif body is None and cls.shorthand is None:
        data = {}
    elif body is None:
        errors.append(f"{here}: no value given; {cls.help.lower()}")
        return None
    elif cls.shorthand is not None:
        data, shorthand = {cls.shorthand: body}, True
    else:
        fields = ", ".join(cls.model_fields)
        errors.append(f"{here}: expected a mapping of fields ({fields}), got {body!r}")
        return None
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        seen: set[str] = set()
        for err in exc.errors():
            loc = tuple(err["loc"])
            if shorthand and loc and loc[0] == cls.shorthand:
                loc = tuple(p for p in loc[1:] if not isinstance(p, int))
            elif loc and loc[0] == cls.shorthand and len(loc) == 2 and isinstance(loc[1], int):
                loc = loc[:1]
            where = f"{here}{_loc_text(loc)}"
            if where not in seen:  # the first problem per node is the informative one
                seen.add(where)
                errors.append(f"{where}: {_message(err, cls, tuple(err['loc']))}")
        return None


def _parse_node(raw: Any, path: str, errors: list[str]) -> Node | None:
    options = [*GROUPS, *CONDITIONS]
    if not isinstance(raw, dict) or not raw:
        errors.append(
            f"{path}: expected a mapping with one condition (e.g. life_cycle: [lost]) or "
            f"all / any / not, got {raw!r}"
        )
        return None
    if len(raw) > 1:
        errors.append(
            f"{path}: one condition per node, got {len(raw)} ({', '.join(map(str, raw))}); "
            "list them under 'all:' (every one must hold) or 'any:'"
        )
        return None
    key, body = next(iter(raw.items()))
    if key in ("all", "any"):
        here = f"{path}.{key}"
        if not isinstance(body, list):
            errors.append(f"{here}: expected a list of conditions, got {body!r}")
            return None
        if not body:
            errors.append(f"{here}: empty list; '{key}' needs at least one condition")
            return None
        children = [_parse_node(item, f"{here}[{i}]", errors) for i, item in enumerate(body)]
        if any(c is None for c in children):
            return None
        return All(items=tuple(children)) if key == "all" else AnyOf(items=tuple(children))
    if key == "not":
        child = _parse_node(body, f"{path}.not", errors)
        return Not(item=child) if child is not None else None
    if key in CONDITIONS:
        return _parse_condition(key, body, path, errors)
    errors.append(
        f"{path}: unknown condition {key!r}; {_close(str(key), options)}valid: {', '.join(options)}"
    )
    return None


def parse_segment(raw: Any, *, source: str = "segment") -> SegmentSpec:
    """Validate a segment mapping (as read from YAML).

    Parameters
    ----------
    raw : Any
        The mapping.
    source : str
        Shown in error messages (usually the file path).

    Raises
    ------
    SegmentSpecError
        Listing every problem with its path and what was expected.
    """
    if not isinstance(raw, dict):
        raise SegmentSpecError(
            "a segment file must be a mapping with name, where and columns",
            where=source,
            fix="see docs/segments.md for the format",
        )
    errors: list[str] = []
    for key in raw:
        if key not in TOP_LEVEL:
            errors.append(
                f"{key}: unknown field; {_close(str(key), list(TOP_LEVEL))}"
                f"valid fields: {', '.join(TOP_LEVEL)}"
            )
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        errors.append(
            f"name: expected letters, digits, '_' or '-' (it names the CSV), got {name!r}"
        )
    description = raw.get("description") or ""
    if not isinstance(description, str):
        errors.append(f"description: expected a text, got {description!r}")
    columns = raw.get("columns", list(DEFAULT_COLUMNS))
    if isinstance(columns, str):
        columns = [columns]
    if not isinstance(columns, list) or not columns:
        errors.append(f"columns: expected a non-empty list of column names, got {columns!r}")
        columns = list(DEFAULT_COLUMNS)
    for i, col in enumerate(columns):
        if not isinstance(col, str) or not col:
            errors.append(f"columns[{i}]: expected a column name, got {col!r}")
    dupes = sorted({c for c in columns if isinstance(c, str) and columns.count(c) > 1})
    if dupes:
        errors.append(f"columns: repeated {', '.join(dupes)}")
    where = None
    if "where" not in raw:
        errors.append("where: required field is missing")
    else:
        where = _parse_node(raw["where"], "where", errors)
    if errors:
        raise SegmentSpecError(
            "invalid segment:\n  " + "\n  ".join(errors),
            where=source,
            fix="correct the fields above (docs/segments.md lists every condition)",
        )
    return SegmentSpec(
        name=name, description=description.strip(), where=where, columns=tuple(columns)
    )


# --- writing and walking -----------------------------------------------------------------------


def node_to_raw(node: Node) -> dict[str, Any]:
    """A node as the YAML mapping it is written as."""
    if isinstance(node, All):
        return {"all": [node_to_raw(c) for c in node.items]}
    if isinstance(node, AnyOf):
        return {"any": [node_to_raw(c) for c in node.items]}
    if isinstance(node, Not):
        return {"not": node_to_raw(node.item)}
    return {node.key: node.body()}


def to_dict(spec: SegmentSpec) -> dict[str, Any]:
    """The spec as a plain mapping (YAML-safe values)."""
    out: dict[str, Any] = {"name": spec.name}
    if spec.description:
        out["description"] = spec.description
    out["where"] = node_to_raw(spec.where)
    out["columns"] = list(spec.columns)
    return out


def iter_conditions(node: Node) -> Iterator[Condition]:
    """Every condition in a tree, depth first."""
    if isinstance(node, All | AnyOf):
        for child in node.items:
            yield from iter_conditions(child)
    elif isinstance(node, Not):
        yield from iter_conditions(node.item)
    else:
        yield node


def iter_paths(node: Node, path: str = "where") -> Iterator[tuple[str, Condition]]:
    """Every condition with its dotted path (``where.all[2].life_cycle``), depth first."""
    if isinstance(node, All | AnyOf):
        key = "all" if isinstance(node, All) else "any"
        for i, child in enumerate(node.items):
            yield from iter_paths(child, f"{path}.{key}[{i}]")
    elif isinstance(node, Not):
        yield from iter_paths(node.item, f"{path}.not")
    else:
        yield f"{path}.{node.key}", node
