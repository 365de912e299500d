rule import_dataset:
    input:
        unpack(import_inputs),
    output:
        output="results/data/{dataset}/raw.h5ad",
    log:
        "logs/data/{dataset}/import.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=8000,
    params:
        step="scsynth_core.steps:import_dataset",
        registry=REGISTRY_FILE,
        dataset=lambda w: w.dataset,
    script:
        "../workflow_scripts/run_step.py"


rule prepare_dataset:
    input:
        input="results/data/{dataset}/raw.h5ad",
    output:
        output="results/data/{dataset}/prepared.h5ad",
    log:
        "logs/data/{dataset}/prepare.log",
    conda:
        "../envs/analysis.yaml"
    resources:
        mem_mb=8000,
    params:
        step="scsynth_core.steps:prepare_dataset",
        recipe=lambda w: dataset_spec(w)["recipe"],
        params=lambda w: dataset_spec(w).get("recipe_params", {}),
        label_key=lambda w: dataset_spec(w).get("label_key"),
        stream=config["large_data"]["stream_prepare"],
        sketch_cells=config["large_data"]["sketch_cells"],
        chunk_rows=config["large_data"]["chunk_rows"],
    script:
        "../workflow_scripts/run_step.py"
