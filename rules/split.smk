rule split_dataset:
    input:
        "results/data/{dataset}/prepared.h5ad",
    output:
        "results/data/{dataset}/splits/balanced_seed{seed}.tsv",
    params:
        test_fraction=config["realism"]["test_fraction"],
    log:
        "logs/data/{dataset}/split_seed{seed}.log",
    script:
        "../workflow_scripts/split_dataset.py"
