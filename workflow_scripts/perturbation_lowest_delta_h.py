from scsynth_core.experiments.perturbation import select_lowest_delta_h
from scsynth_core.steps import run_logged

params = snakemake.params
run_logged(
    snakemake.log[0],
    select_lowest_delta_h,
    improvement=snakemake.input[0],
    output=snakemake.output[0],
    n_lowest=params.n_lowest,
    by=params.by,
)
