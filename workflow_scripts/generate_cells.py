from scsynth_core.steps import generate_cells, run_logged

# What to generate depends on the experiment (see generation_request in rules/common.smk): realism asks for as
# many cells as the real test set, with its cluster composition; augmentation for N cells of the target cluster.
run_logged(
    snakemake.log[0],
    generate_cells,
    model=snakemake.input.model,
    output=snakemake.output[0],
    **snakemake.params.request,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
    threads=snakemake.threads,
)
