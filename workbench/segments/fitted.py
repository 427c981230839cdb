"""The run's fitted customer models, rebuilt from what ``metrics.json`` records.

Segment growth re-evaluates every segment as of past month ends. Features are recomputed
exactly as of each month end; labels and CLV scores that need a model fit use the models the
run fitted as of ``as_of`` (BG/NBD and Gamma-Gamma parameters, Life Cycle, Importance, Price
Sensitivity and Behaviour thresholds), read back from ``metrics.json``: fitting every model
again per month end would multiply the cost of the model step by the number of months, and it
would change the meaning of a label over the chart. Thresholds are stored rounded (4-5
decimals), so a customer exactly on a threshold can rarely get the other label;
:meth:`FittedModels.fit` refits instead, exactly, when the metrics are missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis

from workbench.models.behaviour import BehaviourModel
from workbench.models.clv import BGNBDModel, GammaGammaModel
from workbench.models.importance import ImportanceModel
from workbench.models.lifecycle import LifeCycleModel
from workbench.models.price import PriceSensitivityModel
from workbench.models.value import CustomerValueModel

__all__ = ["FittedModels"]


@dataclass
class FittedModels:
    """Fitted value and label models, ready to score and label features as of any instant.

    Attributes
    ----------
    value : CustomerValueModel
    life_cycle : LifeCycleModel
    importance : ImportanceModel
    price_sensitivity : PriceSensitivityModel
    behaviour : BehaviourModel
    price_reference : str
        ``product`` or ``category`` (what price indices compare with).
    source : str
        ``metrics.json`` or ``refit``.
    """

    value: CustomerValueModel
    life_cycle: LifeCycleModel
    importance: ImportanceModel
    price_sensitivity: PriceSensitivityModel
    behaviour: BehaviourModel
    price_reference: str = "product"
    source: str = "metrics.json"

    @property
    def behaviour_period_days(self) -> int:
        """Length of the Behaviour periods (days)."""
        return int(self.behaviour.period_days_)

    @classmethod
    def from_metrics(cls, metrics: dict[str, Any], horizon_days: int) -> FittedModels | None:
        """Rebuild from ``metrics.json`` (the 02_features layout or ``customer_models``).

        Returns None when a needed section is missing.
        """
        if "customer_models" in metrics:
            sections = metrics["customer_models"]
            clv = sections.get("clv")
        else:
            sections = metrics.get("labels", {}).get("thresholds", {})
            clv = metrics.get("clv")
        needed = ("life_cycle", "importance", "price_sensitivity", "behaviour")
        if not clv or "bgnbd" not in clv or any(k not in sections for k in needed):
            return None
        try:
            return cls(
                value=_value(clv, horizon_days),
                life_cycle=_life_cycle(sections["life_cycle"]),
                importance=_importance(sections["importance"]),
                price_sensitivity=_price(sections["price_sensitivity"]),
                behaviour=_behaviour(sections["behaviour"]),
                price_reference=sections["price_sensitivity"].get("reference", "product"),
            )
        except (KeyError, TypeError, ValueError):
            return None

    @classmethod
    def fit(
        cls,
        orders: ibis.Table,
        as_of: datetime,
        horizon_days: int,
        *,
        customers: ibis.Table | None = None,
        events: ibis.Table | None = None,
    ) -> FittedModels:
        """Fit every model again as of ``as_of`` (exact; costs one model step)."""
        from workbench.models.customers import build_customers

        built = build_customers(
            orders, as_of, horizon_days=horizon_days, customers=customers, events=events
        )
        return cls(
            value=built.value,
            life_cycle=built.life_cycle,
            importance=built.importance,
            price_sensitivity=built.price_sensitivity,
            behaviour=built.behaviour,
            price_reference=built.metrics["price_sensitivity"].get("reference", "product"),
            source="refit",
        )


def _value(clv: dict[str, Any], horizon_days: int) -> CustomerValueModel:
    model = CustomerValueModel(
        horizon_days=horizon_days,
        time_unit=clv.get("time_unit", "weeks"),
        backend=clv.get("backend", "lifetimes"),
    )
    bg = BGNBDModel(backend=model.backend)
    bg.params_ = {k: float(v) for k, v in clv["bgnbd"]["params"].items()}
    bg.kind_ = clv["bgnbd"].get("kind", "bgnbd")
    gg_info = clv["gamma_gamma"]
    gg = GammaGammaModel(backend=model.backend)
    gg.params_ = {k: float(v) for k, v in gg_info["params"].items()}
    gg.kind_ = gg_info.get("kind", "gamma_gamma")
    gg.store_mean_spend_ = float(gg_info.get("store_mean_spend", 0.0))
    model.bgnbd_, model.gamma_gamma_ = bg, gg
    return model


def _life_cycle(info: dict[str, Any]) -> LifeCycleModel:
    model = LifeCycleModel(
        just_ordered_days=int(info["just_ordered_days"]),
        prior_intervals=float(info.get("prior_intervals", 1.0)),
    )
    model.store_mean_interval_days_ = float(info["store_mean_interval_days"])
    model.store_sd_interval_days_ = float(info["store_sd_interval_days"])
    model.cv_prior_ = float(info["cv_prior"])
    return model


def _importance(info: dict[str, Any]) -> ImportanceModel:
    model = ImportanceModel(
        value_column="predicted_clv",
        vip_share=float(info.get("vip_share", 0.1)),
        loyal_cv_quantile=float(info.get("loyal_cv_quantile", 0.5)),
        min_order_days_for_cadence=int(info.get("min_order_days_for_cadence", 3)),
    )
    basis = info.get("value_basis", "predicted_clv")
    model.value_basis_ = "revenue" if basis == "revenue" else "predicted_clv"
    model.vip_threshold_ = float(info["vip_threshold"])
    model.loyal_cv_threshold_ = float(info["loyal_cv_threshold"])
    return model


def _price(info: dict[str, Any]) -> PriceSensitivityModel:
    model = PriceSensitivityModel(width_sd=float(info.get("width_sd", 1.0)))
    model.log_mean_ = float(info["log_mean"])
    model.log_sd_ = float(info["log_sd"])
    model.cheap_below_ = float(info["cheap_below"])
    model.expensive_above_ = float(info["expensive_above"])
    return model


def _behaviour(info: dict[str, Any]) -> BehaviourModel:
    model = BehaviourModel(
        z_threshold=float(info.get("z_threshold", 1.0)), min_orders=int(info.get("min_orders", 2))
    )
    model.period_days_ = int(info["period_days"])
    model.store_share_last_ = float(info["store_share_last_period"])
    return model
