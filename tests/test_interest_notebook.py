"""notebooks/02_interest.ipynb through the runner (papermill), on a small synthetic shop."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from workbench import config, runner
from workbench.params import load_params

pytestmark = pytest.mark.notebook
NOTEBOOKS = [config.NOTEBOOKS_DIR / "01_ingest.ipynb", config.NOTEBOOKS_DIR / "02_interest.ipynb"]


def test_interest_notebook_writes_scores_model_evaluation_and_metrics(tmp_path):
    from workbench.synth import SynthSettings, generate

    generate(
        800,
        4,
        tmp_path / "shop",
        days=600,
        products=3500,
        brands=40,
        progress=False,
        settings=SynthSettings(block_size=400),
    )
    params = load_params(tmp_path / "shop" / "params.yaml", ["interest.levels=[category,brand]"])
    result = runner.run(params, out_root=tmp_path / "outputs", notebooks=NOTEBOOKS)
    assert result.status == "succeeded"
    run_dir = result.run_dir

    top = pd.read_parquet(run_dir / "interest.parquet")
    assert list(top.columns) == ["customer_id", "level", "target", "score", "rank"]
    assert set(top["level"]) == {"category", "brand"}
    assert top.groupby(["customer_id", "level"]).size().eq(params.interest.top_k).all()
    assert (run_dir / "interest_model" / "brand" / "model.json").exists()

    evaluation = json.loads((run_dir / "interest_eval.json").read_text())
    assert set(evaluation["levels"]) == {"category", "brand"}
    metrics = json.loads((run_dir / "metrics.json").read_text())["interest"]
    assert metrics["evaluation_cutoff"] == evaluation["cutoff"][:10]
    for level in ("category", "brand"):
        scores = metrics["evaluation"][level]
        for subset in ("overall", "new_to_target"):
            assert scores["model"][subset]["auc"] > scores["heaviest_buyers"][subset]["auc"]
        assert metrics["fit"][level]["targets"] > 0
    for name in ("interest_scores", "interest_top_targets"):
        assert (run_dir / "figures" / f"{name}.png").exists(), name
    assert (run_dir / "interest_eval.png").exists()
