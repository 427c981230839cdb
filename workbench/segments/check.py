"""Check a segment against the data it will run on: columns, tables, names and targets exist.

A spec can be valid on its own and still ask for something a dataset lacks: a brand in a shop
without brands, an Interested-In target nobody bought, a ``subscribed`` flag where customers
carry no such column. :func:`check_segment` reports each such problem with the node's path and
the closest names the data does have.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from workbench.errors import SegmentSpecError
from workbench.segments import conditions as c
from workbench.segments.data import ATTR, SegmentData
from workbench.segments.spec import SegmentSpec, iter_paths

__all__ = ["DataVocabulary", "check_segment", "check_segments"]


def _hint(word: str, options: list[str], n: int = 5) -> str:
    close = difflib.get_close_matches(word, options, n=n, cutoff=0.6)
    if not close:
        low = word.lower()
        close = [o for o in options if low in o.lower()][:n]
    return f" (close matches: {', '.join(repr(x) for x in close)})" if close else ""


def _category_levels(paths: list[str]) -> set[str]:
    """Every contiguous part of every category path, lower case ("kitchen", "home > kitchen")."""
    out: set[str] = set()
    for path in paths:
        parts = [p.strip().lower() for p in str(path).split(">") if p.strip()]
        for i in range(len(parts)):
            for j in range(i + 1, len(parts) + 1):
                out.add(" > ".join(parts[i:j]))
    return out


@dataclass
class DataVocabulary:
    """Names the data has: columns, product ids, categories, brands, product attributes.

    Built once per :class:`SegmentData` (the products table is a small dimension table).
    """

    customer_columns: dict[str, Any]
    products: set[str] | None = None
    categories: list[str] = field(default_factory=list)
    brands: list[str] = field(default_factory=list)
    product_attributes: list[str] = field(default_factory=list)
    has_names: bool = False

    @classmethod
    def of(cls, data: SegmentData) -> DataVocabulary:
        """Collect the vocabulary of ``data`` (cached on it)."""
        if "vocabulary" in data._cache:
            return data._cache["vocabulary"]
        vocab = cls(customer_columns=dict(data.customers.schema().items()))
        if data.orders is not None:
            lines = data._with_products(data.orders)
            dims = lines.select(
                product_id=lines.product_id.cast("string"),
                category=lines[f"{ATTR}category"].cast("string"),
                brand=lines[f"{ATTR}brand"].cast("string"),
            ).distinct()
            frame = dims.to_pandas()
            vocab.products = set(frame["product_id"].dropna())
            vocab.categories = sorted(frame["category"].dropna().unique())
            vocab.brands = sorted(frame["brand"].dropna().unique())
            vocab.has_names = f"{ATTR}name" in lines.columns
            if data.products is not None:
                vocab.product_attributes = [
                    col for col in data.products.columns if col != "product_id"
                ]
        data._cache["vocabulary"] = vocab
        return vocab


def _product_problems(path: str, spec: c.ProductFilter, vocab: DataVocabulary) -> list[str]:
    out = []
    if spec.product and vocab.products is not None:
        for pid in spec.product:
            if pid not in vocab.products:
                hint = _hint(pid, sorted(vocab.products))
                out.append(f"{path}.product: no product {pid!r} in the data{hint}")
    if spec.category:
        if not vocab.categories:
            out.append(f"{path}.category: the data has no product categories")
        else:
            levels = _category_levels(vocab.categories)
            for cat in spec.category:
                norm = " > ".join(p.strip().lower() for p in cat.split(">") if p.strip())
                if norm not in levels:
                    options = sorted({p.strip() for x in vocab.categories for p in x.split(">")})
                    hint = _hint(cat, options + vocab.categories)
                    out.append(f"{path}.category: no category {cat!r} in the data{hint}")
    if spec.brand:
        if not vocab.brands:
            out.append(f"{path}.brand: the data has no product brands")
        else:
            lower = {b.lower() for b in vocab.brands}
            for brand in spec.brand:
                if brand.lower() not in lower:
                    hint = _hint(brand, vocab.brands)
                    out.append(f"{path}.brand: no brand {brand!r} in the data{hint}")
    if spec.keyword and not vocab.has_names:
        out.append(f"{path}.keyword: the data has no product names to match keywords in")
    for name in spec.attributes or {}:
        if name not in vocab.product_attributes:
            valid = ", ".join(vocab.product_attributes) or "none"
            out.append(
                f"{path}.attributes.{name}: no product column {name!r}"
                f"{_hint(name, vocab.product_attributes)}; product columns: {valid}"
            )
    return out


def _column_problem(
    path: str, column: str, vocab: DataVocabulary, what: str = "column"
) -> str | None:
    if column in vocab.customer_columns:
        return None
    options = list(vocab.customer_columns)
    return f"{path}: the customer table has no {what} {column!r}{_hint(column, options)}"


def _attribute_problem(path: str, cond: c.AttributeCondition, dtype: Any) -> str | None:
    values = cond.value if isinstance(cond.value, list) else [cond.value]
    if cond.op == "is_null":
        return None
    if dtype.is_numeric():
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int | float):
                try:
                    float(str(v))
                except ValueError:
                    return f"{path}.value: column {cond.column!r} holds numbers, got {v!r}"
    if dtype.is_temporal() and cond.op not in ("eq", "ne", "in", "not_in"):
        if not all(isinstance(v, date) for v in values):
            return f"{path}.value: column {cond.column!r} holds dates: write YYYY-MM-DD"
    if cond.op == "contains" and not dtype.is_string():
        return f"{path}.op: 'contains' needs a text column; {cond.column!r} is {dtype}"
    return None


def _problems(path: str, cond: c.Condition, data: SegmentData, vocab: DataVocabulary) -> list[str]:
    if isinstance(cond, c.LabelCondition | c.ValuesCondition | c.DateCondition):
        problem = _column_problem(path, cond.column, vocab)
        return [problem] if problem else []
    if isinstance(cond, c.SubscribedCondition):
        problem = _column_problem(path, "subscribed", vocab)
        return [problem] if problem else []
    if isinstance(cond, c.MetricCondition):
        problem = _column_problem(path, data.column(cond.column), vocab)
        return [problem] if problem else []
    if isinstance(cond, c.AttributeCondition):
        problem = _column_problem(f"{path}.column", cond.column, vocab)
        if problem:
            return [problem]
        problem = _attribute_problem(path, cond, vocab.customer_columns[cond.column])
        return [problem] if problem else []
    if isinstance(cond, c.PurchaseCondition):
        if data.orders is None:
            return [f"{path}: the run has no orders table"]
        return _product_problems(path, cond, vocab)
    if isinstance(cond, c.SiteActivityCondition | c.ViewCondition | c.SearchCondition):
        if data.events is None:
            return [f"{path}: this data has no web events (data.events is not configured)"]
        if isinstance(cond, c.ViewCondition):
            return _product_problems(path, cond, vocab)
        return []
    if isinstance(cond, c.InterestCondition):
        if data.interest is None:
            return [f"{path}: the run has no Interested-In scores (run the interest step)"]
        problem = data.interest.unknown_target(cond.level, cond.target)
        return [f"{path}.target: {problem}"] if problem else []
    return []


def check_segment(spec: SegmentSpec, data: SegmentData, source: str | None = None) -> None:
    """Raise :class:`SegmentSpecError` when ``spec`` asks for something ``data`` lacks.

    Parameters
    ----------
    spec : SegmentSpec
        The validated segment.
    data : SegmentData
        The tables it will run on.
    source : str, optional
        The segment file (shown in the message; default the segment name).
    """
    vocab = DataVocabulary.of(data)
    problems: list[str] = []
    for i, column in enumerate(spec.columns):
        problem = _column_problem(f"columns[{i}]", data.column(column), vocab)
        if problem:
            problems.append(problem)
    for path, cond in iter_paths(spec.where):
        problems += _problems(path, cond, data, vocab)
    if problems:
        raise SegmentSpecError(
            f"segment {spec.name!r} does not fit this data:\n  " + "\n  ".join(problems),
            where=source or f"segment {spec.name}",
            fix="use names from the data (the close matches above), or list this file only "
            "for datasets that have them (params 'segments:' takes a folder or a list of files)",
        )


def check_segments(specs: list[SegmentSpec], data: SegmentData) -> None:
    """Check every segment; one error listing all problems of all segments."""
    messages = []
    for spec in specs:
        try:
            check_segment(spec, data)
        except SegmentSpecError as exc:
            messages.append(exc.what)
    if messages:
        raise SegmentSpecError(
            "\n".join(messages),
            where="segments",
            fix="use names from the data (the close matches above), or list these files only "
            "for datasets that have them (params 'segments:' takes a folder or a list of files)",
        )
