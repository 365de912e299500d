"""The realism experiment (Marouf 2020 Figs. 1-2; ACTIVA Tables 1-2 and Figs. 2-4; Heydari 2022 Table 1 and
Fig. 5): generated cells against the real test cells, per run and per cluster, then summaries, leaderboards,
training times and figures. Rules in ``rules/realism.smk``; config section ``realism``; results under
``results/realism/``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scsynth_core import atomic
from scsynth_core.errors import ConfigError, DataError
from scsynth_core.runtime import save_figure, use_agg
from scsynth_core.steps import by_name, load_prepared, read_generated

if TYPE_CHECKING:
    from collections.abc import Sequence

    import anndata as ad

log = logging.getLogger("scsynth")


# -- evaluation -----------------------------------------------------------------------------------------------
def build_realism_representation(
    *,
    prepared: str | Path,
    split: str | Path,
    representation: str | Path,
    n_components: int = 50,
    seed: int = 0,
    kind: str = "scsynth",
) -> None:
    """Fit the realism protocol's representation for one split (Marouf 2020, Methods "Evaluation").

    ``kind`` (config ``realism.representation``): ``"scsynth"``, the PCA of log(LSN + 1) fitted on the training
    cells minus the real control's cells, so the test, generated and control cells are all outside the fit;
    ``"marouf"``, Marouf's PCA of the real test cells' 1,000 most variable genes, scaled
    (:mod:`scsynth_core.metrics.representation` has the measurements behind the default).
    """
    from scsynth_core.metrics.representation import fit_protocol_representation

    cells = load_prepared(prepared, split)
    fit_protocol_representation(cells, n_components=n_components, seed=seed, kind=kind).save(representation)


def build_marker_genes(
    *, prepared: str | Path, markers: str | Path, label_key: str = "cluster", marker_genes_per_cluster: int = 5
) -> None:
    """The top DE genes of every cluster with the clusters' sizes (:func:`scsynth_core.metrics.correlation.
    de_gene_table`), once per dataset: the gene sets of the correlation discrepancy (ACTIVA eq. 7) and of each
    heatmap (:data:`~scsynth_core.metrics.correlation.HEATMAPS`) are drawn from it."""
    from scsynth_core.metrics.correlation import de_gene_table

    table = de_gene_table(load_prepared(prepared), groupby=label_key, n_genes=marker_genes_per_cluster)
    atomic.write_tsv(markers, table)


def _marker_table(path: str | Path):
    """``markers.tsv`` as written by :func:`build_marker_genes` (clusters and genes stay text)."""
    import pandas as pd

    return pd.read_csv(path, sep="\t", dtype={"cluster": str, "gene": str}, keep_default_na=False)


def _read_markers(path: str | Path) -> list[str]:
    """The top DE genes of every cluster (the correlation discrepancy's set, ACTIVA eq. 7). A list written before
    the clusters were recorded (a ``gene`` column only) is that set already."""
    from scsynth_core.metrics.correlation import marker_genes

    table = _marker_table(path)
    return marker_genes(table) if "cluster" in table else table["gene"].tolist()


def _heatmap_genes(path: str | Path, heatmaps: Sequence[str]) -> dict[str, list[str]]:
    """``{heatmap: genes}`` of the chosen heatmaps (:data:`~scsynth_core.metrics.correlation.HEATMAPS`)."""
    from scsynth_core.metrics.correlation import HEATMAPS, marker_genes

    unknown = sorted(set(heatmaps) - set(HEATMAPS))
    if unknown:
        raise ConfigError(f"realism.heatmaps: unknown heatmap(s) {unknown}; expected some of {sorted(HEATMAPS)}")
    table = _marker_table(path)
    if "cluster" not in table and any(HEATMAPS[name]["largest"] for name in heatmaps):
        raise DataError(
            f"{path}: a marker list without clusters (written by an older version); delete it so the "
            "workflow rebuilds it with the clusters' sizes, which realism.heatmaps: [marouf] needs"
        )
    return {name: _read_markers(path) if HEATMAPS[name]["largest"] is None
            else marker_genes(table, largest=HEATMAPS[name]["largest"]) for name in heatmaps}  # fmt: skip


def _realism_of(
    real_test: ad.AnnData,
    generated: ad.AnnData,
    *,
    representation,
    genes: Sequence[str],
    n_trees: int,
    seed: int,
    threads: int,
    label_key: str | None = "cluster",
    heatmap_genes: Mapping[str, Sequence[str]] | None = None,
):
    """Every realism metric of one generated set against the real test cells: (metrics dict, ROC frame,
    ``{heatmap: correlation frame}`` for ``heatmap_genes``, each in its heatmap's expression space).

    The inception score needs cell-type labels on the real cells (``label_key``; skipped without them)."""
    from scsynth_core.metrics.correlation import HEATMAPS, correlation_discrepancy, marker_correlation_frame
    from scsynth_core.metrics.realism import realism_metrics
    from scsynth_core.metrics.summary import basic_statistics

    metrics, rf = realism_metrics(
        real_test, generated, representation=representation, n_trees=n_trees, seed=seed, n_jobs=threads,
        return_rf=True, label_key=label_key,
    )  # fmt: skip
    metrics["correlation_discrepancy"] = correlation_discrepancy(real_test, generated, genes) if genes else None
    metrics["n_marker_genes"] = len(genes)
    metrics |= basic_statistics(real_test, generated)
    heatmaps = {name: marker_correlation_frame(real_test, generated, names, space=HEATMAPS[name]["space"])
                for name, names in (heatmap_genes or {}).items()}  # fmt: skip
    return metrics, rf.roc_frame(), heatmaps


def _load_reference(representation: str | Path, markers: str | Path, heatmaps: Sequence[str] = ()):
    """The run's shared representation, the correlation discrepancy's genes and each heatmap's genes."""
    from scsynth_core.metrics.representation import SharedRepresentation

    rep = SharedRepresentation.load(representation)
    return rep, _read_markers(markers), _heatmap_genes(markers, heatmaps)


#: The realism ``metrics`` group that is the papers' panel (RF AUC/error, MMD, correlation discrepancy, inception
#: score, basic statistics); the other groups are today's metrics (:data:`scsynth_core.metrics.modern.METRICS`).
PAPERS = "papers"


def _modern_groups(metrics: Sequence[str]) -> tuple[str, ...]:
    """Today's metric groups of a realism ``metrics`` list: every group but "papers", which must be listed."""
    chosen = [metrics] if isinstance(metrics, str) else list(metrics)
    if PAPERS not in chosen:
        raise ConfigError(
            f"realism metrics {chosen}: must include '{PAPERS}' (the summary, leaderboard and figures "
            "are built on the papers' panel); list today's groups after it"
        )
    return tuple(m for m in chosen if m != PAPERS)


def _modern_of(
    real_test: ad.AnnData,
    generated: ad.AnnData,
    *,
    representation,
    metrics: Sequence[str],
    seed: int,
    label_key: str = "cluster",
) -> dict[str, float]:
    """Today's metrics of the chosen groups ({} for none) of one generated set against the real test cells.

    In the realism protocol's PCA (fitted on training cells minus the control's), so neither compared set is
    inside the fit: fitted on the real side it would make even real cells look unlike real ones
    (:mod:`scsynth_core.metrics.modern`)."""
    groups = _modern_groups(metrics)
    if not groups:
        return {}
    from scsynth_core.metrics.modern import modern_metrics

    return modern_metrics(real_test, generated, label_key=label_key if label_key in real_test.obs else None,
                          representation=representation, seed=seed, metrics=groups)  # fmt: skip


def _modern_overall(modern: dict[str, float]) -> dict[str, float | None]:
    """The overall values of today's metrics for metrics.json: no per-type keys, no second ``n_real`` and
    ``n_generated`` (the papers' panel has them, for the same cells), NaN as null (strict JSON)."""
    return {key: None if math.isnan(value) else value for key, value in modern.items()
            if "[" not in key and key not in ("n_real", "n_generated")}  # fmt: skip


def _write_realism(
    metrics,
    roc,
    heatmaps,
    *,
    output: str | Path,
    roc_out: str | Path,
    heatmap_out: Mapping[str, str | Path],
    modern: dict[str, float] | None = None,
    modern_out: str | Path | None = None,
) -> None:
    """The run's outputs (``heatmap_out``: a file per heatmap); with today's metrics, their overall values join
    metrics.json and every value (overall and per cell type) goes to ``modern_out`` as a long table
    (:func:`scsynth_core.metrics.modern.metrics_frame`)."""
    atomic.write_tsv(roc_out, roc)
    for name, path in heatmap_out.items():
        atomic.write_tsv(path, heatmaps[name], index=True)
    if modern_out is not None:
        from scsynth_core.metrics.modern import metrics_frame

        atomic.write_tsv(modern_out, metrics_frame(modern or {}))
    overall = _modern_overall(modern or {})
    atomic.write_json(output, metrics | overall)
    log.info("realism: AUC %.3f +- %.3f, MMD %.4f", metrics["rf_auc_mean"], metrics["rf_auc_sd"], metrics["mmd"])
    if overall:
        log.info("today's metrics: %s", ", ".join(f"{key} {value:.4g}" for key, value in overall.items()
                                                   if value is not None))  # fmt: skip


def evaluate_realism(
    *,
    real: str | Path,
    generated: str | Path,
    output: str | Path,
    representation: str | Path,
    markers: str | Path,
    roc: str | Path,
    heatmaps: Mapping[str, str | Path] | Sequence[str | Path] | None = None,
    heatmap_names: Sequence[str] | None = None,
    split: str | Path | None = None,
    train_benchmark: str | Path | None = None,
    n_trees: int = 1000,
    seed: int = 0,
    threads: int = 1,
    metrics: Sequence[str] = (PAPERS,),
    modern: str | Path | None = None,
) -> None:
    """Compare generated with real test cells (Marouf 2020 Fig. 1-2; ACTIVA Tables 1-2) and write the results.

    ``output``: metrics.json (RF AUC mean/sd and error, MMD, correlation discrepancy, basic statistics, training
    and generation seconds); ``roc``: per-fold ROC curves; ``heatmaps``: ``{heatmap: file}`` of marker-gene
    correlations (generated lower triangle, real upper; heatmaps as in
    :data:`~scsynth_core.metrics.correlation.HEATMAPS`, config ``realism.heatmaps``), or a list of files with their
    ``heatmap_names``. ``metrics``: "papers" plus
    any of today's groups (config ``realism.metrics``), whose overall values join metrics.json and whose
    per-cell-type values go to ``modern`` (a TSV), when given.
    """
    real_test = load_prepared(real, split, subset="test" if split is not None else None)
    fake = read_generated(generated)
    info = dict(fake.uns.get("scsynth", {}))
    identity = {"model": info.get("model", "unknown"), "generate_seconds": info.get("generation_seconds"),
                "train_seconds": _benchmark_seconds(train_benchmark), "params": info.get("params", {})}  # fmt: skip
    _score_and_write(real_test, fake, identity, representation=representation, markers=markers,
                     heatmaps=by_name({} if heatmaps is None else heatmaps, heatmap_names, what="realism heatmaps"),
                     output=output, roc=roc, n_trees=n_trees, seed=seed, threads=threads, metrics=metrics,
                     modern=modern)  # fmt: skip


def _score_and_write(
    test,
    cells,
    identity: Mapping[str, Any],
    *,
    representation,
    markers,
    heatmaps,
    output,
    roc,
    n_trees: int,
    seed: int,
    threads: int,
    metrics: Sequence[str],
    modern,
) -> None:
    """The realism protocol on ``cells`` against the real ``test`` cells, written with ``identity`` (model name,
    seconds, parameters): the one path of :func:`evaluate_realism` and :func:`evaluate_real_control`."""
    rep, genes, heatmap_genes = _load_reference(representation, markers, list(heatmaps))
    today = _modern_of(test, cells, representation=rep, metrics=metrics, seed=seed)
    values, roc_frame, heat = _realism_of(
        test, cells, representation=rep, genes=genes, n_trees=n_trees, seed=seed, threads=threads,
        heatmap_genes=heatmap_genes,
    )  # fmt: skip
    values |= identity
    _write_realism(values, roc_frame, heat, output=output, roc_out=roc, heatmap_out=heatmaps, modern=today,
                   modern_out=modern)  # fmt: skip


def evaluate_cells(
    *,
    real: str | Path,
    generated: str | Path,
    output: str | Path,
    split: str | Path | None = None,
    label_key: str | None = "cluster",
    n_trees: int = 1000,
    seed: int = 0,
    threads: int = 1,
    representation: str = "scsynth",
) -> None:
    """The realism metrics of one generated set without a workflow (the ``scsynth evaluate`` command).

    With a split, the shared PCA is the workflow's (``representation`` as ``realism.representation``: this
    project's, fitted on the training cells minus the control's, or Marouf's, fitted on the test cells; generated
    cells are compared with the real test cells). Without one, Marouf's representation is fitted on all real cells
    (as Marouf fitted it on the real cells compared), and this project's too, with a warning: then the real cells
    are inside the PCA's fit and the generated ones outside, which favours the real side (see
    :mod:`scsynth_core.metrics.representation`). The marker genes come from all real cells; without a label column
    the correlation discrepancy is skipped.
    """
    from scsynth_core.metrics.correlation import top_de_genes
    from scsynth_core.metrics.representation import (
        REPRESENTATIONS,
        fit_marouf_representation,
        fit_protocol_representation,
        fit_representation,
    )

    if representation not in REPRESENTATIONS:
        raise ConfigError(f"representation: expected one of {list(REPRESENTATIONS)}, got {representation!r}")
    cells = load_prepared(real, split)
    if split is not None:
        rep = fit_protocol_representation(cells, seed=seed, kind=representation)
    elif representation == "marouf":
        rep = fit_marouf_representation(cells, seed=seed)
    else:
        log.warning(
            "no split given: the PCA is fitted on the real cells the generated cells are compared with, "
            "which favours the real side; give --split for the unbiased protocol"
        )
        rep = fit_representation(cells, seed=seed)
    genes = top_de_genes(cells, groupby=label_key) if label_key and label_key in cells.obs else []
    real_test = cells[cells.obs["split"] == "test"].copy() if split is not None else cells
    metrics, _, _ = _realism_of(
        real_test, read_generated(generated), representation=rep, genes=genes, n_trees=n_trees, seed=seed,
        threads=threads, label_key=label_key,
    )  # fmt: skip
    atomic.write_json(output, metrics)


def evaluate_real_control(
    *,
    real: str | Path,
    split: str | Path,
    output: str | Path,
    representation: str | Path,
    markers: str | Path,
    roc: str | Path,
    heatmaps: Mapping[str, str | Path] | Sequence[str | Path] | None = None,
    heatmap_names: Sequence[str] | None = None,
    n_trees: int = 1000,
    seed: int = 0,
    threads: int = 1,
    metrics: Sequence[str] = (PAPERS,),
    modern: str | Path | None = None,
) -> None:
    """Positive control (Marouf 2020, "real vs real"): real training cells scored as if they were generated.

    The training cells held out of the shared PCA for this seed (:func:`~scsynth_core.metrics.representation.
    control_rows`: as many as the test cells, at most half the training cells), so the control, like a model's
    cells, lies outside the PCA's fit; its AUC should sit near 0.5. With Marouf's representation
    (``realism.representation: marouf``) the test cells are inside the fit and the control is not, so its AUC
    measures that advantage of the real side instead. ``metrics``, ``modern``, ``heatmaps`` and ``heatmap_names`` as in
    :func:`evaluate_realism`: the control's values of today's metrics are the ideal a model can reach.
    """
    from scsynth_core.metrics.representation import protocol_cells

    _, control, test = protocol_cells(load_prepared(real, split), seed=seed)
    identity = {"model": "real_control", "generate_seconds": None, "train_seconds": None, "params": {}}
    _score_and_write(test, control, identity, representation=representation, markers=markers,
                     heatmaps=by_name({} if heatmaps is None else heatmaps, heatmap_names, what="realism heatmaps"),
                     output=output, roc=roc, n_trees=n_trees, seed=seed, threads=threads, metrics=metrics,
                     modern=modern)  # fmt: skip


def evaluate_per_cluster_realism(
    *,
    real: str | Path,
    split: str | Path,
    representation: str | Path,
    output: str | Path,
    roc: str | Path,
    generated: str | Path | None = None,
    min_cells: int | None = None,
    n_trees: int = 1000,
    seed: int = 0,
    threads: int = 1,
    label_key: str = "cluster",
) -> None:
    """Per-cluster realism of one conditional model's cells (Marouf 2020 Fig. 2; Heydari 2022 Fig. 5): for each
    cluster, its generated cells against the same cluster's real test cells (:func:`scsynth_core.metrics.realism.
    rf_per_cluster`), in the run's shared PCA with the whole-set forest's settings.

    Without ``generated`` the real control's cells (:func:`evaluate_real_control`) take their place: the
    per-cluster chance level. ``output``: one row per cluster (skipped ones with the reason); ``roc``: the scored
    clusters' per-fold ROC curves. ``min_cells``: fewest cells of a cluster in each set (default
    :data:`~scsynth_core.metrics.realism.PER_CLUSTER_MIN_CELLS`).
    """
    from scsynth_core.metrics.realism import PER_CLUSTER_MIN_CELLS, rf_per_cluster
    from scsynth_core.metrics.representation import SharedRepresentation, protocol_cells

    if generated is None:
        _, other, test = protocol_cells(load_prepared(real, split), seed=seed)
        where = "the real control"
    else:
        test, other, where = load_prepared(real, split, subset="test"), read_generated(generated), str(generated)
    for cells, name in ((test, f"{real} (test cells)"), (other, where)):
        if label_key not in cells.obs:
            raise DataError(f"{name}: no obs['{label_key}'] column; per-cluster realism needs the cluster of every "
                            "cell (generated cells of a conditional model carry it)")  # fmt: skip
    rep = SharedRepresentation.load(representation)
    result = rf_per_cluster(
        rep.transform(test), test.obs[label_key], rep.transform(other), other.obs[label_key],
        min_cells=PER_CLUSTER_MIN_CELLS if min_cells is None else min_cells, n_trees=n_trees, seed=seed,
        n_jobs=threads,
    )  # fmt: skip
    for cluster, reason in result.skipped.items():
        log.warning("per-cluster realism of %s: cluster %s not scored: %s", where, cluster, reason)
    if not result.rf:
        log.warning("per-cluster realism of %s: no cluster has %d cells in both sets", where, result.min_cells)
    atomic.write_tsv(roc, result.roc_frame())
    atomic.write_tsv(output, result.table)
    scored = result.table[result.table["skipped"] == ""]
    log.info(
        "per-cluster realism of %s: %s",
        where,
        ", ".join(f"{c} AUC {a:.3f}" for c, a in zip(scored["cluster"], scored["rf_auc_mean"])) or "none scored",
    )


def _read_per_cluster(path: str | Path):
    """A per-cluster table as written: clusters and skip reasons stay text ("NA" is a cluster name), only the
    metrics' empty cells are missing."""
    import pandas as pd

    return pd.read_csv(
        path,
        sep="\t",
        dtype={"cluster": str, "skipped": str},
        keep_default_na=False,
        na_values={c: [""] for c in ("rf_auc_mean", "rf_auc_sd", "rf_error", "mmd")},
    )


def summarise_per_cluster(
    *, inputs: Sequence[str | Path], runs: Sequence[Mapping[str, str]], output: str | Path
) -> None:
    """Collect the runs' per-cluster tables into one TSV: dataset, model, replicate (``runs``: those of each input,
    in order), then the per-cluster columns (clusters stay text)."""
    import pandas as pd

    table = pd.concat(
        [_read_per_cluster(path).assign(**run) for path, run in _with_runs(inputs, runs)], ignore_index=True
    )
    identity = ["dataset", "model", "replicate"]
    atomic.write_tsv(output, table[identity + [c for c in table.columns if c not in identity]])


def _benchmark_seconds(path: str | Path | None) -> float | None:
    """Wall seconds from a Snakemake benchmark file (column ``s``), if there is one."""
    if path is None or not Path(path).exists():
        return None
    import pandas as pd

    return float(pd.read_csv(path, sep="\t")["s"].iloc[0])


#: Leading columns of realism summaries (issue contract); other scalar metrics follow.
SUMMARY_COLUMNS = [
    "dataset",
    "model",
    "replicate",
    "n_real",
    "n_generated",
    "rf_auc_mean",
    "rf_auc_sd",
    "rf_error",
    "mmd",
    "correlation_discrepancy",
    "train_seconds",
    "generate_seconds",
]
#: Metrics the leaderboard reports (mean and sd over replicates).
LEADERBOARD_METRICS = [
    "rf_auc_mean", "rf_error", "mmd", "correlation_discrepancy", "inception_score", "train_seconds", "generate_seconds",
]  # fmt: skip


def modern_columns() -> list[str]:
    """Columns of today's metrics in realism summaries (when ``realism.metrics`` asks for them), in group order."""
    from scsynth_core.metrics.modern import GROUP_KEYS

    return ["n_compared", *(key for keys in GROUP_KEYS.values() for key in keys)]


#: The keys of a run's identity, one mapping per input file of the summaries (the rules give them as a param).
RUN_KEYS = ("dataset", "model", "replicate")


def _with_runs(inputs: Sequence[str | Path], runs: Sequence[Mapping[str, str]]) -> list[tuple[Path, dict[str, str]]]:
    """``(file, {dataset, model, replicate})`` of each input with its run's identity (``runs``, in the same order)."""
    if len(inputs) != len(runs):
        raise ConfigError(f"{len(inputs)} input file(s) but {len(runs)} run identities: give one per file")
    pairs = []
    for path, run in zip(inputs, runs):
        if set(run) != set(RUN_KEYS):
            raise ConfigError(f"{path}: run identity {dict(run)} must have exactly the keys {list(RUN_KEYS)}")
        pairs.append((Path(path), {key: str(run[key]) for key in RUN_KEYS}))
    return pairs


def summarise_metrics(*, inputs: Sequence[str | Path], runs: Sequence[Mapping[str, str]], output: str | Path) -> None:
    """Collect ``metrics.json`` files into one TSV, one row per model and replicate.

    ``runs``: the dataset, model and replicate of each input, in order (its ``model`` replaces the one the file
    records, which is "unknown" for cells without it). Columns: the issue's
    :data:`SUMMARY_COLUMNS`, the papers' other scalars alphabetically, then today's metrics (:func:`modern_columns`)
    where the runs have them.
    """
    import pandas as pd

    rows = []
    for path, run in _with_runs(inputs, runs):
        metrics = json.loads(path.read_text())
        row = {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
        rows.append(row | run)
    frame = pd.DataFrame(rows)
    today = [c for c in modern_columns() if c in frame]
    rest = sorted(c for c in frame if c not in SUMMARY_COLUMNS and c not in today)
    atomic.write_tsv(output, frame[[c for c in SUMMARY_COLUMNS if c in frame] + rest + today])


def summarise_modern_metrics(
    *, inputs: Sequence[str | Path], runs: Sequence[Mapping[str, str]], output: str | Path
) -> None:
    """Collect the runs' tables of today's metrics (``runs``: the dataset, model and replicate of each, in order)
    into one long TSV: dataset, model, replicate, metric, cell_type ("" for overall values), value."""
    import pandas as pd

    frames = []
    for path, run in _with_runs(inputs, runs):
        # Cell types stay text ("NA" is a name); only an empty value is missing.
        frame = pd.read_csv(path, sep="\t", keep_default_na=False, na_values={"value": [""]})
        frames.append(frame.assign(**run))
    table = pd.concat(frames, ignore_index=True)
    atomic.write_tsv(output, table[["dataset", "model", "replicate", "metric", "cell_type", "value"]])


def leaderboard(*, summaries: Sequence[str | Path], output: str | Path) -> None:
    """Cross-model leaderboard: mean and sd over replicates of the main metrics (and of today's, where the runs
    have them), per dataset, sorted by AUC, with each model's AUC above its dataset's real control
    (``rf_auc_above_control``)."""
    import pandas as pd

    frame = pd.concat([pd.read_csv(path, sep="\t") for path in summaries], ignore_index=True)
    metrics = [m for m in [*LEADERBOARD_METRICS, *modern_columns()[1:]] if m in frame]
    table = frame.groupby(["dataset", "model"])[metrics].agg(["mean", "std"])
    table.columns = [f"{metric}_{stat}" for metric, stat in table.columns]
    table.insert(0, "replicates", frame.groupby(["dataset", "model"]).size())
    table = table.reset_index()
    # Every model against the real control of its dataset (Marouf's real vs real): how much more separable.
    control = table[table["model"] == "real_control"].set_index("dataset")["rf_auc_mean_mean"]
    table.insert(3, "rf_auc_above_control", table["rf_auc_mean_mean"] - table["dataset"].map(control))
    table = table.sort_values(["dataset", "rf_auc_mean_mean"], key=_abs_from_half)
    atomic.write_tsv(output, table.round(4))


def training_times(
    *,
    train_logs: Sequence[str | Path],
    runs: Sequence[Mapping[str, str]],
    output: str | Path,
    benchmarks: Sequence[str | Path] = (),
    device: str | None = None,
) -> None:
    """Training-time comparison of one dataset's runs at a common quality level (Heydari 2022, Table 1).

    ``train_logs``: the runs' ``train_log.tsv`` files, ``runs`` their dataset, model and replicate, in order;
    ``benchmarks``: their training jobs' Snakemake benchmark files, in the same order (the wall time, where one
    exists). ``device`` is recorded (same hardware).
    """
    import pandas as pd

    from scsynth_core.metrics.training_time import training_time_table

    if benchmarks and len(benchmarks) != len(train_logs):
        raise ConfigError(f"training times: {len(benchmarks)} benchmark file(s) for {len(train_logs)} training logs")
    histories, walls, identity = {}, {}, {}
    for i, (path, run) in enumerate(_with_runs(train_logs, runs)):
        key = f"{run['model']}/{run['replicate']}"
        histories[key] = pd.read_csv(path, sep="\t")
        identity[key] = run
        wall = _benchmark_seconds(benchmarks[i]) if benchmarks else None
        if wall is not None:
            walls[key] = wall
    table = training_time_table(histories, wall_seconds=walls)
    ids = pd.DataFrame([identity[run] for run in table["run"]])
    table = pd.concat([ids, table.drop(columns="run")], axis=1)
    if device is not None:
        table.insert(3, "device", device)
    atomic.write_tsv(output, table.sort_values(["seconds_to_quality", "model"]).round(4))


def _abs_from_half(column):
    # AUC ranks by distance from 0.5 (0.5 = indistinguishable from real); other sort keys stay as they are.
    return (column - 0.5).abs() if column.name == "rf_auc_mean_mean" else column


# -- figures --------------------------------------------------------------------------------------------------
#: ``realism.embedding_marker`` value that colours the marker panel by the first top DE gene of the first cluster.
AUTO_MARKER = "auto"


def dataset_embedding_marker(spec: str | Mapping[str, str], dataset: str, datasets: Sequence[str]) -> str:
    """One dataset's ``realism.embedding_marker``: a gene name or ``"auto"``, from one value for every dataset or a
    mapping dataset -> gene (datasets it leaves out get ``"auto"``; a key not in ``datasets`` is a ConfigError)."""
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - set(datasets))
        if unknown:
            raise ConfigError(f"realism.embedding_marker names dataset(s) {unknown} that realism.datasets "
                              f"{list(datasets)} does not list")  # fmt: skip
        spec = spec.get(dataset, AUTO_MARKER)
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"realism.embedding_marker for dataset '{dataset}': expected a gene name or "
                          f"'{AUTO_MARKER}', got {spec!r}")  # fmt: skip
    return spec


def _embedding_marker(marker: str, markers: str | Path, genes, *, dataset: str) -> str:
    """The gene of the marker panel: the named one, which must be among ``genes`` (the prepared data's), or for
    ``"auto"`` the first top DE gene of the first cluster."""
    if marker == AUTO_MARKER:
        return _read_markers(markers)[0]
    if marker not in set(map(str, genes)):
        raise DataError(f"realism.embedding_marker: gene '{marker}' is not among the {len(genes)} genes of dataset "
                        f"'{dataset}' (results/data/{dataset}/prepared.h5ad); name a gene it kept or use "
                        f"'{AUTO_MARKER}'")  # fmt: skip
    return marker


def plot_realism_embeddings(
    *,
    real: str | Path,
    generated: Mapping[str, str | Path] | Sequence[str | Path],
    markers: str | Path,
    outputs: Mapping[str, str | Path] | Sequence[str | Path],
    models: Sequence[str] | None = None,
    panels: Sequence[str] | None = None,
    split: str | Path | None = None,
    seed: int = 0,
    title: str = "",
    marker: str = AUTO_MARKER,
    dataset: str = "",
) -> None:
    """Co-embeddings of real test and generated cells (Marouf 2020 Fig. 1-2; ACTIVA Fig. 2-3).

    ``outputs`` maps ``"{method}_{colour}"`` (method ``umap`` or ``tsne``; colour ``set``, ``cluster`` or
    ``marker``) to a file (or is a list of files with those ``panels``; ``generated`` likewise a mapping model ->
    file or a list with its ``models``); each method is embedded once and drawn in every requested colouring. ``marker``
    colours by the gene ``marker`` (config ``realism.embedding_marker``, e.g. CD79A as in Heydari Fig. 3; a
    gene the prepared data lacks is a DataError naming it and ``dataset``) or, for ``"auto"``, by the first top DE
    gene of the first cluster.
    """
    use_agg()
    from scsynth_core.embedding import embedding_frame
    from scsynth_core.plots.embedding import plot_embedding

    real_cells = load_prepared(real, split, subset="test" if split is not None else None)
    marker = _embedding_marker(marker, markers, real_cells.var_names, dataset=dataset or str(real))
    sets = {name: read_generated(path) for name, path in by_name(generated, models, what="generated cells").items()}
    by_method: dict[str, dict[str, Path]] = {}
    for key, path in by_name(outputs, panels, what="embedding figures").items():
        method, _, colour = key.partition("_")
        by_method.setdefault(method, {})[colour] = Path(path)
    for method, files in by_method.items():
        frame = embedding_frame(real_cells, sets, seed=seed, method=method, genes=[marker])
        for colour, path in files.items():
            color_by = marker if colour == "marker" else colour
            save_figure(plot_embedding(frame, title=f"{title} ({method}, {color_by})", color_by=color_by), path)


def plot_realism_roc(
    *,
    rocs: Mapping[str, str | Path] | Sequence[str | Path],
    metrics: Mapping[str, str | Path] | Sequence[str | Path],
    output: str | Path,
    names: Sequence[str] | None = None,
    title: str = "",
) -> None:
    """ROC curves of the real-vs-generated forests, every model and the real control on one axes (``rocs`` and
    ``metrics``: run name -> file, or lists of files in the order of ``names``)."""
    use_agg()
    import pandas as pd

    from scsynth_core.plots.roc import plot_roc_comparison

    rocs, metrics = by_name(rocs, names, what="ROC tables"), by_name(metrics, names, what="metrics files")
    curves, aucs = {}, {}
    for name, path in rocs.items():
        frame = pd.read_csv(path, sep="\t")
        curves[name] = [(g["fpr"].to_numpy(), g["tpr"].to_numpy()) for _, g in frame.groupby("fold", sort=True)]
        result = json.loads(Path(metrics[name]).read_text())
        aucs[name] = (result["rf_auc_mean"], result["rf_auc_sd"])
    save_figure(plot_roc_comparison(curves, aucs, title=title), output)


def plot_per_cluster_roc(
    *,
    rocs: Mapping[str, str | Path] | Sequence[str | Path],
    tables: Mapping[str, str | Path] | Sequence[str | Path],
    output: str | Path,
    names: Sequence[str] | None = None,
    title: str = "",
) -> None:
    """Per-cluster ROC curves (Heydari 2022 Fig. 5): a panel per cluster, the conditional models (and the real
    control) side by side in it, from each run's ``per_cluster_roc.tsv`` and ``per_cluster.tsv``. Clusters in the
    order of the first table (most real cells first); a cluster is drawn when some run scored it."""
    use_agg()
    import pandas as pd

    from scsynth_core.plots.roc import plot_roc_per_cluster

    rocs = by_name(rocs, names, what="per-cluster ROC tables")
    tables = by_name(tables, names, what="per-cluster tables")
    curves: dict[str, dict[str, list]] = {}
    aucs: dict[str, dict[str, tuple[float, float]]] = {}
    for name, path in tables.items():
        table = _read_per_cluster(path)
        for row in table[table["skipped"] == ""].itertuples():
            aucs.setdefault(row.cluster, {})[name] = (float(row.rf_auc_mean), float(row.rf_auc_sd))
        frame = pd.read_csv(rocs[name], sep="\t", dtype={"cluster": str}, keep_default_na=False)
        for (cluster, _), fold in frame.groupby(["cluster", "fold"], sort=True):
            curves.setdefault(cluster, {}).setdefault(name, []).append((fold["fpr"].to_numpy(), fold["tpr"].to_numpy()))
    missing = sorted(set(curves) ^ set(aucs))
    if missing:
        raise DataError(f"per-cluster ROC: cluster(s) {missing} have ROC curves or AUCs but not both "
                        f"(tables: {', '.join(map(str, tables.values()))})")  # fmt: skip
    order = [c for c in aucs]  # first table's order (largest first), then clusters only later runs scored
    save_figure(plot_roc_per_cluster({c: curves[c] for c in order}, aucs, title=title), output)


def plot_per_cluster_embedding(
    *,
    prepared: str | Path,
    split: str | Path,
    generated: Mapping[str, str | Path] | Sequence[str | Path],
    output: str | Path,
    models: Sequence[str] | None = None,
    cluster: str = "auto",
    seed: int = 0,
    title: str = "",
) -> None:
    """t-SNE of one cluster's real test cells with each conditional model's cells of that cluster, a panel per
    model (Marouf 2020 Fig. 2). ``cluster``: a label, or ``"auto"`` = the dataset's second largest cluster
    (Marouf's PBMC cluster 2, as the augmentation target)."""
    use_agg()
    from scsynth_core.data.split import resolve_target_cluster
    from scsynth_core.embedding import embedding_frame
    from scsynth_core.plots.embedding import plot_embedding

    cells = load_prepared(prepared, split)
    if cluster == "auto" and cells.obs["cluster"].nunique() < 2:
        raise DataError(f"{prepared}: per-cluster embedding 'auto' needs two clusters to pick the second largest")
    cluster = resolve_target_cluster(cells.obs["cluster"], cluster)
    real = cells[(cells.obs["split"] == "test") & (cells.obs["cluster"].astype(str) == cluster)].copy()
    sets = {}
    for name, path in by_name(generated, models, what="generated cells").items():
        fake = read_generated(path)
        if "cluster" not in fake.obs:
            raise DataError(f"{path}: no obs['cluster'] column; the per-cluster embedding needs labelled cells")
        sets[name] = fake[fake.obs["cluster"].astype(str).to_numpy() == cluster].copy()
    if real.n_obs < 10:
        raise DataError(f"{prepared}: cluster '{cluster}' has {real.n_obs} test cells, too few to embed (10 or more; "
                        "choose another with realism.per_cluster_embedding)")  # fmt: skip
    frame = embedding_frame(real, sets, seed=seed, method="tsne", cluster_key=None)
    counts = ", ".join(f"{name} {cells.n_obs}" for name, cells in sets.items())
    save_figure(plot_embedding(frame, title=f"{title}cluster {cluster}: {real.n_obs} real test cells; {counts}"),
                 output)  # fmt: skip


def plot_correlation_heatmap(
    *,
    heatmaps: Mapping[str, str | Path] | Sequence[str | Path],
    outputs: Mapping[str, str | Path] | Sequence[str | Path],
    names: Sequence[str] | None = None,
    title: str = "",
) -> None:
    """Marker-gene correlation heatmaps of one run (Heydari 2022 Fig. 4, Marouf 2020 Fig. 1d): generated lower
    triangle, real upper triangle; ``heatmaps`` and ``outputs`` map each heatmap of
    :data:`~scsynth_core.metrics.correlation.HEATMAPS` to its correlations (TSV) and its figure (or are lists in the
    order of ``names``)."""
    use_agg()
    import pandas as pd

    from scsynth_core.metrics.correlation import HEATMAPS
    from scsynth_core.plots.heatmap import SPACE_LABELS, heatmap_title
    from scsynth_core.plots.heatmap import plot_correlation_heatmap as draw

    heatmaps = by_name(heatmaps, names, what="heatmap tables")
    for name, output in by_name(outputs, names, what="heatmap figures").items():
        frame = pd.read_csv(heatmaps[name], sep="\t", index_col=0, keep_default_na=False)
        figure = draw(frame, title=heatmap_title(name, title), cbar_label=SPACE_LABELS[HEATMAPS[name]["space"]])
        save_figure(figure, output)


def plot_leaderboard(*, summary: str | Path, output: str | Path, title: str = "") -> None:
    """Realism leaderboard figure: one panel per metric, models on x, replicate points and mean bars."""
    use_agg()
    import pandas as pd

    from scsynth_core.plots.bars import plot_leaderboard as draw

    frame = pd.read_csv(summary, sep="\t")
    metrics = [
        m for m in ("rf_auc_mean", "rf_error", "mmd", "correlation_discrepancy", "inception_score") if m in frame
    ]
    save_figure(draw(frame, metrics=metrics, references={"rf_auc_mean": 0.5, "rf_error": 0.5}, title=title), output)


def plot_modern_metrics(*, summary: str | Path, output: str | Path, title: str = "") -> None:
    """Today's metrics of one dataset as a table: models (mean over replicates) x metrics, each cell coloured by
    the model's rank in its column; the real control is shown unranked, as the ideal."""
    use_agg()
    import pandas as pd

    from scsynth_core.leaderboard import rank_columns
    from scsynth_core.metrics.modern import DIRECTIONS
    from scsynth_core.plots.leaderboard import plot_rank_table

    frame = pd.read_csv(summary, sep="\t")
    columns = [c for c in modern_columns() if c in DIRECTIONS and c in frame]
    if not columns:
        raise DataError(f"{summary}: no column of today's metrics (realism.metrics lists only 'papers')")
    table = frame.groupby("model", sort=False)[columns].mean()
    ranks = rank_columns(table, DIRECTIONS, ranked=table.index != "real_control")
    save_figure(plot_rank_table(table, ranks, title=title), output)


def plot_training_curves(
    *,
    train_logs: Mapping[str, str | Path] | Sequence[str | Path],
    output: str | Path,
    names: Sequence[str] | None = None,
    title: str = "",
) -> None:
    """Realism monitor over training time for every run of a dataset (MichiGAN Fig. 2, RF error during training):
    ``train_logs`` maps a run's name to its log, or is a list of logs in the order of ``names``."""
    use_agg()
    import pandas as pd

    from scsynth_core.plots.training import plot_training_curves as draw
    from scsynth_core.plots.training import training_curves_frame

    logs = by_name(train_logs, names, what="training logs")
    histories = {name: pd.read_csv(path, sep="\t") for name, path in logs.items()}
    save_figure(draw(training_curves_frame(histories), title=title), output)
