rule import_dataset:
    input:
        unpack(import_inputs),
    output:
        "results/data/{dataset}/raw.h5ad",
    params:
        registry=config["registry"],
    log:
        "logs/data/{dataset}/import.log",
    resources:
        mem_mb=8000,
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/import_dataset.py"


rule prepare_dataset:
    input:
        "results/data/{dataset}/raw.h5ad",
    output:
        "results/data/{dataset}/prepared.h5ad",
    params:
        recipe=lambda w: dataset_spec(w)["recipe"],
        recipe_params=lambda w: dataset_spec(w).get("recipe_params", {}),
        label_key=lambda w: dataset_spec(w).get("label_key"),
    log:
        "logs/data/{dataset}/prepare.log",
    resources:
        mem_mb=8000,
    conda:
        "../envs/analysis.yaml"
    script:
        "../workflow_scripts/prepare_dataset.py"
