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
        registry=REGISTRY_FILE,
        dest_dir=lambda w: f"resources/datasets/{w.dataset}",
    script:
        "../workflow_scripts/download_dataset.py"
