from scsynth_core.experiments.augmentation import plot_augmentation_f1
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    plot_augmentation_f1,
    table=snakemake.input[0],
    output=snakemake.output[0],
    n_extra=snakemake.params.n_extra,
    title=f"{snakemake.wildcards.dataset}: F1 of the downsampled cluster",
)
