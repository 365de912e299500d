"""The workflow's steps as plain functions of paths and values.

Each Snakemake rule's script and each ``scsynth`` CLI sub-command calls exactly one of these, so both run the
same code. Steps read inputs, call the library, and write every output atomically. They know nothing about
Snakemake.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scsynth_core import _io
from scsynth_core.errors import ConfigError, DataError, ScsynthError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import anndata as ad

log = logging.getLogger("scsynth")


# -- running a step with its log ------------------------------------------------------------------------------
def run_logged(log_path: str | Path | None, func: Callable[..., Any], /, **kwargs: Any) -> None:
    """Run ``func(**kwargs)`` with stdout, stderr and logging sent to ``log_path``.

    A :class:`ScsynthError` ends the process with status 1 after writing its one-line message to the log and to
    the original stderr (so Snakemake shows it); any other exception keeps its traceback in the log.
    """
    stderr = sys.stderr
    with contextlib.ExitStack() as stack:
        if log_path is not None:
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            handle = stack.enter_context(open(log_path, "w", buffering=1))
            stack.enter_context(contextlib.redirect_stdout(handle))
            stack.enter_context(contextlib.redirect_stderr(handle))
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True
        )
        try:
            func(**kwargs)
        except ScsynthError as exc:
            log.error("%s", exc)
            print(f"scsynth error: {exc}", file=stderr)
            raise SystemExit(1) from None
        except Exception:
            log.exception("step %s failed", getattr(func, "__name__", func))  # the traceback, in the rule's log
            raise


def _set_threads(threads: int | None) -> None:
    """Use the cores the scheduler gave this job, not every core of the node."""
    if threads:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(int(threads))
        threadpool_limits(int(threads))  # BLAS/OpenMP of numpy, scipy and scikit-learn too


# -- data -----------------------------------------------------------------------------------------------------
def download_dataset(*, registry: str | Path, dataset: str, dest_dir: str | Path, progress: bool = True) -> None:
    """Download every file of a ``source: url`` dataset and write ``dest_dir/manifest.json``."""
    from scsynth_core.data.registry import fetch_dataset_files, get_dataset, load_registry

    spec = get_dataset(load_registry(registry), dataset)
    if spec["source"] != "url":
        raise ConfigError(f"{registry}: dataset '{dataset}' has source '{spec['source']}', nothing to download")
    fetch_dataset_files(dataset, spec, dest_dir, progress=progress)


def import_dataset(
    *, registry: str | Path, dataset: str, output: str | Path, manifest: str | Path | None = None, base_dir: str = "."
) -> None:
    """Build ``raw.h5ad`` (integer counts, source labels) for a registered dataset."""
    from scsynth_core.data.registry import get_dataset, load_raw_dataset, load_registry, read_manifest

    spec = get_dataset(load_registry(registry), dataset)
    files = None if manifest is None else read_manifest(manifest)
    adata = load_raw_dataset(dataset, spec, files=files, base_dir=base_dir)
    log.info("imported %s: %d cells x %d genes", dataset, adata.n_obs, adata.n_vars)
    _io.write_h5ad(output, adata)


def prepare_dataset(
    *,
    input: str | Path,
    output: str | Path,
    recipe: str,
    label_key: str | None = None,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    stream: bool = False,
    sketch_cells: int = 50_000,
    chunk_rows: int = 10_000,
) -> None:
    """Run a preparation recipe: counts in ``X``, ``obs['cluster']``; see :mod:`scsynth_core.data.preprocess`.

    ``stream``: prepare without loading the matrix (:func:`scsynth_core.data.prepare_backed.prepare_backed`:
    ``sketch_cells`` clustered in memory, ``chunk_rows`` read at a time; recipe ``marouf`` only).
    """
    from scsynth_core.data.checks import check_counts, read_h5ad
    from scsynth_core.data.preprocess import prepare

    if stream:
        from scsynth_core.data.prepare_backed import prepare_backed

        record = prepare_backed(input, output, recipe=recipe, label_key=label_key, seed=seed,
                                sketch_cells=sketch_cells, chunk_rows=chunk_rows, **dict(params or {}))
        log.info("prepared with recipe %s, streamed from %s: %s", recipe, input, record)
        return
    adata = read_h5ad(input)
    check_counts(adata.X, where=f"{input} (X)")
    prepared = prepare(adata, recipe=recipe, label_key=label_key, seed=seed, **dict(params or {}))
    log.info(
        "prepared with recipe %s: %d cells x %d genes, %d clusters",
        recipe,
        prepared.n_obs,
        prepared.n_vars,
        prepared.obs["cluster"].nunique(),
    )
    _io.write_h5ad(output, prepared)


def split_dataset(
    *,
    input: str | Path,
    output: str | Path,
    seed: int,
    test_fraction: float | None = None,
    test_cells: int | None = None,
    label_key: str = "cluster",
) -> None:
    """Write the balanced train/test split of a prepared dataset as an index file (cell, split)."""
    from scsynth_core.data.checks import check_labels, read_h5ad
    from scsynth_core.data.split import balanced_split, write_split

    adata = read_h5ad(input, backed=True)
    check_labels(adata, label_key, where=str(input))
    split = balanced_split(adata.obs[label_key], test_fraction=test_fraction, test_cells=test_cells, seed=seed)
    write_split(output, split)


def load_prepared(path: str | Path, split: str | Path | None = None, *, subset: str | None = None) -> ad.AnnData:
    """Read a prepared dataset, attach ``obs['split']`` from an index file and optionally keep one subset."""
    from scsynth_core.data.checks import read_h5ad
    from scsynth_core.data.split import apply_split, read_split

    adata = read_h5ad(path)
    if split is not None:
        adata = apply_split(adata, read_split(split))
    if subset is not None:
        if "split" not in adata.obs:
            raise ConfigError(f"{path}: selecting the '{subset}' cells needs a split file")
        adata = adata[adata.obs["split"] == subset].copy()
    return adata


# -- models ---------------------------------------------------------------------------------------------------
def train_model(
    *,
    prepared: str | Path,
    output: str | Path,
    train_log: str | Path,
    model: str,
    split: str | Path | None = None,
    preset: str = "paper",
    params: Mapping[str, Any] | None = None,
    label_key: str | None = "cluster",
    seed: int = 0,
    device: str = "auto",
    max_steps: int | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    threads: int | None = None,
    stream: bool = False,
) -> None:
    """Train one model on the training cells and save it with its training log.

    ``stream``: models that read minibatches by rows (``reads_rows``: scGAN, cscGAN) read the training cells
    from ``prepared`` on disk instead of loading them (:func:`scsynth_core.data.backed.open_cells`); the others
    load them as usual.
    """
    _set_threads(threads)
    from scsynth_core.data.backed import open_cells
    from scsynth_core.models import get_model_class
    from scsynth_core.models.training import history_frame

    klass = get_model_class(model)
    instance = klass(preset, **dict(params or {}))  # checks preset and hyperparameters before reading data
    subset = "train" if split is not None else None
    if stream and klass.reads_rows:
        adata = open_cells(prepared, split, subset=subset)
    else:
        if stream:
            log.warning("%s reads its training cells into memory (only scgan and cscgan stream from disk)", model)
        adata = load_prepared(prepared, split, subset=subset)
    use_labels = label_key if (klass.conditional or klass.labels_optional) else None
    t0 = time.perf_counter()
    try:
        history = instance.fit(
            adata,
            label_key=use_labels,
            seed=seed,
            device=device,
            max_steps=max_steps,
            progress=progress,
            checkpoint=checkpoint,
        )
    finally:
        if hasattr(adata, "close"):  # cells read from disk hold the file open
            adata.close()
    log.info("trained %s on %d cells in %.1f s", model, adata.n_obs, time.perf_counter() - t0)
    _io.write_tsv(train_log, history_frame(history))
    instance.save(output)
    if checkpoint is not None:
        Path(checkpoint).unlink(missing_ok=True)


def parse_label_counts(text: str) -> dict[str, int]:
    """``"B=100,T=50"`` -> ``{"B": 100, "T": 50}`` (the CLI's ``--labels``)."""
    out: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        label, sep, count = item.rpartition("=")
        if not sep or not label or not count.isdigit():
            raise ConfigError(f"--labels: expected LABEL=COUNT[,LABEL=COUNT...], got '{item}'")
        out[label] = int(count)
    return out


def generate_cells(
    *,
    model: str | Path,
    output: str | Path,
    n_cells: int | None = None,
    labels: Mapping[str, int] | Sequence[str] | None = None,
    like: str | Path | None = None,
    like_split: str | Path | None = None,
    like_subset: str | None = None,
    target: str | None = None,
    target_of: str | Path | None = None,
    seed: int = 0,
    device: str = "auto",
    batch_size: int = 10_000,
    threads: int | None = None,
) -> None:
    """Generate cells from a saved model.

    The number of cells is ``n_cells``, or the size of a reference set (``like`` + optional split/subset, e.g.
    the test cells). Conditional models given a reference set generate its label composition, except models
    whose labelled cells are filtered holistic samples (ACTIVA), which generate holistically. ``target`` (a
    cluster, or ``"auto"`` = the second largest cluster of the prepared dataset ``target_of``) asks for
    ``n_cells`` cells of that one cluster, as the augmentation experiment does.
    """
    from scsynth_core.models import load_model

    _set_threads(threads)
    instance = load_model(model, device=device)
    if like is not None:
        reference = load_prepared(like, like_split, subset=like_subset)
        n_cells = reference.n_obs
        imposes_labels = instance.categories is not None and not instance.labels_by_filtering
        if labels is None and imposes_labels and instance.label_key in reference.obs:
            wanted = reference.obs[instance.label_key].astype(str)
            known = set(instance.categories)
            labels = [label for label in wanted if label in known]
            n_cells = len(labels)
    if target is not None:
        from scsynth_core.data.checks import read_h5ad
        from scsynth_core.data.split import resolve_target_cluster

        if target == "auto":
            target = resolve_target_cluster(read_h5ad(target_of, backed=True).obs["cluster"])
        if n_cells is None:
            raise ConfigError(f"generate: target '{target}' needs n_cells (how many cells of it to generate)")
        labels = {str(target): n_cells}  # checked by the model: 2.5 is an error, not 2 cells
    if n_cells is None and labels is not None:
        n_cells = sum(labels.values()) if isinstance(labels, Mapping) else len(labels)
    if n_cells is None:
        raise ConfigError("generate: give n_cells, labels or a reference dataset (like=...)")
    # Streamed to disk chunk by chunk: memory stays bounded by batch_size cells whatever n_cells is.
    t0 = time.perf_counter()
    elapsed = instance.sample_to_h5ad(output, n_cells, labels=labels, seed=seed, batch_size=batch_size, progress=True)
    log.info(
        "generated %d cells in %.2f s (%.0f cells/s), %.2f s with writing",
        n_cells, elapsed, n_cells / max(elapsed, 1e-9), time.perf_counter() - t0,
    )


# -- evaluation -----------------------------------------------------------------------------------------------
def build_realism_representation(
    *,
    prepared: str | Path,
    split: str | Path,
    representation: str | Path,
    n_components: int = 50,
    seed: int = 0,
) -> None:
    """Fit the realism protocol's PCA of log(LSN + 1) for one split (Marouf 2020, Methods "Evaluation").

    Fitted on the training cells minus the real control's cells, so the test, generated and control cells are all
    outside the fit (:mod:`scsynth_core.metrics.representation` has the measurements behind this choice).
    """
    from scsynth_core.metrics.representation import fit_protocol_representation

    cells = load_prepared(prepared, split)
    fit_protocol_representation(cells, n_components=n_components, seed=seed).save(representation)


def build_marker_genes(
    *, prepared: str | Path, markers: str | Path, label_key: str = "cluster", marker_genes_per_cluster: int = 5
) -> None:
    """The top DE genes of every cluster (ACTIVA eq. 7), once per dataset."""
    import pandas as pd

    from scsynth_core.metrics.correlation import top_de_genes

    genes = top_de_genes(load_prepared(prepared), groupby=label_key, n_genes=marker_genes_per_cluster)
    _io.write_tsv(markers, pd.DataFrame({"gene": genes}))


def _read_generated(path: str | Path) -> ad.AnnData:
    """Generated cells on the count/LSN scale the evaluations project from (log1p outputs mapped back)."""
    from scsynth_core.data.checks import read_h5ad
    from scsynth_core.data.preprocess import expression_scale

    return expression_scale(read_h5ad(path))


def _read_markers(path: str | Path) -> list[str]:
    import pandas as pd

    return pd.read_csv(path, sep="\t")["gene"].astype(str).tolist()


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
):
    """Every realism metric of one generated set against the real test cells: (metrics dict, ROC frame, heatmap).

    The inception score needs cell-type labels on the real cells (``label_key``; skipped without them)."""
    from scsynth_core.metrics.correlation import correlation_discrepancy, marker_correlation_frame
    from scsynth_core.metrics.realism import realism_metrics
    from scsynth_core.metrics.summary import basic_statistics

    metrics, rf = realism_metrics(
        real_test, generated, representation=representation, n_trees=n_trees, seed=seed, n_jobs=threads,
        return_rf=True, label_key=label_key,
    )  # fmt: skip
    metrics["correlation_discrepancy"] = correlation_discrepancy(real_test, generated, genes) if genes else None
    metrics["n_marker_genes"] = len(genes)
    metrics |= basic_statistics(real_test, generated)
    heatmap = marker_correlation_frame(real_test, generated, genes) if genes else None
    return metrics, rf.roc_frame(), heatmap


def _load_reference(representation: str | Path, markers: str | Path):
    from scsynth_core.metrics.representation import SharedRepresentation

    return SharedRepresentation.load(representation), _read_markers(markers)


#: The realism ``metrics`` group that is the papers' panel (RF AUC/error, MMD, correlation discrepancy, inception
#: score, basic statistics); the other groups are today's metrics (:data:`scsynth_core.metrics.modern.METRICS`).
PAPERS = "papers"


def _modern_groups(metrics: Sequence[str]) -> tuple[str, ...]:
    """Today's metric groups of a realism ``metrics`` list: every group but "papers", which must be listed."""
    chosen = [metrics] if isinstance(metrics, str) else list(metrics)
    if PAPERS not in chosen:
        raise ConfigError(f"realism metrics {chosen}: must include '{PAPERS}' (the summary, leaderboard and figures "
                          "are built on the papers' panel); list today's groups after it")
    return tuple(m for m in chosen if m != PAPERS)


def _modern_of(real_test: ad.AnnData, generated: ad.AnnData, *, representation, metrics: Sequence[str], seed: int,
               label_key: str = "cluster") -> dict[str, float]:
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
    metrics, roc, heatmap, *, output: str | Path, roc_out: str | Path, heatmap_out: str | Path,
    modern: dict[str, float] | None = None, modern_out: str | Path | None = None,
) -> None:
    """The run's outputs; with today's metrics, their overall values join metrics.json and every value (overall and
    per cell type) goes to ``modern_out`` as a long table (:func:`scsynth_core.metrics.modern.metrics_frame`)."""
    _io.write_tsv(roc_out, roc)
    _io.write_tsv(heatmap_out, heatmap, index=True)  # the reference rule always provides marker genes
    if modern_out is not None:
        from scsynth_core.metrics.modern import metrics_frame

        _io.write_tsv(modern_out, metrics_frame(modern or {}))
    overall = _modern_overall(modern or {})
    _io.write_json(output, metrics | overall)
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
    heatmap: str | Path,
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
    and generation seconds); ``roc``: per-fold ROC curves; ``heatmap``: marker-gene correlations (generated lower
    triangle, real upper). ``metrics``: "papers" plus any of today's groups (config ``realism.metrics``), whose
    overall values join metrics.json and whose per-cell-type values go to ``modern`` (a TSV), when given.
    """
    real_test = load_prepared(real, split, subset="test" if split is not None else None)
    fake = _read_generated(generated)
    rep, genes = _load_reference(representation, markers)
    today = _modern_of(real_test, fake, representation=rep, metrics=metrics, seed=seed)
    values, roc_frame, heat = _realism_of(
        real_test, fake, representation=rep, genes=genes, n_trees=n_trees, seed=seed, threads=threads
    )
    info = dict(fake.uns.get("scsynth", {}))
    values["model"] = info.get("model", "unknown")
    values["generate_seconds"] = info.get("generation_seconds")
    values["train_seconds"] = _benchmark_seconds(train_benchmark)
    values["params"] = info.get("params", {})
    _write_realism(values, roc_frame, heat, output=output, roc_out=roc, heatmap_out=heatmap, modern=today,
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
) -> None:
    """The realism metrics of one generated set without a workflow (the ``scsynth evaluate`` command).

    With a split, the shared PCA is the workflow's (training cells minus the control's; generated cells are
    compared with the real test cells); without one it is fitted on all real cells, which the generated cells are
    compared with: then the real cells are inside the PCA's fit and the generated ones outside, which favours the
    real side (see :mod:`scsynth_core.metrics.representation`), and a warning says so. The marker genes come from
    all real cells; without a label column the correlation discrepancy is skipped.
    """
    from scsynth_core.metrics.correlation import top_de_genes
    from scsynth_core.metrics.representation import fit_protocol_representation, fit_representation

    cells = load_prepared(real, split)
    if split is not None:
        rep = fit_protocol_representation(cells, seed=seed)
    else:
        log.warning("no split given: the PCA is fitted on the real cells the generated cells are compared with, "
                    "which favours the real side; give --split for the unbiased protocol")
        rep = fit_representation(cells, seed=seed)
    genes = top_de_genes(cells, groupby=label_key) if label_key and label_key in cells.obs else []
    real_test = cells[cells.obs["split"] == "test"].copy() if split is not None else cells
    metrics, _, _ = _realism_of(
        real_test, _read_generated(generated), representation=rep, genes=genes, n_trees=n_trees, seed=seed,
        threads=threads, label_key=label_key,
    )  # fmt: skip
    _io.write_json(output, metrics)


def evaluate_real_control(
    *,
    real: str | Path,
    split: str | Path,
    output: str | Path,
    representation: str | Path,
    markers: str | Path,
    roc: str | Path,
    heatmap: str | Path,
    n_trees: int = 1000,
    seed: int = 0,
    threads: int = 1,
    metrics: Sequence[str] = (PAPERS,),
    modern: str | Path | None = None,
) -> None:
    """Positive control (Marouf 2020, "real vs real"): real training cells scored as if they were generated.

    The training cells held out of the shared PCA for this seed (:func:`~scsynth_core.metrics.representation.
    control_rows`: as many as the test cells, at most half the training cells), so the control, like a model's
    cells, lies outside the PCA's fit; its AUC should sit near 0.5. ``metrics`` and ``modern`` as in
    :func:`evaluate_realism`: the control's values of today's metrics are the ideal a model can reach.
    """
    from scsynth_core.metrics.representation import protocol_cells

    _, control, test = protocol_cells(load_prepared(real, split), seed=seed)
    rep, genes = _load_reference(representation, markers)
    today = _modern_of(test, control, representation=rep, metrics=metrics, seed=seed)
    values, roc_frame, heat = _realism_of(
        test, control, representation=rep, genes=genes, n_trees=n_trees, seed=seed, threads=threads
    )
    values |= {"model": "real_control", "generate_seconds": None, "train_seconds": None, "params": {}}
    _write_realism(values, roc_frame, heat, output=output, roc_out=roc, heatmap_out=heatmap, modern=today,
                   modern_out=modern)  # fmt: skip


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
        test, other, where = load_prepared(real, split, subset="test"), _read_generated(generated), str(generated)
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
    _io.write_tsv(roc, result.roc_frame())
    _io.write_tsv(output, result.table)
    scored = result.table[result.table["skipped"] == ""]
    log.info("per-cluster realism of %s: %s", where,
             ", ".join(f"{c} AUC {a:.3f}" for c, a in zip(scored["cluster"], scored["rf_auc_mean"])) or "none scored")


def _read_per_cluster(path: str | Path):
    """A per-cluster table as written: clusters and skip reasons stay text ("NA" is a cluster name), only the
    metrics' empty cells are missing."""
    import pandas as pd

    return pd.read_csv(path, sep="\t", dtype={"cluster": str, "skipped": str}, keep_default_na=False,
                       na_values={c: [""] for c in ("rf_auc_mean", "rf_auc_sd", "rf_error", "mmd")})


def summarise_per_cluster(*, inputs: Sequence[str | Path], output: str | Path) -> None:
    """Collect the runs' per-cluster tables (``.../{dataset}/{model}/{replicate}/per_cluster.tsv``) into one TSV:
    dataset, model, replicate, then the per-cluster columns (clusters stay text)."""
    import pandas as pd

    table = pd.concat([_read_per_cluster(path).assign(**_run_identity(Path(path))) for path in inputs],
                      ignore_index=True)
    identity = ["dataset", "model", "replicate"]
    _io.write_tsv(output, table[identity + [c for c in table.columns if c not in identity]])


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


def _run_identity(path: Path) -> dict[str, str]:
    """Dataset, model and replicate of a run's file ``.../{dataset}/{model}/{replicate}/<file>``."""
    replicate, model, dataset = (p.name for p in path.parents[:3])
    return {"dataset": dataset, "model": model, "replicate": replicate}


def summarise_metrics(*, inputs: Sequence[str | Path], output: str | Path) -> None:
    """Collect ``metrics.json`` files into one TSV, one row per model and replicate.

    Run identity comes from the path ``.../{dataset}/{model}/{replicate}/metrics.json``. Columns: the issue's
    :data:`SUMMARY_COLUMNS`, the papers' other scalars alphabetically, then today's metrics (:func:`modern_columns`)
    where the runs have them.
    """
    import pandas as pd

    rows = []
    for path in map(Path, inputs):
        metrics = json.loads(path.read_text())
        row = {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
        rows.append(row | _run_identity(path))
    frame = pd.DataFrame(rows)
    today = [c for c in modern_columns() if c in frame]
    rest = sorted(c for c in frame if c not in SUMMARY_COLUMNS and c not in today)
    _io.write_tsv(output, frame[[c for c in SUMMARY_COLUMNS if c in frame] + rest + today])


def summarise_modern_metrics(*, inputs: Sequence[str | Path], output: str | Path) -> None:
    """Collect the runs' tables of today's metrics (``.../{dataset}/{model}/{replicate}/modern_metrics.tsv``) into
    one long TSV: dataset, model, replicate, metric, cell_type ("" for overall values), value."""
    import pandas as pd

    frames = []
    for path in map(Path, inputs):
        # Cell types stay text ("NA" is a name); only an empty value is missing.
        frame = pd.read_csv(path, sep="\t", keep_default_na=False, na_values={"value": [""]})
        frames.append(frame.assign(**_run_identity(path)))
    table = pd.concat(frames, ignore_index=True)
    _io.write_tsv(output, table[["dataset", "model", "replicate", "metric", "cell_type", "value"]])


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
    _io.write_tsv(output, table.round(4))


def training_times(
    *, train_logs: Sequence[str | Path], output: str | Path, device: str | None = None
) -> None:
    """Training-time comparison of one dataset's runs at a common quality level (Heydari 2022, Table 1).

    ``train_logs``: ``.../{dataset}/{model}/{replicate}/train_log.tsv`` files; the job's wall time is read from
    the ``train_benchmark.tsv`` beside each one when it exists. ``device`` is recorded (same hardware).
    """
    import pandas as pd

    from scsynth_core.metrics.training_time import training_time_table

    histories, walls, identity = {}, {}, {}
    for path in map(Path, train_logs):
        replicate, model, dataset = (p.name for p in path.parents[:3])
        key = f"{model}/{replicate}"
        histories[key] = pd.read_csv(path, sep="\t")
        identity[key] = {"dataset": dataset, "model": model, "replicate": replicate}
        wall = _benchmark_seconds(path.parent / "train_benchmark.tsv")
        if wall is not None:
            walls[key] = wall
    table = training_time_table(histories, wall_seconds=walls)
    ids = pd.DataFrame([identity[run] for run in table["run"]])
    table = pd.concat([ids, table.drop(columns="run")], axis=1)
    if device is not None:
        table.insert(3, "device", device)
    _io.write_tsv(output, table.sort_values(["seconds_to_quality", "model"]).round(4))


def _abs_from_half(column):
    # AUC ranks by distance from 0.5 (0.5 = indistinguishable from real); other sort keys stay as they are.
    return (column - 0.5).abs() if column.name == "rf_auc_mean_mean" else column


# -- augmentation (Marouf 2020 Fig. 3; Heydari 2022 Fig. 6) ------------------------------------------------------
def downsample_dataset(
    *,
    prepared: str | Path,
    split: str | Path,
    outputs: Mapping[float, str | Path],
    target: str = "auto",
    seed: int = 0,
) -> None:
    """Write one split file per kept fraction of the target cluster's training cells (nested levels)."""
    from scsynth_core.data.checks import read_h5ad
    from scsynth_core.data.split import downsampled_splits, read_split, resolve_target_cluster, write_split

    labels = read_h5ad(prepared, backed=True).obs["cluster"].astype(str)
    cluster = resolve_target_cluster(labels, target)
    splits = downsampled_splits(read_split(split), labels, cluster=cluster, levels=list(outputs), seed=seed)
    for level, series in splits.items():
        write_split(outputs[level], series)
    log.info("downsampled cluster %s to %s", cluster, ", ".join(f"{k:g}" for k in outputs))


def evaluate_augmentation(
    *,
    prepared: str | Path,
    split: str | Path,
    generated: Mapping[str, str | Path],
    output: str | Path,
    fraction: float,
    seed: int,
    target: str = "auto",
    n_extra: int = 5000,
    sweep: Sequence[int] = (),
    compare_with: Sequence[str] = (),
    n_trees: int = 1000,
    threads: int = 1,
) -> None:
    """F1 of the target cluster for the downsampled, upsampled and augmented classifiers (Marouf 2020 Fig. 3).

    The PCA (50 components, log(LSN + 1)) is fitted on the downsampled training cells only; test cells and
    generated cells are projected. Rows: ``variant``, ``source`` (real or the model), ``comparison`` (rest or a
    named cluster), ``f1``, ``n_extra``, plus ``fraction`` and ``seed``. ``sweep`` adds augmented rows for
    other numbers of generated cells (Marouf: 100 to 12,000).
    """
    import pandas as pd

    from scsynth_core.data.split import resolve_target_cluster
    from scsynth_core.metrics.augmentation import augmentation_f1, augmentation_protocol
    from scsynth_core.metrics.representation import fit_representation

    cells = load_prepared(prepared, split)
    cluster = resolve_target_cluster(cells.obs["cluster"], target)
    train = cells[cells.obs["split"] == "train"].copy()
    test = cells[cells.obs["split"] == "test"].copy()
    rep = fit_representation(train, seed=seed)
    train_pcs, test_pcs = rep.transform(train), rep.transform(test)
    train_y, test_y = train.obs["cluster"].astype(str).to_numpy(), test.obs["cluster"].astype(str).to_numpy()
    gen_pcs = {name: rep.transform(_read_generated(path)) for name, path in generated.items()}
    common = {"target": cluster, "n_trees": n_trees, "seed": seed, "n_jobs": threads,
              "compare_with": list(compare_with)}
    frame = augmentation_protocol(train_pcs, train_y, test_pcs, test_y, generated_pcs=gen_pcs, n_extra=n_extra, **common)
    rows = [frame]
    for n in sorted(set(sweep) - {n_extra}):
        for name, pcs in gen_pcs.items():
            extra = pcs[: min(n, len(pcs))]
            scores = augmentation_f1(train_pcs, train_y, test_pcs, test_y, extra_pcs=extra, **common)
            rows.append(
                pd.DataFrame(
                    {"variant": "augmented", "source": name, "comparison": list(scores), "f1": list(scores.values()),
                     "n_extra": len(extra), "n_target_train": int((train_y == cluster).sum())}
                )
            )  # fmt: skip
    result = pd.concat(rows, ignore_index=True).assign(fraction=fraction, seed=seed, target=cluster)
    _io.write_tsv(output, result)


def concat_tables(*, inputs: Sequence[str | Path], output: str | Path) -> None:
    """Concatenate TSV tables with the same columns (e.g. per-replicate F1 tables into one)."""
    import pandas as pd

    _io.write_tsv(output, pd.concat([pd.read_csv(p, sep="\t") for p in inputs], ignore_index=True))


# -- figures --------------------------------------------------------------------------------------------------
def _save_figure(fig, output: str | Path) -> None:
    """Save a Figure atomically (format from the suffix) and free it."""
    import matplotlib.pyplot as plt

    with _io.atomic_path(output) as tmp:
        fig.savefig(tmp, dpi=150, format=Path(output).suffix.lstrip(".") or "png", bbox_inches="tight")
    plt.close(fig)


def _use_agg() -> None:
    import matplotlib

    matplotlib.use("Agg")


def plot_realism_embeddings(
    *,
    real: str | Path,
    generated: Mapping[str, str | Path],
    markers: str | Path,
    outputs: Mapping[str, str | Path],
    split: str | Path | None = None,
    seed: int = 0,
    title: str = "",
) -> None:
    """Co-embeddings of real test and generated cells (Marouf 2020 Fig. 1-2; ACTIVA Fig. 2-3).

    ``outputs`` maps ``"{method}_{colour}"`` (method ``umap`` or ``tsne``; colour ``set``, ``cluster`` or
    ``marker``) to a file; each method is embedded once and drawn in every requested colouring. ``marker``
    colours by the first marker gene of the dataset.
    """
    _use_agg()
    from scsynth_core.plots.embedding import embedding_frame, plot_embedding

    real_cells = load_prepared(real, split, subset="test" if split is not None else None)
    sets = {name: _read_generated(path) for name, path in generated.items()}
    marker = _read_markers(markers)[0]
    by_method: dict[str, dict[str, Path]] = {}
    for key, path in outputs.items():
        method, _, colour = key.partition("_")
        by_method.setdefault(method, {})[colour] = Path(path)
    for method, files in by_method.items():
        frame = embedding_frame(real_cells, sets, seed=seed, method=method, genes=[marker])
        for colour, path in files.items():
            color_by = marker if colour == "marker" else colour
            _save_figure(plot_embedding(frame, title=f"{title} ({method}, {color_by})", color_by=color_by), path)


def plot_realism_roc(
    *, rocs: Mapping[str, str | Path], metrics: Mapping[str, str | Path], output: str | Path, title: str = ""
) -> None:
    """ROC curves of the real-vs-generated forests, every model and the real control on one axes."""
    _use_agg()
    import pandas as pd

    from scsynth_core.plots.roc import plot_roc_comparison

    curves, aucs = {}, {}
    for name, path in rocs.items():
        frame = pd.read_csv(path, sep="\t")
        curves[name] = [(g["fpr"].to_numpy(), g["tpr"].to_numpy()) for _, g in frame.groupby("fold", sort=True)]
        result = json.loads(Path(metrics[name]).read_text())
        aucs[name] = (result["rf_auc_mean"], result["rf_auc_sd"])
    _save_figure(plot_roc_comparison(curves, aucs, title=title), output)


def plot_per_cluster_roc(
    *, rocs: Mapping[str, str | Path], tables: Mapping[str, str | Path], output: str | Path, title: str = ""
) -> None:
    """Per-cluster ROC curves (Heydari 2022 Fig. 5): a panel per cluster, the conditional models (and the real
    control) side by side in it, from each run's ``per_cluster_roc.tsv`` and ``per_cluster.tsv``. Clusters in the
    order of the first table (most real cells first); a cluster is drawn when some run scored it."""
    _use_agg()
    import pandas as pd

    from scsynth_core.plots.roc import plot_roc_per_cluster

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
    _save_figure(plot_roc_per_cluster({c: curves[c] for c in order}, aucs, title=title), output)


def plot_per_cluster_embedding(
    *,
    prepared: str | Path,
    split: str | Path,
    generated: Mapping[str, str | Path],
    output: str | Path,
    cluster: str = "auto",
    seed: int = 0,
    title: str = "",
) -> None:
    """t-SNE of one cluster's real test cells with each conditional model's cells of that cluster, a panel per
    model (Marouf 2020 Fig. 2). ``cluster``: a label, or ``"auto"`` = the dataset's second largest cluster
    (Marouf's PBMC cluster 2, as the augmentation target)."""
    _use_agg()
    from scsynth_core.data.split import resolve_target_cluster
    from scsynth_core.plots.embedding import embedding_frame, plot_embedding

    cells = load_prepared(prepared, split)
    if cluster == "auto" and cells.obs["cluster"].nunique() < 2:
        raise DataError(f"{prepared}: per-cluster embedding 'auto' needs two clusters to pick the second largest")
    cluster = resolve_target_cluster(cells.obs["cluster"], cluster)
    real = cells[(cells.obs["split"] == "test") & (cells.obs["cluster"].astype(str) == cluster)].copy()
    sets = {}
    for name, path in generated.items():
        fake = _read_generated(path)
        if "cluster" not in fake.obs:
            raise DataError(f"{path}: no obs['cluster'] column; the per-cluster embedding needs labelled cells")
        sets[name] = fake[fake.obs["cluster"].astype(str).to_numpy() == cluster].copy()
    if real.n_obs < 10:
        raise DataError(f"{prepared}: cluster '{cluster}' has {real.n_obs} test cells, too few to embed (10 or more; "
                        "choose another with realism.per_cluster_embedding)")  # fmt: skip
    frame = embedding_frame(real, sets, seed=seed, method="tsne", cluster_key=None)
    counts = ", ".join(f"{name} {cells.n_obs}" for name, cells in sets.items())
    _save_figure(plot_embedding(frame, title=f"{title}cluster {cluster}: {real.n_obs} real test cells; {counts}"),
                 output)  # fmt: skip


def plot_correlation_heatmap(*, heatmap: str | Path, output: str | Path, title: str = "") -> None:
    """Marker-gene correlation heatmap (ACTIVA Fig. 4): generated lower triangle, real upper triangle."""
    _use_agg()
    import pandas as pd

    from scsynth_core.plots.heatmap import plot_correlation_heatmap as draw

    _save_figure(draw(pd.read_csv(heatmap, sep="\t", index_col=0), title=title), output)


def plot_leaderboard(*, summary: str | Path, output: str | Path, title: str = "") -> None:
    """Realism leaderboard figure: one panel per metric, models on x, replicate points and mean bars."""
    _use_agg()
    import pandas as pd

    from scsynth_core.plots.disentanglement import plot_leaderboard as draw

    frame = pd.read_csv(summary, sep="\t")
    metrics = [m for m in ("rf_auc_mean", "rf_error", "mmd", "correlation_discrepancy", "inception_score") if m in frame]
    _save_figure(draw(frame, metrics=metrics, references={"rf_auc_mean": 0.5, "rf_error": 0.5}, title=title), output)


def plot_modern_metrics(*, summary: str | Path, output: str | Path, title: str = "") -> None:
    """Today's metrics of one dataset as a table: models (mean over replicates) x metrics, each cell coloured by
    the model's rank in its column; the real control is shown unranked, as the ideal."""
    _use_agg()
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
    _save_figure(plot_rank_table(table, ranks, title=title), output)


def plot_training_curves(*, train_logs: Mapping[str, str | Path], output: str | Path, title: str = "") -> None:
    """Realism monitor over training time for every run of a dataset (MichiGAN Fig. 2, RF error during training)."""
    _use_agg()
    import pandas as pd

    from scsynth_core.plots.training import plot_training_curves as draw
    from scsynth_core.plots.training import training_curves_frame

    histories = {name: pd.read_csv(path, sep="\t") for name, path in train_logs.items()}
    _save_figure(draw(training_curves_frame(histories), title=title), output)


def plot_augmentation_f1(*, table: str | Path, output: str | Path, n_extra: int, title: str = "") -> None:
    """F1 of the target cluster against the kept fraction, per variant, seed range shaded (Marouf 2020 Fig. 3a)."""
    _use_agg()
    import pandas as pd

    from scsynth_core.plots.augmentation import plot_f1_vs_fraction

    frame = pd.read_csv(table, sep="\t")
    frame = frame[(frame["variant"] != "augmented") | (frame["n_extra"] == n_extra)]  # the sweep has its own rows
    models = frame.loc[frame["variant"] == "augmented", "source"].nunique()
    if models > 1:  # one curve per generator
        augmented = frame["variant"] == "augmented"
        frame.loc[augmented, "variant"] = "augmented (" + frame.loc[augmented, "source"] + ")"
    _save_figure(plot_f1_vs_fraction(frame, title=title), output)


def plot_augmentation_embedding(
    *, prepared: str | Path, split: str | Path, generated: str | Path, output: str | Path, target: str = "auto",
    seed: int = 0, title: str = "",
) -> None:
    """t-SNE of generated target cells with the real target test cells no generator saw (Marouf 2020 Fig. 3)."""
    _use_agg()
    from scsynth_core.data.split import resolve_target_cluster
    from scsynth_core.plots.embedding import embedding_frame, plot_embedding

    cells = load_prepared(prepared, split)
    cluster = resolve_target_cluster(cells.obs["cluster"], target)
    real = cells[(cells.obs["split"] == "test") & (cells.obs["cluster"].astype(str) == cluster)].copy()
    fake = _read_generated(generated)
    fake = fake[: min(fake.n_obs, max(real.n_obs, 500))].copy()
    frame = embedding_frame(real, {"generated": fake}, seed=seed, method="tsne", cluster_key=None)
    _save_figure(plot_embedding(frame, title=title), output)
