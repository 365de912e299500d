# Everything that is not a rule: config validation, the dataset registry, wildcard constraints,
# input functions and target builders.

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from scsynth_core.config import check_config, model_settings
from scsynth_core.data.registry import load_registry
from scsynth_core.errors import ScsynthError
from scsynth_core.models import available_models

# Types and defaults first (schema), then names (models, datasets, presets, hyperparameters).
validate(config, "../config/schema.yaml")
try:
    REGISTRY = load_registry(config["registry"])
    check_config(config, REGISTRY)
except ScsynthError as exc:
    raise WorkflowError(f"invalid configuration: {exc}")

EXPERIMENTS = config["experiments"]
# Training and generation run on a GPU exactly when the config asks for one.
GPU = 1 if config["device"] == "cuda" else 0


wildcard_constraints:
    dataset="|".join(sorted(REGISTRY)),
    model="|".join(available_models()),
    experiment="|".join(EXPERIMENTS),
    seed=r"\d+",


RUN = "results/{experiment}/{dataset}/{model}/seed{seed}"
LOGS = "logs/{experiment}/{dataset}/{model}/seed{seed}"


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


def train_settings(wildcards):
    return model_settings(config, wildcards.model)


def experiment_config(wildcards):
    return config[wildcards.experiment]


def realism_runs(dataset, seed, filename):
    """``{model: path}`` of ``filename`` for every model run and the real control of one dataset and seed."""
    paths = {
        model: f"results/realism/{dataset}/{model}/seed{seed}/{filename}"
        for model in config["realism"]["models"]
    }
    paths["real_control"] = f"results/realism/{dataset}/real_control/seed{seed}/{filename}"
    return paths


def realism_targets():
    section = config["realism"]
    targets = ["results/realism/leaderboard.tsv"]
    for dataset in section["datasets"]:
        targets += [f"results/realism/{dataset}/summary.tsv", f"results/realism/{dataset}/figures/leaderboard.png"]
        for seed in section["seeds"]:
            figures = f"results/realism/{dataset}/figures"
            targets.append(f"{figures}/roc_seed{seed}.png")
            targets += [
                f"{figures}/embedding_{method}_{colour}_seed{seed}.png"
                for method in section["embeddings"]
                for colour in ("set", "cluster", "marker")
            ]
            targets += [
                f"results/realism/{dataset}/{model}/seed{seed}/correlation_heatmap.png"
                for model in section["models"]
            ]
    return targets


def all_targets():
    builders = {"realism": realism_targets}
    return [target for experiment in EXPERIMENTS for target in builders[experiment]()]
