from scsynth_core.steps import concat_tables, run_logged

run_logged(snakemake.log[0], concat_tables, inputs=list(snakemake.input), output=snakemake.output[0])
