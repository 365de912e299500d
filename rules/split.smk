rule split_dataset:
    input:
        input="results/data/{dataset}/prepared.h5ad",
    output:
        output="results/data/{dataset}/splits/test{fraction}_seed{seed}.tsv",
    log:
        "logs/data/{dataset}/split_test{fraction}_seed{seed}.log",
    conda:
        "../envs/analysis.yaml"
    params:
        step="scsynth_core.steps:split_dataset",
        seed=wildcard_seed,
        test_fraction=lambda w: float(w.fraction),
    script:
        "../workflow_scripts/run_step.py"
