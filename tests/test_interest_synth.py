"""Interested In, model tier: planted affinities, held-out evaluation, calibration, leakage, API.

One small synthetic shop (2,000 customers, two years, planted category and brand affinities)
is generated, ingested and fitted once per module.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from workbench.errors import WorkbenchError
from workbench.ingest.pipeline import ingest
from workbench.models.interest import fit_interest, score_target, top_k_table
from workbench.models.interest_eval import SCORERS, run_interest_evaluation
from workbench.params import load_params
from workbench.synth import SynthSettings, generate

LEVELS = ["category", "brand"]
HORIZON = 90


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("interest_shop")
    generate(
        2000,
        11,
        root / "src",
        days=730,
        products=3500,
        brands=50,
        progress=False,
        settings=SynthSettings(block_size=500),
    )
    params = load_params(root / "src" / "params.yaml", [f"interest.levels=[{','.join(LEVELS)}]"])
    run = root / "run"
    ingest(params, run, progress=False)
    orders = pd.read_parquet(run / "data" / "orders.parquet")
    end = orders["ordered_at"].max()
    return {"root": root, "src": root / "src", "run": run, "params": params, "end": end}


@pytest.fixture(scope="module")
def fitted(shop):
    summary = fit_interest(shop["params"], shop["run"], progress=False)
    return {**shop, "summary": summary}


@pytest.fixture(scope="module")
def evaluation(shop):
    cutoff = (shop["end"] - timedelta(days=HORIZON)).date()
    result = run_interest_evaluation(shop["params"], cutoff, shop["run"], progress=False)
    return result


def _sales(run: Path) -> pd.DataFrame:
    orders = pd.read_parquet(run / "data" / "orders.parquet")
    products = pd.read_parquet(run / "data" / "products.parquet")
    return orders[~orders["is_return"]].merge(products, on="product_id")


def test_model_ranks_planted_affine_customers_above_others(fitted):
    """Planted affinity recovered by the `affinity` column, far above every baseline."""
    truth = pd.read_parquet(fitted["src"] / "truth" / "affinity.parquet")
    sales = _sales(fitted["run"])
    end = sales["ordered_at"].max()
    sales["w"] = 0.5 ** ((end - sales["ordered_at"]).dt.total_seconds() / 86400 / 120)
    heavy = sales.groupby("customer_id")["order_id"].nunique()
    for level in LEVELS:
        planted = truth[truth["level"] == level]
        rows = []
        for target in planted["target"].value_counts().head(5).index:
            sc = score_target(fitted["run"], level, target)
            y = sc["customer_id"].isin(set(planted.loc[planted["target"] == target, "customer_id"]))
            if level == "brand":
                hits = sales[sales["brand"] == target]
            else:
                hits = sales[sales["category"].str.startswith(target)]
            recency = hits.groupby("customer_id")["w"].sum()
            before = sc["customer_id"].map(recency).fillna(0.0)
            heaviest = sc["customer_id"].map(heavy).fillna(0.0)
            new = before == 0
            rows.append(
                {
                    "model": roc_auc_score(y, sc["affinity"]),
                    "bought_before": roc_auc_score(y, before),
                    "heaviest": roc_auc_score(y, heaviest),
                    "model_new": roc_auc_score(y[new], sc["affinity"][new]),
                    "heaviest_new": roc_auc_score(y[new], heaviest[new]),
                }
            )
        auc = pd.DataFrame(rows).mean()
        # baselines: random and popularity are 0.5 by construction; bought-before is 0.5 new
        assert auc["model"] > 0.8, (level, auc.to_dict())
        assert auc["model"] > max(auc["bought_before"], auc["heaviest"], 0.5) + 0.05, auc.to_dict()
        assert auc["model_new"] > 0.65, (level, auc.to_dict())
        assert auc["model_new"] > max(auc["heaviest_new"], 0.5) + 0.1, auc.to_dict()


def test_evaluation_beats_every_baseline_on_held_out_purchases(shop, evaluation):
    assert json.loads((shop["run"] / "interest_eval.json").read_text())["levels"]
    assert (shop["run"] / "interest_eval.png").stat().st_size > 10_000
    assert evaluation["label_window_complete"]
    for level in LEVELS:
        res = evaluation["levels"][level]
        assert set(res["scorers"]) == set(SCORERS)
        for subset in ("overall", "new_to_target"):
            model = res["scorers"]["model"][subset]
            for base in SCORERS[1:]:
                other = res["scorers"][base][subset]
                assert model["auc"] > other["auc"] + 0.03, (level, subset, base)
                assert model["lift@5%"] > other["lift@5%"], (level, subset, base)
        assert res["scorers"]["model"]["overall"]["auc"] > 0.8
        assert res["scorers"]["model"]["new_to_target"]["auc"] > 0.7
        assert (
            res["scorers"]["model"]["overall"]["brier"]
            < res["scorers"]["popularity"]["overall"]["brier"]
        )


def test_evaluation_of_a_large_shop_fits_a_customer_sample(shop, evaluation, tmp_path):
    """Above interest.evaluation_customers the evaluation fits and scores a random sample."""
    shutil.copytree(shop["run"] / "data", tmp_path / "data")
    params = shop["params"].model_copy(
        update={
            "interest": shop["params"].interest.model_copy(
                update={"levels": ["category"], "evaluation_customers": 1000}
            )
        }
    )
    cutoff = (shop["end"] - timedelta(days=HORIZON)).date()
    result = run_interest_evaluation(params, cutoff, tmp_path, progress=False)
    assert result["customers_fitted"] == 1000 < result["customers_at_cutoff"]
    assert evaluation["customers_fitted"] == evaluation["customers_at_cutoff"]
    res = result["levels"]["category"]
    assert res["customers_known"] <= 1000
    model = res["scorers"]["model"]["overall"]["auc"]
    assert model > res["scorers"]["bought_before"]["overall"]["auc"] > 0.5


def test_a_sample_fit_reads_only_the_samples_rows_and_fits_the_same_model(shop):
    """``fit_source=source.restricted_to(sample)`` gives the model the full source gives."""
    from workbench import engine
    from workbench.models import interest_data as idata
    from workbench.models.interest import fit_levels
    from workbench.models.interest_eval import sample_customers

    con = engine.connect("duckdb")
    source = idata.InterestSource.from_run_dir(con, shop["run"])
    as_of = idata.instant((shop["end"] - timedelta(days=HORIZON)).date())
    sample = sample_customers(idata.customer_ids(source, as_of), 700, 3)
    restricted = source.restricted_to(sample)
    assert restricted.orders.count().execute() < source.orders.count().execute()
    ids = set(restricted.orders.customer_id.execute())
    assert ids <= set(sample.to_pylist())
    kwargs = {"model_params": {"calibration_customers": 300}}
    full = fit_levels(source, ["category"], as_of, HORIZON, sample, **kwargs)["category"]
    fast = fit_levels(
        source, ["category"], as_of, HORIZON, sample, fit_source=restricted, **kwargs
    )["category"]
    assert fast.fit_info_["calibration_rows"] == full.fit_info_["calibration_rows"]
    rows = np.arange(len(sample))
    np.testing.assert_allclose(fast.predict_proba(rows), full.predict_proba(rows), rtol=1e-6)


def _at_the_end(shop):
    """The shop's ingested source on DuckDB, its last day (end of), and the customers then."""
    from workbench import engine
    from workbench.models import interest_data as idata

    source = idata.InterestSource.from_run_dir(engine.connect("duckdb"), shop["run"])
    as_of = idata.instant(shop["end"].date())
    return source, as_of, idata.customer_ids(source, as_of)


def test_the_calibration_snapshot_reads_the_sampled_customers_browsing_only(shop, monkeypatch):
    """Aggregating the period-start browsing of the sampled customers only fits the same model."""
    from workbench.models import interest_features as feat
    from workbench.models.interest import fit_levels

    source, as_of, customers = _at_the_end(shop)
    kwargs = {"model_params": {"calibration_customers": 300}}
    build = feat.build_snapshot
    seen: list[int | None] = []

    def spy(*args, browse_rows=None, **kw):
        seen.append(None if browse_rows is None else len(browse_rows))
        return build(*args, browse_rows=browse_rows, **kw)

    monkeypatch.setattr(feat, "build_snapshot", spy)
    fast = fit_levels(source, ["keyword"], as_of, HORIZON, customers, **kwargs)["keyword"]
    assert seen == [300, None]  # the period start: the sample's browsing; as_of: everyone's
    monkeypatch.setattr(feat, "build_snapshot", lambda *a, browse_rows=None, **kw: build(*a, **kw))
    full = fit_levels(source, ["keyword"], as_of, HORIZON, customers, **kwargs)["keyword"]
    assert fast.fit_info_["calibration_rows"] == full.fit_info_["calibration_rows"]
    assert fast.fit_info_["itemitem_l2_auc"] == full.fit_info_["itemitem_l2_auc"]
    rows = np.arange(len(customers))
    np.testing.assert_allclose(fast.predict_proba(rows), full.predict_proba(rows), rtol=1e-6)


def test_levels_share_the_level_independent_aggregates_and_fit_the_same_models(shop, monkeypatch):
    """Fitted together, the levels compute known customers and activity once per instant."""
    from workbench.models import interest_features as feat
    from workbench.models import interest_model
    from workbench.models.interest import fit_levels

    source, as_of, customers = _at_the_end(shop)
    kwargs = {"model_params": {"calibration_customers": 300}}
    calls = {"known": 0, "vectors": 0}
    known, vectors = interest_model._known_mask, feat._customer_vectors

    def count(name, fn):
        def wrapped(*args, **kw):
            calls[name] += 1
            return fn(*args, **kw)

        return wrapped

    monkeypatch.setattr(interest_model, "_known_mask", count("known", known))
    monkeypatch.setattr(feat, "_customer_vectors", count("vectors", vectors))
    together = fit_levels(source, LEVELS, as_of, HORIZON, customers, **kwargs)
    # one known-customers mask (period start), activity at the period start (sample) and as_of
    assert calls == {"known": 1, "vectors": 2}
    for level in LEVELS:
        alone = fit_levels(source, [level], as_of, HORIZON, customers, **kwargs)[level]
        assert alone.fit_info_["calibration_rows"] == together[level].fit_info_["calibration_rows"]
        rows = np.arange(len(customers))
        np.testing.assert_array_equal(
            alone.predict_proba(rows), together[level].predict_proba(rows)
        )
    assert calls == {"known": 1 + len(LEVELS), "vectors": 2 + 2 * len(LEVELS)}
    info = together[LEVELS[0]].fit_info_
    assert list(info["stage_seconds"]) == [
        "period_start_snapshot",
        "calibration_sample",
        "itemitem_penalty",
        "blender",
        "as_of_snapshot",
    ]
    assert sum(info["stage_seconds"].values()) <= info["fit_seconds"] + 0.5


@pytest.mark.parametrize("level", ["product", "keyword", "category"])
def test_two_step_browsing_equals_the_one_step_aggregate(shop, level):
    """BrowseBase (customer x product and x query sums, then per-level sparse products) gives
    event_pairs' sums, keyed and not, for the whole shop and for a row selection."""
    from workbench import engine
    from workbench.models import interest_data as idata
    from workbench.models.interest import prepare_level
    from workbench.models.interest_browse import BrowseBase
    from workbench.models.interest_catalog import read_products
    from workbench.models.interest_features import BROWSE_HALF_LIVES

    source = idata.InterestSource.from_run_dir(engine.connect("duckdb"), shop["run"])
    as_of = idata.instant((shop["end"] - timedelta(days=HORIZON)).date())
    customers = idata.customer_ids(source, as_of)
    catalog, query_map = prepare_level(
        source, read_products(source.products, source.sales), level, as_of
    )
    assert query_map is not None and len(query_map)
    cols = ["target_idx", *BROWSE_HALF_LIVES]
    for src in (source, source.keyed(customers)):
        for rows in (None, np.arange(0, len(customers), 7)):
            events = src.events if rows is None else idata.of_rows(src.events, customers, rows)
            one = idata.event_pairs(
                events, catalog.product_map, query_map, as_of, BROWSE_HALF_LIVES
            )
            want = pd.DataFrame(idata.to_arrays(one, customers, cols, float_dtype=np.float64))
            base = BrowseBase.compute(events, customers, as_of, BROWSE_HALF_LIVES)
            parts = base.parts(catalog.product_map, query_map, catalog.size, np.float64)
            assert len(parts) == 2  # product events, searches
            got = pd.concat([pd.DataFrame(p) for p in parts]).groupby(["row", "target_idx"]).sum()
            want = want.set_index(["row", "target_idx"]).sort_index()
            assert len(got) == len(want) > 1000
            pd.testing.assert_frame_equal(got, want, rtol=1e-12, check_dtype=False)


@pytest.mark.parametrize("level", ["product", "keyword", "category"])
def test_shared_purchase_days_give_purchase_pairs(shop, level):
    """PurchaseBase (customer x product x day, then per-level numpy) gives purchase_pairs'
    occasions, ages and decayed counts, keyed and not."""
    from workbench import engine
    from workbench.models import interest_data as idata
    from workbench.models.interest import prepare_level
    from workbench.models.interest_catalog import read_products
    from workbench.models.interest_features import PURCHASE_HALF_LIVES
    from workbench.models.interest_purchases import PurchaseBase

    source = idata.InterestSource.from_run_dir(engine.connect("duckdb"), shop["run"])
    as_of = idata.instant((shop["end"] - timedelta(days=HORIZON)).date())
    customers = idata.customer_ids(source, as_of)
    products = read_products(source.products, source.sales)
    catalog, _ = prepare_level(source, products, level, as_of)
    cols = ["target_idx", "days", "first_age", "last_age", *PURCHASE_HALF_LIVES]
    for src in (source, source.keyed(customers)):
        one = idata.purchase_pairs(src.sales, catalog.product_map, as_of, PURCHASE_HALF_LIVES)
        want = pd.DataFrame(idata.to_arrays(one, customers, cols))
        want = want.set_index(["row", "target_idx"]).sort_index()
        base = PurchaseBase.compute(src.sales, customers, as_of)
        got = pd.DataFrame(base.parts(catalog.product_map, catalog.size, PURCHASE_HALF_LIVES))
        got = got.set_index(["row", "target_idx"])
        assert got.index.is_monotonic_increasing and len(got) == len(want) > 1000
        pd.testing.assert_frame_equal(got, want, rtol=1e-6)


def test_keyed_aggregates_equal_the_id_keyed_ones(shop):
    """Grouping by the customer's integer row (``source.keyed``) changes no profile entry."""
    from workbench import engine
    from workbench.models import interest_data as idata
    from workbench.models.interest import prepare_level
    from workbench.models.interest_catalog import read_products
    from workbench.models.interest_features import BROWSE_HALF_LIVES, PURCHASE_HALF_LIVES

    con = engine.connect("duckdb")
    source = idata.InterestSource.from_run_dir(con, shop["run"])
    as_of = idata.instant((shop["end"] - timedelta(days=HORIZON)).date())
    customers = idata.customer_ids(source, as_of)
    products = read_products(source.products, source.sales)
    catalog, query_map = prepare_level(source, products, "keyword", as_of)
    assert query_map is not None and len(query_map)

    def arrays(src: idata.InterestSource) -> list[pd.DataFrame]:
        pm = catalog.product_map
        tables = {
            "purchases": (
                idata.purchase_pairs(src.sales, pm, as_of, PURCHASE_HALF_LIVES),
                ["target_idx", "days", "first_age", "last_age", *PURCHASE_HALF_LIVES],
            ),
            "browse": (
                idata.event_pairs(src.events, pm, query_map, as_of, BROWSE_HALF_LIVES),
                ["target_idx", *BROWSE_HALF_LIVES],
            ),
            "labels": (
                idata.label_pairs(src.sales, pm, as_of, as_of + timedelta(days=HORIZON)),
                ["target_idx"],
            ),
            **{
                f"activity_{k}": (t, [c for c in t.columns if c not in ("customer_id", "_row")])
                for k, t in idata.customer_activity(src, as_of, 120.0).items()
            },
        }
        out = []
        for table, cols in tables.values():
            frame = pd.DataFrame(idata.to_arrays(table, customers, cols))
            out.append(frame.sort_values(list(frame.columns[:2])).reset_index(drop=True))
        return out

    keyed = source.keyed(customers)
    assert "_row" in keyed.sales.columns and "_row" in keyed.events.columns
    for got, want in zip(arrays(keyed), arrays(source), strict=True):
        assert len(got) == len(want) > 0
        pd.testing.assert_frame_equal(got, want, rtol=1e-6)


def test_calibrated_within_tolerance_per_decile(evaluation):
    """Held-out period, per decile of predictions: |observed - predicted| within 25% of the
    prediction plus three binomial standard errors of the bin (and 0.0005 absolute)."""
    for level in LEVELS:
        for subset in ("overall", "new_to_target"):
            curve = pd.DataFrame(evaluation["levels"][level]["reliability"]["model"][subset])
            assert len(curve) >= 5
            gap = (curve["observed"] - curve["mean_predicted"]).abs()
            pred = curve["mean_predicted"]
            se = np.sqrt(np.maximum(pred, curve["observed"]) / curve["pairs"])
            tol = 0.25 * pred + 3 * se + 5e-4
            assert (gap <= tol).all(), (level, subset, curve.to_dict("records"))
            w = curve["pairs"]
            ratio = np.average(curve["observed"], weights=w) / np.average(
                curve["mean_predicted"], weights=w
            )
            assert 0.8 < ratio < 1.25, (level, subset, ratio)


def test_top_k_table_and_score_target_agree(fitted):
    path = top_k_table(fitted["run"])
    top = pd.read_parquet(path)
    assert list(top.columns) == ["customer_id", "level", "target", "score", "rank"]
    assert set(top["level"]) == set(LEVELS)
    k = fitted["params"].interest.top_k
    per = top.groupby(["customer_id", "level"])
    assert per.size().eq(k).all()
    assert (per["rank"].apply(lambda r: sorted(r) == list(range(1, k + 1)))).all()
    assert (per["score"].apply(lambda s: s.is_monotonic_decreasing)).all()
    assert top["score"].between(0, 1).all()
    for level in LEVELS:
        listing = top[top["level"] == level]["target"].value_counts()
        n_customers = top["customer_id"].nunique()
        target = (listing - 0.3 * n_customers).abs().idxmin()  # listed by ~30% of customers
        sc = score_target(fitted["run"], level, target)
        n = len(sc)
        assert list(sc.columns[:4]) == ["customer_id", "score", "rank", "percentile"]
        assert sc["rank"].tolist() == list(range(1, n + 1))
        assert sc["score"].is_monotonic_decreasing
        assert sc["percentile"].iloc[0] == 100.0 and sc["percentile"].min() > 0
        assert sc["customer_id"].is_unique and n == fitted["summary"]["levels"][level]["customers"]
        pairs = top[(top["level"] == level) & (top["target"] == target)]
        merged = pairs.merge(sc, on="customer_id", suffixes=("_top", ""))
        assert len(merged) == len(pairs)
        assert np.allclose(merged["score_top"], merged["score"], rtol=1e-5)
        # customers listing the target rank higher for it than customers who do not
        listed = sc["customer_id"].isin(set(pairs["customer_id"]))
        assert sc.loc[listed, "percentile"].mean() > sc.loc[~listed, "percentile"].mean() + 10


def test_top_k_in_parts_and_worker_processes_equals_one_pass(fitted, tmp_path, monkeypatch):
    """Small parts scored by two spawned processes give the table of one in-process pass."""
    from workbench.models import interest_parts
    from workbench.models import interest_store as store

    run = tmp_path / "run"
    shutil.copytree(fitted["run"] / store.MODEL_DIR, run / store.MODEL_DIR)
    one = pd.read_parquet(top_k_table(run, top_k=5, rebuild=True, workers=1))
    expected = {lvl: np.load(run / store.MODEL_DIR / lvl / store.EXPECTED) for lvl in LEVELS}
    n = len(store.load_customers(run / store.MODEL_DIR))
    monkeypatch.setattr(interest_parts, "MIN_PARALLEL_ROWS", 0)
    monkeypatch.setattr(interest_parts, "PART_ROWS", 333)
    parts = interest_parts.plan(LEVELS, n)
    assert len(parts) == 2 * -(-n // 333) and parts[-1].stop == n
    many = pd.read_parquet(top_k_table(run, top_k=5, rebuild=True, workers=2))
    pd.testing.assert_frame_equal(one, many)
    for lvl in LEVELS:
        saved = np.load(run / store.MODEL_DIR / lvl / store.EXPECTED)
        np.testing.assert_array_equal(saved, expected[lvl])
    assert not (run / ".interest.parquet.parts").exists()


def test_top_k_scored_alongside_the_fits_equals_the_table_scored_after(
    fitted, tmp_path, monkeypatch
):
    """fit_interest hands each saved level's parts to a worker while it fits the next level;
    the table and expected purchases are those of scoring after the fits, in one pass."""
    from workbench.models import interest_parts
    from workbench.models import interest_store as store

    run = tmp_path / "run"
    shutil.copytree(fitted["run"] / "data", run / "data")
    monkeypatch.setattr(interest_parts, "MIN_PARALLEL_ROWS", 0)
    monkeypatch.setattr(interest_parts, "PART_ROWS", 700)
    params = load_params(
        fitted["src"] / "params.yaml",
        [f"interest.levels=[{','.join(LEVELS)}]", "interest.scoring_workers=2"],
    )
    added = []
    real_add = interest_parts.BackgroundParts.add
    monkeypatch.setattr(
        interest_parts.BackgroundParts,
        "add",
        lambda self, parts: (added.append([p.level for p in parts]), real_add(self, parts))[1],
    )
    summary = fit_interest(params, run, progress=False)
    assert [set(a) for a in added] == [{lvl} for lvl in LEVELS]  # one level at a time
    assert _untimed(summary) == _untimed(fitted["summary"])
    pd.testing.assert_frame_equal(
        pd.read_parquet(run / "interest.parquet"),
        pd.read_parquet(fitted["run"] / "interest.parquet"),
    )
    for lvl in LEVELS:
        np.testing.assert_array_equal(
            np.load(run / store.MODEL_DIR / lvl / store.EXPECTED),
            np.load(fitted["run"] / store.MODEL_DIR / lvl / store.EXPECTED),
        )
    assert not (run / ".interest.parquet.parts").exists()
    assert not (run / ".interest_model.partial").exists()


def test_a_failed_background_part_is_raised_and_stops_the_workers(tmp_path):
    from workbench.models import interest_parts

    bg = interest_parts.BackgroundParts(tmp_path / "missing", 5, 10_000, tmp_path / "s", 2)
    bg.add(interest_parts.plan(["brand"], 10, 5))
    with pytest.raises(FileNotFoundError):
        bg.finish()
    assert not bg._thread.is_alive()


def test_unknown_target_and_level_are_clear_errors(fitted):
    with pytest.raises(WorkbenchError) as err:
        score_target(fitted["run"], "brand", "Brightlin")
    assert "close matches" in str(err.value) and "Brightline" in str(err.value)
    with pytest.raises(WorkbenchError, match="not fitted"):
        score_target(fitted["run"], "keyword", "mug")
    brand = (
        pd.read_parquet(fitted["run"] / "interest.parquet")
        .query("level == 'brand'")["target"]
        .iloc[0]
    )
    assert score_target(fitted["run"], "brand", brand.upper())["score"].notna().all()


def _poison(run: Path, cutoff: pd.Timestamp) -> None:
    """Append purchases and events after the cutoff: a huge order of one brand, a new customer."""
    data = run / "data"
    orders = pq.read_table(data / "orders.parquet")
    frame = orders.to_pandas()
    products = pd.read_parquet(data / "products.parquet")
    product = products["product_id"].iloc[0]
    rows = frame.iloc[[0] * 30].copy()
    rows["order_id"] = [f"POISON{i}" for i in range(30)]
    rows["customer_id"] = [frame["customer_id"].iloc[0]] * 20 + ["NEW_CUSTOMER"] * 10
    rows["product_id"] = product
    rows["quantity"] = 1000.0
    rows["ordered_at"] = cutoff + pd.Timedelta(days=1)
    pq.write_table(
        pa.Table.from_pandas(pd.concat([frame, rows]), schema=orders.schema, preserve_index=False),
        data / "orders.parquet",
    )
    events = pq.read_table(data / "events.parquet")
    ev = events.to_pandas()
    extra = ev.iloc[[0] * 50].copy()
    extra["occurred_at"] = cutoff + pd.Timedelta(hours=5)
    extra["event_type"] = "cart"
    extra["product_id"] = product
    pq.write_table(
        pa.Table.from_pandas(pd.concat([ev, extra]), schema=events.schema, preserve_index=False),
        data / "events.parquet",
    )


def _untimed(summary: dict) -> dict:
    """A fit summary without its wall times."""
    levels = {
        k: {f: v for f, v in fit.items() if f not in ("fit_seconds", "stage_seconds")}
        for k, fit in summary["levels"].items()
    }
    return {**{k: v for k, v in summary.items() if k != "top_k_seconds"}, "levels": levels}


def test_nothing_after_the_cutoff_enters_features_or_calibration(shop, tmp_path):
    cutoff = (shop["end"] - timedelta(days=120)).date()
    params = load_params(shop["src"] / "params.yaml", ["interest.levels=[brand]"])
    runs = {}
    for name in ("clean", "poisoned"):
        run = tmp_path / name
        shutil.copytree(shop["run"] / "data", run / "data")
        if name == "poisoned":
            _poison(run, pd.Timestamp(cutoff, tz="UTC") + pd.Timedelta(days=1))
        summary = fit_interest(params, run, as_of=cutoff, progress=False)
        runs[name] = (run, summary)
    clean, poisoned = runs["clean"][0], runs["poisoned"][0]
    assert _untimed(runs["clean"][1]) == _untimed(runs["poisoned"][1])
    pd.testing.assert_frame_equal(
        pd.read_parquet(clean / "interest.parquet"), pd.read_parquet(poisoned / "interest.parquet")
    )
    brand = pd.read_parquet(clean / "data" / "products.parquet")["brand"].iloc[0]
    pd.testing.assert_frame_equal(
        score_target(clean, "brand", brand), score_target(poisoned, "brand", brand)
    )


def test_candidate_top_k_equals_dense_top_k_for_a_large_catalogue(shop):
    """Products beyond the EASE block: candidates give exactly the dense top-k."""
    from workbench import engine
    from workbench.models import interest_data as idata
    from workbench.models.interest import fit_levels
    from workbench.models.interest_topk import TopK

    source = idata.InterestSource.from_run_dir(engine.connect("duckdb"), shop["run"])
    as_of = idata.instant(source.last_order_at().date())
    customers = idata.customer_ids(source, as_of)
    params = {"itemitem": {"max_dense": 400, "l2_share": 4.0}, "calibration_customers": 800}
    model = fit_levels(source, ["product"], as_of, HORIZON, customers, model_params=params)[
        "product"
    ]
    ranker = TopK(model, 10)
    assert not ranker.dense and len(ranker.tail) > 2000
    assert model.snapshot_.itemitem.dense_weights_.shape == (400, 400)
    snap = model.snapshot_
    prof = snap.profile.slice(0, 500)
    cust = {k: v[:500] for k, v in snap.customer.items()}
    top, vals, expected = ranker.block(prof, cust)
    logit = model.logit_block(prof, cust)
    cols = np.r_[ranker.head[[3, 17]], ranker.tail[[0, len(ranker.tail) // 2]]]
    np.testing.assert_array_equal(model.logit_block(prof, cust, cols), logit[:, cols])
    best = np.sort(logit, axis=1)[:, ::-1][:, :10]
    assert np.allclose(vals, best, atol=1e-5)
    assert np.allclose(np.take_along_axis(logit, top, axis=1), vals, atol=1e-5)
    full = model.blender_.probability(logit).sum(axis=1, dtype=np.float64)
    assert np.allclose(expected, full, rtol=0.01)
    _fused_equals_numpy(ranker, prof, cust)
    _tail_equals_numpy(ranker, prof, cust)


def _tail_equals_numpy(ranker, prof, cust):
    """The compiled tail pass gives the array version's top-k, logits and expected sums
    exactly: the same candidates, float32 logits, summation order and tie order. Run once as
    fitted and once with the tail's target terms rounded to integers, so many candidates tie."""
    assert ranker._tail_tables() is not None
    for coarse in (False, True):
        if coarse:
            ranker.tail_terms = np.round(ranker.tail_terms).astype(np.float32)
        top, vals, expected = ranker.block(prof, cust)
        ranker._tail_tables = lambda: None
        try:
            n_top, n_vals, n_expected = ranker.block(prof, cust)
        finally:
            del ranker._tail_tables
        np.testing.assert_array_equal(vals, n_vals)
        np.testing.assert_array_equal(top, n_top)
        np.testing.assert_array_equal(expected, n_expected)
    assert (vals[:, :-1] == vals[:, 1:]).sum() > 10  # tied candidates, in the same order


def _fused_equals_numpy(ranker, prof, cust):
    """The compiled head pass gives numpy's logits, top-k (ties aside) and expected sums."""
    assert ranker.fused is not None
    cols = None if ranker.dense else ranker.head
    top, vals, expected = ranker._head(prof, cust, cols)
    fused, ranker.fused = ranker.fused, None
    try:
        _, n_vals, n_expected = ranker._head(prof, cust, cols)
    finally:
        ranker.fused = fused
    np.testing.assert_array_equal(vals, n_vals)  # the same float32 logits
    logit = ranker.model.logit_block(prof, cust, cols)
    np.testing.assert_array_equal(np.take_along_axis(logit, top, axis=1), vals)
    for row in range(len(top)):  # ties: the lower column first
        for v in np.unique(vals[row]):
            tied = np.flatnonzero(logit[row] == v)
            got = top[row][vals[row] == v]
            np.testing.assert_array_equal(got, tied[: len(got)])
    np.testing.assert_allclose(expected, n_expected, rtol=1e-12)


def test_fused_head_pass_equals_numpy_for_a_dense_level(fitted):
    from workbench.models import interest_store as store
    from workbench.models.interest_topk import TopK

    folder = fitted["run"] / store.MODEL_DIR
    model = store.load_model(folder, "category")
    ranker = TopK(model, 10)
    assert ranker.dense
    _, prof, cust = next(store.iter_chunks(folder, "category", 700))
    assert prof.nnz > 0
    _fused_equals_numpy(ranker, prof, cust)


def test_levels_are_fitted_one_at_a_time_and_a_failed_fit_keeps_the_saved_model(
    fitted, monkeypatch
):
    """iter_fits drops each level's model before fitting the next (at 1M customers the product
    model alone is several GB), and fit_interest replaces interest_model/ only once every level
    is saved: a fit that fails leaves the previous model as it was."""
    import gc
    import weakref

    from workbench import engine
    from workbench.models import interest_data as idata
    from workbench.models.interest import iter_fits
    from workbench.models.interest_model import InterestModel

    run, params = fitted["run"], fitted["params"]
    source = idata.InterestSource.from_run_dir(engine.connect("duckdb", threads=1), run)
    as_of = idata.instant(source.last_order_at().date())
    customers = idata.customer_ids(source, as_of, include_undated=True)
    fits = iter_fits(source, LEVELS, as_of, HORIZON, customers)
    level, model = next(fits)
    first = weakref.ref(model)
    del model
    second, _ = next(fits)
    gc.collect()
    assert (level, second) == tuple(LEVELS) and first() is None

    folder = run / "interest_model"
    before = {p.relative_to(folder): p.stat().st_mtime_ns for p in folder.rglob("*")}
    real_fit = InterestModel.fit

    def failing(self, *args, **kwargs):
        if self.level == LEVELS[-1]:
            raise RuntimeError("planted failure")
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(InterestModel, "fit", failing)
    with pytest.raises(RuntimeError, match="planted failure"):
        fit_interest(params, run, progress=False)
    after = {p.relative_to(folder): p.stat().st_mtime_ns for p in folder.rglob("*")}
    assert after == before
    assert not (run / ".interest_model.partial").exists()


def test_the_last_level_frees_the_shared_aggregates_and_fits_the_same(shop, monkeypatch):
    """The last level's fit takes each shared aggregate out of :class:`Shared` (so it is freed
    once read); a level fitted last gives the same model as when fitted before another."""
    from workbench import engine
    from workbench.models import interest_data as idata
    from workbench.models.interest import iter_fits

    made = []

    class Spy(idata.Shared):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    monkeypatch.setattr(idata, "Shared", Spy)
    source = idata.InterestSource.from_run_dir(engine.connect("duckdb"), shop["run"])
    as_of = idata.instant((shop["end"] - timedelta(days=HORIZON)).date())
    customers = idata.customer_ids(source, as_of, include_undated=True)
    fits = iter_fits(source, ["category", "brand"], as_of, HORIZON, customers)
    level, first = next(fits)
    assert level == "category" and not made[0].last_use and made[0].values
    level, _ = next(fits)
    assert level == "brand" and made[0].last_use and made[0].values == {}
    (_, alone), *rest = list(iter_fits(source, ["category"], as_of, HORIZON, customers))
    assert not rest and made[1].values == {}
    for name in ("indptr", "indices"):
        np.testing.assert_array_equal(getattr(first.snapshot_.profile, name),
                                      getattr(alone.snapshot_.profile, name))  # fmt: skip
    for name, values in first.snapshot_.profile.values.items():
        np.testing.assert_array_equal(values, alone.snapshot_.profile.values[name])
    assert first.blender_.intercept_ == alone.blender_.intercept_
    assert first.blender_.coef_.keys() == alone.blender_.coef_.keys()
    for name, coef in first.blender_.coef_.items():
        np.testing.assert_array_equal(coef, alone.blender_.coef_[name])
    assert first.fit_info_["held_out_log_loss"] == alone.fit_info_["held_out_log_loss"]


def test_shared_last_use_hands_a_value_out_once_more():
    from workbench.models.interest_data import Shared

    shared = Shared()
    assert shared.get("a", lambda: [1]) is shared.get("a", lambda: [2])
    shared.last_use = True
    assert shared.get("a", lambda: [3]) == [1] and "a" not in shared.values
    assert shared.get("b", lambda: [4]) == [4] and shared.values == {}


def test_product_buyers_count_each_levels_distinct_buyers(shop):
    """ProductBuyers (the purchase pairs read once, one compiled pass per level) gives each
    candidate target the distinct buyers a pandas join and nunique gives; a catalogue built
    with pairs shared across levels is the one built alone; pairs of another instant are
    refused."""
    from workbench import engine
    from workbench.models import interest_data as idata
    from workbench.models.interest_catalog import (
        ProductBuyers,
        _candidate_map,
        build_catalog,
        read_products,
    )

    source = idata.InterestSource.from_run_dir(engine.connect("duckdb"), shop["run"])
    as_of = idata.instant((shop["end"] - timedelta(days=HORIZON)).date())
    products = read_products(source.products, source.sales)
    sales = source.sales.to_pyarrow().to_pandas()
    sales = sales[sales["ordered_at"] <= pd.Timestamp(as_of)]
    buyers = ProductBuyers.compute(source.sales, as_of)
    assert buyers.indptr[-1] == len(sales[["customer_id", "product_id"]].drop_duplicates())
    for level in ("product", "category", "brand", "keyword"):
        candidates = _candidate_map(level, products).drop_duplicates()
        joined = sales.merge(candidates, on="product_id")
        want = joined.groupby("target")["customer_id"].nunique()
        got = buyers.per_target(candidates)
        assert got[got > 0].sort_index().equals(want.sort_index().astype("int64")), level
        assert (got.reindex(want.index) == want).all() and len(want) > 20
        alone = build_catalog(level, products, source.sales, as_of)
        shared = build_catalog(level, products, source.sales, as_of, buyers=buyers)
        np.testing.assert_array_equal(shared.targets, alone.targets)
        np.testing.assert_array_equal(shared.buyers, alone.buyers)
        pd.testing.assert_frame_equal(shared.product_map, alone.product_map)
    with pytest.raises(ValueError, match="as of"):
        build_catalog("product", products, source.sales, as_of - timedelta(days=1), buyers=buyers)
    empty = ProductBuyers.compute(source.sales, datetime(1990, 1, 1, tzinfo=UTC))
    assert len(empty.products) == 0 and empty.per_target(candidates).sum() == 0
