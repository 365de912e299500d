rule train_model:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split=run_split,
    output:
        model=os.path.join(RUN, "model.pt"),
        train_log=os.path.join(RUN, "train_log.tsv"),
    log:
        os.path.join(LOGS, "train.log"),
    benchmark:
        os.path.join(RUN, "train_benchmark.tsv")
    conda:
        "../envs/models.yaml"
    threads: 2
    resources:
        **GPU_RESOURCES,
        mem_mb=8000,
        runtime=60,
    params:
        settings=train_settings,
        device=config["device"],
        checkpoint=os.path.join(RUN, "checkpoint.pt"),
        seed=replicate_seed,
        stream=config["large_data"]["stream_training"],
    script:
        "../workflow_scripts/train_model.py"
