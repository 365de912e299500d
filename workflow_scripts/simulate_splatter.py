# Every simulation of the disentanglement experiment: Splatter steps and PROSSTT-style trees (rule simulate_splatter).
from scsynth_core.experiments.disentanglement import simulate
from scsynth_core.steps import run_logged

section = snakemake.params.section
run_logged(
    snakemake.log[0],
    simulate,
    output=snakemake.output[0],
    simulation=snakemake.wildcards.simulation,
    n_cells=section["n_cells"],
    n_genes=section["n_genes"],
    seed=section["simulation_seed"],
    params=section["simulation_params"],
    prosstt_params=section["prosstt_params"],
)
