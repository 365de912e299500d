from scsynth_core.experiments.pilot import run_pilot_replicates
from scsynth_core.steps import run_logged

settings = snakemake.params.settings
run_logged(
    snakemake.log[0],
    run_pilot_replicates,
    prepared=snakemake.input.prepared,
    reference=snakemake.input.reference,
    output=snakemake.output.table,
    example=snakemake.output.example,
    dataset=snakemake.wildcards.dataset,
    model=snakemake.wildcards.model,
    replicates=snakemake.params.replicates,
    preset=settings["preset"],
    params=settings["params"],
    max_steps=settings["max_steps"],
    replace=snakemake.params.replace,
    resolution=snakemake.params.resolution,
    n_neighbors=snakemake.params.n_neighbors,
    holdout=snakemake.params.holdout,
    device=snakemake.params.device,
    threads=snakemake.threads,
)
