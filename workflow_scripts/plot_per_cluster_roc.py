from scsynth_core.experiments.realism import plot_per_cluster_roc
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    plot_per_cluster_roc,
    tables=dict(zip(snakemake.params.names, snakemake.input.tables)),
    rocs=dict(zip(snakemake.params.names, snakemake.input.rocs)),
    output=snakemake.output[0],
    title=f"{snakemake.wildcards.dataset}, seed {snakemake.wildcards.seed}: real vs generated, cluster by cluster",
)
