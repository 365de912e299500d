from scsynth_core.experiments.realism import plot_correlation_heatmap
from scsynth_core.steps import run_logged

w = snakemake.wildcards
run_logged(
    snakemake.log[0],
    plot_correlation_heatmap,
    # inputs and outputs heatmap_<name>, one of each per heatmap of realism.heatmaps
    heatmaps={key.removeprefix("heatmap_"): path for key, path in snakemake.input.items()},
    outputs={key.removeprefix("heatmap_"): path for key, path in snakemake.output.items()},
    title=f"{w.model} on {w.dataset}, seed {w.seed}",
)
