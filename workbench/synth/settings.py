"""Generator settings: the planted model parameters and every knob of the synthetic shop.

All times are in days. The defaults give a shop that looks real at 1M customers: about 3.5
orders and 10 order lines per customer over three years, 40% one-time buyers, 60 EUR orders and
about 5 web events per order line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

#: Keys of the BG/NBD and Gamma-Gamma parameters inside :class:`SynthSettings`.
BGNBD_KEYS = ("r", "alpha", "a", "b")
GAMMA_GAMMA_KEYS = ("p", "q", "v")


@dataclass(frozen=True)
class SynthSettings:
    """Everything that shapes the synthetic shop besides size, seed, dates and output.

    Attributes
    ----------
    r, alpha : float
        BG/NBD purchase rate heterogeneity: ``lambda ~ Gamma(shape=r, rate=alpha)``, per day.
    a, b : float
        BG/NBD dropout heterogeneity: ``p_drop ~ Beta(a, b)``; a customer becomes inactive
        with probability ``p_drop`` after each repeat purchase.
    p, q, v : float
        Gamma-Gamma spend: ``nu ~ Gamma(shape=q, rate=v)``, order value ``z ~ Gamma(shape=p,
        rate=nu)``; a customer's mean order value is ``p / nu`` (EUR).
    birth_share : float
        First purchases are uniform over the first ``birth_share`` of the window.
    spend_price_corr : float
        Gaussian-copula correlation between a customer's mean spend and price level (marginals
        stay exact), so big spenders tend to buy dearer products.
    products, brands : int
        Catalogue size (brands actually used can be fewer).
    return_rate : float
        Share of order lines returned later.
    fav_categories_mean : float
        Mean number of favourite leaf categories beyond the first (Poisson, at most 5 in all).
    second_brand_share : float
        Share of customers with a second favourite brand.
    line_mix : tuple of float
        Probabilities that an order line is drawn through the customer's favourite categories,
        favourite brands, or at random by popularity (noise); they sum to 1.
    price_noise : float
        Noise (probit scale) around the price level when picking a product in a category.
    max_candidates : int
        Most products tried when filling an order up to its value.
    browse_rate : float
        Browsing sessions per day of an average active customer (not tied to an order).
    research_sessions : float
        Mean number of research sessions in the days before each order.
    alt_views : float
        Mean number of alternative products viewed per bought line in the order's session.
    search_share : float
        Probability that a session starts with a search.
    block_size : int
        Customers per random stream (numpy ``SeedSequence`` child). Part of what a seed means:
        the data depend on seed and block size, never on how blocks are grouped in chunks.
    """

    r: float = 0.3
    alpha: float = 35.0
    a: float = 0.7
    b: float = 2.2
    p: float = 5.0
    q: float = 4.0
    v: float = 36.0
    birth_share: float = 2 / 3
    spend_price_corr: float = 0.5
    products: int = 30_000
    brands: int = 300
    return_rate: float = 0.04
    fav_categories_mean: float = 1.5
    second_brand_share: float = 0.4
    line_mix: tuple[float, float, float] = (0.55, 0.25, 0.20)
    price_noise: float = 0.6
    max_candidates: int = 16
    browse_rate: float = 0.013
    research_sessions: float = 0.6
    alt_views: float = 0.4
    search_share: float = 0.3
    block_size: int = 10_000

    def __post_init__(self) -> None:
        positive = ("r", "alpha", "a", "b", "p", "v", "browse_rate")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not self.q > 1:
            raise ValueError(f"q must be > 1 (finite mean spend), got {self.q!r}")
        if not 0 < self.birth_share <= 1:
            raise ValueError(f"birth_share must be in (0, 1], got {self.birth_share!r}")
        if not -1 < self.spend_price_corr < 1:
            raise ValueError("spend_price_corr must be in (-1, 1)")
        if not 0 <= self.return_rate < 1:
            raise ValueError(f"return_rate must be in [0, 1), got {self.return_rate!r}")
        if len(self.line_mix) != 3 or abs(sum(self.line_mix) - 1) > 1e-9:
            raise ValueError(f"line_mix must be 3 probabilities summing to 1: {self.line_mix}")
        if min(self.line_mix) < 0:
            raise ValueError(f"line_mix must not be negative: {self.line_mix}")
        if self.products < 500 or self.brands < 20:
            raise ValueError("need at least 500 products and 20 brands")
        if self.block_size < 100 or self.max_candidates < 1:
            raise ValueError("block_size must be >= 100 and max_candidates >= 1")

    @classmethod
    def build(cls, base: SynthSettings | None = None, **overrides: Any) -> SynthSettings:
        """Settings from ``base`` (default: the defaults) with ``overrides`` applied.

        ``None`` values are ignored, so callers can pass optional arguments through.

        Raises
        ------
        TypeError
            For a name that is not a setting.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"unknown synth settings: {', '.join(unknown)}")
        values = asdict(base) if base is not None else {}
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "line_mix" in values:
            values["line_mix"] = tuple(values["line_mix"])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        values = asdict(self)
        values["line_mix"] = list(self.line_mix)
        return values
