rule download_dataset:
    output:
        manifest="resources/datasets/{dataset}/manifest.json",
    log:
        "logs/download/{dataset}.log",
    retries: 2
    conda:
        "../envs/download.yaml"
    resources:
        runtime=240,
    params:
        step="scsynth_core.steps:download_dataset",
        registry=REGISTRY_FILE,
        dataset=lambda w: w.dataset,
    script:
        "../workflow_scripts/run_step.py"
