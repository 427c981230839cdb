"""Keywords for the Interested-In model: tokenising product names and search queries.

A *term* is a lower-case word of at least three letters that is not a stop word, not a number
and not a unit or a number with a unit (``12cm``, ``500ml``, ``3pk``, ``x12``), with a light
plural folding (``mugs`` -> ``mug``, ``boxes`` -> ``box``, ``candies`` -> ``candy``). The same
function tokenises product names and search queries, so searches can be matched to targets by
shared terms (:func:`match_queries`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import sparse

#: Common English function words plus retail filler that names every kind of product.
STOP_WORDS = frozenset(
    """
    a about above after again all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers him his how i if in into is it its itself just me more
    most my no nor not now of off on once only or other our ours out over own same she should so
    some such than that the their theirs them then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you
    your yours new best top great good free sale buy shop item items product products piece
    pieces pcs pc set sets pack packs pk assorted asstd assort various mixed style design
    colour color colours colors size sizes large small medium mini big extra jumbo xl xxl
    """.split()
)

#: Unit words dropped on their own (any word holding a digit is dropped too).
UNITS = frozenset(
    """
    mm cm m km in inch inches ft g kg gr gram grams mg lb lbs oz ml cl l ltr litre litres liter
    liters gal w kw v mah gb tb mb hz x cm2 m2 dozen doz
    """.split()
)

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
MIN_LENGTH = 3
#: Words ending in "s" that are not plurals.
NOT_PLURAL = frozenset("christmas xmas canvas atlas gas bus lens dress cactus news".split())


def fold_plural(word: str) -> str:
    """Fold an English plural to its singular with a few safe suffix rules."""
    if word in NOT_PLURAL:
        return word
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str | None) -> list[str]:
    """The terms of one text, in order of appearance, without repeats.

    Parameters
    ----------
    text : str or None
        A product name or a search query.

    Returns
    -------
    list of str
        Terms (see the module docstring); empty for None or empty text.

    Examples
    --------
    >>> tokenize("SET OF 3 CAKE TINS 12cm, Pantry Design")
    ['cake', 'tin', 'pantry']
    """
    if not text:
        return []
    seen: dict[str, None] = {}
    for raw in _TOKEN.findall(str(text).lower()):
        if any(c.isdigit() for c in raw):  # numbers, numbers with units, codes
            continue
        if raw in STOP_WORDS or raw in UNITS or len(raw) < MIN_LENGTH:
            continue
        term = fold_plural(raw)
        if term in STOP_WORDS or term in UNITS or len(term) < MIN_LENGTH:
            continue
        seen.setdefault(term, None)
    return list(seen)


def term_pairs(keys: Sequence[str], texts: Iterable[str | None]) -> pd.DataFrame:
    """Explode texts into ``(key, term)`` rows, one per distinct term of each text.

    Parameters
    ----------
    keys : sequence of str
        One key per text (e.g. product ids).
    texts : iterable of str or None
        The texts.

    Returns
    -------
    pandas.DataFrame
        Columns ``key`` and ``term`` (strings).
    """
    out_keys: list[str] = []
    out_terms: list[str] = []
    for key, text in zip(keys, texts, strict=True):
        for term in tokenize(text):
            out_keys.append(key)
            out_terms.append(term)
    return pd.DataFrame({"key": out_keys, "term": out_terms}, dtype="string")


def normalise_query(text: str | None) -> str:
    """Lower-case a query and collapse its white space (the key queries are grouped by)."""
    return " ".join(str(text or "").lower().split())


def match_queries(
    queries: Sequence[str],
    target_terms: pd.DataFrame,
    n_targets: int,
    *,
    popularity: np.ndarray | None = None,
    max_targets: int = 20,
    min_overlap: float = 0.5,
    chunk_size: int = 20_000,
) -> pd.DataFrame:
    """Match search queries to targets by the terms they share.

    A query matches a target by the IDF-weighted share of the query's terms that the target
    carries. Each query keeps only its best-scoring targets (at least ``min_overlap``); when
    more than ``max_targets`` tie, the most popular are kept. The weights of one query sum to
    its best overlap, so a vague query spreads a smaller total than an exact one.

    Parameters
    ----------
    queries : sequence of str
        Normalised queries (see :func:`normalise_query`).
    target_terms : pandas.DataFrame
        Columns ``target_idx`` (int) and ``term`` (str): the terms each target carries.
    n_targets : int
        Number of targets (``target_idx`` ranges over ``0 .. n_targets - 1``).
    popularity : numpy.ndarray, optional
        Per-target popularity used to break ties (default: none, lowest index first).
    max_targets : int
        Most targets a query is matched to.
    min_overlap : float
        Smallest IDF-weighted share of the query's terms a match must cover (0..1).
    chunk_size : int
        Queries matched at once (bounds memory).

    Returns
    -------
    pandas.DataFrame
        Columns ``query`` (str), ``target_idx`` (int64), ``weight`` (float64).
    """
    empty = pd.DataFrame(
        {
            "query": pd.Series([], dtype="string"),
            "target_idx": pd.Series([], dtype="int64"),
            "weight": pd.Series([], dtype="float64"),
        }
    )
    if len(queries) == 0 or target_terms.empty:
        return empty
    vocab = pd.Index(pd.unique(target_terms["term"]))
    cols = vocab.get_indexer(target_terms["term"])
    tmat = sparse.csr_matrix(
        (np.ones(len(cols)), (target_terms["target_idx"].to_numpy(), cols)),
        shape=(n_targets, len(vocab)),
    )
    tmat.data[:] = 1.0
    df = np.asarray((tmat > 0).sum(axis=0)).ravel()
    idf = np.log((1.0 + n_targets) / (1.0 + df)) + 1.0
    pop = np.zeros(n_targets) if popularity is None else np.asarray(popularity, dtype=float)
    tie = 1e-6 * (pop / (pop.max() or 1.0))
    tmat_t = tmat.T.tocsr()
    position = {term: i for i, term in enumerate(vocab)}
    parts = []
    for start in range(0, len(queries), chunk_size):
        block = list(queries[start : start + chunk_size])
        rows, qcols, qweights = [], [], []
        for i, text in enumerate(block):
            words = tokenize(text)
            idx = np.array([position[t] for t in words if t in position], dtype=np.int64)
            if len(idx) == 0:
                continue
            w = idf[idx] / idf[idx].sum()
            # terms no target carries still count in the denominator
            w = w * len(idx) / len(words)
            rows.extend([i] * len(idx))
            qcols.extend(idx.tolist())
            qweights.extend(w.tolist())
        if not rows:
            continue
        qmat = sparse.csr_matrix((qweights, (rows, qcols)), shape=(len(block), len(vocab)))
        overlap = (qmat @ tmat_t).tocsr()
        parts.append(_best_matches(overlap, block, tie, max_targets, min_overlap))
    if not parts:
        return empty
    return pd.concat(parts, ignore_index=True)


def _best_matches(
    overlap: sparse.csr_matrix,
    queries: list[str],
    tie: np.ndarray,
    max_targets: int,
    min_overlap: float,
) -> pd.DataFrame:
    """Keep, per query row, the best-overlap targets (ties broken by popularity)."""
    coo = overlap.tocoo()
    frame = pd.DataFrame({"row": coo.row, "target_idx": coo.col, "overlap": coo.data})
    frame = frame[frame["overlap"] >= min_overlap - 1e-9]
    best = frame.groupby("row")["overlap"].transform("max")
    frame = frame[frame["overlap"] >= best - 1e-9].copy()
    frame["key"] = frame["overlap"] + tie[frame["target_idx"].to_numpy()]
    frame = frame.sort_values(["row", "key"], ascending=[True, False])
    frame = frame.groupby("row", sort=False).head(max_targets)
    count = frame.groupby("row")["target_idx"].transform("size")
    return pd.DataFrame(
        {
            "query": pd.array(np.asarray(queries, dtype=object)[frame["row"].to_numpy()], "string"),
            "target_idx": frame["target_idx"].to_numpy(dtype="int64"),
            "weight": (frame["overlap"] / count).to_numpy(dtype="float64"),
        }
    )
