REFERENCE = "results/realism/{dataset}/reference"
CONTROL = "results/realism/{dataset}/real_control/seed{seed}"


rule build_realism_reference:
    input:
        "results/data/{dataset}/prepared.h5ad",
    output:
        representation=REFERENCE + "/representation.npz",
        markers=REFERENCE + "/markers.tsv",
    params:
        n_components=config["realism"]["n_components"],
        marker_genes_per_cluster=config["realism"]["marker_genes_per_cluster"],
    log:
        "logs/realism/{dataset}/reference.log",
    resources:
        mem_mb=8000,
    script:
        "../workflow_scripts/build_realism_reference.py"


rule evaluate_realism:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split="results/data/{dataset}/splits/balanced_seed{seed}.tsv",
        generated=RUN + "/generated.h5ad",
        train_benchmark=RUN + "/train_benchmark.tsv",
        representation=REFERENCE + "/representation.npz",
        markers=REFERENCE + "/markers.tsv",
    output:
        metrics=RUN + "/metrics.json",
        roc=RUN + "/roc.tsv",
        heatmap=RUN + "/marker_correlation.tsv",
    params:
        n_trees=config["realism"]["rf_trees"],
    log:
        LOGS + "/evaluate.log",
    threads: 2
    resources:
        mem_mb=8000,
    script:
        "../workflow_scripts/evaluate_realism.py"


rule evaluate_real_control:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split="results/data/{dataset}/splits/balanced_seed{seed}.tsv",
        representation=REFERENCE + "/representation.npz",
        markers=REFERENCE + "/markers.tsv",
    output:
        metrics=CONTROL + "/metrics.json",
        roc=CONTROL + "/roc.tsv",
        heatmap=CONTROL + "/marker_correlation.tsv",
    params:
        n_trees=config["realism"]["rf_trees"],
    log:
        "logs/realism/{dataset}/real_control/seed{seed}/evaluate.log",
    threads: 2
    resources:
        mem_mb=8000,
    script:
        "../workflow_scripts/evaluate_real_control.py"
