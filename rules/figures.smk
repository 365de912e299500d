rule plot_realism_embedding:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split="results/data/{dataset}/splits/balanced_seed{seed}.tsv",
        generated=expand(
            "results/realism/{{dataset}}/{model}/seed{{seed}}/generated.h5ad",
            model=config["realism"]["models"],
        ),
    output:
        report(
            "results/realism/{dataset}/figures/embedding_seed{seed}.png",
            caption="../report/embedding.rst",
            category="Realism",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "seed": "{seed}", "figure": "UMAP co-embedding"},
        ),
    params:
        models=config["realism"]["models"],
    log:
        "logs/realism/{dataset}/figures/embedding_seed{seed}.log",
    script:
        "../workflow_scripts/plot_realism_embedding.py"


rule summarise_realism:
    input:
        expand(
            "results/realism/{dataset}/{model}/seed{seed}/metrics.json",
            dataset=config["realism"]["datasets"],
            model=config["realism"]["models"],
            seed=config["realism"]["seeds"],
        ),
    output:
        report(
            "results/realism/summary.tsv",
            caption="../report/realism_summary.rst",
            category="Realism",
            labels={"table": "summary"},
        ),
    log:
        "logs/realism/summary.log",
    script:
        "../workflow_scripts/summarise_realism.py"
