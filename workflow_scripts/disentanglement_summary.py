from scsynth_core.experiments.disentanglement import summarise
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    summarise,
    inputs=snakemake.params.inputs,
    runs=snakemake.output.runs,
    table=snakemake.output.table,
)
