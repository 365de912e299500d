"""benchmarks/compare_runs.py: equal results except wall-clock time pass; one changed value or a missing file fails."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from conftest import REPO


@pytest.fixture(scope="module")
def compare_runs():
    spec = importlib.util.spec_from_file_location("compare_runs", REPO / "benchmarks/compare_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tree(root, *, auc=0.75, seconds=1.0, weights=(1.0, 2.0)):
    run = root / "realism/demo/noise/seed0"
    run.mkdir(parents=True)
    pd.DataFrame({"step": [1, 2], "loss": [0.5, 0.25], "time_s": [seconds, 2 * seconds]}).to_csv(
        run / "train_log.tsv", sep="\t", index=False
    )
    (run / "metrics.json").write_text(
        json.dumps({"rf_auc_mean": auc, "evaluate_seconds": seconds, "overhead_fraction": seconds / 10})
    )
    pd.DataFrame({"model": ["noise"], "relative_time_to_quality": [seconds]}).to_csv(
        run / "training_times.tsv", sep="\t", index=False
    )
    np.savez(run / "representation.npz", weights=np.array(weights))
    (run / "figure.png").write_bytes(str(seconds).encode())  # figures are not compared
    return root


def test_equal_results_with_other_timings_pass(compare_runs, tmp_path, capsys):
    before, after = _tree(tmp_path / "a"), _tree(tmp_path / "b", seconds=9.0)
    assert compare_runs.main([str(before), str(after)]) == 0
    assert "4 files compared, 0 problems" in capsys.readouterr().out


@pytest.mark.parametrize("change", [{"auc": 0.7500001}, {"weights": (1.0, 2.0000001)}])
def test_a_changed_value_fails_and_is_named(compare_runs, tmp_path, capsys, change):
    before, after = _tree(tmp_path / "a"), _tree(tmp_path / "b", **change)
    assert compare_runs.main([str(before), str(after)]) == 1
    assert "differs: realism/demo/noise/seed0/" in capsys.readouterr().out


def test_a_missing_file_fails_unless_ignored(compare_runs, tmp_path, capsys):
    before, after = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    (after / "realism/demo/noise/seed0/metrics.json").unlink()
    assert compare_runs.main([str(before), str(after)]) == 1
    assert "only before: realism/demo/noise/seed0/metrics.json" in capsys.readouterr().out
    assert compare_runs.main([str(before), str(after), "--ignore", "*/metrics.json"]) == 0
