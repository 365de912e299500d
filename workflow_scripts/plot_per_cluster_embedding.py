from scsynth_core.experiments.realism import plot_per_cluster_embedding
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    plot_per_cluster_embedding,
    prepared=snakemake.input.prepared,
    split=snakemake.input.split,
    generated=dict(zip(snakemake.params.models, snakemake.input.generated)),
    output=snakemake.output[0],
    cluster=str(snakemake.params.cluster),
    seed=int(snakemake.wildcards.seed),
    title=f"{snakemake.wildcards.dataset}, seed {snakemake.wildcards.seed}: ",
)
