from scsynth_core.experiments.perturbation import simulate
from scsynth_core.steps import run_logged

section = snakemake.params.section
run_logged(
    snakemake.log[0],
    simulate,
    output=snakemake.output[0],
    seed=section["simulation_seed"],
    n_cells=section["n_cells"],
    n_genes=section["n_genes"],
    n_batches=section["n_batches"],
    n_paths=section["n_paths"],
    params=section["simulation_params"],
)
