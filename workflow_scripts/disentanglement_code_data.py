from scsynth_core.experiments.disentanglement import code_data_run
from scsynth_core.steps import run_logged

settings = snakemake.params.settings
run_logged(
    snakemake.log[0],
    code_data_run,
    simulated=snakemake.input[0],
    model=snakemake.wildcards.model,
    seed=int(snakemake.wildcards.seed),
    output=snakemake.output.metrics,
    cells_output=snakemake.output.cells,
    preset=settings["preset"],
    params=settings["params"],
    max_steps=settings["max_steps"],
    n_cells=snakemake.params.n_cells,
    k=snakemake.params.k,
    traversal_steps=snakemake.params.traversal_steps,
    traversal_draws=snakemake.params.traversal_draws,
    device=snakemake.params.device,
    threads=snakemake.threads,
)
