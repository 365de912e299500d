# The augmentation experiment (scsynth_core/experiments/augmentation.py; config section augmentation): a cluster's
# training cells downsampled, classifiers of it with downsampled, upsampled and generated cells, and figures. Rules
# write below AUG and AUG_LOGS (rules/common.smk: results/augmentation[/<run>]/{dataset}); every rule calls its
# step through workflow_scripts/run_step.py (docs/development.md).


rule downsample_cluster:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split=lambda w: balanced_split(
            w.dataset, config["augmentation"]["test_fraction"], config["augmentation"]["split_seed"]
        ),
    output:
        outputs=expand(
            os.path.join(AUG, "splits/frac{fraction}_seed{seed}.tsv"),
            fraction=config["augmentation"]["fractions"],
            allow_missing=True,
        ),
    log:
        os.path.join(AUG_LOGS, "downsample_seed{seed}.log"),
    conda:
        "../envs/analysis.yaml"
    params:
        **downsample_params(),
        step="scsynth_core.experiments.augmentation:downsample_dataset",
        fractions=config["augmentation"]["fractions"],
        target=config["augmentation"]["target"],
        seed=wildcard_seed,
    script:
        "../workflow_scripts/run_step.py"


rule evaluate_augmentation:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split=os.path.join(AUG, "splits/frac{fraction}_seed{seed}.tsv"),
        generated=expand(
            os.path.join(AUG, "{model}/frac{{fraction}}_seed{{seed}}/generated.h5ad"),
            model=config["augmentation"]["models"],
            allow_missing=True,
        ),
    output:
        output=os.path.join(AUG, "f1/frac{fraction}_seed{seed}.tsv"),
    log:
        os.path.join(AUG_LOGS, "evaluate_frac{fraction}_seed{seed}.log"),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=8000,
    params:
        step="scsynth_core.experiments.augmentation:evaluate_augmentation",
        models=config["augmentation"]["models"],
        fraction=lambda w: float(w.fraction),
        seed=wildcard_seed,
        target=config["augmentation"]["target"],
        n_extra=config["augmentation"]["n_generated"],
        sweep=config["augmentation"]["n_generated_sweep"],
        compare_with=config["augmentation"]["compare_with"],
        n_trees=config["augmentation"]["rf_trees"],
    script:
        "../workflow_scripts/run_step.py"


rule summarise_augmentation:
    input:
        inputs=expand(
            os.path.join(AUG, "f1/frac{fraction}_seed{seed}.tsv"),
            fraction=config["augmentation"]["fractions"],
            seed=config["augmentation"]["seeds"],
            allow_missing=True,
        ),
    output:
        output=report(
            os.path.join(AUG, "f1.tsv"),
            caption="../report/augmentation_table.rst",
            category="Augmentation",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "F1 per fraction, seed and variant"},
        ),
    log:
        os.path.join(AUG_LOGS, "summary.log"),
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.steps:concat_tables",
    script:
        "../workflow_scripts/run_step.py"


rule plot_augmentation_f1:
    input:
        table=os.path.join(AUG, "f1.tsv"),
    output:
        output=report(
            os.path.join(AUG, "figures/f1_vs_fraction.png"),
            caption="../report/augmentation_f1.rst",
            category="Augmentation",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "F1 vs kept fraction"},
        ),
    log:
        os.path.join(AUG_LOGS, "figures/f1.log"),
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.augmentation:plot_augmentation_f1",
        n_extra=config["augmentation"]["n_generated"],
        title=lambda w: f"{w.dataset}: F1 of the downsampled cluster",
    script:
        "../workflow_scripts/run_step.py"


rule plot_augmentation_embedding:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split=os.path.join(AUG, "splits/frac{fraction}_seed{seed}.tsv"),
        generated=os.path.join(AUG, "{model}/frac{fraction}_seed{seed}/generated.h5ad"),
    output:
        output=report(
            os.path.join(AUG, "{model}/frac{fraction}_seed{seed}/tsne_target.png"),
            caption="../report/augmentation_tsne.rst",
            category="Augmentation",
            subcategory="{dataset}",
            labels={
                "dataset": "{dataset}",
                "figure": "t-SNE of the target cluster: {model}, {fraction}, seed {seed}",
            },
        ),
    log:
        os.path.join(AUG_LOGS, "{model}/frac{fraction}_seed{seed}/tsne.log"),
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.augmentation:plot_augmentation_embedding",
        target=config["augmentation"]["target"],
        seed=wildcard_seed,
        title=lambda w: f"{w.model} on {w.dataset}: target cluster at {float(w.fraction):.3g} kept (seed {w.seed})",
    script:
        "../workflow_scripts/run_step.py"
