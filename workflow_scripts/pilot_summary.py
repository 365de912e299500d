from scsynth_core.experiments.pilot import summarise
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    summarise,
    inputs=snakemake.input.tables,
    zero_checks=snakemake.input.zeros,
    output=snakemake.output.replicates,
    table1=snakemake.output.table1,
    zeros=snakemake.output.zeros,
    overhead=snakemake.output.overhead,
)
