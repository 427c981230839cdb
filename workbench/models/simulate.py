"""Simulate BG/NBD purchase histories and Gamma-Gamma spends with planted parameters.

For parameter-recovery tests and benchmarks: the generative story of Fader, Hardie & Lee
(2005) drawn directly in numpy, vectorised over customers (one step per purchase).

- ``lambda ~ Gamma(r, rate alpha)``, ``p ~ Beta(a, b)``;
- from the first purchase at time 0, purchases follow a Poisson process with rate ``lambda``;
  after each *repeat* purchase the customer drops out with probability ``p`` (the first
  purchase never ends a customer, as in the BG/NBD likelihood);
- each repeat purchase has value ``z ~ Gamma(p_gg, rate nu)``, ``nu ~ Gamma(q, rate v)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def simulate_bgnbd(
    n: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: float | np.ndarray,
    *,
    future: float = 0.0,
    random_state: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Simulate repeat purchases observed over ``(0, T]`` and the window ``(T, T + future]``.

    Parameters
    ----------
    n : int
        Customers.
    r, alpha, a, b : float
        BG/NBD parameters (``alpha`` in the time unit of ``T``).
    T : float or array
        Observation length per customer (one time unit, e.g. days or weeks).
    future : float
        Length of the window after ``T`` whose purchases are counted (``future_purchases``).
    random_state : int or numpy Generator, optional
        Seed or generator of every random draw.

    Returns
    -------
    pandas.DataFrame
        frequency, recency (time of the last repeat purchase, 0 without one), T,
        future_purchases, alive_at_T (bool), and the drawn lam (rate) and p (dropout).
    """
    rng = np.random.default_rng(random_state)
    T = np.broadcast_to(np.asarray(T, dtype="float64"), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    end = T + future
    now = np.zeros(n)
    freq = np.zeros(n, dtype="int64")
    last = np.zeros(n)
    fut = np.zeros(n, dtype="int64")
    alive_at_T = np.ones(n, dtype=bool)
    active = np.flatnonzero(lam > 0)
    while active.size:
        gap = rng.exponential(1.0 / lam[active])
        t = now[active] + gap
        inside = t <= end[active]
        idx, t = active[inside], t[inside]
        before = t <= T[idx]
        freq[idx[before]] += 1
        last[idx[before]] = t[before]
        fut[idx[~before]] += 1
        now[idx] = t
        drops = rng.random(idx.size) < p[idx]
        dead = idx[drops]
        alive_at_T[dead[now[dead] <= T[dead]]] = False
        active = idx[~drops]
    return pd.DataFrame(
        {
            "frequency": freq,
            "recency": last,
            "T": T,
            "future_purchases": fut,
            "alive_at_T": alive_at_T,
            "lam": lam,
            "p": p,
        }
    )


def simulate_spend(
    frequency: np.ndarray,
    p: float,
    q: float,
    v: float,
    *,
    random_state: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Mean value of each customer's repeat purchases under Gamma-Gamma (0 without repeats).

    Parameters
    ----------
    frequency : array
        Repeat purchases per customer.
    p, q, v : float
        Gamma-Gamma parameters (``v`` in currency).
    random_state : int or numpy Generator, optional
        Seed or generator of every random draw.

    Returns
    -------
    numpy.ndarray
        Mean spend per repeat purchase (currency).
    """
    rng = np.random.default_rng(random_state)
    x = np.asarray(frequency, dtype="int64")
    nu = rng.gamma(q, 1.0 / v, size=x.size)
    # the sum of x Gamma(p, nu) values is Gamma(p x, nu)
    total = np.where(x > 0, rng.gamma(np.maximum(p * x, 1e-12), 1.0 / nu), 0.0)
    return np.where(x > 0, total / np.maximum(x, 1), 0.0)
