"""The ipywidgets builder: YAML -> builder -> YAML keeps the meaning; programmatic editing."""

from __future__ import annotations

import ibis
import pytest
import yaml

from workbench import config
from workbench.segments.builder import SegmentBuilder
from workbench.segments.evaluate import segment_members
from workbench.segments.files import load_segment, segment_files, to_yaml
from workbench.segments.spec import parse_segment
from workbench.segments.testing import tiny_data

EVERY_KIND = """
name: every_kind
description: one of every condition, with non-default values
where:
  all:
    - interested_in: {level: brand, target: Acme, top_share: 0.25}
    - any:
        - have_purchased: {category: [Kitchen, Toys > Puzzles], brand: [Acme], keyword: [mug],
                           attributes: {colour: [red, green]}, since: 2023-01-01,
                           until: 2024-06-30, price: {lt: 30, ge: 1}, min_quantity: 2}
        - have_not_purchased: {product: [P2], within_days: 90, older_than_days: 7}
        - not: {life_cycle: [lost]}
    - importance: [vip, loyal]
    - price_sensitivity: [cheap]
    - behaviour_trend: [falling, stable]
    - orders: {min: 2, max: 10}
    - revenue: {min: 10.5}
    - aov: {max: 80}
    - first_order: {before: 2024-01-01}
    - last_order: {within_days: 365}
    - p_alive: {min: 0.2}
    - churn_risk: {max: 0.9}
    - predicted_clv: {min: 1}
    - expected_orders: {min: 0.1, max: 5}
    - active_on_site: {within_days: 30, event_types: [view, cart], min_count: 2}
    - last_active: {since: 2024-01-01}
    - viewed: {category: [Home], event_types: [view, click], min_count: 1, within_days: 60}
    - searched: {query: [jigsaw, puzzle], within_days: 30, min_count: 2}
    - subscribed: false
    - language: [en, de]
    - country: [GB]
    - attribute: {column: created_at, op: lt, value: 2024-01-01}
    - not:
        any:
          - attribute: {column: email, op: contains, value: gmail}
          - attribute: {column: orders, op: in, value: [1, 2]}
          - attribute: {column: phone, op: is_null}
    - not: {not: {subscribed: true}}
columns: [customer_id, email, predicted_clv]
"""


@pytest.fixture(scope="module")
def data():
    return tiny_data(ibis.duckdb.connect())


def _round_trip(spec, data):
    builder = SegmentBuilder(data).load(spec)
    back = builder.to_spec()
    assert parse_segment(yaml.safe_load(builder.to_yaml())) == back
    return back


def test_every_condition_kind_round_trips(data):
    spec = parse_segment(yaml.safe_load(EVERY_KIND))
    assert _round_trip(spec, data) == spec


@pytest.mark.parametrize(
    "path",
    segment_files([config.PARAMS_DIR / "segments", config.PARAMS_DIR / "segments" / "synth"]),
    ids=lambda p: p.stem,
)
def test_shipped_segments_round_trip_without_data(path):
    spec = load_segment(path)
    builder = SegmentBuilder(None).load(spec)
    assert builder.to_spec() == spec
    assert parse_segment(yaml.safe_load(builder.to_yaml())) == spec


def test_single_item_group_keeps_its_meaning(data):
    spec = parse_segment({"name": "s", "where": {"all": [{"importance": "vip"}]}})
    back = _round_trip(spec, data)
    assert back.where == spec.where.items[0]  # all: [x] is x
    assert _ids(back, data) == _ids(spec, data) == {"A", "F"}


def _ids(spec, data):
    table = segment_members(spec, data).select("customer_id").to_pyarrow()
    return set(table.column("customer_id").to_pylist())


def test_built_from_code_equals_the_hand_written_file(data, tmp_path):
    hand = parse_segment(
        yaml.safe_load(
            """
name: win_back
description: Subscribed VIPs or loyal customers who have not ordered for 30 days
where:
  all:
    - subscribed: true
    - any:
        - importance: [vip]
        - importance: [loyal]
    - not: {have_purchased: {within_days: 30}}
columns: [customer_id, email]
"""
        )
    )
    builder = SegmentBuilder(data, folder=tmp_path)
    builder.name.value = "win_back"
    builder.description.value = (
        "Subscribed VIPs or loyal customers who have not ordered for 30 days"
    )
    builder.columns.value = ["customer_id", "email"]
    builder.root.add_condition("subscribed", value=True)
    group = builder.root.add_group("any")
    group.add_condition("importance", values=["vip"])
    group.add_condition("importance").set(values=["loyal"])
    builder.root.add_condition("have_purchased", within_days=30).negate.value = True
    assert builder.to_spec() == hand
    assert "<b>" in builder.status.value and "members" in builder.status.value
    assert _ids(builder.to_spec(), data) == {"F"}  # A ordered on 2024-06-28
    assert list(builder.preview_frame["customer_id"]) == ["F"]
    path = builder.save()
    assert path == tmp_path / "win_back.yaml"
    assert load_segment(path) == hand
    with pytest.raises(FileExistsError):
        builder.save()
    assert builder.save(overwrite=True) == path


def test_live_count_and_errors(data):
    builder = SegmentBuilder(data)
    builder.root.add_condition("life_cycle", values=["lost"])
    assert builder.status.value.startswith("<b>2</b> members")
    editor = builder.root.add_condition("orders")
    assert "give min, max or both" in builder.status.value
    editor.set(min=3)
    assert builder.status.value.startswith("<b>0</b> members")
    builder.root.mode.value = "any"
    assert builder.status.value.startswith("<b>5</b> members")
    builder.root.drop(editor)
    target = builder.root.add_condition("interested_in", level="brand", target="Acmee")
    target.set(min_score=0.1)
    assert "close matches: &#x27;Acme&#x27;" in builder.status.value


def test_dropdowns_come_from_the_data(data):
    builder = SegmentBuilder(data)
    opts = builder.opts
    assert "Home > Kitchen" in opts.categories and "Kitchen" in opts.categories
    assert opts.brands == ["Acme", "Zen Nest"]
    assert opts.values["country"] == ["DE", "FR", "GB", "IT", "US"]
    assert opts.targets["brand"] == ["Acme", "Zen Nest"]
    assert "colour" in opts.product_attributes and "subscribed" in opts.columns
    editor = builder.root.add_condition("interested_in", level="category")
    assert list(editor.fields["target"].widget.options) == ["Toys"]
    assert to_yaml(parse_segment({"name": "x", "where": {"importance": "vip"}}))
