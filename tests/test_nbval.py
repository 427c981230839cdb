"""The committed notebooks run top to bottom as an analyst would (nbval, lax mode).

With their default parameters (the demo) and ``run_dir = None`` they work in the lab folder
``$WORKBENCH_OUTPUTS/lab/demo``; the test points ``WORKBENCH_OUTPUTS`` at a temp folder.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from workbench import config

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def test_notebooks_run_top_to_bottom(tmp_path):
    env = {**os.environ, "WORKBENCH_OUTPUTS": str(tmp_path / "outputs")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "-p",
            "no:cacheprovider",
            "-q",
            "--rootdir",
            str(config.NOTEBOOKS_DIR),
            str(config.NOTEBOOKS_DIR),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=config.PROJECT_DIR,
        check=False,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "passed" in proc.stdout
    assert (tmp_path / "outputs" / "lab" / "demo" / "customers.parquet").exists()
