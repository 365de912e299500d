"""Steps of the disentanglement experiment (Yu & Welch 2021, Fig. 1, Tables 1-4): factor table, scores of
known representations, model set-up, the run step on a small simulation, summary tables and figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scsynth_core.errors import ConfigError, DataError
from scsynth_core.experiments import disentanglement as dis


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "simulated.h5ad"
    dis.simulate(output=path, simulation="nonlinear", n_cells=600, n_genes=120, seed=3)
    return path


def _obs(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "batch": rng.choice(["Batch1", "Batch2"], n),
            "path": rng.choice(["Path1", "Path2"], n),
            "step": rng.integers(1, 21, n),
            "library_size": rng.lognormal(11, 0.2, n),
        }
    )


def test_factor_table_codes_factors_and_cuts_library_size_at_quartiles():
    obs = _obs()
    table = dis.factor_table(obs)
    assert list(table.columns) == list(dis.FACTORS)
    assert sorted(np.unique(table["library_size"])) == [0, 1, 2, 3]
    assert np.bincount(table["library_size"]).tolist() == [100, 100, 100, 100]
    # the largest library is in the top quartile, the smallest in the bottom one
    assert table["library_size"].iloc[obs["library_size"].argmax()] == 3
    assert table["library_size"].iloc[obs["library_size"].argmin()] == 0
    assert table["step"].nunique() == obs["step"].nunique()


def test_factor_table_names_a_missing_factor():
    with pytest.raises(DataError, match="lack the factor column.*path"):
        dis.factor_table(_obs().drop(columns="path"))


def test_a_code_with_one_dimension_per_factor_outscores_a_random_code():
    obs = _obs(2000)
    factors = dis.factor_table(obs)
    rng = np.random.default_rng(1)
    aligned = factors.to_numpy(float) + rng.normal(0, 0.05, factors.shape)  # dim j encodes factor j alone
    good = dis.score_latents(aligned, factors)
    bad = dis.score_latents(rng.normal(size=aligned.shape), factors)
    assert good["mig"] > 0.8 and bad["mig"] < 0.05
    assert good["factorvae"] > 0.95 and bad["factorvae"] < 0.5
    # a continuous code against a balanced binary factor has |Spearman| at most sqrt(3)/2 (ties in the factor)
    assert good["correlation_gap"] > 0.8 and bad["correlation_gap"] < 0.1
    assert set(good) >= {f"mig_{f}" for f in dis.FACTORS} | {f"correlation_gap_{f}" for f in dis.FACTORS}
    # two dims that both encode every factor: information but no gap
    entangled = np.column_stack([factors.to_numpy(float).sum(axis=1)] * 2) + rng.normal(0, 1e-3, (2000, 2))
    assert dis.score_latents(entangled, factors)["mig"] < 0.1


def test_run_params_give_the_paper_s_beta_per_data_set():
    """The paper configuration's entries: beta 5 for the 4-dim linear-step runs, 50 on PROSSTT (and for
    MichiGAN's own beta-TCVAE there, a code-data run without latent_dims), models.<model>.params otherwise."""
    import yaml

    config = Path(__file__).parents[2] / "config/experiments/disentanglement.yaml"
    section = yaml.safe_load(config.read_text())["disentanglement"]

    def beta(simulation, model="betatcvae", dim=4):
        return dis.run_params(section, simulation=simulation, model=model, latent_dim=dim, params={"beta": 10})

    assert beta("linear")["beta"] == 5 and beta("linear", dim=10)["beta"] == 10
    assert beta("nonlinear")["beta"] == 10 and beta("prosstt4", dim=10)["beta"] == 50
    assert beta("linear", model="vae") == {"beta": 10}  # entries name their models
    assert dis.run_params(section, simulation="prosstt3", model="michigan") == {"vae": {"beta": 50}}
    assert dis.run_params(section, simulation="linear", model="betatcvae") == {}  # code-data run: no latent_dims
    # later entries win
    two = {"run_params": [{"params": {"beta": 2}}, {"simulations": ["linear"], "params": {"beta": 3}}]}
    assert dis.run_params(two, simulation="linear", model="vae", latent_dim=4)["beta"] == 3
    assert dis.run_params(two, simulation="prosstt3", model="vae", latent_dim=4)["beta"] == 2


def test_check_run_params_names_the_run_with_a_bad_hyperparameter():
    section = {
        "models": ["pca", "betatcvae"],
        "simulations": ["linear", "prosstt3"],
        "latent_dims": [10, 4],
        "code_data_models": [],
        "run_params": [{"models": ["betatcvae"], "simulations": ["prosstt3"], "params": {"beta": "ten"}}],
    }
    settings = lambda model: {"preset": "demo", "params": {}}
    with pytest.raises(ConfigError, match="run prosstt3/betatcvae/dim10: .*beta"):
        dis.check_run_params(section, settings)
    section["run_params"][0]["params"] = {"beta": 50}
    dis.check_run_params(section, settings)


def test_prosstt_simulation_is_scored_on_branch_and_step(tmp_path):
    """MichiGAN Table 3: a PROSSTT-style tree written by the experiment names its factors (branch, pseudotime
    step) and a run scores the codes against those."""
    path = tmp_path / "tree.h5ad"
    dis.simulate(
        output=path, simulation="prosstt3", n_cells=150, n_genes=40, seed=1, prosstt_params={"branch_length": 4}
    )
    outputs = {
        "metrics": tmp_path / "m.json",
        "latents": tmp_path / "z.npy",
        "train_log": tmp_path / "log.tsv",
        "dimensions": tmp_path / "dims.tsv",
    }
    dis.train_and_score(
        simulated=path, model="pca", latent_dim=3, seed=0, **outputs, preset="demo", progress=False, threads=1
    )
    record = json.loads(outputs["metrics"].read_text())
    assert {"mig_branch", "mig_step", "correlation_gap_branch"} <= set(record) and "mig_batch" not in record
    assert 0 <= record["mig"] <= 1 and set(pd.read_csv(outputs["dimensions"], sep="\t")["factor"]) == {"branch", "step"}
    assert dis.simulation_label("prosstt3") == "PROSSTT 3-branch tree"
    with pytest.raises(ConfigError, match="unknown simulation 'prosstt9'"):
        dis.simulate(output=tmp_path / "x.h5ad", simulation="prosstt9", n_cells=50, n_genes=10, seed=0)


def test_latent_model_sets_each_model_s_own_latent_setting():
    assert dis.latent_model("pca", 4, None, "demo").params["n_latent"] == 4
    assert dis.latent_model("betatcvae", 4, {"beta": 50}, "demo").params["latent_dim"] == 4
    with pytest.raises(ConfigError, match="'noise' has no latent representation"):
        dis.latent_model("noise", 4, None, "demo")


def test_run_step_writes_scores_codes_and_log_and_is_deterministic(simulated, tmp_path):
    def run(name):
        outputs = {
            "metrics": tmp_path / f"{name}.json",
            "latents": tmp_path / f"{name}.npy",
            "train_log": tmp_path / f"{name}.tsv",
            "dimensions": tmp_path / f"{name}_dims.tsv",
        }
        dis.train_and_score(
            simulated=simulated,
            model="betatcvae",
            latent_dim=4,
            seed=0,
            **outputs,
            preset="demo",
            max_steps=30,
            progress=False,
            threads=1,
        )
        return json.loads(outputs["metrics"].read_text()), np.load(outputs["latents"]), outputs

    first, codes, outputs = run("a")
    second, codes_again, _ = run("b")
    assert codes.shape == (600, 4) and np.array_equal(codes, codes_again)
    assert {k: v for k, v in first.items() if "seconds" not in k} == {
        k: v for k, v in second.items() if "seconds" not in k
    }
    assert first["model"] == "betatcvae" and first["latent_dim"] == 4 and first["n_cells"] == 600
    assert 0 <= first["mig"] <= 1 and 0 <= first["factorvae"] <= 1
    # MIG through the posterior q(z|x) (the paper's estimator) is scored too, with its per-factor gaps.
    assert 0 <= first["mig_posterior"] <= 1 and {"mig_posterior_batch", "mig_posterior_step"} <= set(first)
    assert len(pd.read_csv(outputs["train_log"], sep="\t")) > 0
    # Fig. 1c-d: the per-dimension table the run's gaps come from (top bar minus second bar = the factor's gap)
    dims = dis.dimension_frame(pd.read_csv(outputs["dimensions"], sep="\t"))
    assert len(dims) == 4 * len(dis.FACTORS) and sorted(dims["dimension"].unique()) == [0, 1, 2, 3]
    for factor, rows in dims.groupby("factor"):
        for column, score in (("abs_rho", "correlation_gap"), ("mi_normalised", "mig_posterior")):
            top = rows[column].sort_values(ascending=False).to_numpy()
            assert top[0] - top[1] == pytest.approx(first[f"{score}_{factor}"], abs=1e-6), (factor, column)


def test_summary_tables_and_figures(simulated, tmp_path):
    inputs = {}
    for model, dims in (("pca", (4, 2)), ("vae", (4,))):
        for dim in dims:
            for seed in (0, 1):
                stem = tmp_path / f"{model}_{dim}_{seed}"
                outputs = {
                    "metrics": f"{stem}.json",
                    "latents": f"{stem}.npy",
                    "train_log": f"{stem}.tsv",
                    "dimensions": f"{stem}_dims.tsv",
                }
                dis.train_and_score(
                    simulated=simulated,
                    model=model,
                    latent_dim=dim,
                    seed=seed,
                    **outputs,
                    preset="demo",
                    max_steps=10,
                    progress=False,
                    threads=1,
                )
                inputs.setdefault("nonlinear", []).append(outputs["metrics"])
    dis.summarise(inputs=inputs, runs=tmp_path / "runs.tsv", table=tmp_path / "scores.tsv")
    runs = pd.read_csv(tmp_path / "runs.tsv", sep="\t")
    table = pd.read_csv(tmp_path / "scores.tsv", sep="\t")
    assert len(runs) == 6 and list(runs.columns[:4]) == ["simulation", "model", "latent_dim", "seed"]
    assert len(table) == 3 and (table["n_runs"] == 2).all()
    pca4 = runs[(runs["model"] == "pca") & (runs["latent_dim"] == 4)]["mig"]
    row = table[(table["model"] == "pca") & (table["latent_dim"] == 4)].iloc[0]
    assert row["mig_mean"] == pytest.approx(pca4.mean(), abs=1e-4)
    assert row["mig_sd"] == pytest.approx(pca4.std(), abs=1e-4)

    umaps = {"pca": tmp_path / "pca.png", "vae": tmp_path / "vae.png"}
    outputs = {"scores": tmp_path / "scores.png", "dimensions_figure": tmp_path / "dimensions.png"}
    dis.figures(  # lists named by models, as the rule gives them
        runs=tmp_path / "runs.tsv",
        simulated=simulated,
        simulation="nonlinear",
        **outputs,
        models=["pca", "vae"],
        umaps=list(umaps.values()),
        latents=[tmp_path / "pca_4_0.npy", tmp_path / "vae_4_0.npy"],
        n_neighbors=10,
        dimensions=[tmp_path / "pca_4_0_dims.tsv", tmp_path / "vae_4_0_dims.tsv"],
    )
    assert all(path.stat().st_size > 10_000 for path in [*outputs.values(), *umaps.values()])


def test_latent_umap_has_a_panel_per_factor_and_dimension():
    from scsynth_core.plots.disentanglement import plot_latent_umap

    obs = _obs(100)
    rng = np.random.default_rng(0)
    fig = plot_latent_umap(rng.normal(size=(100, 2)), obs, rng.normal(size=(100, 3)))
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["batch", "path", "step", "library_size", "z0", "z1", "z2"]
    with pytest.raises(ValueError, match="same cells"):
        plot_latent_umap(rng.normal(size=(99, 2)), obs, rng.normal(size=(100, 3)))


# ------------------------------------------------------------------------------------ code-data correlations
def test_code_data_correlations_known_answers(simulated):
    """Cells whose codes are their own factors give |rho| near 1 for every factor once kNN has mapped them back
    to factors; random codes give |rho| near 0."""
    import anndata as ad

    from scsynth_core.data.checks import read_h5ad
    from scsynth_core.data.preprocess import to_representation
    from scsynth_core.metrics.representation import fit_representation

    cells = read_h5ad(simulated)
    truth = dis.factor_table(cells.obs)
    pca = fit_representation(cells, n_components=20, seed=0)
    real_pcs = pca.transform(cells)
    as_generated = ad.AnnData(to_representation(cells.X, "log1p").tocsr())
    own = dis.code_data_correlations(truth.to_numpy(float), as_generated, pca=pca, real_pcs=real_pcs, truth=truth)
    noise = np.random.default_rng(0).normal(size=(cells.n_obs, 10))
    random = dis.code_data_correlations(noise, as_generated, pca=pca, real_pcs=real_pcs, truth=truth)
    assert set(own) == set(random) == set(dis.FACTORS)
    assert min(own.values()) > 0.6, own  # the neighbours' factors, not the cell's own: not exactly 1
    assert max(random.values()) < 0.2, random


def test_code_data_runs_summary_and_figure(simulated, tmp_path, monkeypatch):
    """WGAN-GP and MichiGAN runs write one row per generator and factor (MichiGAN adds its beta-TCVAE's decoding
    of the same codes) with the largest |rho| and the gap (Table 4), and keep their cells and MichiGAN's
    traversals; the summary stacks the rows, averages the gap per run and draws one bar figure per simulation;
    the code figures (Fig. 4a, 5) are drawn from the kept cells."""
    tiny = {"generator_layers": [32, 64], "critic_layers": [64, 10], "batch_size": 32}
    runs, cells = {}, {}
    for model, params in (("wgangp", tiny), ("michigan", tiny | {"vae": {"epochs": 3}})):
        runs[model], cells[model] = tmp_path / f"{model}.json", tmp_path / f"{model}_cells.npz"
        dis.code_data_run(
            simulated=simulated,
            model=model,
            seed=0,
            output=runs[model],
            cells_output=cells[model],
            preset="demo",
            params=params,
            max_steps=20,
            n_cells=300,
            n_pcs=20,
            traversal_steps=4,
            traversal_draws=2,
            progress=False,
            threads=1,
        )
    michigan = pd.DataFrame(json.loads(runs["michigan"].read_text())["rows"])
    assert set(michigan["model"]) == {"michigan", "betatcvae"} and len(michigan) == 2 * len(dis.FACTORS)
    assert michigan["abs_rho"].between(0, 1).all() and (michigan["gap"] <= michigan["abs_rho"] + 1e-12).all()
    with np.load(cells["michigan"]) as stored:
        kept = dict(stored)
    assert kept["michigan__codes"].shape == (300, 10) and kept["michigan__pcs"].shape == (300, 20)
    assert kept["betatcvae__factors"].shape == (300, len(dis.FACTORS))
    assert kept["michigan__traversal_values"].shape == (10, 4)
    assert kept["michigan__traversal_pcs"].shape == (10, 2, 4, 2)
    assert kept["michigan__traversal_factors"].shape == (10, 2, 4, len(dis.FACTORS))
    # MichiGAN's two noise draws give two lines; the beta-TCVAE decoder has no noise, so its draws coincide
    assert not np.allclose(*kept["michigan__traversal_pcs"].transpose(1, 0, 2, 3))
    np.testing.assert_allclose(*kept["betatcvae__traversal_pcs"].transpose(1, 0, 2, 3), atol=1e-5)
    with np.load(cells["wgangp"]) as stored:
        assert not any("traversal" in key for key in stored.files)  # WGAN-GP has no codes to traverse

    dis.code_data_summary(  # lists with the simulation of each, as the rule gives them
        inputs=list(runs.values()),
        input_simulations=["nonlinear"] * len(runs),
        table=tmp_path / "code_data.tsv",
        figures=[tmp_path / "code_data.png"],
        simulations=["nonlinear"],
        scores=tmp_path / "scores.tsv",
    )
    table = pd.read_csv(tmp_path / "code_data.tsv", sep="\t")
    assert len(table) == 3 * len(dis.FACTORS) and set(table["model"]) == {"wgangp", "michigan", "betatcvae"}
    scores = pd.read_csv(tmp_path / "scores.tsv", sep="\t").set_index("model")
    assert scores.loc["michigan", "correlation_gap_mean"] == pytest.approx(
        michigan.loc[michigan["model"] == "michigan", "gap"].mean(), abs=1e-4
    )
    assert (scores["n_runs"] == 1).all() and scores["correlation_gap_sd"].isna().all()
    assert (tmp_path / "code_data.png").stat().st_size > 10_000

    # the UMAP itself is tested elsewhere; a PCA stand-in keeps numba's minute-long start out of this test
    monkeypatch.setattr("scsynth_core.embedding.embed", lambda x, *a, **k: np.asarray(x)[:, :2])
    figures = {name: tmp_path / f"{name}.png" for name in ("umap_betatcvae", "traversal_michigan")}  # ~2 s each
    dis.code_figures(
        cells=list(cells.values()),
        models=list(cells),
        simulation="nonlinear",
        umaps=[figures["umap_betatcvae"]],
        umap_generators=["betatcvae"],
        traversals={"michigan": figures["traversal_michigan"]},
    )
    assert all(path.stat().st_size > 10_000 for path in figures.values())
    with pytest.raises(DataError, match="cannot draw traversal_wgangp"):
        dis.code_figures(
            cells={"wgangp": cells["wgangp"]}, simulation="nonlinear", traversals={"wgangp": tmp_path / "x.png"}
        )
    with pytest.raises(ConfigError, match="not a GAN of the code-data comparison"):
        dis.code_data_run(simulated=simulated, model="pca", seed=0, output=tmp_path / "x.json", progress=False)


def test_latent_traversals_vary_one_dimension_between_the_codes_quantiles():
    """Each dim runs between the 1st and 99th percentile of the given codes, the others sit at the codes' mean,
    one call per (dim, draw) with seeds seed, seed + 1, ...; rows come back ordered dim, draw, step."""
    import anndata as ad
    import scipy.sparse as sp

    calls = []

    class Recorder:  # a generator whose cells are their own codes plus the noise seed
        def traverse(self, dim, values, *, base, seed):
            codes = np.tile(base, (len(values), 1))
            codes[:, dim] = values
            calls.append((dim, seed))
            return ad.AnnData(sp.csr_matrix(np.column_stack([codes, np.full(len(values), seed)])))

    codes = np.random.default_rng(0).normal(size=(1000, 3)) * [1.0, 2.0, 5.0]
    values, X = dis.latent_traversals(Recorder(), codes, steps=5, draws=2, seed=7)
    lo, hi = np.quantile(codes, [0.01, 0.99], axis=0)
    np.testing.assert_allclose(values[:, 0], lo) and np.testing.assert_allclose(values[:, -1], hi)
    assert values.shape == (3, 5) and calls == [(0, 7), (0, 8), (1, 7), (1, 8), (2, 7), (2, 8)]
    dense = X.toarray().reshape(3, 2, 5, 4)  # dim, draw, step, (codes, seed)
    for j in range(3):
        np.testing.assert_allclose(dense[j, :, :, j], np.tile(values[j], (2, 1)), rtol=1e-6)
        others = np.delete(dense[j, :, :, :3], j, axis=-1)
        np.testing.assert_allclose(
            others, np.broadcast_to(np.delete(codes.mean(axis=0), j), others.shape), rtol=1e-5, atol=1e-6
        )
    assert (dense[:, 1, :, 3] == 8).all()
    with pytest.raises(ConfigError, match="steps >= 2"):
        dis.latent_traversals(Recorder(), codes, steps=1)


def test_traversal_and_dimension_plots_have_a_panel_per_code_dimension():
    from scsynth_core.plots.disentanglement import plot_dimension_bars, plot_traversals

    rng = np.random.default_rng(0)
    names = list(dis.FACTORS)
    fig = plot_traversals(
        np.tile(np.linspace(-1, 1, 4), (3, 1)),
        rng.normal(size=(3, 2, 4, 2)),
        rng.uniform(size=(3, 2, 4, 4)),
        background=rng.normal(size=(50, 2)),
        factor_names=names,
        factor_range=np.tile([0.0, 1.0], (4, 1)),
    )
    assert [ax.get_title() for ax in fig.axes[:3]] == ["z0", "z1", "z2"] and len(fig.axes) == 6
    assert len(fig.axes[3].get_lines()) == len(names)  # one line per factor along the traversal
    with pytest.raises(ValueError, match="must be dims x steps"):
        plot_traversals(
            np.zeros((3, 4)),
            np.zeros((3, 2, 5, 2)),
            np.zeros((3, 2, 5, 4)),
            background=np.zeros((5, 2)),
            factor_names=names,
            factor_range=np.zeros((4, 2)),
        )
    table = pd.DataFrame(
        {
            "factor": np.repeat(names, 3),
            "dimension": np.tile([0, 1, 2], 4),
            "abs_rho": rng.uniform(size=12),
            "mi_normalised": rng.uniform(size=12),
        }
    )
    fig = plot_dimension_bars({"pca": table, "vae": table})
    assert len(fig.axes) == 4 and len(fig.axes[0].patches) == 12  # 3 dims x 4 factors per panel
