from scsynth_core.experiments.realism import plot_modern_metrics
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    plot_modern_metrics,
    summary=snakemake.input[0],
    output=snakemake.output[0],
    title=f"{snakemake.wildcards.dataset}: today's metrics (mean over replicates)",
)
