# Everything that is not a rule: config validation, the dataset registry, wildcard constraints,
# input functions and target builders.

import os

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config

from scsynth_core.config import check_config, conditional_models, model_settings, validate_config, workflow_file
from scsynth_core.data.registry import load_registry
from scsynth_core.errors import ScsynthError
from scsynth_core.models import available_models

# This workflow's root folder (above rules/). Not workflow.basedir: used as a Snakemake module, that is the
# including workflow's folder; not workflow.source_path: that returns a temporary copy of one file.
WORKFLOW_DIR = os.path.dirname(str(workflow.current_basedir))
# envs/*.post-deploy.sh (--sdm conda) install scsynth from this folder; Snakemake runs them from a copy, in the
# working directory, with this process's environment variables, so that is how they learn where it is.
os.environ.update(SCSYNTH_WORKFLOW_DIR=WORKFLOW_DIR)

# Keys the config leaves out take the values of this workflow's config/config.yaml, as when Snakemake reads that
# file first (`configfile:` in the Snakefile). Used as a module with `config: config`, Snakemake skips that
# directive, and the including project's config may then hold only what it changes.
with open(os.path.join(WORKFLOW_DIR, "config", "config.yaml"), encoding="utf-8") as _fh:
    _defaults = yaml.safe_load(_fh)
update_config(_defaults, config)
config.update(_defaults)

# Types and defaults first (schema; command-line strings read as the numbers it expects), then names (models,
# datasets, presets, hyperparameters).
try:
    validate_config(config, os.path.join(WORKFLOW_DIR, "config", "schema.yaml"))
    # config/datasets.yaml of the working directory if there is one, else this workflow's (module use)
    REGISTRY_FILE = workflow_file("registry", config["registry"], WORKFLOW_DIR)
    REGISTRY = load_registry(REGISTRY_FILE)
    check_config(config, REGISTRY)
except ScsynthError as exc:
    raise WorkflowError(f"invalid configuration: {exc}")

EXPERIMENTS = config["experiments"]
# Folder of each experiment under results/ and logs/. A named augmentation run (augmentation.run) gets its own
# below augmentation/, so that two augmentation configs run in one folder never overwrite each other.
AUG_DIR = os.path.normpath(os.path.join("augmentation", config.get("augmentation", {}).get("run", "")))
EXPERIMENT_DIRS = {e: AUG_DIR if e == "augmentation" else e for e in EXPERIMENTS}
EXPERIMENT_OF_DIR = {folder: e for e, folder in EXPERIMENT_DIRS.items()}
AUG = os.path.join("results", AUG_DIR, "{dataset}")
AUG_LOGS = os.path.join("logs", AUG_DIR, "{dataset}")
# Resources of the jobs that can use a GPU (training, generation), unpacked into their `resources:`.
# `device: cuda` requests one GPU. Jobs that ask for none carry no `gpu` key at all: the Kubernetes executor
# treats any `gpu` key, even 0, as a GPU request (and fails without a manufacturer). GPU-capable jobs always
# name the manufacturer (unless device: cpu), so a profile may add `gpu` to them (`set-resources`, e.g. for
# `device: auto` on Kubernetes); a profile's `set-resources: {rule: {gpu_manufacturer: amd}}` overrides it.
GPU_RESOURCES = {
    "cuda": {"gpu": 1, "gpu_manufacturer": "nvidia"},
    "auto": {"gpu_manufacturer": "nvidia"},
    "cpu": {},
}[config["device"]]


wildcard_constraints:
    dataset="|".join(sorted(REGISTRY)),
    model="|".join(available_models()),
    experiment="|".join(EXPERIMENT_DIRS.values()),
    seed=r"\d+",
    fraction=r"0?\.\d+|1(\.0)?",
    replicate=r"seed\d+|frac(0?\.\d+|1(\.0)?)_seed\d+",
    batch=r"\d+",
    simulation="linear|nonlinear|prosstt[345]",
    dim=r"\d+",
    combination=r"[^/]+_x_[^/]+",


# One run = one model trained and sampled for one replicate of one experiment: realism replicates are
# "seed{seed}" (a balanced split), augmentation replicates "frac{fraction}_seed{seed}" (a downsampling).
# {experiment} is the experiment's folder (EXPERIMENT_DIRS), e.g. augmentation/marouf2020 for a named run.
RUN = "results/{experiment}/{dataset}/{model}/{replicate}"
LOGS = "logs/{experiment}/{dataset}/{model}/{replicate}"
REALISM_RUN = "results/realism/{dataset}/{model}/seed{seed}"
REALISM_LOGS = "logs/realism/{dataset}/{model}/seed{seed}"
# Today's metric groups the realism runs add to the papers' panel (realism.metrics after "papers"; none by default).
MODERN_METRICS = [m for m in config["realism"]["metrics"] if m != "papers"]


def heatmap_file(heatmap, stem, ext):
    """A run's file of one marker heatmap (realism.heatmaps): activa (Heydari Fig. 4) keeps the original names
    (marker_correlation.tsv, correlation_heatmap.png), the others add their name (..._marouf.png)."""
    suffix = "" if heatmap == "activa" else f"_{heatmap}"
    return f"{stem}{suffix}.{ext}"


# Conditional realism models (per-cluster realism, Marouf 2020 Fig. 2 / Heydari 2022 Fig. 5; none: no such outputs).
PER_CLUSTER_MODELS = (
    conditional_models(config["realism"]["models"])
    if "realism" in EXPERIMENTS and config["realism"]["per_cluster"]
    else []
)


def modern_output(run):
    """The run's table of today's metrics, only when realism.metrics asks for some: without them the evaluation
    rules keep today's outputs and parameters (no re-runs of finished evaluations)."""
    return {"modern": os.path.join(run, "modern_metrics.tsv")} if MODERN_METRICS else {}


def modern_params():
    return {"metrics": config["realism"]["metrics"]} if MODERN_METRICS else {}


def leaderboard_inputs(wildcards):
    """The summary table of every configured experiment that the cross-experiment leaderboard reads."""
    datasets = {e: config.get(e, {}).get("datasets", []) for e in ("augmentation", "pilot")}
    inputs = {
        "realism": "results/realism/leaderboard.tsv",
        "augmentation": [os.path.join(AUG.format(dataset=d), "f1.tsv") for d in datasets["augmentation"]],
        "pilot": [f"results/pilot/{d}/replicates.tsv" for d in datasets["pilot"]],
        "disentanglement": "results/disentanglement/runs.tsv",
        "perturbation": "results/perturbation/runs.tsv",
    }
    chosen = {name: paths for name, paths in inputs.items() if name in EXPERIMENTS}
    if PER_CLUSTER_MODELS:  # part of the realism experiment when it has conditional models
        chosen["per_cluster"] = [f"results/realism/{d}/per_cluster.tsv" for d in config["realism"]["datasets"]]
    return chosen


def balanced_split(dataset, test_fraction, seed):
    return f"results/data/{dataset}/splits/test{test_fraction}_seed{seed}.tsv"


def downsample_params():
    """``fraction_of`` of the downsampling rule, only when it is not the default ("training"): finished default
    runs keep their parameters (no re-runs)."""
    fraction_of = config["augmentation"]["fraction_of"]
    return {"fraction_of": fraction_of} if fraction_of != "training" else {}


def realism_split(wildcards):
    return balanced_split(wildcards.dataset, config["realism"]["test_fraction"], wildcards.seed)


def replicate_seed(wildcards):
    """The seed of a run (training and generation), from its replicate name."""
    return int(wildcards.replicate.rpartition("seed")[2])


def wildcard_seed(wildcards):
    """A job's ``{seed}`` wildcard as the number its step takes."""
    return int(wildcards.seed)


def run_split(wildcards):
    """The split file whose 'train' cells a run trains on."""
    if EXPERIMENT_OF_DIR[wildcards.experiment] == "augmentation":
        return os.path.join(AUG.format(dataset=wildcards.dataset), "splits", f"{wildcards.replicate}.tsv")
    return balanced_split(wildcards.dataset, config["realism"]["test_fraction"], replicate_seed(wildcards))


def dataset_spec(wildcards):
    return REGISTRY[wildcards.dataset]


def import_inputs(wildcards):
    """What importing a dataset needs: the download manifest, a local file, or nothing (bundled)."""
    spec = dataset_spec(wildcards)
    if spec["source"] == "url":
        return {"manifest": f"resources/datasets/{wildcards.dataset}/manifest.json"}
    if spec["source"] == "local":
        return {"local": spec["path"]}
    return {}


def generation_inputs(wildcards):
    """The generation step's data for this run's experiment: realism generates like the real test cells (``like``,
    ``like_split``), augmentation resolves its target cluster in the prepared data (``target_of``)."""
    prepared = f"results/data/{wildcards.dataset}/prepared.h5ad"
    if EXPERIMENT_OF_DIR[wildcards.experiment] == "augmentation":
        return {"target_of": prepared}
    return {"like": prepared, "like_split": run_split(wildcards)}


def generation_request(wildcards):
    """The generation step's other arguments for this run's experiment: realism takes the test subset of its
    split, augmentation ``n_cells`` cells of its target cluster (the largest number it evaluates)."""
    if EXPERIMENT_OF_DIR[wildcards.experiment] == "augmentation":
        section = config["augmentation"]
        n_cells = max([section["n_generated"], *section["n_generated_sweep"]])
        return {"like_subset": None, "target": section["target"], "n_cells": n_cells}
    return {"like_subset": "test", "target": None, "n_cells": None}


def train_settings(wildcards):
    return model_settings(config, wildcards.model, REGISTRY.get(getattr(wildcards, "dataset", ""), {}))


def train_setting(key, settings=train_settings):
    """One key of a run's model settings (preset, params, max_steps) as a param function; ``settings`` gives
    them (a pilot model's: pilot_train_settings)."""
    return lambda wildcards: settings(wildcards)[key]


def experiment_config(wildcards):
    return config[EXPERIMENT_OF_DIR[wildcards.experiment]]


def realism_runs(dataset, seed, filename):
    """``{model: path}`` of ``filename`` for every model run and the real control of one dataset and seed."""
    paths = {model: f"results/realism/{dataset}/{model}/seed{seed}/{filename}" for model in config["realism"]["models"]}
    paths["real_control"] = f"results/realism/{dataset}/real_control/seed{seed}/{filename}"
    return paths


def per_cluster_runs(dataset, seed, filename):
    """``{model: path}`` of ``filename`` for every conditional model's run and the real control (per-cluster
    realism)."""
    paths = realism_runs(dataset, seed, filename)
    return {model: path for model, path in paths.items() if model in PER_CLUSTER_MODELS or model == "real_control"}


def realism_run_ids(dataset, per_cluster=False):
    """The identity (dataset, model, replicate) of every run of one dataset's realism summaries, seed by seed: the
    models and the real control (``per_cluster``: the conditional models and the control)."""
    runs = per_cluster_runs if per_cluster else realism_runs
    return [
        {"dataset": dataset, "model": model, "replicate": f"seed{seed}"}
        for seed in config["realism"]["seeds"]
        for model in runs(dataset, seed, "")
    ]


def realism_model_run_ids(dataset):
    """The identity of every model run of one dataset, model by model (no real control: training times)."""
    return [
        {"dataset": dataset, "model": model, "replicate": f"seed{seed}"}
        for model in config["realism"]["models"]
        for seed in config["realism"]["seeds"]
    ]


def run_file(run, filename):
    """``filename`` of a realism run given by its identity."""
    return os.path.join("results", "realism", run["dataset"], run["model"], run["replicate"], filename)


def realism_run_files(dataset, filename, per_cluster=False):
    return [run_file(run, filename) for run in realism_run_ids(dataset, per_cluster)]


def realism_model_runs(dataset, filename):
    return [run_file(run, filename) for run in realism_model_run_ids(dataset)]


def realism_embedding_marker(dataset):
    """``realism.embedding_marker`` of one dataset: a gene name or "auto"."""
    from scsynth_core.experiments.realism import dataset_embedding_marker

    section = config["realism"]
    try:
        return dataset_embedding_marker(section["embedding_marker"], dataset, section["datasets"])
    except ScsynthError as exc:
        raise WorkflowError(f"invalid configuration: {exc}")


def realism_targets():
    section = config["realism"]
    targets = ["results/realism/leaderboard.tsv"]
    for dataset in section["datasets"]:
        realism_embedding_marker(dataset)  # a wrong setting stops the run before any job
        targets += [
            f"results/realism/{dataset}/summary.tsv",
            f"results/realism/{dataset}/training_times.tsv",
            f"results/realism/{dataset}/figures/leaderboard.png",
            f"results/realism/{dataset}/figures/training_curves.png",
        ]
        if MODERN_METRICS:
            targets += [
                f"results/realism/{dataset}/modern_metrics.tsv",
                f"results/realism/{dataset}/figures/modern_metrics.png",
            ]
        if PER_CLUSTER_MODELS:
            targets.append(f"results/realism/{dataset}/per_cluster.tsv")
        if section["actinn_tables"]:  # Heydari 2022 Supp. Tables S6-S7 (rules/classification.smk)
            targets.append(f"results/realism/{dataset}/actinn/summary.tsv")
        for seed in section["seeds"]:
            figures = f"results/realism/{dataset}/figures"
            targets.append(f"{figures}/roc_seed{seed}.png")
            if PER_CLUSTER_MODELS:
                targets += [f"{figures}/per_cluster_{kind}_seed{seed}.png" for kind in ("roc", "tsne")]
            targets += [
                f"{figures}/embedding_{method}_{colour}_seed{seed}.png"
                for method in section["embeddings"]
                for colour in ("set", "cluster", "marker")
            ]
            targets += [
                f"results/realism/{dataset}/{model}/seed{seed}/{heatmap_file(heatmap, 'correlation_heatmap', 'png')}"
                for model in section["models"]
                for heatmap in section["heatmaps"]
            ]
    return targets


def augmentation_targets():
    section = config["augmentation"]
    targets = []
    for dataset in section["datasets"]:
        folder = AUG.format(dataset=dataset)
        targets += [f"{folder}/f1.tsv", f"{folder}/figures/f1_vs_fraction.png"]
        targets += [
            f"{folder}/{model}/frac{fraction}_seed{section['seeds'][0]}/tsne_target.png"
            for model in section["models"]
            for fraction in section["embedding_fractions"]
            if fraction in section["fractions"]
        ]
    return targets


def pilot_batches():
    """The (pilot size, seed) grid, sizes ascending then seeds, in chunks of ``replicates_per_job`` (one job each)."""
    section = config["pilot"]
    grid = [[size, seed] for size in sorted(section["pilot_sizes"]) for seed in section["seeds"]]
    k = section["replicates_per_job"]
    return [grid[i : i + k] for i in range(0, len(grid), k)]


def pilot_batch_replicates(wildcards):
    return pilot_batches()[int(wildcards.batch)]


def pilot_runs(dataset, filename):
    """Paths of ``filename`` (with ``{batch}``) for every model and batch of one dataset."""
    return [
        os.path.join(f"results/pilot/{dataset}/{model}", filename.format(batch=batch))
        for model in config["pilot"]["models"]
        for batch in range(len(pilot_batches()))
    ]


def pilot_examples(dataset):
    """``{model: path}`` of the example synthetic set at the largest pilot size and the first seed."""
    largest = [max(config["pilot"]["pilot_sizes"]), config["pilot"]["seeds"][0]]
    batch = next(b for b, replicates in enumerate(pilot_batches()) if largest in replicates)
    return {m: f"results/pilot/{dataset}/{m}/batch{batch}_example.h5ad" for m in config["pilot"]["models"]}


def pilot_example_genes(dataset):
    """``pilot.example_genes`` of one dataset: a number of genes or gene names."""
    from scsynth_core.experiments.pilot import dataset_example_genes

    section = config["pilot"]
    try:
        return dataset_example_genes(section["example_genes"], dataset, section["datasets"])
    except ScsynthError as exc:
        raise WorkflowError(f"invalid configuration: {exc}")


def pilot_targets():
    targets = []
    figures = ("dbi", "ari", "mad_table", "gene_marginals", "added_zeros", "example_umaps")
    for dataset in config["pilot"]["datasets"]:
        pilot_example_genes(dataset)  # a wrong setting stops the run before any job
        base = f"results/pilot/{dataset}"
        targets += [f"{base}/{name}" for name in ("replicates.tsv", "count_difference.tsv", "zero_inflation.tsv")]
        targets += [f"{base}/figures/{name}.png" for name in figures]
    return targets


def disentanglement_runs(filename):
    """``{simulation: [path, ...]}`` of ``filename`` for every model, latent dimension and seed."""
    section = config["disentanglement"]
    return {
        simulation: [
            f"results/disentanglement/{simulation}/{model}/dim{dim}_seed{seed}/{filename}"
            for model in section["models"]
            for dim in section["latent_dims"]
            for seed in section["seeds"]
        ]
        for simulation in section["simulations"]
    }


def disentanglement_examples(simulation, filename="latents.npy"):
    """``{model: filename}`` of the run shown in the UMAPs and per-dimension bars: first latent-dimension setting,
    first seed."""
    section = config["disentanglement"]
    run = f"dim{section['latent_dims'][0]}_seed{section['seeds'][0]}"
    return {m: f"results/disentanglement/{simulation}/{m}/{run}/{filename}" for m in section["models"]}


def file_groups(files):
    """The group of each file of ``{group: [path, ...]}``, in the order of its flattened paths (a summary's
    param beside its inputs: the simulation of each run)."""
    return [group for group, paths in files.items() for _ in paths]


def code_data_runs():
    """``{simulation: [metrics.json, ...]}`` of the code-data comparison: every GAN and seed."""
    section = config["disentanglement"]
    return {
        simulation: [
            f"results/disentanglement/{simulation}/code_data/{model}_seed{seed}.json"
            for model in section["code_data_models"]
            for seed in section["seeds"]
        ]
        for simulation in section["simulations"]
    }


def code_data_figures():
    simulations = config["disentanglement"]["simulations"]
    return {s: f"results/disentanglement/figures/{s}_code_data.png" for s in simulations}


def code_data_examples(simulation):
    """``{GAN: cells.npz}`` of the first seed's code-data runs (Fig. 4a UMAPs, Fig. 5 traversals)."""
    section = config["disentanglement"]
    seed = section["seeds"][0]
    return {
        m: f"results/disentanglement/{simulation}/code_data/{m}_seed{seed}_cells.npz"
        for m in section.get("code_data_models", [])
    }


def code_data_generators(traversals=False):
    """Generators whose cells a code-data run keeps: each GAN, and MichiGAN's beta-TCVAE decoding its codes;
    ``traversals``: only those with codes to traverse (MichiGAN and its beta-TCVAE)."""
    models = config.get("disentanglement", {}).get("code_data_models", [])
    with_codes = ["michigan", "betatcvae"] if "michigan" in models else []
    return with_codes if traversals else [m for m in models if m != "michigan"] + with_codes


def code_data_figure_targets(simulation):
    figures = f"results/disentanglement/figures/{simulation}"
    return [f"{figures}_code_umap_{g}.png" for g in code_data_generators()] + [
        f"{figures}_traversal_{g}.png" for g in code_data_generators(traversals=True)
    ]


def disentanglement_targets():
    section = config["disentanglement"]
    targets = ["results/disentanglement/runs.tsv", "results/disentanglement/scores.tsv"]
    for simulation in section["simulations"]:
        targets += [f"results/disentanglement/figures/{simulation}_{name}.png" for name in ("scores", "dimensions")]
        targets += [f"results/disentanglement/figures/{simulation}_umap_{m}.png" for m in section["models"]]
        if section["code_data_models"]:
            targets += code_data_figure_targets(simulation)
    if section["code_data_models"]:
        targets += ["results/disentanglement/code_data.tsv", "results/disentanglement/code_data_scores.tsv"]
        targets += code_data_figures().values()
    return targets


def perturbation_combinations():
    """``{file name: combination}`` of the held-out combinations (``TYPE:CONDITION`` -> ``TYPE_x_CONDITION``)."""
    return {c.replace(":", "_x_").replace(" ", "-"): c for c in config["perturbation"]["held_out"]}


def representation_params():
    """realism.representation, only when it is not the default: finished default runs keep their parameters."""
    kind = config["realism"]["representation"]
    return {} if kind == "scsynth" else {"kind": kind}


def heatmap_outputs(run):
    """The marker correlations of each of realism.heatmaps, in its order."""
    return [
        os.path.join(run, heatmap_file(heatmap, "marker_correlation", "tsv"))
        for heatmap in config["realism"]["heatmaps"]
    ]


def embedding_panels():
    """``(method, colour)`` of every realism embedding figure (realism.embeddings x set, cluster, marker)."""
    return [(method, colour) for method in config["realism"]["embeddings"] for colour in ("set", "cluster", "marker")]


def embedding_marker_params():
    """The embeddings' marker gene (realism.embedding_marker), only when it is not "auto" for every dataset:
    finished default runs keep their parameters."""
    if config["realism"]["embedding_marker"] == "auto":
        return {}
    return {"marker": lambda w: realism_embedding_marker(w.dataset)}


def actinn_conditioner(wildcards):
    """ACTIVA's model file of the same split, when ACTIVA is a realism model: its conditioner is scored too."""
    if "activa" not in config["realism"]["models"]:
        return {}
    return {"activa": f"results/realism/{wildcards.dataset}/activa/seed{wildcards.seed}/model.pt"}


def perturbation_data(wildcards=None):
    """The counts the perturbation experiment holds combinations out of: the simulation or a prepared dataset."""
    dataset = config["perturbation"]["dataset"]
    return "results/perturbation/simulated.h5ad" if dataset == "simulated" else f"results/data/{dataset}/prepared.h5ad"


def perturbation_runs(filename):
    seeds = config["perturbation"]["seeds"]
    return [f"results/perturbation/{c}/seed{s}/{filename}" for c in perturbation_combinations() for s in seeds]


def perturbation_targets():
    base = "results/perturbation"
    figures = [f"{base}/figures/{name}.png" for name in ("rf_error", "delta_h_improvement", "umap")]
    if config["perturbation"]["retrain_lowest"]:  # Fig. 7b, rules/perturbation.smk
        figures += [f"{base}/retrain_lowest_delta_h.tsv", f"{base}/figures/retrain_lowest_delta_h.png"]
    return [f"{base}/runs.tsv", f"{base}/scores.tsv", f"{base}/improvement.tsv", *figures]


def pilot_train_settings(wildcards):
    """Settings of the registered model a pilot model trains (a variant's fixed values are added by the step)."""
    from scsynth_core.experiments.pilot import base_model

    dataset = REGISTRY.get(wildcards.dataset, {})
    return model_settings(config, base_model(wildcards.model), dataset)


def perturbation_train_settings(wildcards):
    """MichiGAN's settings: the model every perturbation run trains."""
    return model_settings(config, "michigan")


def disentanglement_settings(wildcards):
    """The model's settings with the run_params entries that match this run (the paper's beta per data set)."""
    from scsynth_core.experiments.disentanglement import run_params

    settings = train_settings(wildcards)
    dim = int(wildcards.dim) if hasattr(wildcards, "dim") else None
    params = run_params(
        config["disentanglement"],
        simulation=wildcards.simulation,
        model=wildcards.model,
        latent_dim=dim,
        params=settings["params"],
    )
    return settings | {"params": params}


def perturbation_retrained(filename):
    """The retrained runs of the combinations the delta-H ranking selected (known once it has run)."""
    from scsynth_core.experiments.perturbation import selected_combinations

    ranking = checkpoints.perturbation_lowest_delta_h.get().output[0]
    names = {c: name for name, c in perturbation_combinations().items()}
    return [
        os.path.join(PERT, names[c], f"seed{s}", filename)
        for c in selected_combinations(ranking)
        for s in PERT_RETRAIN_SEEDS
    ]


def all_targets():
    builders = {
        "realism": realism_targets,
        "augmentation": augmentation_targets,
        "pilot": pilot_targets,
        "disentanglement": disentanglement_targets,
        "perturbation": perturbation_targets,
    }
    targets = [target for experiment in EXPERIMENTS for target in builders[experiment]()]
    if len(EXPERIMENTS) > 1:  # one leaderboard over the experiments
        targets += ["results/leaderboard.tsv", "results/leaderboard.png"]
    return targets
