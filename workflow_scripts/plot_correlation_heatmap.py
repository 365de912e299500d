from scsynth_core.experiments.realism import plot_correlation_heatmap
from scsynth_core.steps import run_logged

w = snakemake.wildcards
run_logged(
    snakemake.log[0],
    plot_correlation_heatmap,
    heatmap=snakemake.input[0],
    output=snakemake.output[0],
    title=f"{w.model} on {w.dataset} (seed {w.seed}): generated lower, real upper",
)
