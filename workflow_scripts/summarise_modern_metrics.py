from scsynth_core.steps import run_logged, summarise_modern_metrics

run_logged(snakemake.log[0], summarise_modern_metrics, inputs=list(snakemake.input), output=snakemake.output[0])
