from scsynth_core.steps import prepare_dataset, run_logged

run_logged(
    snakemake.log[0],
    prepare_dataset,
    input=snakemake.input[0],
    output=snakemake.output[0],
    recipe=snakemake.params.recipe,
    label_key=snakemake.params.label_key,
    params=snakemake.params.recipe_params,
    stream=snakemake.params.stream,
    sketch_cells=snakemake.params.sketch_cells,
    chunk_rows=snakemake.params.chunk_rows,
)
