"""Segment evaluation and 12-month growth at scale: 20 segments on a synthetic shop.

Usage::

    # once: a synthetic shop and a run folder with ingest + customer models
    .venv/bin/workbench demo synth --customers 1000000 --seed 1 --out data/synth_1m
    nice .venv/bin/python bench/segments.py --prepare --params data/synth_1m/params.yaml \\
        --run .bench/segments/run_1m
    # then time the segments step
    nice .venv/bin/python bench/segments.py --params data/synth_1m/params.yaml \\
        --run .bench/segments/run_1m [--months 12] [--growth-segments 20] [--per-point]

It evaluates the 20 segments below (every kind of condition except Interested-In, which needs
the interest model of the run: add ``--interest`` when the run folder has one), writes the
member CSVs and membership, the summary / active / matrix / overlap tables, and the
Customer Base Growth over ``--months`` month ends for the first ``--growth-segments``
segments. It prints seconds per stage, members per segment and the peak RSS. ``--per-point``
also times the growth counts the old way (each segment compiled against each month end's
table) next to the stacked query, on the same snapshot table, and checks the counts agree.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from pathlib import Path

import yaml

from workbench.notebook import RunContext
from workbench.params import load_params
from workbench.segments.compile import compile_where
from workbench.segments.fitted import FittedModels
from workbench.segments.growth import month_ends, segment_growth, snapshot_customers
from workbench.segments.outputs import SegmentRun
from workbench.segments.spec import parse_segment
from workbench.segments.stacked import stacked_members

SEGMENTS = """
- {name: vip_slipping, where: {all: [{importance: vip}, {life_cycle: slipping_away}]}}
- {name: one_time_recent, where: {all: [{importance: one_time}, {last_order: {within_days: 365}}]}}
- name: lost_cheap
  where: {all: [{life_cycle: lost}, {have_purchased: {price: {lt: 10}}},
                {not: {have_purchased: {price: {ge: 10}}}}]}
- name: browsing_not_buying
  where: {all: [{subscribed: true}, {active_on_site: {within_days: 7}},
                {have_not_purchased: {within_days: 7}}]}
- name: kitchen_slipping
  where: {all: [{have_purchased: {category: Home > Kitchen}},
                {not: {have_purchased: {category: Home > Kitchen, within_days: 90}}},
                {life_cycle: [slipping_away, lost]}]}
- {name: loyal_active, where: {all: [{importance: loyal}, {life_cycle: [active, just_ordered]}]}}
- {name: big_spenders, where: {revenue: {min: 1000}}}
- {name: high_aov, where: {aov: {min: 100}}}
- {name: frequent_falling, where: {all: [{behaviour_trend: falling}, {orders: {min: 3}}]}}
- {name: cheap_active, where: {all: [{price_sensitivity: cheap}, {life_cycle: active}]}}
- {name: valuable_at_risk, where: {all: [{predicted_clv: {min: 50}}, {churn_risk: {min: 0.7}}]}}
- {name: new_customers, where: {first_order: {within_days: 90}}}
- {name: brand_repeaters, where: {have_purchased: {brand: Miraio, min_quantity: 2}}}
- {name: toys_recent, where: {have_purchased: {category: Toys & Games, within_days: 180}}}
- name: cart_abandoners
  where: {all: [{viewed: {event_types: [cart], within_days: 14}},
                {have_not_purchased: {within_days: 14}}]}
- {name: coffee_searchers, where: {searched: {query: [coffee, compost], within_days: 30}}}
- {name: german_subscribers, where: {all: [{language: de}, {subscribed: true}]}}
- {name: uk_ie_repeaters, where: {all: [{country: [GB, IE]}, {orders: {min: 2}}]}}
- name: gmail_dormant
  where: {all: [{attribute: {column: email, op: contains, value: gmail}},
                {last_active: {older_than_days: 180}}]}
- name: nested_mix
  where:
    any:
      - all: [{importance: vip}, {not: {life_cycle: lost}}]
      - all: [{importance: loyal}, {have_purchased: {within_days: 30}}]
      - not: {any: [{importance: one_time}, {life_cycle: lost}, {orders: {max: 2}}]}
"""

INTEREST = """
- name: brand_fans
  where: {all: [{importance: [vip, loyal]},
                {interested_in: {level: brand, target: Miraio, top_share: 0.2}}]}
"""


def prepare(params_path: Path, run_dir: Path) -> None:
    """Ingest and fit the customer models into ``run_dir`` (what 01/02 notebooks do)."""
    from workbench import engine
    from workbench.ingest.pipeline import ingest
    from workbench.models.customers import build_customers

    params = load_params(params_path)
    run_dir.mkdir(parents=True, exist_ok=True)
    ingest(params, run_dir, progress=False)
    ctx = RunContext(params=params, run_dir=run_dir)
    customers = ctx.table("customers") if ctx.has_table("customers") else None
    events = ctx.table("events") if ctx.has_table("events") else None
    models = build_customers(
        ctx.table("orders"),
        ctx.as_of,
        horizon_days=params.models.horizon_days,
        customers=customers,
        events=events,
    )
    engine.write_parquet(models.table, ctx.path("customers.parquet"))
    ctx.update_metrics("customer_models", models.metrics)


def main() -> None:
    """Run the benchmark and print one JSON line of results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=Path, required=True)
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--prepare", action="store_true")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--growth-segments", type=int, default=20)
    parser.add_argument("--interest", action="store_true")
    parser.add_argument(
        "--per-point",
        action="store_true",
        help="also time the per-month-end evaluation the stacked growth replaced, and compare",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.prepare:
        start = time.perf_counter()
        prepare(args.params, args.run)
        print(json.dumps({"prepare_seconds": round(time.perf_counter() - start, 1)}))
        return
    raw = yaml.safe_load(SEGMENTS) + (yaml.safe_load(INTEREST) if args.interest else [])
    specs = [parse_segment(r, source=r["name"]) for r in raw]
    params = load_params(args.params).model_copy(update={"segments": []})
    ctx = RunContext(params=params, run_dir=args.run)
    seconds: dict[str, float] = {}

    def timed(name, fn, *a, **kw):
        t0 = time.perf_counter()
        out = fn(*a, **kw)
        seconds[name] = round(time.perf_counter() - t0, 2)
        print(f"{name}: {seconds[name]} s", file=sys.stderr, flush=True)
        return out

    run = timed("evaluate_and_write_members", _start, ctx, specs)
    timed("summary", run.summary)
    timed("active_1_12_months", run.active, 12)
    timed("matrix", run.matrix)
    timed("overlap", run.overlap)
    fitted = FittedModels.from_metrics(ctx.metrics, run.data.horizon_days)
    points = month_ends(run.data.as_of, args.months)
    growth_specs = specs[: args.growth_segments]
    compared, last = {}, {}
    if args.per_point:
        states = timed("growth_snapshots", snapshot_customers, run.data, points, fitted)
        stacked = timed("growth_stacked_counts", _counts, growth_specs, run.data, states, points)
        by_point = timed("growth_per_point_counts", _counts_per_point, growth_specs, run.data,
                         states, points)  # fmt: skip
        compared = {
            "per_point_over_stacked": round(
                seconds["growth_per_point_counts"] / seconds["growth_stacked_counts"], 2
            ),
            "same_counts": stacked == by_point,
        }
        last = {k: v.get(len(points) - 1, 0) for k, v in stacked.items()}
    else:
        timed("growth_snapshots_only", lambda: snapshot_customers(run.data, points, fitted)
              .count().to_pyarrow())  # fmt: skip
        growth = timed("growth_total", segment_growth, growth_specs, run.data, fitted, points)
        last = growth.groupby("segment")["members"].last().to_dict()
    sizes = run.counts().set_index("segment")["customers"].to_dict()
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        json.dumps(
            {
                "customers": run.data.n_customers,
                "segments": len(specs),
                "growth_segments": len(growth_specs),
                "growth_points": len(points),
                "seconds": seconds,
                **compared,
                "members": sizes,
                "growth_last_point": last,
                "peak_rss_gb": round(peak_gb, 2),
            },
            indent=1,
        )
    )


def _counts(specs: list, data, states, points) -> dict:
    """Members per segment and month end, all month ends in one query per segment."""
    out = {}
    for spec in specs:
        m = stacked_members(spec.where, data, states, points)
        frame = m.group_by("_snap").aggregate(n=m.count()).to_pandas()
        out[spec.name] = {int(i): int(n) for i, n in zip(frame["_snap"], frame["n"], strict=True)}
    return out


def _counts_per_point(specs: list, data, states, points) -> dict:
    """The same by compiling each segment against each month end's table (the old way)."""
    out = {}
    for spec in specs:
        out[spec.name] = {}
        for i, when in enumerate(points):
            seen = data.with_as_of(when, states.filter(states._snap == i).drop("_snap"))
            n = int(compile_where(spec.where, seen).count().to_pyarrow().as_py())
            if n:
                out[spec.name][i] = n
    return out


def _start(ctx: RunContext, specs: list) -> SegmentRun:
    """:meth:`SegmentRun.start` with the benchmark's specs instead of the params' files."""
    from workbench.segments.data import SegmentData
    from workbench.segments.evaluate import evaluate_segments

    data = SegmentData.from_context(ctx)
    run = SegmentRun(ctx=ctx, specs=specs, data=data, membership=evaluate_segments(specs, data))
    run._write_members()
    return run


if __name__ == "__main__":
    main()
