rule generate_cells:
    input:
        model=os.path.join(RUN, "model.pt"),
        prepared="results/data/{dataset}/prepared.h5ad",
        split=run_split,
    output:
        os.path.join(RUN, "generated.h5ad"),
    log:
        os.path.join(LOGS, "generate.log"),
    benchmark:
        os.path.join(RUN, "generate_benchmark.tsv")
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        **GPU_RESOURCES,
        mem_mb=8000,
    params:
        request=generation_request,
        device=config["device"],
        seed=replicate_seed,
    script:
        "../workflow_scripts/generate_cells.py"
