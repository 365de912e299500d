"""Training time at a common quality level (Heydari 2022, Table 1)."""

import numpy as np
import pandas as pd
import pytest

from scsynth_core.metrics.training_time import common_quality_level, time_to_quality, training_time_table


def _history(steps, times, monitor):
    return pd.DataFrame({"step": steps, "time_s": times, "monitor_mean_distance": monitor})


@pytest.fixture
def histories():
    fast = _history([10, 20, 30], [1.0, 2.0, 3.0], [0.9, 0.5, 0.4])
    slow = _history([10, 20, 30], [5.0, 10.0, 15.0], [0.8, 0.6, 0.5])
    return {"fast/seed0": fast, "slow/seed0": slow}


def test_common_level_is_the_worst_of_the_runs_best(histories):
    assert common_quality_level(histories) == pytest.approx(0.5)


def test_time_to_quality_is_the_first_row_reaching_the_level(histories):
    assert time_to_quality(histories["fast/seed0"], 0.5) == (20.0, 2.0)
    assert time_to_quality(histories["slow/seed0"], 0.5) == (30.0, 15.0)
    assert all(np.isnan(time_to_quality(histories["slow/seed0"], 0.1)))


def test_table_ranks_runs_relative_to_the_fastest(histories):
    table = training_time_table(histories, wall_seconds={"fast/seed0": 9.0}).set_index("run")
    assert table.loc["fast/seed0", "relative_time_to_quality"] == pytest.approx(1.0)
    assert table.loc["slow/seed0", "relative_time_to_quality"] == pytest.approx(7.5)
    assert table.loc["slow/seed0", "seconds_per_step"] == pytest.approx(0.5)
    assert table.loc["fast/seed0", "train_wall_seconds"] == 9.0
    assert np.isnan(table.loc["slow/seed0", "train_wall_seconds"])


def test_untrained_control_keeps_a_row_with_nan_times(histories):
    # The upsample/noise controls log only their stored cell count, no time and no monitor.
    histories["noise/seed0"] = pd.DataFrame({"step": [0], "n_cells": [500]})
    table = training_time_table(histories).set_index("run")
    assert np.isnan(table.loc["noise/seed0", "train_loop_seconds"])
    assert np.isnan(table.loc["noise/seed0", "seconds_to_quality"])
    assert table.loc["fast/seed0", "relative_time_to_quality"] == pytest.approx(1.0)
