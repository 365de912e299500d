from scsynth_core.experiments.realism import summarise_metrics
from scsynth_core.steps import run_logged

run_logged(snakemake.log[0], summarise_metrics, inputs=list(snakemake.input), output=snakemake.output[0])
