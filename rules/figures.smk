FIGURES = "results/realism/{dataset}/figures"


rule plot_realism_embeddings:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split=realism_split,
        markers=os.path.join(REFERENCE, "markers.tsv"),
        generated=expand(
            "results/realism/{{dataset}}/{model}/seed{{seed}}/generated.h5ad",
            model=config["realism"]["models"],
        ),
    output:
        **{
            f"{method}_{colour}": report(
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
            for method in config["realism"]["embeddings"]
            for colour in ("set", "cluster", "marker")
        },
    log:
        "logs/realism/{dataset}/figures/embeddings_seed{seed}.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=8000,
    params:
        **embedding_marker_params(),
        models=config["realism"]["models"],
    script:
        "../workflow_scripts/plot_realism_embeddings.py"


rule plot_realism_roc:
    input:
        rocs=lambda w: list(realism_runs(w.dataset, w.seed, "roc.tsv").values()),
        metrics=lambda w: list(realism_runs(w.dataset, w.seed, "metrics.json").values()),
    output:
        report(
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
        names=lambda w: list(realism_runs(w.dataset, w.seed, "roc.tsv")),
    script:
        "../workflow_scripts/plot_realism_roc.py"


rule plot_per_cluster_roc:
    input:
        tables=lambda w: list(per_cluster_runs(w.dataset, w.seed, "per_cluster.tsv").values()),
        rocs=lambda w: list(per_cluster_runs(w.dataset, w.seed, "per_cluster_roc.tsv").values()),
    output:
        report(
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
        names=lambda w: list(per_cluster_runs(w.dataset, w.seed, "per_cluster.tsv")),
    script:
        "../workflow_scripts/plot_per_cluster_roc.py"


rule plot_per_cluster_embedding:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split=realism_split,
        generated=expand(
            "results/realism/{{dataset}}/{model}/seed{{seed}}/generated.h5ad",
            model=PER_CLUSTER_MODELS,
        ),
    output:
        report(
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
        models=PER_CLUSTER_MODELS,
        cluster=config["realism"]["per_cluster_tsne_cluster"],
    script:
        "../workflow_scripts/plot_per_cluster_embedding.py"


rule plot_correlation_heatmap:
    input:
        **heatmap_outputs(REALISM_RUN),
    output:
        **{
            f"heatmap_{heatmap}": report(
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
        },
    log:
        os.path.join(REALISM_LOGS, "correlation_heatmap.log"),
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/plot_correlation_heatmap.py"


rule summarise_realism:
    input:
        lambda w: [
            path
            for seed in config["realism"]["seeds"]
            for path in realism_runs(w.dataset, seed, "metrics.json").values()
        ],
    output:
        report(
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
    script:
        "../workflow_scripts/summarise_realism.py"


rule summarise_modern_metrics:
    input:
        lambda w: [
            path
            for seed in config["realism"]["seeds"]
            for path in realism_runs(w.dataset, seed, "modern_metrics.tsv").values()
        ],
    output:
        report(
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
    script:
        "../workflow_scripts/summarise_modern_metrics.py"


rule plot_modern_metrics:
    input:
        "results/realism/{dataset}/summary.tsv",
    output:
        report(
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
    script:
        "../workflow_scripts/plot_modern_metrics.py"


rule summarise_per_cluster:
    input:
        lambda w: [
            path
            for seed in config["realism"]["seeds"]
            for path in per_cluster_runs(w.dataset, seed, "per_cluster.tsv").values()
        ],
    output:
        report(
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
    script:
        "../workflow_scripts/summarise_per_cluster.py"


rule plot_realism_leaderboard:
    input:
        "results/realism/{dataset}/summary.tsv",
    output:
        report(
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
    script:
        "../workflow_scripts/plot_realism_leaderboard.py"


rule plot_training_curves:
    input:
        lambda w: [
            f"results/realism/{w.dataset}/{model}/seed{seed}/train_log.tsv"
            for model in config["realism"]["models"]
            for seed in config["realism"]["seeds"]
        ],
    output:
        report(
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
        runs=[
            f"{model} seed{seed}" if len(config["realism"]["seeds"]) > 1 else model
            for model in config["realism"]["models"]
            for seed in config["realism"]["seeds"]
        ],
    script:
        "../workflow_scripts/plot_training_curves.py"


rule realism_leaderboard:
    input:
        expand("results/realism/{dataset}/summary.tsv", dataset=config["realism"]["datasets"]),
    output:
        report(
            "results/realism/leaderboard.tsv",
            caption="../report/leaderboard_table.rst",
            category="Realism",
            labels={"table": "leaderboard"},
        ),
    log:
        "logs/realism/leaderboard.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/realism_leaderboard.py"


rule experiments_leaderboard:
    input:
        unpack(leaderboard_inputs),
    output:
        table=report(
            "results/leaderboard.tsv",
            caption="../report/experiments_leaderboard.rst",
            category="Leaderboard",
            labels={"table": "every experiment, ranked per dataset"},
        ),
        figure=report(
            "results/leaderboard.png",
            caption="../report/experiments_leaderboard.rst",
            category="Leaderboard",
            labels={"figure": "every experiment, ranked per dataset"},
        ),
    log:
        "logs/leaderboard.log",
    conda:
        "../envs/analysis.yaml"
    params:
        n_extra=config.get("augmentation", {}).get("n_generated"),
        perturbation_dataset=config.get("perturbation", {}).get("dataset", "simulated"),
    script:
        "../workflow_scripts/experiments_leaderboard.py"


rule plot_augmentation_f1:
    input:
        os.path.join(AUG, "f1.tsv"),
    output:
        report(
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
        n_extra=config["augmentation"]["n_generated"],
    script:
        "../workflow_scripts/plot_augmentation_f1.py"


rule plot_augmentation_embedding:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split=os.path.join(AUG, "splits/frac{fraction}_seed{seed}.tsv"),
        generated=os.path.join(AUG, "{model}/frac{fraction}_seed{seed}/generated.h5ad"),
    output:
        report(
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
        target=config["augmentation"]["target"],
    script:
        "../workflow_scripts/plot_augmentation_embedding.py"
