rule evaluate_realism:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split="results/data/{dataset}/splits/balanced_seed{seed}.tsv",
        generated=RUN + "/generated.h5ad",
        train_log=RUN + "/train_log.tsv",
    output:
        RUN + "/metrics.json",
    log:
        LOGS + "/evaluate.log",
    resources:
        mem_mb=8000,
    script:
        "../workflow_scripts/evaluate_realism.py"
