"""Training-time comparison at equal quality (Heydari et al. 2022, Table 1 and Results "ACTIVA trains faster").

ACTIVA's Table 1 compares the wall time of ACTIVA, scGAN and cscGAN trained on the same data and hardware.
Raw wall times only compare like with like when the models end at a similar quality, so this table adds the
time each run needed to reach a *common* quality level: every LSN model logs scGAN's model-selection monitor
(:mod:`scsynth_core.models.monitors`, the distance between generated and real per-gene means) during
training; the common level is the best value that every compared run reaches (the largest of the runs'
minima), and a run's time to quality is the elapsed training time of its first logged row at or below it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

#: The monitor used for "equal quality" (lower is better).
QUALITY_COLUMN = "monitor_mean_distance"


def common_quality_level(histories: Mapping[str, pd.DataFrame], column: str = QUALITY_COLUMN) -> float:
    """The best monitor value that every run with the monitor reaches (max over runs of each run's minimum).

    ``nan`` when no run logged the monitor.
    """
    minima = [h[column].min() for h in histories.values() if column in h and h[column].notna().any()]
    return float(max(minima)) if minima else float("nan")


def time_to_quality(history: pd.DataFrame, level: float, column: str = QUALITY_COLUMN) -> tuple[float, float]:
    """``(step, time_s)`` of the first logged row whose monitor is ``<= level``; ``(nan, nan)`` if none."""
    if column not in history or not np.isfinite(level):
        return float("nan"), float("nan")
    reached = history.index[history[column] <= level]
    if len(reached) == 0:
        return float("nan"), float("nan")
    row = history.loc[reached[0]]
    return float(row["step"]), float(row["time_s"])


def _last_logged(history: pd.DataFrame, column: str) -> float:
    # Models that optimise nothing (the upsample/noise controls) log no time: their row reads nan.
    values = history[column].dropna() if column in history else ()
    return float(values.iloc[-1]) if len(values) else float("nan")


def training_time_table(
    histories: Mapping[str, pd.DataFrame],
    *,
    wall_seconds: Mapping[str, float] | None = None,
    column: str = QUALITY_COLUMN,
) -> pd.DataFrame:
    """One row per run (key of ``histories``): steps, training-loop time, time and steps to the common quality.

    Runs without a logged ``time_s`` (models that are not trained) keep their row with ``nan`` times.

    ``wall_seconds``: the job's wall time per run (Snakemake benchmark, start-up included), reported beside the
    loop time. ``relative_time_to_quality`` divides by the fastest run's time to quality (1 = fastest).
    """
    level = common_quality_level(histories, column)
    rows = []
    for run, history in histories.items():
        steps, loop_s = _last_logged(history, "step"), _last_logged(history, "time_s")
        step_q, time_q = time_to_quality(history, level, column)
        best = history[column].min() if column in history else float("nan")
        rows.append(
            {
                "run": run,
                "steps": steps,
                "train_loop_seconds": loop_s,
                "seconds_per_step": loop_s / steps if steps and steps > 0 else float("nan"),
                "train_wall_seconds": (wall_seconds or {}).get(run, float("nan")),
                f"best_{column}": float(best),
                "common_quality_level": level,
                "steps_to_quality": step_q,
                "seconds_to_quality": time_q,
            }
        )
    table = pd.DataFrame(rows)
    fastest = table["seconds_to_quality"].min()
    table["relative_time_to_quality"] = table["seconds_to_quality"] / fastest if fastest > 0 else float("nan")
    return table
