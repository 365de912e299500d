"""Steps of the ``pilot`` experiment (Treppner et al. 2021, "Synthetic single cell RNA sequencing data from
small pilot studies using deep generative models", Sci Rep 11:9403; Methods, Fig. 1-3, Table 1).

A pilot study is a subsample of the original data whose size is a multiple of a 384-well plate. A model trained
on the pilot generates as many cells as the original data; the synthetic set is judged against the original
(:mod:`scsynth_core.metrics.pilot`). Pilots are drawn with replacement by default, as the authors' code does
(``replace: false`` draws without).

scDBM trains on 70 % of each pilot: the authors' notebook holds 30 % out (``splitdata``) before training scDBM,
while scVI gets the whole pilot and holds out its own validation cells (``train_size`` 0.7; MODELS.md section 4,
"Pilot protocol"). ``pilot.scdbm_holdout`` sets the held-out fraction (0: scDBM trains on the whole pilot).

``pilot.models`` may name :data:`MODEL_VARIANTS` beside registered models: ``scdbm_reference`` is scDBM with the
hyperparameters of the authors' notebook (:data:`SCDBM_REFERENCE`), shown beside the trained scDBM.

Per-job start-up (importing torch, scanpy and compiling numba code) costs tens of seconds, and the paper's grid is
540 trainings per dataset, so one job runs several replicates (pilot size and seed) of one model:
:func:`run_pilot_replicates` records the job's start-up separately from the replicates' work so the overhead
can be reported (``job_overhead_seconds``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scsynth_core import atomic
from scsynth_core.errors import ConfigError, DataError
from scsynth_core.steps import by_name

log = logging.getLogger("scsynth")

#: Columns of a replicate table, in order (metrics follow).
REPLICATE_COLUMNS = [
    "dataset",
    "model",
    "pilot_size",
    "seed",
    "n_unique_pilot_cells",
    "n_training_cells",
    "n_synthetic",
]
#: Metrics summarised per model and pilot size (Fig. 2-3, Table 1).
PILOT_METRICS = ["dbi_synthetic", "ari", "count_difference", "mad_median", "mad_iqr", "mad_cv", "mad_zero_fraction"]
#: Genes of the marginal-distribution figure when the config names no genes for a dataset.
DEFAULT_EXAMPLE_GENES = 4
#: scDBM as the authors' scDBM-paper notebook trains it (Treppner 2021, Methods; MODELS.md section 4): 4 and 2
#: hidden units, 60 + 40 pre-training and 10 fine-tuning epochs, batch 64, plain SGD at the notebook's per-epoch
#: learning rates (1e-11 in every epoch it reaches, so the weights stay at their initial values), one full-batch
#: fine-tuning update per epoch, theta by Fisher scoring every 5 epochs (lambda 1, 20 iterations) on the chains'
#: means without the mean-preserving shift, and the paper's blocked Gibbs sampler (50 steps). These options
#: are the reference behaviours :class:`scsynth_core.models.scdbm.ScDBM` keeps; they override any preset.
SCDBM_REFERENCE: dict[str, Any] = {
    "hidden_sizes": [4, 2],
    "pretrain_epochs": [60, 40],
    "finetune_epochs": 10,
    "batch_size": 64,
    "finetune_batch_size": None,
    "optimizer": "sgd",
    "lr_schedule": "reference",
    "cd_steps": 1,
    "finetune_particles": 100,
    "finetune_gibbs_steps": 5,
    "theta_init": 0.5,
    "dispersion_every": 5,
    "dispersion_lambda": 1.0,
    "dispersion_iter": 20,
    "dispersion_mean": "chains",
    "dispersion_keep_means": False,
    "sampler": "gibbs",
    "gibbs_scheme": "blocked",
    "burn_in": 50,
}
#: Pilot-only model names: name -> (registered model, hyperparameters fixed over its settings).
MODEL_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {"scdbm_reference": ("scdbm", SCDBM_REFERENCE)}
#: Registered models that train on part of the pilot (``pilot.scdbm_holdout``), as the authors' scDBM does.
HOLDOUT_MODELS = ("scdbm",)


def _process_seconds() -> float:
    """Seconds since this process started (the job's start-up, when called first thing in a step)."""
    import psutil

    return time.time() - psutil.Process().create_time()


def pilot_indices(n_cells: int, size: int, *, seed: int, replace: bool = True) -> np.ndarray:
    """Rows of a pilot subsample of ``size`` cells (Treppner 2021, Methods "Pilot studies")."""
    if size < 2:
        raise ConfigError(f"pilot size must be at least 2 cells, got {size}")
    if not replace and size > n_cells:
        raise DataError(
            f"a pilot of {size} cells drawn without replacement needs at least {size} cells, the dataset has {n_cells}"
        )
    rng = np.random.default_rng([int(seed), int(size)])
    return np.sort(rng.choice(n_cells, size=size, replace=replace))


def base_model(model: str) -> str:
    """The registered model a ``pilot.models`` name trains (a :data:`MODEL_VARIANTS` name or the model itself)."""
    return MODEL_VARIANTS[model][0] if model in MODEL_VARIANTS else model


def resolve_model(model: str, params: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """``(registered model, hyperparameters)`` of a ``pilot.models`` name: a variant's fixed values over
    ``params`` (the registered model's own settings)."""
    base, fixed = MODEL_VARIANTS.get(model, (model, {}))
    return base, dict(params or {}) | dict(fixed)


def holdout_split(n_cells: int, holdout: float, *, seed: int, size: int) -> np.ndarray:
    """Sorted rows a model trains on after holding ``round(holdout * n_cells)`` rows out at random, as the
    authors' ``splitdata(x, 0.3)`` before training scDBM (Treppner 2021 pilot protocol; MODELS.md section 4)."""
    if not 0 <= holdout < 1:
        raise ConfigError(f"pilot: scdbm_holdout must be in [0, 1), got {holdout}")
    n_out = round(holdout * n_cells)  # half to even, as Julia's round(Int, x)
    if n_cells - n_out < 2:
        raise DataError(f"pilot: holding out {n_out} of {n_cells} pilot cells leaves fewer than 2 to train on")
    rng = np.random.default_rng([int(seed), int(size), 30])
    return np.sort(rng.permutation(n_cells)[n_out:])


def training_cells(pilot, model: str, *, holdout: float, seed: int, size: int):
    """The pilot cells ``model`` (a registered name) trains on: all of them, or for :data:`HOLDOUT_MODELS` the
    pilot less a held-out fraction ``holdout`` (:func:`holdout_split`)."""
    if model not in HOLDOUT_MODELS or holdout == 0:
        return pilot
    return pilot[holdout_split(pilot.n_obs, holdout, seed=seed, size=size)].copy()


def draw_pilot(adata, size: int, *, seed: int, replace: bool = True):
    """The pilot cells (a copy; cells drawn twice get unique names ``<cell>-<k>``)."""
    import warnings

    rows = pilot_indices(adata.n_obs, size, seed=seed, replace=replace)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Observation names are not unique")  # made unique next
        pilot = adata[rows].copy()
    pilot.obs_names_make_unique()
    return pilot


def build_reference(*, prepared: str | Path, output: str | Path, n_pcs: int, n_neighbors: int, seed: int = 0) -> None:
    """The original data's embedding and ground truth, once per dataset (see :mod:`scsynth_core.metrics.pilot`)."""
    from scsynth_core.data.checks import read_h5ad
    from scsynth_core.metrics.pilot import build_pilot_reference

    original = read_h5ad(prepared)
    reference = build_pilot_reference(original, n_pcs=n_pcs, n_neighbors=n_neighbors, seed=seed)
    atomic.write_h5ad(output, reference)


def run_pilot_replicates(
    *,
    prepared: str | Path,
    reference: str | Path,
    output: str | Path,
    example: str | Path,
    dataset: str,
    model: str,
    replicates: Sequence[Sequence[int]],
    preset: str = "paper",
    params: Mapping[str, Any] | None = None,
    max_steps: int | None = None,
    replace: bool = True,
    resolution: float = 0.4,
    n_neighbors: int = 20,
    holdout: float = 0.3,
    device: str = "auto",
    threads: int | None = None,
) -> None:
    """Train ``model`` (a registered model or a :data:`MODEL_VARIANTS` name) on one pilot per replicate
    ``(pilot size, seed)``, generate the original data's size and evaluate; one row per replicate.
    ``n_training_cells``: the pilot cells the model trained on (scDBM holds ``holdout`` of them out).

    ``example``: the synthetic cells of the batch's first replicate at its largest pilot size, in the reference
    embedding (``obsm["X_umap"]``, transferred and fresh cluster labels), for the figures. The table holds ``train_seconds``, ``generate_seconds``,
    ``evaluate_seconds`` per replicate and, for the whole job, ``job_seconds`` and ``job_overhead_seconds`` (process
    start-up, imports and loading the data: everything that is not a replicate's own work).
    """
    startup = _process_seconds()
    t_step = time.perf_counter()
    import pandas as pd

    from scsynth_core.data.checks import read_h5ad
    from scsynth_core.metrics.pilot import ReferenceSpace, evaluate_pilot_set
    from scsynth_core.models import get_model_class
    from scsynth_core.runtime import set_threads

    set_threads(threads)
    registered, params = resolve_model(model, params)
    klass = get_model_class(registered)
    if klass.representation != "counts":
        raise ConfigError(
            f"pilot: model '{model}' generates {klass.representation} values; the pilot experiment "
            "compares count matrices (use a count model: noise, scdbm, scvi_prior, scvi_posterior)"
        )
    klass(preset, **params)  # reject bad hyperparameters before reading data
    if not replicates:
        raise ConfigError("pilot: no replicates given")
    replicates = [(int(size), int(seed)) for size, seed in replicates]
    largest = max(size for size, _ in replicates)
    example_at = next(i for i, (size, _) in enumerate(replicates) if size == largest)
    original = read_h5ad(prepared)
    ref = read_h5ad(reference)
    space = ReferenceSpace(ref)
    work_seconds = 0.0
    rows = []
    for i, (size, seed) in enumerate(replicates):
        t0 = time.perf_counter()
        pilot = draw_pilot(original, size, seed=seed, replace=replace)
        train = training_cells(pilot, registered, holdout=holdout, seed=seed, size=size)
        instance = klass(preset, **params)
        instance.fit(train, label_key=None, seed=seed, device=device, max_steps=max_steps, progress=True)
        t1 = time.perf_counter()
        synthetic = instance.sample(original.n_obs, seed=seed, progress=True)
        t2 = time.perf_counter()
        metrics = evaluate_pilot_set(
            ref, synthetic, space=space, resolution=resolution, n_neighbors=n_neighbors, seed=seed
        )
        t3 = time.perf_counter()
        embedded = metrics.pop("embedded")
        if i == example_at:
            embedded.X = synthetic.X  # counts, for the marginal-distribution figures
            embedded.uns["pilot"] = {"dataset": dataset, "model": model, "pilot_size": int(size), "seed": int(seed)}
            atomic.write_h5ad(example, embedded)
        work_seconds += time.perf_counter() - t0
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "pilot_size": int(size),
                "seed": int(seed),
                "n_unique_pilot_cells": len(np.unique(pilot.obs_names.str.replace(r"-\d+$", "", regex=True))),
                "n_training_cells": int(train.n_obs),
                **metrics,
                "train_seconds": round(t1 - t0, 3),
                "generate_seconds": round(t2 - t1, 3),
                "evaluate_seconds": round(t3 - t2, 3),
            }
        )
        log.info(
            "pilot %s size %d seed %d: DBI %.3f (original %.3f), ARI %.3f, %.1f s",
            model,
            size,
            seed,
            metrics["dbi_synthetic"],
            metrics["dbi_original"],
            metrics.get("ari", float("nan")),
            t3 - t0,
        )
    job = startup + time.perf_counter() - t_step
    table = pd.DataFrame(rows)
    table["job_seconds"] = round(job, 3)
    table["job_overhead_seconds"] = round(job - work_seconds, 3)
    atomic.write_tsv(output, table)


def summarise(
    *,
    inputs: Sequence[str | Path],
    zero_checks: Sequence[str | Path],
    output: str | Path,
    table1: str | Path,
    zeros: str | Path,
    overhead: str | Path,
) -> None:
    """One dataset's tables: every replicate, Table 1 (cluster count differences), the added-zeros check and the
    per-job start-up overhead (JSON: jobs, total job and overhead seconds, overhead fraction)."""
    import pandas as pd

    frames = [pd.read_csv(path, sep="\t") for path in inputs]
    table = pd.concat(frames, ignore_index=True).sort_values(["model", "pilot_size", "seed"], kind="stable")
    atomic.write_tsv(output, table)
    atomic.write_tsv(table1, count_difference_table(table))
    checks = [json.loads(Path(path).read_text()) for path in zero_checks]
    atomic.write_tsv(
        zeros,
        pd.DataFrame(
            [
                {key: check[key] for key in ("model", "pilot_size", "seed", "added_zeros", "zero_fraction_original")}
                | run
                for check in checks
                for run in check["runs"]
            ]
        ),
    )
    job = sum(float(f["job_seconds"].iloc[0]) for f in frames)
    spent = sum(float(f["job_overhead_seconds"].iloc[0]) for f in frames)
    atomic.write_json(
        overhead,
        {
            "jobs": len(frames),
            "job_seconds_total": round(job, 2),
            "overhead_seconds_total": round(spent, 2),
            "overhead_fraction": round(spent / job, 4) if job > 0 else None,
        },
    )


def count_difference_table(replicates):
    """Treppner 2021 Table 1: the per-cluster cell-count difference (summed over clusters) by model and pilot
    size, mean and sd over seeds (columns ``mean_<size>``, ``sd_<size>``; sd is empty with one seed)."""
    # dropna=False keeps the all-nan sd columns of a one-seed run: the table has the same columns for any run.
    wide = replicates.pivot_table(
        index="model", columns="pilot_size", values="count_difference", aggfunc=["mean", "std"], dropna=False
    )
    wide.columns = [f"{'sd' if stat == 'std' else stat}_{size}" for stat, size in wide.columns]
    return wide.reset_index().round(1)


def dataset_example_genes(
    spec: int | Sequence[str] | Mapping[str, Any], dataset: str, datasets: Sequence[str]
) -> int | list[str]:
    """One dataset's ``pilot.example_genes``: a count, gene names, or a mapping dataset -> count or names (a
    dataset it leaves out gets :data:`DEFAULT_EXAMPLE_GENES` genes; a key not in ``datasets`` is a ConfigError)."""
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - set(datasets))
        if unknown:
            raise ConfigError(
                f"pilot.example_genes names dataset(s) {unknown} that pilot.datasets {list(datasets)} does not list"
            )
        spec = spec.get(dataset, DEFAULT_EXAMPLE_GENES)
    if isinstance(spec, bool) or not isinstance(spec, (int, list, tuple)) or (isinstance(spec, int) and spec < 1):
        raise ConfigError(
            f"pilot.example_genes for dataset '{dataset}': expected a positive number of genes or a "
            f"list of gene names, got {spec!r}"
        )
    return int(spec) if isinstance(spec, int) else [str(gene) for gene in spec]


def example_gene_columns(spec: int | Sequence[str], gene_names: Sequence[str], X, *, dataset: str) -> np.ndarray:
    """Columns of the marginal figure's genes: ``spec`` genes spread over mean expression (a count,
    :func:`scsynth_core.plots.pilot.example_genes`) or the named genes in the order given."""
    import pandas as pd

    from scsynth_core.plots.pilot import example_genes

    if isinstance(spec, int):
        return example_genes(X, spec)
    names = pd.Index([str(gene) for gene in gene_names])
    missing = [gene for gene in spec if gene not in names]
    if missing:
        raise DataError(
            f"pilot.example_genes: gene(s) {missing} are not among the {len(names)} genes of dataset "
            f"'{dataset}' (results/data/{dataset}/prepared.h5ad keeps the recipe's highly variable "
            "genes); name genes it kept or give a number of genes"
        )
    return np.array([int(np.flatnonzero(names == gene)[0]) for gene in spec])


def example_umap_frame(reference, examples: Mapping[str, Any]):
    """The original cells (set ``real``) and each model's example cells (set = model) in the reference UMAP, as
    :func:`scsynth_core.plots.embedding.plot_embedding` reads them (Treppner Supplementary Fig. 7)."""
    import pandas as pd

    def cells(adata, name):
        xy = np.asarray(adata.obsm["X_umap"])[:, :2]
        return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "set": name})

    frame = pd.concat([cells(reference, "real")] + [cells(a, m) for m, a in examples.items()], ignore_index=True)
    frame.attrs["method"] = "umap"
    return frame


#: Columns the figures read from the replicate table that tables written before they existed lack.
_FIGURE_COLUMNS = ["dbi_synthetic", "dbi_original", "ari", "dbi_counts_synthetic", "dbi_counts_original", "rand_index"]


def figures(
    *,
    replicates: str | Path,
    reference: str | Path,
    examples: Mapping[str, str | Path] | Sequence[str | Path],
    zero_genes: Mapping[str, str | Path] | Sequence[str | Path],
    dataset: str,
    dbi: str | Path,
    ari: str | Path,
    mad: str | Path,
    marginals: str | Path,
    added_zeros: str | Path,
    example_umaps: str | Path,
    models: Sequence[str] | None = None,
    example_genes: int | Sequence[str] = DEFAULT_EXAMPLE_GENES,
) -> None:
    """Treppner 2021 Fig. 2 (DBI with the original's as a line, in the UMAP and on the count matrices, ``dbi``;
    ARI and the authors' Rand index, ``ari``), Fig. 3 (MAD table, ranks within pilot size, ``mad``),
    Supplementary Fig. 3-4 (count distributions of example genes, ``marginals``; ``examples``: model -> example
    file), Supplementary Fig. 5 (per-gene zero fractions of the added-zeros check, ``added_zeros``;
    ``zero_genes``: model -> its per-gene table) and Supplementary Fig. 7 (each model's example cells over the
    original's UMAP, ``example_umaps``). ``examples`` and ``zero_genes`` may be lists in the order of ``models``.
    ``example_genes``: a number of genes or gene names."""
    import pandas as pd

    from scsynth_core.data.checks import read_h5ad
    from scsynth_core.plots.embedding import plot_embedding
    from scsynth_core.plots.pilot import (
        plot_gene_marginals,
        plot_gene_zero_fractions,
        plot_mad_table,
        plot_metric_panels,
    )
    from scsynth_core.runtime import save_figure, use_agg

    examples = by_name(examples, models, what="pilot examples")
    zero_genes = by_name(zero_genes, models, what="pilot added-zeros tables")
    use_agg()
    ref = read_h5ad(reference)
    genes = example_gene_columns(example_genes, ref.var_names, ref.layers["counts"], dataset=dataset)
    table = pd.read_csv(replicates, sep="\t")
    missing = [column for column in _FIGURE_COLUMNS if column not in table.columns]
    if missing:
        raise DataError(
            f"{replicates}: no column(s) {missing}; the batch tables predate them: rerun the "
            "replicates (snakemake --forcerun pilot_replicates)"
        )
    dbi_figure = plot_metric_panels(
        table,
        [
            {
                "metric": "dbi_synthetic",
                "reference": float(table["dbi_original"].iloc[0]),
                "ylabel": "DBI",
                "title": "UMAP of the original data",
            },
            {
                "metric": "dbi_counts_synthetic",
                "reference": float(table["dbi_counts_original"].iloc[0]),
                "ylabel": "DBI",
                "title": "count matrices (the authors')",
            },
        ],
        title=f"{dataset}: Davies-Bouldin index of synthetic cells",
    )
    save_figure(dbi_figure, dbi)
    agreement = plot_metric_panels(
        table,
        [
            {"metric": "ari", "title": "ARI: transferred labels vs fresh clustering"},
            {"metric": "rand_index", "ylabel": "Rand index", "title": "Rand index paired by row (the authors')"},
        ],
        title=f"{dataset}: agreement of cluster labels",
    )
    save_figure(agreement, ari)
    names = {"mad_median": "median", "mad_iqr": "iqr", "mad_cv": "cv", "mad_zero_fraction": "zeros"}
    tidy = table.melt(
        id_vars=["model", "pilot_size", "seed"], value_vars=list(names), var_name="statistic", value_name="mad"
    ).replace({"statistic": names})
    save_figure(plot_mad_table(tidy, title=f"{dataset}: per-gene MAD"), mad)
    loaded = {model: read_h5ad(path) for model, path in examples.items()}
    sets = {"original": ref.layers["counts"]} | {model: cells.X for model, cells in loaded.items()}
    size = max(cells.uns["pilot"]["pilot_size"] for cells in loaded.values())
    fig = plot_gene_marginals(sets, ref.var_names, genes=genes, title=f"{dataset}: pilots of {size} cells")
    save_figure(fig, marginals)
    umaps = plot_embedding(
        example_umap_frame(ref, loaded),
        color_by="set",
        title=f"{dataset}: synthetic cells from pilots of {size} cells over the original cells",
    )
    save_figure(umaps, example_umaps)
    per_gene = {model: pd.read_csv(path, sep="\t") for model, path in zero_genes.items()}
    zeros = plot_gene_zero_fractions(per_gene, title=f"{dataset}: zeros per gene after adding zeros to the pilot")
    save_figure(zeros, added_zeros)


def zero_inflation_check(
    *,
    prepared: str | Path,
    output: str | Path,
    genes_output: str | Path,
    model: str,
    size: int,
    seed: int = 0,
    fraction: float = 0.2,
    preset: str = "paper",
    params: Mapping[str, Any] | None = None,
    max_steps: int | None = None,
    replace: bool = True,
    holdout: float = 0.3,
    device: str = "auto",
    threads: int | None = None,
) -> None:
    """Treppner 2021, Results "zero inflation": set ``fraction`` of the pilot's non-zero entries to zero, train,
    and compare zero fractions. A model that does not impute keeps the added zeros: its synthetic zero fraction
    follows the zeroed pilot, not the original data. ``model`` and ``holdout`` as in :func:`run_pilot_replicates`
    (the training sets' zero fractions are those of the whole pilot).

    ``output``: the overall zero fractions (JSON); ``genes_output``: per gene (TSV, for Supplementary Fig. 5),
    columns ``gene``, ``original``, then per training set (``pilot``, ``pilot_with_added_zeros``) its own and
    its synthetic cells' (``<training set>_synthetic``) zero fraction."""
    import pandas as pd

    from scsynth_core.data.checks import read_h5ad
    from scsynth_core.metrics.pilot import gene_zero_fractions
    from scsynth_core.metrics.summary import zero_fraction
    from scsynth_core.models import get_model_class
    from scsynth_core.runtime import set_threads

    set_threads(threads)
    if not 0 < fraction < 1:
        raise ConfigError(f"pilot: added_zeros must be in (0, 1), got {fraction}")
    registered, params = resolve_model(model, params)
    original = read_h5ad(prepared)
    pilot = draw_pilot(original, size, seed=seed, replace=replace)
    zeroed = pilot.copy()
    X = zeroed.X.tocsr().astype(np.float32)
    rng = np.random.default_rng([int(seed), 20])
    X.data[rng.random(X.nnz) < fraction] = 0
    X.eliminate_zeros()
    zeroed.X = X
    rows = []
    per_gene = {"gene": original.var_names.astype(str), "original": gene_zero_fractions(original.X)}
    for name, data in (("pilot", pilot), ("pilot_with_added_zeros", zeroed)):
        instance = get_model_class(registered)(preset, **params)
        train = training_cells(data, registered, holdout=holdout, seed=seed, size=size)
        instance.fit(train, label_key=None, seed=seed, device=device, max_steps=max_steps, progress=True)
        synthetic = instance.sample(original.n_obs, seed=seed)
        rows.append(
            {
                "training_set": name,
                "zero_fraction_training": zero_fraction(data.X),
                "zero_fraction_synthetic": zero_fraction(synthetic.X),
            }
        )
        per_gene[name] = gene_zero_fractions(data.X)
        per_gene[f"{name}_synthetic"] = gene_zero_fractions(synthetic.X)
    result = {
        "model": model,
        "pilot_size": int(size),
        "seed": int(seed),
        "added_zeros": fraction,
        "zero_fraction_original": zero_fraction(original.X),
        "runs": rows,
    }
    atomic.write_tsv(genes_output, pd.DataFrame(per_gene).round(6))
    atomic.write_json(output, json.loads(json.dumps(result)))
