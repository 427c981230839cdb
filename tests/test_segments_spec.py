"""Segment files: parsing, the YAML round trip, and every kind of bad spec with its message."""

from __future__ import annotations

from pathlib import Path

import ibis
import pytest
import yaml

from workbench import config
from workbench.errors import SegmentSpecError, WorkbenchError
from workbench.segments.check import check_segment
from workbench.segments.files import load_segment, load_segments, segment_files, to_yaml
from workbench.segments.spec import parse_segment
from workbench.segments.testing import tiny_data

DESIGN_EXAMPLE = """
name: vip_slipping
description: VIPs who are slipping away
where:
  all:
    - importance: [vip]
    - life_cycle: [slipping_away, lost]
    - not: {have_purchased: {category: "Kitchen", within_days: 90}}
    - any:
        - interested_in: {level: brand, target: "Acme", min_score: 0.2}
        - orders: {min: 3}
columns: [customer_id, email, predicted_clv_90d]
"""


def _error(text: str) -> str:
    with pytest.raises(SegmentSpecError) as err:
        parse_segment(yaml.safe_load(text), source="seg.yaml")
    assert err.value.exit_code == 2 and isinstance(err.value, WorkbenchError)
    return err.value.message


def test_design_example_parses_and_round_trips():
    spec = parse_segment(yaml.safe_load(DESIGN_EXAMPLE))
    assert spec.name == "vip_slipping" and spec.columns[-1] == "predicted_clv_90d"
    again = parse_segment(yaml.safe_load(to_yaml(spec)))
    assert again == spec


def test_shorthands_mean_the_same_as_lists():
    one = parse_segment({"name": "a", "where": {"importance": "vip"}})
    two = parse_segment({"name": "a", "where": {"importance": ["vip"]}})
    assert one == two
    assert "importance: [vip]" in to_yaml(one)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: s\nwhere: {all: [{importance: vip}, {orders: {min: 1}}, "
            "{life_cycle: slipping}]}",
            "where.all[2].life_cycle: 'slipping' is not one of just_ordered, active, "
            "slipping_away, lost",
        ),
        (  # unknown field, with the closest valid one
            "name: s\nwhere: {have_purchased: {categroy: Kitchen}}",
            "where.have_purchased.categroy: unknown field; did you mean 'category'?",
        ),
        (  # unknown condition
            "name: s\nwhere: {any: [{lifecycle: [lost]}]}",
            "where.any[0]: unknown condition 'lifecycle'; did you mean 'life_cycle'?",
        ),
        (  # unknown top-level key
            "name: s\nwere: {importance: vip}",
            "were: unknown field; did you mean 'where'?",
        ),
        (  # wrong type
            "name: s\nwhere: {orders: {min: three}}",
            "where.orders.min: expected a number, got 'three'",
        ),
        (
            "name: s\nwhere: {subscribed: maybe}",
            "where.subscribed: expected true or false, got 'maybe'",
        ),
        (
            "name: s\nwhere: {orders: 3}",
            "where.orders: expected a mapping of fields (min, max), got 3",
        ),
        (  # empty all
            "name: s\nwhere: {all: []}",
            "where.all: empty list; 'all' needs at least one condition",
        ),
        (  # date in the wrong format
            "name: s\nwhere: {last_order: {since: 01/02/2024}}",
            "where.last_order.since: '01/02/2024' is not a date in the format YYYY-MM-DD",
        ),
        (
            "name: s\nwhere: {have_purchased: {until: '2024-1-5'}}",
            "where.have_purchased.until: '2024-1-5' is not a date in the format YYYY-MM-DD",
        ),
        (  # impossible values
            "name: s\nwhere: {orders: {min: 5, max: 2}}",
            "where.orders: impossible bounds: min 5 > max 2",
        ),
        (
            "name: s\nwhere: {have_purchased: {since: 2024-05-01, until: 2024-04-01}}",
            "where.have_purchased: impossible window: since 2024-05-01 is after 2024-04-01",
        ),
        (
            "name: s\nwhere: {churn_risk: {max: 1.5}}",
            "where.churn_risk: max must be between 0 and 1",
        ),
        (
            "name: s\nwhere: {interested_in: {level: brand, target: Acme}}",
            "where.interested_in: give exactly one of min_score (0..1) or top_share (0..1]",
        ),
        (
            "name: s\nwhere: {interested_in: {level: colour, target: red, min_score: 0.1}}",
            "where.interested_in.level: 'colour' is not one of product, category, brand, keyword",
        ),
        (
            "name: s\nwhere: {attribute: {column: country, op: in, value: GB}}",
            "where.attribute: op 'in' needs a non-empty list as value",
        ),
        (
            "name: s\nwhere: {importance: vip, orders: {min: 2}}",
            "where: one condition per node, got 2 (importance, orders)",
        ),
        ("name: my segment\nwhere: {importance: vip}", "name: expected letters, digits"),
        ("name: s", "where: required field is missing"),
    ],
)
def test_bad_spec_messages(text, message):
    assert message in _error(text)


def test_every_problem_is_reported_at_once():
    message = _error(
        "name: s\nwhere: {all: [{life_cycle: [lost, slipping]}, {orders: {min: x}}, {any: []}]}"
    )
    assert "where.all[0].life_cycle" in message
    assert "where.all[1].orders.min" in message
    assert "where.all[2].any: empty list" in message
    assert message.startswith("seg.yaml: invalid segment")


def test_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: s\nwhere: {last_order: {since: 2024-13-01}}\n")
    with pytest.raises(SegmentSpecError, match="valid month"):
        load_segment(bad)
    bad.write_text("name: s\nwhere: [unclosed\n")
    with pytest.raises(SegmentSpecError, match="not valid YAML"):
        load_segment(bad)
    with pytest.raises(SegmentSpecError, match="not found"):
        segment_files(tmp_path / "missing")


def test_duplicate_names_across_files(tmp_path):
    for stem in ("a", "b"):
        (tmp_path / f"{stem}.yaml").write_text("name: same\nwhere: {importance: vip}\n")
    with pytest.raises(SegmentSpecError, match="'same' is also used by"):
        load_segments(tmp_path)


@pytest.fixture(scope="module")
def duck():
    return tiny_data(ibis.duckdb.connect())


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (  # unknown interest target, with close matches from the data
            {"interested_in": {"level": "brand", "target": "Acmee", "min_score": 0.1}},
            "where.interested_in.target: unknown brand target 'Acmee' (close matches: 'Acme')",
        ),
        (
            {"interested_in": {"level": "product", "target": "P1", "min_score": 0.1}},
            "where.interested_in.target: level 'product' is not in the interest table",
        ),
        (
            {"all": [{"importance": "vip"}, {"have_purchased": {"category": "Kitchn"}}]},
            "where.all[1].have_purchased.category: no category 'Kitchn' in the data "
            "(close matches: 'Kitchen'",
        ),
        (
            {"have_purchased": {"brand": "Acne"}},
            "where.have_purchased.brand: no brand 'Acne' in the data (close matches: 'Acme')",
        ),
        (
            {"viewed": {"attributes": {"color": "red"}}},
            "where.viewed.attributes.color: no product column 'color' (close matches: 'colour')",
        ),
        (
            {"attribute": {"column": "emial", "op": "is_null"}},
            "where.attribute.column: the customer table has no column 'emial' (close matches: "
            "'email'",
        ),
        (
            {"attribute": {"column": "revenue", "op": "gt", "value": "lots"}},
            "where.attribute.value: column 'revenue' holds numbers, got 'lots'",
        ),
    ],
)
def test_names_are_checked_against_the_data(duck, where, message):
    spec = parse_segment({"name": "s", "where": where})
    with pytest.raises(SegmentSpecError) as err:
        check_segment(spec, duck)
    assert message in err.value.message


def test_unknown_columns_and_missing_tables(duck):
    spec = parse_segment(
        {"name": "s", "where": {"importance": "vip"}, "columns": ["customer_id", "emails"]}
    )
    with pytest.raises(SegmentSpecError, match=r"columns\[1\]: the customer table has no"):
        check_segment(spec, duck)
    no_events = tiny_data(ibis.duckdb.connect())
    no_events.events = None
    spec = parse_segment({"name": "s", "where": {"active_on_site": {"within_days": 7}}})
    with pytest.raises(SegmentSpecError, match="this data has no web events"):
        check_segment(spec, no_events)


def test_shipped_segment_files_are_valid():
    files = segment_files([config.PARAMS_DIR / "segments", config.PARAMS_DIR / "segments/synth"])
    specs = load_segments(files)
    assert len(specs) >= 6
    for path in files:
        spec = load_segment(path)
        assert Path(path).stem == spec.name
        assert parse_segment(yaml.safe_load(to_yaml(spec))) == spec
