from scsynth_core.experiments.realism import build_marker_genes
from scsynth_core.steps import run_logged

run_logged(
    snakemake.log[0],
    build_marker_genes,
    prepared=snakemake.input[0],
    markers=snakemake.output[0],
    marker_genes_per_cluster=snakemake.params.marker_genes_per_cluster,
)
