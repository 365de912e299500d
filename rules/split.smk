rule split_dataset:
    input:
        "results/data/{dataset}/prepared.h5ad",
    output:
        "results/data/{dataset}/splits/test{fraction}_seed{seed}.tsv",
    log:
        "logs/data/{dataset}/split_test{fraction}_seed{seed}.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/split_dataset.py"


rule downsample_cluster:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split=lambda w: balanced_split(
            w.dataset, config["augmentation"]["test_fraction"], config["augmentation"]["split_seed"]
        ),
    output:
        expand(
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
        fractions=config["augmentation"]["fractions"],
        target=config["augmentation"]["target"],
    script:
        "../workflow_scripts/downsample_cluster.py"
