rule generate_cells:
    input:
        model=RUN + "/model.pt",
        prepared="results/data/{dataset}/prepared.h5ad",
        split=run_split,
    output:
        RUN + "/generated.h5ad",
    params:
        request=generation_request,
        device=config["device"],
        seed=replicate_seed,
    log:
        LOGS + "/generate.log",
    benchmark:
        RUN + "/generate_benchmark.tsv"
    threads: 2
    resources:
        gpu=GPU,
        mem_mb=8000,
    conda:
        "../envs/models.yaml"
    script:
        "../workflow_scripts/generate_cells.py"
