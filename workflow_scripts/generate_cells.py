from scsynth_core.steps import generate_cells, run_logged

# Realism protocol: as many generated cells as real test cells (with their cluster composition).
run_logged(
    snakemake.log[0],
    generate_cells,
    model=snakemake.input.model,
    output=snakemake.output[0],
    like=snakemake.input.prepared,
    like_split=snakemake.input.split,
    like_subset="test",
    seed=int(snakemake.wildcards.seed),
    device=snakemake.params.device,
    threads=snakemake.threads,
)
