"""Customer models: features, CLV and churn risk, and the customer labels.

Entry points: :func:`workbench.models.customers.build_customers` (the customer table of a run),
:func:`workbench.models.evaluation.evaluate_holdout` and
:func:`workbench.models.backtest.run_backtest`. Interested-In lives in ``interest*``.
"""
