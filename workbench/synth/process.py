"""The planted purchase process: BG/NBD for when customers buy, Gamma-Gamma for how much.

BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"), time in days:

- a customer is born with a first purchase at ``birth`` (uniform over the first part of the
  window), with ``lambda ~ Gamma(r, rate=alpha)`` and ``p_drop ~ Beta(a, b)``;
- while active, purchases follow a Poisson process with rate ``lambda``;
- after each *repeat* purchase the customer becomes inactive with probability ``p_drop``
  (as in the model's likelihood, where a customer with no repeat purchase is alive: the first
  purchase carries no dropout chance).

Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"): ``nu ~ Gamma(q, rate=v)`` per customer
and every order value ``z ~ Gamma(p, rate=nu)``, so the mean order value is ``p / nu``.

Simulation runs in rounds over the still-active customers (numpy), never per customer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from workbench.synth.settings import SynthSettings


@dataclass(frozen=True)
class Purchases:
    """Planted customer parameters and the simulated orders of one block of customers.

    Times are days since the window start (floats); customers are block-local indices.

    Attributes
    ----------
    birth, lam, p_drop, dropout, mean_spend, price_level : np.ndarray
        Per customer; ``dropout`` is NaN for customers still alive at the end.
    order_customer, order_time, order_value : np.ndarray
        Per order, sorted by customer then time; ``order_value`` is the planted ``z`` (EUR).
    """

    birth: np.ndarray
    lam: np.ndarray
    p_drop: np.ndarray
    dropout: np.ndarray
    mean_spend: np.ndarray
    price_level: np.ndarray
    order_customer: np.ndarray
    order_time: np.ndarray
    order_value: np.ndarray

    @property
    def alive_at_end(self) -> np.ndarray:
        """Whether each customer is still active at the end of the window."""
        return np.isnan(self.dropout)


def simulate_times(
    rng: np.random.Generator,
    birth: np.ndarray,
    lam: np.ndarray,
    p_drop: np.ndarray,
    horizon: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Purchase times of a BG/NBD process, in rounds over the active customers.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream.
    birth, lam, p_drop : np.ndarray
        First-purchase time (days), purchase rate (per day) and dropout probability.
    horizon : float
        End of the observation window (days); purchases at or after it are not observed.

    Returns
    -------
    customer, time : np.ndarray
        Every purchase (including the first), sorted by customer then time.
    dropout : np.ndarray
        Time of the purchase after which the customer became inactive; NaN when alive.
    """
    n = len(birth)
    dropout = np.full(n, np.nan)
    customers, times = [np.arange(n)], [birth]
    t = birth.copy()
    active = np.arange(n)
    scale = 1.0 / np.maximum(lam, 1e-12)
    while active.size:
        nxt = t[active] + rng.exponential(scale[active])
        seen = nxt < horizon
        active, nxt = active[seen], nxt[seen]
        customers.append(active)
        times.append(nxt)
        t[active] = nxt
        drop = rng.random(active.size) < p_drop[active]
        dropout[active[drop]] = nxt[drop]
        active = active[~drop]
    customer = np.concatenate(customers)
    time = np.concatenate(times)
    order = np.lexsort((time, customer))
    return customer[order], time[order], dropout


def simulate_block(rng: np.random.Generator, n: int, days: float, s: SynthSettings) -> Purchases:
    """Draw the planted parameters and the orders of ``n`` customers.

    Parameters
    ----------
    rng : numpy.random.Generator
        The block's purchase stream.
    n : int
        Customers in the block.
    days : float
        Window length in days.
    s : SynthSettings
        Model parameters (``r, alpha, a, b, p, q, v, birth_share, spend_price_corr``).

    Returns
    -------
    Purchases
    """
    birth = rng.uniform(0.0, s.birth_share * days, n)
    lam = rng.gamma(s.r, 1.0 / s.alpha, n)
    p_drop = rng.beta(s.a, s.b, n)
    nu = rng.gamma(s.q, 1.0 / s.v, n)
    # Gaussian copula: price level correlates with the spend quantile, marginals stay exact
    spend_q = np.clip(special.gammaincc(s.q, s.v * nu), 1e-12, 1 - 1e-12)
    rho = s.spend_price_corr
    zl = rho * special.ndtri(spend_q) + np.sqrt(1 - rho**2) * rng.standard_normal(n)
    price_level = special.ndtr(zl)
    customer, time, dropout = simulate_times(rng, birth, lam, p_drop, float(days))
    value = rng.gamma(s.p, 1.0 / nu[customer])
    return Purchases(
        birth=birth,
        lam=lam,
        p_drop=p_drop,
        dropout=dropout,
        mean_spend=s.p / nu,
        price_level=price_level,
        order_customer=customer,
        order_time=time,
        order_value=value,
    )
