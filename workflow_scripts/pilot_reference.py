from scsynth_core.experiments.pilot import build_reference
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    build_reference,
    prepared=snakemake.input[0],
    output=snakemake.output[0],
    n_pcs=snakemake.params.n_pcs,
    n_neighbors=snakemake.params.n_neighbors,
)
