rule download_dataset:
    output:
        manifest="resources/datasets/{dataset}/manifest.json",
    params:
        registry=config["registry"],
        dest_dir=lambda w: f"resources/datasets/{w.dataset}",
    log:
        "logs/download/{dataset}.log",
    retries: 2
    resources:
        runtime=240,
    conda:
        "../envs/download.yaml"
    script:
        "../workflow_scripts/download_dataset.py"
