"""The Snakemake workflow: dry runs, config validation, bad input, and a real run of the default config."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from conftest import BASELINES_ONLY
from workflow_utils import REPO, SNAKEMAKE, configfile_args, copy_workflow, job_stats, snakemake

#: Per-cluster realism: off in the default configuration, on in the session's default run (conftest.BASELINES_ONLY).
PER_CLUSTER_STAGES = [
    "evaluate_per_cluster",
    "evaluate_per_cluster_control",
    "summarise_per_cluster",
    "plot_per_cluster_roc",
    "plot_per_cluster_embedding",
]
STAGES = [
    "import_dataset",
    "prepare_dataset",
    "split_dataset",
    "train_model",
    "generate_cells",
    "build_realism_representation",
    "build_marker_genes",
    "evaluate_realism",
    "evaluate_real_control",
    "plot_realism_embeddings",
    "plot_realism_roc",
    "plot_correlation_heatmap",
    "summarise_realism",
    "plot_realism_leaderboard",
    "realism_leaderboard",
    "realism_training_times",
    "plot_training_curves",
    "downsample_cluster",
    "evaluate_augmentation",
    "summarise_augmentation",
    "plot_augmentation_f1",
    "plot_augmentation_embedding",
    "pilot_reference",
    "pilot_replicates",
    "pilot_zero_inflation",
    "pilot_summary",
    "pilot_figures",
    "experiments_leaderboard",
    "all",
]


@pytest.fixture
def wf(tmp_path):
    return copy_workflow(tmp_path / "wf")


def test_dry_run_lists_every_stage(wf):
    proc = snakemake(wf, "-n", check=True)
    stats = job_stats(proc.stdout)
    assert set(STAGES) <= set(stats) and not set(PER_CLUSTER_STAGES) & set(stats), stats
    # realism: 2 baselines and 5 of the papers' models, one seed; augmentation: upsample x 3 fractions x 1 seed
    assert stats["train_model"] == 7 + 3 and stats["generate_cells"] == 7 + 3
    # pilot: 3 sizes x 3 seeds of the noise baseline in one job (replicates_per_job 9)
    assert stats["pilot_replicates"] == 1 and stats["pilot_zero_inflation"] == 1
    assert stats["downsample_cluster"] == 1 and stats["evaluate_augmentation"] == 3
    # today's metrics only where realism.metrics asks for them
    assert "summarise_modern_metrics" not in stats and "plot_modern_metrics" not in stats
    assert not (wf / "results").exists()


@pytest.mark.parametrize("experiment", sorted(p.name for p in (REPO / "config/experiments").glob("*.yaml")))
def test_every_experiment_config_dry_runs_with_one_training_per_model_and_replicate(wf, experiment):
    import yaml

    settings = yaml.safe_load((wf / "config/experiments" / experiment).read_text())
    proc = snakemake(wf, "-n", "--configfile", "config/config.yaml", f"config/experiments/{experiment}", check=True)
    stats = job_stats(proc.stdout)
    expected = 0
    for name in settings["experiments"]:
        section = settings[name]
        if name == "pilot":  # trained inside pilot_replicates jobs, replicates_per_job at a time
            grid = len(section["seeds"]) * len(section["pilot_sizes"])
            batches = -(-grid // section["replicates_per_job"])
            assert stats["pilot_replicates"] == len(section["datasets"]) * len(section["models"]) * batches
            continue
        if name == "disentanglement":  # trained and scored inside disentanglement_run jobs, one run each
            runs = [len(section[key]) for key in ("simulations", "models", "latent_dims", "seeds")]
            assert stats["disentanglement_run"] == math.prod(runs), stats
            code_data = [len(section.get(key, [])) for key in ("simulations", "code_data_models", "seeds")]
            assert stats.get("disentanglement_code_data", 0) == math.prod(code_data), stats
            continue
        if name == "perturbation":  # MichiGAN trained inside perturbation_run jobs, one per combination and seed
            assert stats["perturbation_run"] == len(section["held_out"]) * len(section["seeds"]), stats
            continue
        if name == "realism" and len(section.get("metrics", [])) > 1:  # today's metrics: a table and a figure
            assert stats["summarise_modern_metrics"] == stats["plot_modern_metrics"] == len(section["datasets"])
        replicates = len(section["seeds"]) * len(section.get("fractions", [None]))
        expected += len(section["datasets"]) * len(section["models"]) * replicates
    assert stats.get("train_model", 0) == expected, stats


def test_dry_run_of_a_downloaded_dataset_includes_the_download(wf):
    extra = configfile_args(
        wf, "experiments: [realism]\nrealism: {datasets: [pbmc4k], models: [noise], seeds: [0, 1]}\n"
    )
    proc = snakemake(wf, "-n", *extra, check=True)
    stats = job_stats(proc.stdout)
    assert stats["download_dataset"] == 1
    assert stats["split_dataset"] == 2 and stats["train_model"] == 2


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("realism: {datasets: [pbmc68k_demo], models: [scgann]}", "unknown model 'scgann'"),
        ("realism: {datasets: [nope], models: [noise]}", "unknown dataset 'nope'"),
        ("realism: {datasets: [pbmc68k_demo], models: [noise], seeds: many}", "'many' is not of type 'array'"),
        ("realism: {datasets: [pbmc68k_demo], models: [noise], test_fraction: 1.5}", "1.5 is greater than"),
        ("device: gpu", "'gpu' is not one of"),
        ("models: {noise: {preset: huge}}", "unknown preset 'huge'"),
        ("models: {noise: {params: {lr: 1}}}", "unknown hyperparameter"),
        ("experiments: [realism]\nunknown_key: 1", "Additional properties are not allowed"),
        ("augmentation: {datasets: [pbmc68k_demo], models: [noise]}", "'noise' is not conditional"),
        ("augmentation: {datasets: [pbmc68k_demo], models: [upsample], fractions: [0.5, 2]}", "2 is greater than"),
        ("experiments: [disentanglement]\ndisentanglement: {models: [noise]}", "'noise' has no latent representation"),
        ("experiments: [perturbation]\nperturbation: {held_out: [Path1-Batch2]}", "does not match"),
        ("experiments: [perturbation]\nperturbation: {held_out: ['P:B'], dataset: nope}", "unknown dataset 'nope'"),
        (
            "experiments: [disentanglement]\ndisentanglement: {models: [pca], simulations: [curved]}",
            "'curved' is not one of",
        ),
    ],
)
def test_bad_config_fails_before_any_job(wf, override, message):
    proc = snakemake(wf, "-n", *configfile_args(wf, override + "\n"))
    assert proc.returncode != 0
    assert message in proc.stdout
    assert "Job stats" not in proc.stdout


def test_corrupt_local_dataset_fails_with_one_line_error_and_no_output(wf):
    (wf / "data").mkdir()
    (wf / "data" / "broken.h5ad").write_bytes(b"\x89HDF\r\n this is not hdf5")
    registry = wf / "config" / "datasets.yaml"
    registry.write_text(
        registry.read_text()
        + "\nbroken:\n  source: local\n  path: data/broken.h5ad\n  format: h5ad\n  recipe: scanpy_default\n"
    )
    proc = snakemake(wf, "--cores", "1", "results/data/broken/raw.h5ad")
    assert proc.returncode != 0
    log = (wf / "logs" / "data" / "broken" / "import.log").read_text()
    assert "data/broken.h5ad" in log and "not a readable h5ad file" in log
    assert not (wf / "results" / "data" / "broken" / "raw.h5ad").exists()
    assert not list((wf / "results" / "data" / "broken").glob("*.part"))


def _outputs(workdir):
    """The results a run must reproduce exactly: split files and generated matrices."""
    splits = {p.name: p.read_bytes() for p in sorted((workdir / "results/data/pbmc68k_demo/splits").glob("*.tsv"))}
    splits |= {
        p.name: p.read_bytes() for p in sorted((workdir / "results/augmentation/pbmc68k_demo/splits").glob("*.tsv"))
    }
    generated = {
        p.parent.parent.name: ad.read_h5ad(p).X.toarray()
        for p in sorted((workdir / "results/realism/pbmc68k_demo").glob("*/seed0/generated.h5ad"))
    }
    return splits, generated


@pytest.mark.slow
def test_default_run_report_and_rerun_after_kill(default_run, tmp_path):
    first = default_run
    results = first / "results"
    summary = pd.read_csv(results / "realism/pbmc68k_demo/summary.tsv", sep="\t")
    assert list(summary.columns[:12]) == [
        "dataset", "model", "replicate", "n_real", "n_generated", "rf_auc_mean", "rf_auc_sd", "rf_error", "mmd",
        "correlation_discrepancy", "train_seconds", "generate_seconds",
    ]  # fmt: skip
    rows = summary.set_index("model")
    assert sorted(rows.index) == ["noise", "real_control", "upsample"]
    assert (summary["n_generated"] == summary["n_real"]).all()
    # The positive control is near chance; Poisson noise on every gene is trivially detected.
    assert 0.35 < rows.loc["real_control", "rf_auc_mean"] < 0.65
    assert rows.loc["noise", "rf_auc_mean"] > 0.9 and rows.loc["noise", "rf_error"] < 0.15
    assert rows.loc["noise", "mmd"] > 10 * abs(rows.loc["upsample", "mmd"])
    assert rows.loc["upsample", "gene_mean_pearson"] > 0.95
    assert rows.loc["noise", "zero_fraction_generated"] < 0.5 * rows.loc["upsample", "zero_fraction_generated"]
    assert rows.loc["noise", "train_seconds"] > 0 and rows.loc["noise", "generate_seconds"] >= 0
    figures = results / "realism/pbmc68k_demo/figures"
    for name in ["roc_seed0", "leaderboard", "embedding_umap_set_seed0", "embedding_tsne_marker_seed0"]:
        assert (figures / f"{name}.png").stat().st_size > 10_000, name
    leaderboard = pd.read_csv(results / "realism/leaderboard.tsv", sep="\t")
    assert leaderboard["model"].iloc[0] in {"real_control", "upsample"} and leaderboard["model"].iloc[-1] == "noise"
    above = leaderboard.set_index("model")["rf_auc_above_control"]
    assert above["real_control"] == 0 and above["noise"] > 0.3  # every model against the real control
    # One leaderboard over the three experiments: the upsample baseline has no pilot run, noise no augmentation.
    board = pd.read_csv(results / "leaderboard.tsv", sep="\t").set_index("model")
    assert list(board["role"][["upsample", "noise", "real_control"]]) == ["baseline", "baseline", "control"]
    assert board.loc["upsample", "realism.rf_auc.rank"] == 1
    assert np.isnan(board.loc["real_control", "realism.rf_auc.rank"])
    assert np.isnan(board.loc["upsample", "pilot.ari@96"]) and np.isnan(board.loc["noise", "augmentation.f1@0.05"])
    # Per cluster (Marouf 2020 Fig. 2, Heydari 2022 Fig. 5): the conditional model (upsample) and the real control;
    # the demo's cluster 3 (about 10 test cells) is below the 20-cell minimum.
    per_cluster = pd.read_csv(results / "realism/pbmc68k_demo/per_cluster.tsv", sep="\t", dtype={"cluster": str},
                              keep_default_na=False, na_values={"rf_auc_mean": [""]})  # fmt: skip
    assert set(per_cluster["model"]) == {"upsample", "real_control"}
    scored = per_cluster[per_cluster["skipped"] == ""]
    assert set(scored["cluster"]) == {"0", "1", "2"} and set(per_cluster["cluster"]) == {"0", "1", "2", "3"}
    auc = scored.groupby("model")["rf_auc_mean"].mean()
    assert abs(auc["real_control"] - 0.5) < 0.15 and auc["upsample"] > auc["real_control"]
    for name in ["per_cluster_roc_seed0", "per_cluster_tsne_seed0"]:
        assert (figures / f"{name}.png").stat().st_size > 10_000, name
    assert np.isnan(board.loc["noise", "realism.rf_auc_per_cluster"])  # not conditional: no per-cluster cells
    assert board.loc["upsample", "realism.rf_auc_per_cluster"] == pytest.approx(auc["upsample"], abs=1e-4)
    assert (first / "logs/realism/pbmc68k_demo/noise/seed0/train.log").exists()
    assert (results / "realism/pbmc68k_demo/noise/seed0/train_benchmark.tsv").exists()

    f1 = pd.read_csv(results / "augmentation/pbmc68k_demo/f1.tsv", sep="\t")
    assert set(f1["variant"]) == {"downsampled", "upsampled", "augmented"}
    assert sorted(f1["fraction"].unique()) == [0.05, 0.1, 0.5] and sorted(f1["seed"].unique()) == [0]
    assert f1["target"].nunique() == 1 and f1["f1"].between(0, 1).all()
    # Fewer kept cells, worse classifier: the trend of Marouf Fig. 3 without augmentation.
    down = f1[f1["variant"] == "downsampled"].groupby("fraction")["f1"].mean()
    assert down[0.5] > down[0.05]
    assert (results / "augmentation/pbmc68k_demo/figures/f1_vs_fraction.png").stat().st_size > 10_000

    pilot = pd.read_csv(results / "pilot/pbmc68k_demo/replicates.tsv", sep="\t")
    assert len(pilot) == 3 * 3 and set(pilot["model"]) == {"noise"}  # 3 pilot sizes x 3 seeds
    assert (pilot["n_synthetic"] == 700).all() and pilot["dbi_original"].nunique() == 1
    # Poisson noise on every count blurs the clusters: worse (higher) DBI than the original data's.
    assert (pilot["dbi_synthetic"] > pilot["dbi_original"]).all() and pilot["ari"].between(-1, 1).all()
    # The same on the count matrices (the authors' DBI); their Rand index pairs cells by row: between 0 and 1.
    assert pilot["dbi_counts_original"].nunique() == 1 and pilot["rand_index"].between(0, 1).all()
    assert (pilot["dbi_counts_synthetic"] > pilot["dbi_counts_original"]).all()
    zeros = pd.read_csv(results / "pilot/pbmc68k_demo/zero_inflation.tsv", sep="\t").set_index("training_set")
    assert zeros.loc["pilot_with_added_zeros", "zero_fraction_training"] > zeros.loc["pilot", "zero_fraction_training"]
    per_gene = pd.read_csv(results / "pilot/pbmc68k_demo/noise/zero_inflation_genes.tsv", sep="\t")
    genes = ad.read_h5ad(results / "data/pbmc68k_demo/prepared.h5ad", backed="r").var_names
    assert list(per_gene["gene"]) == list(genes) and (per_gene["pilot_with_added_zeros"] >= per_gene["pilot"]).all()
    for name in ["dbi", "ari", "mad_table", "gene_marginals", "added_zeros", "example_umaps"]:
        assert (results / f"pilot/pbmc68k_demo/figures/{name}.png").stat().st_size > 10_000, name

    html = (first / "report.html").read_text(errors="replace")
    for name in [
        "roc_seed0.png",
        "summary.tsv",
        "leaderboard.tsv",
        "correlation_heatmap.png",
        "f1_vs_fraction.png",
        "training_times.tsv",
        "dbi.png",
        "count_difference.tsv",
    ]:
        assert name in html, name

    # A second run, killed mid-way, then resumed with --rerun-incomplete, gives identical results.
    second = copy_workflow(tmp_path / "second")
    # (realism and augmentation only, up to the generated cells: the resume property is the same for every
    # experiment and every rule, and the evaluations downstream were checked above)
    only = [*configfile_args(second, BASELINES_ONLY), "--config", "experiments=[realism,augmentation]"]
    upstream = ["--until", "generate_cells"]
    proc = subprocess.Popen(
        [*SNAKEMAKE, "--cores", "1", *only],
        cwd=second,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    target = second / "results/data/pbmc68k_demo/prepared.h5ad"
    deadline = time.time() + 600
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (second / "results/realism/leaderboard.tsv").exists()
    # A hard kill leaves Snakemake's lock behind: unlock, then finish what the killed run left incomplete.
    snakemake(second, "--unlock", check=True)
    snakemake(second, "--cores", "2", "--rerun-incomplete", *only, *upstream, check=True)
    assert not (second / "results/realism/leaderboard.tsv").exists()  # --until stopped at the generated cells
    splits_a, gen_a = _outputs(first)
    splits_b, gen_b = _outputs(second)
    assert splits_a == splits_b and len(splits_a) == 1 + 3
    assert gen_a.keys() == gen_b.keys() == {"noise", "upsample"}
    for name in gen_a:
        np.testing.assert_array_equal(gen_a[name], gen_b[name])
