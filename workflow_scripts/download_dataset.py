from scsynth_core.steps import download_dataset, run_logged

run_logged(
    snakemake.log[0],
    download_dataset,
    registry=snakemake.params.registry,
    dataset=snakemake.wildcards.dataset,
    dest_dir=snakemake.params.dest_dir,
)
