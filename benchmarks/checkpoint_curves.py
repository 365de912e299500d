"""Summarise ``monitor_vs_rf.py`` runs: forest AUC at each checkpoint, its recent slope, and a straight-line guess
of the training a model would need to reach its realism target.

    python benchmarks/checkpoint_curves.py benchmarks/results/realism/checkpoints

reads every ``<dataset>__<model>.json`` in the folder and writes ``TABLE.md`` and ``curves.png`` beside them.

The slope is a least-squares line through the RF AUC of the checkpoints in the last third of the run (by
generator steps) against minutes and against steps. The extrapolation continues that line to the model's target:
it is not a forecast. Training curves flatten, so the work it names is a lower bound.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT / "benchmarks" / "results" / "realism" / "checkpoints"
#: Fraction of the run (by steps) whose checkpoints the slope is fitted on (the tables call it "the last third").
LAST_FRACTION = 1 / 3


def _targets() -> dict[str, float]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from realism_grid import TARGETS

    return TARGETS


def load(folder: Path) -> list[dict]:
    """The runs in ``folder`` (``*.json`` written by monitor_vs_rf.py), each with a ``checkpoints`` DataFrame."""
    from scsynth_core.errors import DataError

    runs = []
    for path in sorted(Path(folder).glob("*.json")):
        run = json.loads(path.read_text())
        missing = {"dataset", "model", "checkpoints"} - set(run)
        if missing:
            raise DataError(f"{path}: not a monitor_vs_rf.py result (missing keys {sorted(missing)})")
        table = pd.DataFrame(run["checkpoints"])
        needed = {"step", "minutes", "monitor_auc", "rf_auc"} - set(table.columns)
        if table.empty or needed:
            raise DataError(
                f"{path}: 'checkpoints' needs rows with step, minutes, monitor_auc and rf_auc; "
                f"got {len(table)} rows, missing {sorted(needed)}"
            )
        runs.append(run | {"checkpoints": table.sort_values("step").reset_index(drop=True), "path": path})
    if not runs:
        raise DataError(f"{folder}: no monitor_vs_rf.py results (*.json)")
    return runs


def recent_slope(table: pd.DataFrame, target: float | None) -> dict:
    """RF AUC slope over the last third of the run (per minute, per 1,000 steps) and where its line meets ``target``.

    ``steps_to_target`` / ``minutes_to_target`` are totals from the start of training (not extra work); None when
    the line is flat or rising, or when there is no target; 0 extra work when the last checkpoint already meets it.
    """
    from scipy.stats import linregress

    last_step = table["step"].iloc[-1]
    recent = table[table["step"] >= last_step * (1 - LAST_FRACTION) - 1e-6]  # 1e-6: 1,200 * 2/3 is 800.0000001
    out = {
        "n_recent": len(recent),
        "first_recent_step": int(recent["step"].iloc[0]),
        "slope_per_minute": math.nan,
        "slope_per_1k_steps": math.nan,
        "stderr_per_1k_steps": math.nan,
        "steps_to_target": None,
        "minutes_to_target": None,
        "met": target is not None and table["rf_auc"].iloc[-1] <= target,
    }
    if len(recent) < 2:
        return out
    by_minute = linregress(recent["minutes"], recent["rf_auc"])
    by_steps = linregress(recent["step"] / 1000, recent["rf_auc"])
    out |= {
        "slope_per_minute": float(by_minute.slope),
        "slope_per_1k_steps": float(by_steps.slope),
        "stderr_per_1k_steps": float(by_steps.stderr),
    }
    if target is None or out["met"]:
        return out
    if by_steps.slope < 0:
        out["steps_to_target"] = float((target - by_steps.intercept) / by_steps.slope * 1000)
    if by_minute.slope < 0:
        out["minutes_to_target"] = float((target - by_minute.intercept) / by_minute.slope)
    return out


def _fmt_total(value: float | None, done: float, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f} {unit} ({value / done:.1f}x the run)"


def table_markdown(runs: list[dict], targets: dict[str, float]) -> str:
    """Summary table (one row per run) and one checkpoint table per run."""
    intro = (
        "Written by `benchmarks/checkpoint_curves.py` from the `monitor_vs_rf.py` results in this folder. "
        "RF AUC: the realism protocol's forest (real test cells, shared PCA); monitor: the training loop's "
        "kNN AUC / MMD on validation cells held out of the training split. Slope: least-squares line through "
        "the RF AUC of the checkpoints in the last third of the run's steps (by step number). **To target**: "
        "where that straight line would reach the target, as total steps / minutes from the start. It is an "
        "extrapolation of a straight line, not a forecast: curves flatten, so it is a lower bound on the "
        "work (and '-' where the line is not falling). Minutes are this machine's, monitor and checkpoint "
        "generation included."
    )
    header = (
        "| dataset | model | target | checkpoints | last step / min | RF AUC first -> last (best) "
        "| RF AUC of monitor's best | Spearman monitor AUC / MMD vs RF | RF slope / min | RF slope / 1k steps "
        "| to target: steps | to target: minutes |"
    )
    lines = ["# Forest AUC at checkpoints", "", intro, "", header, "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        t = run["checkpoints"]
        target = targets.get(run["model"])
        s = recent_slope(t, target)
        last = t.iloc[-1]
        steps_cell = "met" if s["met"] else _fmt_total(s["steps_to_target"], last["step"], "steps")
        minutes_cell = "met" if s["met"] else _fmt_total(s["minutes_to_target"], last["minutes"], "min")
        lines.append(
            f"| {run['dataset']} | {run['model']} | {'-' if target is None else f'<= {target:.2f}'} | {len(t)} "
            f"| {int(last['step']):,} / {last['minutes']:.1f} "
            f"| {t['rf_auc'].iloc[0]:.3f} -> {last['rf_auc']:.3f} ({t['rf_auc'].min():.3f}) "
            f"| {run.get('rf_auc_of_monitor_best', math.nan):.3f} "
            f"| {run.get('spearman_monitor_auc_rf_auc', math.nan):.2f} / "
            f"{run.get('spearman_monitor_mmd_rf_auc', math.nan):.2f} "
            f"| {s['slope_per_minute']:+.4f} | {s['slope_per_1k_steps']:+.3f} (se {s['stderr_per_1k_steps']:.3f}, "
            f"{s['n_recent']} pts from step {s['first_recent_step']:,}) | {steps_cell} | {minutes_cell} |"
        )
    for run in runs:
        t = run["checkpoints"]
        about = (
            f"Preset {run.get('preset', '?')}, params {run.get('params', {})}, {run.get('trees', '?')} trees; "
            f"commit {run.get('commit', '?')}; machine {json.dumps(run.get('machine', {}))}."
        )
        lines += [
            "",
            f"## {run['dataset']} / {run['model']}",
            "",
            about,
            "",
            "| step | minutes | monitor AUC | monitor MMD | RF AUC | RF MMD |",
            "|---|---|---|---|---|---|",
        ]
        for r in t.to_dict("records"):
            lines.append(
                f"| {int(r['step']):,} | {r['minutes']:.2f} | {r['monitor_auc']:.3f} "
                f"| {r.get('monitor_mmd', math.nan):.4f} | {r['rf_auc']:.3f} | {r.get('rf_mmd', math.nan):.4f} |"
            )
    return "\n".join(lines) + "\n"


def figure(runs: list[dict], targets: dict[str, float]):
    """RF AUC (markers) and monitor AUC (line) against training minutes, one panel per run, target dashed."""
    from scsynth_core.plots._style import colors_for, new_figure

    fig, axes = new_figure(1, len(runs), panel_size=(3.2, 3.0), sharey=True)
    colors = colors_for(["rf_auc", "monitor_auc"])
    for ax, run in zip(axes[0], runs):
        t = run["checkpoints"]
        ax.plot(t["minutes"], t["monitor_auc"], lw=1.2, color=colors["monitor_auc"], label="monitor kNN AUC")
        ax.plot(t["minutes"], t["rf_auc"], ls="none", marker="o", ms=4, color=colors["rf_auc"], label="RF AUC")
        if run["model"] in targets:
            ax.axhline(targets[run["model"]], ls="--", lw=0.8, color="grey", label="target")
        ax.set_title(f"{run['model']} ({run['dataset']})", fontsize="small")
        ax.set_xlabel("training minutes")
    axes[0][0].set_ylabel("AUC (0.5 = indistinguishable)")
    axes[0][0].legend(fontsize="x-small", frameon=False)
    return fig


def summarise(folder: Path) -> tuple[Path, Path]:
    """Write ``TABLE.md`` and ``curves.png`` into ``folder``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    from scsynth_core import atomic

    runs = load(folder)
    targets = _targets()
    table_path, figure_path = Path(folder) / "TABLE.md", Path(folder) / "curves.png"
    atomic.write_text(table_path, table_markdown(runs, targets))
    with atomic.atomic_path(figure_path) as tmp:
        figure(runs, targets).savefig(tmp, format="png", dpi=120)
    return table_path, figure_path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    for path in summarise(args.folder):
        print(path)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
