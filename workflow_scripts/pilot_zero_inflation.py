from scsynth_core.experiments.pilot import zero_inflation_check
from scsynth_core.steps import run_logged

settings = snakemake.params.settings
run_logged(
    snakemake.log[0],
    zero_inflation_check,
    prepared=snakemake.input[0],
    output=snakemake.output.summary,
    genes_output=snakemake.output.genes,
    model=snakemake.wildcards.model,
    size=snakemake.params.size,
    seed=snakemake.params.seed,
    fraction=snakemake.params.fraction,
    preset=settings["preset"],
    params=settings["params"],
    max_steps=settings["max_steps"],
    replace=snakemake.params.replace,
    holdout=snakemake.params.holdout,
    device=snakemake.params.device,
    threads=snakemake.threads,
)
