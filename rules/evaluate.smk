REFERENCE = "results/realism/{dataset}/reference"
CONTROL = "results/realism/{dataset}/real_control/seed{seed}"


rule build_realism_representation:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split=realism_split,
    output:
        os.path.join(REFERENCE, "seed{seed}", "representation.npz"),
    log:
        "logs/realism/{dataset}/reference/seed{seed}.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=8000,
    params:
        **representation_params(),
        n_components=config["realism"]["n_components"],
    script:
        "../workflow_scripts/build_realism_representation.py"


rule build_marker_genes:
    input:
        "results/data/{dataset}/prepared.h5ad",
    output:
        os.path.join(REFERENCE, "markers.tsv"),
    log:
        "logs/realism/{dataset}/reference/markers.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=8000,
    params:
        marker_genes_per_cluster=config["realism"]["marker_genes_per_cluster"],
    script:
        "../workflow_scripts/build_marker_genes.py"


rule evaluate_realism:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split=realism_split,
        generated=os.path.join(REALISM_RUN, "generated.h5ad"),
        train_benchmark=os.path.join(REALISM_RUN, "train_benchmark.tsv"),
        representation=os.path.join(REFERENCE, "seed{seed}", "representation.npz"),
        markers=os.path.join(REFERENCE, "markers.tsv"),
    output:
        **modern_output(REALISM_RUN),
        **heatmap_outputs(REALISM_RUN),
        metrics=os.path.join(REALISM_RUN, "metrics.json"),
        roc=os.path.join(REALISM_RUN, "roc.tsv"),
    log:
        os.path.join(REALISM_LOGS, "evaluate.log"),
    conda:
        "../envs/analysis.yaml"
    threads: 2
    resources:
        mem_mb=8000,
    params:
        **modern_params(),
        n_trees=config["realism"]["rf_trees"],
    script:
        "../workflow_scripts/evaluate_realism.py"


rule evaluate_real_control:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split=realism_split,
        representation=os.path.join(REFERENCE, "seed{seed}", "representation.npz"),
        markers=os.path.join(REFERENCE, "markers.tsv"),
    output:
        **modern_output(CONTROL),
        **heatmap_outputs(CONTROL),
        metrics=os.path.join(CONTROL, "metrics.json"),
        roc=os.path.join(CONTROL, "roc.tsv"),
    log:
        "logs/realism/{dataset}/real_control/seed{seed}/evaluate.log",
    conda:
        "../envs/analysis.yaml"
    threads: 2
    resources:
        mem_mb=8000,
    params:
        **modern_params(),
        n_trees=config["realism"]["rf_trees"],
    script:
        "../workflow_scripts/evaluate_real_control.py"


rule evaluate_per_cluster:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split=realism_split,
        generated=os.path.join(REALISM_RUN, "generated.h5ad"),
        representation=os.path.join(REFERENCE, "seed{seed}", "representation.npz"),
    output:
        table=os.path.join(REALISM_RUN, "per_cluster.tsv"),
        roc=os.path.join(REALISM_RUN, "per_cluster_roc.tsv"),
    log:
        os.path.join(REALISM_LOGS, "per_cluster.log"),
    conda:
        "../envs/analysis.yaml"
    threads: 2
    resources:
        mem_mb=8000,
    params:
        n_trees=config["realism"]["rf_trees"],
        min_cells=config["realism"]["per_cluster_min_cells"],
    script:
        "../workflow_scripts/evaluate_per_cluster.py"


rule evaluate_per_cluster_control:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split=realism_split,
        representation=os.path.join(REFERENCE, "seed{seed}", "representation.npz"),
    output:
        table=os.path.join(CONTROL, "per_cluster.tsv"),
        roc=os.path.join(CONTROL, "per_cluster_roc.tsv"),
    log:
        "logs/realism/{dataset}/real_control/seed{seed}/per_cluster.log",
    conda:
        "../envs/analysis.yaml"
    threads: 2
    resources:
        mem_mb=8000,
    params:
        n_trees=config["realism"]["rf_trees"],
        min_cells=config["realism"]["per_cluster_min_cells"],
    script:
        "../workflow_scripts/evaluate_per_cluster.py"


# Augmentation rules write below AUG and AUG_LOGS (rules/common.smk: results/augmentation[/<run>]/{dataset}).


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
        os.path.join(AUG, "f1/frac{fraction}_seed{seed}.tsv"),
    log:
        os.path.join(AUG_LOGS, "evaluate_frac{fraction}_seed{seed}.log"),
    conda:
        "../envs/analysis.yaml"
    threads: 2
    resources:
        mem_mb=8000,
    params:
        models=config["augmentation"]["models"],
        section=config["augmentation"],
    script:
        "../workflow_scripts/evaluate_augmentation.py"


rule summarise_augmentation:
    input:
        expand(
            os.path.join(AUG, "f1/frac{fraction}_seed{seed}.tsv"),
            fraction=config["augmentation"]["fractions"],
            seed=config["augmentation"]["seeds"],
            allow_missing=True,
        ),
    output:
        report(
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
    script:
        "../workflow_scripts/concat_tables.py"


rule realism_training_times:
    input:
        train_logs=lambda w: [
            f"results/realism/{w.dataset}/{model}/seed{seed}/train_log.tsv"
            for model in config["realism"]["models"]
            for seed in config["realism"]["seeds"]
        ],
        benchmarks=lambda w: [
            f"results/realism/{w.dataset}/{model}/seed{seed}/train_benchmark.tsv"
            for model in config["realism"]["models"]
            for seed in config["realism"]["seeds"]
        ],
    output:
        report(
            "results/realism/{dataset}/training_times.tsv",
            caption="../report/training_times.rst",
            category="Realism",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "training time at equal quality"},
        ),
    log:
        "logs/realism/{dataset}/training_times.log",
    conda:
        "../envs/analysis.yaml"
    params:
        device=config["device"],
    script:
        "../workflow_scripts/realism_training_times.py"
