"""Realism over training (MichiGAN Fig. 2 plots the RF error during training; here the loop's monitor).

Prep and drawing are separate: :func:`training_curves_frame` stacks the monitored rows of several
``train_log.tsv`` histories into one tidy frame; :func:`plot_training_curves` draws the kNN AUC and the MMD of
each run against training minutes, with 0.5 (indistinguishable) marked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scsynth_core.data.checks import require_columns
from scsynth_core.plots._style import REAL_COLOR, colors_for, finish, new_figure, styled

if TYPE_CHECKING:
    from collections.abc import Mapping

    from matplotlib.figure import Figure

#: Monitor columns drawn, with their axis labels.
CURVES = {"monitor_auc": "monitor kNN AUC (validation cells)", "monitor_mmd": "monitor MMD (validation cells)"}


def training_curves_frame(histories: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """``run``, ``step``, ``minutes`` and the monitor columns of every monitored row (runs without a monitor are
    left out)."""
    frames = []
    for run, history in histories.items():
        if "monitor_auc" not in history or not history["monitor_auc"].notna().any():
            continue
        rows = history[history["monitor_auc"].notna()]
        frames.append(
            pd.DataFrame(
                {
                    "run": run,
                    "step": rows["step"].to_numpy(),
                    "minutes": rows["time_s"].to_numpy(dtype=float) / 60.0,
                    **{c: rows[c].to_numpy(dtype=float) for c in CURVES},
                }
            )
        )
    columns = ["run", "step", "minutes", *CURVES]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


@styled
def plot_training_curves(frame: pd.DataFrame, *, title: str = "") -> Figure:
    """Monitor AUC and MMD against training minutes, one line per run (an empty frame gives a labelled blank)."""
    require_columns(frame, ["run", "minutes", *CURVES], "training curves")
    fig, axes = new_figure(1, 2, panel_size=(4.2, 3.2))
    colors = colors_for(frame["run"].unique())
    for ax, (column, label) in zip(axes[0], CURVES.items()):
        for run, rows in frame.groupby("run", sort=False):
            ax.plot(rows["minutes"], rows[column], marker="o", ms=3, lw=1.2, color=colors[run], label=run)
        ax.set_xlabel("training time (minutes)")
        ax.set_ylabel(label)
        if column == "monitor_auc":
            ax.axhline(0.5, ls="--", lw=1.0, color=REAL_COLOR, label="indistinguishable")
            ax.set_ylim(0.4, 1.02)
        elif len(frame) and np.nanmax(frame[column]) > 0:
            ax.set_yscale("symlog", linthresh=1e-3)
    if len(frame):
        axes[0][0].legend(fontsize="small", frameon=False)
    else:
        axes[0][0].text(0.5, 0.5, "no monitored run", ha="center", va="center", transform=axes[0][0].transAxes)
    return finish(fig, title)
