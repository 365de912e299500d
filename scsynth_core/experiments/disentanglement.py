"""Steps of the ``disentanglement`` experiment (Yu & Welch 2021, "MichiGAN: sampling from disentangled
representations of single-cell data using generative adversarial networks", Genome Biology 22:158; Results
"Disentangled representations of simulated data", Fig. 1 and Tables 1-4).

Splatter-style data with known generating factors (:func:`scsynth_core.data.simulate.simulate_splatter`: two
batches, two paths of 20 steps, linear or non-linear, and the cell's library size) are encoded by PCA, a VAE and
a beta-TCVAE with 10 or 4 latent dimensions over several runs; each representation is scored against the true
factors with the mutual information gap, the FactorVAE metric and the Spearman correlation gap
(:mod:`scsynth_core.metrics.disentanglement`). The paper's finding: beta-TCVAE disentangles best (highest MIG),
above all on the non-linear step data.

Factors are those of the reference plotting code: batch, path, step and the library-size quartile (the expected
library size of the simulation cut at its quartiles, so that every factor is discrete as MIG and the FactorVAE
metric need). The paper's second simulator (Table 3), PROSSTT-style trees of 3, 4 and 5 branches
(:func:`scsynth_core.data.simulate.simulate_prosstt`), has the factors branch and pseudotime step; a simulated
file names its factors in ``uns["simulation"]["factors"]``.

Per-run hyperparameters (``run_params``, :func:`run_params`) give the paper's beta where it differs by data set:
5 for the 4-dimensional linear-step runs, 50 on PROSSTT (10 otherwise, the ``betatcvae`` default).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scsynth_core import atomic
from scsynth_core.errors import ConfigError, DataError
from scsynth_core.steps import by_group, by_name

log = logging.getLogger("scsynth")

#: Ground-truth factors of the simulation (obs columns); ``library_size`` is scored as quartiles.
FACTORS = ("batch", "path", "step", "library_size")
#: The scores of one representation, in table order.
SCORES = ["mig", "mig_posterior", "mig_balanced", "factorvae", "correlation_gap"]


#: The experiment's simulations: Splatter step variants (MichiGAN Tables 1-2) and PROSSTT-style trees by their
#: number of branches (Table 3).
SPLATTER_SIMULATIONS = ("linear", "nonlinear")
PROSSTT_SIMULATIONS = {"prosstt3": 3, "prosstt4": 4, "prosstt5": 5}
SIMULATIONS = (*SPLATTER_SIMULATIONS, *PROSSTT_SIMULATIONS)


def simulate(
    *,
    output: str | Path,
    simulation: str,
    n_cells: int,
    n_genes: int,
    seed: int,
    params: Mapping[str, Any] | None = None,
    prosstt_params: Mapping[str, Any] | None = None,
) -> None:
    """Write one simulation of MichiGAN's "Simulated data": ``linear`` / ``nonlinear`` Splatter steps (``params``:
    further ``SplatterParams``) or a PROSSTT-style tree ``prosstt3`` / ``4`` / ``5`` (``prosstt_params``: further
    ``ProssttParams``)."""
    from scsynth_core.data.simulate import simulate_prosstt, simulate_splatter

    if simulation in PROSSTT_SIMULATIONS:
        adata = simulate_prosstt(
            seed=seed,
            n_branches=PROSSTT_SIMULATIONS[simulation],
            n_cells=n_cells,
            n_genes=n_genes,
            **dict(prosstt_params or {}),
        )
    elif simulation in SPLATTER_SIMULATIONS:
        adata = simulate_splatter(seed=seed, step=simulation, n_cells=n_cells, n_genes=n_genes, **dict(params or {}))
    else:
        raise ConfigError(f"unknown simulation '{simulation}' (known: {', '.join(SIMULATIONS)})")
    atomic.write_h5ad(output, adata)
    log.info("simulated %d cells x %d genes (%s, seed %d)", adata.n_obs, adata.n_vars, simulation, seed)


def simulation_label(simulation: str) -> str:
    """A figure title's name of a simulation: "linear step", "PROSSTT 3-branch tree"."""
    if simulation in PROSSTT_SIMULATIONS:
        return f"PROSSTT {PROSSTT_SIMULATIONS[simulation]}-branch tree"
    return f"{simulation} step"


def simulation_factors(adata) -> list[str]:
    """The ground-truth factors a simulated file names (``uns["simulation"]["factors"]``), else Splatter's."""
    return [str(f) for f in adata.uns.get("simulation", {}).get("factors", FACTORS)]


def run_params(
    section: Mapping[str, Any],
    *,
    simulation: str,
    model: str,
    latent_dim: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``params`` (``models.<model>.params``) with every ``run_params`` entry of the disentanglement ``section``
    that matches this run laid over them, in order. An entry matches when each of its ``models``,
    ``simulations`` and ``latent_dims`` lists it gives holds the run's; code-data runs (``latent_dim`` None) match
    only entries without ``latent_dims``. The paper's beta per data set: 5 for the 4-dimensional linear-step
    runs, 50 on PROSSTT."""
    out = dict(params or {})
    for entry in section.get("run_params") or []:
        if (
            ("models" in entry and model not in entry["models"])
            or ("simulations" in entry and simulation not in entry["simulations"])
            or ("latent_dims" in entry and (latent_dim is None or int(latent_dim) not in entry["latent_dims"]))
        ):
            continue
        out |= dict(entry["params"])
    return out


def check_run_params(section: Mapping[str, Any], settings) -> None:
    """Check the hyperparameters of every run of the ``section`` (representations and code-data GANs) with the
    torch-free model specs. ``settings(model)``: the model's ``preset`` and ``params``
    (:func:`scsynth_core.config.model_settings`). Raises :class:`ConfigError` naming the run."""
    from scsynth_core.models.specs import model_spec

    runs = [(m, d) for m in section["models"] for d in section["latent_dims"]]
    runs += [(m, None) for m in section.get("code_data_models") or []]
    for model, dim in runs:
        spec, base = model_spec(model), settings(model)
        own = {spec.latent_param: int(dim)} if dim is not None and spec.latent_param else {}
        for simulation in section["simulations"]:
            merged = run_params(section, simulation=simulation, model=model, latent_dim=dim, params=base["params"])
            try:
                spec.settings(base["preset"], merged | own)
            except ConfigError as exc:
                run = f"{simulation}/{model}" + ("" if dim is None else f"/dim{dim}")
                raise ConfigError(f"config: disentanglement.run_params: run {run}: {exc}") from None


def factor_table(obs, factors: Sequence[str] = FACTORS):
    """The ground-truth factors of ``obs`` as a DataFrame of discrete codes (``library_size`` -> quartile 0-3)."""
    import pandas as pd

    missing = [f for f in factors if f not in obs.columns]
    if missing:
        raise DataError(
            f"the simulated cells lack the factor column(s) {', '.join(missing)} in obs "
            f"(have: {', '.join(map(str, obs.columns))})"
        )
    table = pd.DataFrame(index=obs.index)
    for name in factors:
        values = obs[name]
        if name == "library_size":
            table[name] = pd.qcut(values.to_numpy(float), 4, labels=False, duplicates="drop")
        else:
            table[name] = pd.Categorical(values).codes
    return table


def score_latents(latents: np.ndarray, factors, *, seed: int = 0, logvar: np.ndarray | None = None) -> dict[str, Any]:
    """MIG (normalised by the factor entropy, Chen et al. 2018, and by log #levels, MichiGAN's "balanced"
    variant), the FactorVAE metric (Kim & Mnih 2018) and the Spearman correlation gap of one representation,
    plus each factor's MIG and correlation gaps (Yu & Welch 2021, Methods "Disentanglement metrics").

    ``latents`` are posterior means; with their ``logvar`` (a Gaussian posterior) ``mig_posterior`` is MIG
    estimated through ``q(z|x)``, the paper's estimator (NaN without)."""
    return _score_with_dimensions(latents, factors, seed=seed, logvar=logvar)[0]


#: Columns of the per-dimension table (Fig. 1c-d): |Spearman rho| and MI (nats) of each factor and code dim.
DIMENSION_COLUMNS = ["factor", "dimension", "abs_rho", "mi", "mi_posterior", "factor_entropy"]


def _score_with_dimensions(latents: np.ndarray, factors, *, seed: int = 0, logvar: np.ndarray | None = None):
    """:func:`score_latents` and the per-dimension table the gaps are taken from (``DIMENSION_COLUMNS``: the
    histogram MI, the MI through ``q(z|x)`` (NaN without ``logvar``) and the factor entropy that normalises
    both in MIG)."""
    import pandas as pd

    from scsynth_core.metrics.disentanglement import factorvae_metric, mig, posterior_mig, spearman_correlation_gap

    by_entropy = mig(latents, factors)
    through_posterior = None if logvar is None else posterior_mig(latents, logvar, factors, seed=seed)
    balanced = mig(latents, factors, normalise="levels")
    gap = spearman_correlation_gap(latents, factors)
    scores: dict[str, Any] = {
        "mig": by_entropy["mig"],
        "mig_posterior": np.nan if through_posterior is None else through_posterior["mig"],
        "mig_balanced": balanced["mig"],
        "factorvae": factorvae_metric(latents, factors, seed=seed),
        "correlation_gap": gap["gap"],
    }
    scores |= {f"mig_{name}": value for name, value in by_entropy["gaps"].items()}
    if through_posterior is not None:
        scores |= {f"mig_posterior_{name}": value for name, value in through_posterior["gaps"].items()}
    scores |= {f"correlation_gap_{name}": value for name, value in gap["gaps"].items()}

    def long(matrix, name):  # factors x dims -> one row per (factor, dimension)
        frame = matrix.copy()
        frame.columns = range(frame.shape[1])
        return frame.rename_axis(index="factor", columns="dimension").stack().rename(name)

    table = pd.concat([long(gap["abs_rho"], "abs_rho"), long(by_entropy["mi"], "mi")], axis=1)
    table["mi_posterior"] = np.nan if through_posterior is None else long(through_posterior["mi"], "mi_posterior")
    table["factor_entropy"] = table.index.get_level_values("factor").map(by_entropy["normaliser"])
    return scores, table.reset_index()[DIMENSION_COLUMNS]


def latent_model(model: str, latent_dim: int, params: Mapping[str, Any] | None, preset: str):
    """An untrained representation model with ``latent_dim`` codes (the model's own name for that setting)."""
    from scsynth_core.models import get_model_class
    from scsynth_core.models.capabilities import Encodes

    klass = get_model_class(model)
    key = klass.latent_param
    if key is None or not issubclass(klass, Encodes):
        raise ConfigError(
            f"model '{model}' has no latent representation to score (models with one: pca, vae, betatcvae)"
        )
    return klass(preset, **(dict(params or {}) | {key: int(latent_dim)}))


def train_and_score(
    *,
    simulated: str | Path,
    model: str,
    latent_dim: int,
    seed: int,
    metrics: str | Path,
    latents: str | Path,
    train_log: str | Path,
    dimensions: str | Path | None = None,
    preset: str = "paper",
    params: Mapping[str, Any] | None = None,
    max_steps: int | None = None,
    factors: Sequence[str] | None = None,
    device: str = "auto",
    threads: int | None = None,
    progress: bool = True,
) -> None:
    """Train ``model`` on all simulated cells, encode them (posterior means) and score the codes against the
    ``factors`` (default: those the simulation names) (MIG also through the posterior when the model has one:
    ``pca``, ``vae``, ``betatcvae``).

    Outputs: ``metrics`` (JSON: run identity, scores, seconds), ``latents`` (``.npy``, cells x dims),
    ``train_log`` (TSV), ``dimensions`` (TSV, optional: |Spearman rho| and MI of every factor and code dim,
    Fig. 1c-d).
    """
    from scsynth_core.data.checks import read_h5ad
    from scsynth_core.models.capabilities import PosteriorSampling
    from scsynth_core.models.training import history_frame
    from scsynth_core.runtime import set_threads

    set_threads(threads)
    instance = latent_model(model, latent_dim, params, preset)  # checks the settings before reading data
    adata = read_h5ad(simulated)
    truth = factor_table(adata.obs, factors or simulation_factors(adata))
    t0 = time.perf_counter()
    history = instance.fit(adata, seed=seed, device=device, max_steps=max_steps, progress=progress)
    train_seconds = time.perf_counter() - t0
    if isinstance(instance, PosteriorSampling):
        codes, logvar = (np.asarray(a, dtype=np.float64) for a in instance.posterior(adata))
    else:
        codes, logvar = np.asarray(instance.encode(adata), dtype=np.float64), None
    t1 = time.perf_counter()
    scores, per_dimension = _score_with_dimensions(codes, truth, seed=seed, logvar=logvar)
    record = {
        "model": model,
        "latent_dim": int(latent_dim),
        "seed": int(seed),
        "n_cells": adata.n_obs,
        **scores,
        "train_seconds": round(train_seconds, 3),
        "score_seconds": round(time.perf_counter() - t1, 3),
    }
    with atomic.atomic_path(latents) as tmp, open(tmp, "wb") as handle:
        np.save(handle, codes.astype(np.float32))
    atomic.write_tsv(train_log, history_frame(history))
    if dimensions is not None:
        atomic.write_tsv(dimensions, per_dimension)
    atomic.write_json(metrics, record)
    log.info(
        "%s (%d dims, seed %d): MIG %.3f (through q(z|x) %.3f), FactorVAE %.3f, correlation gap %.3f",
        model,
        latent_dim,
        seed,
        scores["mig"],
        scores["mig_posterior"],
        scores["factorvae"],
        scores["correlation_gap"],
    )


def summarise(
    *,
    inputs: Mapping[str, Sequence[str | Path]] | Sequence[str | Path],
    runs: str | Path,
    table: str | Path,
    input_simulations: Sequence[str] | None = None,
) -> None:
    """One row per run (``inputs``: simulation -> metrics files, or the files and ``input_simulations``, the
    simulation of each) and the mean and sd over runs per simulation, model and latent dimension (MichiGAN
    Tables 1-4)."""
    import json

    import pandas as pd

    rows = [
        json.loads(Path(path).read_text()) | {"simulation": simulation}
        for simulation, paths in by_group(inputs, input_simulations, what="disentanglement runs").items()
        for path in paths
    ]
    frame = pd.DataFrame(rows)
    first = ["simulation", "model", "latent_dim", "seed"]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    atomic.write_tsv(runs, frame.round(4))
    keys = ["simulation", "latent_dim", "model"]
    stats = frame.groupby(keys, sort=False)[SCORES].agg(["mean", "std"])
    stats.columns = [f"{score}_{'sd' if stat == 'std' else stat}" for score, stat in stats.columns]
    stats.insert(0, "n_runs", frame.groupby(keys, sort=False).size())
    atomic.write_tsv(table, stats.reset_index().round(4))


def dimension_frame(table) -> Any:
    """A per-dimension table (``DIMENSION_COLUMNS``) with ``mi_normalised``: MI through ``q(z|x)`` where the run
    has it (the paper's estimator), else the histogram MI, over the factor entropy (so per factor the largest
    minus the second-largest value is that factor's MIG)."""
    mi = table["mi_posterior"].where(table["mi_posterior"].notna(), table["mi"])
    return table.assign(mi_normalised=mi / table["factor_entropy"])


def figures(
    *,
    runs: str | Path,
    simulated: str | Path,
    latents: Mapping[str, str | Path] | Sequence[str | Path],
    simulation: str,
    scores: str | Path,
    umaps: Mapping[str, str | Path] | Sequence[str | Path],
    models: Sequence[str] | None = None,
    dimensions: Mapping[str, str | Path] | Sequence[str | Path] | None = None,
    dimensions_figure: str | Path | None = None,
    factors: Sequence[str] | None = None,
    n_neighbors: int = 30,
    seed: int = 0,
) -> None:
    """MichiGAN Fig. 1 for one simulation: metric bars by latent dimension (``scores``); per model (``latents``:
    model -> codes of its first run), a UMAP of the codes coloured by each factor and each latent dimension
    (``umaps``: model -> figure); with ``dimensions`` (model -> per-dimension table of the same run), bars of
    |Spearman rho| and normalised MI per latent dimension and factor (Fig. 1c-d, ``dimensions_figure``). Each of
    ``latents``, ``umaps`` and ``dimensions`` is a mapping or a list in the order of ``models``. UMAP:
    ``n_neighbors`` 30, seed as the reference plotting code."""
    import pandas as pd
    from matplotlib.figure import Figure

    from scsynth_core.data.checks import read_h5ad
    from scsynth_core.embedding import embed
    from scsynth_core.plots.bars import plot_metric_bars
    from scsynth_core.plots.disentanglement import plot_dimension_bars, plot_latent_umap
    from scsynth_core.runtime import save_figure, use_agg

    latents = by_name(latents, models, what="disentanglement latents")
    umaps = by_name(umaps, models, what="disentanglement UMAPs")
    use_agg()
    frame = pd.read_csv(runs, sep="\t")
    frame = frame[frame["simulation"] == simulation]
    fig = Figure(figsize=(4.2 * len(SCORES), 3.4), layout="constrained")
    for ax, score in zip(fig.subplots(1, len(SCORES)), SCORES):
        plot_metric_bars(frame, metric=score, ax=ax)
    fig.suptitle(f"{simulation_label(simulation)}: disentanglement by latent dimensions")
    save_figure(fig, scores)
    if dimensions and dimensions_figure is not None:
        dimensions = by_name(dimensions, models, what="disentanglement dimension tables")
        tables = {model: dimension_frame(pd.read_csv(path, sep="\t")) for model, path in dimensions.items()}
        fig = plot_dimension_bars(tables, title=f"{simulation_label(simulation)}: code dimensions against factors")
        save_figure(fig, dimensions_figure)
    cells = read_h5ad(simulated, backed=True)
    truth = cells.obs[list(factors or simulation_factors(cells))]
    for model, path in latents.items():
        codes = np.load(path)
        coords = embed(codes, "umap", seed=seed, n_neighbors=n_neighbors, perplexity=30.0)
        fig = plot_latent_umap(coords, truth, codes, title=f"{model}, {simulation_label(simulation)}")
        save_figure(fig, umaps[model])


# -------------------------------------------------------------------------------------- code-data correlations
#: Generators of the code-data comparison, and the code dims read from a WGAN-GP's noise (MichiGAN's code size).
CODE_DATA_MODELS = ("wgangp", "michigan")
CODE_DIMS = 10


def code_data_table(codes: np.ndarray, cells, *, pca, real_pcs: np.ndarray, truth, k: int = 3):
    """How the codes that generated ``cells`` drive the cells' factors (Yu & Welch 2021, Methods "code-data
    correlations"; Fig. 4, Table 4): each generated cell takes the mean factors of its ``k`` nearest real cells,
    and per factor the largest |Spearman rho| over code dims (``abs_rho``) and the correlation gap, largest minus
    second-largest (``gap``), are measured (:func:`~scsynth_core.metrics.disentanglement.code_factor_gaps`).

    ``cells``: generated cells in the log1p representation; ``pca``: the real cells' PCA
    (:func:`~scsynth_core.metrics.representation.fit_representation`) and ``real_pcs`` their PCs; ``truth``: the
    real cells' factors (:func:`factor_table`). Returns ``(table, gen_pcs, predicted)``: the per-factor table,
    the generated cells' PCs and their predicted factors (DataFrame)."""
    import pandas as pd

    from scsynth_core.metrics.disentanglement import code_factor_gaps, knn_factor_regression

    gen_pcs = pca.project_log1p(cells.X)
    predicted = pd.DataFrame(knn_factor_regression(real_pcs, truth, gen_pcs, k=k), columns=truth.columns)
    return code_factor_gaps(codes, predicted), gen_pcs, predicted


def code_data_correlations(codes: np.ndarray, cells, *, pca, real_pcs: np.ndarray, truth, k: int = 3):
    """Per factor, the largest |Spearman rho| between a code dim and the factor the ``k`` nearest real cells give
    each generated cell (:func:`code_data_table`'s ``abs_rho``)."""
    table = code_data_table(codes, cells, pca=pca, real_pcs=real_pcs, truth=truth, k=k)[0]
    return {str(factor): float(value) for factor, value in table["abs_rho"].items()}


#: Where a code dim's traversal runs: between these quantiles of the real cells' codes in that dim.
TRAVERSAL_QUANTILES = (0.01, 0.99)


def latent_traversals(
    generator,
    codes: np.ndarray,
    *,
    steps: int = 10,
    draws: int = 5,
    seed: int = 0,
    quantiles: tuple[float, float] = TRAVERSAL_QUANTILES,
):
    """Latent traversals (Yu & Welch 2021, Fig. 5): for each code dim, ``steps`` evenly spaced values between
    ``quantiles`` of that dim over ``codes`` (the real cells' codes), the other dims fixed at the codes' mean,
    decoded by ``generator`` (a fitted model with ``traverse``: MichiGAN, VAE, beta-TCVAE) once per noise draw
    (``draws`` draws, seeds ``seed``, ``seed + 1``, ...; the noise is shared along a traversal, so cells of one
    draw differ only through the traversed dim; a VAE's decoder has no noise and all draws agree).

    Returns ``(values, X)``: ``values`` dims x steps and the cells (CSR, rows ordered dim, draw, step).
    """
    import scipy.sparse as sp

    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] < 2:
        raise DataError(f"latent traversals need the codes of at least 2 cells (cells x dims), got {codes.shape}")
    if steps < 2 or draws < 1:
        raise ConfigError(f"latent traversals need steps >= 2 and draws >= 1, got steps {steps}, draws {draws}")
    lo, hi = np.quantile(codes, quantiles, axis=0)
    values = np.linspace(lo, hi, steps).T
    base = codes.mean(axis=0)
    blocks = [
        generator.traverse(j, values[j], base=base, seed=seed + draw).X
        for j in range(codes.shape[1])
        for draw in range(draws)
    ]
    return values, sp.vstack([sp.csr_matrix(b) for b in blocks], format="csr")


def code_data_run(
    *,
    simulated: str | Path,
    model: str,
    seed: int,
    output: str | Path,
    cells_output: str | Path | None = None,
    preset: str = "paper",
    params: Mapping[str, Any] | None = None,
    max_steps: int | None = None,
    n_cells: int = 3000,
    n_pcs: int = 50,
    k: int = 3,
    traversal_steps: int = 10,
    traversal_draws: int = 5,
    factors: Sequence[str] | None = None,
    device: str = "auto",
    threads: int | None = None,
    progress: bool = True,
) -> None:
    """Train a generator on the simulated cells, generate ``n_cells`` and measure how its inputs drive the
    factors of what it generates (MichiGAN Fig. 4: WGAN-GP vs MichiGAN code-data correlations; Table 4: their
    correlation gap).

    MichiGAN: its beta-TCVAE codes; the same codes decoded by that beta-TCVAE are scored too (``betatcvae``
    rows: the relation MichiGAN should keep). WGAN-GP: its first 10 noise dims, which carry no meaning by
    construction. ``output``: metrics.json with one row per generator and factor (``abs_rho``: largest
    |Spearman rho|, ``gap``: largest minus second largest). ``cells_output`` (optional ``.npz``, for
    :func:`code_figures`): per generator ``<name>__codes``, ``__pcs`` and ``__factors`` of the generated cells
    and, for MichiGAN and its beta-TCVAE, latent traversals (:func:`latent_traversals`, ``traversal_steps`` values
    per code dim, ``traversal_draws`` noise draws): ``__traversal_values``, ``__traversal_pcs`` (first 2 PCs)
    and ``__traversal_factors``; plus ``real_pcs`` (first 2), ``factor_names`` and ``factor_range``.
    """
    from scsynth_core.data.checks import read_h5ad
    from scsynth_core.metrics.disentanglement import knn_factor_regression
    from scsynth_core.metrics.representation import fit_representation
    from scsynth_core.models import get_model_class
    from scsynth_core.models.capabilities import CodeConditioned, NoiseInputs
    from scsynth_core.runtime import set_threads

    set_threads(threads)
    klass = get_model_class(model)
    if not issubclass(klass, NoiseInputs):
        raise ConfigError(
            f"model '{model}' is not a GAN of the code-data comparison (use: {', '.join(CODE_DATA_MODELS)})"
        )
    instance = klass(preset, **dict(params or {}))
    adata = read_h5ad(simulated)
    truth = factor_table(adata.obs, factors or simulation_factors(adata))
    t0 = time.perf_counter()
    instance.fit(adata, seed=seed, device=device, max_steps=max_steps, progress=progress)
    train_seconds = time.perf_counter() - t0
    pca = fit_representation(adata, n_components=n_pcs, seed=seed)
    real_pcs = pca.transform(adata)
    cells = instance.sample(n_cells, seed=seed)
    sets, traversed = {}, {}
    if isinstance(instance, CodeConditioned):  # MichiGAN: its codes; WGAN-GP: its first noise dims
        codes = cells.obsm["X_codes"]
        sets[model] = (codes, cells)
        sets["betatcvae"] = (codes, instance.vae.generate_from_codes(codes, seed=seed))
        traversed = {model: instance, "betatcvae": instance.vae}
    else:
        sets[model] = (instance.noise_of(n_cells, seed=seed)[:, :CODE_DIMS], cells)
    rows, arrays = [], {}
    for name, (codes, generated) in sets.items():
        table, gen_pcs, predicted = code_data_table(codes, generated, pca=pca, real_pcs=real_pcs, truth=truth, k=k)
        rows += [
            {
                "model": name,
                "factor": str(factor),
                "abs_rho": float(row["abs_rho"]),
                "gap": float(row["gap"]),
                "top_dim": str(row["top_dim"]),
            }
            for factor, row in table.iterrows()
        ]
        arrays |= {f"{name}__codes": codes, f"{name}__pcs": gen_pcs, f"{name}__factors": predicted.to_numpy()}
    if cells_output is not None:
        real_codes = instance.encode(adata) if traversed else None
        for name, generator in traversed.items():
            values, X = latent_traversals(
                generator, real_codes, steps=traversal_steps, draws=traversal_draws, seed=seed
            )
            pcs = pca.project_log1p(X)
            shape = (values.shape[0], traversal_draws, traversal_steps)
            arrays |= {
                f"{name}__traversal_values": values,
                f"{name}__traversal_pcs": pcs[:, :2].reshape(*shape, 2),
                f"{name}__traversal_factors": knn_factor_regression(real_pcs, truth, pcs, k=k).reshape(
                    *shape, truth.shape[1]
                ),
            }
        arrays |= {
            "real_pcs": real_pcs[:, :2],
            "factor_names": np.asarray(truth.columns, dtype=str),
            "factor_range": np.column_stack([truth.min().to_numpy(float), truth.max().to_numpy(float)]),
        }
        with atomic.atomic_path(cells_output) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    atomic.write_json(
        output,
        {
            "generator": model,
            "seed": int(seed),
            "n_cells": int(n_cells),
            "k": int(k),
            "train_seconds": round(train_seconds, 3),
            "rows": rows,
        },
    )
    log.info(
        "code-data correlations of %s (seed %d): %s",
        model,
        seed,
        ", ".join(f"{r['model']}/{r['factor']} |rho| {r['abs_rho']:.2f} gap {r['gap']:.2f}" for r in rows),
    )


def code_data_summary(
    *,
    inputs: Mapping[str, Sequence[str | Path]] | Sequence[str | Path],
    table: str | Path,
    figures: Mapping[str, str | Path] | Sequence[str | Path],
    scores: str | Path | None = None,
    input_simulations: Sequence[str] | None = None,
    simulations: Sequence[str] | None = None,
) -> None:
    """All code-data rows (``inputs``: simulation -> metrics files, or the files and ``input_simulations``, the
    simulation of each) in one table (``abs_rho`` and ``gap`` per factor); per simulation, bars of both by
    factor and generator (``figures``: simulation -> file, or the files of ``simulations`` in order; MichiGAN
    Fig. 4); ``scores``: per simulation and generator, the mean over factors of the gap (``correlation_gap``,
    Table 4) and of the largest |rho| (``max_abs_rho``), mean and sd over seeds."""
    import json

    import pandas as pd
    from matplotlib.figure import Figure

    from scsynth_core.plots.bars import plot_metric_bars
    from scsynth_core.runtime import save_figure, use_agg

    inputs = by_group(inputs, input_simulations, what="code-data runs")
    figures = by_name(figures, simulations, what="code-data figures")
    use_agg()
    frames = []
    for simulation, paths in inputs.items():
        for path in paths:
            record = json.loads(Path(path).read_text())
            frame = pd.DataFrame(record["rows"]).assign(simulation=simulation, seed=record["seed"])
            if "gap" not in frame.columns:
                raise DataError(
                    f"{path}: code-data rows without 'gap' (written before the correlation gap was "
                    "measured); delete the file to rerun its job"
                )
            frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)[["simulation", "model", "seed", "factor", "abs_rho", "gap"]]
    atomic.write_tsv(table, frame.round(4))
    if scores is not None:
        keys = ["simulation", "model"]
        per_run = frame.groupby([*keys, "seed"], sort=False).agg(
            correlation_gap=("gap", "mean"), max_abs_rho=("abs_rho", "mean")
        )
        stats = per_run.groupby(level=keys, sort=False).agg(["mean", "std"])
        stats.columns = [f"{score}_{'sd' if stat == 'std' else stat}" for score, stat in stats.columns]
        stats.insert(0, "n_runs", per_run.groupby(level=keys, sort=False).size())
        atomic.write_tsv(scores, stats.reset_index().round(4))
    for simulation, output in figures.items():
        fig = Figure(figsize=(10.0, 3.4), layout="constrained")
        subset = frame[frame["simulation"] == simulation]
        for ax, metric, label in zip(fig.subplots(1, 2), ("abs_rho", "gap"), ("largest |rho|", "correlation gap")):
            plot_metric_bars(subset, metric=metric, by="factor", ax=ax, title=label)
            ax.set_ylim(0, 1)
        fig.suptitle(f"{simulation_label(simulation)}: code-data correlations")
        save_figure(fig, output)


def code_figures(
    *,
    cells: Mapping[str, str | Path] | Sequence[str | Path],
    simulation: str,
    umaps: Mapping[str, str | Path] | Sequence[str | Path] | None = None,
    traversals: Mapping[str, str | Path] | Sequence[str | Path] | None = None,
    models: Sequence[str] | None = None,
    umap_generators: Sequence[str] | None = None,
    traversal_generators: Sequence[str] | None = None,
    n_neighbors: int = 30,
    seed: int = 0,
) -> None:
    """The generated cells of one code-data run per GAN (``cells``: GAN -> ``.npz`` of :func:`code_data_run`, or
    the files of ``models`` in order): per generator ``g`` a UMAP of its cells coloured by their predicted
    factors and by each input code dim (``umaps``: generator -> figure, or the figures of ``umap_generators``;
    MichiGAN Fig. 4a) and, for generators with codes, their latent traversals (``traversals``, or the figures of
    ``traversal_generators``; Fig. 5). Every figure asked for must be drawable."""
    import pandas as pd

    from scsynth_core.embedding import embed
    from scsynth_core.plots.disentanglement import plot_latent_umap, plot_traversals
    from scsynth_core.runtime import save_figure, use_agg

    cells = by_name(cells, models, what="code-data cells")
    umaps = by_name({} if umaps is None else umaps, umap_generators, what="code UMAPs")
    traversed = by_name({} if traversals is None else traversals, traversal_generators, what="traversal figures")
    outputs = {f"umap_{g}": path for g, path in umaps.items()}
    outputs |= {f"traversal_{g}": path for g, path in traversed.items()}
    use_agg()
    drawn = set()
    for path in cells.values():
        with np.load(path) as stored:
            data = dict(stored)
        names = [str(n) for n in data["factor_names"]]
        for generator in sorted({key.split("__")[0] for key in data if "__" in key}):
            if f"umap_{generator}" in outputs:
                coords = embed(data[f"{generator}__pcs"], "umap", seed=seed, n_neighbors=n_neighbors, perplexity=30.0)
                predicted = pd.DataFrame(data[f"{generator}__factors"], columns=names).round(2)
                fig = plot_latent_umap(
                    coords,
                    predicted,
                    data[f"{generator}__codes"],
                    title=f"{generator} cells, {simulation_label(simulation)}: predicted factors and codes",
                )
                save_figure(fig, outputs[f"umap_{generator}"])
                drawn.add(f"umap_{generator}")
            if f"traversal_{generator}" in outputs and f"{generator}__traversal_values" in data:
                fig = plot_traversals(
                    data[f"{generator}__traversal_values"],
                    data[f"{generator}__traversal_pcs"],
                    data[f"{generator}__traversal_factors"],
                    background=data["real_pcs"],
                    factor_names=names,
                    factor_range=data["factor_range"],
                    title=f"{generator}, {simulation_label(simulation)}: latent traversals",
                )
                save_figure(fig, outputs[f"traversal_{generator}"])
                drawn.add(f"traversal_{generator}")
    missing = sorted(set(outputs) - drawn)
    if missing:
        raise DataError(
            f"code-data cells {', '.join(map(str, cells.values()))} cannot draw {', '.join(missing)} "
            "(UMAPs need the generator's cells, traversals a generator with codes: michigan, betatcvae)"
        )
