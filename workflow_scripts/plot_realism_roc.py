from scsynth_core.experiments.realism import plot_realism_roc
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    plot_realism_roc,
    rocs=dict(zip(snakemake.params.names, snakemake.input.rocs)),
    metrics=dict(zip(snakemake.params.names, snakemake.input.metrics)),
    output=snakemake.output[0],
    title=f"{snakemake.wildcards.dataset}, seed {snakemake.wildcards.seed}: real vs generated",
)
