from scsynth_core.steps import run_logged, summarise_per_cluster

run_logged(snakemake.log[0], summarise_per_cluster, inputs=list(snakemake.input), output=snakemake.output[0])
