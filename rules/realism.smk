# The realism experiment (scsynth_core/experiments/realism.py; config section realism; results/realism/): generated
# cells against the real test cells per run and per cluster, the real control, summaries, leaderboards, training
# times and figures. Every rule calls its step through workflow_scripts/run_step.py: named inputs, outputs and
# params are the step's keyword arguments (docs/development.md).
REFERENCE = "results/realism/{dataset}/reference"
CONTROL = "results/realism/{dataset}/real_control/seed{seed}"
FIGURES = "results/realism/{dataset}/figures"


rule build_realism_representation:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split=realism_split,
    output:
        representation=os.path.join(REFERENCE, "seed{seed}", "representation.npz"),
    log:
        "logs/realism/{dataset}/reference/seed{seed}.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=8000,
    params:
        **representation_params(),
        step="scsynth_core.experiments.realism:build_realism_representation",
        n_components=config["realism"]["n_components"],
        seed=wildcard_seed,
    script:
        "../workflow_scripts/run_step.py"


rule build_marker_genes:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
    output:
        markers=os.path.join(REFERENCE, "markers.tsv"),
    log:
        "logs/realism/{dataset}/reference/markers.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=8000,
    params:
        step="scsynth_core.experiments.realism:build_marker_genes",
        marker_genes_per_cluster=config["realism"]["marker_genes_per_cluster"],
    script:
        "../workflow_scripts/run_step.py"


rule evaluate_realism:
    input:
        real="results/data/{dataset}/prepared.h5ad",
        split=realism_split,
        generated=os.path.join(REALISM_RUN, "generated.h5ad"),
        train_benchmark=os.path.join(REALISM_RUN, "train_benchmark.tsv"),
        representation=os.path.join(REFERENCE, "seed{seed}", "representation.npz"),
        markers=os.path.join(REFERENCE, "markers.tsv"),
    output:
        **modern_output(REALISM_RUN),
        heatmaps=heatmap_outputs(REALISM_RUN),
        output=os.path.join(REALISM_RUN, "metrics.json"),
        roc=os.path.join(REALISM_RUN, "roc.tsv"),
    log:
        os.path.join(REALISM_LOGS, "evaluate.log"),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=8000,
    params:
        **modern_params(),
        step="scsynth_core.experiments.realism:evaluate_realism",
        heatmap_names=config["realism"]["heatmaps"],
        n_trees=config["realism"]["rf_trees"],
        seed=wildcard_seed,
    script:
        "../workflow_scripts/run_step.py"


rule evaluate_real_control:
    input:
        real="results/data/{dataset}/prepared.h5ad",
        split=realism_split,
        representation=os.path.join(REFERENCE, "seed{seed}", "representation.npz"),
        markers=os.path.join(REFERENCE, "markers.tsv"),
    output:
        **modern_output(CONTROL),
        heatmaps=heatmap_outputs(CONTROL),
        output=os.path.join(CONTROL, "metrics.json"),
        roc=os.path.join(CONTROL, "roc.tsv"),
    log:
        "logs/realism/{dataset}/real_control/seed{seed}/evaluate.log",
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=8000,
    params:
        **modern_params(),
        step="scsynth_core.experiments.realism:evaluate_real_control",
        heatmap_names=config["realism"]["heatmaps"],
        n_trees=config["realism"]["rf_trees"],
        seed=wildcard_seed,
    script:
        "../workflow_scripts/run_step.py"


rule evaluate_per_cluster:
    input:
        real="results/data/{dataset}/prepared.h5ad",
        split=realism_split,
        generated=os.path.join(REALISM_RUN, "generated.h5ad"),
        representation=os.path.join(REFERENCE, "seed{seed}", "representation.npz"),
    output:
        output=os.path.join(REALISM_RUN, "per_cluster.tsv"),
        roc=os.path.join(REALISM_RUN, "per_cluster_roc.tsv"),
    log:
        os.path.join(REALISM_LOGS, "per_cluster.log"),
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=8000,
    params:
        step="scsynth_core.experiments.realism:evaluate_per_cluster_realism",
        n_trees=config["realism"]["rf_trees"],
        min_cells=config["realism"]["per_cluster_min_cells"],
        seed=wildcard_seed,
    script:
        "../workflow_scripts/run_step.py"


rule evaluate_per_cluster_control:
    input:
        real="results/data/{dataset}/prepared.h5ad",
        split=realism_split,
        representation=os.path.join(REFERENCE, "seed{seed}", "representation.npz"),
    output:
        output=os.path.join(CONTROL, "per_cluster.tsv"),
        roc=os.path.join(CONTROL, "per_cluster_roc.tsv"),
    log:
        "logs/realism/{dataset}/real_control/seed{seed}/per_cluster.log",
    conda:
        "../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=8000,
    params:
        step="scsynth_core.experiments.realism:evaluate_per_cluster_realism",
        n_trees=config["realism"]["rf_trees"],
        min_cells=config["realism"]["per_cluster_min_cells"],
        seed=wildcard_seed,
    script:
        "../workflow_scripts/run_step.py"


rule realism_training_times:
    input:
        train_logs=lambda w: realism_model_runs(w.dataset, "train_log.tsv"),
        benchmarks=lambda w: realism_model_runs(w.dataset, "train_benchmark.tsv"),
    output:
        output=report(
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
        step="scsynth_core.experiments.realism:training_times",
        runs=lambda w: realism_model_run_ids(w.dataset),
        device=config["device"],
    script:
        "../workflow_scripts/run_step.py"


# -- summaries, leaderboards and figures -------------------------------------------------------------------------


rule plot_realism_embeddings:
    input:
        real="results/data/{dataset}/prepared.h5ad",
        split=realism_split,
        markers=os.path.join(REFERENCE, "markers.tsv"),
        generated=expand(
            "results/realism/{{dataset}}/{model}/seed{{seed}}/generated.h5ad",
            model=config["realism"]["models"],
        ),
    output:
        outputs=[
            report(
                f"{FIGURES}/embedding_{method}_{colour}_seed{{seed}}.png",
                caption="../report/embedding.rst",
                category="Realism",
                subcategory="{dataset}",
                labels={
                    "dataset": "{dataset}",
                    "seed": "{seed}",
                    "figure": f"{method.upper()} by {colour}",
                },
            )
            for method, colour in embedding_panels()
        ],
    log:
        "logs/realism/{dataset}/figures/embeddings_seed{seed}.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=8000,
    params:
        **embedding_marker_params(),
        step="scsynth_core.experiments.realism:plot_realism_embeddings",
        models=config["realism"]["models"],
        panels=[f"{method}_{colour}" for method, colour in embedding_panels()],
        seed=wildcard_seed,
        dataset=lambda w: w.dataset,
        title=lambda w: f"{w.dataset}, seed {w.seed}",
    script:
        "../workflow_scripts/run_step.py"


rule plot_realism_roc:
    input:
        rocs=lambda w: list(realism_runs(w.dataset, w.seed, "roc.tsv").values()),
        metrics=lambda w: list(realism_runs(w.dataset, w.seed, "metrics.json").values()),
    output:
        output=report(
            os.path.join(FIGURES, "roc_seed{seed}.png"),
            caption="../report/roc.rst",
            category="Realism",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "seed": "{seed}", "figure": "ROC curves"},
        ),
    log:
        "logs/realism/{dataset}/figures/roc_seed{seed}.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.realism:plot_realism_roc",
        names=lambda w: list(realism_runs(w.dataset, w.seed, "roc.tsv")),
        title=lambda w: f"{w.dataset}, seed {w.seed}: real vs generated",
    script:
        "../workflow_scripts/run_step.py"


rule plot_per_cluster_roc:
    input:
        tables=lambda w: list(per_cluster_runs(w.dataset, w.seed, "per_cluster.tsv").values()),
        rocs=lambda w: list(per_cluster_runs(w.dataset, w.seed, "per_cluster_roc.tsv").values()),
    output:
        output=report(
            os.path.join(FIGURES, "per_cluster_roc_seed{seed}.png"),
            caption="../report/per_cluster_roc.rst",
            category="Realism",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "seed": "{seed}", "figure": "ROC curves per cluster"},
        ),
    log:
        "logs/realism/{dataset}/figures/per_cluster_roc_seed{seed}.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.realism:plot_per_cluster_roc",
        names=lambda w: list(per_cluster_runs(w.dataset, w.seed, "per_cluster.tsv")),
        title=lambda w: f"{w.dataset}, seed {w.seed}: real vs generated, cluster by cluster",
    script:
        "../workflow_scripts/run_step.py"


rule plot_per_cluster_embedding:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split=realism_split,
        generated=expand(
            "results/realism/{{dataset}}/{model}/seed{{seed}}/generated.h5ad",
            model=PER_CLUSTER_MODELS,
        ),
    output:
        output=report(
            os.path.join(FIGURES, "per_cluster_tsne_seed{seed}.png"),
            caption="../report/per_cluster_tsne.rst",
            category="Realism",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "seed": "{seed}", "figure": "t-SNE of one cluster"},
        ),
    log:
        "logs/realism/{dataset}/figures/per_cluster_tsne_seed{seed}.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=8000,
    params:
        step="scsynth_core.experiments.realism:plot_per_cluster_embedding",
        models=PER_CLUSTER_MODELS,
        cluster=str(config["realism"]["per_cluster_tsne_cluster"]),
        seed=wildcard_seed,
        title=lambda w: f"{w.dataset}, seed {w.seed}: ",
    script:
        "../workflow_scripts/run_step.py"


rule plot_correlation_heatmap:
    input:
        heatmaps=heatmap_outputs(REALISM_RUN),
    output:
        outputs=[
            report(
                os.path.join(REALISM_RUN, heatmap_file(heatmap, "correlation_heatmap", "png")),
                caption=f"../report/{heatmap_file(heatmap, 'correlation_heatmap', 'rst')}",
                category="Realism",
                subcategory="{dataset}",
                labels={
                    "dataset": "{dataset}",
                    "seed": "{seed}",
                    "figure": f"marker correlations ({heatmap}): {{model}}",
                },
            )
            for heatmap in config["realism"]["heatmaps"]
        ],
    log:
        os.path.join(REALISM_LOGS, "correlation_heatmap.log"),
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.realism:plot_correlation_heatmap",
        names=config["realism"]["heatmaps"],
        title=lambda w: f"{w.model} on {w.dataset}, seed {w.seed}",
    script:
        "../workflow_scripts/run_step.py"


rule summarise_realism:
    input:
        inputs=lambda w: realism_run_files(w.dataset, "metrics.json"),
    output:
        output=report(
            "results/realism/{dataset}/summary.tsv",
            caption="../report/realism_summary.rst",
            category="Realism",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "summary"},
        ),
    log:
        "logs/realism/{dataset}/summary.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.realism:summarise_metrics",
        runs=lambda w: realism_run_ids(w.dataset),
    script:
        "../workflow_scripts/run_step.py"


rule summarise_modern_metrics:
    input:
        inputs=lambda w: realism_run_files(w.dataset, "modern_metrics.tsv"),
    output:
        output=report(
            "results/realism/{dataset}/modern_metrics.tsv",
            caption="../report/modern_metrics_table.rst",
            category="Realism",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "today's metrics per cell type"},
        ),
    log:
        "logs/realism/{dataset}/modern_metrics.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.realism:summarise_modern_metrics",
        runs=lambda w: realism_run_ids(w.dataset),
    script:
        "../workflow_scripts/run_step.py"


rule plot_modern_metrics:
    input:
        summary="results/realism/{dataset}/summary.tsv",
    output:
        output=report(
            os.path.join(FIGURES, "modern_metrics.png"),
            caption="../report/modern_metrics.rst",
            category="Realism",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "today's metrics"},
        ),
    log:
        "logs/realism/{dataset}/figures/modern_metrics.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.realism:plot_modern_metrics",
        title=lambda w: f"{w.dataset}: today's metrics (mean over replicates)",
    script:
        "../workflow_scripts/run_step.py"


rule summarise_per_cluster:
    input:
        inputs=lambda w: realism_run_files(w.dataset, "per_cluster.tsv", per_cluster=True),
    output:
        output=report(
            "results/realism/{dataset}/per_cluster.tsv",
            caption="../report/per_cluster_table.rst",
            category="Realism",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "realism per cluster"},
        ),
    log:
        "logs/realism/{dataset}/per_cluster.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.realism:summarise_per_cluster",
        runs=lambda w: realism_run_ids(w.dataset, per_cluster=True),
    script:
        "../workflow_scripts/run_step.py"


rule plot_realism_leaderboard:
    input:
        summary="results/realism/{dataset}/summary.tsv",
    output:
        output=report(
            os.path.join(FIGURES, "leaderboard.png"),
            caption="../report/leaderboard.rst",
            category="Realism",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "leaderboard"},
        ),
    log:
        "logs/realism/{dataset}/figures/leaderboard.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.realism:plot_leaderboard",
        title=lambda w: f"{w.dataset}: realism",
    script:
        "../workflow_scripts/run_step.py"


rule plot_training_curves:
    input:
        train_logs=lambda w: realism_model_runs(w.dataset, "train_log.tsv"),
    output:
        output=report(
            os.path.join(FIGURES, "training_curves.png"),
            caption="../report/training_curves.rst",
            category="Realism",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "realism during training"},
        ),
    log:
        "logs/realism/{dataset}/figures/training_curves.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.realism:plot_training_curves",
        names=[
            f"{model} seed{seed}" if len(config["realism"]["seeds"]) > 1 else model
            for model in config["realism"]["models"]
            for seed in config["realism"]["seeds"]
        ],
        title=lambda w: f"{w.dataset}: realism during training",
    script:
        "../workflow_scripts/run_step.py"


rule realism_leaderboard:
    input:
        summaries=expand("results/realism/{dataset}/summary.tsv", dataset=config["realism"]["datasets"]),
    output:
        output=report(
            "results/realism/leaderboard.tsv",
            caption="../report/leaderboard_table.rst",
            category="Realism",
            labels={"table": "leaderboard"},
        ),
    log:
        "logs/realism/leaderboard.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.experiments.realism:leaderboard",
    script:
        "../workflow_scripts/run_step.py"
