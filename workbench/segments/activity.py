"""Conditions on activity: purchases, web events and Interested-In scores.

Each is evaluated as the set of customers with matching order lines, events or scores (see
:mod:`workbench.segments.compile`).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator

from workbench.segments.base import Bounds, Condition, ProductFilter, StrList, Window, _as_list

__all__ = [
    "InterestCondition",
    "NotPurchasedCondition",
    "PurchaseCondition",
    "SearchCondition",
    "SiteActivityCondition",
    "ViewCondition",
]


class PurchaseCondition(Window, ProductFilter, Condition):
    """Bought matching items (in a window, at a unit price, at least a quantity)."""

    key: ClassVar[str] = "have_purchased"
    help: ClassVar[str] = "Bought a product / category / brand / keyword, when, at what price"
    price: Bounds | None = None
    min_quantity: float = Field(1.0, gt=0)


class NotPurchasedCondition(PurchaseCondition):
    """The complement of :class:`PurchaseCondition` (same fields)."""

    key: ClassVar[str] = "have_not_purchased"
    help: ClassVar[str] = "Did not buy a product / category / brand / keyword in a window"


EventType = Literal["view", "click", "search", "cart"]


class SiteActivityCondition(Window, Condition):
    """At least ``min_count`` web events (of ``event_types``, default any) in the window."""

    key: ClassVar[str] = "active_on_site"
    help: ClassVar[str] = "Visited the site (any web event) within N days / between dates"
    event_types: tuple[EventType, ...] | None = None
    min_count: int = Field(1, ge=1)


class ViewCondition(Window, ProductFilter, Condition):
    """Viewed (or clicked / carted) matching products at least ``min_count`` times."""

    key: ClassVar[str] = "viewed"
    help: ClassVar[str] = "Viewed a product / category / brand / keyword on the site"
    event_types: Annotated[tuple[EventType, ...], BeforeValidator(_as_list)] = ("view",)
    min_count: int = Field(1, ge=1)


class SearchCondition(Window, Condition):
    """Searched for a text (case-insensitive substring of the query) at least ``min_count``."""

    key: ClassVar[str] = "searched"
    shorthand: ClassVar[str | None] = "query"
    help: ClassVar[str] = "Searched the site for a text"
    query: StrList = Field(min_length=1)
    min_count: int = Field(1, ge=1)


InterestLevel = Literal["product", "category", "brand", "keyword"]


class InterestCondition(Condition):
    """Interested In a target: a calibrated score at least ``min_score``, or in the top share.

    ``top_share: 0.05`` keeps the 5% of customers most likely to buy the target.
    """

    key: ClassVar[str] = "interested_in"
    help: ClassVar[str] = "Likely to buy a product / category / brand / keyword (Interested In)"
    level: InterestLevel
    target: str = Field(min_length=1)
    min_score: float | None = Field(None, ge=0.0, le=1.0)
    top_share: float | None = Field(None, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _one_threshold(self) -> InterestCondition:
        if (self.min_score is None) == (self.top_share is None):
            raise ValueError("give exactly one of min_score (0..1) or top_share (0..1]")
        return self
