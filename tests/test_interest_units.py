"""Interested In, unit tier: terms, targets, item-item, blender, metrics (pure functions, fast)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.metrics import average_precision_score, roc_auc_score

from workbench.models.interest_blend import Blender, hat_design, knots_for
from workbench.models.interest_catalog import category_prefixes
from workbench.models.interest_features import Profile, erlang2_due, pair_features
from workbench.models.interest_itemitem import ItemItem
from workbench.models.interest_metrics import (
    CustomerAverager,
    Reliability,
    column_metrics,
    topk_rows,
)
from workbench.models.interest_terms import match_queries, tokenize


def test_tokenize_drops_stop_words_numbers_units_and_folds_plurals():
    assert tokenize("SET OF 3 CAKE TINS 12cm, Pantry Design") == ["cake", "tin", "pantry"]
    assert tokenize("Boxes of candies, 500ml glass x12 3pk") == ["box", "candy", "glass"]
    assert tokenize("CHRISTMAS lights") == ["christmas", "light"]
    assert tokenize(None) == [] and tokenize("") == []


def test_category_prefixes_cover_every_depth():
    assert category_prefixes("Home > Kitchen > Mugs") == [
        "Home",
        "Home > Kitchen",
        "Home > Kitchen > Mugs",
    ]
    assert category_prefixes(" Home>Kitchen ") == ["Home", "Home > Kitchen"]
    assert category_prefixes(None) == []


def test_match_queries_keeps_best_overlapping_targets():
    terms = pd.DataFrame(
        {"target_idx": [0, 0, 1, 1, 2], "term": ["red", "mug", "blue", "mug", "red"]}
    )
    out = match_queries(["red mug", "mugs", "zzz"], terms, 3, popularity=np.array([1.0, 5.0, 1.0]))
    assert out[out["query"] == "red mug"][["target_idx", "weight"]].values.tolist() == [[0, 1.0]]
    mugs = out[out["query"] == "mugs"]
    assert sorted(mugs["target_idx"]) == [0, 1]
    assert mugs["weight"].sum() == pytest.approx(1.0)
    assert "zzz" not in set(out["query"])


def test_erlang_due_is_high_for_a_regular_buyer_and_grows_with_horizon():
    coffee = erlang2_due(np.array([5.0]), np.array([21.0]), 90.0)[0]
    rare = erlang2_due(np.array([5.0]), np.array([400.0]), 90.0)[0]
    assert coffee > 0.99 and rare < 0.2
    short, long = erlang2_due(np.array([10.0, 10.0]), np.array([60.0, 60.0]), np.array([7.0, 90.0]))
    assert short < long


def test_profile_sums_repeats_and_slices_rows():
    parts = [
        {
            "row": np.array([0, 2, 2]),
            "target_idx": np.array([1, 0, 3]),
            "own_long": np.array([1.0, 2.0, 1.0]),
        },
        {"row": np.array([2]), "target_idx": np.array([0]), "browse_long": np.array([4.0])},
    ]
    prof = Profile.from_entries(3, 4, parts)
    assert prof.indptr.tolist() == [0, 1, 1, 3]
    assert prof.indices.tolist() == [1, 0, 3]
    assert prof.values["own_long"].tolist() == [1.0, 2.0, 1.0]
    assert prof.values["browse_long"].tolist() == [0.0, 4.0, 0.0]
    sub = prof.take(np.array([2, 0]))
    assert sub.indptr.tolist() == [0, 2, 3] and sub.indices.tolist() == [0, 3, 1]
    feats = pair_features(prof, 90)
    assert feats["own_share"][1:].tolist() == pytest.approx([2 / 3, 1 / 3])
    some = pair_features(prof, 90, np.array([2]))  # one entry: the same values
    assert {k: v.tolist() for k, v in some.items()} == {k: v[2:].tolist() for k, v in feats.items()}
    # consume=True (how build_snapshot calls it): the same profile, the inputs released
    same = Profile.from_entries(3, 4, parts, consume=True)
    assert same.indptr.tolist() == prof.indptr.tolist()
    assert same.indices.tolist() == prof.indices.tolist()
    for name, v in prof.values.items():
        assert same.values[name].tolist() == v.tolist()
    assert parts == [{}, {}]


@pytest.mark.parametrize("big", [False, True])
def test_sorted_positions_equal_numpy_unique_and_see_repeats_within_a_part(big):
    """The packed sort (small keys) and the np.unique fallback (keys too wide) agree."""
    from workbench.models.interest_features import sorted_positions

    rng = np.random.default_rng(2)
    base = 2**60 if big else 0
    part0 = rng.choice(5000, 3000, replace=False) + base  # distinct within the part
    part1 = rng.choice(5000, 2000, replace=False) + base
    keys = np.r_[part0, part1].astype(np.int64)
    uniq, inverse, repeats = sorted_positions(keys.copy(), np.array([0, 3000, 5000]))
    want_u, want_inv = np.unique(keys, return_inverse=True)
    np.testing.assert_array_equal(uniq, want_u)
    np.testing.assert_array_equal(inverse, want_inv.ravel())
    assert not repeats  # keys repeat across the parts only
    again = np.r_[part0, part0[:1], part1].astype(np.int64)
    assert sorted_positions(again, np.array([0, 3001, 5001]))[2]
    assert sorted_positions(np.zeros(0, np.int64))[1].tolist() == []


def test_profile_sums_repeats_within_a_part_too():
    parts = [
        {
            "row": np.array([1, 1, 0]),
            "target_idx": np.array([2, 2, 0]),
            "days": np.array([1.0, 2.0, 5.0]),
        },
        {"row": np.array([1]), "target_idx": np.array([2]), "days": np.array([4.0])},
    ]
    prof = Profile.from_entries(2, 3, parts)
    assert prof.indptr.tolist() == [0, 1, 2] and prof.indices.tolist() == [0, 2]
    assert prof.values["days"].tolist() == [5.0, 7.0]
    assert prof.values["own_long"].tolist() == [0.0, 0.0]


def test_ease_matches_the_closed_form_and_cosine_covers_the_tail():
    rng = np.random.default_rng(0)
    X = sparse.csr_matrix((rng.random((300, 12)) < 0.3).astype(float))
    ii = ItemItem(l2=5.0, max_dense=12).fit(X)
    G = (X.T @ X).toarray() + 5.0 * np.eye(12)
    P = np.linalg.inv(G)
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0)
    assert np.allclose(ii.dense_weights_, B, atol=1e-4)
    dense, tail = ii.score(X[:5])
    assert np.allclose(dense, X[:5].toarray() @ B, atol=1e-4) and not tail.any()
    capped = ItemItem(l2=5.0, max_dense=8, neighbours=3).fit(X)
    assert len(capped.dense_index_) == 8
    tail_cols = np.setdiff1d(np.arange(12), capped.dense_index_)
    assert np.diff(capped.sparse_weights_.tocsc().indptr)[tail_cols].max() <= 3
    d2, t2 = capped.score(X[:5])
    assert not d2[:, tail_cols].any() and t2[:, tail_cols].any()
    assert not t2[:, capped.dense_index_].any()


def test_pair_scores_equal_the_dense_scores_at_those_pairs():
    """score_pairs gives score()'s values at the requested pairs."""
    rng = np.random.default_rng(3)
    X = sparse.csr_matrix((rng.random((200, 40)) < 0.2) * rng.integers(1, 3, (200, 40)))
    X.data = X.data.astype(float)
    X.eliminate_zeros()
    ii = ItemItem(l2=4.0, max_dense=15, neighbours=5).fit(X)
    dense, tail = ii.score(X)
    rows = rng.integers(0, 200, 3000)
    cols = rng.integers(0, 40, 3000)
    d, t = ii.score_pairs(X, rows, cols)
    np.testing.assert_allclose(d, dense[rows, cols], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t, tail[rows, cols], rtol=1e-5, atol=1e-6)
    assert tail[rows, cols].any() and dense[rows, cols].any()
    empty = ii.score_pairs(X, np.zeros(0, int), np.zeros(0, int))
    assert [len(a) for a in empty] == [0, 0]


def test_cosine_neighbours_equal_a_dense_brute_force():
    """Each tail target keeps its k most similar co-bought targets (ties: lower index)."""
    rng = np.random.default_rng(5)
    X = sparse.csr_matrix((rng.random((400, 30)) < 0.15).astype(float))
    k, shrink = 4, 10.0
    buyers = np.asarray(X.sum(axis=0)).ravel()
    co = (X.T @ X).toarray()
    np.fill_diagonal(co, 0.0)
    norm = np.sqrt(np.maximum(buyers, 1))
    sim = co / (norm[:, None] * norm[None, :] + shrink)
    ii = ItemItem(l2=5.0, max_dense=10, neighbours=k, shrink=shrink)
    got = ii.fit(X).sparse_weights_.toarray()
    want = np.zeros_like(sim)
    for j in np.setdiff1d(np.arange(30), ii.dense_index_):
        top = np.lexsort((np.arange(30), -sim[:, j]))[:k]
        top = top[sim[top, j] > 0]
        want[top, j] = sim[top, j]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert (got > 0).sum() == (want > 0).sum()


def test_item_item_learns_from_purchases_only_not_a_profiles_browse_entries():
    """A profile's CF input stores zeros for browse-only entries: they are not purchases."""
    rng = np.random.default_rng(2)
    bought = (rng.random((300, 14)) < 0.2).astype(float)
    browsed = (rng.random((300, 14)) < 0.4) & (bought == 0)
    structure = sparse.csr_matrix(bought + browsed)  # every entry a profile would hold
    X = sparse.csr_matrix(
        (
            structure.multiply(bought).tocsr()[structure.nonzero()].A1,
            structure.indices,
            structure.indptr,
        ),
        shape=structure.shape,
    )
    assert X.nnz == structure.nnz > sparse.csr_matrix(bought).nnz  # stored zeros present
    for kwargs in ({"max_dense": 14}, {"max_dense": 6, "neighbours": 3}):
        got = ItemItem(l2=5.0, **kwargs).fit(X)
        want = ItemItem(l2=5.0, **kwargs).fit(sparse.csr_matrix(bought))
        assert np.array_equal(got.dense_index_, want.dense_index_)
        assert np.allclose(got.dense_weights_, want.dense_weights_)
        assert abs(got.sparse_weights_ - want.sparse_weights_).max() == 0
        other = got.with_l2_share(X, 4.0)
        assert np.allclose(other.dense_weights_, want.with_l2_share(bought, 4.0).dense_weights_)


def test_changing_the_ease_penalty_equals_a_refit_and_keeps_the_cosine_tail():
    rng = np.random.default_rng(1)
    X = sparse.csr_matrix((rng.random((400, 20)) < 0.25).astype(float))
    first = ItemItem(l2_share=0.5, max_dense=10, neighbours=4).fit(X)
    other = first.with_l2_share(X, 30.0)
    refit = ItemItem(l2_share=30.0, max_dense=10, neighbours=4).fit(X)
    assert other.l2_ == refit.l2_ != first.l2_
    assert np.allclose(other.dense_weights_, refit.dense_weights_, atol=1e-6)
    assert (other.sparse_weights_ != refit.sparse_weights_).nnz == 0
    assert first.l2_share == 0.5  # the original is untouched


def test_blender_learns_a_monotone_shape_and_calibrates():
    rng = np.random.default_rng(1)
    x = rng.normal(size=20_000)
    p = 1 / (1 + np.exp(-(2 * x - 3)))
    y = (rng.random(len(x)) < p).astype(int)
    b = Blender(random_state=0).fit({"x": x}, {"x": None}, y, np.ones(len(x)))
    grid = np.linspace(-2, 2, 9)
    g = b.shape("x", grid)
    assert np.all(np.diff(g) > 0)
    logit = b.intercept_ + b.shape("x", x)
    prob = b.probability(logit)
    assert prob.mean() == pytest.approx(y.mean(), rel=0.02)
    restored = Blender.from_dict(b.to_dict())
    assert np.allclose(restored.probability(logit), prob)


def test_hat_basis_reproduces_linear_interpolation():
    knots = knots_for(np.array([0.0, 1.0, 2.0, 4.0]), (0.0, 0.5, 1.0))
    r, c, v = hat_design(np.array([0.5, 3.0, 9.0]), knots)
    design = sparse.csr_matrix((v, (r, c)), shape=(3, len(knots))).toarray()
    coef = np.array([1.0, 3.0, -1.0])
    assert np.allclose(design @ coef, np.interp([0.5, 3.0, 9.0], knots, coef))


def test_column_metrics_match_sklearn_with_ties():
    rng = np.random.default_rng(2)
    s = np.round(rng.random(400), 1)
    y = rng.random(400) < 0.2
    out = column_metrics(s, y, rng)
    assert out["auc"] == pytest.approx(roc_auc_score(y, s))
    s2 = rng.random(400)
    assert column_metrics(s2, y, rng)["average_precision"] == pytest.approx(
        average_precision_score(y, s2)
    )
    perfect = column_metrics(y.astype(float), y, rng)
    assert perfect["auc"] == 1.0 and perfect["lift@5%"] == pytest.approx(1 / y.mean())
    assert column_metrics(s, np.zeros(400, bool), rng) is None


def test_topk_breaks_ties_by_secondary_then_keeps_best_first():
    rng = np.random.default_rng(3)
    primary = np.array([[3.0, 1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    secondary = np.array([0.0, 1.0, 5.0, 2.0, 9.0])
    assert topk_rows(primary, secondary, None, rng, 3).tolist() == [[0, 2, 3], [4, 2, 3]]
    excl = np.zeros_like(primary, bool)
    excl[0, 0] = True
    assert topk_rows(primary, secondary, excl, rng, 1).tolist() == [[2], [4]]


def test_customer_averager_recall_precision_ndcg():
    acc = CustomerAverager(k=2)
    top = np.array([[0, 1], [2, 0]])
    relevant = np.array([[True, False, True], [False, False, False]])
    acc.add(top, relevant)
    res = acc.result()
    assert res["customers"] == 1
    assert res["recall@2"] == pytest.approx(0.5) and res["precision@2"] == pytest.approx(0.5)
    assert res["ndcg@2"] == pytest.approx(1.0 / (1.0 + 1.0 / np.log2(3)))


def test_reliability_bins_and_brier():
    rel = Reliability(np.array([0.5]))
    rel.add(np.array([0.2, 0.2, 0.8, 0.8]), np.array([0, 1, 1, 1]))
    assert rel.brier() == pytest.approx((0.04 + 0.64 + 0.04 + 0.04) / 4)
    assert [b["observed"] for b in rel.curve()] == [0.5, 1.0]


def test_the_runs_evaluation_can_be_left_to_its_own_schedule(project_root):
    from datetime import UTC, datetime, timedelta

    from workbench.models.interest_eval import evaluation_cutoff
    from workbench.params import load_params

    params = load_params(project_root / "params" / "smoke.yaml")
    as_of = datetime(2024, 12, 31, 23, 59, tzinfo=UTC)
    h = params.models.horizon_days
    long_ago, recent = datetime(2020, 1, 1, tzinfo=UTC), as_of - timedelta(days=h)
    cutoff, why = evaluation_cutoff(params, as_of, long_ago)
    assert cutoff == (as_of - timedelta(days=h)).date() and why == ""
    assert evaluation_cutoff(params, as_of, recent)[0] is None
    assert "two horizons" in evaluation_cutoff(params, as_of, None)[1]
    off = load_params(project_root / "params" / "smoke.yaml", ["interest.evaluate=false"])
    cutoff, why = evaluation_cutoff(off, as_of, long_ago)
    assert cutoff is None and "interest.evaluate: false" in why and "evaluate-interest" in why


def test_the_top_k_summary_equals_pandas_and_numpy_on_the_same_table(tmp_path):
    """The notebook's figures and tables come from DuckDB aggregates of interest.parquet, not
    from the 40M-row table in pandas: the same numbers as pandas/numpy on the loaded table."""
    import matplotlib

    matplotlib.use("Agg")
    from workbench.models.interest_plot import plot_score_distribution, plot_top_targets
    from workbench.models.interest_summary import summarise_top_k

    rng = np.random.default_rng(1)
    n, k = 3000, 10
    rows = []
    for level, m in (("product", 400), ("brand", 12)):
        score = np.sort(rng.random((n, k)) ** 3, axis=1)[:, ::-1]
        rows.append(
            pd.DataFrame(
                {
                    "customer_id": np.repeat([f"c{i:05d}" for i in range(n)], k),
                    "level": level,
                    "target": [f"t{j:03d}" for j in rng.integers(0, m, n * k)],
                    # a few scores exactly on bin edges, where float rounding decides the bin
                    "score": np.where(rng.random(n * k) < 0.01, 0.25, score.ravel()),
                    "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), n),
                }
            )
        )
    top = pd.concat(rows, ignore_index=True)
    path = tmp_path / "interest.parquet"
    top.to_parquet(path, row_group_size=7000)
    got = summarise_top_k(path, n=5, head_rows=7)

    assert got.levels == ["product", "brand"]  # file order, not alphabetical
    want = top.groupby("level")["score"].describe(percentiles=[0.5, 0.9])
    pd.testing.assert_frame_equal(
        got.stats.loc[got.levels], want.loc[got.levels], check_names=False, rtol=1e-12
    )
    for level in got.levels:
        sel = top[top["level"] == level]
        edges = np.histogram_bin_edges(sel["score"], bins=40)
        np.testing.assert_array_equal(got.edges[level], edges)
        hist = got.level_histogram(level)
        for which, mask in (("rank 1", sel["rank"] == 1), ("ranks 2..k", sel["rank"] > 1)):
            counts, _ = np.histogram(sel.loc[mask, "score"], bins=edges)
            assert hist.loc[hist["which"] == which, "customers"].tolist() == counts.tolist()
        top3 = (
            sel[sel["rank"] <= 3]
            .groupby("target")
            .agg(customers=("customer_id", "size"), mean_score=("score", "mean"))
            .reset_index()
            .sort_values(["customers", "target"], ascending=[False, True])
            .head(5)
        )
        mine = got.top_targets[got.top_targets["level"] == level]
        assert mine["target"].tolist() == top3["target"].tolist()
        assert mine["customers"].tolist() == top3["customers"].tolist()
        np.testing.assert_allclose(mine["mean_score"], top3["mean_score"], rtol=1e-12)
        assert got.first_choice[level] == sel.loc[sel["rank"] == 1, "target"].mode()[0]
    pd.testing.assert_frame_equal(got.head, top.head(7), check_dtype=False)
    fig = plot_score_distribution(got)
    assert [a.get_title().split(":")[0] for a in fig.axes] == ["product", "brand"]
    fig = plot_top_targets(got, {"product": {"t001": "Red mug"}})
    assert len(fig.axes) == 2


def test_row_sorted_parts_merge_to_the_sorted_keys_profile(monkeypatch):
    """The row-by-row merge (row-sorted int32/float32 parts, how build_snapshot calls it) gives
    the general path's profile exactly: same entries, same float32 sums (repeats within and
    across parts, columns some parts lack, empty rows and parts), with int32 positions and with
    the int64 ones of inputs above 2**31 entries."""
    from workbench.models import interest_merge
    from workbench.models.interest_features import RAW_COLUMNS
    from workbench.models.interest_merge import mergeable

    rng = np.random.default_rng(7)
    n, m = 400, 60

    def part(size, names, repeats):
        row = np.sort(rng.integers(0, n - 20, size)).astype(np.int32)  # the last rows: empty
        target = rng.integers(0, m, size).astype(np.int32)
        if not repeats:  # distinct (row, target) keys
            key = np.unique(row.astype(np.int64) * m + target)
            row, target = (key // m).astype(np.int32), (key % m).astype(np.int32)
        values = {k: rng.gamma(0.5, 3.0, len(row)).astype(np.float32) for k in names}
        return {"row": row, "target_idx": target, **values}

    for repeats in (False, True):
        parts = [
            part(3000, RAW_COLUMNS[:6], repeats),
            part(2500, RAW_COLUMNS[6:], repeats),
            part(900, RAW_COLUMNS[6:], True),
            part(0, RAW_COLUMNS[6:], False),
        ]
        assert mergeable(parts, n, m)
        merged = Profile.from_entries(n, m, [dict(p) for p in parts])
        # the general path: the same parts, int64 rows (not mergeable)
        wide = [{**p, "row": p["row"].astype(np.int64)} for p in parts]
        assert not mergeable(wide, n, m)
        want = Profile.from_entries(n, m, wide)
        np.testing.assert_array_equal(merged.indptr, want.indptr)
        np.testing.assert_array_equal(merged.indices, want.indices)
        assert merged.nnz > 4000
        for name in RAW_COLUMNS:
            assert merged.values[name].dtype == np.float32
            np.testing.assert_array_equal(merged.values[name], want.values[name])
        consumed = [dict(p) for p in parts]
        again = Profile.from_entries(n, m, consumed, consume=True)
        assert consumed == [{}] * 4 and again.nnz == merged.nnz
        with monkeypatch.context() as patch:
            patch.setattr(interest_merge, "INT32_POSITIONS_BELOW", 0)  # int64 positions
            wide_positions = Profile.from_entries(n, m, [dict(p) for p in parts])
        np.testing.assert_array_equal(wide_positions.indices, want.indices)
        for name in RAW_COLUMNS:
            np.testing.assert_array_equal(wide_positions.values[name], want.values[name])
    unsorted = part(100, RAW_COLUMNS[:1], True)
    unsorted["row"] = unsorted["row"][::-1].copy()
    assert not mergeable([unsorted], n, m) and not mergeable([], n, m)
    assert not mergeable([{**unsorted, "row": np.sort(unsorted["row"]) + n}], n, m)
    short = part(100, RAW_COLUMNS[:1], True)
    short[RAW_COLUMNS[0]] = short[RAW_COLUMNS[0]][:-1]
    assert not mergeable([short], n, m)  # a value column shorter than its rows
