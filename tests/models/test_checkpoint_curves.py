"""benchmarks/checkpoint_curves.py: slope over the run's last third, straight-line extrapolation, table, figure."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import checkpoint_curves

from scsynth_core.errors import DataError


def _table(rf_auc, steps=None, steps_per_minute=120.0) -> pd.DataFrame:
    steps = np.arange(1, len(rf_auc) + 1) * 100 if steps is None else np.asarray(steps)
    return pd.DataFrame(
        {
            "step": steps,
            "minutes": steps / steps_per_minute,
            "monitor_auc": np.asarray(rf_auc) + 0.01,
            "monitor_mmd": 0.01,
            "rf_auc": rf_auc,
            "rf_mmd": 0.02,
        }
    )


def test_slope_uses_only_the_last_third_and_extrapolates_its_line():
    steps = np.arange(1, 13) * 100  # 100 .. 1,200; last third: steps >= 800 (5 checkpoints)
    rf = 1.0 - 0.05 * steps / 1000
    rf[:3] = [0.5, 0.99, 0.7]  # early noise that would bend a fit over the whole run
    s = checkpoint_curves.recent_slope(_table(rf, steps), target=0.90)
    assert s["n_recent"] == 5 and s["first_recent_step"] == 800
    assert s["slope_per_1k_steps"] == pytest.approx(-0.05)
    assert s["slope_per_minute"] == pytest.approx(-0.05 * 120 / 1000)
    assert s["steps_to_target"] == pytest.approx(2000)  # 1.0 - 0.05 * 2 = 0.90
    assert s["minutes_to_target"] == pytest.approx(2000 / 120)
    assert not s["met"]


def test_no_extrapolation_when_flat_or_rising_and_none_needed_when_met():
    rising = checkpoint_curves.recent_slope(_table(np.linspace(0.95, 0.99, 9)), target=0.90)
    assert rising["slope_per_1k_steps"] > 0
    assert rising["steps_to_target"] is None and rising["minutes_to_target"] is None
    met = checkpoint_curves.recent_slope(_table(np.linspace(0.99, 0.85, 9)), target=0.90)
    assert met["met"] and met["steps_to_target"] is None


def _write_run(folder: Path, model: str, rf) -> None:
    table = _table(rf)
    run = {
        "dataset": "toy",
        "model": model,
        "preset": "workstation",
        "params": {},
        "trees": 10,
        "commit": "abc",
        "machine": {"cpus": 2},
        "spearman_monitor_auc_rf_auc": 1.0,
        "spearman_monitor_mmd_rf_auc": 0.5,
        "rf_auc_of_monitor_best": float(min(rf)),
        "checkpoints": table.to_dict("records"),
    }
    (folder / f"toy__{model}.json").write_text(json.dumps(run))


def test_summarise_writes_table_and_one_panel_per_run(tmp_path):
    steps = np.arange(1, 13) * 100
    _write_run(tmp_path, "scgan", 1.0 - 0.05 * steps / 1000)  # reaches 0.90 at 2,000 steps (1.7x the run)
    _write_run(tmp_path, "activa", np.full(12, 0.999))
    table_path, figure_path = checkpoint_curves.summarise(tmp_path)
    text = table_path.read_text()
    scgan_row = next(line for line in text.splitlines() if line.startswith("| toy | scgan |"))
    assert "<= 0.90" in scgan_row and "2,000 steps (1.7x the run)" in scgan_row and "-0.050" in scgan_row
    activa_row = next(line for line in text.splitlines() if line.startswith("| toy | activa |"))
    assert activa_row.endswith("| - | - |")  # flat: no line to extend
    assert "## toy / scgan" in text and "| 1,200 | 10.00 |" in text
    assert figure_path.read_bytes()[:4] == b"\x89PNG"
    fig = checkpoint_curves.figure(checkpoint_curves.load(tmp_path), {"scgan": 0.9})
    assert len(fig.axes) == 2


def test_load_names_the_file_that_is_not_a_result(tmp_path):
    (tmp_path / "toy__scgan.json").write_text(json.dumps({"dataset": "toy", "model": "scgan"}))
    with pytest.raises(DataError, match=r"toy__scgan\.json.*checkpoints"):
        checkpoint_curves.load(tmp_path)
    with pytest.raises(DataError, match="no monitor_vs_rf.py results"):
        checkpoint_curves.load(tmp_path / "empty")
