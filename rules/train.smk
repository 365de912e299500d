rule train_model:
    input:
        prepared="results/data/{dataset}/prepared.h5ad",
        split=run_split,
    output:
        output=os.path.join(RUN, "model.pt"),
        train_log=os.path.join(RUN, "train_log.tsv"),
    log:
        os.path.join(LOGS, "train.log"),
    benchmark:
        os.path.join(RUN, "train_benchmark.tsv")
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        **GPU_RESOURCES,
        mem_mb=8000,
        runtime=60,
    params:
        step="scsynth_core.steps:train_model",
        model=lambda w: w.model,
        preset=train_setting("preset"),
        params=train_setting("params"),
        max_steps=train_setting("max_steps"),
        device=config["device"],
        checkpoint=os.path.join(RUN, "checkpoint.pt"),
        seed=replicate_seed,
        stream=config["large_data"]["stream_training"],
    script:
        "../workflow_scripts/run_step.py"
