from scsynth_core.experiments.realism import summarise_per_cluster
from scsynth_core.steps import run_logged

run_logged(snakemake.log[0], summarise_per_cluster, inputs=list(snakemake.input), output=snakemake.output[0])
