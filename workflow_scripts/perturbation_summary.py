from scsynth_core.experiments.perturbation import summarise
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    summarise,
    inputs=list(snakemake.input),
    output_runs=snakemake.output.runs,
    output_table=snakemake.output.table,
    output_improvement=snakemake.output.improvement,
)
