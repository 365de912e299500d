from scsynth_core.steps import run_logged, split_dataset

run_logged(
    snakemake.log[0],
    split_dataset,
    input=snakemake.input[0],
    output=snakemake.output[0],
    seed=int(snakemake.wildcards.seed),
    test_fraction=float(snakemake.wildcards.fraction),
)
