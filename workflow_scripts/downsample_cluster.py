from scsynth_core.experiments.augmentation import downsample_dataset
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    downsample_dataset,
    prepared=snakemake.input.prepared,
    split=snakemake.input.split,
    outputs=dict(zip(snakemake.params.fractions, snakemake.output)),
    target=snakemake.params.target,
    seed=int(snakemake.wildcards.seed),
    fraction_of=snakemake.params.get("fraction_of", "training"),
)
