from scsynth_core.steps import import_dataset, run_logged

run_logged(
    snakemake.log[0],
    import_dataset,
    registry=snakemake.params.registry,
    dataset=snakemake.wildcards.dataset,
    output=snakemake.output[0],
    manifest=snakemake.input.get("manifest"),
)
