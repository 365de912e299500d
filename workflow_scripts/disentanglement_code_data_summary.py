from scsynth_core.experiments.disentanglement import code_data_summary
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    code_data_summary,
    inputs=snakemake.params.inputs,
    table=snakemake.output.table,
    figures=snakemake.params.figures,
    scores=snakemake.output.scores,
)
