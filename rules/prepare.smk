rule import_dataset:
    input:
        unpack(import_inputs),
    output:
        "results/data/{dataset}/raw.h5ad",
    log:
        "logs/data/{dataset}/import.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=8000,
    params:
        registry=REGISTRY_FILE,
    script:
        "../workflow_scripts/import_dataset.py"


rule prepare_dataset:
    input:
        "results/data/{dataset}/raw.h5ad",
    output:
        "results/data/{dataset}/prepared.h5ad",
    log:
        "logs/data/{dataset}/prepare.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=8000,
    params:
        recipe=lambda w: dataset_spec(w)["recipe"],
        recipe_params=lambda w: dataset_spec(w).get("recipe_params", {}),
        label_key=lambda w: dataset_spec(w).get("label_key"),
        stream=config["large_data"]["stream_prepare"],
        sketch_cells=config["large_data"]["sketch_cells"],
        chunk_rows=config["large_data"]["chunk_rows"],
    script:
        "../workflow_scripts/prepare_dataset.py"
