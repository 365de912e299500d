from scsynth_core.experiments.augmentation import plot_augmentation_embedding
from scsynth_core.steps import run_logged

w = snakemake.wildcards
run_logged(
    snakemake.log[0],
    plot_augmentation_embedding,
    prepared=snakemake.input.prepared,
    split=snakemake.input.split,
    generated=snakemake.input.generated,
    output=snakemake.output[0],
    target=snakemake.params.target,
    seed=int(w.seed),
    title=f"{w.model} on {w.dataset}: target cluster at {float(w.fraction):.3g} kept (seed {w.seed})",
)
