"""Every condition type, and AND / OR / NOT, on the tiny hand-made shop (members known by hand).

``workbench.segments.testing.tiny_frames`` documents who did what; each case below reads it.
The same cases run on PySpark and must give the same members.
"""

from __future__ import annotations

import ibis
import pytest
import yaml

from workbench.segments.evaluate import evaluate_segments, segment_members
from workbench.segments.spec import parse_segment
from workbench.segments.testing import tiny_data

CASES: list[tuple[str, set[str]]] = [
    # labels
    ("importance: [vip]", {"A", "F"}),
    ("life_cycle: [slipping_away, lost]", {"A", "C", "E"}),
    ("price_sensitivity: cheap", {"D", "E"}),
    ("behaviour_trend: [falling]", {"A"}),
    # order details and model scores
    ("orders: {min: 3}", {"A", "D", "F"}),
    ("revenue: {min: 50, max: 300}", {"B", "C", "F"}),
    ("aov: {max: 30}", {"B", "D", "E"}),
    ("p_alive: {max: 0.6}", {"A"}),
    ("churn_risk: {min: 0.9}", {"C", "E"}),
    ("predicted_clv: {min: 90}", {"A", "F"}),
    ("expected_orders: {min: 1}", {"D", "F"}),
    ("first_order: {since: 2023-01-01, until: 2023-12-31}", {"B", "C", "F"}),
    ("first_order: {before: 2023-01-01}", {"A", "E"}),
    ("last_order: {within_days: 30}", {"A", "D"}),
    ("last_order: {older_than_days: 365}", {"C", "E"}),
    ("last_active: {within_days: 7}", {"A", "B", "D", "E"}),
    # customer attributes
    ("subscribed: true", {"A", "C", "D", "E", "F"}),
    ("subscribed: false", {"B"}),
    ("language: [EN]", {"A", "C", "F"}),
    ("country: GB", {"A", "E"}),
    ("attribute: {column: email, op: contains, value: gmail}", {"C"}),
    ("attribute: {column: language, op: is_null}", {"E"}),
    ("attribute: {column: language, op: is_null, value: false}", {"A", "B", "C", "D", "F"}),
    ("attribute: {column: revenue, op: gt, value: 100}", {"A", "F"}),
    ("attribute: {column: revenue, op: le, value: 50}", {"C", "D", "E"}),
    ("attribute: {column: created_at, op: lt, value: 2023-01-01}", {"A", "E"}),
    ("attribute: {column: created_at, op: eq, value: 2024-01-01}", {"D"}),
    ("attribute: {column: country, op: not_in, value: [GB, DE]}", {"C", "D", "F"}),
    ("attribute: {column: country, op: ne, value: gb}", {"B", "C", "D", "F"}),
    ("attribute: {column: phone, op: is_null}", {"B", "E"}),
    ("attribute: {column: orders, op: in, value: [1, 2]}", {"B", "C", "E"}),
    ("attribute: {column: life_cycle, op: eq, value: lost}", {"C", "E"}),
    # purchases (returns and lines after as_of never count)
    ("have_purchased: {}", {"A", "B", "C", "D", "E", "F"}),
    ("have_purchased: {product: P1}", {"A", "D", "E"}),
    ("have_purchased: {category: Kitchen}", {"A", "D", "E"}),
    ("have_purchased: {category: home}", {"A", "C", "D", "E", "F"}),
    ("have_purchased: {category: Toys > Puzzles}", {"B"}),
    ("have_purchased: {brand: acme}", {"A", "B", "D", "E"}),
    ("have_purchased: {keyword: mug}", {"A", "D", "E"}),
    ("have_purchased: {attributes: {colour: red}}", {"A", "B", "D", "E"}),
    ("have_purchased: {within_days: 7}", {"A", "D"}),
    ("have_purchased: {price: {lt: 30}}", {"A", "B", "D", "E"}),
    ("have_purchased: {product: P2, price: {lt: 50}}", {"F"}),
    ("have_purchased: {product: P1, min_quantity: 3}", {"A"}),
    ("have_purchased: {brand: Acme, since: 2024-01-01}", {"A", "B", "D"}),
    ("have_purchased: {category: Garden, before: 2023-06-01}", {"A", "C"}),
    ("have_not_purchased: {within_days: 7}", {"B", "C", "E", "F"}),
    ("have_not_purchased: {category: Garden}", {"B", "D", "E"}),
    # website activity
    ("active_on_site: {within_days: 7}", {"A", "B", "D", "E"}),
    ("active_on_site: {within_days: 3}", {"A"}),
    ("active_on_site: {event_types: [cart]}", {"D"}),
    ("active_on_site: {min_count: 2}", {"E"}),
    ("viewed: {product: P1}", {"E"}),
    ("viewed: {category: Puzzles}", {"A"}),
    ("viewed: {brand: Zen Nest, event_types: [cart]}", {"D"}),
    ("viewed: {keyword: mug, min_count: 2}", {"E"}),
    ("searched: jigsaw", {"B"}),
    ("searched: {query: [hose, PUZZLE], within_days: 10}", {"B"}),
    ("searched: {query: puzzle, within_days: 3}", set()),
    # interest
    ("interested_in: {level: brand, target: Acme, min_score: 0.3}", {"A", "B"}),
    ("interested_in: {level: brand, target: acme, top_share: 0.34}", {"A", "B", "F"}),
    ("interested_in: {level: category, target: Toys, min_score: 0.5}", {"B"}),
    # nesting
    ("all: [{importance: vip}, {life_cycle: slipping_away}]", {"A"}),
    ("any: [{country: GB}, {language: de}]", {"A", "B", "E"}),
    ("not: {subscribed: true}", {"B"}),
    ("not: {not: {importance: vip}}", {"A", "F"}),
    ("not: {language: [en]}", {"B", "D", "E"}),  # a missing language is "not en"
    ("not: {any: [{importance: vip}, {country: GB}]}", {"B", "C", "D"}),
    (
        "all: [{not: {have_purchased: {category: Kitchen}}}, "
        "{any: [{interested_in: {level: brand, target: Acme, min_score: 0.3}}, "
        "{orders: {min: 4}}]}]",
        {"B", "F"},
    ),
    (
        "all: [{subscribed: true}, {active_on_site: {within_days: 7}}, "
        "{have_not_purchased: {within_days: 7}}]",
        {"E"},
    ),
    (
        "any: [{all: [{importance: one_time}, {have_purchased: {price: {lt: 30}}}]}, "
        "{not: {any: [{life_cycle: [lost, active]}, {country: FR}]}}]",
        {"A", "E"},
    ),
]


def _spec(where: str, name: str = "t"):
    return parse_segment({"name": name, "where": yaml.safe_load(where)})


def _members(spec, data) -> set[str]:
    table = segment_members(spec, data).select("customer_id").to_pyarrow()
    return set(table.column("customer_id").to_pylist())


@pytest.fixture(scope="module")
def duck():
    return tiny_data(ibis.duckdb.connect())


@pytest.mark.parametrize(("where", "expected"), CASES, ids=[c[0][:60] for c in CASES])
def test_condition_members(duck, where, expected):
    assert _members(_spec(where), duck) == expected


def test_membership_table_of_many_segments(duck):
    specs = [_spec(w, f"s{i}") for i, (w, _) in enumerate(CASES[:5])]
    table = evaluate_segments(specs, duck).to_pandas()
    assert list(table.columns) == ["segment", "customer_id"]
    for i, (_, expected) in enumerate(CASES[:5]):
        assert set(table.loc[table.segment == f"s{i}", "customer_id"]) == expected


def _one_per_kind() -> list[tuple[str, set[str]]]:
    """The first case of each condition kind, and every nested case (keeps Spark fast)."""
    seen, out = set(), []
    for where, expected in CASES:
        kind = where.split(":", 1)[0]
        if kind not in seen or kind in ("all", "any", "not"):
            seen.add(kind)
            out.append((where, expected))
    return out


@pytest.mark.spark
def test_spark_gives_the_same_members(spark, duck):
    data = tiny_data(ibis.pyspark.connect(spark))
    cases = _one_per_kind()
    specs = [_spec(w, f"s{i}") for i, (w, _) in enumerate(cases)]
    on_spark = evaluate_segments(specs, data, batch=40).to_pandas()
    on_duck = evaluate_segments(specs, duck).to_pandas()
    for i, (where, expected) in enumerate(cases):
        got = set(on_spark.loc[on_spark.segment == f"s{i}", "customer_id"])
        assert got == expected, where
    assert (
        on_spark.sort_values(["segment", "customer_id"])
        .reset_index(drop=True)
        .equals(on_duck.sort_values(["segment", "customer_id"]).reset_index(drop=True))
    )
